//! Terminal ioctls.
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::pty::Winsize;

nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, Winsize);
nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, Winsize);
nix::ioctl_write_int_bad!(tiocsctty, libc::TIOCSCTTY);
nix::ioctl_write_int_bad!(tiocgptpeer, libc::TIOCGPTPEER);

/// `TIOCGPTPEER`: open the slave of the pty master `master` without any path lookup, so a
/// /dev/pts entry swapped for something else cannot stand in for it (Linux 4.13).
pub fn open_peer(master: RawFd, flags: libc::c_int) -> Result<OwnedFd, Errno> {
    // SAFETY: TIOCGPTPEER takes the open flags as an int and returns a new descriptor,
    // which nothing else owns.
    let fd = unsafe { tiocgptpeer(master, flags) }?;
    // SAFETY: `fd` was just returned by the kernel and is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Make the terminal on `fd` the calling session's controlling terminal.
pub fn set_controlling(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an int argument and only affects the session's terminal.
    unsafe { tiocsctty(fd, 0) }.map(drop)
}

pub fn set_winsize(fd: RawFd, ws: &Winsize) -> Result<(), Errno> {
    // SAFETY: TIOCSWINSZ reads one Winsize from a valid pointer.
    unsafe { tiocswinsz(fd, ws) }.map(drop)
}

pub fn get_winsize(fd: RawFd) -> Result<Winsize, Errno> {
    let mut ws = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one Winsize into a valid pointer we own.
    unsafe { tiocgwinsz(fd, &mut ws) }?;
    Ok(ws)
}
