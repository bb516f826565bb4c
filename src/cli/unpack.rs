//! `berth unpack [--image] SOURCE[:TAG|@DIGEST] BUNDLE`: the CLI face of src/image/.
//! Rootless mode comes from the global `--rootless` (auto: when not run as root).
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use super::Global;
use crate::image::{self, UnpackOptions};

#[derive(Args, Debug)]
pub struct UnpackArgs {
    /// Image source: OCI layout dir, oci-archive or docker-archive, with :TAG or @DIGEST.
    #[arg(long = "image")]
    pub image_flag: Option<String>,
    /// Pick this platform from a multi-platform image (os/arch[/variant]); default linux/HOST_ARCH.
    #[arg(long)]
    pub platform: Option<String>,
    /// Layer store keyed by diff_id: each layer is extracted once; the rootfs is copied from it
    /// (or composed with --overlay).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Compose BUNDLE/rootfs from the cached layers with an overlayfs mount (`umount BUNDLE/rootfs`
    /// before removing the bundle).
    #[arg(long)]
    pub overlay: bool,
    /// Unpack without root (ownership kept as user.rootlesscontainers xattrs) and write a
    /// rootless config.json; also implied by the global `--rootless` (auto when not root).
    #[arg(long)]
    pub rootless: bool,
    /// Print a JSON summary (layers, bytes, entries, time) on stdout.
    #[arg(long)]
    pub json: bool,
    /// Refuse a layer whose uncompressed size exceeds this many bytes (suffixes K, M, G).
    #[arg(long = "max-layer-size", value_parser = parse_size)]
    pub max_layer_size: Option<u64>,
    /// SOURCE BUNDLE, or just BUNDLE when --image gives the source.
    pub args: Vec<String>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .map(|n| n.saturating_mul(mult))
        .map_err(|e| format!("{s:?}: {e}"))
}

pub fn run(g: &Global, a: UnpackArgs) -> Result<i32> {
    let (source, bundle) = match (a.image_flag, a.args.as_slice()) {
        (Some(img), [bundle]) => (img, bundle.clone()),
        (None, [img, bundle]) => (img.clone(), bundle.clone()),
        _ => bail!("usage: berth unpack [--image] SOURCE[:TAG|@DIGEST] BUNDLE"),
    };
    let opts = UnpackOptions {
        source,
        bundle: PathBuf::from(bundle),
        platform: a.platform,
        rootless: a.rootless || g.is_rootless(),
        cache: a.cache,
        overlay: a.overlay,
        max_layer_bytes: a.max_layer_size.unwrap_or(image::DEFAULT_MAX_LAYER_BYTES),
        progress: !a.json,
    };
    let summary = image::unpack(&opts).map_err(|e| e.context(format!("unpack {}", opts.source)))?;
    if a.json {
        super::output::println(&serde_json::to_string_pretty(&summary)?)?;
    } else if let Some(m) = &summary.rootfs_mount {
        eprintln!("rootfs mounted: {m}");
        eprintln!(
            "run `umount {}` before removing the bundle",
            opts.bundle.join("rootfs").display()
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("1M"), Ok(1 << 20));
        assert_eq!(super::parse_size("10"), Ok(10));
        assert!(super::parse_size("x").is_err());
    }
}
