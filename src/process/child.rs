//! The wrapper every child of the runtime (the container init, an exec'd process) runs in,
//! from the fork to execve. Whatever ends the child early reaches the parent as the
//! `ChildError` it reports:
//!
//! - an error returned by a step is sent as `Failed(ChildError)`;
//! - a panic is caught by a panic hook, which sends `Failed(ChildError{step: "panic"})` on
//!   the same socket and exits. The release profile has `panic = "abort"` (smaller and
//!   faster binary; see the README's design notes), so `catch_unwind` would never see the
//!   panic: the hook runs before the abort, whatever the profile.
//!
//! In both cases the child then leaves with `_exit(1)`: no destructor or atexit handler
//! inherited from the runtime runs in the container's processes.
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use super::channel::{send_packet, Channel, ChildError, Msg};

/// A child's work ends in execve; it returns only to report a failure.
pub enum Never {}

/// The sync socket the panic hook reports on (-1: none).
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);

/// Run `body` in a freshly forked child and never return. `what` names the child in the
/// stderr fallback ("container init", "exec process").
pub fn run(what: &str, channel: &Channel, body: impl FnOnce() -> Result<Never, ChildError>) -> ! {
    REPORT_FD.store(channel.raw(), Ordering::Relaxed);
    std::panic::set_hook(Box::new(report_panic));
    let err = match body() {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // The parent may be gone (after `create` returned, a startContainer hook failed): then
    // the log (the create's --log file, or stderr) gets the error line.
    if channel.send(&Msg::Failed(err.clone())).is_err() {
        crate::log::orphan_error(&format!("{what}: {err}"));
    }
    crate::sys::process::exit_now(1)
}

/// The panic hook: the panic as a ChildError on the sync socket, then exit.
fn report_panic(info: &std::panic::PanicHookInfo) {
    let err = ChildError {
        step: "panic".into(),
        errno: 0,
        message: panic_message(info),
    };
    let fd: RawFd = REPORT_FD.load(Ordering::Relaxed);
    let sent = fd >= 0
        && serde_json::to_vec(&Msg::Failed(err.clone()))
            .is_ok_and(|body| send_packet(fd, &body, &[]).is_ok());
    if !sent {
        eprintln!("berth: {err}");
    }
    crate::sys::process::exit_now(1)
}

fn panic_message(info: &std::panic::PanicHookInfo) -> String {
    let payload = info.payload();
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    match info.location() {
        Some(l) => format!("panicked at {}:{}: {msg}", l.file(), l.line()),
        None => format!("panicked: {msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::unistd::{fork, ForkResult};

    /// Fork a child that runs `body` in the wrapper; what the parent hears.
    fn failure_of(body: fn() -> Result<Never, ChildError>) -> String {
        let (parent, child) = Channel::pair("test child").unwrap();
        // SAFETY: glibc's fork (its atfork handlers keep malloc usable in the child of this
        // multi-threaded test process); the child only sends on a socket and exits.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                drop(parent);
                run("test child", &child, body)
            }
            ForkResult::Parent { child: pid } => {
                drop(child);
                let got = parent.recv().unwrap();
                nix::sys::wait::waitpid(pid, None).unwrap();
                match got {
                    Some((Msg::Failed(e), _)) => e.to_string(),
                    other => panic!("expected Failed, got {other:?}"),
                }
            }
        }
    }

    #[test]
    fn an_error_reaches_the_parent() {
        let e = failure_of(|| {
            Err(ChildError {
                step: "rootfs".into(),
                errno: 1,
                message: "mounting: EPERM".into(),
            })
        });
        assert_eq!(e, "rootfs: mounting: EPERM");
    }

    #[test]
    fn a_panic_reaches_the_parent() {
        let e = failure_of(|| panic!("the init broke"));
        assert!(
            e.starts_with("panic: panicked at src/process/child.rs:"),
            "{e}"
        );
        assert!(e.ends_with(": the init broke"), "{e}");
    }
}
