//! The container init: what the child of the clone does, in order, until it execs the
//! user's program. Each step is named; a failure is sent to the parent as a `ChildError`
//! (step, errno, message) and the init exits. See `container/create.rs` for the protocol.
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::Spec;

use super::channel::{Channel, ChildError, Msg, Step};
use super::child::Never;
use super::namespaces::Plan;
use super::program::Setup;
use crate::cgroups::entry::TasksFile;

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
    /// The compiled linux.seccomp filter.
    pub seccomp: Option<&'a crate::security::seccomp::Program>,
    /// The mount sources the parent made, by `mounts[]` index (idmapped trees, and copies
    /// of bind sources for a user-namespaced init; see `rootfs::open_mount_sources`). The
    /// mounts step takes and closes them.
    pub mount_sources: std::cell::RefCell<Vec<Option<crate::rootfs::MountSource>>>,
    /// The state document hooks get (pid and status are filled in by the init).
    pub state: serde_json::Value,
    /// Memory policy, I/O priority, scheduler, CPU affinity, personality.
    pub attrs: &'a crate::spec::attrs::Attrs,
    /// The host's /proc, opened before the clone (for process.apparmorProfile).
    pub procfs: Option<&'a crate::security::apparmor::ProcfsHandle>,
    /// The parent's CPU affinity when it may move us off its own CPU after the clone (no
    /// execCPUAffinity.initial): given back before createContainer hooks run. The program
    /// sets its own (`attrs::before_seccomp`).
    pub parent_cpus: Option<&'a nix::sched::CpuSet>,
    pub cgroup: InitCgroup<'a>,
}

/// How the init gets into its cgroup.
pub enum InitCgroup<'a> {
    /// Made before the clone: the v1 hierarchies' `tasks` files the parent opened, which
    /// the init joins through first thing (`cgroups::entry`); and whether the parent moves
    /// it by pid into the rest after the clone (then it says CgroupJoined).
    Given {
        tasks: &'a [TasksFile],
        by_parent: bool,
    },
    /// Made after the clone, while the init makes its network namespace: the same, sent in
    /// a CgroupTasks message.
    Late,
}

/// [`InitCgroup::Late`]: makes our network namespace (the clone left it out), then takes
/// the `tasks` files of the cgroup the parent made meanwhile.
fn late_cgroup(ch: &Channel) -> Result<(Vec<TasksFile>, bool), ChildError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .context("unshare(CLONE_NEWNET)")
        .step("network")?;
    let ((hierarchies, by_parent), fds) = ch
        .expect_with("CgroupTasks", |m| match m {
            Msg::CgroupTasks {
                hierarchies,
                by_parent,
            } => Ok((hierarchies, by_parent)),
            m => Err(m),
        })
        .step("sync")?;
    if fds.len() != hierarchies.len() {
        return Err(ChildError {
            step: "sync".into(),
            errno: 0,
            message: format!(
                "CgroupTasks named {} tasks files but came with {} fds",
                hierarchies.len(),
                fds.len()
            ),
        });
    }
    let tasks = hierarchies
        .into_iter()
        .zip(fds)
        .map(|((h, dir), fd)| TasksFile::received(h, dir, fd))
        .collect();
    Ok((tasks, by_parent))
}

/// Run the init. Never returns: execs the program or exits with status 1.
pub fn run(ctx: InitContext) -> ! {
    super::child::run("container init", &ctx.channel, || setup(&ctx))
}

fn setup(ctx: &InitContext) -> Result<Never, ChildError> {
    let spec = ctx.spec;
    let process = spec
        .process()
        .as_ref()
        .context("process: missing")
        .step("config")?;
    let linux = spec.linux().as_ref();
    let common = Setup {
        process,
        channel: &ctx.channel,
        console_socket: ctx.console_socket.as_ref(),
        seccomp: ctx.seccomp,
        extra_fds: ctx.extra_fds,
        extra_env: &ctx.extra_env,
        init: true,
        attrs: ctx.attrs,
        procfs: ctx.procfs,
    };

    // 1. Hold only what we were given (the runtime's lock on the state directory goes at
    // once), join our cgroup, then wait until the parent mapped our ids.
    let mut keep = vec![ctx.channel.raw(), ctx.fifo.as_raw_fd()];
    keep.extend(ctx.console_socket.as_ref().map(|s| s.as_raw_fd()));
    keep.extend(ctx.procfs.map(|p| p.as_raw_fd()));
    // The mount sources the parent made (attached, then closed, by the mounts step).
    keep.extend(
        ctx.mount_sources
            .borrow()
            .iter()
            .flatten()
            .map(|f| f.as_fd().as_raw_fd()),
    );
    if let InitCgroup::Given { tasks, .. } = ctx.cgroup {
        keep.extend(tasks.iter().map(|t| t.raw_fd()));
    }
    super::program::keep_only_given_fds(&keep, ctx.extra_fds)?;
    crate::fault::point("init:fds");
    // Into our cgroup before anything else runs here, or is forked from here: the v1
    // hierarchies through the tasks files the parent opened (closed once written), the
    // cgroup2 tree by the clone itself. A late cgroup is made by the parent while we make
    // our network namespace.
    let late;
    let (tasks, by_parent) = match ctx.cgroup {
        InitCgroup::Given { tasks, by_parent } => (tasks, by_parent),
        InitCgroup::Late => {
            late = late_cgroup(&ctx.channel)?;
            (&late.0[..], late.1)
        }
    };
    crate::cgroups::entry::join_self(tasks).step("cgroup")?;
    crate::fault::point("init:cgroup-joined");
    let host_pid = super::program::begin(&ctx.channel)?;
    crate::fault::point("init:go");

    // 2. Namespaces joined by path and the late ones. In a user namespace we become its
    // root (our host ids map to nothing there until we take the mapped ones).
    ctx.plan
        .enter(linux.and_then(|l| l.time_offsets().as_ref()))
        .step("namespaces")?;
    crate::fault::point("init:namespaces");
    if ctx.plan.in_user_ns() {
        become_userns_root().step("user namespace")?;
    }
    // A new network namespace gets its loopback up, as runc does (engines rely on it).
    if ctx.plan.new_net() {
        crate::sys::net::loopback_up()
            .context("bringing up the loopback interface \"lo\"")
            .step("network")?;
    }
    if !ctx.no_new_keyring {
        session_keyring(ctx.id).step("keyring")?;
    }
    super::program::set_oom_score_adj(process)?;
    crate::fault::point("init:keyring");

    // 3. Mounts and /dev, then the runtime-namespace hooks, then ours, then pivot_root.
    // Where the parent moves us by pid (a first attach by pid waits for an RCU grace
    // period), it does so meanwhile; we wait for that only when something needs it (a
    // cgroup mount, our cgroup namespace), and before the mounts are done.
    let joined = std::cell::Cell::new(false);
    let cgroup_ready = || -> Result<()> {
        if !joined.get() {
            if by_parent {
                ctx.channel
                    .expect("CgroupJoined", |m| matches!(m, Msg::CgroupJoined))?;
            }
            ctx.plan.enter_cgroup()?;
            joined.set(true);
        }
        Ok(())
    };
    let rcfg = crate::rootfs::RootfsConfig {
        spec,
        rootfs: ctx.rootfs.to_path_buf(),
        bundle: ctx.bundle.to_path_buf(),
        no_pivot: ctx.no_pivot,
        new_userns: ctx.plan.new_user,
        new_cgroupns: ctx.plan.new_cgroup,
        mounts_copied: ctx.plan.mounts_copied(),
        cgroup_ready: &cgroup_ready,
        mount_sources: &ctx.mount_sources,
    };
    // Never mount in the runtime's namespace (create refused such a config already).
    ctx.plan.check_mount_ns(spec).step("rootfs")?;
    crate::rootfs::prepare(&rcfg).step("rootfs")?;
    crate::fault::point("init:mounts");
    cgroup_ready().step("cgroup")?;
    crate::fault::point("init:cgroup");
    let hooks = spec.hooks().as_ref();
    // The parent sets our limits (and runs its hooks, if any) now, or did so meanwhile.
    if crate::hooks::runtime_hooks_at_create(hooks) {
        ctx.channel.send(&Msg::RunHooks).step("sync")?;
    }
    crate::fault::point("init:run-hooks");
    ctx.channel
        .expect("HooksDone", |m| matches!(m, Msg::HooksDone))
        .step("sync")?;
    crate::fault::point("init:hooks-done");
    let mut state = ctx.state.clone();
    state["pid"] = host_pid.into();
    state["status"] = "created".into();
    // Hooks run here without an env of their own get the container process's, as in runc.
    let mut hook_env = process.env().clone().unwrap_or_default();
    hook_env.extend(ctx.extra_env.iter().cloned());
    let create_hooks = hooks.and_then(|h| h.create_container().as_ref());
    if let (Some(cpus), Some(_)) = (ctx.parent_cpus, create_hooks) {
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), cpus)
            .context("sched_setaffinity back to the runtime's CPUs")
            .step("createContainer hooks")?;
    }
    crate::hooks::run_all_in_container("createContainer", create_hooks, &state, &hook_env)
        .step("createContainer hooks")?;
    crate::fault::point("init:create-container-hooks");
    crate::rootfs::pivot(&rcfg).step("pivot_root")?;
    crate::fault::point("init:pivot");
    make_cwd(process.cwd()).step("cwd")?;

    // 4. Session, terminal, the rest of the rootfs, names.
    common.session()?;
    crate::fault::point("init:session");
    crate::rootfs::finish(&rcfg).step("rootfs")?;
    crate::fault::point("init:rootfs-finish");
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h)
            .with_context(|| format!("sethostname {h:?}"))
            .step("hostname")?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        set_domainname(d).step("domainname")?;
    }

    // 5. Process attributes, the identity change and capabilities, with the seccomp
    // filter (the same path as exec).
    crate::fault::point("init:names");
    let program = common.program()?;
    crate::fault::point("init:program");

    // 6. Ready: wait for `start` on the exec fifo, run startContainer hooks, exec.
    ctx.channel.send(&Msg::Ready).step("sync")?;
    crate::fault::point("init:ready");
    wait_for_start(&ctx.fifo).step("exec fifo")?;
    crate::hooks::run_all_in_container(
        "startContainer",
        hooks.and_then(|h| h.start_container().as_ref()),
        &state,
        &hook_env,
    )
    .step("startContainer hooks")?;
    Err(program.exec())
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
