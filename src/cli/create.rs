use anyhow::{bail, Result};
use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub id: Option<String>,
}

pub fn run(_g: &Global, _a: CreateArgs) -> Result<i32> {
    bail!("create: in progress")
}
