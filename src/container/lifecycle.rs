//! The lifecycle operations on an existing container: start, kill, delete. `create` is
//! in process/create.rs (it builds the init).
use std::io::Read;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use super::state::{init_alive, start_time, Container, Status};

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
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    let state = c.oci_state();
    let hooks = c.record.hooks.as_ref();
    crate::hooks::run_all_warn(
        "poststart",
        hooks.and_then(|h| h.poststart().as_ref()),
        &state,
    );
    Ok(())
}

/// Freeze every process of a running container.
pub fn pause(c: &Container) -> Result<()> {
    match c.status() {
        Status::Running => c.cgroup()?.freeze(),
        s => bail!(
            "cannot pause container {:?}: it is {s}, not running",
            c.record.id
        ),
    }
}

/// Thaw a paused container.
pub fn resume(c: &Container) -> Result<()> {
    match c.status() {
        Status::Paused => c.cgroup()?.thaw(),
        s => bail!(
            "cannot resume container {:?}: it is {s}, not paused",
            c.record.id
        ),
    }
}

/// Every pid in the container's cgroup.
pub fn pids(c: &Container) -> Result<Vec<i32>> {
    c.cgroup()?.pids()
}

/// Merge `patch` (a linux.resources JSON object) into the applied resources, write the
/// result to the cgroup, and record it. Unmentioned fields keep their values.
pub fn update(c: &mut Container, patch: serde_json::Value) -> Result<()> {
    if c.status() == Status::Stopped {
        bail!("cannot update container {:?}: it is stopped", c.record.id);
    }
    let mut merged = serde_json::to_value(&c.record.resources)?;
    if merged.is_null() {
        merged = serde_json::json!({});
    }
    merge(&mut merged, patch);
    let resources: oci_spec::runtime::LinuxResources =
        crate::spec::from_value_with_path(merged).context("linux.resources")?;
    c.cgroup()?.set(&resources)?;
    c.record.resources = Some(resources);
    c.save()
}

/// JSON merge: objects merge key by key, anything else replaces.
pub fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

/// Parse a signal as runc does: "TERM", "SIGTERM" or "15".
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| anyhow::anyhow!("invalid signal number {n}"));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| anyhow::anyhow!("unknown signal {s:?}"))
}

/// Signal the init, or with `all` every process in the container's cgroup.
pub fn kill(c: &Container, sig: Signal, all: bool) -> Result<()> {
    let status = c.status();
    if status == Status::Stopped && !all {
        bail!("container {:?} is not running", c.record.id);
    }
    if all {
        return c.cgroup()?.kill_all(sig);
    }
    signal_init(c, sig)
}

/// Signal the init through a pidfd, after checking it is still our process.
fn signal_init(c: &Container, sig: Signal) -> Result<()> {
    let pidfd = crate::sys::process::pidfd_open(c.record.pid)
        .with_context(|| format!("opening the init (pid {})", c.record.pid))?;
    if start_time(c.record.pid) != Some(c.record.init_start_time) {
        bail!("container {:?} is not running", c.record.id);
    }
    crate::sys::process::pidfd_send_signal(&pidfd, sig as i32)
        .with_context(|| format!("sending {sig} to pid {}", c.record.pid))
}

/// Kill what is left, remove the cgroup, run poststop hooks, remove the state.
pub fn delete(c: Container, force: bool) -> Result<()> {
    let status = c.status();
    if matches!(status, Status::Running | Status::Paused) && !force {
        bail!(
            "cannot delete container {:?}: it is running (stop it first, or use --force)",
            c.record.id
        );
    }
    let cg = c.cgroup()?;
    if status == Status::Paused {
        // A frozen init cannot die.
        cg.thaw()?;
    }
    if status != Status::Stopped {
        stop_init(&c)?;
    }
    // Processes outside the pid namespace's reach (a shared pid namespace) go too.
    if !cg.pids().unwrap_or_default().is_empty() {
        cg.kill_all(Signal::SIGKILL)?;
    }
    cg.destroy()?;
    let state = c.state_doc(Status::Stopped);
    let hooks = c.record.hooks.as_ref();
    crate::hooks::run_all_warn(
        "poststop",
        hooks.and_then(|h| h.poststop().as_ref()),
        &state,
    );
    c.remove_dir()
}

/// SIGKILL the init and wait (up to 10 s) until it is gone.
fn stop_init(c: &Container) -> Result<()> {
    let Ok(pidfd) = crate::sys::process::pidfd_open(c.record.pid) else {
        return Ok(()); // already gone
    };
    if start_time(c.record.pid) != Some(c.record.init_start_time) {
        return Ok(());
    }
    crate::sys::process::pidfd_send_signal(&pidfd, libc::SIGKILL)
        .with_context(|| format!("killing the init (pid {})", c.record.pid))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u8)) {
            Ok(n) if n > 0 => return Ok(()),
            _ if Instant::now() > deadline => {
                bail!("the init (pid {}) did not exit after SIGKILL", c.record.pid)
            }
            _ => {}
        }
    }
}

use std::os::unix::fs::OpenOptionsExt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_unmentioned_fields() {
        let mut base = serde_json::json!({"memory": {"limit": 1, "swap": 2}, "pids": {"limit": 5}});
        merge(
            &mut base,
            serde_json::json!({"memory": {"limit": 9}, "cpu": {"shares": 3}}),
        );
        assert_eq!(
            base,
            serde_json::json!({"memory": {"limit": 9, "swap": 2}, "pids": {"limit": 5}, "cpu": {"shares": 3}})
        );
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("SIGKILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("15").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("usr1").unwrap(), Signal::SIGUSR1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
