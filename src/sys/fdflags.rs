//! Small fd helpers on raw fds we do not own (inherited stdio and preserved fds).
use nix::errno::Errno;
use nix::unistd::Uid;

/// Clear FD_CLOEXEC on an inherited fd so it survives exec.
pub fn clear_cloexec(fd: i32) -> Result<(), Errno> {
    // SAFETY: fcntl on an integer fd; EBADF is returned if it is not open.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

/// Give an stdio fd to the container user (its owner only, as runc does); failures are
/// ignored (an unmapped owner, a read-only /dev). Skipped when the user owns it already,
/// for /dev/null, and for any other character device unless `own_tty` says the fd is the
/// container's own pty.
pub fn chown_stdio(fd: i32, uid: Uid, own_tty: bool) {
    // SAFETY: fstat writes into a zeroed struct we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to st; fd is an integer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_uid == uid.as_raw() {
        return;
    }
    if st.st_mode & libc::S_IFMT == libc::S_IFCHR && (!own_tty || st.st_rdev == libc::makedev(1, 3))
    {
        return;
    }
    // SAFETY: fchown on an integer fd with plain ids; u32::MAX (-1) keeps the group.
    unsafe { libc::fchown(fd, uid.as_raw(), u32::MAX) };
}
