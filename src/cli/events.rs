//! `berth events [--stats] [--interval 5s] ID`: the container's resource usage as runc prints
//! it, one JSON object a line: `{"type":"stats","id":…,"data":{…}}`, and `{"type":"oom",…}`
//! whenever the OOM killer strikes. With --stats, one stats object and exit; otherwise a
//! stream until the container stops.
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;

use super::Global;
use crate::container::{Container, Status};

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print the current stats once and exit.
    #[arg(long)]
    pub stats: bool,
    /// Time between stats events (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    pub interval: Duration,
    pub id: String,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: not a duration like 5s"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => return Err(format!("{s:?}: unit must be ms, s or m")),
    };
    if d.is_zero() {
        return Err("the interval must be positive".into());
    }
    Ok(d)
}

pub fn run(g: &Global, a: EventsArgs) -> Result<i32> {
    let ctx = || format!("events {}", a.id);
    let c = Container::load(&g.root, &a.id).with_context(ctx)?;
    if c.status() == Status::Stopped {
        bail!("events {}: the container is stopped", a.id);
    }
    let cg = c.cgroup().with_context(ctx)?;
    let (id, pid, started) = (c.record.id.clone(), c.record.pid, c.record.init_start_time);
    drop(c); // do not hold the lock while streaming
    let mut out = std::io::stdout().lock();
    let stats = |out: &mut dyn Write| -> Result<()> {
        let data = cg.stats()?;
        writeln!(out, "{}", json!({"type": "stats", "id": id, "data": data}))?;
        out.flush()?;
        Ok(())
    };
    if a.stats {
        stats(&mut out).with_context(ctx)?;
        return Ok(0);
    }
    let mut ooms = cg.oom_kills().with_context(ctx)?;
    let mut next = Instant::now();
    // The stream ends when the init exits or the container is deleted.
    let state_file = g.root.join(&id).join("state.json");
    while crate::container::state::init_alive(pid, started) && state_file.exists() {
        if Instant::now() >= next {
            stats(&mut out).with_context(ctx)?;
            next += a.interval;
        }
        let now = cg.oom_kills().unwrap_or(ooms);
        if now > ooms {
            writeln!(out, "{}", json!({"type": "oom", "id": id}))?;
            out.flush()?;
            ooms = now;
        }
        std::thread::sleep(Duration::from_millis(100).min(a.interval));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_interval("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("5h").is_err());
    }
}
