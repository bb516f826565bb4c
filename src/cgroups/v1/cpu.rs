//! v1 `cpu` controller: shares, CFS quota/period/burst, realtime runtime/period, idle;
//! throttling statistics.
use std::path::Path;

use anyhow::{bail, Result};
use oci_spec::runtime::LinuxCpu;

use crate::cgroups::fs;
use crate::cgroups::stats::Throttling;

/// Whether `c` sets anything the `cpu` controller handles (cpus/mems belong to cpuset).
pub fn requested(c: &LinuxCpu) -> bool {
    c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.burst().is_some()
        || c.realtime_runtime().is_some()
        || c.realtime_period().is_some()
        || c.idle().is_some()
}

/// cfs_quota_us value: any negative quota is "unlimited" (-1).
pub fn quota_value(q: i64) -> String {
    if q < 0 {
        "-1".to_string()
    } else {
        q.to_string()
    }
}

pub fn set(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(shares) = c.shares() {
        fs::write(dir, "cpu.shares", &shares.to_string())?;
        // The kernel clamps out-of-range values silently; report that instead.
        let got = fs::read_u64(dir, "cpu.shares")?;
        if got != shares {
            bail!("linux.resources.cpu.shares: the kernel accepts {shares} as {got} (the range is 2..262144)");
        }
    }
    if let Some(p) = c.period() {
        fs::write(dir, "cpu.cfs_period_us", &p.to_string())?;
    }
    if let Some(q) = c.quota() {
        fs::write(dir, "cpu.cfs_quota_us", &quota_value(q))?;
    }
    if let Some(b) = c.burst() {
        fs::write(dir, "cpu.cfs_burst_us", &b.to_string())?;
    }
    if let Some(p) = c.realtime_period() {
        fs::write(dir, "cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(r) = c.realtime_runtime() {
        fs::write(dir, "cpu.rt_runtime_us", &r.to_string())?;
    }
    if let Some(i) = c.idle() {
        fs::write(dir, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

pub fn throttling(dir: &Path) -> Result<Throttling> {
    let kv = fs::parse_flat_keyed(&fs::read(dir, "cpu.stat")?);
    let get = |k: &str| kv.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
    Ok(Throttling {
        periods: get("nr_periods"),
        throttled_periods: get("nr_throttled"),
        throttled_time: get("throttled_time"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota() {
        assert_eq!(quota_value(-1), "-1");
        assert_eq!(quota_value(-5), "-1");
        assert_eq!(quota_value(50000), "50000");
    }
}
