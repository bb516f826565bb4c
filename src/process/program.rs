//! Turning a runtime process into the user's program, for the container init and for
//! `exec` alike. Both children go through the same steps, and differ only in how they
//! enter the container's namespaces (init.rs builds them, exec_child.rs joins them):
//!
//! 1. `begin`: reset the signal mask, wait for the parent's Go, clear "dumpable";
//! 2. `Setup::session`: setsid and the terminal (the pty master goes to the console
//!    socket, or to the parent);
//! 3. `Setup::program`: the process attributes (attrs/: memory policy, CPU affinity, I/O
//!    priority, scheduler), fds, then `prepare`: rlimits, environment, the program lookup,
//!    the bounding set, the identity change with capabilities kept, umask, cwd, the other
//!    capability sets, no_new_privs (runc's order); then the seccomp filter and the
//!    personality;
//! 4. `Program::exec`: execve.
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process};

use super::channel::{Channel, ChildError, Msg, Step};
use crate::security::apparmor::{self, ProcfsHandle};
use crate::security::caps::CapSets;
use crate::security::seccomp;

/// The first steps of every child: the runtime's signal mask must not reach the program
/// (a foreground run blocks signals), the parent says go (ids mapped), and from then on
/// other processes must not get at us through /proc while we run runtime code
/// (CVE-2019-5736). Returns the child's host pid, sent with Go.
pub fn begin(ch: &Channel) -> Result<i32, ChildError> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .context("resetting the signal mask")
        .step("signals")?;
    let host_pid = match ch.recv().step("sync")? {
        Some((Msg::Go { host_pid }, _)) => host_pid,
        other => {
            return Err(ChildError {
                step: "sync".into(),
                errno: 0,
                message: format!("expected Go from the parent, got {other:?}"),
            })
        }
    };
    nix::sys::prctl::set_dumpable(false)
        .context("PR_SET_DUMPABLE")
        .step("dumpable")?;
    Ok(host_pid)
}

/// Right after the fork: close every fd but stdio, `keep`, the `--log` file and the fds
/// 3..3+extra passed to the program, so the child holds nothing else of its caller's (a
/// test runner's output file) or the runtime's (the state directory, its lock).
pub fn keep_only_given_fds(keep: &[RawFd], extra: u32) -> Result<(), ChildError> {
    let mut keep = keep.to_vec();
    keep.extend(3..3 + extra as RawFd);
    keep.extend(crate::log::file_fd());
    crate::sys::process::close_fds_except(&keep)
        .context("closing the fds the process was not given")
        .step("fds")
}

/// What the program setup needs, the same for the init and an exec'd process.
pub struct Setup<'a> {
    pub process: &'a Process,
    pub channel: &'a Channel,
    /// Connected `--console-socket`, when given.
    pub console_socket: Option<&'a OwnedFd>,
    /// The compiled linux.seccomp filter.
    pub seccomp: Option<&'a seccomp::Program>,
    /// fds 3..3+extra_fds are passed to the program (LISTEN_FDS + --preserve-fds).
    pub extra_fds: u32,
    /// Extra environment (LISTEN_FDS / LISTEN_PID) added to process.env.
    pub extra_env: &'a [String],
    /// The container init binds its pty on /dev/console; an exec'd process does not.
    pub init: bool,
    /// Memory policy, I/O priority, scheduler, CPU affinity and personality.
    pub attrs: &'a crate::spec::attrs::Attrs,
    /// The host's /proc, opened before entering the container, for the AppArmor profile
    /// (needed when process.apparmorProfile is set).
    pub procfs: Option<&'a ProcfsHandle>,
}

impl Setup<'_> {
    /// A new session, and with process.terminal a pty as controlling terminal and stdio.
    pub fn session(&self) -> Result<(), ChildError> {
        // From here stderr may be the container's terminal: no more debug lines.
        super::progress::quiet();
        nix::unistd::setsid().context("setsid").step("session")?;
        if !self.process.terminal().unwrap_or(false) {
            return Ok(());
        }
        let size = self
            .process
            .console_size()
            .map(|b| (b.height() as u32, b.width() as u32));
        let master = super::tty::open_container_pty(size, self.init).step("terminal")?;
        match self.console_socket {
            Some(sock) => super::tty::send_to_console_socket(sock.as_raw_fd(), &master),
            // The caller's own terminal shows the output (foreground run or exec): no CR
            // before each LF, as runc clears ONLCR on the pty it copies.
            None => super::tty::clear_onlcr(&master).and_then(|()| {
                self.channel
                    .send_with_fd(&Msg::Console, Some(master.as_raw_fd()))
            }),
        }
        .step("terminal")
    }

    /// Everything up to execve, with the seccomp filter installed after the identity change
    /// and the capabilities in both no_new_privs modes, so the filter sees few runtime
    /// syscalls (runc loads it before the identity change without no_new_privs).
    /// The process attributes come first (the scheduler and an RT I/O class need the
    /// privileges the identity change drops); the personality last, after seccomp, as runc.
    /// process.apparmorProfile: the next execve switches to it (see security/apparmor.rs).
    fn apparmor(&self) -> Result<(), ChildError> {
        let Some(profile) = self
            .process
            .apparmor_profile()
            .as_deref()
            .filter(|p| !p.is_empty())
        else {
            return Ok(());
        };
        let procfs = self
            .procfs
            .context("no procfs handle for the AppArmor profile")
            .step("apparmor")?;
        apparmor::apply_exec_profile(procfs, profile).step("apparmor")
    }

    pub fn program(&self) -> Result<Program, ChildError> {
        let nnp = self.process.no_new_privileges().unwrap_or(false);
        self.apparmor()?;
        super::attrs::before_seccomp(self.attrs)?;
        // Before any filter: a profile may deny close_range (the sweep then falls back to
        // fcntl over /proc/self/fd, which classic profiles allow).
        let uid = Uid::from_raw(self.process.user().uid());
        let terminal = self.process.terminal().unwrap_or(false);
        prepare_fds(self.extra_fds, uid, terminal).step("fds")?;
        // Without no_new_privs loading the filter needs CAP_SYS_ADMIN, which is kept for
        // it through the identity change: so in both modes the filter comes after all of
        // the process setup and sees only the runtime's last steps (`POST_SECCOMP`).
        let keep_admin = !nnp && self.seccomp.is_some();
        let program = prepare(self.process, self.extra_env, keep_admin)?;
        install_seccomp(self.seccomp, self.channel)?;
        super::attrs::after_seccomp(self.attrs)?;
        Ok(program)
    }
}

/// Every syscall the runtime makes between loading the seccomp filter and the program's
/// execve, in both no_new_privs modes: the Ready message and (NOTIFY) the listener fd over
/// the sync socket, the exec fifo (open, write, close), SIGPIPE back to its default, and the
/// execve. `fcntl(F_GETFD)` is the debug build's check on close. A profile that allows these
/// lets berth start the program whatever else it denies. Two more come only with what asks
/// for them: `personality` for linux.personality (after the filter, so that a profile can
/// refuse it, as in runc) and the startContainer hooks, which run under the filter, as runc
/// runs them. `integration/spec13.rs` checks this list against a profile of nothing else.
pub const POST_SECCOMP: &[&str] = &[
    "sendmsg",
    "openat",
    "write",
    "close",
    "rt_sigaction",
    "execve",
    "fcntl",
];

/// What execve needs, resolved while the process could still read the container's files.
pub struct Program {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
}

/// Everything up to (not including) execve. `extra_fds` fds from 3 stay open; `extra_env`
/// is added to process.env.
fn prepare(
    process: &Process,
    extra_env: &[String],
    keep_admin: bool,
) -> Result<Program, ChildError> {
    set_rlimits(process).step("rlimits")?;
    let env = build_env(process, extra_env);
    let path = find_program(process, &env).step("exec")?;
    let args: Vec<CString> = process
        .args()
        .iter()
        .flatten()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .context("process.args: an argument holds a NUL byte")
        .step("exec")?;
    let env = env
        .iter()
        .map(|e| CString::new(e.as_str()))
        .collect::<Result<_, _>>()
        .context("process.env: a variable holds a NUL byte")
        .step("exec")?;
    let user = process.user();
    let (uid, gid) = (Uid::from_raw(user.uid()), Gid::from_raw(user.gid()));
    let mut caps = CapSets::from_spec(process.capabilities().as_ref());
    caps.apply_bounding().step("capabilities")?;
    if keep_admin {
        caps.keep_sys_admin_until_exec();
    }
    nix::sys::prctl::set_keepcaps(true)
        .context("PR_SET_KEEPCAPS")
        .step("user")?;
    // The cwd is entered as root first, so a directory only root can reach works; where root
    // is refused (a directory only its owner can enter, on a filesystem that denies root),
    // again as the user, as runc does.
    let entered = enter_cwd(process.cwd(), true).step("cwd")?;
    set_user(user.additional_gids().as_deref().unwrap_or(&[]), uid, gid).step("user")?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        user.umask().unwrap_or(0o022) as libc::mode_t,
    ));
    if !entered {
        enter_cwd(process.cwd(), false).step("cwd")?;
    }
    caps.apply_process_sets().step("capabilities")?;
    nix::sys::prctl::set_keepcaps(false)
        .context("PR_SET_KEEPCAPS")
        .step("user")?;
    if process.no_new_privileges().unwrap_or(false) {
        nix::sys::prctl::set_no_new_privs()
            .context("PR_SET_NO_NEW_PRIVS")
            .step("noNewPrivileges")?;
    }
    Ok(Program { path, args, env })
}

/// chdir to process.cwd; with `may_retry`, a permission error is not fatal (false: try again
/// after the identity change).
fn enter_cwd(cwd: &Path, may_retry: bool) -> Result<bool> {
    match nix::unistd::chdir(cwd) {
        Ok(()) => check_cwd_inside(cwd).map(|()| true),
        Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM) if may_retry => Ok(false),
        Err(e) => Err(e).with_context(|| format!("chdir to process.cwd {}", cwd.display())),
    }
}

/// The cwd must be below our root (CVE-2024-21626): a `/proc/self/fd/N` cwd through an fd
/// the runtime still holds would lead to the host. The kernel's getcwd then says
/// "(unreachable)", which libc reports as ENOENT.
fn check_cwd_inside(cwd: &Path) -> Result<()> {
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        Ok(p) => bail!(
            "process.cwd {} leads outside the container: {}",
            cwd.display(),
            p.display()
        ),
        Err(e) => Err(e).with_context(|| {
            format!(
                "process.cwd {} leads outside the container (getcwd)",
                cwd.display()
            )
        }),
    }
}

/// Install the seccomp filter; a notify fd goes to the parent over `ch`, which hands it to the
/// listener.
fn install_seccomp(filter: Option<&seccomp::Program>, ch: &Channel) -> Result<(), ChildError> {
    let Some(f) = filter else {
        return Ok(());
    };
    if let Some(fd) = seccomp::install(f).step("seccomp")? {
        ch.send_with_fd(&Msg::SeccompNotify, Some(fd.as_raw_fd()))
            .step("seccomp")?;
    }
    Ok(())
}

/// process.oomScoreAdj, written while /proc is still the runtime's.
pub fn set_oom_score_adj(process: &Process) -> Result<(), ChildError> {
    if let Some(score) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", score.to_string())
            .with_context(|| format!("writing oom_score_adj {score}"))
            .step("oomScoreAdj")?;
    }
    Ok(())
}

impl Program {
    /// execve; returns only on failure. SIGPIPE goes back to its default action first (the
    /// runtime ignores it; the program must not inherit that).
    pub fn exec(&self) -> ChildError {
        if let Err(e) = crate::sys::process::default_sigpipe() {
            return ChildError::from_anyhow(
                "signals",
                &anyhow::Error::new(e).context("resetting SIGPIPE to its default action"),
            );
        }
        super::progress::record(super::progress::EXECVE);
        let err = nix::unistd::execve(&self.path, &self.args, &self.env).unwrap_err();
        ChildError::from_anyhow(
            "exec",
            &anyhow::Error::new(err).context(format!("exec {:?}", self.path)),
        )
    }
}

fn rlimit_resource(t: PosixRlimitType) -> Option<libc::__rlimit_resource_t> {
    use PosixRlimitType as R;
    Some(match t {
        R::RlimitCpu => libc::RLIMIT_CPU,
        R::RlimitFsize => libc::RLIMIT_FSIZE,
        R::RlimitData => libc::RLIMIT_DATA,
        R::RlimitStack => libc::RLIMIT_STACK,
        R::RlimitCore => libc::RLIMIT_CORE,
        R::RlimitRss => libc::RLIMIT_RSS,
        R::RlimitNproc => libc::RLIMIT_NPROC,
        R::RlimitNofile => libc::RLIMIT_NOFILE,
        R::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        R::RlimitAs => libc::RLIMIT_AS,
        R::RlimitLocks => libc::RLIMIT_LOCKS,
        R::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        R::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        R::RlimitNice => libc::RLIMIT_NICE,
        R::RlimitRtprio => libc::RLIMIT_RTPRIO,
        R::RlimitRttime => libc::RLIMIT_RTTIME,
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

fn set_rlimits(process: &Process) -> Result<()> {
    for (i, r) in process.rlimits().iter().flatten().enumerate() {
        let res = rlimit_resource(r.typ())
            .with_context(|| format!("process.rlimits[{i}]: {:?} is not supported", r.typ()))?;
        crate::sys::rlimit::set(res, r.soft(), r.hard()).with_context(|| {
            format!(
                "process.rlimits[{i}]: setting {:?} to {}/{}",
                r.typ(),
                r.soft(),
                r.hard()
            )
        })?;
    }
    Ok(())
}

/// process.env as runc hands it to execve: a variable given twice is set once, with its last
/// value, at the place of that last one; values are kept byte for byte (newlines too). HOME
/// comes from the container's /etc/passwd (else "/") when the env lacks it or has it empty.
fn build_env(process: &Process, extra: &[String]) -> Vec<String> {
    let given = process.env().iter().flatten().chain(extra);
    let mut env = dedup_env(given);
    let home = env.iter().position(|e| e.starts_with("HOME="));
    if home.is_none_or(|i| env[i] == "HOME=") {
        let value = format!(
            "HOME={}",
            home_of(process.user().uid()).unwrap_or_else(|| "/".into())
        );
        match home {
            Some(i) => env[i] = value,
            None => env.push(value),
        }
    }
    env
}

/// The last NAME=VALUE of each name, in the order of those last ones.
fn dedup_env<'a>(vars: impl DoubleEndedIterator<Item = &'a String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<String> = vars
        .rev()
        .filter(|e| seen.insert(e.split_once('=').map_or(e.as_str(), |(n, _)| n)))
        .cloned()
        .collect();
    out.reverse();
    out
}

fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
    })
}

/// Resolve args[0] with the container's PATH, as execvp would, before `start`.
fn find_program(process: &Process, env: &[String]) -> Result<CString> {
    let arg0 = process
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .context("process.args is empty")?;
    let candidates: Vec<PathBuf> = if arg0.contains('/') {
        vec![PathBuf::from(arg0)]
    } else {
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(arg0))
            .collect()
    };
    for c in &candidates {
        let p = if c.is_relative() {
            Path::new(process.cwd()).join(c)
        } else {
            c.clone()
        };
        if let Ok(m) = std::fs::metadata(&p) {
            use std::os::unix::fs::PermissionsExt;
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(CString::new(p.into_os_string().into_encoded_bytes())?);
            }
        }
    }
    bail!("{arg0:?}: executable file not found in $PATH")
}

/// Keep fds 3..3+extra for the program (clear close-on-exec), mark the rest close-on-exec,
/// and give stdio to the container user, as runc does: the owner becomes the process's uid
/// (the group stays: the tty group devpts gave the pty, or the pipe's), so the user can
/// reopen /proc/self/fd/N and use its terminal. The pty is the container's own with
/// process.terminal; other character devices (the caller's /dev/null or terminal) are
/// never touched.
fn prepare_fds(extra: u32, uid: Uid, terminal: bool) -> Result<()> {
    for fd in 3..3 + extra as i32 {
        crate::sys::fdflags::clear_cloexec(fd)
            .with_context(|| format!("keeping preserved fd {fd} open"))?;
    }
    crate::sys::process::cloexec_from(3 + extra).context("marking other fds close-on-exec")?;
    for fd in 0..=2 {
        crate::sys::fdflags::chown_stdio(fd, uid, terminal);
    }
    Ok(())
}

fn set_user(groups: &[u32], uid: Uid, gid: Gid) -> Result<()> {
    let groups: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
    let setgroups_allowed = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true);
    if setgroups_allowed {
        nix::unistd::setgroups(&groups)
            .with_context(|| format!("setgroups {groups:?} (process.user.additionalGids)"))?;
    } else if !groups.is_empty() {
        bail!("process.user.additionalGids: setgroups is denied in this user namespace");
    }
    nix::unistd::setresgid(gid, gid, gid).with_context(|| format!("setgid {gid}"))?;
    nix::unistd::setresuid(uid, uid, uid).with_context(|| format!("setuid {uid}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variable_given_twice_is_set_once_with_its_last_value() {
        let env: Vec<String> = ["A=1", "B=x\ny", "A=2", "C=", "B=z"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(dedup_env(env.iter()), ["A=2", "C=", "B=z"]);
    }
}
