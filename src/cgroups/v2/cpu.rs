//! v2 `cpu` controller: cpu.weight (from the spec's v1 shares), cpu.max, cpu.max.burst,
//! cpu.idle; usage and throttling statistics.
use std::path::Path;

use anyhow::{bail, Result};
use oci_spec::runtime::LinuxCpu;

use crate::cgroups::fs;
use crate::cgroups::stats::{Cpu, CpuUsage, Throttling};

/// cpu.weight from v1 cpu.shares, with runc's curve: a quadratic in log2(shares) through the
/// three fixed points 2 → 1, 1024 → 100 (both defaults), 262144 → 10000. 0 means unset.
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        s if s <= 2 => 1,
        s if s >= 262_144 => 10_000,
        s => {
            let l = (s as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            // Rounding guard: 1024 must give exactly 100, not ceil(100.000000001).
            (10f64.powf(exponent) - 1e-9).ceil() as u64
        }
    }
}

/// cpu.max from quota and period (default period 100000 as the kernel's).
/// A negative quota is "max". `current` is what cpu.max holds now, used when only one half
/// changes.
pub fn max_value(quota: Option<i64>, period: Option<u64>, current: &str) -> String {
    let mut cur = current.split_whitespace();
    let (cur_quota, cur_period) = (cur.next().unwrap_or("max"), cur.next().unwrap_or("100000"));
    let q = match quota {
        Some(q) if q > 0 => q.to_string(),
        Some(_) => "max".to_string(),
        None => cur_quota.to_string(),
    };
    let p = period.map_or(cur_period.to_string(), |p| p.to_string());
    format!("{q} {p}")
}

pub fn requested(c: &LinuxCpu) -> bool {
    c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.burst().is_some()
        || c.idle().is_some()
        || c.realtime_period().is_some()
        || c.realtime_runtime().is_some()
}

pub fn set(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if c.realtime_period().is_some() || c.realtime_runtime().is_some() {
        bail!("linux.resources.cpu.realtimePeriod/realtimeRuntime are not supported on cgroup v2");
    }
    // cpu.weight is refused while the group is idle: leave idle first, enter it last.
    if c.idle() == Some(0) {
        fs::write(dir, "cpu.idle", "0")?;
    }
    if let Some(s) = c.shares() {
        fs::write(dir, "cpu.weight", &shares_to_weight(s).to_string())?;
    }
    if c.quota().is_some() || c.period().is_some() {
        let cur = fs::read(dir, "cpu.max")?;
        fs::write(dir, "cpu.max", &max_value(c.quota(), c.period(), &cur))?;
    }
    if let Some(b) = c.burst() {
        fs::write(dir, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle().filter(|i| *i != 0) {
        fs::write(dir, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

pub fn stats(dir: &Path) -> Result<Cpu> {
    let kv = fs::parse_flat_keyed(&fs::read(dir, "cpu.stat")?);
    let get = |k: &str| kv.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
    Ok(Cpu {
        usage: CpuUsage {
            percpu_kernel: Vec::new(),
            percpu_user: Vec::new(),
            total: get("usage_usec") * 1000,
            percpu: Vec::new(),
            kernel: get("system_usec") * 1000,
            user: get("user_usec") * 1000,
        },
        throttling: Throttling {
            periods: get("nr_periods"),
            throttled_periods: get("nr_throttled"),
            throttled_time: get("throttled_usec") * 1000,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_fixed_points() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1_000_000), 10_000);
        // Monotonic in between.
        let mut last = 0;
        for s in [3, 10, 100, 512, 1024, 2048, 10_000, 100_000, 262_143] {
            let w = shares_to_weight(s);
            assert!(w >= last && (1..=10_000).contains(&w), "{s} -> {w}");
            last = w;
        }
    }

    #[test]
    fn cpu_max() {
        assert_eq!(max_value(Some(50_000), None, "max 100000"), "50000 100000");
        assert_eq!(
            max_value(Some(50_000), Some(200_000), "max 100000"),
            "50000 200000"
        );
        assert_eq!(max_value(Some(-1), None, "20000 100000"), "max 100000");
        assert_eq!(max_value(None, Some(50_000), "20000 100000"), "20000 50000");
    }
}
