//! `berth list [-f table|json] [-q]`, as runc prints it: the table through Go's tabwriter
//! (minimum width 12, padding 3), the JSON as Go's encoder writes runc's `containerState`
//! list (`null` for none). The owner is the state directory's owner, by name from
//! /etc/passwd, else `#UID`.
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::Global;
use crate::container::state::{self, go_json_escape, OciState};
use crate::container::Container;

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum Format {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print only the ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

pub fn run(g: &Global, a: ListArgs) -> Result<i32> {
    // As runc: a missing default root means no container yet; a missing --root is an error.
    if !g.root.exists() && g.root != super::default_root() {
        bail!("open {}: no such file or directory", g.root.display());
    }
    let mut states = Vec::new();
    for id in state::list_ids(&g.root)? {
        match Container::load(&g.root, &id) {
            Ok(c) => {
                let mut s = c.oci_state();
                s.owner = owner_of(&c.dir);
                states.push(s);
            }
            // runc writes this line to stderr itself (not through its logger) and goes on.
            Err(e) => eprintln!("load container {id}: {e:#}"),
        }
    }
    if a.quiet {
        for s in &states {
            super::output::println(&s.id)?;
        }
        return Ok(0);
    }
    match a.format {
        // Go encodes an empty (nil) slice as null.
        Format::Json if states.is_empty() => super::output::println("null")?,
        Format::Json => super::output::println(&go_json_escape(&serde_json::to_string(&states)?))?,
        Format::Table => super::output::print(&table(&states))?,
    }
    Ok(0)
}

/// The owner of a container's state directory: its user name, or `#UID` without one.
fn owner_of(dir: &Path) -> String {
    let Ok(uid) = std::fs::metadata(dir).map(|m| m.uid()) else {
        return String::new();
    };
    let name = std::fs::read_to_string("/etc/passwd")
        .context("reading /etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 3 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
            })
        });
    name.unwrap_or_else(|| format!("#{uid}"))
}

/// The table as Go's tabwriter lays out runc's: each column as wide as its widest cell plus
/// 3, at least 12 (counted in characters); the last cell of a line is not padded.
fn table(states: &[OciState]) -> String {
    let head = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
    let mut rows = vec![head.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    for s in states {
        rows.push(vec![
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.display().to_string(),
            s.created.clone(),
            s.owner.clone(),
        ]);
    }
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count() + 3)
            .max()
            .unwrap_or(0)
            .max(12)
    };
    let widths: Vec<usize> = (0..head.len()).map(width).collect();
    let mut out = String::new();
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < r.len() {
                let pad = widths[i] - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(id: &str, bundle: &str) -> OciState {
        OciState {
            oci_version: "1.0.2".into(),
            id: id.into(),
            pid: 42,
            status: state::Status::Running,
            bundle: bundle.into(),
            rootfs: "/r".into(),
            created: "2026-12-02T00:43:41.4325Z".into(),
            annotations: Default::default(),
            owner: "root".into(),
        }
    }

    #[test]
    fn table_as_go_tabwriter() {
        let t = table(&[st("a", "/b"), st("a-much-longer-id", "/bündle")]);
        let want = "\
ID                 PID         STATUS      BUNDLE      CREATED                     OWNER
a                  42          running     /b          2026-12-02T00:43:41.4325Z   root
a-much-longer-id   42          running     /bündle     2026-12-02T00:43:41.4325Z   root
";
        assert_eq!(t, want);
    }

    #[test]
    fn go_time_and_escapes() {
        use chrono::TimeZone;
        let t = chrono::Utc
            .timestamp_opt(1_764_636_221, 430_000_000)
            .unwrap();
        assert_eq!(state::rfc3339_nano(t), "2025-12-02T00:43:41.43Z");
        let t = chrono::Utc.timestamp_opt(1_764_636_221, 0).unwrap();
        assert_eq!(state::rfc3339_nano(t), "2025-12-02T00:43:41Z");
        assert_eq!(
            go_json_escape(r#"{"a":"<&>"}"#),
            r#"{"a":"\u003c\u0026\u003e"}"#
        );
    }
}
