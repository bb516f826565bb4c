//! A process the runtime waits for in the foreground (`run`, `exec` without --detach): every
//! signal we can catch is forwarded to it, a terminal is copied both ways with the window
//! size kept in sync, and its exit status becomes ours (128+n for a signal).
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::tty;

/// Signals a foreground run handles itself instead of dying from them.
pub fn handled_signals() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGTRAP,
        Signal::SIGABRT,
        Signal::SIGSYS,
    ] {
        set.remove(s);
    }
    set
}

/// Block the forwarded signals before the child exists, so none is lost; the child resets
/// its mask first thing.
pub fn block(sigs: &SigSet) -> Result<()> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(sigs), None)
        .context("blocking signals")
}

fn exit_code(s: WaitStatus) -> Option<i32> {
    match s {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Forward every handled signal to the init, copy the terminal, until the init exits.
pub fn forward_and_wait(pid: Pid, console: Option<OwnedFd>, sigs: &SigSet) -> Result<i32> {
    let sfd = SignalFd::with_flags(sigs, SfdFlags::SFD_CLOEXEC).context("signalfd")?;
    let _raw = console.as_ref().map(|_| tty::RawMode::enter());
    if let Some(m) = &console {
        tty::sync_winsize(0, m.as_fd());
    }
    let stdin = std::io::stdin();
    let mut stdin_open = console.is_some();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // The init may already be gone (a SIGCHLD can arrive before we poll).
        if let Some(code) = reap(pid)? {
            if let Some(m) = &console {
                drain(m, &mut buf);
            }
            tracing::debug!(pid = pid.as_raw(), status = code, "process exited");
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = &console {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r.context("poll")?,
        };
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (sig_ready, master_ready, stdin_ready) = (ready(0), ready(1), ready(2));
        drop(fds);
        if sig_ready {
            if let Some(info) = sfd.read_signal().context("reading signalfd")? {
                let sig = Signal::try_from(info.ssi_signo as i32).ok();
                match sig {
                    Some(Signal::SIGCHLD) | None => {}
                    Some(Signal::SIGWINCH) => {
                        if let Some(m) = &console {
                            tty::sync_winsize(0, m.as_fd());
                        }
                    }
                    Some(s) => {
                        let _ = kill(pid, s);
                    }
                }
            }
        }
        if let Some(m) = &console {
            if master_ready && !copy(m.as_raw_fd(), 1, &mut buf) {
                // The slave side is closed: nothing more will come; wait for the exit.
                let status = waitpid(pid, None).context("waiting for the container")?;
                if let Some(code) = exit_code(status) {
                    return Ok(code);
                }
            }
            if stdin_ready && !copy(0, m.as_raw_fd(), &mut buf) {
                stdin_open = false;
            }
        }
    }
}

fn reap(pid: Pid) -> Result<Option<i32>> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(s) => Ok(exit_code(s)),
        Err(nix::errno::Errno::EINTR) => Ok(None),
        Err(e) => Err(e).context("waiting for the container"),
    }
}

/// Copy one chunk; false on EOF or error.
fn copy(from: i32, to: i32, buf: &mut [u8]) -> bool {
    match crate::sys::fdio::read(from, buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => crate::sys::fdio::write_all(to, &buf[..n]).is_ok(),
    }
}

/// After the exit, copy whatever output is still buffered in the pty.
fn drain(m: &OwnedFd, buf: &mut [u8]) {
    loop {
        let mut fds = [PollFd::new(m.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
            || !copy(m.as_raw_fd(), 1, buf)
        {
            return;
        }
    }
}
