//! The container's root filesystem: mounts, /dev, pivot_root, masked and readonly paths,
//! sysctl. Everything here runs in the container's init process (the child of `clone`),
//! inside its new mount namespace, before it execs the user process.
//!
//! `validate(&spec)` has no side effect: call it with the other config checks, before clone.
//!
//! Call order from `process::init`:
//! 1. `prepare(&cfg)`: make the mount tree private/slave, bind the rootfs onto itself, do
//!    every `mounts[]` entry, create /dev nodes and links.
//! 2. (createContainer hooks run here, before pivot_root, as the runtime spec says)
//! 3. `pivot(&cfg)`: pivot_root (or chroot-move with `--no-pivot`), chdir "/".
//! 4. `mount_console(slave)` when `process.terminal` is set.
//! 5. `finish(&cfg)`: read-only /dev, sysctl, readonlyPaths, maskedPaths, readonly root,
//!    rootfsPropagation.
//!
//! Paths inside the rootfs are hostile: every one is resolved through fds inside the root
//! (`path`), and mounts are made on fds (new mount API, or mount(2) on /proc/self/fd/N).
//! What prepare() needs from the caller: a new mount namespace, the host's /proc still
//! visible at /proc, and the process already in its cgroup (for a `cgroup` mount without a
//! cgroup namespace, which binds the process's own cgroup directories).
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::mount::{mount as mount2, MsFlags};
use oci_spec::runtime::Spec;

use crate::mountinfo;

mod attach;
pub(crate) mod cgroupfs;
mod copyup;
pub mod dev;
pub mod idmap;
mod mounts;
pub use mounts::{open_mount_sources, MountSource};
pub mod options;
pub mod path;
mod paths;
mod pivot;
mod sysctl;

use crate::sys::mount as sys;

/// What the rootfs code needs to know, resolved by the create path.
pub struct RootfsConfig<'a> {
    pub spec: &'a Spec,
    /// Absolute host path of the rootfs (root.path resolved against the bundle).
    pub rootfs: PathBuf,
    /// The bundle directory (absolute); relative mount sources are resolved against it.
    pub bundle: PathBuf,
    /// `--no-pivot` was given.
    pub no_pivot: bool,
    /// The container has a new user namespace (devices are bind-mounted, not mknod'ed).
    pub new_userns: bool,
    /// The container has a new cgroup namespace.
    pub new_cgroupns: bool,
    /// The init's mount namespace is a copy of the runtime's (`Plan::mounts_copied`): the
    /// host's cgroup mounts are the ones the runtime read.
    pub mounts_copied: bool,
    /// Called before anything that depends on the init's cgroup (a `cgroup` mount): returns
    /// once the init is in its cgroup (and in its new cgroup namespace). Idempotent.
    pub cgroup_ready: &'a dyn Fn() -> anyhow::Result<()>,
    /// The mount sources the parent made (`open_mount_sources`), by `mounts[]` index:
    /// idmapped trees, and detached copies of bind sources for a user-namespaced init.
    /// `prepare` takes them and closes every one once the mounts are done.
    pub mount_sources: &'a std::cell::RefCell<Vec<Option<MountSource>>>,
}

/// State shared by the steps of `prepare`.
pub(crate) struct Ctx<'a> {
    cfg: &'a RootfsConfig<'a>,
    /// O_PATH fd on the rootfs (the self-bind mount on top of it).
    root: OwnedFd,
    /// `cfg.mount_sources`, taken (each entry takes its own).
    sources: Vec<Option<MountSource>>,
}

impl Ctx<'_> {
    fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }
}

/// Before the createContainer hooks: propagation of /, the rootfs self-bind, every
/// `mounts[]` entry, then /dev (nodes, ptmx, symlinks).
pub fn prepare(cfg: &RootfsConfig) -> Result<()> {
    let flag = root_propagation(cfg.spec)?.unwrap_or(libc::MS_SLAVE | libc::MS_REC);
    propagate_root(flag).context("setting the propagation of /")?;
    // After a recursive slave or private, no mount here is shared (the default: no need to
    // read mountinfo).
    let none_shared = flag & libc::MS_REC != 0 && flag & (libc::MS_SLAVE | libc::MS_PRIVATE) != 0;
    if !none_shared {
        make_parent_private(&cfg.rootfs)?;
    }
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount2(
        Some(&cfg.rootfs),
        &cfg.rootfs,
        None::<&str>,
        bind,
        None::<&str>,
    )
    .with_context(|| {
        format!(
            "bind-mounting the rootfs {} onto itself",
            cfg.rootfs.display()
        )
    })?;
    // The mount sources are closed when `ctx` goes, used or not: none stays open in the
    // container.
    let mut ctx = Ctx {
        cfg,
        root: path::open_root(&cfg.rootfs)?,
        sources: cfg.mount_sources.take(),
    };
    mounts::mount_all(&mut ctx)?;
    if dev::needs_setup(cfg.spec) {
        dev::setup(&ctx)?;
    }
    Ok(())
}

/// After the createContainer hooks: pivot_root (or move + chroot with `--no-pivot`).
pub fn pivot(cfg: &RootfsConfig) -> Result<()> {
    if cfg.no_pivot {
        pivot::move_root(&cfg.rootfs)
    } else {
        pivot::pivot_root_dot(&cfg.rootfs)
    }
}

/// After pivot, with `process.terminal`: bind the pty slave (opened from its master; `name`
/// is its path inside the container, like /dev/pts/0, for messages) onto /dev/console,
/// created as an empty file if missing and never followed if it is a link.
pub fn mount_console(slave: BorrowedFd<'_>, name: &Path) -> Result<()> {
    let root = path::open_root(Path::new("/"))?;
    let console = Path::new("/dev/console");
    // Never through a link (CVE-2025-52565): it would put the pty over whatever it names.
    if path::type_nofollow(root.as_fd(), console)? == Some(nix::sys::stat::SFlag::S_IFLNK) {
        bail!("console: /dev/console is a symbolic link; refusing to mount the console through it");
    }
    let dst = path::ensure(root.as_fd(), console, path::Kind::File)
        .context("console: creating /dev/console")?;
    let tree = sys::clone_tree(slave, false).context("console: open_tree")?;
    sys::move_mount(tree.as_fd(), dst.fd.as_fd()).with_context(|| {
        format!(
            "console: bind-mounting {} onto /dev/console",
            name.display()
        )
    })
}

/// Last rootfs steps, after pivot and the console: a read-only /dev remounted so (its nodes
/// and /dev/console exist by now), sysctl, readonlyPaths, maskedPaths, root.readonly and
/// finally `linux.rootfsPropagation` applied to /.
pub fn finish(cfg: &RootfsConfig) -> Result<()> {
    let root = path::open_root(Path::new("/"))?;
    dev::reopen_dev_null(root.as_fd())?;
    if mounts::dev_readonly(cfg.spec) {
        let dev = path::lookup(root.as_fd(), Path::new("/dev"))?.context("/dev vanished")?;
        let attr = sys::MountAttr {
            set: libc::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        sys::mount_setattr(dev.fd.as_fd(), false, attr).context("remounting /dev read-only")?;
    }
    let linux = cfg.spec.linux().as_ref();
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
        sysctl::apply(root.as_fd(), sysctl)?;
    }
    if let Some(ro) = linux.and_then(|l| l.readonly_paths().as_ref()) {
        paths::readonly(root.as_fd(), ro)?;
    }
    if let Some(masked) = linux.and_then(|l| l.masked_paths().as_ref()) {
        paths::masked(root.as_fd(), masked)?;
    }
    if cfg
        .spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly().unwrap_or(false))
    {
        paths::readonly_root(root.as_fd())?;
    }
    if let Some(flag) = root_propagation(cfg.spec)? {
        propagate_root(flag).context("linux.rootfsPropagation: setting the propagation of /")?;
    }
    Ok(())
}

/// Change the propagation type of the mount at "/" (flags like MS_SLAVE|MS_REC).
fn propagate_root(flag: libc::c_ulong) -> nix::Result<()> {
    mount2(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::from_bits_retain(flag),
        None::<&str>,
    )
}

/// Checks with no side effect, for the create path's validation step (so that a bad
/// config fails before anything is cloned): every `mounts[].options` list parses, every
/// idmapped mount is one berth can make (`idmap::plan`), `linux.rootfsPropagation` is known, device entries
/// are valid, and `linux.mountLabel` is only accepted where it means nothing (SELinux off,
/// as runc ignores it there).
pub fn validate(spec: &Spec) -> Result<()> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let opts = m.options().as_deref().unwrap_or(&[]);
        options::parse(opts).with_context(|| format!("mounts[{i}].options"))?;
    }
    idmap::plan(spec)?;
    root_propagation(spec)?;
    dev::nodes(spec)?;
    let label = spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref());
    if label.is_some_and(|l| !l.is_empty()) && crate::security::selinux_enabled() {
        anyhow::bail!("linux.mountLabel: SELinux mount labels are not supported by berth");
    }
    Ok(())
}

/// `linux.rootfsPropagation` as mount(2) flags, if set.
fn root_propagation(spec: &Spec) -> Result<Option<libc::c_ulong>> {
    match spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    {
        None | Some("") => Ok(None),
        Some(name) => options::propagation_flag(name).map(Some),
    }
}

/// pivot_root refuses a new root whose parent mount is shared (which a shared
/// rootfsPropagation makes it): make that parent mount private, in our namespace only.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let infos = mountinfo::read()?;
    let parent = rootfs.parent().unwrap_or(Path::new("/"));
    let Some(m) = mountinfo::mount_of(&infos, parent) else {
        return Ok(());
    };
    if !m.is_shared() {
        return Ok(());
    }
    mount2(
        None::<&str>,
        &m.mount_point,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .with_context(|| format!("making {} private", m.mount_point.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        crate::spec::parse_config(json.as_bytes()).unwrap()
    }

    #[test]
    fn validate_rejects_before_side_effects() {
        let ok = spec(
            r#"{"ociVersion":"1.2.0","mounts":[{"destination":"/p","type":"proc","options":["nosuid","rro"]}]}"#,
        );
        validate(&ok).unwrap();
        let bad = spec(
            r#"{"ociVersion":"1.2.0","mounts":[{"destination":"/a"},{"destination":"/b","options":["idmap"]}]}"#,
        );
        let err = format!("{:#}", validate(&bad).unwrap_err());
        assert_eq!(
            err,
            "mounts[1] (/b): id-mapped mounts are only supported for bind-mounts"
        );
        let bad = spec(r#"{"ociVersion":"1.2.0","linux":{"rootfsPropagation":"sideways"}}"#);
        assert!(validate(&bad).is_err());
        let bad =
            spec(r#"{"ociVersion":"1.2.0","linux":{"devices":[{"path":"/dev/x","type":"a"}]}}"#);
        assert!(validate(&bad).is_err());
    }
}
