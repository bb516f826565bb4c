//! CRIU, driven through its RPC in "swrk" mode, as runc does.
//!
//! `criu swrk 3` is started as our child with one end of a `SOCK_SEQPACKET` socketpair at
//! fd 3 (and any fds it must inherit at 4, 5, ...). Each packet is one protobuf message
//! from criu's own `rpc.proto` (`rpc.rs`, generated with prost-build by
//! `scripts/gen-criu-rpc.sh`):
//!
//! ```text
//!  berth                                   criu swrk 3
//!  ── CriuReq{DUMP|PRE_DUMP|RESTORE|…} ──▶
//!  ◀──────────────── CriuResp{NOTIFY, script} (setup-namespaces, post-restore,
//!                     orphan-pts-master + the pty master as SCM_RIGHTS, …)
//!  ── CriuReq{NOTIFY, notify_success} ───▶  (after berth acted on it)
//!  ◀──────────────── CriuResp{type, success, cr_errmsg, dump|restore}
//! ```
//! Every request gets its own criu process. criu logs to `log_file` in the work directory;
//! when a request fails, the last `Error` line of that log becomes our error, with the log's
//! path.
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use prost::Message;

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod rpc;
pub mod spec;

pub use rpc::{CriuCgMode, CriuNotify, CriuOpts, CriuReq, CriuReqType, CriuResp};

/// The oldest criu berth talks to (3.0 has the VERSION request; 3.14 the cgroup v2 freezer).
pub const MIN_VERSION: u32 = 31400;

/// How long one request may take before criu is killed (a dump of a large container can
/// take minutes; nothing may wait forever).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Where criu is, and its version once asked.
pub struct Criu {
    pub path: PathBuf,
}

/// What a request's notifications are answered with.
pub trait Notify {
    /// Called for each `NOTIFY` message (`script` names the event). `fd` is the fd criu sent
    /// with it (the pty master for `orphan-pts-master`). An error aborts the request.
    fn notify(&mut self, script: &str, pid: i32, fd: Option<OwnedFd>) -> Result<()>;
}

/// Notifications that need no action (checkpoint, version and feature queries).
pub struct Ignore;

impl Notify for Ignore {
    fn notify(&mut self, _: &str, _: i32, _: Option<OwnedFd>) -> Result<()> {
        Ok(())
    }
}

/// A running `criu swrk`.
pub struct Session {
    pid: Pid,
    sock: OwnedFd,
    /// The log criu writes for this request (for the error message).
    log: Option<PathBuf>,
    reaped: bool,
}

impl Criu {
    /// Find criu: a path with a `/` is taken as is, a bare name is looked up in `$PATH`.
    pub fn find(name: &Path) -> Result<Criu> {
        let path = if name.components().count() > 1 {
            name.to_path_buf()
        } else {
            let paths = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin".into());
            std::env::split_paths(&paths)
                .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .with_context(|| {
                    format!(
                        "criu ({}) not found in PATH: checkpoint and restore need criu (apt-get install criu)",
                        name.display()
                    )
                })?
        };
        if !path.is_file() {
            bail!("criu not found at {}", path.display());
        }
        Ok(Criu { path })
    }

    /// Start `criu swrk 3`; `inherit` lands at fds 4, 5, … in criu (see [`inherit_fd_number`]).
    /// criu's own stdio is /dev/null: what it prints (libnftables does) must not reach the
    /// container's pipes, which are passed in `inherit` when it needs them.
    pub fn spawn(&self, inherit: &[BorrowedFd<'_>], log: Option<PathBuf>) -> Result<Session> {
        self.spawn_with_stdin(inherit, None, log)
    }

    /// As [`Criu::spawn`], with `stdin` as criu's stdin: a `--shell-job` restore needs the
    /// caller's terminal there (criu checks that its stdin is a terminal and hands it to the
    /// restored processes whose terminal was outside the image).
    pub fn spawn_with_stdin(
        &self,
        inherit: &[BorrowedFd<'_>],
        stdin: Option<BorrowedFd<'_>>,
        log: Option<PathBuf>,
    ) -> Result<Session> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("creating criu's RPC socketpair")?;
        let exe = std::ffi::CString::new(self.path.as_os_str().as_encoded_bytes())
            .context("criu path")?;
        let args = [exe.clone(), c"swrk".into(), c"3".into()];
        let raw: Vec<RawFd> = inherit.iter().map(|f| f.as_raw_fd()).collect();
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .context("opening /dev/null for criu")?;
        // SAFETY: berth is single-threaded here (checkpoint, restore and features start no
        // thread before criu).
        match unsafe { crate::sys::process::fork_with_flags(0, None) }.context("forking criu")? {
            crate::sys::process::Forked::Child => {
                let stdin = stdin.map_or(null.as_raw_fd(), |f| f.as_raw_fd());
                let io = [stdin, null.as_raw_fd(), null.as_raw_fd()];
                let code = match exec_swrk(&exe, &args, theirs.as_raw_fd(), &raw, io) {
                    Ok(never) => match never {},
                    Err(e) => {
                        eprintln!("berth: starting {}: {e}", self.path.display());
                        127
                    }
                };
                crate::sys::process::exit_now(code)
            }
            crate::sys::process::Forked::Parent(pid) => {
                drop(theirs);
                Ok(Session {
                    pid,
                    sock: ours,
                    log,
                    reaped: false,
                })
            }
        }
    }

    /// criu's version as major*10000 + minor*100 + sublevel (3.17.1 is 31701).
    pub fn version(&self) -> Result<u32> {
        let mut s = self.spawn(&[], None)?;
        let resp = s.call(
            &CriuReq {
                r#type: CriuReqType::Version as i32,
                ..Default::default()
            },
            &mut Ignore,
        )?;
        s.finish()?;
        let v = resp
            .version
            .context("criu answered VERSION without a version")?;
        Ok(v.major_number as u32 * 10000
            + v.minor_number as u32 * 100
            + v.sublevel.unwrap_or(0) as u32)
    }

    /// Fail unless criu is at least `min` (and at least [`MIN_VERSION`]).
    pub fn require(&self, min: u32, what: &str) -> Result<u32> {
        let v = self.version()?;
        let min = min.max(MIN_VERSION);
        if v < min {
            bail!(
                "{what} needs criu {} or newer; {} is {}",
                dotted(min),
                self.path.display(),
                dotted(v)
            );
        }
        Ok(v)
    }

    /// Ask criu whether the kernel has what the features named in `want` need; returns the
    /// names of those it lacks.
    pub fn missing_features(&self, want: rpc::CriuFeatures) -> Result<Vec<&'static str>> {
        let mut s = self.spawn(&[], None)?;
        let resp = s.call(
            &CriuReq {
                r#type: CriuReqType::FeatureCheck as i32,
                features: Some(want),
                ..Default::default()
            },
            &mut Ignore,
        )?;
        s.finish()?;
        let got = resp.features.unwrap_or_default();
        let mut missing = Vec::new();
        if want.mem_track == Some(true) && got.mem_track != Some(true) {
            missing.push("memory tracking (soft-dirty pages, for --pre-dump)");
        }
        if want.lazy_pages == Some(true) && got.lazy_pages != Some(true) {
            missing.push("lazy pages (userfaultfd)");
        }
        Ok(missing)
    }

    /// `criu check`: whether criu works on this kernel at all (its CHECK request over RPC
    /// wants a full set of options; the command is the same check). 30 s at most.
    pub fn check(&self) -> Result<()> {
        let mut child = std::process::Command::new(&self.path)
            .arg("check")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("running {} check", self.path.display()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} check: no answer in 30 s", self.path.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if !status.success() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            bail!(
                "{} check failed: {}",
                self.path.display(),
                last_error(&err).unwrap_or_else(|| status.to_string())
            );
        }
        Ok(())
    }
}

/// How criu locks a container's network while it dumps: with iptables (criu's default)
/// when `iptables-restore` is installed, else with nftables, which criu does through the
/// libnftables it links.
pub fn network_lock() -> Option<i32> {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    let has_iptables = std::env::split_paths(&paths)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .any(|d| d.join("iptables-restore").exists());
    (!has_iptables).then_some(rpc::CriuNetworkLockMethod::Nftables as i32)
}

/// The fd number criu sees for the `i`th fd passed to [`Criu::spawn`].
pub fn inherit_fd_number(i: usize) -> i32 {
    4 + i as i32
}

/// `31701` → `3.17.1`.
pub fn dotted(v: u32) -> String {
    format!("{}.{}.{}", v / 10000, v / 100 % 100, v % 100)
}

/// In the forked child: put `stdio` at 0-2, the socket at 3 and the inherited fds at 4…,
/// reset the signal mask (a foreground restore blocks the signals it forwards), exec criu.
fn exec_swrk(
    exe: &std::ffi::CStr,
    args: &[std::ffi::CString],
    sock: RawFd,
    inherit: &[RawFd],
    stdio: [RawFd; 3],
) -> Result<std::convert::Infallible, nix::errno::Errno> {
    use nix::fcntl::{fcntl, FcntlArg};
    // First move everything above the target range, so no dup2 overwrites a source.
    let high = 3 + inherit.len() as i32 + 1;
    let mut moved = Vec::with_capacity(inherit.len() + 4);
    for fd in stdio
        .iter()
        .chain(std::iter::once(&sock))
        .chain(inherit.iter())
    {
        moved.push(fcntl(*fd, FcntlArg::F_DUPFD_CLOEXEC(high.max(10)))?);
    }
    for (target, fd) in moved.into_iter().enumerate() {
        let target = target as i32;
        nix::unistd::dup2(fd, target)?;
        crate::sys::fdflags::clear_cloexec(target)?;
    }
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    )?;
    nix::unistd::execv(exe, args)
}

impl Session {
    /// The criu process (moved into the container's cgroup before a restore).
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Send `req`, answer notifications through `n`, return criu's final answer. A failed
    /// request is an error naming criu's last error line.
    pub fn call(&mut self, req: &CriuReq, n: &mut dyn Notify) -> Result<CriuResp> {
        let what = req_name(req.r#type);
        self.send(req)
            .with_context(|| format!("sending the {what} request to criu"))?;
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            self.wait_readable(deadline, what)?;
            let (len, fd) = crate::process::channel::recv_packet(self.sock.as_raw_fd(), &mut buf)
                .context("reading criu's answer")?;
            if len == 0 {
                let status = self.reap();
                return Err(self.failure(
                    what,
                    None,
                    &format!("criu exited without answering ({})", describe(status)),
                ));
            }
            let resp = CriuResp::decode(&buf[..len]).context("decoding criu's answer")?;
            if !resp.success {
                let errno = resp.cr_errno.filter(|e| *e != 0);
                let msg = resp.cr_errmsg.clone().unwrap_or_default();
                return Err(self.failure(what, errno, &msg));
            }
            if resp.r#type != CriuReqType::Notify as i32 {
                return Ok(resp);
            }
            let notify = resp.notify.clone().unwrap_or_default();
            let script = notify.script.clone().unwrap_or_default();
            let result = n.notify(&script, notify.pid.unwrap_or(0), fd);
            let ack = CriuReq {
                r#type: CriuReqType::Notify as i32,
                notify_success: Some(result.is_ok()),
                ..Default::default()
            };
            // If we failed, criu is told so and gives up; our error is the one to report.
            let sent = self.send(&ack);
            result.with_context(|| format!("criu {what}: {script}"))?;
            sent.context("answering a criu notification")?;
        }
    }

    /// Close our end (criu exits after its answer; after a pre-dump it would wait for the
    /// next request), wait for it (30 s at most, then it is killed) and check how it ended.
    pub fn finish(mut self) -> Result<()> {
        let _ = nix::sys::socket::shutdown(self.sock.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        match self.reap_within(Duration::from_secs(30)) {
            WaitStatus::Exited(_, 0) => Ok(()),
            s => bail!("criu ended badly after answering: {}", describe(s)),
        }
    }

    /// After a pre-dump criu may exit non-zero once its socket is closed (runc ignores it).
    pub fn finish_pre_dump(mut self) {
        let _ = nix::sys::socket::shutdown(self.sock.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        self.reap_within(Duration::from_secs(30));
    }

    fn reap_within(&mut self, limit: Duration) -> WaitStatus {
        let deadline = Instant::now() + limit;
        while !self.reaped {
            match nix::sys::wait::waitpid(self.pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR) => {
                    if Instant::now() > deadline {
                        let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
                        return self.reap();
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(s) => {
                    self.reaped = true;
                    return s;
                }
                Err(_) => {
                    self.reaped = true;
                    return WaitStatus::StillAlive;
                }
            }
        }
        WaitStatus::StillAlive
    }

    fn send(&self, req: &CriuReq) -> Result<()> {
        crate::process::channel::send_packet(self.sock.as_raw_fd(), &req.encode_to_vec(), &[])
            .map_err(anyhow::Error::from)
    }

    fn wait_readable(&mut self, deadline: Instant, what: &str) -> Result<()> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
                self.reap();
                return Err(self.failure(
                    what,
                    None,
                    &format!("no answer from criu in {} s", REQUEST_TIMEOUT.as_secs()),
                ));
            }
            let ms = left.as_millis().min(60_000) as u16;
            let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => return Ok(()),
                Err(e) => return Err(e).context("waiting for criu"),
            }
        }
    }

    fn reap(&mut self) -> WaitStatus {
        if self.reaped {
            return WaitStatus::StillAlive;
        }
        self.reaped = true;
        loop {
            match waitpid(self.pid, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                Ok(s) => return s,
                Err(_) => return WaitStatus::StillAlive,
            }
        }
    }

    /// `criu dump failed: <last Error line of the log> (log: PATH)`.
    fn failure(&self, what: &str, errno: Option<i32>, msg: &str) -> anyhow::Error {
        let from_log = self.log.as_deref().and_then(last_error_in);
        let cause = match (from_log, msg.trim()) {
            (Some(line), _) => line,
            (None, m) if !m.is_empty() => m.to_string(),
            (None, _) => match errno {
                Some(e) => nix::errno::Errno::from_raw(e).desc().to_string(),
                None => "no reason given".into(),
            },
        };
        let log = match &self.log {
            Some(p) => format!(" (log: {})", p.display()),
            None => String::new(),
        };
        anyhow::anyhow!("criu {what} failed: {cause}{log}")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.reaped {
            // Closing the socket makes criu give up; then reap it.
            let _ =
                nix::sys::socket::shutdown(self.sock.as_raw_fd(), nix::sys::socket::Shutdown::Both);
            self.reap();
        }
    }
}

fn describe(s: WaitStatus) -> String {
    match s {
        WaitStatus::Exited(_, c) => format!("exit status {c}"),
        WaitStatus::Signaled(_, sig, _) => format!("killed by {sig}"),
        other => format!("{other:?}"),
    }
}

fn req_name(t: i32) -> &'static str {
    match CriuReqType::try_from(t) {
        Ok(CriuReqType::Dump) => "dump",
        Ok(CriuReqType::PreDump) => "pre-dump",
        Ok(CriuReqType::Restore) => "restore",
        Ok(CriuReqType::Check) => "check",
        Ok(CriuReqType::Version) => "version",
        Ok(CriuReqType::FeatureCheck) => "feature check",
        _ => "request",
    }
}

/// The last `Error (file:line): message` line of a criu log that names a cause, without
/// its timestamp. criu ends a failed run with a generic "Dumping FAILED." and reports the
/// exit of each helper it ran (`exited, status=1`, also while undoing): those are skipped
/// when a line with a cause exists.
pub fn last_error_in(log: &Path) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    last_error(&String::from_utf8_lossy(&text))
}

fn last_error(text: &str) -> Option<String> {
    let errors: Vec<&str> = text
        .lines()
        .filter_map(|l| l.find("Error (").map(|i| l[i..].trim()))
        .collect();
    // "Dump files (pid: 12) failed with -1" wraps the line before it, which says why.
    let secondary = |l: &&&str| {
        l.ends_with(" FAILED.")
            || l.contains("exited, status=")
            || l.contains("execvp(")
            || l.contains(") failed with -")
    };
    errors
        .iter()
        .rev()
        .find(|l| !secondary(l))
        .or(errors.last())
        .map(|l| l.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_error_line_without_timestamp() {
        let log = "(00.001) Version: 3.17.1\n\
                   (00.020) Error (criu/cr-restore.c:1490): Can't open images dir: No such file\n\
                   (00.021) Error (criu/cr-restore.c:2490): Restoring FAILED.\n\
                   (00.022) Warn  (criu/x.c:1): done\n";
        assert_eq!(
            last_error(log).as_deref(),
            Some("Error (criu/cr-restore.c:1490): Can't open images dir: No such file")
        );
        assert_eq!(
            last_error("(0.1) Error (a.c:1): Dumping FAILED.\n").as_deref(),
            Some("Error (a.c:1): Dumping FAILED.")
        );
        assert_eq!(last_error("(00.1) all fine\n"), None);
    }

    #[test]
    fn helper_exits_are_not_the_cause() {
        let log = "Error (criu/util.c:627): execvp(\"iptables-restore\", ...) failed: No such file\n\
                   (02.2) Error (criu/util.c:642): exited, status=1\n\
                   (02.3) Error (criu/net.c:3071): Locking network failed: iptables-restore returned -1.\n\
                   (02.4) Unlock network\n\
                   (02.5) Error (criu/util.c:642): exited, status=1\n\
                   (02.6) Error (criu/cr-dump.c:2053): Dumping FAILED.\n";
        assert_eq!(
            last_error(log).as_deref(),
            Some("Error (criu/net.c:3071): Locking network failed: iptables-restore returned -1.")
        );
    }

    #[test]
    fn the_wrapping_dump_files_line_is_not_the_cause() {
        let log = "(00.42) Error (criu/sk-inet.c:199): inet: Connected TCP socket, consider using --tcp-established option.\n\
                   (00.43) Error (criu/cr-dump.c:1635): Dump files (pid: 498) failed with -1\n\
                   (00.58) Error (criu/cr-dump.c:2053): Dumping FAILED.\n";
        assert_eq!(
            last_error(log).as_deref(),
            Some("Error (criu/sk-inet.c:199): inet: Connected TCP socket, consider using --tcp-established option.")
        );
    }

    #[test]
    fn versions() {
        assert_eq!(dotted(31701), "3.17.1");
        assert_eq!(inherit_fd_number(0), 4);
    }

    #[test]
    fn requests_round_trip_through_protobuf() {
        let req = CriuReq {
            r#type: CriuReqType::Dump as i32,
            opts: Some(CriuOpts {
                images_dir_fd: 5,
                manage_cgroups_mode: Some(CriuCgMode::Ignore as i32),
                external: vec!["net[4026531992]:extRootNetNS".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let back = CriuReq::decode(req.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, req);
        // IGNORE is 0, and proto2 still sends it: criu must see "ignore", not "unset".
        assert!(back.opts.unwrap().manage_cgroups_mode == Some(0));
    }
}
