//! `pids` controller (same files on v1 and v2): the task limit and count.
use std::path::Path;

use anyhow::Result;
use oci_spec::runtime::LinuxPids;

use crate::cgroups::fs;
use crate::cgroups::stats::Pids;

/// pids.max value: a positive limit as is, a negative one is "max"; 0 leaves the limit
/// unchanged (runc reads 0 as "not set"), so it gives `None`.
pub fn limit_value(p: &LinuxPids) -> Option<String> {
    match p.limit() {
        0 => None,
        l if l < 0 => Some("max".to_string()),
        l => Some(l.to_string()),
    }
}

pub fn set(dir: &Path, p: &LinuxPids) -> Result<()> {
    if let Some(v) = limit_value(p) {
        fs::write(dir, "pids.max", &v)?;
    }
    Ok(())
}

pub fn stats(dir: &Path) -> Result<Pids> {
    let limit = fs::read_u64(dir, "pids.max")?;
    Ok(Pids {
        current: fs::read_u64(dir, "pids.current")?,
        limit: if limit == u64::MAX { 0 } else { limit },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxPidsBuilder;

    #[test]
    fn limits() {
        let p = |l| LinuxPidsBuilder::default().limit(l).build().unwrap();
        assert_eq!(limit_value(&p(10)).as_deref(), Some("10"));
        assert_eq!(limit_value(&p(-1)).as_deref(), Some("max"));
        assert_eq!(limit_value(&p(0)), None);
    }
}
