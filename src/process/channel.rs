//! Typed messages between the runtime (parent) and the container init (child) over one
//! `SOCK_SEQPACKET` socketpair: one JSON value per packet, with fds attached as SCM_RIGHTS
//! (at most [`MAX_FDS`]). The protocol itself is described at the top of `container/create.rs`.
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

/// A failure inside the container init, carried whole across the process boundary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildError {
    /// The init step that failed ("rootfs", "capabilities", "exec", ...).
    pub step: String,
    /// The errno at the root of the failure, 0 when there is none.
    pub errno: i32,
    /// The full context chain, outermost first.
    pub message: String,
}

impl ChildError {
    /// This error with a message of at most about `2 * keep` bytes: its start and its end
    /// (the outermost context and the errno text), joined by "…".
    fn shortened(&self, keep: usize) -> ChildError {
        let m = &self.message;
        let mut head = keep.min(m.len());
        while !m.is_char_boundary(head) {
            head -= 1;
        }
        let mut tail = m.len().saturating_sub(keep).max(head);
        while !m.is_char_boundary(tail) {
            tail += 1;
        }
        ChildError {
            step: self.step.clone(),
            errno: self.errno,
            message: format!("{}…{}", &m[..head], &m[tail..]),
        }
    }
}

/// The largest packet either end sends: a longer `Failed` message is shortened to fit (JSON
/// may escape a byte into six). The receive buffer is this size.
const MAX_PACKET: usize = 16 * 1024;

impl std::fmt::Display for ChildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The message chain already ends with the errno text when there is one.
        write!(f, "{}: {}", self.step, self.message)
    }
}

impl std::error::Error for ChildError {}

impl ChildError {
    /// Build from an anyhow chain, finding the errno at its root.
    pub fn from_anyhow(step: &str, e: &anyhow::Error) -> Self {
        let errno = e
            .chain()
            .find_map(|c| {
                c.downcast_ref::<Errno>().map(|e| *e as i32).or_else(|| {
                    c.downcast_ref::<std::io::Error>()
                        .and_then(|e| e.raw_os_error())
                })
            })
            .unwrap_or(0);
        ChildError {
            step: step.to_string(),
            errno,
            message: format!("{e:#}"),
        }
    }
}

/// Attach a step name to a result, keeping the errno found in the chain. In a child, a step
/// that succeeded is recorded for the parent (`process::progress`).
pub trait Step<T> {
    fn step(self, name: &str) -> Result<T, ChildError>;
}

impl<T> Step<T> for Result<T> {
    fn step(self, name: &str) -> Result<T, ChildError> {
        match self {
            Ok(v) => {
                super::progress::record(name);
                Ok(v)
            }
            Err(e) => Err(ChildError::from_anyhow(name, &e)),
        }
    }
}

/// Messages, in the order they normally flow.
#[derive(Debug, Serialize, Deserialize)]
pub enum Msg {
    /// parent → child, first thing, when the init was cloned before its cgroup existed (it
    /// made its network namespace meanwhile: `container/create.rs`): the cgroup's v1
    /// `tasks` files, as fds in this order, with each one's hierarchy and directory; and
    /// whether the parent moves it by pid into the rest (it then says CgroupJoined).
    CgroupTasks {
        hierarchies: Vec<(String, std::path::PathBuf)>,
        by_parent: bool,
    },
    /// parent → child: ids are mapped; carries the child's host pid (for the state given to
    /// hooks that run inside the container).
    Go { host_pid: i32 },
    /// parent → child: the parent moved the child by pid into what it could not join itself
    /// (while the init starts on its rootfs).
    CgroupJoined,
    /// child (exec into a paused container) → parent: set up as far as it can go outside
    /// the frozen cgroup; move it in now (it freezes there until `resume`), then say
    /// CgroupJoined.
    JoinCgroup,
    /// child → parent, when the config has prestart or createRuntime hooks: mounts are
    /// done; set the cgroup limits and run those hooks.
    RunHooks,
    /// parent → child: the cgroup limits are set, and the runtime-namespace hooks ran (sent
    /// unasked, while the init mounts, when there are none).
    HooksDone,
    /// child → parent: the pty master follows as an fd (run without --console-socket).
    Console,
    /// child → parent: the seccomp notify fd follows (for linux.seccomp.listenerPath).
    SeccompNotify,
    /// child → parent: everything is set up; the init now waits on the exec fifo.
    Ready,
    /// child → parent: a step failed; the child exits after sending this.
    Failed(ChildError),
}

/// One end of the sync socket.
pub struct Channel {
    fd: OwnedFd,
    /// What the other end is, for errors it reports ("container init", "exec process").
    peer: &'static str,
    /// Where packets are received: made (and zeroed) once, at the first receive.
    buf: std::cell::RefCell<Vec<u8>>,
}

impl Channel {
    /// A connected pair (parent end, child end), both close-on-exec.
    /// `child` names the child's role in the errors it reports to the parent.
    pub fn pair(child: &'static str) -> Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("creating the sync socketpair")?;
        Ok((
            Channel {
                fd: a,
                peer: child,
                buf: Default::default(),
            },
            Channel {
                fd: b,
                peer: "runtime",
                buf: Default::default(),
            },
        ))
    }

    pub fn send(&self, msg: &Msg) -> Result<()> {
        self.send_with_fd(msg, None)
    }

    pub fn send_with_fd(&self, msg: &Msg, fd: Option<RawFd>) -> Result<()> {
        self.send_with_fds(msg, fd.as_slice())
    }

    pub fn send_with_fds(&self, msg: &Msg, fds: &[RawFd]) -> Result<()> {
        let mut body = serde_json::to_vec(msg)?;
        if body.len() > MAX_PACKET {
            match msg {
                Msg::Failed(e) => {
                    body = serde_json::to_vec(&Msg::Failed(e.shortened(MAX_PACKET / 16)))?
                }
                _ => bail!("sync message of {} bytes: {msg:?}", body.len()),
            }
        }
        match send_packet(self.fd.as_raw_fd(), &body, fds) {
            // The other end is gone: what it said last (a `Failed`) is still queued, and
            // is the real cause.
            Err(Errno::EPIPE) => match self.pending() {
                Some(Msg::Failed(e)) => Err(self.failure(e)),
                _ => Err(Errno::EPIPE).context(format!(
                    "sending on the sync socket: the {} exited",
                    self.peer
                )),
            },
            other => other.context("sending on the sync socket"),
        }
    }

    /// A message already queued, without waiting.
    fn pending(&self) -> Option<Msg> {
        let mut buf = self.buffer();
        let n =
            nix::sys::socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT).ok()?;
        serde_json::from_slice(&buf[..n]).ok()
    }

    /// The failure the other end reported, if it sent one (what came before it is skipped):
    /// for an error of ours that its exit may have caused, which it then explains.
    pub fn reported_failure(&self) -> Option<anyhow::Error> {
        for _ in 0..16 {
            if let Msg::Failed(e) = self.pending()? {
                return Some(self.failure(e));
            }
        }
        None
    }

    /// Receive one message; `None` when the other end closed without a word.
    pub fn recv(&self) -> Result<Option<(Msg, Option<OwnedFd>)>> {
        Ok(self.recv_fds()?.map(|(m, fds)| (m, fds.into_iter().next())))
    }

    /// Receive one message and every fd that came with it; `None` as for [`Channel::recv`].
    pub fn recv_fds(&self) -> Result<Option<(Msg, Vec<OwnedFd>)>> {
        let mut buf = self.buffer();
        let (n, fds) = recv_packet_fds(self.fd.as_raw_fd(), &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..n]).context("decoding a sync message")?;
        Ok(Some((msg, fds)))
    }

    /// The receive buffer, [`MAX_PACKET`] bytes.
    fn buffer(&self) -> std::cell::RefMut<'_, Vec<u8>> {
        let mut buf = self.buf.borrow_mut();
        if buf.is_empty() {
            buf.resize(MAX_PACKET, 0);
        }
        buf
    }

    /// Receive and require a specific message (by predicate); a `Failed` becomes the error.
    pub fn expect(&self, what: &str, want: impl Fn(&Msg) -> bool) -> Result<Option<OwnedFd>> {
        let ((), fds) = self.expect_with(what, |m| if want(&m) { Ok(()) } else { Err(m) })?;
        Ok(fds.into_iter().next())
    }

    /// Receive a specific message and what `take` draws from it (it gives back any other
    /// message), with every fd that came with it; a `Failed` becomes the error.
    pub fn expect_with<T>(
        &self,
        what: &str,
        take: impl FnOnce(Msg) -> std::result::Result<T, Msg>,
    ) -> Result<(T, Vec<OwnedFd>)> {
        match self.recv_fds()? {
            Some((Msg::Failed(e), _)) => Err(self.failure(e)),
            Some((m, fds)) => match take(m) {
                Ok(t) => Ok((t, fds)),
                Err(m) => bail!("sync protocol: expected {what}, got {m:?}"),
            },
            None => bail!("sync protocol: the other side exited before {what}"),
        }
    }

    /// A failure the other end reported, as an error naming who failed.
    pub fn failure(&self, e: ChildError) -> anyhow::Error {
        anyhow::Error::new(e).context(self.peer)
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Send bytes with fds (at most [`MAX_FDS`]) on any unix socket (also used for the console
/// socket).
pub fn send_packet(sock: RawFd, body: &[u8], fds: &[RawFd]) -> Result<(), Errno> {
    let iov = [IoSlice::new(body)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsg = if fds.is_empty() { &[][..] } else { &rights[..] };
    sendmsg::<()>(sock, &iov, cmsg, MsgFlags::empty(), None).map(drop)
}

/// One packet and the first fd that came with it (the tests read a --pidfd-socket with it
/// too; criu's RPC socket too).
pub fn recv_packet(sock: RawFd, buf: &mut [u8]) -> Result<(usize, Option<OwnedFd>)> {
    let (n, fds) = recv_packet_fds(sock, buf)?;
    Ok((n, fds.into_iter().next()))
}

/// At most this many fds come with one packet (more are closed by the kernel, and the
/// packet is flagged MSG_CTRUNC, an error here).
pub const MAX_FDS: usize = 32;

/// One packet and every fd that came with it.
pub fn recv_packet_fds(sock: RawFd, buf: &mut [u8]) -> Result<(usize, Vec<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let msg = loop {
        match recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            // EINTR; or ECONNRESET, reported once when the peer closed with our packets
            // unread: what it sent before (its `Failed`) is still queued behind it.
            Err(Errno::EINTR) | Err(Errno::ECONNRESET) => continue,
            r => break r.context("receiving on the sync socket")?,
        }
    };
    let mut fds = Vec::new();
    for c in msg.cmsgs().context("reading control messages")? {
        if let ControlMessageOwned::ScmRights(v) = c {
            // The kernel installed these fds for us; we own them now.
            fds.extend(v.into_iter().map(owned));
        }
    }
    if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
        bail!("a packet on the sync socket came with more than {MAX_FDS} fds");
    }
    Ok((msg.bytes, fds))
}

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` came in an SCM_RIGHTS message we just received: the kernel installed it
    // in our table for us alone.
    unsafe { crate::sys::fd::take(fd) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_with_fd() {
        let (a, b) = Channel::pair("container init").unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        a.send_with_fd(&Msg::Console, Some(f.as_raw_fd())).unwrap();
        let (m, fd) = b.recv().unwrap().unwrap();
        assert!(matches!(m, Msg::Console));
        assert!(fd.is_some());
        // The child's failure reaches the parent naming the child's role.
        b.send(&Msg::Failed(ChildError {
            step: "x".into(),
            errno: 1,
            message: "m".into(),
        }))
        .unwrap();
        let e = a.expect("Ready", |m| matches!(m, Msg::Ready)).unwrap_err();
        assert_eq!(format!("{e:#}"), "container init: x: m");
        drop(a);
        assert!(b.recv().unwrap().is_none());
    }

    fn rootfs_gone() -> Msg {
        Msg::Failed(ChildError {
            step: "rootfs".into(),
            errno: 2,
            message: "gone".into(),
        })
    }

    #[test]
    fn a_send_to_a_failed_child_reports_its_failure() {
        let (a, b) = Channel::pair("container init").unwrap();
        b.send(&rootfs_gone()).unwrap();
        drop(b);
        let e = a.send(&Msg::HooksDone).unwrap_err();
        assert_eq!(format!("{e:#}"), "container init: rootfs: gone");
        let e = a.send(&Msg::HooksDone).unwrap_err();
        assert!(
            format!("{e:#}").contains("the container init exited"),
            "{e:#}"
        );
    }

    #[test]
    fn a_child_that_closed_with_unread_packets_still_reports_its_failure() {
        let (a, b) = Channel::pair("container init").unwrap();
        a.send(&Msg::CgroupJoined).unwrap(); // never read by the child
        b.send(&rootfs_gone()).unwrap();
        drop(b);
        let e = a
            .expect("RunHooks", |m| matches!(m, Msg::RunHooks))
            .unwrap_err();
        assert_eq!(format!("{e:#}"), "container init: rootfs: gone");
    }

    #[test]
    fn a_failure_too_long_for_a_packet_arrives_shortened() {
        let (a, b) = Channel::pair("container init").unwrap();
        // Control characters, which JSON escapes into six bytes each, and a multi-byte
        // character where the cut may fall.
        let message = format!("outer: {}: ENOENT", "\u{1}é".repeat(MAX_PACKET));
        b.send(&Msg::Failed(ChildError {
            step: "rootfs".into(),
            errno: 2,
            message,
        }))
        .unwrap();
        let e = format!("{:#}", a.expect("Ready", |_| false).unwrap_err());
        assert!(e.starts_with("container init: rootfs: outer: "), "{e}");
        assert!(e.ends_with("é: ENOENT") && e.contains('…'), "{e}");
        assert!(e.len() < MAX_PACKET, "{}", e.len());
    }
}
