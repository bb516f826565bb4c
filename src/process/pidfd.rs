//! `--pidfd-socket PATH` (create, run, exec), as runc 1.2+: the runtime connects to the unix
//! socket before it starts the process, then sends a pidfd of the new process as SCM_RIGHTS
//! with the name runc uses ("standard" for an init, "setns" for an exec'd process).
//! containerd 2 waits on it instead of on the pid.
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub struct PidfdSocket {
    sock: OwnedFd,
    path: PathBuf,
}

impl PidfdSocket {
    pub fn connect(path: &Path) -> Result<PidfdSocket> {
        let sock = UnixStream::connect(path)
            .with_context(|| format!("connecting to --pidfd-socket {}", path.display()))?;
        Ok(PidfdSocket {
            sock: sock.into(),
            path: path.to_path_buf(),
        })
    }

    /// Send a pidfd of `pid` (a child of ours, alive or not yet reaped).
    pub fn send(&self, pid: i32, name: &str) -> Result<()> {
        let pidfd = crate::sys::process::pidfd_open(pid)
            .with_context(|| format!("pidfd_open({pid}) for --pidfd-socket"))?;
        super::channel::send_packet(self.sock.as_raw_fd(), name.as_bytes(), &[pidfd.as_raw_fd()])
            .with_context(|| {
                format!(
                    "sending the pidfd to --pidfd-socket {}",
                    self.path.display()
                )
            })
    }
}
