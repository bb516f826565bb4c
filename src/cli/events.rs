//! `berth events [--stats] [--interval 5s] ID`: the container's resource usage as runc prints
//! it, one JSON object a line: `{"type":"stats","id":…,"data":{…}}`, and `{"type":"oom","id":…}`
//! whenever the OOM killer strikes in the container's cgroup. With --stats, one stats object
//! and exit. Otherwise a stream: stats every interval (the first after one interval, as
//! runc's ticker), until the init exits or the container is deleted.
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;

use super::Global;
use crate::cgroups::Stats;
use crate::container::state::go_json_escape;
use crate::container::{Container, Status};

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print the current stats once and exit.
    #[arg(long)]
    pub stats: bool,
    /// Time between stats events, as Go writes a duration (5s, 500ms, 1m30s).
    #[arg(long, default_value = "5s", value_parser = parse_go_duration)]
    pub interval: Duration,
    pub id: String,
}

/// One line of output, runc's `types.Event` (type, id, then data when there is any).
#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Stats>,
}

/// A duration as Go's time.ParseDuration reads it: decimal numbers with a unit each (ns, us,
/// µs, ms, s, m, h), concatenated; a bare "0" is zero.
fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let ns = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("missing unit in duration {s:?}")),
            _ => return Err(format!("unknown unit {unit:?} in duration {s:?}")),
        };
        total += value * ns;
        rest = tail;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(total as u64))
}

pub fn run(g: &Global, a: EventsArgs) -> Result<i32> {
    let ctx = || format!("events {}", a.id);
    if a.interval.is_zero() {
        bail!("duration interval must be greater than 0");
    }
    let c = Container::load(&g.root, &a.id).with_context(ctx)?;
    if c.status() == Status::Stopped {
        bail!("container with id {} is not running", a.id);
    }
    let cg = c.cgroup().with_context(ctx)?;
    let (id, pid, started) = (c.record.id.clone(), c.record.pid, c.record.init_start_time);
    drop(c); // do not hold the lock while streaming
    let emit = |kind: &str, data: Option<Stats>| -> Result<()> {
        let line = serde_json::to_string(&Event {
            kind,
            id: &id,
            data,
        })?;
        super::output::println(&go_json_escape(&line))
    };
    if a.stats {
        let s = cg.stats().with_context(ctx)?;
        emit("stats", Some(s))?;
        return Ok(0);
    }
    let mut ooms = cg.oom_kills().with_context(ctx)?;
    let mut next = Instant::now() + a.interval;
    // The stream ends when the init exits or the container is deleted.
    let state_file = g.root.join(&id).join("state.json");
    let alive = || crate::container::state::init_alive(pid, started) && state_file.exists();
    loop {
        let running = alive();
        // Checked once more after the end: the OOM killer may have ended the init itself.
        let now = cg.oom_kills().unwrap_or(ooms);
        if now > ooms {
            emit("oom", None)?;
            ooms = now;
        }
        if !running {
            break;
        }
        if Instant::now() >= next {
            match cg.stats() {
                Ok(s) => emit("stats", Some(s))?,
                // Gone meanwhile: the loop ends. Otherwise report it and go on, as runc.
                Err(e) if alive() => tracing::error!("events {id}: {e:#}"),
                Err(_) => {}
            }
            next += a.interval;
        }
        std::thread::sleep(Duration::from_millis(100).min(a.interval));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let d = |s| parse_go_duration(s).unwrap();
        assert_eq!(d("5s"), Duration::from_secs(5));
        assert_eq!(d("250ms"), Duration::from_millis(250));
        assert_eq!(d("2m"), Duration::from_secs(120));
        assert_eq!(d("1h"), Duration::from_secs(3600));
        assert_eq!(d("1m30s"), Duration::from_secs(90));
        assert_eq!(d("1.5s"), Duration::from_millis(1500));
        assert_eq!(d("10us"), Duration::from_micros(10));
        assert_eq!(d("0"), Duration::ZERO);
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("5x").is_err());
        assert!(parse_go_duration("").is_err());
    }
}
