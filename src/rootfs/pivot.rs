//! Switching the process root to the rootfs: pivot_root, or with `--no-pivot` a move of
//! the rootfs mount onto / and chroot.
use std::path::Path;

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, chroot, fchdir, pivot_root};

use crate::sys::mount as sys;

/// `pivot_root(".", ".")` from inside the rootfs: the old root ends up stacked on the new
/// one, where it is made rslave (so the unmount does not propagate to the host) and
/// detached. Needs no directory for the old root.
pub fn pivot_root_dot(rootfs: &Path) -> Result<()> {
    let dir = sys::openat(None, rootfs, OFlag::O_DIRECTORY | OFlag::O_RDONLY, 0)
        .with_context(|| format!("opening {}", rootfs.display()))?;
    fchdir(std::os::fd::AsRawFd::as_raw_fd(&dir)).context("fchdir to the rootfs")?;
    pivot_root(".", ".").with_context(|| format!("pivot_root into {}", rootfs.display()))?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("making the old root rslave")?;
    umount2(".", MntFlags::MNT_DETACH).context("unmounting the old root")?;
    chdir("/").context("chdir /")
}

/// `--no-pivot`: move the rootfs mount onto / and chroot into it.
pub fn move_root(rootfs: &Path) -> Result<()> {
    chdir(rootfs).with_context(|| format!("chdir {}", rootfs.display()))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .with_context(|| format!("moving {} onto /", rootfs.display()))?;
    chroot(".").context("chroot")?;
    chdir("/").context("chdir /")
}
