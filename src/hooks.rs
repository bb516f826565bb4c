//! OCI hooks: each hook gets the container state as JSON on stdin, its own args (argv[0]
//! kept) and env, and an optional timeout (seconds). A hook fails when it exits non-zero,
//! dies or times out. A hook without `env` inherits an environment as runc's hooks do: the
//! runtime's own for the hooks the runtime runs (prestart, createRuntime, poststart,
//! poststop), the container process's (`process.env`) for the ones the init runs
//! (createContainer, startContainer).
//!
//! Failure rules, runc's: a failing prestart, createRuntime, createContainer or
//! startContainer hook fails the operation (the caller tears the container down); a failing
//! poststart hook fails `start` and the caller kills the container (the runtime-spec says
//! warn and go on; runc does not); a failing poststop hook is a warning only.
use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::Hook;

/// Whether the runtime runs hooks of its own while the container is being created (prestart,
/// createRuntime): the init then stops for them once its mounts are done.
pub fn runtime_hooks_at_create(hooks: Option<&oci_spec::runtime::Hooks>) -> bool {
    hooks.is_some_and(|h| {
        [h.prestart(), h.create_runtime()]
            .iter()
            .any(|k| k.as_ref().is_some_and(|v| !v.is_empty()))
    })
}

/// Run the hooks of one kind from the runtime, in order; stop at the first failure.
pub fn run_all(kind: &str, hooks: Option<&Vec<Hook>>, state: &serde_json::Value) -> Result<()> {
    run_with(kind, hooks, state, None)
}

/// Run the hooks of one kind from the container init: a hook without `env` gets `env` (the
/// container process's environment).
pub fn run_all_in_container(
    kind: &str,
    hooks: Option<&Vec<Hook>>,
    state: &serde_json::Value,
    env: &[String],
) -> Result<()> {
    run_with(kind, hooks, state, Some(env))
}

fn run_with(
    kind: &str,
    hooks: Option<&Vec<Hook>>,
    state: &serde_json::Value,
    env: Option<&[String]>,
) -> Result<()> {
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        // runc's words, which tools match: `error running KIND hook #N: …`.
        run_one(h, state, env)
            .with_context(|| h.path().display().to_string())
            .with_context(|| format!("error running {kind} hook #{i}"))?;
    }
    Ok(())
}

/// Run hooks whose failure is only a warning (poststop).
pub fn run_all_warn(kind: &str, hooks: Option<&Vec<Hook>>, state: &serde_json::Value) {
    if let Err(e) = run_all(kind, hooks, state) {
        tracing::warn!("{e:#}");
    }
}

fn run_one(h: &Hook, state: &serde_json::Value, inherit: Option<&[String]>) -> Result<()> {
    let args = h
        .args()
        .clone()
        .unwrap_or_else(|| vec![h.path().display().to_string()]);
    let mut cmd = Command::new(h.path());
    if let Some(a0) = args.first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(a0);
    }
    cmd.args(args.iter().skip(1)).stdin(Stdio::piped());
    let env = match (h.env(), inherit) {
        (Some(own), _) => Some(own.as_slice()),
        (None, Some(process)) => Some(process),
        (None, None) => None, // the runtime's environment
    };
    if let Some(env) = env {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    let mut child = cmd.spawn().context("starting the hook")?;
    let body = serde_json::to_vec(state)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(&body);
    }
    let status = match h.timeout() {
        Some(t) if t <= 0 => bail!("timeout must be positive, got {t}"),
        Some(t) => {
            let deadline = Instant::now() + Duration::from_secs(t as u64);
            let pidfd = crate::sys::process::pidfd_open(child.id() as i32)
                .context("opening a pidfd for the hook")?;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("timed out after {t}s");
                }
                let ms = PollTimeout::try_from(left.as_millis().min(60_000) as i32)
                    .unwrap_or(PollTimeout::MAX);
                let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, ms) {
                    Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                    Ok(_) => break child.wait()?,
                    Err(e) => return Err(e).context("waiting for the hook"),
                }
            }
        }
        None => child.wait().context("waiting for the hook")?,
    };
    if !status.success() {
        bail!("{}", go_exit_status(status));
    }
    Ok(())
}

/// An exit status as Go's os/exec words it in runc's hook errors: `exit status 1`,
/// `signal: killed`.
fn go_exit_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => {
            let name = nix::sys::signal::Signal::try_from(sig)
                .map(|s| go_signal_name(s).to_string())
                .unwrap_or_else(|_| format!("signal {sig}"));
            format!("signal: {name}")
        }
        _ => status.to_string(),
    }
}

/// Go's names for the signals a hook usually dies of.
fn go_signal_name(s: nix::sys::signal::Signal) -> &'static str {
    use nix::sys::signal::Signal as S;
    match s {
        S::SIGKILL => "killed",
        S::SIGTERM => "terminated",
        S::SIGSEGV => "segmentation fault",
        S::SIGABRT => "aborted",
        S::SIGINT => "interrupt",
        S::SIGHUP => "hangup",
        S::SIGPIPE => "broken pipe",
        other => other.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: serde_json::Value) -> Hook {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn state_on_stdin_args_env() {
        let dir = std::env::temp_dir().join(format!("berth-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}; echo \" $1 $X\" >> {}", out.display(), out.display()), "sh", "arg1"],
            "env": ["X=envx"]
        }));
        run_all("prestart", Some(&vec![h]), &serde_json::json!({"id": "c1"})).unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        assert!(got.starts_with("{\"id\":\"c1\"}"), "{got}");
        assert!(got.contains(" arg1 envx"), "{got}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failure_and_timeout() {
        let f = hook(serde_json::json!({"path": "/bin/false"}));
        let e = run_all("prestart", Some(&vec![f]), &serde_json::json!({})).unwrap_err();
        assert!(
            format!("{e:#}").contains("error running prestart hook #0: /bin/false: exit status 1"),
            "{e:#}"
        );
        let t =
            hook(serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}));
        let e = run_all("poststop", Some(&vec![t]), &serde_json::json!({})).unwrap_err();
        assert!(format!("{e:#}").contains("timed out after 1s"), "{e:#}");
    }
}
