//! `berth update [flags | -r FILE] ID`: change a running container's resources. Flags and the
//! resources file are merged into what is applied; unmentioned fields keep their values.
use anyhow::{Context, Result};
use clap::Args;
use serde_json::{json, Value};

use super::Global;
use crate::container::{update, Container};

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// A linux.resources JSON file ("-" for stdin).
    #[arg(short = 'r', long)]
    pub resources: Option<String>,
    /// Memory limit (bytes, or with k/m/g; -1: unlimited).
    #[arg(long, value_parser = parse_size, allow_hyphen_values = true)]
    pub memory: Option<i64>,
    #[arg(long = "memory-reservation", value_parser = parse_size, allow_hyphen_values = true)]
    pub memory_reservation: Option<i64>,
    /// Memory plus swap limit (-1: unlimited).
    #[arg(long = "memory-swap", value_parser = parse_size, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CFS burst (microseconds), as runc's --cpu-burst.
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<u64>,
    /// SCHED_IDLE for the cgroup (1) or not (0), as runc's --cpu-idle.
    #[arg(long = "cpu-idle")]
    pub cpu_idle: Option<i64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

/// Sizes as docker and runc take them: 512, 64k, 64m, 1g (binary units), -1.
fn parse_size(s: &str) -> Result<i64, String> {
    let lower = s.to_ascii_lowercase();
    let t = lower.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<i64>()
        .map(|n| if n < 0 { n } else { n.saturating_mul(mult) })
        .map_err(|e| format!("{s:?}: {e}"))
}

/// The JSON patch the flags describe.
fn patch_from_flags(a: &UpdateArgs) -> Value {
    let mut p = json!({});
    let mut set = |path: &[&str], v: Value| {
        let mut cur = &mut p;
        for k in &path[..path.len() - 1] {
            cur = cur.as_object_mut().unwrap().entry(*k).or_insert(json!({}));
        }
        cur[path[path.len() - 1]] = v;
    };
    if let Some(v) = a.memory {
        set(&["memory", "limit"], json!(v))
    }
    if let Some(v) = a.memory_reservation {
        set(&["memory", "reservation"], json!(v))
    }
    if let Some(v) = a.memory_swap {
        set(&["memory", "swap"], json!(v))
    }
    if let Some(v) = a.cpu_share {
        set(&["cpu", "shares"], json!(v))
    }
    if let Some(v) = a.cpu_period {
        set(&["cpu", "period"], json!(v))
    }
    if let Some(v) = a.cpu_quota {
        set(&["cpu", "quota"], json!(v))
    }
    if let Some(v) = a.cpu_burst {
        set(&["cpu", "burst"], json!(v))
    }
    if let Some(v) = a.cpu_idle {
        set(&["cpu", "idle"], json!(v))
    }
    if let Some(v) = a.cpu_rt_period {
        set(&["cpu", "realtimePeriod"], json!(v))
    }
    if let Some(v) = a.cpu_rt_runtime {
        set(&["cpu", "realtimeRuntime"], json!(v))
    }
    if let Some(v) = &a.cpuset_cpus {
        set(&["cpu", "cpus"], json!(v))
    }
    if let Some(v) = &a.cpuset_mems {
        set(&["cpu", "mems"], json!(v))
    }
    if let Some(v) = a.pids_limit {
        set(&["pids", "limit"], json!(v))
    }
    if let Some(v) = a.blkio_weight {
        set(&["blockIO", "weight"], json!(v))
    }
    p
}

pub fn run(g: &Global, a: UpdateArgs) -> Result<i32> {
    let ctx = || format!("update {}", a.id);
    let mut patch = match a.resources.as_deref() {
        Some("-") => {
            serde_json::from_reader(std::io::stdin()).context("reading resources from stdin")
        }
        Some(f) => crate::spec::read_json_file(std::path::Path::new(f))
            .and_then(|t| serde_json::from_slice(&t).with_context(|| format!("parsing {f}"))),
        None => Ok(json!({})),
    }
    .with_context(ctx)?;
    // Flags win over the file.
    update::merge(&mut patch, patch_from_flags(&a));
    let mut c = Container::load(&g.root, &a.id).with_context(ctx)?;
    update::update(&mut c, patch).with_context(ctx)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("2kb").unwrap(), 2048);
        assert_eq!(parse_size("-1").unwrap(), -1);
        assert!(parse_size("lots").is_err());
    }
}
