//! `berth start ID`: let a created container's program run.
use anyhow::{Context, Result};
use clap::Args;

use super::Global;
use crate::container::{start, Container};

#[derive(Args, Debug)]
pub struct StartArgs {
    pub id: String,
}

pub fn run(g: &Global, a: StartArgs) -> Result<i32> {
    let c = Container::load(&g.root, &a.id).with_context(|| format!("start {}", a.id))?;
    start::start(&c).with_context(|| format!("start {}", a.id))?;
    Ok(0)
}
