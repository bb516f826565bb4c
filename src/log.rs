//! runc-compatible log lines through `tracing`, formatted as logrus formats them.
//!
//! `--log-format json`: `{"level":"error","msg":"…","time":"2026-11-23T17:29:00Z"}` (logrus'
//! JSON formatter: keys sorted, lower-case level, key `msg`, `<>&` escaped as Go escapes
//! them). Text: `time="…" level=error msg="…"`, a value quoted (Go's `%q`) only when it
//! holds more than letters, digits and `-._/@^+`, as logrus' text formatter does.
//! Structured fields follow `msg`, sorted by name. With `--debug` every line also names
//! where it was logged (`func=` and `file=`), as runc's debug lines do.
//!
//! Where the lines go is runc's rule: to the `--log` file when one is given, otherwise to
//! stderr. An error that ends the command is logged the same way, and with `--log` it is
//! also printed plain on stderr (`fatal`).
//!
//! Engines (containerd's go-runc) show the last `error` line of the log file to the user.
//! Writes are synchronous and unbuffered: the runtime is single-threaded until clone, and a
//! line must be on disk before the process exits. Levels below the one asked for are
//! filtered by tracing's global level hint, so a disabled `debug!` costs one comparison.
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
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
    /// `--debug`: name the caller on every line.
    caller: bool,
    /// Text lines to a terminal: logrus' coloured form (`colored_line`).
    tty: bool,
}

/// When the runtime started, for the seconds of logrus' coloured form.
static START: OnceLock<std::time::Instant> = OnceLock::new();

/// Whether stderr is a terminal.
fn stderr_is_tty() -> bool {
    nix::unistd::isatty(2).unwrap_or(false)
}

/// One line's content: the message and its fields, in the order given.
#[derive(Default)]
pub struct Entry {
    pub msg: String,
    pub fields: Vec<(&'static str, String)>,
    /// (function, file:line), with --debug.
    pub caller: Option<(String, String)>,
}

impl Visit for Entry {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg.push_str(value);
        } else {
            self.fields.push((field.name(), value.to_string()));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.msg, "{value:?}");
        } else {
            self.fields.push((field.name(), format!("{value:?}")));
        }
    }
}

/// logrus' name for a level.
fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// Format one log line (without the newline).
pub fn format_line(format: LogFormat, level: &Level, e: &Entry, time: &str) -> String {
    let level = level_name(level);
    match format {
        LogFormat::Json => {
            let mut m = serde_json::Map::new();
            for (k, v) in &e.fields {
                m.insert((*k).to_string(), serde_json::Value::from(v.as_str()));
            }
            if let Some((func, file)) = &e.caller {
                m.insert("func".into(), func.as_str().into());
                m.insert("file".into(), file.as_str().into());
            }
            m.insert("level".into(), level.into());
            m.insert("msg".into(), e.msg.as_str().into());
            m.insert("time".into(), time.into());
            // serde_json's map is ordered by key, as Go's encoding of logrus' map is.
            escape_html(&serde_json::Value::Object(m).to_string())
        }
        LogFormat::Text => {
            let mut s = String::with_capacity(e.msg.len() + 64);
            let _ = write!(s, "time={} level={level}", logrus_value(time));
            if !e.msg.is_empty() {
                let _ = write!(s, " msg={}", logrus_value(&e.msg));
            }
            if let Some((func, file)) = &e.caller {
                let func = format!("{func}()");
                let _ = write!(
                    s,
                    " func={} file={}",
                    logrus_value(&func),
                    logrus_value(file)
                );
            }
            let mut fields: Vec<_> = e.fields.iter().collect();
            fields.sort_by_key(|(k, _)| *k);
            for (k, v) in fields {
                let _ = write!(s, " {k}={}", logrus_value(v));
            }
            s
        }
    }
}

/// A line as logrus' text formatter writes it to a terminal, in colour:
/// `ERRO[0000] message<padded to 44>  key=value`, the seconds counted from the start, the
/// caller (with --debug) after them.
pub fn colored_line(level: &Level, e: &Entry, secs: u64) -> String {
    let (text, color) = match *level {
        Level::ERROR => ("ERRO", 31),
        Level::WARN => ("WARN", 33),
        Level::INFO => ("INFO", 36),
        Level::DEBUG => ("DEBU", 37),
        Level::TRACE => ("TRAC", 37),
    };
    let caller = e
        .caller
        .as_ref()
        .map(|(func, file)| format!("{file} {func}()"))
        .unwrap_or_default();
    let msg = e.msg.strip_suffix('\n').unwrap_or(&e.msg);
    let mut s = format!("\x1b[{color}m{text}\x1b[0m[{secs:04}]{caller} {msg:<44} ");
    let mut fields: Vec<_> = e.fields.iter().collect();
    fields.sort_by_key(|(k, _)| *k);
    for (k, v) in fields {
        let _ = write!(s, " \x1b[{color}m{k}\x1b[0m={}", logrus_value(v));
    }
    s
}

/// A value as logrus' text formatter writes it: bare when it is made of letters, digits
/// and `-._/@^+` only, otherwise quoted as Go's `%q` quotes it.
fn logrus_value(v: &str) -> std::borrow::Cow<'_, str> {
    let bare = |c: char| c.is_ascii_alphanumeric() || "-._/@^+".contains(c);
    if !v.is_empty() && v.chars().all(bare) {
        v.into()
    } else {
        go_quote(v).into()
    }
}

/// Go's `strconv.Quote` for valid UTF-8: `\"` and `\\`, the C escapes for the control
/// characters that have one, `\xNN` for the other ASCII controls, `\uNNNN` for other
/// characters that are not printable.
pub fn go_quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\x07' => s.push_str("\\a"),
            '\x08' => s.push_str("\\b"),
            '\x0c' => s.push_str("\\f"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            '\x0b' => s.push_str("\\v"),
            c if c.is_ascii_control() => {
                let _ = write!(s, "\\x{:02x}", c as u32);
            }
            c if c.is_control() || c == '\u{feff}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// An errno as Go's syscall package words it (`operation not permitted`): tools match
/// runc's messages, which carry Go's lower-case texts.
pub fn go_errno_text(errno: i32) -> String {
    let desc = nix::errno::Errno::from_raw(errno).desc();
    let mut c = desc.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Go's JSON encoder (as logrus uses it) escapes `<`, `>` and `&`, and U+2028/U+2029.
/// serde_json writes them as they are; outside strings a JSON document holds none of them.
fn escape_html(json: &str) -> String {
    if !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json.to_string();
    }
    let mut s = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => s.push_str("\\u003c"),
            '>' => s.push_str("\\u003e"),
            '&' => s.push_str("\\u0026"),
            '\u{2028}' => s.push_str("\\u2028"),
            '\u{2029}' => s.push_str("\\u2029"),
            c => s.push(c),
        }
    }
    s
}

/// Whole seconds since the runtime started (logrus counts from its own start).
fn elapsed() -> u64 {
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs()
}

fn now() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Where a line was logged, as runc's debug lines say it: the function (here the module
/// path; the text format adds `()`) and `file:line`.
fn caller(meta: &Metadata<'_>) -> (String, String) {
    let func = meta.module_path().unwrap_or(meta.target()).to_string();
    let file = format!(
        "{}:{}",
        meta.file().unwrap_or("?"),
        meta.line().unwrap_or(0)
    );
    (func, file)
}

impl RuncLayer {
    fn write(&self, line: &str) {
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let _ = match &mut *sink {
            Sink::File(f) => f.write_all(line.as_bytes()),
            Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
        };
    }
}

impl<S: Subscriber> Layer<S> for RuncLayer {
    fn enabled(&self, meta: &Metadata<'_>, _ctx: LayerContext<'_, S>) -> bool {
        *meta.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(self.max.into())
    }

    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        let meta = event.metadata();
        let mut entry = Entry::default();
        event.record(&mut entry);
        if self.caller {
            entry.caller = Some(caller(meta));
        }
        let mut line = if self.tty {
            colored_line(meta.level(), &entry, elapsed())
        } else {
            format_line(self.format, meta.level(), &entry, &now())
        };
        line.push('\n');
        self.write(&line);
    }
}

/// The `--log` file's fd (-1: none), which a child of the runtime keeps open (close-on-exec)
/// while it runs runtime code.
static LOG_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// The `--log` file's fd, if logging goes to a file.
pub fn file_fd() -> Option<std::os::fd::RawFd> {
    let fd = LOG_FD.load(std::sync::atomic::Ordering::Relaxed);
    (fd >= 0).then_some(fd)
}

/// Install the global logger. With no `--log` file, lines go to stderr.
pub fn init(path: Option<&Path>, format: LogFormat, debug: bool) -> Result<()> {
    START.get_or_init(std::time::Instant::now);
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
        caller: debug,
        tty: path.is_none() && format == LogFormat::Text && stderr_is_tty(),
    };
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::set_global_default(subscriber).context("installing the logger")?;
    Ok(())
}

/// Report the error that ends the command, as runc's `fatal` does: an `error` line in the
/// log (the `--log` file, or stderr), and with a `--log` file the plain message on stderr
/// as well. Before the logger is installed (a bad `--log` path, a bad command line), the
/// line goes to stderr in the text format.
pub fn fatal(msg: &str) {
    if tracing::dispatcher::has_been_set() {
        tracing::error!("{msg}");
        if file_fd().is_some() {
            eprintln!("{msg}");
        }
    } else {
        let e = Entry {
            msg: msg.to_string(),
            ..Entry::default()
        };
        let line = if stderr_is_tty() {
            colored_line(&Level::ERROR, &e, elapsed())
        } else {
            format_line(LogFormat::Text, &Level::ERROR, &e, &now())
        };
        eprintln!("{line}");
    }
}

/// The failure of a runtime child whose parent is gone (a startContainer hook failed after
/// `create` returned): an error line in the log it inherited, the create's --log file or
/// stderr.
pub fn orphan_error(msg: &str) {
    if tracing::dispatcher::has_been_set() {
        tracing::error!("{msg}");
    } else {
        eprintln!("berth: {msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(msg: &str) -> Entry {
        Entry {
            msg: msg.to_string(),
            ..Entry::default()
        }
    }

    #[test]
    fn json_line_has_logrus_keys() {
        let l = format_line(LogFormat::Json, &Level::ERROR, &entry("boom \"x\""), "T");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert_eq!(v["time"], "T");
        assert_eq!(l, r#"{"level":"error","msg":"boom \"x\"","time":"T"}"#);
    }

    #[test]
    fn json_escapes_html_as_go() {
        let l = format_line(LogFormat::Json, &Level::WARN, &entry("a<b>&c"), "T");
        assert_eq!(
            l,
            r#"{"level":"warning","msg":"a\u003cb\u003e\u0026c","time":"T"}"#
        );
    }

    #[test]
    fn text_line_quotes_as_logrus() {
        let l = format_line(LogFormat::Text, &Level::WARN, &entry("a b"), "T");
        assert_eq!(l, "time=T level=warning msg=\"a b\"");
        let l = format_line(
            LogFormat::Text,
            &Level::ERROR,
            &entry("plain-word_1.2/x"),
            "T:0",
        );
        assert_eq!(l, "time=\"T:0\" level=error msg=plain-word_1.2/x");
        // Go's %q: escapes, and printable UTF-8 kept.
        assert_eq!(go_quote("a\"b\\c\nd\te\x01é"), r#""a\"b\\c\nd\te\x01é""#);
        assert_eq!(go_quote(""), r#""""#);
    }

    #[test]
    fn colored_as_logrus_on_a_terminal() {
        let e = Entry {
            msg: "container does not exist".into(),
            fields: vec![("pid", "42".into())],
            caller: None,
        };
        assert_eq!(
            colored_line(&Level::ERROR, &e, 0),
            "\x1b[31mERRO\x1b[0m[0000] container does not exist                      \x1b[31mpid\x1b[0m=42"
        );
    }

    #[test]
    fn fields_and_caller_follow_the_message() {
        let e = Entry {
            msg: "process exited".into(),
            fields: vec![("status", "0".into()), ("pid", "42".into())],
            caller: Some(("berth::x".into(), "src/x.rs:1".into())),
        };
        assert_eq!(
            format_line(LogFormat::Text, &Level::DEBUG, &e, "T"),
            "time=T level=debug msg=\"process exited\" func=\"berth::x()\" file=\"src/x.rs:1\" pid=42 status=0"
        );
        assert_eq!(
            format_line(LogFormat::Json, &Level::DEBUG, &e, "T"),
            r#"{"file":"src/x.rs:1","func":"berth::x","level":"debug","msg":"process exited","pid":"42","status":"0","time":"T"}"#
        );
    }
}
