//! Mounting each `mounts[]` entry inside the rootfs.
//!
//! The destination is resolved (and created) inside the root through fds (`path`). Bind
//! mounts use the new mount API: `open_tree(OPEN_TREE_CLONE)` of the source, the requested
//! flags set on the detached copy with `mount_setattr` (so the mount is never visible with
//! the wrong flags, and flags locked by a user namespace are simply left alone), then
//! `move_mount` onto the destination fd. Other filesystems are mounted with mount(2) on
//! `/proc/self/fd/N` of the destination. Propagation options are applied afterwards.
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::SFlag;
use nix::sys::statfs::{fstatfs, statfs, PROC_SUPER_MAGIC};
use oci_spec::runtime::Mount;

use super::attach::{
    apply_propagation, attach_tree, bind, detached_copy, idmapped_copy, mount_fd, set_recursive,
};
use super::idmap::{Mapping, MountIdmap};
use super::options::{self, MountOptions};
use super::path::{self, Kind};
use super::{cgroupfs, copyup, Ctx};
use crate::sys::mount as sys;

/// Files under /proc that may be mount destinations (lxcfs and friends), as runc allows.
const PROC_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// Do every `mounts[]` entry, in order.
pub fn mount_all(ctx: &mut Ctx<'_>) -> Result<()> {
    let mounts = ctx.cfg.spec.mounts().clone().unwrap_or_default();
    for (i, m) in mounts.iter().enumerate() {
        mount_one(ctx, i, m).with_context(|| describe(i, m))?;
    }
    Ok(())
}

/// `mounts[3]: mounting "proc" (type proc) at /proc`.
fn describe(i: usize, m: &Mount) -> String {
    let src = m
        .source()
        .as_ref()
        .map_or_else(|| "".to_string(), |s| s.display().to_string());
    let typ = m.typ().as_deref().unwrap_or("none");
    format!(
        "mounts[{i}]: mounting {src:?} (type {typ}) at {}",
        m.destination().display()
    )
}

fn mount_one(ctx: &mut Ctx<'_>, i: usize, m: &Mount) -> Result<()> {
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]))?;
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = Path::new("/").join(m.destination());
    if typ == "cgroup" {
        return cgroupfs::mount(ctx, &dest, &opts);
    }
    if opts.is_bind() || typ == "bind" {
        let src = m.source().as_ref().context("a bind mount needs a source")?;
        let src = ctx.cfg.bundle.join(src);
        return match ctx.sources.get_mut(i).and_then(Option::take) {
            Some(MountSource::Idmapped(tree)) => idmapped_entry(ctx, &src, tree, &dest, &opts),
            Some(MountSource::Fallback(tree)) => bind_entry(ctx, &src, Some(&tree), &dest, &opts),
            None => bind_entry(ctx, &src, None, &dest, &opts),
        };
    }
    let source = m
        .source()
        .as_ref()
        .map_or_else(|| PathBuf::from(typ), |s| s.clone());
    fs_entry(ctx, &source, typ, &dest, &opts)
}

/// Whether /dev is to be made read-only at the end, as runc's finalizeRootfs does: the first
/// `mounts[]` entry at /dev that is not a bind asks for `ro` (a bind is made read-only when
/// it is bound, and then /dev is not populated).
pub(super) fn dev_readonly(spec: &oci_spec::runtime::Spec) -> bool {
    let Some(m) = spec.mounts().iter().flatten().find(|m| {
        Path::new("/")
            .join(m.destination())
            .components()
            .eq(Path::new("/dev").components())
    }) else {
        return false;
    };
    let Ok(opts) = options::parse(m.options().as_deref().unwrap_or(&[])) else {
        return false;
    };
    m.typ().as_deref() != Some("bind") && !opts.is_bind() && opts.flags & libc::MS_RDONLY != 0
}

/// A mount source the parent made before the clone, for one `mounts[]` entry.
pub enum MountSource {
    /// The entry's idmapped tree: always the one attached.
    Idmapped(OwnedFd),
    /// A detached copy of a bind source, for a user-namespaced init that may not reach the
    /// source itself.
    Fallback(OwnedFd),
}

impl AsFd for MountSource {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            MountSource::Idmapped(fd) | MountSource::Fallback(fd) => fd.as_fd(),
        }
    }
}

/// Attach the idmapped tree the parent made for this entry (flags set; propagation next).
fn idmapped_entry(
    ctx: &Ctx<'_>,
    src: &Path,
    tree: OwnedFd,
    dest: &Path,
    opts: &MountOptions,
) -> Result<()> {
    let dst = path::ensure(ctx.root(), dest, kind_of(tree.as_fd(), src)?)
        .context("creating the destination")?;
    check_proc_dest(&dst.path, Some(src), "bind")?;
    attach_tree(ctx.root(), tree.as_fd(), &dst, opts).context("attaching the idmapped source")
}

/// Whether the source at `fd` is a directory or something else (a file, a device, ...).
fn kind_of(fd: BorrowedFd<'_>, src: &Path) -> Result<Kind> {
    let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))
        .with_context(|| format!("source {}", src.display()))?;
    Ok(if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        Kind::Dir
    } else {
        Kind::File
    })
}

/// A bind of `src`. Where the container's root may not reach the source (a user namespace
/// and a directory only the host's root can search), the copy the parent opened for it
/// (`open_bind_sources`) is used, as runc passes mount-source fds.
fn bind_entry(
    ctx: &Ctx<'_>,
    src: &Path,
    from_parent: Option<&OwnedFd>,
    dest: &Path,
    opts: &MountOptions,
) -> Result<()> {
    let srcfd = match sys::openat(None, src, OFlag::O_PATH, 0) {
        Err(Errno::EACCES | Errno::EPERM) if from_parent.is_some() => None,
        other => Some(other.with_context(|| format!("opening source {}", src.display()))?),
    };
    let probe = srcfd.as_ref().or(from_parent).context("no source")?;
    let dst = path::ensure(ctx.root(), dest, kind_of(probe.as_fd(), src)?)
        .context("creating the destination")?;
    check_proc_dest(&dst.path, Some(src), "bind")?;
    match (&srcfd, from_parent) {
        (Some(fd), _) => bind(ctx.root(), fd.as_fd(), &dst, opts),
        (None, Some(tree)) => attach_tree(ctx.root(), tree.as_fd(), &dst, opts)
            .context("attaching the source the runtime opened"),
        (None, None) => unreachable!("checked above"),
    }
}

/// In the parent, before the clone: by `mounts[]` index, the idmapped tree of every entry
/// `idmaps` (from `idmap::plan`) idmaps, made with the user namespace `userns_for` gives for
/// its mapping; and, for a user-namespaced init (`in_userns`), a detached copy of every other
/// bind source, for the entries the init cannot open itself. An idmapping that fails is an
/// error naming the entry; a copy that fails gets `None` (the init reports its own error).
pub fn open_mount_sources(
    spec: &oci_spec::runtime::Spec,
    bundle: &Path,
    idmaps: &[Option<MountIdmap>],
    in_userns: bool,
    userns_for: &mut dyn FnMut(&Mapping) -> Result<OwnedFd>,
) -> Result<Vec<Option<MountSource>>> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let source = match idmaps.get(i).and_then(Option::as_ref) {
            Some(idmap) => Some(MountSource::Idmapped(
                idmapped_source(bundle, m, idmap, userns_for).with_context(|| describe(i, m))?,
            )),
            None if in_userns => fallback_source(bundle, m).map(MountSource::Fallback),
            None => None,
        };
        out.push(source);
    }
    Ok(out)
}

fn idmapped_source(
    bundle: &Path,
    m: &Mount,
    idmap: &MountIdmap,
    userns_for: &mut dyn FnMut(&Mapping) -> Result<OwnedFd>,
) -> Result<OwnedFd> {
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]))?;
    let src = bundle.join(m.source().as_ref().context("a bind mount needs a source")?);
    let fd = sys::openat(None, &src, OFlag::O_PATH, 0)
        .with_context(|| format!("opening source {}", src.display()))?;
    let userns = userns_for(&idmap.mapping)?;
    idmapped_copy(fd.as_fd(), &opts, userns.as_fd(), idmap.recursive)
}

fn fallback_source(bundle: &Path, m: &Mount) -> Option<OwnedFd> {
    let opts = options::parse(m.options().as_deref().unwrap_or(&[])).ok()?;
    let typ = m.typ().as_deref().unwrap_or("");
    if typ == "cgroup" || !(opts.is_bind() || typ == "bind") {
        return None;
    }
    let src = bundle.join(m.source().as_ref()?);
    let fd = sys::openat(None, &src, OFlag::O_PATH, 0).ok()?;
    detached_copy(fd.as_fd(), &opts).ok()
}

fn fs_entry(
    ctx: &mut Ctx<'_>,
    source: &Path,
    typ: &str,
    dest: &Path,
    opts: &MountOptions,
) -> Result<()> {
    // Opened directly, the destination has no symlink on the way (nor is one).
    let dst = match path::direct(ctx.root(), dest) {
        Ok(dst) => dst,
        Err(e) => {
            refuse_unordinary(ctx.root(), dest, typ)?;
            path::ensure_walk(ctx.root(), dest, Kind::Dir, e).context("creating the destination")?
        }
    };
    let existed = !dst.created;
    let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&dst.fd))
        .context("stat destination")?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        refuse_unordinary(ctx.root(), dest, typ)?;
        bail!("destination {} is not a directory", dst.path.display());
    }
    check_proc_dest(&dst.path, None, typ)?;
    let mut flags = opts.flags;
    if dst.path == Path::new("/dev") {
        // Devices, /dev/pts and the console are made in /dev later: `finish` remounts it
        // read-only (see dev_readonly).
        flags &= !libc::MS_RDONLY;
    }
    let old = match opts.tmpcopyup {
        true if typ != "tmpfs" => bail!("tmpcopyup is only valid for tmpfs mounts"),
        true => Some(open_dir(ctx.root(), &dst.path)?),
        false => None,
    };
    let data = tmpfs_data(typ, existed.then_some(st.st_mode), opts.data_string());
    match mount_fd(source, dst.fd.as_fd(), typ, flags, &data) {
        Err(Errno::EPERM) if typ == "sysfs" && ctx.cfg.new_userns => {
            // A user namespace without its own network namespace cannot mount sysfs:
            // bind the host's /sys instead, as runc does.
            let sys_fd = path::open_root(Path::new("/sys"))?;
            let mut o = opts.clone();
            o.flags |= libc::MS_BIND | libc::MS_REC;
            return bind(ctx.root(), sys_fd.as_fd(), &dst, &o)
                .context("sysfs denied, binding /sys");
        }
        other => other.context("mount")?,
    }
    if let Some(old) = old {
        let new = open_dir(ctx.root(), &dst.path)?;
        copyup::copy_dir(old.as_fd(), new.as_fd()).context("tmpcopyup")?;
    }
    if !opts.recursive.is_empty() {
        let top = path::open_in_root(ctx.root(), &dst.path, OFlag::O_PATH)?;
        set_recursive(top.as_fd(), opts)?;
    }
    apply_propagation(ctx.root(), &dst.path, &opts.propagation)
}

/// A tmpfs without `mode=` over a directory the rootfs has takes that directory's mode
/// (sticky, setgid and setuid bits included), as runc 1.2+ does: the mode goes first, so an
/// explicit `mode=` still wins. A destination berth creates keeps the tmpfs default (1777).
fn tmpfs_data(typ: &str, existing_mode: Option<libc::mode_t>, data: String) -> String {
    let Some(mode) = existing_mode.filter(|_| typ == "tmpfs") else {
        return data;
    };
    let mode = format!("mode={:04o}", mode & 0o7777);
    if data.is_empty() {
        mode
    } else {
        format!("{mode},{data}")
    }
}

fn open_dir(root: BorrowedFd<'_>, p: &Path) -> Result<std::os::fd::OwnedFd> {
    path::open_in_root(root, p, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .with_context(|| format!("opening {}", p.display()))
}

/// procfs and sysfs go only on an ordinary directory, as runc requires: a rootfs whose /proc
/// or /sys is a symlink (to a host path, to /dev, to itself) is refused before anything is
/// mounted through it (CVE-2019-16884, CVE-2019-19921).
fn refuse_unordinary(root: BorrowedFd<'_>, dest: &Path, typ: &str) -> Result<()> {
    if typ != "proc" && typ != "sysfs" {
        return Ok(());
    }
    match path::type_nofollow(root, dest)? {
        None => Ok(()),
        Some(t) if t == SFlag::S_IFDIR => Ok(()),
        Some(t) => {
            bail!(
            "filesystem {typ:?} must be mounted on an ordinary directory: {} in the rootfs is {}",
            dest.display(),
            if t == SFlag::S_IFLNK { "a symlink" } else { "not a directory" }
        )
        }
    }
}

/// runc's rule for /proc: only procfs may be mounted on /proc itself, and only a few
/// files below it may be mount destinations.
fn check_proc_dest(dest: &Path, bind_src: Option<&Path>, typ: &str) -> Result<()> {
    if dest == Path::new("/proc") {
        let is_proc = match bind_src {
            Some(src) => statfs(src)
                .map(|s| s.filesystem_type() == PROC_SUPER_MAGIC)
                .unwrap_or(false),
            None => typ == "proc",
        };
        if !is_proc {
            bail!("/proc cannot be mounted because the source is not of type proc");
        }
    } else if dest.starts_with("/proc") && !PROC_ALLOWED.iter().any(|a| dest == Path::new(a)) {
        bail!(
            "{} cannot be mounted because it is inside /proc",
            dest.display()
        );
    }
    Ok(())
}

/// Check an fd is on a real procfs (not something mounted over the container's /proc).
pub(super) fn ensure_procfs(fd: BorrowedFd<'_>, what: &Path) -> Result<()> {
    let st = fstatfs(fd).with_context(|| format!("statfs {}", what.display()))?;
    if st.filesystem_type() != PROC_SUPER_MAGIC {
        bail!("{} is not on a procfs mount", what.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_rule() {
        assert!(check_proc_dest(Path::new("/proc"), None, "proc").is_ok());
        assert!(check_proc_dest(Path::new("/proc"), None, "tmpfs").is_err());
        assert!(check_proc_dest(Path::new("/proc"), Some(Path::new("/proc")), "bind").is_ok());
        assert!(check_proc_dest(Path::new("/proc"), Some(Path::new("/tmp")), "bind").is_err());
        assert!(
            check_proc_dest(Path::new("/proc/meminfo"), Some(Path::new("/tmp")), "bind").is_ok()
        );
        let err = check_proc_dest(Path::new("/proc/self/x"), None, "tmpfs").unwrap_err();
        assert!(err.to_string().contains("inside /proc"), "{err}");
        assert!(check_proc_dest(Path::new("/procfoo"), None, "tmpfs").is_ok());
    }

    #[test]
    fn tmpfs_mode_from_the_destination() {
        let d = |m, data: &str| tmpfs_data("tmpfs", m, data.to_string());
        assert_eq!(d(Some(0o40750), ""), "mode=0750");
        assert_eq!(d(Some(0o41777), "size=1m"), "mode=1777,size=1m");
        assert_eq!(d(Some(0o40750), "mode=700"), "mode=0750,mode=700");
        assert_eq!(d(None, "size=1m"), "size=1m");
        assert_eq!(tmpfs_data("proc", Some(0o40555), String::new()), "");
    }
}
