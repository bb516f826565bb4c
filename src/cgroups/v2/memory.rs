//! v2 `memory` controller: memory.max, memory.low, memory.swap.max (converted from the
//! spec's v1 memory+swap meaning); usage statistics in runc's v1 shape.
use std::path::Path;

use anyhow::{bail, Result};
use oci_spec::runtime::LinuxMemory;

use crate::cgroups::fs;
use crate::cgroups::stats::{Memory, MemoryEntry};

/// A v2 byte limit: -1 is "max".
pub fn limit_value(v: i64, field: &str) -> Result<String> {
    match v {
        -1 => Ok("max".to_string()),
        v if v < -1 => bail!("linux.resources.memory.{field}: invalid value {v}"),
        v => Ok(v.to_string()),
    }
}

/// memory.swap.max from the spec's `swap` (memory+swap, v1 meaning) and `limit`, as runc
/// converts it: swap -1 is "max"; an unlimited memory with no swap given makes swap unlimited
/// too; otherwise swap.max = swap - limit, which needs a real limit and swap >= limit.
/// `None`: leave memory.swap.max alone.
pub fn swap_value(swap: Option<i64>, limit: Option<i64>) -> Result<Option<String>> {
    match (swap, limit) {
        (None, Some(-1)) => Ok(Some("max".to_string())),
        (None, _) => Ok(None),
        (Some(-1), _) => Ok(Some("max".to_string())),
        (Some(s), _) if s < -1 => bail!("linux.resources.memory.swap: invalid value {s}"),
        (Some(s), None | Some(-1) | Some(0)) => bail!(
            "linux.resources.memory.swap ({s}) needs memory.limit: on cgroup v2 swap is set as swap - limit"
        ),
        (Some(s), Some(l)) if s < l => bail!(
            "linux.resources.memory.swap ({s}) must be >= memory.limit ({l}): it is the memory+swap limit"
        ),
        (Some(s), Some(l)) => Ok(Some((s - l).to_string())),
    }
}

pub fn set(dir: &Path, m: &LinuxMemory) -> Result<()> {
    #[allow(deprecated)]
    if m.kernel().is_some() {
        bail!("linux.resources.memory.kernel is not supported on cgroup v2");
    }
    if m.kernel_tcp().is_some() {
        bail!("linux.resources.memory.kernelTCP is not supported on cgroup v2");
    }
    if m.swappiness().is_some() {
        bail!("linux.resources.memory.swappiness is not supported on cgroup v2");
    }
    if m.disable_oom_killer() == Some(true) {
        bail!("linux.resources.memory.disableOOMKiller is not supported on cgroup v2");
    }
    if m.use_hierarchy() == Some(false) {
        bail!("linux.resources.memory.useHierarchy=false is not supported on cgroup v2 (always hierarchical)");
    }
    if m.check_before_update() == Some(true) {
        if let Some(limit) = m.limit().filter(|l| *l > 0) {
            let usage = fs::read_u64(dir, "memory.current")?;
            if usage > limit as u64 {
                bail!("linux.resources.memory.limit: {limit} is below the current usage {usage} of {}", dir.display());
            }
        }
    }
    let swap = swap_value(m.swap(), m.limit())?;
    // memory.max and memory.swap.max are independent on v2: any order works.
    if let Some(l) = m.limit() {
        fs::write(dir, "memory.max", &limit_value(l, "limit")?)?;
    }
    if let Some(s) = swap {
        if !dir.join("memory.swap.max").exists() {
            bail!("linux.resources.memory.swap: this kernel has no swap accounting (no memory.swap.max in {})", dir.display());
        }
        fs::write(dir, "memory.swap.max", &s)?;
    }
    if let Some(r) = m.reservation() {
        fs::write(dir, "memory.low", &limit_value(r, "reservation")?)?;
    }
    Ok(())
}

pub fn stats(dir: &Path) -> Result<Memory> {
    let raw: std::collections::BTreeMap<String, u64> =
        fs::parse_flat_keyed(&fs::read(dir, "memory.stat")?)
            .into_iter()
            .collect();
    let usage = MemoryEntry {
        limit: fs::read_u64(dir, "memory.max")?,
        usage: fs::read_u64(dir, "memory.current")?,
        max: fs::read_u64_opt(dir, "memory.peak")?.unwrap_or(0),
        failcnt: fs::flat_keyed_value(dir, "memory.events", "max")?.unwrap_or(0),
    };
    // runc reports swap as memory+swap, the v1 meaning.
    let swap = match fs::read_u64_opt(dir, "memory.swap.current")? {
        Some(cur) => MemoryEntry {
            limit: fs::read_u64(dir, "memory.swap.max")?.saturating_add(usage.limit),
            usage: cur + usage.usage,
            max: fs::read_u64_opt(dir, "memory.swap.peak")?.unwrap_or(0),
            failcnt: fs::flat_keyed_value(dir, "memory.swap.events", "max")?.unwrap_or(0),
        },
        None => MemoryEntry::default(),
    };
    Ok(Memory {
        cache: raw.get("file").copied().unwrap_or(0),
        usage,
        swap,
        raw,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(limit_value(-1, "limit").unwrap(), "max");
        assert_eq!(limit_value(4096, "limit").unwrap(), "4096");
        assert!(limit_value(-3, "limit").is_err());
    }

    #[test]
    fn swap_conversion() {
        let mb = 1 << 20;
        assert_eq!(
            swap_value(Some(3 * mb), Some(mb)).unwrap().unwrap(),
            (2 * mb).to_string()
        );
        assert_eq!(swap_value(Some(mb), Some(mb)).unwrap().unwrap(), "0");
        assert_eq!(swap_value(Some(-1), Some(mb)).unwrap().unwrap(), "max");
        assert_eq!(swap_value(None, Some(-1)).unwrap().unwrap(), "max");
        assert_eq!(swap_value(None, Some(mb)).unwrap(), None);
        assert!(swap_value(Some(mb), None).is_err());
        assert!(swap_value(Some(mb), Some(-1)).is_err());
        assert!(swap_value(Some(mb), Some(2 * mb)).is_err());
    }
}
