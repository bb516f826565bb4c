use anyhow::{bail, Result};
use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct StateArgs {
    pub id: Option<String>,
}

pub fn run(_g: &Global, _a: StateArgs) -> Result<i32> {
    bail!("state: in progress")
}
