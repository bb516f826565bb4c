//! SCMP_ACT_NOTIFY plumbing: hand the listener fd to the seccomp agent at
//! `linux.seccomp.listenerPath` (runtime-spec "containerProcessState"), and the agent side
//! (receive a notification, answer it) used by tests and tools.
use std::io::{IoSlice, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Context};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::sys::seccomp::{notif_recv, notif_send, NotifResp};

/// Connect to `listener_path` and send the containerProcessState JSON with `fd` attached as
/// SCM_RIGHTS. `state` is the container's state (its `ociVersion` and `pid` are copied to the
/// top level, as the runtime-spec asks); `metadata` is `linux.seccomp.listenerMetadata`.
pub fn send_to_listener(
    listener_path: &Path,
    fd: BorrowedFd,
    state: &serde_json::Value,
    metadata: Option<&str>,
) -> anyhow::Result<()> {
    let msg = process_state(state, metadata)?;
    let mut stream = UnixStream::connect(listener_path)
        .with_context(|| format!("connecting to the seccomp agent at {listener_path:?}"))?;
    let fds = [fd.as_raw_fd()];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(&msg)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .with_context(|| format!("sending the seccomp fd to {listener_path:?}"))?;
    stream
        .write_all(&msg[sent..])
        .with_context(|| format!("sending the container state to {listener_path:?}"))?;
    Ok(())
}

/// Send a NOTIFY listener fd to the profile's `listenerPath`, with `state` (the process's
/// pid in it) and the profile's `listenerMetadata`: the create and exec hand-off.
pub fn hand_to_listener(
    profile: Option<&oci_spec::runtime::LinuxSeccomp>,
    fd: BorrowedFd,
    state: &serde_json::Value,
) -> anyhow::Result<()> {
    let profile = profile.context("a seccomp notify fd without a profile")?;
    let listener = profile
        .listener_path()
        .as_ref()
        .context("linux.seccomp.listenerPath: missing")?;
    send_to_listener(listener, fd, state, profile.listener_metadata().as_deref())
}

/// The runtime-spec containerProcessState document.
pub(super) fn process_state(
    state: &serde_json::Value,
    metadata: Option<&str>,
) -> anyhow::Result<Vec<u8>> {
    let Some(pid) = state.get("pid").and_then(|p| p.as_i64()) else {
        bail!("the container state has no pid for the seccomp agent");
    };
    let version = state
        .get("ociVersion")
        .cloned()
        .unwrap_or_else(|| serde_json::Value::String(String::new()));
    let mut doc = serde_json::json!({
        "ociVersion": version,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = metadata.filter(|m| !m.is_empty()) {
        doc["metadata"] = serde_json::Value::String(m.to_string());
    }
    Ok(serde_json::to_vec(&doc)?)
}

/// A syscall waiting for the agent's answer.
#[derive(Debug, Clone, Copy)]
pub struct Notification {
    pub id: u64,
    pub pid: u32,
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

/// Block until a filtered syscall is waiting on `listener`.
pub fn receive_notification(listener: BorrowedFd) -> anyhow::Result<Notification> {
    let n = notif_recv(listener).context("SECCOMP_IOCTL_NOTIF_RECV")?;
    Ok(Notification {
        id: n.id,
        pid: n.pid,
        nr: n.data.nr,
        arch: n.data.arch,
        args: n.data.args,
    })
}

/// Let the notified syscall `id` run as if the filter had allowed it
/// (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
pub fn respond_continue(listener: BorrowedFd, id: u64) -> anyhow::Result<()> {
    const SECCOMP_USER_NOTIF_FLAG_CONTINUE: u32 = 1;
    let resp = NotifResp {
        id,
        val: 0,
        error: 0,
        flags: SECCOMP_USER_NOTIF_FLAG_CONTINUE,
    };
    notif_send(listener, &resp).with_context(|| format!("SECCOMP_IOCTL_NOTIF_SEND for {id}"))
}

/// Fail the notified syscall `id` with `errno` (the process sees -1/errno).
pub fn respond_errno(listener: BorrowedFd, id: u64, errno: i32) -> anyhow::Result<()> {
    let resp = NotifResp {
        id,
        val: 0,
        error: -errno,
        flags: 0,
    };
    notif_send(listener, &resp).with_context(|| format!("SECCOMP_IOCTL_NOTIF_SEND for {id}"))
}
