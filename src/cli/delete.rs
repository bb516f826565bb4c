use anyhow::{bail, Result};
use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct DeleteArgs {
    pub id: Option<String>,
}

pub fn run(_g: &Global, _a: DeleteArgs) -> Result<i32> {
    bail!("delete: in progress")
}
