//! Terminals. In the init: a pty from the container's own devpts, its slave bound on
//! /dev/console and made the controlling terminal and stdio, its master sent out (to the
//! `--console-socket`, or to the parent for a foreground `run`). In the parent of a
//! foreground `run`: the caller's terminal in raw mode, bytes copied both ways, window size
//! kept in sync.
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt, Winsize};
use nix::sys::termios::{self, SetArg, Termios};

/// Inside the container: make a pty from its devpts, wire it as the controlling terminal and
/// stdio, and return the master for the caller to send. The init also binds the slave on
/// /dev/console; an exec'd process does not.
pub fn open_container_pty(size: Option<(u32, u32)>, bind_console: bool) -> Result<OwnedFd> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .context("opening /dev/ptmx")?;
    grantpt(&master).context("grantpt")?;
    unlockpt(&master).context("unlockpt")?;
    let name = ptsname_r(&master).context("ptsname")?;
    // The slave straight from the master (CVE-2025-52565: a /dev/pts entry swapped for a
    // link to another file would make that file the console and the program's stdio).
    let slave = crate::sys::tty::open_peer(
        master.as_raw_fd(),
        libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
    )
    .with_context(|| format!("opening the pty slave {name} (TIOCGPTPEER)"))?;
    check_pty_slave(slave.as_fd(), &name)?;
    if bind_console {
        crate::rootfs::mount_console(slave.as_fd(), &PathBuf::from(&name))?;
    }
    if let Some((h, w)) = size {
        let ws = Winsize {
            ws_row: h as u16,
            ws_col: w as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        set_winsize_fd(master.as_fd(), &ws)?;
    }
    become_controlling(slave.as_raw_fd())?;
    for target in 0..=2 {
        nix::unistd::dup2(slave.as_raw_fd(), target)
            .with_context(|| format!("dup2 of the pty slave to fd {target}"))?;
    }
    // nix's PtyMaster does not convert into an OwnedFd: a duplicate, and the original closes.
    master
        .as_fd()
        .try_clone_to_owned()
        .context("dup of the pty master")
}

/// Unix98 pty slaves are character devices of majors 136 to 143.
fn check_pty_slave(fd: BorrowedFd, name: &str) -> Result<()> {
    let st = nix::sys::stat::fstat(fd.as_raw_fd())
        .with_context(|| format!("stat of the pty slave {name}"))?;
    let major = nix::sys::stat::major(st.st_rdev);
    let is_char = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
    if !is_char || !(136..=143).contains(&major) {
        anyhow::bail!(
            "the pty slave {name} is not a pty (mode {:o}, major {major})",
            st.st_mode
        );
    }
    Ok(())
}

fn become_controlling(fd: RawFd) -> Result<()> {
    crate::sys::tty::set_controlling(fd).context("making the pty the controlling terminal")
}

fn set_winsize_fd(fd: BorrowedFd, ws: &Winsize) -> Result<()> {
    crate::sys::tty::set_winsize(fd.as_raw_fd(), ws).context("setting the window size")
}

/// Turn off ONLCR on the pty (through its master), so a program's LF reaches the caller's
/// terminal as LF, not CR LF.
pub fn clear_onlcr(master: &OwnedFd) -> Result<()> {
    let mut t = termios::tcgetattr(master.as_fd()).context("reading the pty's termios")?;
    t.output_flags.remove(termios::OutputFlags::ONLCR);
    termios::tcsetattr(master.as_fd(), SetArg::TCSANOW, &t).context("clearing ONLCR on the pty")
}

/// Copy the caller's window size to the pty master.
pub fn sync_winsize(from: RawFd, to: BorrowedFd) {
    if let Ok(ws) = crate::sys::tty::get_winsize(from) {
        let _ = set_winsize_fd(to, &ws);
    }
}

/// The caller's terminal in raw mode for as long as this lives.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

/// Send the pty master over a connected console socket, as runc does (the payload is the
/// name; the fd rides as SCM_RIGHTS).
pub fn send_to_console_socket(sock: RawFd, master: &OwnedFd) -> Result<()> {
    crate::process::channel::send_packet(sock, b"/dev/ptmx", &[master.as_raw_fd()])
        .context("sending the pty master to the console socket")
}
