//! Small fd helpers on raw fds we do not own (inherited stdio and preserved fds).
use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

/// Clear FD_CLOEXEC on an inherited fd so it survives exec.
pub fn clear_cloexec(fd: i32) -> Result<(), Errno> {
    // SAFETY: fcntl on an integer fd; EBADF is returned if it is not open.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

/// Give an stdio fd (a pipe or file, never a shared device like /dev/null) to the container
/// user, as runc does; failures are ignored (the fd may be a terminal we do not own).
pub fn chown_stdio(fd: i32, uid: Uid, gid: Gid) {
    // SAFETY: fstat writes into a zeroed struct we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to st; fd is an integer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return;
    }
    if st.st_mode & libc::S_IFMT == libc::S_IFCHR {
        return;
    }
    // SAFETY: fchown on an integer fd with plain ids.
    unsafe { libc::fchown(fd, uid.as_raw(), gid.as_raw()) };
}
