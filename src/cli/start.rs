use anyhow::{bail, Result};
use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct StartArgs {
    pub id: Option<String>,
}

pub fn run(_g: &Global, _a: StartArgs) -> Result<i32> {
    bail!("start: in progress")
}
