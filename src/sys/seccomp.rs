//! seccomp(2) and the user-notification ioctls.
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

pub use libc::{
    seccomp_notif as Notif, seccomp_notif_resp as NotifResp, sock_filter as SockFilter,
};

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)` for the calling thread (all threads with
/// `SECCOMP_FILTER_FLAG_TSYNC`). Returns the listener fd when `flags` has
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
pub fn set_mode_filter(prog: &[SockFilter], flags: u32) -> Result<Option<OwnedFd>, Errno> {
    let len = u16::try_from(prog.len()).map_err(|_| Errno::E2BIG)?;
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: the kernel copies `len` instructions from `filter`, which points into `prog`,
    // alive for the duration of the call; it never writes through the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &fprog as *const libc::sock_fprog,
        )
    };
    let ret = Errno::result(ret)?;
    if u64::from(flags) & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    let fd = libc::c_int::try_from(ret).map_err(|_| Errno::EBADF)?;
    // SAFETY: with NEW_LISTENER the kernel returns a new fd that nobody else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Whether this kernel knows the filter flag `flag`: `seccomp(SECCOMP_SET_MODE_FILTER, flag,
/// NULL)` fails with EFAULT (the flag passed, the program pointer did not) when it does and
/// with EINVAL when it does not. Nothing is installed either way.
pub fn filter_flag_known(flag: u32) -> bool {
    // SAFETY: a null program pointer: the kernel validates the flags, then fails to read
    // the program (EFAULT) without installing anything.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flag),
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    ret == -1 && Errno::last() == Errno::EFAULT
}

/// `SECCOMP_IOCTL_NOTIF_RECV`: blocks until a filtered syscall is waiting for an answer.
pub fn notif_recv(listener: BorrowedFd) -> Result<Notif, Errno> {
    // SAFETY: seccomp_notif is plain data; all-zero is the state the kernel requires.
    let mut notif: Notif = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl writes one seccomp_notif into `notif`, a valid exclusive reference.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV as _,
            &mut notif as *mut Notif,
        )
    };
    Errno::result(ret).map(|_| notif)
}

/// `SECCOMP_IOCTL_NOTIF_SEND`: answers the notification `resp.id`.
pub fn notif_send(listener: BorrowedFd, resp: &NotifResp) -> Result<(), Errno> {
    let mut resp = *resp;
    // SAFETY: the ioctl reads one seccomp_notif_resp from a valid reference.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND as _,
            &mut resp as *mut NotifResp,
        )
    };
    Errno::result(ret).map(drop)
}
