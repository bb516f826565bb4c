//! v1 `memory` controller: limit, soft limit, memory+swap, kernel and TCP kernel memory,
//! swappiness, OOM killer; usage statistics.
use std::path::Path;

use anyhow::{bail, Result};
use oci_spec::runtime::LinuxMemory;

use crate::cgroups::fs;
use crate::cgroups::stats::{Memory, MemoryEntry};

/// v1 takes `-1` for "unlimited"; other negative values are invalid.
pub fn limit_value(v: i64, field: &str) -> Result<String> {
    if v < -1 {
        bail!("linux.resources.memory.{field}: invalid value {v}");
    }
    Ok(v.to_string())
}

/// Current memsw limit as a signed value (-1 for unlimited).
fn current(dir: &Path, file: &str) -> Result<i64> {
    let v = fs::read_u64(dir, file)?;
    Ok(i64::try_from(v).unwrap_or(-1))
}

/// Whether memory.memsw must be written before memory.limit_in_bytes: the kernel keeps
/// memsw >= limit, so raising both means memsw first, lowering both means limit first.
pub fn swap_first(new_swap: i64, current_swap: i64) -> bool {
    new_swap == -1 || (current_swap != -1 && new_swap > current_swap)
}

pub fn set(dir: &Path, m: &LinuxMemory) -> Result<()> {
    if m.check_before_update() == Some(true) {
        if let Some(limit) = m.limit().filter(|l| *l > 0) {
            let usage = fs::read_u64(dir, "memory.usage_in_bytes")?;
            if usage > limit as u64 {
                bail!("linux.resources.memory.limit: {limit} is below the current usage {usage} of {}", dir.display());
            }
        }
    }
    match (m.limit(), m.swap()) {
        (Some(limit), Some(swap)) => {
            let (l, s) = (limit_value(limit, "limit")?, limit_value(swap, "swap")?);
            if swap != -1 && limit != -1 && swap < limit {
                bail!("linux.resources.memory.swap ({swap}) must be >= memory.limit ({limit}): on cgroup v1 it is the memory+swap limit");
            }
            if swap_first(swap, current(dir, "memory.memsw.limit_in_bytes")?) {
                fs::write(dir, "memory.memsw.limit_in_bytes", &s)?;
                fs::write(dir, "memory.limit_in_bytes", &l)?;
            } else {
                fs::write(dir, "memory.limit_in_bytes", &l)?;
                fs::write(dir, "memory.memsw.limit_in_bytes", &s)?;
            }
        }
        (Some(limit), None) => {
            fs::write(dir, "memory.limit_in_bytes", &limit_value(limit, "limit")?)?
        }
        (None, Some(swap)) => fs::write(
            dir,
            "memory.memsw.limit_in_bytes",
            &limit_value(swap, "swap")?,
        )?,
        (None, None) => {}
    }
    if let Some(r) = m.reservation() {
        fs::write(
            dir,
            "memory.soft_limit_in_bytes",
            &limit_value(r, "reservation")?,
        )?;
    }
    #[allow(deprecated)]
    if let Some(k) = m.kernel() {
        fs::write(
            dir,
            "memory.kmem.limit_in_bytes",
            &limit_value(k, "kernel")?,
        )?;
    }
    if let Some(k) = m.kernel_tcp() {
        fs::write(
            dir,
            "memory.kmem.tcp.limit_in_bytes",
            &limit_value(k, "kernelTCP")?,
        )?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            bail!("linux.resources.memory.swappiness: {s} is above 100");
        }
        fs::write(dir, "memory.swappiness", &s.to_string())?;
    }
    if let Some(d) = m.disable_oom_killer() {
        fs::write(dir, "memory.oom_control", if d { "1" } else { "0" })?;
    }
    if let Some(h) = m.use_hierarchy() {
        fs::write(dir, "memory.use_hierarchy", if h { "1" } else { "0" })?;
    }
    Ok(())
}

fn entry(dir: &Path, prefix: &str) -> Result<MemoryEntry> {
    Ok(MemoryEntry {
        limit: fs::read_u64_opt(dir, &format!("{prefix}.limit_in_bytes"))?.unwrap_or(0),
        usage: fs::read_u64_opt(dir, &format!("{prefix}.usage_in_bytes"))?.unwrap_or(0),
        max: fs::read_u64_opt(dir, &format!("{prefix}.max_usage_in_bytes"))?.unwrap_or(0),
        failcnt: fs::read_u64_opt(dir, &format!("{prefix}.failcnt"))?.unwrap_or(0),
    })
}

pub fn stats(dir: &Path) -> Result<Memory> {
    let raw: std::collections::BTreeMap<String, u64> =
        fs::parse_flat_keyed(&fs::read(dir, "memory.stat")?)
            .into_iter()
            .collect();
    Ok(Memory {
        cache: raw
            .get("cache")
            .or(raw.get("total_cache"))
            .copied()
            .unwrap_or(0),
        usage: entry(dir, "memory")?,
        swap: entry(dir, "memory.memsw")?,
        kernel: entry(dir, "memory.kmem")?,
        kernel_tcp: entry(dir, "memory.kmem.tcp")?,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_values() {
        assert_eq!(limit_value(-1, "limit").unwrap(), "-1");
        assert_eq!(limit_value(1 << 20, "limit").unwrap(), "1048576");
        assert!(limit_value(-2, "limit").is_err());
    }

    #[test]
    fn swap_ordering() {
        // Raising to unlimited or above the current memsw: memsw first.
        assert!(swap_first(-1, 100));
        assert!(swap_first(200, 100));
        // Lowering, or memsw currently unlimited: limit first.
        assert!(!swap_first(50, 100));
        assert!(!swap_first(50, -1));
    }
}
