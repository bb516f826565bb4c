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
