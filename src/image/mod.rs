//! The image builder behind `berth unpack`: turns a layered OCI image (layout directory,
//! oci-archive or docker-archive) into a runtime bundle (`config.json` + `rootfs/`).
//!
//! - [`source`] finds the image (tag, digest, platform) and checks manifest and config digests;
//! - [`layer`] streams each layer through digest checks and decompression on a second thread;
//! - [`apply`] writes tar entries under the rootfs through fds (no path ever escapes it);
//! - [`cache`] keeps extracted layers by diff_id and composes a rootfs with overlayfs;
//! - [`config`] turns the image config into `config.json` from `berth spec`'s template.
use std::io::IsTerminal;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rustix::fs::{Mode, OFlags};
use serde::Serialize;

pub mod apply;
pub mod cache;
pub mod config;
pub mod digest;
pub mod layer;
pub mod source;
pub mod tarstream;

/// Default bound on one layer's uncompressed size.
pub const DEFAULT_MAX_LAYER_BYTES: u64 = 64 << 30;

/// What `berth unpack` was asked to do.
#[derive(Clone, Debug)]
pub struct UnpackOptions {
    /// `SOURCE[:TAG|@DIGEST]`.
    pub source: String,
    pub bundle: PathBuf,
    /// `os/arch[/variant]`; default linux/HOST_ARCH.
    pub platform: Option<String>,
    pub rootless: bool,
    /// Layer store (content-addressed by diff_id): layers are extracted into it once, and the
    /// rootfs is copied from it (flattened) or composed from it (`overlay`).
    pub cache: Option<PathBuf>,
    /// Compose the rootfs from cached layers with overlayfs, mounted at BUNDLE/rootfs.
    pub overlay: bool,
    /// Bound on each layer's uncompressed size.
    pub max_layer_bytes: u64,
    /// Draw a progress bar (only when stderr is a terminal).
    pub progress: bool,
}

/// What an unpack did (`--json`).
#[derive(Serialize, Debug, Default)]
pub struct Summary {
    pub bundle: PathBuf,
    pub manifest: Option<String>,
    pub layers: usize,
    /// Layers taken from the cache without extraction.
    pub cached_layers: usize,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
    pub entries: u64,
    /// Entries not reproducible here (rootless: devices, privileged xattrs).
    pub skipped: u64,
    pub seconds: f64,
    /// For `--overlay`: the mount set up at BUNDLE/rootfs (as a mount(8) command line).
    pub rootfs_mount: Option<String>,
}

/// Unpack an image into a bundle. On failure, what this call created is removed.
pub fn unpack(o: &UnpackOptions) -> Result<Summary> {
    // Modes come from the layers, so the umask is cleared while we work and restored after.
    let old = rustix::process::umask(Mode::empty());
    let r = unpack_inner(o);
    rustix::process::umask(old);
    r
}

fn write_config(path: &Path, spec: &serde_json::Value) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all((serde_json::to_string_pretty(spec)? + "\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

fn unpack_inner(o: &UnpackOptions) -> Result<Summary> {
    let start = Instant::now();
    let (path, reference) = source::parse_source(&o.source)?;
    let (platform, given) = match &o.platform {
        Some(p) => (source::Platform::parse(p)?, true),
        None => (source::Platform::host(), false),
    };
    if o.overlay && o.cache.is_none() {
        bail!("--overlay composes the rootfs from cached layers: give --cache DIR");
    }
    if o.cache.is_some() && o.rootless {
        bail!("--cache needs root: cached layers are stored in overlayfs form (0:0 whiteout devices, trusted.overlay.* xattrs); not available with --rootless");
    }
    let image = source::resolve(&path, &reference, &platform, given)
        .with_context(|| format!("reading image {}", o.source))?;
    let mut guard = BundleGuard::create(&o.bundle)?;
    let mut summary = Summary {
        bundle: o.bundle.clone(),
        manifest: image.manifest_digest.as_ref().map(|d| d.to_string()),
        layers: image.layers.len(),
        ..Summary::default()
    };
    let rootfs = o.bundle.join("rootfs");
    let root_fd = if o.overlay {
        let cache = cache::Cache::open(o.cache.as_deref().unwrap())?;
        let mounted = cache.compose(
            &image,
            &o.bundle,
            o.max_layer_bytes,
            progress_bar(o, &image),
            &mut summary,
        )?;
        guard.mounted = Some(rootfs.clone());
        summary.rootfs_mount = Some(mounted);
        open_dir(&rootfs)?
    } else {
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&rootfs)
            .with_context(|| format!("creating {}", rootfs.display()))?;
        let fd = open_dir(&rootfs)?;
        let opts = apply::ApplyOptions {
            rootless: o.rootless,
            overlay: false,
        };
        let mut target = apply::Applier::new(fd.try_clone().context("dup rootfs fd")?, opts);
        let bar = progress_bar(o, &image);
        match &o.cache {
            // Flattened from the layer store: extract what it lacks, then copy layer by layer.
            Some(dir) => {
                let cache = cache::Cache::open(dir)?;
                cache.fill(&image, o.max_layer_bytes, bar, &mut summary)?;
                for (i, l) in image.layers.iter().enumerate() {
                    target
                        .apply_dir_layer(&cache.layer_dir(&l.diff_id))
                        .with_context(|| {
                            format!(
                                "applying layer {}/{} ({})",
                                i + 1,
                                image.layers.len(),
                                l.diff_id
                            )
                        })?;
                }
                summary.entries = 0;
                finish(&mut target, &mut summary)?;
            }
            None => {
                let layers = image.layers.clone();
                apply_layers(
                    &image,
                    layers,
                    vec![target],
                    o.max_layer_bytes,
                    bar,
                    &mut summary,
                    |_| Ok(()),
                )?;
            }
        }
        fd
    };
    let spec = config::build_spec(
        &image.config,
        &image.manifest_annotations,
        &root_fd,
        o.rootless,
    )?;
    write_config(&o.bundle.join("config.json"), &spec)?;
    guard.keep();
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

fn progress_bar(o: &UnpackOptions, image: &source::Image) -> Option<indicatif::ProgressBar> {
    if !o.progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let total = image.layers.iter().map(|l| l.size).sum();
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} unpacking [{wide_bar}] {bytes}/{total_bytes} {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

pub(crate) fn open_dir(p: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        p,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", p.display()))
}

/// Stream `layers` (in order) through the decompressor thread; layer `i` is applied by
/// `targets[i]`, or all by the single target when one is given. `after(i)` runs once layer `i`
/// was verified.
pub(crate) fn apply_layers(
    image: &source::Image,
    layers: Vec<source::Layer>,
    targets: Vec<apply::Applier>,
    max: u64,
    bar: Option<indicatif::ProgressBar>,
    summary: &mut Summary,
    mut after: impl FnMut(usize) -> Result<()>,
) -> Result<()> {
    let n = layers.len();
    let (mut stream, handle) = layer::spawn(image.store.clone(), layers.clone(), max, bar.clone());
    let single = targets.len() == 1;
    let mut targets = targets.into_iter();
    let mut applier = None;
    let result = (|| -> Result<()> {
        for (i, l) in layers.iter().enumerate() {
            if applier.is_none() || !single {
                applier = Some(targets.next().context("no target for a layer")?);
            }
            let a = applier.as_mut().unwrap();
            let what = format!("layer {}/{n} ({})", i + 1, l.diff_id);
            if let Err(e) = a.apply_layer(&mut stream) {
                // A corrupt blob shows up first as a tar error: report the digest instead.
                stream.take_failure()?;
                stream
                    .finish_layer()
                    .with_context(|| format!("verifying {what}"))?;
                return Err(e).with_context(|| format!("applying {what}"));
            }
            let st = stream
                .finish_layer()
                .with_context(|| format!("verifying {what}"))?;
            summary.compressed_bytes += st.compressed;
            summary.uncompressed_bytes += st.uncompressed;
            if !single {
                finish(a, summary).with_context(|| format!("finishing {what}"))?;
            }
            after(i)?;
        }
        if single {
            if let Some(a) = applier.as_mut() {
                finish(a, summary)?;
            }
        }
        Ok(())
    })();
    drop(stream);
    let _ = handle.join();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    result
}

fn finish(a: &mut apply::Applier, summary: &mut Summary) -> Result<()> {
    a.finish().context("setting directory modes and times")?;
    summary.entries += a.stats.entries;
    summary.skipped += a.stats.skipped;
    Ok(())
}

/// Creates the bundle directory (0700) and removes what it made unless `keep` is called.
struct BundleGuard {
    bundle: PathBuf,
    created: bool,
    mounted: Option<PathBuf>,
    kept: bool,
}

impl BundleGuard {
    fn create(bundle: &Path) -> Result<BundleGuard> {
        let created = match std::fs::DirBuilder::new().mode(0o700).create(bundle) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let meta = std::fs::symlink_metadata(bundle)
                    .with_context(|| format!("stat {}", bundle.display()))?;
                if !meta.is_dir() {
                    bail!("bundle {} exists and is not a directory", bundle.display());
                }
                if std::fs::read_dir(bundle)?.next().is_some() {
                    bail!("bundle {} exists and is not empty", bundle.display());
                }
                false
            }
            Err(e) => {
                return Err(e).with_context(|| format!("creating bundle {}", bundle.display()))
            }
        };
        std::fs::set_permissions(bundle, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 0700 {}", bundle.display()))?;
        Ok(BundleGuard {
            bundle: bundle.to_path_buf(),
            created,
            mounted: None,
            kept: false,
        })
    }

    fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for BundleGuard {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        if let Some(m) = &self.mounted {
            let _ = rustix::mount::unmount(m, rustix::mount::UnmountFlags::DETACH);
        }
        if self.created {
            let _ = std::fs::remove_dir_all(&self.bundle);
        } else if let Ok(rd) = std::fs::read_dir(&self.bundle) {
            for e in rd.flatten() {
                let p = e.path();
                let _ = if p.is_dir() && !p.is_symlink() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }
}
