//! Taking ownership of raw fds the kernel handed us.
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Own an fd that the kernel just returned (from recvmsg, a syscall, or a known inherited fd).
/// The caller guarantees nothing else owns or will close it.
pub fn take(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass fds freshly returned by the kernel or documented as handed over to
    // this process (inherited LISTEN_FDS etc.); no other owner exists.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
