//! Mount-related syscalls that nix does not wrap in an fd-safe way: `openat2` and `openat`
//! returning `OwnedFd`, the new mount API (`open_tree`, `move_mount`, `mount_setattr`,
//! `fsopen`/`fsconfig`/`fsmount`). Each wrapper checks the return value and hands back
//! either an owned fd or the raw `Errno`.
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;

fn cstring(path: &Path) -> nix::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

fn cstr(s: &str) -> nix::Result<CString> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

/// Turn a syscall's fd result into an `OwnedFd`.
fn owned(ret: libc::c_long) -> nix::Result<OwnedFd> {
    let fd = Errno::result(ret)?;
    let fd = i32::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned this fd to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat2(dir, path, {flags|O_CLOEXEC, mode, resolve})`.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: OFlag,
    mode: u32,
    resolve: u64,
) -> nix::Result<OwnedFd> {
    let path = cstring(path)?;
    // SAFETY: open_how is plain integers; all-zero is its documented initial state.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | OFlag::O_CLOEXEC).bits() as u64;
    how.mode = u64::from(mode);
    how.resolve = resolve;
    loop {
        // SAFETY: `path` is a valid C string, `how` is a fully initialised open_how and its
        // size is passed; the returned fd is wrapped at once by `owned`.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        match owned(ret) {
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
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: empty C string literal, valid fd; the returned fd is wrapped at once.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) };
    owned(ret)
}

/// `move_mount(from, "", to, "", F_EMPTY_PATH|T_EMPTY_PATH)`: attach the (detached) mount
/// `from` on top of the file or directory `to`.
pub fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> nix::Result<()> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: empty C string literals and valid fds; no memory is handed to the kernel.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    };
    Errno::result(ret).map(drop)
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
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let mut raw = libc::mount_attr {
        attr_set: 0,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    raw.attr_set = attr.set;
    raw.attr_clr = attr.clr;
    raw.propagation = attr.propagation;
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
    let fstype = cstr(fstype)?;
    // SAFETY: valid C string; the returned fd is wrapped at once.
    let ret = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) };
    owned(ret)
}

/// `fsconfig(fs, FSCONFIG_SET_STRING, key, value)`, or `FSCONFIG_SET_FLAG` without a value.
pub fn fsconfig_set(fs: BorrowedFd<'_>, key: &str, value: Option<&str>) -> nix::Result<()> {
    let key = cstr(key)?;
    let value = value.map(cstr).transpose()?;
    let (cmd, vptr) = match &value {
        Some(v) => (libc::FSCONFIG_SET_STRING, v.as_ptr()),
        None => (libc::FSCONFIG_SET_FLAG, std::ptr::null()),
    };
    // SAFETY: valid C strings (or null for a flag, as the ABI requires); aux is 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            cmd,
            key.as_ptr(),
            vptr,
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// `fsconfig(fs, FSCONFIG_CMD_CREATE)` then `fsmount(fs, FSMOUNT_CLOEXEC, attrs)`: a
/// detached mount of the new filesystem.
pub fn fsmount(fs: BorrowedFd<'_>, attr_flags: u64) -> nix::Result<OwnedFd> {
    // SAFETY: no pointers are passed (null key/value as the ABI requires for CMD_CREATE).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(ret)?;
    // SAFETY: plain integer arguments; the returned fd is wrapped at once.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attr_flags,
        )
    };
    owned(ret)
}
