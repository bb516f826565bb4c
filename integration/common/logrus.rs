//! Lines as logrus writes them (runc's log and stderr, and berth's): text
//! `time="…" level=L msg="…"`, JSON, or a plain message.
use serde_json::Value;

/// How one line of stderr or of the log is written, and what it says.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Line {
    /// logrus text: `time="…" level=L msg="…"`.
    Text {
        level: String,
        msg: String,
    },
    /// logrus JSON: `{"level":L,"msg":…,"time":…}`.
    Json {
        level: String,
        msg: String,
    },
    Plain(String),
}

impl Line {
    pub fn parse(line: &str) -> Line {
        if let Ok(v) = serde_json::from_str::<Value>(line) {
            if v.get("time").is_some() {
                return Line::Json {
                    level: v["level"].as_str().unwrap().to_string(),
                    msg: v["msg"].as_str().unwrap().to_string(),
                };
            }
        }
        match logfmt(line) {
            Some(kv) if kv.first().is_some_and(|(k, _)| k == "time") => {
                let get = |key: &str| {
                    kv.iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                Line::Text {
                    level: get("level"),
                    msg: get("msg"),
                }
            }
            _ => Line::Plain(line.to_string()),
        }
    }

    /// The form without the words (runc's and berth's messages differ in detail).
    pub fn form(&self) -> String {
        match self {
            Line::Text { level, .. } => format!("text level={level}"),
            Line::Json { level, .. } => format!("json level={level}"),
            Line::Plain(_) => "plain".into(),
        }
    }

    pub fn msg(&self) -> &str {
        match self {
            Line::Text { msg, .. } | Line::Json { msg, .. } => msg,
            Line::Plain(m) => m,
        }
    }
}

/// `key=value` pairs as logrus' text formatter writes them: a value bare, or quoted with
/// Go's escapes. None when the line is not of that form.
pub fn logfmt(line: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        let (value, after) = if let Some(q) = after.strip_prefix('"') {
            go_unquote(q)?
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.push((key.to_string(), value));
        rest = after.strip_prefix(' ').unwrap_or(after);
        if !after.is_empty() && !after.starts_with(' ') {
            return None;
        }
    }
    Some(out)
}

/// Undo Go's `%q` up to the closing quote; returns the value and what follows the quote.
fn go_unquote(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut it = s.char_indices();
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => {
                let (_, e) = it.next()?;
                let hex = |it: &mut std::str::CharIndices, n: usize| -> Option<char> {
                    let digits: String = (0..n).filter_map(|_| it.next().map(|(_, c)| c)).collect();
                    char::from_u32(u32::from_str_radix(&digits, 16).ok()?)
                };
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'a' => '\x07',
                    'b' => '\x08',
                    'f' => '\x0c',
                    'v' => '\x0b',
                    'x' => hex(&mut it, 2)?,
                    'u' => hex(&mut it, 4)?,
                    'U' => hex(&mut it, 8)?,
                    c => c,
                });
            }
            c => out.push(c),
        }
    }
    None
}

/// Stderr with each logrus line (text or JSON) reduced to its message, for tests that
/// check what an error says; how it is written is compat_cli's subject.
pub fn messages(stderr: &[u8]) -> String {
    let mut out = String::new();
    for l in String::from_utf8_lossy(stderr).lines() {
        out.push_str(Line::parse(l).msg());
        out.push('\n');
    }
    out
}
