use anyhow::{bail, Result};
use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct ListArgs {
    pub id: Option<String>,
}

pub fn run(_g: &Global, _a: ListArgs) -> Result<i32> {
    bail!("list: in progress")
}
