//! v1 `hugetlb` controller: per-page-size limits and usage.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};
use oci_spec::runtime::LinuxHugepageLimit;

use crate::cgroups::fs;
use crate::cgroups::shared::hugetlb::page_sizes;
use crate::cgroups::stats::Hugetlb;

pub fn set(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for l in limits {
        let file = format!("hugetlb.{}.limit_in_bytes", l.page_size());
        if !dir.join(&file).exists() {
            bail!(
                "linux.resources.hugepageLimits: page size {:?} is not supported here (no {file})",
                l.page_size()
            );
        }
        fs::write(dir, &file, &l.limit().to_string())?;
        // The reservation limit too, where the kernel has it (runc).
        let rsvd = format!("hugetlb.{}.rsvd.limit_in_bytes", l.page_size());
        if dir.join(&rsvd).exists() {
            fs::write(dir, &rsvd, &l.limit().to_string())?;
        }
    }
    Ok(())
}

/// Usage, peak usage and failures per page size; from the reservation files where the kernel
/// has them, as runc reads them.
pub fn stats(dir: &Path) -> Result<BTreeMap<String, Hugetlb>> {
    let mut out = BTreeMap::new();
    for size in page_sizes(dir, ".limit_in_bytes")? {
        let rsvd = format!("hugetlb.{size}.rsvd");
        let prefix = if dir.join(format!("{rsvd}.usage_in_bytes")).exists() {
            rsvd
        } else {
            format!("hugetlb.{size}")
        };
        out.insert(
            size.clone(),
            Hugetlb {
                usage: fs::read_u64(dir, &format!("{prefix}.usage_in_bytes"))?,
                max: fs::read_u64(dir, &format!("{prefix}.max_usage_in_bytes"))?,
                failcnt: fs::read_u64(dir, &format!("{prefix}.failcnt"))?,
            },
        );
    }
    Ok(out)
}
