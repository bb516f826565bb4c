//! Creating a container: the parent side, top to bottom, in four phases:
//!
//! 1. `prepare`: load, validate, plan, compile seccomp, resolve the cgroup. No side effects.
//! 2. `spawn`: the state dir and its lock, the exec fifo, the cgroup, the clone.
//! 3. `drive`: the protocol with the init below (maps, cgroup join, the config snapshot while
//!    the init mounts, hooks, Ready, limits).
//! 4. `record`: state.json and the pid file.
//!
//! Restore (`checkpoint`/`restore`) reuses `prepare`, `Made` and `record`.
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
//!  [prepare] validate config, plan, seccomp
//!  [spawn] lock <root>/<id>, mkfifo,
//!  create the cgroup, open each v1
//!  hierarchy's `tasks` for writing,
//!  clone3(CLONE_NEW*, CLONE_INTO_CGROUP ──────▶ close the fds it was not given; write "0"
//!  for cgroup2: v2, or a hybrid host's tree),   to each `tasks` fd: in the cgroup, with no
//!  close the `tasks` fds                        grace period; close them (before anything
//!                                               else runs or forks here), then blocks in
//!  [drive] uid_map / gid_map (new user ns)      recv()
//!  ── Go{host_pid} ───────────────────────────▶ join namespaces by path, unshare time,
//!  by pid, what the init could not join         keyring, oom_score_adj, rootfs::prepare
//!  itself (see below), then
//!  ── CgroupJoined ───────────────────────────▶ (awaited before a cgroup mount or the end of
//!  write the config snapshot                    the mounts), unshare cgroup
//!  with prestart or createRuntime hooks only:
//!  ◀─────────────────────────────── RunHooks ── (mounts done, before pivot_root)
//!  cgroup limits, prestart + createRuntime hooks
//!  ── HooksDone ──────────────────────────────▶ (awaited after the mounts) createContainer
//!  state.json written under a temporary name    hooks, pivot_root, setsid,
//!                                               pty (master → console socket, or:)
//!  ◀──────────────────── Console + fd (run) ──
//!                                               rootfs::finish, hostname, then
//!                                               (process/program.rs) memory policy, CPU
//!                                               affinity, ioprio, scheduler, fds, rlimits,
//!                                               exec lookup, caps, user, no_new_privs,
//!                                               seccomp, personality
//!  ◀─────────── SeccompNotify + fd (NOTIFY) ──
//!  send it to linux.seccomp.listenerPath
//!  ◀────────────────────────────────── Ready ──
//!  [record] state.json renamed into place,       open(exec.fifo, O_WRONLY) blocks until
//!  --pid-file, exit                              `berth start` opens it; then
//!                                               startContainer hooks, execve
//! ```
//! Without prestart and createRuntime hooks the parent sets the limits and sends HooksDone
//! right after the config snapshot, while the init mounts, and the init sends no RunHooks:
//! one round trip less for the init to wait on. The init never says that it joined its
//! cgroup: a failure there is its `Failed`, and every later message implies it.
//!
//! Right after the clone the parent moves the init to another of its CPUs (unless
//! execCPUAffinity.initial pins it): the kernel puts a fork on its parent's CPU, and the two
//! would take turns where they can work side by side. The init gives the parent's CPUs back
//! before createContainer hooks, and its program sets its own affinity before the exec.
//!
//! A late cgroup (`late_cgroup`: v1 with no cgroup2 tree, a new network namespace, no user
//! namespace, no netDevices) swaps the first steps: the parent clones without
//! CLONE_NEWNET, then makes the cgroup and opens its `tasks` files while the init makes its
//! network namespace (`unshare`), and sends them as `CgroupTasks` + fds, the first packet;
//! the init writes to them as above.
//!
//! `CgroupJoined` comes when the parent had something to move by pid (`cgroups/entry.rs`:
//! a `tasks` file it could not open; the cgroup2 tree when a helper in a user namespace
//! joined by path clones the init; the systemd driver, whose unit starts with the pid):
//! both sides know from the `Entry` made before the clone. A move by pid waits for an RCU
//! grace period when the kernel's lock was idle, so the init starts on its rootfs meanwhile.
//!
//! At any point the child may send `Failed(ChildError{step, errno, message})` and exit
//! instead; the parent then reaps it, removes the cgroup and the state dir, and reports one
//! error line: `container init: <step>: <context chain>: <errno text>`. When it dies without
//! a word (a seccomp filter that kills, a signal), the parent says how, and after which step:
//! the init records each step it completes in an area shared with the parent
//! (`process/progress.rs`), which needs no system call.
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::process_io::ProcessIo;
use super::state::{self, write_pid_file, Container, Lock, Record};
use crate::cgroups::{self, CgroupConfig, CgroupState, Entry, Manager, Ways};
use crate::process::attrs::InitialAffinity;
use crate::process::channel::{Channel, Msg};
use crate::process::idmap::MappingNamespaces;
use crate::process::init::{InitCgroup, InitContext};
use crate::process::namespaces::{PidNsGuard, Plan};
use crate::process::netdev;
use crate::process::progress::Progress;
use crate::rootfs::idmap::MountIdmap;
use crate::security::seccomp;
use crate::spec::attrs::Attrs;
use crate::spec::netdev::NetDevice;
use crate::spec::Bundle;

/// What the caller asked for.
pub struct CreateRequest<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub io: ProcessIo<'a>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub systemd_cgroup: bool,
    pub rootless: bool,
}

/// A created container, still locked by this process.
pub struct Created {
    pub container: Container,
    pub pid: Pid,
    /// The pty master, for a foreground `run` with process.terminal.
    pub console: Option<OwnedFd>,
}

/// `berth create`, top to bottom: check everything, make the init, drive it to Ready,
/// record it.
pub fn create(req: &CreateRequest) -> Result<Created> {
    let prep = prepare(req)?;
    let pidfd_socket = req.io.connect_pidfd()?;
    let (mut made, child) = spawn(req, &prep)?;
    let (console, rec) = drive(req, &prep, &made, &child)
        .map_err(|e| why_the_init_died(e, &mut made, &child.progress))?;
    if let Some(s) = &pidfd_socket {
        s.send(child.pid.as_raw(), "standard")?;
    }
    let container = record(&prep, made, rec, req.io.pid_file)?;
    Ok(Created {
        container,
        pid: child.pid,
        console,
    })
}

/// Everything create checks and resolves before its first side effect. Restore starts
/// from the same value.
pub(crate) struct Prepared {
    pub id: String,
    pub root: PathBuf,
    pub bundle: Bundle,
    pub plan: Plan,
    /// linux.seccomp, compiled.
    pub seccomp: Option<seccomp::Program>,
    /// Memory policy, I/O priority, scheduler, CPU affinity, personality, converted.
    pub attrs: Attrs,
    /// linux.netDevices, checked against the host.
    pub netdevs: Vec<NetDevice>,
    /// By `mounts[]` index: how each idmapped mount is idmapped.
    pub idmaps: Vec<Option<MountIdmap>>,
    /// The cgroup's paths, resolved; nothing exists yet.
    pub cgroup: CgroupState,
    pub terminal: bool,
    pub rootless: bool,
}

impl Prepared {
    /// The state document given to hooks and to a seccomp listener.
    pub fn hook_state(&self, status: &str, pid: i32) -> serde_json::Value {
        let spec = &self.bundle.spec;
        let mut v = serde_json::json!({
            "ociVersion": spec.version(),
            "id": self.id,
            "status": status,
            "pid": pid,
            "bundle": self.bundle.dir,
        });
        if let Some(a) = spec.annotations().as_ref().filter(|a| !a.is_empty()) {
            v["annotations"] = serde_json::json!(a);
        }
        v
    }
}

/// Phase 1: load and validate the bundle, plan the namespaces, compile seccomp, resolve
/// the cgroup. No side effects: a bad config fails here and leaves nothing.
pub(crate) fn prepare(req: &CreateRequest) -> Result<Prepared> {
    state::check_id(req.id)?;
    let bundle = crate::spec::load_bundle(req.bundle)?;
    let spec = &bundle.spec;
    crate::rootfs::validate(spec).context("config.json")?;
    let process = spec
        .process()
        .as_ref()
        .context("config.json: process: missing")?;
    crate::security::apparmor::check_process(process).context("config.json")?;
    let terminal = process.terminal().unwrap_or(false);
    req.io.check_terminal(terminal)?;
    if !terminal && req.io.console_socket.is_some() {
        bail!("--console-socket given but process.terminal is false");
    }
    let plan = Plan::from_spec(spec);
    plan.check_mount_ns(spec)?;
    let linux = spec.linux().as_ref();
    let attrs = Attrs::from_spec(process, linux)?;
    let netdevs = netdev::from_spec(linux)?;
    let idmaps = crate::rootfs::idmap::plan(spec).context("config.json")?;
    if let Some(i) = idmaps
        .iter()
        .position(Option::is_some)
        .filter(|_| req.rootless)
    {
        bail!(
            "config.json: mounts[{i}]: id-mapped mounts are not supported for rootless containers"
        );
    }
    let seccomp = linux
        .and_then(|l| l.seccomp().as_ref())
        .map(|s| seccomp::compile(s).and_then(|p| p.check_kernel().map(|_| p)))
        .transpose()?;
    let cgroup = cgroups::new_manager(&CgroupConfig {
        cgroups_path: linux.and_then(|l| l.cgroups_path().clone()),
        id: req.id.to_string(),
        systemd: req.systemd_cgroup,
        rootless: req.rootless,
        resources: linux.and_then(|l| l.resources().clone()),
        annotations: spec.annotations().clone().unwrap_or_default(),
    })?
    .state();
    let prep = Prepared {
        id: req.id.to_string(),
        root: req.root.to_path_buf(),
        bundle,
        plan,
        seccomp,
        attrs,
        netdevs,
        idmaps,
        cgroup,
        terminal,
        rootless: req.rootless,
    };
    debug_plan(&prep);
    Ok(prep)
}

/// `--debug`: what create is about to apply (runc's debug lines name the same things).
fn debug_plan(prep: &Prepared) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let spec = &prep.bundle.spec;
    let linux = spec.linux().as_ref();
    tracing::debug!(
        bundle = %prep.bundle.dir.display(),
        rootfs = %prep.bundle.rootfs.display(),
        "create {}: config loaded",
        prep.id
    );
    let namespaces: Vec<String> = linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .map(|n| {
            let name = crate::spec::validate::ns_name(n.typ());
            match n.path() {
                Some(p) => format!("{name}={}", p.display()),
                None => name.to_string(),
            }
        })
        .collect();
    tracing::debug!(
        namespaces = %namespaces.join(","),
        clone_flags = %format!("{:#x}", prep.plan.clone_flags),
        "namespaces"
    );
    let cgroup = serde_json::to_string(&prep.cgroup).unwrap_or_default();
    tracing::debug!(cgroup = %cgroup, "cgroup");
    let process = serde_json::to_value(spec.process()).unwrap_or_default();
    if let Some(a) = process.get("execCPUAffinity").filter(|a| !a.is_null()) {
        tracing::debug!(
            initial = %a["initial"].as_str().unwrap_or(""),
            r#final = %a["final"].as_str().unwrap_or(""),
            "cpu affinity"
        );
    }
    if let (Some(p), Some(s)) = (&prep.seccomp, linux.and_then(|l| l.seccomp().as_ref())) {
        tracing::debug!(
            default_action = %serde_json::to_value(s.default_action())
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            rules = s.syscalls().as_ref().map_or(0, |r| r.len()),
            instructions = p.len(),
            notify = p.uses_notify(),
            "seccomp filter compiled"
        );
    }
}

/// What a create (or restore) has made so far. Dropped before `record` commits it, it undoes
/// everything in reverse order: the child, the cgroup, the state directory.
pub(crate) struct Made {
    dir: Option<PathBuf>,
    lock: Option<Lock>,
    cgroup: Option<Box<dyn Manager>>,
    /// The cgroup as recorded ahead of its creation.
    planned: Option<CgroupState>,
    child: Option<Pid>,
    /// linux.netDevices moved into this network namespace, pinned in the state directory.
    netdevs: Option<(std::fs::File, Vec<NetDevice>)>,
}

impl Made {
    /// The state directory `<root>/<id>`, locked: a duplicate id stops here.
    pub fn state_dir(prep: &Prepared) -> Result<Made> {
        let (dir, lock) = state::create_dir(&prep.root, &prep.id)?;
        crate::fault::point("create:state-dir");
        // Written ahead of the first mkdir: a create killed while it makes the cgroup, or
        // before it records what it made, leaves a record `delete --force` (or the next
        // create of this id) removes it by.
        let planned = cgroups::planned(&prep.cgroup);
        let mut made = Made {
            dir: Some(dir),
            lock: Some(lock),
            cgroup: None,
            planned: None,
            child: None,
            netdevs: None,
        };
        state::write_orphan_cgroup(made.dir(), &planned)?;
        made.planned = Some(planned);
        crate::fault::point("create:cgroup-planned");
        Ok(made)
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_deref().expect("the state directory")
    }

    /// Create the cgroup `prep` resolved (a partial create is undone at once; rootless
    /// without permission, the container has none). Removed again if the create fails later.
    pub fn create_cgroup(&mut self, prep: &Prepared) -> Result<&dyn Manager> {
        let (m, made) = cgroups::create(cgroups::load_manager(&prep.cgroup)?, prep.rootless)?;
        let m = &**self.cgroup.insert(m);
        crate::fault::point("create:cgroup");
        // Until state.json exists, this is how `delete --force` finds the cgroup of a
        // create that was killed (the plan, unless the create made something else).
        let dir = self.dir.as_deref().context("the state directory")?;
        let st = m.state();
        if self.planned.as_ref() != Some(&st) {
            state::write_orphan_cgroup(dir, &st)?;
        }
        cgroups::check_usable(m, made)?;
        Ok(m)
    }

    /// The cgroup made by `create_cgroup`.
    pub fn cgroup(&self) -> Result<&dyn Manager> {
        self.cgroup.as_deref().context("the cgroup was not created")
    }

    /// From now on a failure kills and reaps `pid`.
    pub fn child(&mut self, pid: Pid) {
        self.child = Some(pid);
    }

    /// Move linux.netDevices into the init's network namespace (the one it was cloned with,
    /// or the one it will join by path) and pin that namespace at `<state>/netns`. Undone,
    /// devices first, if the create fails later.
    pub fn move_netdevs(&mut self, prep: &Prepared, pid: Pid) -> Result<()> {
        if prep.netdevs.is_empty() {
            return Ok(());
        }
        let ns = prep
            .plan
            .join
            .iter()
            .find(|(t, _)| *t == oci_spec::runtime::LinuxNamespaceType::Network)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| PathBuf::from(format!("/proc/{pid}/ns/net")));
        let pin = self.dir().join(netdev::PIN);
        netdev::pin(&ns, &pin)?;
        let file = std::fs::File::open(&pin)
            .with_context(|| format!("opening the network namespace {}", pin.display()))?;
        if let Err(e) = netdev::move_in(&prep.netdevs, &file) {
            let _ = netdev::unpin(&pin);
            return Err(e);
        }
        self.netdevs = Some((file, prep.netdevs.clone()));
        Ok(())
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        if let Some((ns, devs)) = self.netdevs.take() {
            if let Err(e) = netdev::move_out(&devs, &ns) {
                tracing::warn!("cleanup: returning linux.netDevices: {e:#}");
            }
            if let Some(dir) = &self.dir {
                let _ = netdev::unpin(&dir.join(netdev::PIN));
            }
        }
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
            if let Err(e) = state::remove_state_dir(&dir) {
                tracing::warn!("cleanup: {e:#}");
            }
        }
    }
}

/// The init, right after the clone: its pid and our end of the channel.
pub(crate) struct Child {
    pub pid: Pid,
    pub channel: Channel,
    /// How it enters its cgroup from here: its own word, the parent's moves by pid.
    pub cgroup: cgroups::entry::Forked,
    /// The last step the init completed, for when it dies without a word.
    pub progress: Progress,
}

/// Phase 2: the state directory and its lock, the exec fifo, the cgroup, the clone.
fn spawn(req: &CreateRequest, prep: &Prepared) -> Result<(Made, Child)> {
    let mut made = Made::state_dir(prep)?;
    let fifo = make_fifo(made.dir())?;
    crate::fault::point("create:fifo");
    let console_socket = req.io.connect_console()?;
    let ways = Ways {
        no_clone_into: prep
            .plan
            .join_user
            .as_ref()
            .map(|_| "a helper in the user namespace joined by path clones the init"),
        no_self_join: None,
    };
    // A late cgroup is made once the init is cloned (see `late_cgroup`).
    let late = late_cgroup(prep);
    let entry = if late {
        None
    } else {
        Some(made.create_cgroup(prep)?.entry(ways))
    };
    let mut child = clone_init(req, prep, fifo, console_socket, entry)?;
    made.child(child.pid);
    tracing::debug!(pid = child.pid.as_raw(), "container init cloned");
    crate::fault::point("create:clone");
    if late {
        tracing::debug!("the init makes its network namespace while we make its cgroup");
        let entry = made.create_cgroup(prep)?.entry(ways);
        let (hierarchies, fds) = entry.hand_over();
        let by_parent = entry.parent_moves();
        child.channel.send_with_fds(
            &Msg::CgroupTasks {
                hierarchies,
                by_parent,
            },
            &fds,
        )?;
        child.cgroup = entry.forked();
    }
    made.move_netdevs(prep, child.pid)?;
    Ok((made, child))
}

/// Whether the init is cloned before its cgroup exists (a late cgroup), to make its
/// network namespace itself while we make the cgroup: a new network namespace is the
/// largest part of the clone (its loopback device and every subsystem's per-namespace
/// state), and the cgroup's directories the largest part of what we do before it. Only
/// where nothing needs the cgroup or the namespace at the clone: v1 with no cgroup2 tree
/// (CLONE_INTO_CGROUP needs its directory), no user namespace (the clone's own, which
/// would own the network namespace and is mapped before Go, or one joined by path), no
/// linux.netDevices (moved in right after the clone). The network namespace is made
/// outside the container's cgroup, so its kernel memory is charged to ours.
fn late_cgroup(prep: &Prepared) -> bool {
    prep.plan.new_net()
        && !prep.plan.in_user_ns()
        && prep.netdevs.is_empty()
        && matches!(prep.cgroup, CgroupState::V1 { unified: None, .. })
}

/// The clone: the child becomes the container's init and never returns from here. The
/// parent keeps only its end of the channel.
fn clone_init(
    req: &CreateRequest,
    prep: &Prepared,
    fifo: OwnedFd,
    console_socket: Option<OwnedFd>,
    entry: Option<Entry>,
) -> Result<Child> {
    // No entry: a late cgroup (see `late_cgroup`), and no network namespace in the clone.
    let (late, entry) = match entry {
        Some(e) => (false, e),
        None => (true, Entry::none()),
    };
    let (parent_end, child_end) = Channel::pair("container init")?;
    let progress = Progress::new()?;
    let (extra_env, listen) = listen_fds();
    // The host's /proc for the AppArmor exec attribute, taken before the init can see
    // anything of the container.
    let procfs = prep
        .bundle
        .spec
        .process()
        .as_ref()
        .map(crate::security::apparmor::procfs_for)
        .transpose()?
        .flatten();
    // The idmapped mounts, made here where we may idmap the host's filesystems (the init of
    // a user namespace may not), and copies of the bind sources such an init may not reach.
    let mut userns = MappingNamespaces::default();
    let mount_sources = crate::rootfs::open_mount_sources(
        &prep.bundle.spec,
        &prep.bundle.dir,
        &prep.idmaps,
        prep.plan.in_user_ns(),
        // SAFETY: berth is single-threaded up to the clone below.
        &mut |m| unsafe { userns.get(m) },
    )?;
    drop(userns);
    // With a user namespace joined by path, the helper that clones the init enters the pid
    // namespace too (see fork_in_userns).
    let join_user = prep.plan.join_user.as_deref();
    let pidns = prep
        .plan
        .join_pid
        .as_deref()
        .filter(|_| join_user.is_none());
    let pidns = pidns.map(PidNsGuard::enter).transpose()?;
    // Our image must never be dumpable where container processes can see it (CVE-2019-5736):
    // the init inherits "not dumpable", unless we must write its id maps (then it clears the
    // flag itself once they are written, before anything else can join its namespaces).
    if !prep.plan.new_user {
        nix::sys::prctl::set_dumpable(false).context("PR_SET_DUMPABLE")?;
    }
    // The init starts with execCPUAffinity.initial: ours for the time of the clone.
    let initial = InitialAffinity::set(&prep.attrs.affinity)?;
    // Without one, it runs on another of our CPUs until its program resets its affinity
    // (`run_elsewhere`, below); it needs ours for hooks it runs before that.
    let ours = match prep.attrs.affinity.initial {
        None => nix::sched::sched_getaffinity(Pid::from_raw(0)).ok(),
        Some(_) => None,
    };
    // None with a helper in a joined user namespace (`spawn` said so).
    let into = entry.into_fd();
    let flags = if late {
        prep.plan.clone_flags & !libc::CLONE_NEWNET
    } else {
        prep.plan.clone_flags
    };
    // SAFETY: berth is single-threaded up to here (no async runtime, no thread pool,
    // synchronous logging), as fork_with_flags and fork_in_userns require.
    let forked = match join_user {
        Some(user) => unsafe {
            crate::process::namespaces::fork_in_userns(user, prep.plan.join_pid.as_deref(), flags)
        },
        None => unsafe { crate::sys::process::fork_with_flags(flags, into) }.map_err(Into::into),
    }
    .context("clone of the container init");
    if let Ok(crate::sys::process::Forked::Child) = forked {
        drop(parent_end);
        progress.attach("container init");
        crate::process::init::run(InitContext {
            id: &prep.id,
            spec: &prep.bundle.spec,
            bundle: &prep.bundle.dir,
            rootfs: &prep.bundle.rootfs,
            plan: &prep.plan,
            channel: child_end,
            fifo,
            console_socket,
            no_pivot: req.no_pivot,
            no_new_keyring: req.no_new_keyring,
            extra_fds: listen + req.io.preserve_fds,
            extra_env,
            seccomp: prep.seccomp.as_ref(),
            mount_sources: mount_sources.into(),
            state: prep.hook_state("creating", 0),
            attrs: &prep.attrs,
            procfs: procfs.as_ref(),
            parent_cpus: ours.as_ref(),
            cgroup: if late {
                InitCgroup::Late
            } else {
                InitCgroup::Given {
                    tasks: entry.tasks(),
                    by_parent: entry.parent_moves(),
                }
            },
        });
    }
    drop(initial);
    if let Some(g) = pidns {
        g.leave()?;
    }
    let pid = match forked? {
        crate::sys::process::Forked::Parent(pid) => pid,
        crate::sys::process::Forked::Child => {
            unreachable!("the child never returns from init::run")
        }
    };
    // The init's mounts and namespaces and our cgroup work run side by side, not in turns
    // on one CPU: `run` 6.82 -> 6.20 ms (bench/RESULTS.md, 2026-12-04).
    if let Some(ours) = &ours {
        match crate::sys::sched::run_elsewhere(pid, ours) {
            Ok(moved) => tracing::debug!(moved, "the init's CPUs"),
            Err(e) => tracing::debug!("leaving the init on our CPU: sched_setaffinity: {e}"),
        }
    }
    // The child's ends close here (its exit is end-of-file on the channel), and so do the
    // `tasks` files it writes to.
    drop((child_end, fifo, console_socket));
    Ok(Child {
        pid,
        channel: parent_end,
        cgroup: entry.forked(),
        progress,
    })
}

/// `<dir>/exec.fifo`, writable by the container's user whoever it is (or the one a spare
/// kept); returns an O_PATH fd.
fn make_fifo(dir: &Path) -> Result<OwnedFd> {
    if let Some(fd) = state::take_kept_fifo(dir) {
        return Ok(fd);
    }
    let path = dir.join("exec.fifo");
    nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o622))
        .with_context(|| format!("creating the exec fifo {}", path.display()))?;
    // mkfifo applied our umask.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o622))
        .with_context(|| format!("chmod of {}", path.display()))?;
    Ok(std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?
        .into())
}

/// Phase 3: the protocol with the init (drawn at the top of this file), from the id maps
/// to Ready, and the cgroup limits. state.json is written ahead meanwhile, under its
/// temporary name (`Recorded`). Returns the pty master of a foreground `run` too.
fn drive(
    req: &CreateRequest,
    prep: &Prepared,
    made: &Made,
    child: &Child,
) -> Result<(Option<OwnedFd>, Recorded)> {
    let (ch, pid) = (&child.channel, child.pid.as_raw());
    let cgroup = made.cgroup()?;
    let spec = &prep.bundle.spec;
    // The init joins its v1 hierarchies meanwhile. Should it fail and exit, what it said
    // is the cause of our failing to reach it.
    let its_word = |e: anyhow::Error| ch.reported_failure().unwrap_or(e);
    if prep.plan.new_user {
        let linux = spec.linux().as_ref().context("linux: missing")?;
        crate::process::idmap::write(
            pid,
            linux.uid_mappings().as_deref().unwrap_or(&[]),
            linux.gid_mappings().as_deref().unwrap_or(&[]),
        )
        .map_err(its_word)?;
    }
    ch.send(&Msg::Go { host_pid: pid })?;
    tracing::debug!("sent Go to the container init");
    crate::fault::point("create:go");
    // What the init could not join itself, we move it into by pid while it starts on its
    // rootfs (that may wait for an RCU grace period); it waits for CgroupJoined before its
    // cgroup mounts and its cgroup namespace, and long before any container code runs.
    if child.cgroup.parent_moves() {
        child.cgroup.finish(cgroup, pid).map_err(its_word)?;
        ch.send(&Msg::CgroupJoined)?;
    }
    crate::fault::point("create:cgroup-joined");
    // While the init makes its mounts.
    state::save_config(made.dir(), spec)?;
    crate::fault::point("create:config");

    // The limits, then the hooks in the runtime namespace. With such hooks, once the
    // mounts exist, as runc orders them (a hook may change the cgroup's settings); without,
    // now, while the init mounts: nothing it does there depends on them (the device rules
    // always allow mknod, as runc's defaults do). Either way before the init's own
    // createContainer hooks, its scheduler (inside its cpuset and RT budget) and its exec.
    let hooks = spec.hooks().as_ref();
    if crate::hooks::runtime_hooks_at_create(hooks) {
        ch.expect("RunHooks", |m| matches!(m, Msg::RunHooks))?;
    }
    crate::fault::point("create:run-hooks");
    if let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        cgroup.set(r).map_err(its_word)?;
        tracing::debug!("cgroup limits applied");
    }
    let state_doc = prep.hook_state("creating", pid);
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
    crate::fault::point("create:hooks");
    tracing::debug!("prestart and createRuntime hooks done");
    // (Unasked, it may find the init gone: the send reports what it said, as any send does.)
    ch.send(&Msg::HooksDone)?;
    crate::fault::point("create:hooks-done");
    // While the init finishes its setup: at Ready, a rename is all that is left.
    let rec = Recorded::stage(prep, made, child.pid)?;

    let console = if prep.terminal && req.io.console_socket.is_none() {
        let fd = ch.expect("Console", |m| matches!(m, Msg::Console))?;
        let fd = fd.context("the init sent no pty master")?;
        crate::fault::point("create:console");
        Some(fd)
    } else {
        None
    };
    if prep.seccomp.as_ref().is_some_and(|p| p.uses_notify()) {
        let fd = ch.expect("SeccompNotify", |m| matches!(m, Msg::SeccompNotify))?;
        let fd = fd.context("the init sent no seccomp notify fd")?;
        let profile = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
        seccomp::hand_to_listener(profile, fd.as_fd(), &state_doc)?;
        crate::fault::point("create:seccomp-notify");
    }
    ch.expect("Ready", |m| matches!(m, Msg::Ready))?;
    tracing::debug!("the container init is ready (waiting on the exec fifo)");
    crate::fault::point("create:ready");
    Ok((console, rec))
}

/// The container's record, with state.json written under its temporary name; `record`
/// puts it in place. Until then the container does not exist for anyone reading the root.
pub(crate) struct Recorded {
    record: Record,
    file: state::Staged,
}

impl Recorded {
    pub fn stage(prep: &Prepared, made: &Made, pid: Pid) -> Result<Recorded> {
        let spec = &prep.bundle.spec;
        let record = Record {
            // As runc: the state follows the runtime's spec version, not the config's.
            oci_version: crate::spec::OCI_VERSION.to_string(),
            id: prep.id.clone(),
            pid: pid.as_raw(),
            bundle: prep.bundle.dir.clone(),
            rootfs: prep.bundle.rootfs.clone(),
            created: state::rfc3339_nano(chrono::Utc::now()),
            owner: String::new(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            init_start_time: state::start_time(pid.as_raw())
                .context("the container init died during create")?,
            cgroup: made.cgroup()?.state(),
            resources: spec.linux().as_ref().and_then(|l| l.resources().clone()),
            rootless: prep.rootless,
        };
        let file = state::Staged::write(
            &state::state_path(made.dir()),
            &serde_json::to_vec(&record)?,
        )?;
        Ok(Recorded { record, file })
    }
}

/// Phase 4: state.json in place, and the --pid-file (the config snapshot is written
/// already). From here on the container exists: nothing is undone any more. Restore ends
/// here too.
pub(crate) fn record(
    prep: &Prepared,
    mut made: Made,
    rec: Recorded,
    pid_file: Option<&Path>,
) -> Result<Container> {
    let pid = Pid::from_raw(rec.record.pid);
    let lock = made
        .lock
        .take()
        .context("the state directory is not locked")?;
    let container = Container::new(made.dir().to_path_buf(), lock, rec.record);
    container.set_config(prep.bundle.spec.clone());
    // Until it is in place, a failure still undoes everything (`made` drops).
    rec.file.commit()?;
    crate::fault::point("create:state");
    if let Some(p) = pid_file {
        write_pid_file(p, pid.as_raw())?;
    }
    made.dir = None;
    made.cgroup = None;
    made.child = None;
    made.netdevs = None;
    Ok(container)
}

/// When the init died without a word (a seccomp profile that kills, a signal), say how it
/// died and after which of its steps: that becomes the outermost context of the error,
/// ahead of what the protocol saw (the message it was waiting for).
fn why_the_init_died(e: anyhow::Error, made: &mut Made, progress: &Progress) -> anyhow::Error {
    use nix::sys::wait::WaitPidFlag;
    let Some(pid) = made.child else { return e };
    // The init said why itself: that is the cause.
    let reported = e.chain().any(|c| {
        c.downcast_ref::<crate::process::channel::ChildError>()
            .is_some()
    });
    if reported {
        return e;
    }
    // It is dying or gone if the channel broke; give it a moment, bounded.
    for _ in 0..50 {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(status) => match crate::process::progress::death(status, progress) {
                Some(how) => {
                    made.child = None;
                    return e.context(format!("the container init {how}"));
                }
                None => std::thread::sleep(std::time::Duration::from_millis(2)),
            },
            Err(_) => return e,
        }
    }
    e
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
