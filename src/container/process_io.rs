//! What the caller of create, run and exec hands the new process besides its config: the
//! console socket that gets its pty, the pidfd socket, the pid file and the preserved fds.
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::process::pidfd::PidfdSocket;

#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessIo<'a> {
    /// `--console-socket`: receives the pty master when process.terminal is true.
    pub console_socket: Option<&'a Path>,
    /// `--pidfd-socket`: receives a pidfd of the new process.
    pub pidfd_socket: Option<&'a Path>,
    /// `--pid-file`: gets the new process's pid.
    pub pid_file: Option<&'a Path>,
    /// `--preserve-fds`: this many fds above stdio go to the process.
    pub preserve_fds: u32,
    /// Foreground without a console socket: the parent keeps the pty master.
    pub keep_console: bool,
}

impl ProcessIo<'_> {
    /// A terminal needs somewhere to go: the console socket, or a foreground caller.
    pub fn check_terminal(&self, terminal: bool) -> Result<()> {
        if terminal && self.console_socket.is_none() && !self.keep_console {
            bail!("process.terminal is true: pass --console-socket (or run in the foreground)");
        }
        Ok(())
    }

    pub fn connect_console(&self) -> Result<Option<OwnedFd>> {
        self.console_socket
            .map(|s| {
                UnixStream::connect(s)
                    .map(OwnedFd::from)
                    .with_context(|| format!("connecting to --console-socket {}", s.display()))
            })
            .transpose()
    }

    pub fn connect_pidfd(&self) -> Result<Option<PidfdSocket>> {
        self.pidfd_socket.map(PidfdSocket::connect).transpose()
    }
}
