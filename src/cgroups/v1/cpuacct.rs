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
    let (percpu_user, percpu_kernel) = if dir.join("cpuacct.usage_all").exists() {
        per_mode(&fs::read(dir, "cpuacct.usage_all")?)?
    } else {
        Default::default()
    };
    Ok(CpuUsage {
        total: fs::read_u64(dir, "cpuacct.usage")?,
        percpu,
        percpu_kernel,
        percpu_user,
        kernel: get("system") * ns_per_tick(),
        user: get("user") * ns_per_tick(),
    })
}

/// `cpuacct.usage_all`: a `cpu user system` header, then a line per CPU; (user, system).
fn per_mode(text: &str) -> Result<(Vec<u64>, Vec<u64>)> {
    let (mut user, mut system) = (Vec::new(), Vec::new());
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let [_, u, s] = f[..] else {
            anyhow::bail!("cpuacct.usage_all: unexpected line {l:?}");
        };
        user.push(fs::parse_u64(u)?);
        system.push(fs::parse_u64(s)?);
    }
    Ok((user, system))
}

#[cfg(test)]
mod tests {
    #[test]
    fn usage_all() {
        let (u, s) = super::per_mode("cpu user system\n0 10 20\n1 30 40\n").unwrap();
        assert_eq!((u, s), (vec![10, 30], vec![20, 40]));
    }
}
