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
///
/// The rslave goes to the old root only, through a directory fd opened on it before the
/// pivot, as runc does: "." after the pivot is the new root for mount(2) (only umount looks
/// through to the mount on top), and making the container's own tree rslave would undo the
/// `shared` of its mounts.
pub fn pivot_root_dot(rootfs: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let old = sys::openat(
        None,
        Path::new("/"),
        OFlag::O_DIRECTORY | OFlag::O_RDONLY,
        0,
    )
    .context("opening the old root /")?;
    let dir = sys::openat(None, rootfs, OFlag::O_DIRECTORY | OFlag::O_RDONLY, 0)
        .with_context(|| format!("opening {}", rootfs.display()))?;
    fchdir(dir.as_raw_fd()).context("fchdir to the rootfs")?;
    pivot_root(".", ".").with_context(|| format!("pivot_root into {}", rootfs.display()))?;
    fchdir(old.as_raw_fd()).context("fchdir to the old root")?;
    drop(old);
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

/// `--no-pivot`: move the rootfs mount onto / and chroot into it. The old root stays in the
/// mount namespace below the new one, reachable through `..` from an fd or a chroot escape,
/// so first its full procfs and sysfs mounts go (detached, or covered by a tmpfs where
/// they cannot be unmounted), as runc does: through them the container would see the
/// host's unmasked /proc and /sys, and the kernel would let it mount a fresh procfs.
pub fn move_root(rootfs: &Path) -> Result<()> {
    hide_kernel_fs_outside(rootfs)?;
    chdir(rootfs).with_context(|| format!("chdir {}", rootfs.display()))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .with_context(|| format!("moving {} onto /", rootfs.display()))?;
    chroot(".").context("chroot")?;
    chdir("/").context("chdir /")
}

/// Detach (or cover) every whole procfs and sysfs mount outside `rootfs`.
fn hide_kernel_fs_outside(rootfs: &Path) -> Result<()> {
    let infos = crate::mountinfo::read()?;
    for m in infos.iter().filter(|m| {
        (m.fstype == "proc" || m.fstype == "sysfs")
            && m.root == Path::new("/")
            && !m.mount_point.starts_with(rootfs)
    }) {
        let p = &m.mount_point;
        // The unmount must not propagate to the host.
        match mount(
            None::<&str>,
            p,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Ok(()) => {}
            // A parent was detached already: this one went with it.
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(e).with_context(|| format!("making {} rslave", p.display())),
        }
        match umount2(p, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM) => mount(
                Some("tmpfs"),
                p,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .with_context(|| format!("covering {} with a tmpfs", p.display()))?,
            Err(e) => return Err(e).with_context(|| format!("unmounting {}", p.display())),
        }
    }
    Ok(())
}
