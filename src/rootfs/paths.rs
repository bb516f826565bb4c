//! `linux.readonlyPaths`, `linux.maskedPaths` and `root.readonly`, applied after pivot
//! with paths resolved inside the container's root. A missing path is skipped.
//!
//! Read-only paths: a recursive bind of the path onto itself, made
//! `ro,nosuid,nodev,noexec` recursively on the detached copy before it is attached.
//! Masked paths: a file is covered by a bind of the container's /dev/null (checked to be the
//! char device 1:3 first); a directory by an empty read-only tmpfs, one for all of them.
use std::collections::HashSet;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::stat::{fstat, major, minor};

use super::path::{self, Resolved};
use crate::sys::mount::{self as sys, MountAttr};

const RO_ATTRS: u64 = libc::MOUNT_ATTR_RDONLY
    | libc::MOUNT_ATTR_NOSUID
    | libc::MOUNT_ATTR_NODEV
    | libc::MOUNT_ATTR_NOEXEC;

pub fn readonly(root: BorrowedFd<'_>, paths: &[String]) -> Result<()> {
    for (i, p) in paths.iter().enumerate() {
        readonly_one(root, Path::new(p))
            .with_context(|| format!("linux.readonlyPaths[{i}] {p}"))?;
    }
    Ok(())
}

fn readonly_one(root: BorrowedFd<'_>, p: &Path) -> Result<()> {
    let Some(target) = path::lookup(root, p)? else {
        return Ok(());
    };
    let tree = sys::clone_tree(target.fd.as_fd(), true).context("open_tree")?;
    let attr = MountAttr {
        set: RO_ATTRS,
        ..Default::default()
    };
    sys::mount_setattr(tree.as_fd(), true, attr).context("making it read-only")?;
    sys::move_mount(tree.as_fd(), target.fd.as_fd()).context("move_mount")
}

/// Mask every path once: a path listed twice (or reached twice through symlinks) is masked
/// the first time only, as runc does. Every masked directory shares one read-only tmpfs: the
/// first is mounted, the others are binds of it (one superblock per container).
pub fn masked(root: BorrowedFd<'_>, paths: &[String]) -> Result<()> {
    let mut m = Masker::default();
    for (i, p) in paths.iter().enumerate() {
        m.mask(root, Path::new(p))
            .with_context(|| format!("linux.maskedPaths[{i}] {p}"))?;
    }
    Ok(())
}

#[derive(Default)]
struct Masker {
    /// The container's /dev/null, once checked.
    null: Option<OwnedFd>,
    /// The shared empty tmpfs, once mounted.
    tmpfs: Option<OwnedFd>,
    /// Resolved paths already masked.
    done: HashSet<PathBuf>,
}

impl Masker {
    fn mask(&mut self, root: BorrowedFd<'_>, p: &Path) -> Result<()> {
        let Some(target) = path::lookup(root, p)? else {
            return Ok(());
        };
        if !self.done.insert(target.path.clone()) {
            return Ok(());
        }
        let st = fstat(target.fd.as_raw_fd()).context("stat")?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return self.mask_dir(&target);
        }
        if self.null.is_none() {
            self.null = Some(dev_null(root)?);
        }
        let null = self
            .null
            .as_ref()
            .map(|f| f.as_fd())
            .context("no /dev/null")?;
        let tree = sys::clone_tree(null, false).context("open_tree /dev/null")?;
        sys::move_mount(tree.as_fd(), target.fd.as_fd()).context("binding /dev/null over it")
    }

    fn mask_dir(&mut self, target: &Resolved) -> Result<()> {
        if let Some(shared) = &self.tmpfs {
            let tree = sys::clone_tree(shared.as_fd(), false).context("open_tree of the mask")?;
            return sys::move_mount(tree.as_fd(), target.fd.as_fd())
                .context("binding the empty tmpfs over it");
        }
        let fs = sys::fsopen("tmpfs").context("fsopen tmpfs")?;
        sys::fsconfig_set(fs.as_fd(), "mode", Some("755")).context("tmpfs mode")?;
        let mnt = sys::fsmount(fs.as_fd(), libc::MOUNT_ATTR_RDONLY).context("fsmount tmpfs")?;
        sys::move_mount(mnt.as_fd(), target.fd.as_fd())
            .context("mounting an empty tmpfs over it")?;
        // The fd now names the attached mount: later directories bind it.
        self.tmpfs = Some(mnt);
        Ok(())
    }
}

/// The container's /dev/null, refused unless it is the char device 1:3.
fn dev_null(root: BorrowedFd<'_>) -> Result<OwnedFd> {
    let null = path::lookup(root, Path::new("/dev/null"))?.context("/dev/null does not exist")?;
    let st = fstat(null.fd.as_raw_fd()).context("stat /dev/null")?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR
        || major(st.st_rdev) != 1
        || minor(st.st_rdev) != 3
    {
        bail!("/dev/null is not the char device 1:3");
    }
    Ok(null.fd)
}

/// `root.readonly`: make the root mount read-only (flags locked by a user namespace are left
/// as they are, since mount_setattr only changes what it is asked to).
pub fn readonly_root(root: BorrowedFd<'_>) -> Result<()> {
    let attr = MountAttr {
        set: libc::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    sys::mount_setattr(root, false, attr).context("root.readonly: remounting / read-only")
}
