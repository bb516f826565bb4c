//! `exec`: start another process in a running (or created) container.
//!
//! The same shape as create, smaller: the parent opens the `tasks` file of each v1
//! hierarchy of the container's cgroup, enters the init's pid namespace around a fork (so
//! the child is in it) straight into the cgroup2 directory (v2, or a hybrid host's tree),
//! and the child writes "0" to each `tasks` fd first thing (`cgroups/entry.rs`: no RCU grace
//! period; a failure is its `Failed` message). Whatever it could not join, the parent moves
//! it into by pid; then it says go. The child (`process/exec_child.rs`) joins the init's
//! other namespaces (user first), sets up its terminal, seccomp and identity with the code
//! the init uses (`process/program.rs`), and execs. Its end of the socket is close-on-exec:
//! the parent reads the messages (Console, SeccompNotify) until end-of-file, which means the
//! exec happened, or a `Failed` with the step and errno.
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType as T, Process};

use super::process_io::ProcessIo;
use super::state::{write_pid_file, Container, Status};
use crate::cgroups::sub::SubCgroups;
use crate::cgroups::Ways;
use crate::process::attrs::InitialAffinity;
use crate::process::channel::{Channel, Msg};
use crate::process::exec_child::{self, ExecContext};
use crate::process::namespaces::PidNsGuard;
use crate::process::progress::Progress;
use crate::security::seccomp;
use crate::spec::attrs::Attrs;

/// What the caller asked for.
pub struct ExecRequest<'a> {
    pub container: &'a Container,
    pub process: &'a Process,
    pub io: ProcessIo<'a>,
    pub ignore_paused: bool,
    /// `--cgroup`: existing sub-cgroups of the container's to run the process in.
    pub sub_cgroups: &'a SubCgroups,
}

/// The started process.
pub struct Execed {
    pub pid: Pid,
    pub console: Option<OwnedFd>,
}

pub fn exec(req: &ExecRequest) -> Result<Execed> {
    let c = req.container;
    let paused = match c.status() {
        Status::Created | Status::Running => false,
        Status::Paused if req.ignore_paused => true,
        Status::Paused => bail!(
            "cannot exec in container {:?}: it is paused (resume it, or pass --ignore-paused)",
            c.record.id
        ),
        s => bail!("cannot exec in container {:?}: it is {s}", c.record.id),
    };
    let p = req.process;
    crate::spec::validate::validate_process(p)?;
    crate::security::apparmor::check_process(p)?;
    let terminal = p.terminal().unwrap_or(false);
    req.io.check_terminal(terminal)?;
    let config = c.config()?;
    let seccomp_profile = config.linux().as_ref().and_then(|l| l.seccomp().clone());
    let filter = seccomp_profile.as_ref().map(seccomp::compile).transpose()?;
    let attrs = Attrs::from_spec(p, config.linux().as_ref())?;
    let mut join = exec_child::namespaces_to_join(c.record.pid)?;
    let pid_ns = join
        .iter()
        .position(|(t, _, _)| *t == T::Pid)
        .map(|i| join.remove(i).1);
    // The process goes into the container's cgroup, or the sub-cgroups asked for.
    let cgroup = if req.sub_cgroups.is_empty() {
        c.cgroup()?
    } else {
        crate::cgroups::load_manager(&req.sub_cgroups.apply_to(&c.record.cgroup)?)?
    };
    let pidfd_socket = req.io.connect_pidfd()?;
    // process.apparmorProfile (or --apparmor): the host's /proc, before any setns.
    let procfs = crate::security::apparmor::procfs_for(p)?;
    let console_socket = req.io.connect_console()?;

    // The child is visible in the container's pid namespace from the fork on, running our
    // image: it must never be dumpable there (CVE-2019-5736), so it inherits "not dumpable".
    nix::sys::prctl::set_dumpable(false).context("PR_SET_DUMPABLE")?;
    let (parent_end, child_end) = Channel::pair("exec process")?;
    let progress = Progress::new()?;
    let guard = pid_ns.as_deref().map(PidNsGuard::enter).transpose()?;
    // Into a paused container the process is set up outside the frozen cgroup, then moved
    // in by pid, where it waits frozen until `resume`; we return once it is there, so
    // neither the caller nor the container lock waits on the freezer. (It could not join
    // itself: it would freeze in its own write, before it could say so.)
    const PAUSED: &str = "the container is paused: moved in once set up";
    let entry = cgroup.entry(Ways {
        no_clone_into: paused.then_some(PAUSED),
        no_self_join: paused.then_some(PAUSED),
    });
    // The child starts with execCPUAffinity.initial: ours for the time of the fork.
    let initial = InitialAffinity::set(&attrs.affinity)?;
    let into_fd = entry.into_fd();
    // SAFETY: berth is single-threaded (no async runtime, no thread pool, synchronous
    // logging), as fork_with_flags requires.
    let forked = unsafe { crate::sys::process::fork_with_flags(0, into_fd) }
        .context("fork of the exec process");
    if let Ok(crate::sys::process::Forked::Child) = forked {
        drop(parent_end);
        progress.attach("exec process");
        crate::process::exec_child::run(ExecContext {
            process: p,
            channel: child_end,
            join: &join,
            console_socket: console_socket.as_ref(),
            seccomp: filter.as_ref(),
            preserve_fds: req.io.preserve_fds,
            attrs: &attrs,
            join_cgroup_late: paused,
            procfs: procfs.as_ref(),
            cgroup_tasks: entry.tasks(),
        });
    }
    drop(initial);
    if let Some(g) = guard {
        // The exec parent makes no other child.
        g.leave_if_permitted()?;
    }
    let pid = match forked? {
        crate::sys::process::Forked::Parent(pid) => pid,
        crate::sys::process::Forked::Child => unreachable!("the child never returns"),
    };
    drop(child_end);
    drop(console_socket);
    // The `tasks` files close here; the child has its own.
    let entry = entry.forked();
    if tracing::enabled!(tracing::Level::DEBUG) {
        let joins: Vec<&str> = join
            .iter()
            .map(|(t, _, _)| crate::spec::validate::ns_name(*t))
            .chain(pid_ns.as_ref().map(|_| "pid"))
            .collect();
        tracing::debug!(
            pid = pid.as_raw(),
            namespaces = %joins.join(","),
            cgroup = %serde_json::to_string(&cgroup.state()).unwrap_or_default(),
            "exec {}: process forked",
            c.record.id
        );
    }
    let fail = |e: anyhow::Error| {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        e
    };
    // The child joins its v1 hierarchies meanwhile: should it fail and exit, what it said
    // is the cause of our failing to reach it.
    if !paused {
        entry
            .finish(&*cgroup, pid.as_raw())
            .map_err(|e| parent_end.reported_failure().unwrap_or(e))
            .map_err(fail)?;
    }
    parent_end
        .send(&Msg::Go {
            host_pid: pid.as_raw(),
        })
        .map_err(fail)?;
    let mut console = None;
    loop {
        match parent_end.recv().map_err(fail)? {
            // The socket closed: on exec (the program runs), or because the child died
            // before it without a word (a seccomp filter that kills): then say how, and
            // after which step. An exiting child is reaped at once.
            None if progress.reached_execve() => {
                tracing::debug!(pid = pid.as_raw(), "the exec process runs its program");
                break;
            }
            None => {
                let how = waitpid(pid, None)
                    .ok()
                    .and_then(|st| crate::process::progress::death(st, &progress))
                    .unwrap_or_else(|| format!("ended {}", progress.describe()));
                bail!("the exec process {how}");
            }
            Some((Msg::Console, fd)) => console = fd,
            Some((Msg::JoinCgroup, _)) if paused => {
                entry.finish(&*cgroup, pid.as_raw()).map_err(fail)?;
                parent_end.send(&Msg::CgroupJoined).map_err(fail)?;
                break; // frozen now: it execs after `resume`
            }
            Some((Msg::SeccompNotify, Some(fd))) => {
                let mut st = c.state_doc(c.status());
                st["pid"] = pid.as_raw().into();
                seccomp::hand_to_listener(seccomp_profile.as_ref(), fd.as_fd(), &st)
                    .map_err(fail)?;
            }
            Some((Msg::Failed(e), _)) => {
                let _ = waitpid(pid, None);
                return Err(parent_end.failure(e));
            }
            Some((m, _)) => return Err(fail(anyhow::anyhow!("sync protocol: unexpected {m:?}"))),
        }
    }
    if let Some(s) = &pidfd_socket {
        s.send(pid.as_raw(), "setns").map_err(fail)?;
    }
    if let Some(f) = req.io.pid_file {
        write_pid_file(f, pid.as_raw())?;
    }
    Ok(Execed { pid, console })
}
