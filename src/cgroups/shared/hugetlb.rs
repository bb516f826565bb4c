//! `hugetlb`: the page sizes a controller offers (v1 and v2), and the cgroup2 files:
//! hugetlb.SIZE.max (and .rsvd.max when the kernel has it, as runc does), usage from
//! .rsvd.current (else .current) and failures from .events. The cgroup2 files serve the v2 manager and a v1 manager on a
//! hybrid host, where hugetlb lives only in the cgroup2 tree.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};
use oci_spec::runtime::LinuxHugepageLimit;

use crate::cgroups::fs;
use crate::cgroups::stats::Hugetlb;

/// Page sizes the controller offers, from the file names (`hugetlb.2MB.limit_in_bytes`).
pub fn page_sizes(dir: &Path, suffix: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)
        .map_err(|e| anyhow::Error::new(e).context(format!("listing {}", dir.display())))?
    {
        let name = e?.file_name().to_string_lossy().into_owned();
        if let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|n| n.strip_suffix(suffix))
        {
            if !size.contains('.') {
                out.push(size.to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}

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

/// Usage (of reservations where the kernel counts them) and failures per page size, as runc
/// reads the cgroup2 files. cgroup2 keeps no peak, so `max` stays 0 (left out of the JSON).
pub fn stats(dir: &Path) -> Result<BTreeMap<String, Hugetlb>> {
    let mut out = BTreeMap::new();
    for size in page_sizes(dir, ".max")? {
        let rsvd = format!("hugetlb.{size}.rsvd.current");
        let current = if dir.join(&rsvd).exists() {
            rsvd
        } else {
            format!("hugetlb.{size}.current")
        };
        out.insert(
            size.clone(),
            Hugetlb {
                usage: fs::read_u64(dir, &current)?,
                max: 0,
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
