//! `berth ps [-f table|json] ID [PS_ARGS...]`: the container's processes. json: an array of
//! pids; table: the host's `ps` output (default `-ef`) reduced to the container's rows.
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::Global;
use crate::container::Container;

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum Format {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    pub id: String,
    /// Options for ps(1) (table format only).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(g: &Global, a: PsArgs) -> Result<i32> {
    let ctx = || format!("ps {}", a.id);
    let c = Container::load(&g.root, &a.id).with_context(ctx)?;
    let pids = c.pids().with_context(ctx)?;
    match a.format {
        Format::Json => {
            if !a.ps_args.is_empty() {
                bail!("ps {}: ps options go with the table format only", a.id);
            }
            super::output::println(&serde_json::to_string(&pids)?)?;
        }
        Format::Table => super::output::print(&table(&pids, &a.ps_args).with_context(ctx)?)?,
    }
    Ok(0)
}

fn table(pids: &[i32], args: &[String]) -> Result<String> {
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("running ps(1)")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    let mut result = format!("{header}\n");
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            result.push_str(l);
            result.push('\n');
        }
    }
    Ok(result)
}
