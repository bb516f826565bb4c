//! Per-process kernel attributes from the spec, for the init and for `exec`:
//! `linux.memoryPolicy`, `process.ioPriority`, `process.scheduler`,
//! `process.execCPUAffinity` and `linux.personality`.
//!
//! `Attrs::from_spec` is pure: it checks every value and turns it into what the syscall
//! takes, so validation calls it before any side effect. `process::attrs` applies them.
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Linux, Process};

pub mod affinity;
pub mod ioprio;
pub mod mempolicy;
pub mod personality;
pub mod sched;

/// Everything one process applies; `None` leaves the kernel's default.
#[derive(Debug, Clone, Default)]
pub struct Attrs {
    pub mempolicy: Option<mempolicy::MemPolicy>,
    pub ioprio: Option<u16>,
    pub sched: Option<crate::sys::sched::SchedAttr>,
    pub affinity: affinity::Affinity,
    pub personality: Option<u64>,
}

impl Attrs {
    /// Check and convert; `linux` is the container's (for exec: the bundle's config).
    pub fn from_spec(process: &Process, linux: Option<&Linux>) -> Result<Attrs> {
        Ok(Attrs {
            mempolicy: linux
                .and_then(|l| l.memory_policy().as_ref())
                .map(mempolicy::MemPolicy::from_spec)
                .transpose()
                .context("linux.memoryPolicy")?,
            ioprio: process
                .io_priority()
                .as_ref()
                .map(ioprio::from_spec)
                .transpose()
                .context("process.ioPriority")?,
            sched: process
                .scheduler()
                .as_ref()
                .map(sched::from_spec)
                .transpose()
                .context("process.scheduler")?,
            affinity: affinity::Affinity::from_spec(process.exec_cpu_affinity().as_ref())
                .context("process.execCPUAffinity")?,
            personality: linux
                .and_then(|l| l.personality().as_ref())
                .map(personality::from_spec)
                .transpose()
                .context("linux.personality")?,
        })
    }
}

/// A list like "0-3,7" (cpus, nodes) as sorted numbers, each below `limit`.
pub fn parse_list(s: &str, limit: u32) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        if part.is_empty() {
            bail!("{s:?}: empty element");
        }
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let num = |x: &str| -> Result<u32> {
            x.trim()
                .parse::<u32>()
                .with_context(|| format!("{s:?}: {x:?} is not a number"))
        };
        let (a, b) = (num(a)?, num(b)?);
        if a > b {
            bail!("{s:?}: range {a}-{b} is backwards");
        }
        if b >= limit {
            bail!("{s:?}: {b} is beyond the maximum {}", limit - 1);
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(parse_list("0-3,7", 8).unwrap(), vec![0, 1, 2, 3, 7]);
        assert_eq!(parse_list("2,1,2", 8).unwrap(), vec![1, 2]);
        assert!(parse_list("8", 8)
            .unwrap_err()
            .to_string()
            .contains("beyond"));
        assert!(parse_list("3-1", 8).is_err());
        assert!(parse_list("a", 8).is_err());
        assert!(parse_list("1,", 8).is_err());
    }
}
