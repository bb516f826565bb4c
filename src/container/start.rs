//! `start`: release the init blocked on the exec fifo, then run the poststart hooks (a
//! failing one kills the container and fails `start`, as in runc).
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::state::{init_alive, Container, Status};

/// Release the init blocked on the exec fifo, then run the poststart hooks.
pub fn start(c: &Container) -> Result<()> {
    match c.status() {
        Status::Created => {}
        s => bail!(
            "cannot start container {:?}: it is {s}, not created",
            c.record.id
        ),
    }
    let path = c.fifo_path();
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .with_context(|| format!("opening the exec fifo {}", path.display()))?;
    // Wait for the init's byte, watching that it is still alive.
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u8)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => {
                if !init_alive(c.record.pid, c.record.init_start_time) {
                    bail!("the container init exited before start");
                }
            }
            Ok(_) => break,
            Err(e) => return Err(e).context("waiting on the exec fifo"),
        }
    }
    let mut byte = [0u8; 1];
    let n = fifo.read(&mut byte).context("reading the exec fifo")?;
    if n != 1 || byte[0] != b'0' {
        bail!("the container init closed the exec fifo without starting");
    }
    c.retire_fifo()?;
    tracing::debug!(
        pid = c.record.pid,
        "start {}: the exec fifo released the init",
        c.record.id
    );
    // Released: the program runs. It may be gone already; the hooks see it running, as
    // runc shows it.
    let state = c.state_doc(Status::Running);
    let hooks = c.hooks();
    // As runc: a failing poststart hook fails `start` and the container is killed (the
    // runtime-spec would only warn).
    if let Err(e) = crate::hooks::run_all(
        "poststart",
        hooks.and_then(|h| h.poststart().as_ref()),
        &state,
    ) {
        if let Err(k) = super::delete::stop_init(c) {
            tracing::warn!("stopping the container after the failed poststart hook: {k:#}");
        }
        return Err(e);
    }
    Ok(())
}
