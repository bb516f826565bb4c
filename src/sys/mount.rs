//! Mount-related syscalls, fd in and fd out: `openat2` and `openat` returning `OwnedFd`, and
//! the new mount API (`open_tree`, `move_mount`, `mount_setattr`, `fsopen`/`fsconfig`/
//! `fsmount`). Where rustix has a safe wrapper (openat2 and the mount API but
//! `mount_setattr`) these only adapt it to berth's flags and errors; `openat` and
//! `mount_setattr` are our own small `unsafe` wrappers. Every error is the raw `Errno`.
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;

fn cstring(path: &Path) -> nix::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

/// Turn a syscall's fd result into an `OwnedFd`.
fn owned(ret: libc::c_long) -> nix::Result<OwnedFd> {
    let fd = Errno::result(ret)?;
    let fd = i32::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned this fd to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// rustix's errno as nix's (the callers match on nix's).
fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

/// `openat2(dir, path, {flags|O_CLOEXEC, mode, resolve})`.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: OFlag,
    mode: u32,
    resolve: u64,
) -> nix::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let flags = OFlags::from_bits_retain((flags | OFlag::O_CLOEXEC).bits() as _);
    let mode = Mode::from_bits_retain(mode as _);
    let resolve = ResolveFlags::from_bits_retain(resolve);
    loop {
        match rustix::fs::openat2(dir, path, flags, mode, resolve).map_err(errno) {
            // RESOLVE_IN_ROOT lookups return EAGAIN when a rename raced with them.
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// `openat(dir, path, flags|O_CLOEXEC, mode)`; `dir == None` means the cwd.
pub fn openat(
    dir: Option<BorrowedFd<'_>>,
    path: &Path,
    flags: OFlag,
    mode: u32,
) -> nix::Result<OwnedFd> {
    let path = cstring(path)?;
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: valid C string; the returned fd is wrapped at once.
    let ret = unsafe {
        libc::openat(
            dirfd,
            path.as_ptr(),
            (flags | OFlag::O_CLOEXEC).bits(),
            mode as libc::c_uint,
        )
    };
    owned(libc::c_long::from(ret))
}

/// `open_tree(fd, "", AT_EMPTY_PATH|OPEN_TREE_CLOEXEC|OPEN_TREE_CLONE [|AT_RECURSIVE])`:
/// a detached copy of the mount (tree) at `fd`, like a bind mount not yet attached.
pub fn clone_tree(fd: BorrowedFd<'_>, recursive: bool) -> nix::Result<OwnedFd> {
    use rustix::mount::OpenTreeFlags as F;
    let mut flags = F::OPEN_TREE_CLONE | F::OPEN_TREE_CLOEXEC | F::AT_EMPTY_PATH;
    if recursive {
        flags |= F::AT_RECURSIVE;
    }
    rustix::mount::open_tree(fd, c"", flags).map_err(errno)
}

/// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE [|AT_RECURSIVE])`: [`clone_tree`] of the mount
/// at a path of the caller's (symlinks followed), with no fd opened on it first.
pub fn clone_tree_at(path: &Path, recursive: bool) -> nix::Result<OwnedFd> {
    use rustix::mount::OpenTreeFlags as F;
    let mut flags = F::OPEN_TREE_CLONE | F::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= F::AT_RECURSIVE;
    }
    rustix::mount::open_tree(rustix::fs::CWD, path, flags).map_err(errno)
}

/// `move_mount(from, "", to, "", F_EMPTY_PATH|T_EMPTY_PATH)`: attach the (detached) mount
/// `from` on top of the file or directory `to`.
pub fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> nix::Result<()> {
    use rustix::mount::MoveMountFlags as F;
    let flags = F::MOVE_MOUNT_F_EMPTY_PATH | F::MOVE_MOUNT_T_EMPTY_PATH;
    rustix::mount::move_mount(from, c"", to, c"", flags).map_err(errno)
}

/// `move_mount(from, "", dir, name, F_EMPTY_PATH)`: attach `from` on the entry `name` of the
/// directory `dir`. Only for an entry the caller made where nothing else can write (`name`
/// is resolved by the kernel, a symlink followed).
pub fn move_mount_to(from: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<()> {
    use rustix::mount::MoveMountFlags as F;
    rustix::mount::move_mount(from, c"", dir, name, F::MOVE_MOUNT_F_EMPTY_PATH).map_err(errno)
}

/// Per-mount attributes to change with `mount_setattr`: `MOUNT_ATTR_*` bits to set and to
/// clear, and an optional propagation type (`MS_SHARED`, `MS_SLAVE`, `MS_PRIVATE`,
/// `MS_UNBINDABLE`, or 0 for unchanged).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MountAttr {
    pub set: u64,
    pub clr: u64,
    pub propagation: u64,
}

impl MountAttr {
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clr == 0 && self.propagation == 0
    }
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH [|AT_RECURSIVE], attr)`. `fd` must be the root of
/// a mount (attached or detached).
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, attr: MountAttr) -> nix::Result<()> {
    setattr(fd, recursive, attr, None)
}

/// `mount_setattr` with `MOUNT_ATTR_IDMAP` and the user namespace `userns` (whose maps say
/// how the ids on disk are shown): idmap the detached mount `fd` (the tree below it too with
/// `recursive`). The kernel allows this only on a mount that was never attached.
pub fn mount_setattr_idmap(
    fd: BorrowedFd<'_>,
    recursive: bool,
    userns: BorrowedFd<'_>,
) -> nix::Result<()> {
    let attr = MountAttr {
        set: libc::MOUNT_ATTR_IDMAP,
        ..Default::default()
    };
    setattr(fd, recursive, attr, Some(userns))
}

fn setattr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    attr: MountAttr,
    userns: Option<BorrowedFd<'_>>,
) -> nix::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let userns_fd = userns.map_or(0, |u| u.as_raw_fd() as u64);
    let raw = libc::mount_attr {
        attr_set: attr.set,
        attr_clr: attr.clr,
        propagation: attr.propagation,
        userns_fd,
    };
    // SAFETY: `raw` is a fully initialised mount_attr whose size is passed; empty path.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &raw as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// A new filesystem context: `fsopen(fstype, FSOPEN_CLOEXEC)`.
pub fn fsopen(fstype: &str) -> nix::Result<OwnedFd> {
    rustix::mount::fsopen(fstype, rustix::mount::FsOpenFlags::FSOPEN_CLOEXEC).map_err(errno)
}

/// `fsconfig(fs, FSCONFIG_SET_STRING, key, value)`, or `FSCONFIG_SET_FLAG` without a value.
pub fn fsconfig_set(fs: BorrowedFd<'_>, key: &str, value: Option<&str>) -> nix::Result<()> {
    match value {
        Some(v) => rustix::mount::fsconfig_set_string(fs, key, v),
        None => rustix::mount::fsconfig_set_flag(fs, key),
    }
    .map_err(errno)
}

/// `fsconfig(fs, FSCONFIG_CMD_CREATE)` then `fsmount(fs, FSMOUNT_CLOEXEC, attrs)`: a
/// detached mount of the new filesystem.
pub fn fsmount(fs: BorrowedFd<'_>, attr_flags: u64) -> nix::Result<OwnedFd> {
    use rustix::mount::{FsMountFlags, MountAttrFlags};
    rustix::mount::fsconfig_create(fs).map_err(errno)?;
    let attrs = MountAttrFlags::from_bits_retain(attr_flags as _);
    rustix::mount::fsmount(fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(errno)
}
