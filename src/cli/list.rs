//! `berth list [-f table|json] [-q]`.
use anyhow::Result;
use clap::{Args, ValueEnum};

use super::Global;
use crate::container::{state, Container};

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
    let mut states = Vec::new();
    for id in state::list_ids(&g.root)? {
        match Container::load(&g.root, &id) {
            Ok(c) => states.push(c.oci_state()),
            Err(e) => tracing::warn!("list: skipping {id}: {e:#}"),
        }
    }
    if a.quiet {
        for s in &states {
            println!("{}", s["id"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    match a.format {
        Format::Json => println!("{}", serde_json::to_string(&states)?),
        Format::Table => print!("{}", table(&states)),
    }
    Ok(0)
}

/// runc's table: columns padded to the widest cell plus 3, at least 12.
fn table(states: &[serde_json::Value]) -> String {
    let head = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
    let mut rows = vec![head.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    for s in states {
        let str_of = |k: &str| s[k].as_str().unwrap_or_default().to_string();
        rows.push(vec![
            str_of("id"),
            s["pid"].to_string(),
            str_of("status"),
            str_of("bundle"),
            str_of("created"),
            if str_of("owner").is_empty() {
                "root".into()
            } else {
                str_of("owner")
            },
        ]);
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
                .saturating_add(3)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}
