use anyhow::{bail, Result};
use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct KillArgs {
    pub id: Option<String>,
}

pub fn run(_g: &Global, _a: KillArgs) -> Result<i32> {
    bail!("kill: in progress")
}
