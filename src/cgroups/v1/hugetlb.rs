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
    }
    Ok(())
}

pub fn stats(dir: &Path) -> Result<BTreeMap<String, Hugetlb>> {
    let mut out = BTreeMap::new();
    for size in page_sizes(dir, ".limit_in_bytes")? {
        out.insert(
            size.clone(),
            Hugetlb {
                usage: fs::read_u64(dir, &format!("hugetlb.{size}.usage_in_bytes"))?,
                max: fs::read_u64(dir, &format!("hugetlb.{size}.max_usage_in_bytes"))?,
                failcnt: fs::read_u64(dir, &format!("hugetlb.{size}.failcnt"))?,
            },
        );
    }
    Ok(out)
}
