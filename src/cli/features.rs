//! `berth features`: the runtime-spec features document (see crate::features), plus
//! `org.opencontainers.berth.checkpoint.enabled` when criu is found and passes its own check
//! on this kernel (runc lists checkpoint unconditionally; we list it only where it works).
use anyhow::Result;
use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct FeaturesArgs {}

/// The annotation naming checkpoint/restore support.
pub const CHECKPOINT_ANNOTATION: &str = "org.opencontainers.berth.checkpoint.enabled";

pub fn run(g: &Global, _a: FeaturesArgs) -> Result<i32> {
    let mut doc = crate::features::features();
    if criu_works(g) {
        doc["annotations"][CHECKPOINT_ANNOTATION] = "true".into();
    }
    super::output::println(&serde_json::to_string_pretty(&doc)?)?;
    Ok(0)
}

fn criu_works(g: &Global) -> bool {
    let Ok(criu) = crate::criu::Criu::find(&g.criu) else {
        return false;
    };
    match criu.require(0, "checkpoint").and_then(|_| criu.check()) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!("features: no checkpoint: {e:#}");
            false
        }
    }
}
