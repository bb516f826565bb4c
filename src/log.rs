//! runc-compatible log lines through `tracing`.
//!
//! `--log-format json`: `{"level":"error","msg":"…","time":"2026-11-23T17:29:00Z"}` (logrus'
//! JSON formatter: lower-case level, key `msg`). Text: `time="…" level=error msg="…"`.
//! Engines (containerd's go-runc) show the last `error` line of the log file to the user.
//! Writes are synchronous and unbuffered: the runtime is single-threaded until clone, and a
//! line must be on disk before the process exits.
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::Layer;

/// `--log-format`: logrus text or JSON lines.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

enum Sink {
    File(File),
    Stderr,
}

struct RuncLayer {
    sink: Mutex<Sink>,
    format: LogFormat,
    max: Level,
}

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={}", field.name(), value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={:?}", field.name(), value);
        }
    }
}

/// Format one log line (without the newline).
pub fn format_line(format: LogFormat, level: &Level, msg: &str, time: &str) -> String {
    let level = level.as_str().to_ascii_lowercase();
    // logrus calls warnings "warning".
    let level = if level == "warn" {
        "warning".to_string()
    } else {
        level
    };
    match format {
        LogFormat::Json => {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        }
        LogFormat::Text => format!(
            "time={} level={} msg={}",
            serde_json::Value::from(time),
            level,
            serde_json::Value::from(msg)
        ),
    }
}

fn now() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl<S: Subscriber> Layer<S> for RuncLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        let level = event.metadata().level();
        if *level > self.max {
            return;
        }
        let mut msg = Message::default();
        event.record(&mut msg);
        let mut line = format_line(self.format, level, &msg.0, &now());
        line.push('\n');
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let _ = match &mut *sink {
            Sink::File(f) => f.write_all(line.as_bytes()),
            Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
        };
    }
}

/// Install the global logger. With no `--log` file, lines go to stderr.
/// The `--log` file's fd (-1: none), which a child of the runtime keeps open (close-on-exec)
/// while it runs runtime code.
static LOG_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// The `--log` file's fd, if logging goes to a file.
pub fn file_fd() -> Option<std::os::fd::RawFd> {
    let fd = LOG_FD.load(std::sync::atomic::Ordering::Relaxed);
    (fd >= 0).then_some(fd)
}

pub fn init(path: Option<&Path>, format: LogFormat, debug: bool) -> Result<()> {
    let sink = match path {
        Some(p) => {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening log file {}", p.display()))?;
            use std::os::fd::AsRawFd;
            LOG_FD.store(f.as_raw_fd(), std::sync::atomic::Ordering::Relaxed);
            Sink::File(f)
        }
        None => Sink::Stderr,
    };
    let max = if debug { Level::DEBUG } else { Level::WARN };
    let layer = RuncLayer {
        sink: Mutex::new(sink),
        format,
        max,
    };
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::set_global_default(subscriber).context("installing the logger")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_logrus_keys() {
        let l = format_line(LogFormat::Json, &Level::ERROR, "boom \"x\"", "T");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert_eq!(v["time"], "T");
    }

    #[test]
    fn text_line_quotes() {
        let l = format_line(LogFormat::Text, &Level::WARN, "a b", "T");
        assert_eq!(l, "time=\"T\" level=warning msg=\"a b\"");
    }
}
