//! `kill`: signal the init, or every process of the container.
use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;

use super::state::{start_time, Container, PidNamespace, Status};

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
    // As runc 1.2+: without a pid namespace of its own, the init's death does not take the
    // other processes with it, so a KILL goes to every process in the cgroup, whether the
    // init is still there or not. Without a cgroup (rootless) only the init can be named.
    let cgroup = !matches!(c.record.cgroup, crate::cgroups::CgroupState::Disabled);
    if sig == Signal::SIGKILL && cgroup && c.pid_namespace()? == PidNamespace::Host {
        return c.cgroup()?.kill_all(sig);
    }
    let status = c.status();
    if status == Status::Stopped && !all {
        // A KILL of a container whose init is gone already did its job (runc succeeds too).
        if sig == Signal::SIGKILL {
            return Ok(());
        }
        bail!("container {:?} is not running", c.record.id);
    }
    if all {
        return c.cgroup()?.kill_all(sig);
    }
    signal_init(c, sig)
}

/// `kill ID 0`: succeed while the container's init is alive, as kill(2) with signal 0.
pub fn check_alive(c: &Container) -> Result<()> {
    if c.status() == Status::Stopped {
        bail!("container {:?} is not running", c.record.id);
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

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
