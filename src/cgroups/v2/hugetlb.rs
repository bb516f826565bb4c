//! v2 `hugetlb` controller: hugetlb.SIZE.max (and .rsvd.max when the kernel has it, as runc
//! does), usage from .current and .events. Also used on hybrid hosts, where hugetlb lives only
//! in the cgroup2 tree.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};
use oci_spec::runtime::LinuxHugepageLimit;

use crate::cgroups::fs;
use crate::cgroups::stats::Hugetlb;
use crate::cgroups::v1::hugetlb::page_sizes;

/// The limit as written: -1 (or any negative) is "max".
pub fn limit_value(l: i64) -> String {
    if l < 0 {
        "max".to_string()
    } else {
        l.to_string()
    }
}

pub fn set(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for l in limits {
        let file = format!("hugetlb.{}.max", l.page_size());
        if !dir.join(&file).exists() {
            bail!(
                "linux.resources.hugepageLimits: page size {:?} is not available in {} (no {file})",
                l.page_size(),
                dir.display()
            );
        }
        let v = limit_value(l.limit());
        fs::write(dir, &file, &v)?;
        let rsvd = format!("hugetlb.{}.rsvd.max", l.page_size());
        if dir.join(&rsvd).exists() {
            fs::write(dir, &rsvd, &v)?;
        }
    }
    Ok(())
}

pub fn stats(dir: &Path) -> Result<BTreeMap<String, Hugetlb>> {
    let mut out = BTreeMap::new();
    for size in page_sizes(dir, ".max")? {
        let max = fs::read_u64(dir, &format!("hugetlb.{size}.max"))?;
        out.insert(
            size.clone(),
            Hugetlb {
                usage: fs::read_u64(dir, &format!("hugetlb.{size}.current"))?,
                max: if max == u64::MAX { 0 } else { max },
                failcnt: fs::flat_keyed_value(dir, &format!("hugetlb.{size}.events"), "max")?
                    .unwrap_or(0),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn limits() {
        assert_eq!(super::limit_value(-1), "max");
        assert_eq!(super::limit_value(2097152), "2097152");
    }
}
