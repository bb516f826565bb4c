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
    // The kernel refuses cpu.shares while the group is idle: leaving idle comes first (an
    // update that turns idle off re-applies the recorded shares), entering it last.
    if c.idle() == Some(0) {
        fs::write(dir, "cpu.idle", "0")?;
    }
    if let Some(shares) = c.shares() {
        fs::write(dir, "cpu.shares", &shares.to_string())?;
        // The kernel clamps out-of-range values silently; report that instead.
        let got = fs::read_u64(dir, "cpu.shares")?;
        if got != shares {
            bail!("linux.resources.cpu.shares: the kernel accepts {shares} as {got} (the range is 2..262144)");
        }
    }
    // A new period smaller than the current one is refused (EINVAL) while the old quota over
    // it exceeds a parent's limit (a pod cgroup); as runc does, then write the quota first
    // and the period after it.
    let mut period_later = None;
    if let Some(p) = c.period() {
        match fs::write(dir, "cpu.cfs_period_us", &p.to_string()) {
            Err(e) if c.quota().is_some() && is_einval(&e) => period_later = Some(p),
            other => other?,
        }
    }
    if let Some(q) = c.quota() {
        fs::write(dir, "cpu.cfs_quota_us", &quota_value(q))?;
    }
    if let Some(p) = period_later {
        fs::write(dir, "cpu.cfs_period_us", &p.to_string())?;
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
    if let Some(i) = c.idle().filter(|i| *i != 0) {
        fs::write(dir, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

fn is_einval(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            == Some(libc::EINVAL)
            || c.downcast_ref::<nix::errno::Errno>() == Some(&nix::errno::Errno::EINVAL)
    })
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
