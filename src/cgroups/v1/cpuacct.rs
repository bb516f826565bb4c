//! v1 `cpuacct` controller: CPU usage statistics.
use std::path::Path;

use anyhow::Result;

use crate::cgroups::fs;
use crate::cgroups::stats::CpuUsage;

/// Nanoseconds per clock tick (cpuacct.stat counts USER_HZ ticks).
fn ns_per_tick() -> u64 {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|h| *h > 0)
        .unwrap_or(100) as u64;
    1_000_000_000 / hz
}

pub fn usage(dir: &Path) -> Result<CpuUsage> {
    let percpu = fs::read(dir, "cpuacct.usage_percpu")?
        .split_whitespace()
        .map(fs::parse_u64)
        .collect::<Result<Vec<_>>>()?;
    let kv = fs::parse_flat_keyed(&fs::read(dir, "cpuacct.stat")?);
    let get = |k: &str| kv.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
    Ok(CpuUsage {
        total: fs::read_u64(dir, "cpuacct.usage")?,
        percpu,
        kernel: get("system") * ns_per_tick(),
        user: get("user") * ns_per_tick(),
    })
}
