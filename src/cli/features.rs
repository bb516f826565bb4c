//! `berth features`: the runtime-spec features document (see spec::features).
use anyhow::Result;
use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct FeaturesArgs {}

pub fn run(_g: &Global, _a: FeaturesArgs) -> Result<i32> {
    println!(
        "{}",
        serde_json::to_string_pretty(&crate::spec::features::features())?
    );
    Ok(0)
}
