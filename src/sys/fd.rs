//! Taking ownership of raw fds the kernel handed us.
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Own an fd that the kernel just returned (from recvmsg, a syscall, or a known inherited fd).
///
/// # Safety
/// `fd` must be open, and nothing else may own it or close it: the returned `OwnedFd` closes
/// it when dropped.
pub unsafe fn take(fd: RawFd) -> OwnedFd {
    // SAFETY: the caller's contract above.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A new close-on-exec fd on the same open file as `fd`, a number the caller was handed (as
/// `--status-fd`): the duplicate is ours alone.
pub fn dup_number(fd: RawFd) -> nix::Result<OwnedFd> {
    let new = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: F_DUPFD_CLOEXEC just returned `new`: it is open and nothing else owns it.
    Ok(unsafe { take(new) })
}
