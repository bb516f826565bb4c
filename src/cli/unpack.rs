//! `berth unpack`: owned by the image builder (src/image/).
use anyhow::{bail, Result};
use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct UnpackArgs {
    /// Image source: OCI layout dir, oci-archive or docker-archive, with :TAG or @DIGEST.
    #[arg(long = "image")]
    pub image_flag: Option<String>,
    pub args: Vec<String>,
}

pub fn run(_g: &Global, _a: UnpackArgs) -> Result<i32> {
    bail!("unpack: being built in the image branch")
}
