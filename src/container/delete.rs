//! `delete`: kill what is left, remove the cgroup, run the poststop hooks, remove the state.
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use super::state::{start_time, Container, PidNamespace, Status};

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
    return_netdevs(&c);
    if status != Status::Stopped {
        stop_init(&c)?;
    }
    // Processes outside the pid namespace's reach (a shared or joined pid namespace), in
    // the container's cgroup or its sub-cgroups of any hierarchy, go too; the cgroups are
    // removed once they are gone. In a pid namespace of its own nothing is left once the
    // init is gone (the kernel kills the rest, and reaps them, before the init's exit is
    // reported), so that listing is skipped, as runc skips it: it was a tenth of delete's
    // instructions (bench/callgrind.sh).
    if c.pid_namespace().ok() != Some(PidNamespace::Own) {
        kill_the_rest(cg.as_ref())?;
    }
    cg.destroy()?;
    let state = c.state_doc(Status::Stopped);
    let hooks = c.hooks();
    crate::hooks::run_all_warn(
        "poststop",
        hooks.and_then(|h| h.poststop().as_ref()),
        &state,
    );
    c.remove_dir()
}

/// linux.netDevices go back to the host under their own names, from the namespace pinned
/// at create (it outlives the init). A device that cannot go back is a warning: the rest
/// of the delete still happens.
fn return_netdevs(c: &Container) {
    let pin = c.dir.join(crate::process::netdev::PIN);
    if !pin.exists() {
        return;
    }
    let r = (|| {
        let config = c.config()?;
        let devs = crate::spec::netdev::parse(config.linux().as_ref())?;
        let ns = std::fs::File::open(&pin).with_context(|| format!("opening {}", pin.display()))?;
        crate::process::netdev::move_out(&devs, &ns)
    })();
    if let Err(e) = r {
        tracing::warn!("delete {}: linux.netDevices: {e:#}", c.record.id);
    }
    if let Err(e) = crate::process::netdev::unpin(&pin) {
        tracing::warn!("delete {}: {e:#}", c.record.id);
    }
}

/// How long delete waits for the killed processes of the cgroup to be gone.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// SIGKILLs whatever is left in any of the container's cgroup directories (sub-cgroups
/// included) and waits, bounded, until none is left, so the directories can go.
fn kill_the_rest(cg: &dyn crate::cgroups::Manager) -> Result<()> {
    if cg.pids_anywhere().unwrap_or_default().is_empty() {
        return Ok(());
    }
    cg.kill_all(Signal::SIGKILL)?;
    let gone = crate::cgroups::fs::wait_until(EXIT_WAIT, || {
        let left = cg.pids_anywhere()?;
        // A process only in another hierarchy's sub-cgroup is not in kill_all's list.
        crate::cgroups::signal_pids(&left, Signal::SIGKILL)?;
        Ok(left.is_empty())
    })?;
    if !gone {
        bail!(
            "processes {:?} of cgroup {} are still there {} s after SIGKILL",
            cg.pids_anywhere().unwrap_or_default(),
            cg.path(),
            EXIT_WAIT.as_secs()
        );
    }
    Ok(())
}

/// SIGKILL the init and wait (up to 10 s) until it is gone.
pub(super) fn stop_init(c: &Container) -> Result<()> {
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
