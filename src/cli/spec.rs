//! `berth spec`: write a starter config.json into the bundle directory.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Bundle directory to write config.json into.
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Make a spec for a rootless container (user namespace mapping the caller to root).
    #[arg(long)]
    pub rootless: bool,
}

pub fn run(_g: &Global, a: SpecArgs) -> Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        bail!("spec: {} already exists; remove it first", path.display());
    }
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let spec =
        crate::spec::template::default_spec_json(a.rootless, uid, gid, crate::cgroups::unified());
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text + "\n")
        .with_context(|| format!("spec: writing {}", path.display()))?;
    Ok(0)
}
