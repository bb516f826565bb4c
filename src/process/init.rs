//! The container init: what the child of the clone does, in order, until it execs the
//! user's program. Each step is named; a failure is sent to the parent as a `ChildError`
//! (step, errno, message) and the init exits. See `create.rs` for the protocol.
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process, Spec};

use super::channel::{Channel, ChildError, Msg};
use super::namespaces::Plan;
use crate::security::caps::CapSets;

/// Everything the init needs; built by the parent before the clone.
pub struct InitContext<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub plan: &'a Plan,
    pub channel: Channel,
    /// O_PATH fd of `<state>/exec.fifo`.
    pub fifo: OwnedFd,
    /// Connected `--console-socket`, when given.
    pub console_socket: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// fds 3..3+extra_fds are passed to the program (LISTEN_FDS + --preserve-fds).
    pub extra_fds: u32,
    /// Extra environment (LISTEN_FDS / LISTEN_PID) added to process.env.
    pub extra_env: Vec<String>,
    /// The state document hooks get (pid and status are filled in by the init).
    pub state: serde_json::Value,
}

/// Run the init. Never returns: execs the program or exits with status 1.
pub fn run(ctx: InitContext) -> ! {
    let err = match setup(&ctx) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // The parent may be gone (after `create` returned): then stderr is all we have.
    if ctx.channel.send(&Msg::Failed(err.clone())).is_err() {
        eprintln!("berth: {err}");
    }
    // No destructors or atexit handlers inherited from the runtime may run in the init.
    crate::sys::process::exit_now(1)
}

enum Never {}

/// Attach a step name to a result, keeping the errno found in the chain.
trait Step<T> {
    fn step(self, name: &str) -> Result<T, ChildError>;
}

impl<T> Step<T> for Result<T> {
    fn step(self, name: &str) -> Result<T, ChildError> {
        self.map_err(|e| ChildError::from_anyhow(name, &e))
    }
}

fn setup(ctx: &InitContext) -> Result<Never, ChildError> {
    let spec = ctx.spec;
    let process = spec
        .process()
        .as_ref()
        .context("process: missing")
        .step("config")?;
    let linux = spec.linux().as_ref();

    // The parent may have signals blocked (foreground run); the program must not inherit that.
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .context("resetting the signal mask")
        .step("signals")?;

    // 1. Wait until the parent mapped our ids and put us in our cgroup.
    let host_pid = match ctx.channel.recv().step("sync")? {
        Some((Msg::Go { host_pid }, _)) => host_pid,
        other => {
            return Err(ChildError {
                step: "sync".into(),
                errno: 0,
                message: format!("expected Go from the parent, got {other:?}"),
            })
        }
    };
    // Other processes must not get at us through /proc while we run runtime code.
    nix::sys::prctl::set_dumpable(false)
        .context("PR_SET_DUMPABLE")
        .step("dumpable")?;

    // 2. Namespaces joined by path and the late ones. In a user namespace we become its
    // root (our host ids map to nothing there until we take the mapped ones).
    ctx.plan
        .enter(linux.and_then(|l| l.time_offsets().as_ref()))
        .step("namespaces")?;
    if ctx.plan.in_user_ns() {
        become_userns_root().step("user namespace")?;
    }
    if !ctx.no_new_keyring {
        session_keyring(ctx.id).step("keyring")?;
    }
    if let Some(score) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", score.to_string())
            .with_context(|| format!("writing oom_score_adj {score}"))
            .step("oomScoreAdj")?;
    }

    // 3. Mounts and /dev, then the runtime-namespace hooks, then ours, then pivot_root.
    let rcfg = crate::rootfs::RootfsConfig {
        spec,
        rootfs: ctx.rootfs.to_path_buf(),
        bundle: ctx.bundle.to_path_buf(),
        no_pivot: ctx.no_pivot,
        new_userns: ctx.plan.new_user,
        new_cgroupns: ctx.plan.new_cgroup,
    };
    if ctx.plan.new_mount
        || ctx
            .plan
            .join
            .iter()
            .any(|(t, _)| *t == oci_spec::runtime::LinuxNamespaceType::Mount)
    {
        crate::rootfs::prepare(&rcfg).step("rootfs")?;
    } else {
        return Err(ChildError {
            step: "rootfs".into(),
            errno: 0,
            message: "linux.namespaces: a mount namespace is required".into(),
        });
    }
    ctx.channel.send(&Msg::RunHooks).step("sync")?;
    ctx.channel
        .expect("HooksDone", |m| matches!(m, Msg::HooksDone))
        .step("sync")?;
    let mut state = ctx.state.clone();
    state["pid"] = host_pid.into();
    state["status"] = "created".into();
    let hooks = spec.hooks().as_ref();
    crate::hooks::run_all(
        "createContainer",
        hooks.and_then(|h| h.create_container().as_ref()),
        &state,
    )
    .step("createContainer hooks")?;
    crate::rootfs::pivot(&rcfg).step("pivot_root")?;
    make_cwd(process.cwd()).step("cwd")?;

    // 4. Session, terminal, the rest of the rootfs, names.
    nix::unistd::setsid().context("setsid").step("session")?;
    if process.terminal().unwrap_or(false) {
        let size = process
            .console_size()
            .map(|b| (b.height() as u32, b.width() as u32));
        let master = super::tty::open_container_pty(size).step("terminal")?;
        match &ctx.console_socket {
            Some(sock) => super::tty::send_to_console_socket(sock.as_raw_fd(), &master),
            None => ctx
                .channel
                .send_with_fd(&Msg::Console, Some(master.as_raw_fd())),
        }
        .step("terminal")?;
    }
    crate::rootfs::finish(&rcfg).step("rootfs")?;
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h)
            .with_context(|| format!("sethostname {h:?}"))
            .step("hostname")?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        set_domainname(d).step("domainname")?;
    }

    // 5. Process attributes, then the identity change and capabilities (runc's order).
    set_rlimits(process).step("rlimits")?;
    let env = build_env(process, &ctx.extra_env);
    let program = find_program(process, &env).step("exec")?;
    let user = process.user();
    let (uid, gid) = (Uid::from_raw(user.uid()), Gid::from_raw(user.gid()));
    prepare_fds(ctx.extra_fds, uid, gid, process.terminal().unwrap_or(false)).step("fds")?;
    let caps = CapSets::from_spec(process.capabilities().as_ref());
    caps.apply_bounding().step("capabilities")?;
    nix::sys::prctl::set_keepcaps(true)
        .context("PR_SET_KEEPCAPS")
        .step("user")?;
    set_user(user.additional_gids().as_deref().unwrap_or(&[]), uid, gid).step("user")?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        user.umask().unwrap_or(0o022) as libc::mode_t,
    ));
    std::env::set_current_dir(process.cwd())
        .with_context(|| format!("chdir to process.cwd {}", process.cwd().display()))
        .step("cwd")?;
    caps.apply_process_sets().step("capabilities")?;
    nix::sys::prctl::set_keepcaps(false)
        .context("PR_SET_KEEPCAPS")
        .step("user")?;
    if process.no_new_privileges().unwrap_or(false) {
        nix::sys::prctl::set_no_new_privs()
            .context("PR_SET_NO_NEW_PRIVS")
            .step("noNewPrivileges")?;
    }

    // 6. Ready: wait for `start` on the exec fifo, run startContainer hooks, exec.
    ctx.channel.send(&Msg::Ready).step("sync")?;
    wait_for_start(&ctx.fifo).step("exec fifo")?;
    crate::hooks::run_all(
        "startContainer",
        hooks.and_then(|h| h.start_container().as_ref()),
        &state,
    )
    .step("startContainer hooks")?;
    let args: Vec<CString> = process
        .args()
        .iter()
        .flatten()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .context("process.args: an argument holds a NUL byte")
        .step("exec")?;
    let envc: Vec<CString> = env
        .iter()
        .filter_map(|e| CString::new(e.as_str()).ok())
        .collect();
    let err = nix::unistd::execve(&program, &args, &envc).unwrap_err();
    Err(anyhow::Error::new(err))
        .with_context(|| format!("exec {:?}", program))
        .step("exec")
}

fn become_userns_root() -> Result<()> {
    let root_g = Gid::from_raw(0);
    let root_u = Uid::from_raw(0);
    nix::unistd::setresgid(root_g, root_g, root_g).context("setresgid to the namespace's root")?;
    nix::unistd::setresuid(root_u, root_u, root_u).context("setresuid to the namespace's root")
}

fn session_keyring(id: &str) -> Result<()> {
    match crate::sys::process::join_session_keyring(&format!("_ses.{id}")) {
        Ok(()) | Err(nix::errno::Errno::ENOSYS) => Ok(()),
        Err(e) => Err(e).context("joining a new session keyring (use --no-new-keyring to skip)"),
    }
}

fn set_domainname(name: &str) -> Result<()> {
    crate::sys::process::setdomainname(name).with_context(|| format!("setdomainname {name:?}"))
}

/// Create process.cwd if missing (as runc does), as root, before the uid change.
fn make_cwd(cwd: &Path) -> Result<()> {
    std::fs::create_dir_all(cwd).with_context(|| format!("creating process.cwd {}", cwd.display()))
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

/// process.env plus HOME (from the container's /etc/passwd, else "/") when unset.
fn build_env(process: &Process, extra: &[String]) -> Vec<String> {
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    env.extend(extra.iter().cloned());
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = home_of(process.user().uid()).unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    env
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
/// and give the stdio pipes to the container user so it can reopen /proc/self/fd/N.
fn prepare_fds(extra: u32, uid: Uid, gid: Gid, terminal: bool) -> Result<()> {
    for fd in 3..3 + extra as i32 {
        crate::sys::fdflags::clear_cloexec(fd)
            .with_context(|| format!("keeping preserved fd {fd} open"))?;
    }
    crate::sys::process::cloexec_from(3 + extra).context("marking other fds close-on-exec")?;
    if !terminal && !uid.is_root() {
        for fd in 0..=2 {
            crate::sys::fdflags::chown_stdio(fd, uid, gid);
        }
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

/// Block until `start` opens the fifo's read end, then tell it we are going.
fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .with_context(|| format!("opening the exec fifo through {path} (is /proc mounted?)"))?;
    use std::io::Write;
    (&f).write_all(b"0").context("writing to the exec fifo")
}

use std::os::unix::fs::OpenOptionsExt;
