//! The layer cache and the overlay rootfs.
//!
//! `DIR/sha256/<diff_id hex>/` holds one layer extracted once, in overlayfs form (whiteouts
//! are 0:0 char devices, opaque dirs carry `trusted.overlay.opaque=y`). A layer is extracted
//! into `DIR/tmp/` and renamed into place only after its digest and diff_id were verified, so
//! the store never holds a partial or unverified layer. Without `--overlay` the flattened
//! rootfs is copied from the store ([`super::apply::Applier::apply_dir_layer`]). With it, the rootfs is an overlay mount
//! at `BUNDLE/rootfs`: the cached layers as lower dirs (top layer first), and a fresh
//! `BUNDLE/overlay/{upper,work}` per bundle, so bundles of one image share the disk and never
//! see each other's writes. Run `umount BUNDLE/rootfs` before removing such a bundle.
use std::collections::HashSet;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::digest::Digest;
use super::source::{Image, Layer};
use super::{apply, open_dir, Summary};

/// The kernel copies mount data into one page.
const MAX_MOUNT_DATA: usize = 4000;

pub struct Cache {
    dir: PathBuf,
}

fn mkdir(p: &Path, mode: u32) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(p)
        .with_context(|| format!("creating {}", p.display()))
}

impl Cache {
    /// Open (creating it, 0700) the layer store at `dir`.
    pub fn open(dir: &Path) -> Result<Cache> {
        mkdir(&dir.join("sha256"), 0o700)?;
        mkdir(&dir.join("tmp"), 0o700)?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("resolving {}", dir.display()))?;
        Ok(Cache { dir })
    }

    /// Where the layer with this diff_id lives.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join("sha256").join(diff_id.hex())
    }

    /// Extract the layers the store lacks (verified, then renamed into place).
    pub fn fill(
        &self,
        image: &Image,
        max: u64,
        bar: Option<indicatif::ProgressBar>,
        summary: &mut Summary,
    ) -> Result<()> {
        let mut seen = HashSet::new();
        let missing: Vec<Layer> = image
            .layers
            .iter()
            .filter(|l| !self.layer_dir(&l.diff_id).is_dir() && seen.insert(l.diff_id.clone()))
            .cloned()
            .collect();
        summary.cached_layers = image.layers.len() - missing.len();
        if missing.is_empty() {
            return Ok(());
        }
        let tmps: Vec<PathBuf> = missing
            .iter()
            .map(|l| {
                self.dir
                    .join("tmp")
                    .join(format!("{}.{}", l.diff_id.hex(), std::process::id()))
            })
            .collect();
        for t in &tmps {
            if t.exists() {
                std::fs::remove_dir_all(t)
                    .with_context(|| format!("removing stale {}", t.display()))?;
            }
            mkdir(t, 0o755)?;
        }
        // Each image layer's directory (cached, or being extracted now), to resolve names
        // through the layers below the one being extracted.
        let dir_of = |l: &Layer| match missing.iter().position(|m| m.diff_id == l.diff_id) {
            Some(k) => tmps[k].clone(),
            None => self.layer_dir(&l.diff_id),
        };
        let mut targets = Vec::new();
        for (k, m) in missing.iter().enumerate() {
            let pos = image
                .layers
                .iter()
                .position(|l| l.diff_id == m.diff_id)
                .unwrap_or(0);
            let mut lowers = Vec::new();
            for l in image.layers[..pos].iter().rev() {
                lowers.push(open_dir(&dir_of(l))?);
            }
            let opts = apply::ApplyOptions {
                rootless: false,
                overlay: true,
            };
            targets.push(apply::Applier::new(open_dir(&tmps[k])?, opts).with_lowers(lowers));
        }
        let result = super::apply_layers(image, missing.clone(), targets, max, bar, summary, |i| {
            let dst = self.layer_dir(&missing[i].diff_id);
            match std::fs::rename(&tmps[i], &dst) {
                Ok(()) => Ok(()),
                // Another unpack stored it first: theirs is as good as ours.
                Err(_) if dst.is_dir() => std::fs::remove_dir_all(&tmps[i])
                    .with_context(|| format!("removing {}", tmps[i].display())),
                Err(e) => Err(e).with_context(|| format!("storing layer in {}", dst.display())),
            }
        });
        if result.is_err() {
            for t in &tmps {
                let _ = std::fs::remove_dir_all(t);
            }
        }
        result
    }

    /// Fill the store, then mount the overlay rootfs at `bundle/rootfs`. Returns the mount as a
    /// mount(8) command line.
    pub fn compose(
        &self,
        image: &Image,
        bundle: &Path,
        max: u64,
        bar: Option<indicatif::ProgressBar>,
        summary: &mut Summary,
    ) -> Result<String> {
        self.fill(image, max, bar, summary)?;
        let bundle = bundle
            .canonicalize()
            .with_context(|| format!("resolving {}", bundle.display()))?;
        let (upper, work, rootfs) = (
            bundle.join("overlay/upper"),
            bundle.join("overlay/work"),
            bundle.join("rootfs"),
        );
        for d in [&upper, &work] {
            mkdir(d, 0o755)?;
        }
        mkdir(&rootfs, 0o755)?;
        // The merged root shows the upper dir's attributes: give it the top layer's.
        if let Some(top) = image.layers.last() {
            let st =
                std::fs::metadata(self.layer_dir(&top.diff_id)).context("stat the top layer")?;
            std::os::unix::fs::chown(&upper, Some(st.uid()), Some(st.gid()))
                .with_context(|| format!("chown {}", upper.display()))?;
            std::fs::set_permissions(&upper, st.permissions())
                .with_context(|| format!("chmod {}", upper.display()))?;
        }
        let lower: Vec<String> = image
            .layers
            .iter()
            .rev()
            .map(|l| self.layer_dir(&l.diff_id).display().to_string())
            .collect();
        if lower.is_empty() {
            bail!("the image has no layers to compose");
        }
        for p in lower
            .iter()
            .map(String::as_str)
            .chain([upper.to_str().unwrap_or(","), work.to_str().unwrap_or(",")])
        {
            if p.contains([':', ',', '\\']) {
                bail!("overlay path {p:?} contains ':', ',' or '\\', which overlayfs options cannot carry");
            }
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            upper.display(),
            work.display()
        );
        if data.len() > MAX_MOUNT_DATA {
            bail!("overlay mount options are {} bytes (over {MAX_MOUNT_DATA}): too many layers or a long cache path", data.len());
        }
        let cdata = std::ffi::CString::new(data.clone()).context("overlay mount options")?;
        rustix::mount::mount(
            "overlay",
            &rootfs,
            "overlay",
            rustix::mount::MountFlags::empty(),
            cdata.as_c_str(),
        )
        .with_context(|| format!("mounting overlay at {} ({data})", rootfs.display()))?;
        Ok(format!(
            "mount -t overlay overlay -o {data} {}",
            rootfs.display()
        ))
    }
}
