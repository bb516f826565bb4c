//! Putting one mount in place below the root fd, for `mounts[]` (mounts.rs) and the cgroup
//! filesystem (cgroupfs.rs): a bind through the new mount API with its flags set on the
//! detached copy, a filesystem through /proc/self/fd/N, and the propagation changes after.
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;

use super::options::{self, MountOptions};
use super::path::{self, Resolved};
use crate::sys::mount::{self as sys, MountAttr};

/// Bind `src` onto `dst` with the flags, recursive attributes and propagation of `opts`.
pub fn bind(
    root: BorrowedFd<'_>,
    src: BorrowedFd<'_>,
    dst: &Resolved,
    opts: &MountOptions,
) -> Result<()> {
    let tree = detached_copy(src, opts)?;
    attach_tree(root, tree.as_fd(), dst, opts)
}

/// A detached copy of the mount at `src` (its tree with rbind) with the flags and recursive
/// attributes of `opts` set, not yet attached anywhere.
pub fn detached_copy(src: BorrowedFd<'_>, opts: &MountOptions) -> Result<OwnedFd> {
    let tree = sys::clone_tree(src, opts.is_rec()).context("open_tree")?;
    set_flags(tree.as_fd(), opts)?;
    Ok(tree)
}

/// [`detached_copy`] of the mount at the caller's `path` (a host path, symlinks followed).
pub fn detached_copy_at(path: &Path, opts: &MountOptions) -> Result<OwnedFd> {
    let tree = sys::clone_tree_at(path, opts.is_rec()).context("open_tree")?;
    set_flags(tree.as_fd(), opts)?;
    Ok(tree)
}

/// `detached_copy`, idmapped with the user namespace `userns` before its flags are set
/// (the top mount only, or the whole tree with `recursive`).
pub fn idmapped_copy(
    src: BorrowedFd<'_>,
    opts: &MountOptions,
    userns: BorrowedFd<'_>,
    recursive: bool,
) -> Result<OwnedFd> {
    let tree = sys::clone_tree(src, opts.is_rec()).context("open_tree")?;
    let hint = |e: Errno| match e {
        Errno::EINVAL => " (a filesystem of the source that cannot be idmapped?)",
        Errno::EPERM => " (a source that is idmapped already?)",
        _ => "",
    };
    sys::mount_setattr_idmap(tree.as_fd(), recursive, userns).map_err(|e| {
        anyhow::Error::new(e).context(format!("mount_setattr(MOUNT_ATTR_IDMAP){}", hint(e)))
    })?;
    set_flags(tree.as_fd(), opts)?;
    Ok(tree)
}

/// Set the flags and recursive attributes of `opts` on the detached tree.
fn set_flags(tree: BorrowedFd<'_>, opts: &MountOptions) -> Result<()> {
    if let Some(attr) = opts.bind_attr() {
        match sys::mount_setattr(tree, false, attr) {
            Err(Errno::EPERM) => {
                let source = source_attr(tree)?;
                let attr = opts.keep_locked(attr, source)?;
                sys::mount_setattr(tree, false, attr)
                    .context("setting the mount flags (keeping the source's locked flags)")?;
            }
            other => other.context("setting the mount flags")?,
        }
    }
    set_recursive(tree, opts)
}

/// Attach a detached copy on top of `dst`, then apply the propagation of `opts`.
pub fn attach_tree(
    root: BorrowedFd<'_>,
    tree: BorrowedFd<'_>,
    dst: &Resolved,
    opts: &MountOptions,
) -> Result<()> {
    sys::move_mount(tree, dst.fd.as_fd()).context("move_mount")?;
    apply_propagation(root, &dst.path, &opts.propagation)
}

/// The per-mount flags of the mount at `fd`, as `MOUNT_ATTR_*` bits.
fn source_attr(fd: BorrowedFd<'_>) -> Result<u64> {
    use nix::sys::statvfs::{fstatvfs, FsFlags};
    let st = fstatvfs(fd).context("statvfs of the source")?;
    let f = st.flags();
    let pairs = [
        (FsFlags::ST_RDONLY, libc::MOUNT_ATTR_RDONLY),
        (FsFlags::ST_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (FsFlags::ST_NODEV, libc::MOUNT_ATTR_NODEV),
        (FsFlags::ST_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
    ];
    Ok(pairs
        .iter()
        .filter(|(st, _)| f.contains(*st))
        .fold(0, |acc, (_, at)| acc | at))
}

/// mount(2) of a filesystem onto the directory `dst` (through its /proc/self/fd path).
pub fn mount_fd(
    source: &Path,
    dst: BorrowedFd<'_>,
    typ: &str,
    flags: libc::c_ulong,
    data: &str,
) -> nix::Result<()> {
    let target = path::fd_path(dst);
    let data = if data.is_empty() { None } else { Some(data) };
    nix::mount::mount(
        Some(source),
        &target,
        Some(typ),
        MsFlags::from_bits_retain(flags),
        data,
    )
}

pub fn set_recursive(fd: BorrowedFd<'_>, opts: &MountOptions) -> Result<()> {
    if opts.recursive.is_empty() {
        return Ok(());
    }
    sys::mount_setattr(fd, true, opts.recursive).context("setting recursive mount attributes")
}

/// Apply mount(2)-style propagation flags, in order, to the mount now on top of `path`.
pub fn apply_propagation(root: BorrowedFd<'_>, p: &Path, flags: &[libc::c_ulong]) -> Result<()> {
    if flags.is_empty() {
        return Ok(());
    }
    let top = path::open_in_root(root, p, OFlag::O_PATH)
        .with_context(|| format!("opening {}", p.display()))?;
    for f in flags {
        let attr = MountAttr {
            propagation: options::propagation_attr(*f),
            ..Default::default()
        };
        sys::mount_setattr(top.as_fd(), f & libc::MS_REC != 0, attr)
            .context("setting propagation")?;
    }
    Ok(())
}
