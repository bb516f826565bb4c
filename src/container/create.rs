//! Creating a container: the parent side, top to bottom.
//!
//! ## The parent/child protocol
//!
//! One `SOCK_SEQPACKET` socketpair; each packet is one JSON `Msg`, optionally with an fd
//! (SCM_RIGHTS). The child is the container's init (pid 1 in a new pid namespace), made by
//! a single `clone3` in fork mode: no re-exec, no intermediate process.
//!
//! ```text
//!  parent (berth create)                        child (container init, process/init.rs)
//!  ─────────────────────                        ───────────────────────────────────────
//!  validate config, lock <root>/<id>, mkfifo
//!  create the cgroup
//!  clone3(CLONE_NEW* [, CLONE_INTO_CGROUP]) ──▶ blocks in recv()
//!  write uid_map / gid_map (new user ns)
//!  ── Go{host_pid} ───────────────────────────▶ join namespaces by path, unshare time,
//!  move the init into the cgroup (v1)            keyring, oom_score_adj, rootfs::prepare
//!  ── CgroupJoined ───────────────────────────▶ (awaited before a cgroup mount or the end of
//!                                               the mounts), unshare cgroup
//!  ◀─────────────────────────────── RunHooks ── (mounts done, before pivot_root)
//!  prestart + createRuntime hooks
//!  ── HooksDone ──────────────────────────────▶ createContainer hooks, pivot_root, setsid,
//!                                               pty (master → console socket, or:)
//!  ◀──────────────────── Console + fd (run) ──
//!                                               rootfs::finish, hostname, then
//!                                               (process/program.rs) seccomp if no nnp,
//!                                               rlimits, exec lookup, fds, caps, user,
//!                                               no_new_privs, seccomp if nnp
//!  ◀─────────── SeccompNotify + fd (NOTIFY) ──
//!  send it to linux.seccomp.listenerPath
//!  ◀────────────────────────────────── Ready ──
//!  cgroup limits, state.json (created),          open(exec.fifo, O_WRONLY) blocks until
//!  --pid-file, exit                              `berth start` opens it; then
//!                                               startContainer hooks, execve
//! ```
//! At any point the child may send `Failed(ChildError{step, errno, message})` and exit
//! instead; the parent then reaps it, removes the cgroup and the state dir, and reports one
//! error line: `container init: <step>: <context chain>: <errno text>`.
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::state::{self, write_pid_file, Container, Record};
use crate::cgroups::{self, CgroupConfig};
use crate::process::channel::{Channel, Msg};
use crate::process::init::InitContext;
use crate::process::namespaces::{self, PidNsGuard, Plan};
use crate::spec::Bundle;

/// What the caller asked for.
pub struct CreateRequest<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub console_socket: Option<&'a Path>,
    pub pid_file: Option<&'a Path>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub systemd_cgroup: bool,
    pub rootless: bool,
    /// A foreground `run` without a console socket: the parent keeps the pty master.
    pub keep_console: bool,
}

/// A created container, still locked by this process.
pub struct Created {
    pub container: Container,
    pub pid: Pid,
    /// The pty master, for a foreground `run` with process.terminal.
    pub console: Option<OwnedFd>,
}

/// Undo what a failed create did, in reverse order.
struct Cleanup {
    dir: Option<PathBuf>,
    cgroup: Option<Box<dyn cgroups::Manager>>,
    child: Option<Pid>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.child.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(cg) = self.cgroup.take() {
            if let Err(e) = cg.destroy() {
                tracing::warn!("cleanup: removing the cgroup: {e:#}");
            }
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub fn create(req: &CreateRequest) -> Result<Created> {
    // 1. Everything that can be checked is checked before any side effect.
    state::check_id(req.id)?;
    let bundle = crate::spec::load_bundle(req.bundle)?;
    let spec = &bundle.spec;
    let process = spec
        .process()
        .as_ref()
        .context("config.json: process: missing")?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && req.console_socket.is_none() && !req.keep_console {
        bail!("process.terminal is true: pass --console-socket (or use `run` in the foreground)");
    }
    if !terminal && req.console_socket.is_some() {
        bail!("--console-socket given but process.terminal is false");
    }
    let plan = Plan::from_spec(spec);
    // Compiled once, here, before any side effect (errors name the JSON path).
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(|sc| crate::security::seccomp::compile(sc).map(|p| (p, sc)))
        .transpose()?;
    let (listen_env, listen_fds) = listen_fds();
    let cg_cfg = CgroupConfig {
        cgroups_path: spec.linux().as_ref().and_then(|l| l.cgroups_path().clone()),
        id: req.id.to_string(),
        systemd: req.systemd_cgroup,
        rootless: req.rootless,
    };
    let cgroup = cgroups::new_manager(&cg_cfg)?;

    // 2. The state directory, locked: a duplicate id stops here.
    let (dir, lock) = state::create_dir(req.root, req.id)?;
    let mut cleanup = Cleanup {
        dir: Some(dir.clone()),
        cgroup: None,
        child: None,
    };
    let fifo_path = dir.join("exec.fifo");
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o622))
        .with_context(|| format!("creating the exec fifo {}", fifo_path.display()))?;
    // Writable by the container's user whoever it is (mkfifo applied our umask).
    std::fs::set_permissions(&fifo_path, std::fs::Permissions::from_mode(0o622))
        .with_context(|| format!("chmod of {}", fifo_path.display()))?;
    let fifo: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(&fifo_path)
        .with_context(|| format!("opening {}", fifo_path.display()))?
        .into();
    let console_socket = match req.console_socket {
        Some(p) => Some(OwnedFd::from(UnixStream::connect(p).with_context(
            || format!("connecting to --console-socket {}", p.display()),
        )?)),
        None => None,
    };

    // 3. The cgroup, made by the parent (registered for cleanup first: a partial create is
    // undone too).
    let cgroup = cleanup.cgroup.insert(cgroup);
    cgroup.create()?;

    // 4. The clone.
    let (parent_end, child_end) = Channel::pair("container init")?;
    let state_doc = hook_state(req.id, &bundle, "creating", 0);
    let pidns = plan
        .join_pid
        .as_deref()
        .map(PidNsGuard::enter)
        .transpose()?;
    // Our image must never be dumpable where container processes can see it (CVE-2019-5736):
    // the init inherits "not dumpable", unless we must write its id maps (then it clears the
    // flag itself once they are written, before anything else can join its namespaces).
    if !plan.new_user {
        nix::sys::prctl::set_dumpable(false).context("PR_SET_DUMPABLE")?;
    }
    let into = cgroup.clone_into_fd();
    let forked = crate::sys::process::fork_with_flags(
        plan.clone_flags,
        into.as_ref().map(|f| f.as_raw_fd()),
    )
    .context("clone of the container init");
    if let Ok(crate::sys::process::Forked::Child) = forked {
        drop(parent_end);
        crate::process::init::run(InitContext {
            id: req.id,
            spec,
            bundle: &bundle.dir,
            rootfs: &bundle.rootfs,
            plan: &plan,
            channel: child_end,
            fifo,
            console_socket,
            no_pivot: req.no_pivot,
            no_new_keyring: req.no_new_keyring,
            extra_fds: listen_fds + req.preserve_fds,
            extra_env: listen_env,
            seccomp: seccomp.as_ref().map(|(p, _)| p),
            state: state_doc,
        });
    }
    if let Some(g) = pidns {
        g.leave()?;
    }
    let pid = match forked? {
        crate::sys::process::Forked::Parent(pid) => pid,
        crate::sys::process::Forked::Child => {
            unreachable!("the child never returns from init::run")
        }
    };
    cleanup.child = Some(pid);
    drop(child_end);
    drop(console_socket);

    // 5. Parent: ids, cgroup membership, then go.
    if plan.new_user {
        let linux = spec.linux().as_ref().context("linux: missing")?;
        namespaces::write_id_maps(
            pid.as_raw(),
            linux.uid_mappings().as_deref().unwrap_or(&[]),
            linux.gid_mappings().as_deref().unwrap_or(&[]),
            req.rootless,
        )?;
    }
    parent_end.send(&Msg::Go {
        host_pid: pid.as_raw(),
    })?;
    // The init starts on its rootfs while we move it into the cgroup (on v1 the first attach
    // waits for an RCU grace period); it waits for CgroupJoined before its cgroup mounts and
    // its cgroup namespace, and long before any container code runs.
    if into.is_none() {
        cgroup.apply(pid.as_raw())?;
    }
    parent_end.send(&Msg::CgroupJoined)?;

    // 6. Hooks in the runtime namespace once the mounts exist.
    parent_end.expect("RunHooks", |m| matches!(m, Msg::RunHooks))?;
    let state_doc = hook_state(req.id, &bundle, "creating", pid.as_raw());
    let hooks = spec.hooks().as_ref();
    crate::hooks::run_all(
        "prestart",
        hooks.and_then(|h| h.prestart().as_ref()),
        &state_doc,
    )?;
    crate::hooks::run_all(
        "createRuntime",
        hooks.and_then(|h| h.create_runtime().as_ref()),
        &state_doc,
    )?;
    parent_end.send(&Msg::HooksDone)?;

    // 7. The console (foreground run), then Ready.
    let console = if terminal && req.console_socket.is_none() {
        Some(
            parent_end
                .expect("Console", |m| matches!(m, Msg::Console))?
                .context("the init sent no pty master")?,
        )
    } else {
        None
    };
    if let Some((_, sc)) = seccomp.as_ref().filter(|(p, _)| p.uses_notify()) {
        let fd = parent_end
            .expect("SeccompNotify", |m| matches!(m, Msg::SeccompNotify))?
            .context("the init sent no seccomp notify fd")?;
        let listener = sc
            .listener_path()
            .as_ref()
            .context("linux.seccomp.listenerPath: missing")?;
        let mut st = hook_state(req.id, &bundle, "creating", pid.as_raw());
        st["pid"] = pid.as_raw().into();
        crate::security::seccomp::send_to_listener(
            listener,
            fd.as_fd(),
            &st,
            sc.listener_metadata().as_deref(),
        )?;
    }
    parent_end.expect("Ready", |m| matches!(m, Msg::Ready))?;

    // 8. Limits, state, pid file.
    if let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        cgroup.set(r)?;
    }
    let record = Record {
        oci_version: spec.version().clone(),
        id: req.id.to_string(),
        pid: pid.as_raw(),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        owner: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        init_start_time: state::start_time(pid.as_raw())
            .context("the container init died during create")?,
        cgroup: cgroup.state(),
        resources: spec.linux().as_ref().and_then(|l| l.resources().clone()),
        hooks: spec.hooks().clone(),
        rootless: req.rootless,
    };
    let container = Container::new(dir, lock, record);
    container.save()?;
    if let Some(p) = req.pid_file {
        write_pid_file(p, pid.as_raw())?;
    }
    // Success: nothing to undo.
    cleanup.dir = None;
    cleanup.cgroup = None;
    cleanup.child = None;
    drop(parent_end);
    Ok(Created {
        container,
        pid,
        console,
    })
}

/// The state document given to hooks (and printed by `berth state`).
pub fn hook_state(id: &str, b: &Bundle, status: &str, pid: i32) -> serde_json::Value {
    let mut v = serde_json::json!({
        "ociVersion": b.spec.version(),
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": b.dir,
    });
    if let Some(a) = b.spec.annotations().as_ref().filter(|a| !a.is_empty()) {
        v["annotations"] = serde_json::json!(a);
    }
    v
}

/// Socket-activation fds passed through (LISTEN_FDS), as runc does: they sit at 3.. and the
/// program sees LISTEN_FDS=N and LISTEN_PID=1.
fn listen_fds() -> (Vec<String>, u32) {
    match std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        Some(n) if n > 0 => (vec![format!("LISTEN_FDS={n}"), "LISTEN_PID=1".into()], n),
        _ => (Vec::new(), 0),
    }
}

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
