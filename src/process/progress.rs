//! How far a child of the runtime (the container init, an exec'd process) got, so that the
//! parent can say where it was when it died without a word: a seccomp filter that kills, a
//! signal, the OOM killer. Every step a child completes goes through `Step::step`, which
//! records the step's name here; `execve` records itself last. The record lives in an area
//! shared with the parent (`sys::shared`), so it costs no system call and still works after
//! a filter that denies every call.
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::OnceLock;

use anyhow::Result;

/// Byte 0: the name's length; then the name (truncated).
const LEN: usize = 64;

/// The step a child is about to exec with, once everything else is done.
pub const EXECVE: &str = "execve";

/// The area this process records into, once it is a child that attached (unset in the
/// runtime itself).
static AREA: OnceLock<&'static [AtomicU8]> = OnceLock::new();

/// With `--debug`, a child also logs each step it completes, until `quiet`: from its
/// session on, its stderr may be the container's terminal, and after its seccomp filter a
/// log write could be what the profile kills.
static LOUD: AtomicBool = AtomicBool::new(false);

/// Who the child is, for its debug lines ("container init", "exec process").
static ROLE: OnceLock<&'static str> = OnceLock::new();

/// The parent's handle on one child's record, made before the fork.
pub struct Progress {
    area: &'static [AtomicU8],
}

impl Progress {
    pub fn new() -> Result<Progress> {
        Ok(Progress {
            area: crate::sys::shared::shared_bytes(LEN)?,
        })
    }

    /// In the child, right after the fork: record its steps from now on. `role` names the
    /// child in its debug lines.
    pub fn attach(&self, role: &'static str) {
        let _ = AREA.set(self.area);
        let _ = ROLE.set(role);
        LOUD.store(tracing::enabled!(tracing::Level::DEBUG), Ordering::Relaxed);
    }

    /// The last step the child recorded.
    pub fn last(&self) -> Option<String> {
        let b = self.area;
        let n = (b[0].load(Ordering::Relaxed) as usize).min(LEN - 1);
        let name: Vec<u8> = b[1..=n].iter().map(|c| c.load(Ordering::Relaxed)).collect();
        (n > 0).then(|| String::from_utf8_lossy(&name).into_owned())
    }

    /// Whether the child got as far as its execve.
    pub fn reached_execve(&self) -> bool {
        self.last().as_deref() == Some(EXECVE)
    }

    /// Where the child was, for an error: `after its step 'rootfs'`.
    pub fn describe(&self) -> String {
        match self.last() {
            Some(s) if s == EXECVE => "in its execve".to_string(),
            Some(s) => format!("after its step '{s}'"),
            None => "before its first step".to_string(),
        }
    }
}

/// No more debug lines from this child (see `LOUD`).
pub fn quiet() {
    LOUD.store(false, Ordering::Relaxed);
}

/// Record that the child completed `step` (a no-op outside a child).
pub fn record(step: &str) {
    let Some(area) = AREA.get() else {
        return;
    };
    if LOUD.load(Ordering::Relaxed) {
        let role = ROLE.get().copied().unwrap_or("child");
        tracing::debug!(pid = std::process::id(), "{role}: {step} done");
    }
    let name = step.as_bytes();
    let n = name.len().min(LEN - 1);
    for (slot, byte) in area[1..=n].iter().zip(name) {
        slot.store(*byte, Ordering::Relaxed);
    }
    area[0].store(n as u8, Ordering::Relaxed);
}

/// What a child that died without a word died of, and where: `killed by SIGSYS (a seccomp
/// filter's kill action) after its step 'seccomp'`. None while it has not ended.
pub fn death(status: nix::sys::wait::WaitStatus, progress: &Progress) -> Option<String> {
    use nix::sys::wait::WaitStatus;
    let how = match status {
        WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGSYS, _) => {
            "was killed by SIGSYS (a seccomp filter's kill action)".to_string()
        }
        WaitStatus::Signaled(_, sig, _) => format!("was killed by {sig}"),
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        _ => return None,
    };
    Some(format!("{how} {}", progress.describe()))
}
