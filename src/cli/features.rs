use anyhow::{bail, Result};
use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct FeaturesArgs {
    pub id: Option<String>,
}

pub fn run(_g: &Global, _a: FeaturesArgs) -> Result<i32> {
    bail!("features: in progress")
}
