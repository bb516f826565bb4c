use anyhow::{bail, Result};
use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct RunArgs {
    pub id: Option<String>,
}

pub fn run(_g: &Global, _a: RunArgs) -> Result<i32> {
    bail!("run: in progress")
}
