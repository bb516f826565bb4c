//! `berth kill [--all] ID [SIGNAL]`.
use anyhow::{Context, Result};
use clap::Args;

use super::Global;
use crate::container::{kill, Container};

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal every process in the container, not only its init.
    #[arg(short = 'a', long)]
    pub all: bool,
    pub id: String,
    /// TERM, SIGTERM or 15.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

pub fn run(g: &Global, a: KillArgs) -> Result<i32> {
    let ctx = || format!("kill {}", a.id);
    if a.signal.trim_start_matches('0').is_empty() {
        // Signal 0, as kill(2): only check that the container is alive.
        let c = Container::load(&g.root, &a.id).with_context(ctx)?;
        kill::check_alive(&c).with_context(ctx)?;
        return Ok(0);
    }
    let sig = kill::parse_signal(&a.signal).with_context(ctx)?;
    let c = Container::load(&g.root, &a.id).with_context(ctx)?;
    kill::kill(&c, sig, a.all).with_context(ctx)?;
    Ok(0)
}
