//! An exec'd process, from the fork to execve: it joins its cgroup (v1: through the `tasks`
//! files the parent opened; see `cgroups::entry`), then the init's namespaces (user first),
//! from fds the parent opened before the fork, then goes through the program setup the init
//! uses (`program.rs`). Its end of the socket is close-on-exec, so end-of-file tells the
//! parent that the exec happened. `container/exec.rs` is the parent side.
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use oci_spec::runtime::{LinuxNamespaceType as T, Process};

use super::channel::{Channel, ChildError, Msg, Step};
use super::child::Never;
use super::program::Setup;
use crate::security::apparmor::ProcfsHandle;
use crate::security::seccomp;

/// Everything the exec'd process needs; built by the parent before the fork.
pub struct ExecContext<'a> {
    pub process: &'a Process,
    pub channel: Channel,
    /// The init's namespaces that differ from ours (see `namespaces_to_join`).
    pub join: &'a [(T, PathBuf, File)],
    pub console_socket: Option<&'a OwnedFd>,
    pub seccomp: Option<&'a seccomp::Program>,
    pub preserve_fds: u32,
    /// Memory policy, I/O priority, scheduler, CPU affinity, personality.
    pub attrs: &'a crate::spec::attrs::Attrs,
    /// The container is paused: ask the parent to move us into its (frozen) cgroup once
    /// the session is set up, and go on when thawed (see `container/exec.rs`).
    pub join_cgroup_late: bool,
    /// The host's /proc, opened before the fork (for process.apparmorProfile).
    pub procfs: Option<&'a ProcfsHandle>,
    /// The v1 hierarchies' `tasks` files, opened by the parent: the process joins its cgroup
    /// through them first thing (`cgroups::entry`).
    pub cgroup_tasks: &'a [crate::cgroups::entry::TasksFile],
}

/// Run the exec'd process. Never returns: execs the program or exits with status 1.
pub fn run(ctx: ExecContext) -> ! {
    super::child::run("exec process", &ctx.channel, || setup(&ctx))
}

fn setup(ctx: &ExecContext) -> Result<Never, ChildError> {
    let common = Setup {
        process: ctx.process,
        channel: &ctx.channel,
        console_socket: ctx.console_socket,
        seccomp: ctx.seccomp,
        extra_fds: ctx.preserve_fds,
        extra_env: &[],
        init: false,
        attrs: ctx.attrs,
        procfs: ctx.procfs,
    };
    let mut keep = vec![ctx.channel.raw()];
    keep.extend(ctx.console_socket.map(|s| s.as_raw_fd()));
    keep.extend(ctx.join.iter().map(|(_, _, f)| f.as_raw_fd()));
    keep.extend(ctx.procfs.map(|p| p.as_raw_fd()));
    keep.extend(ctx.cgroup_tasks.iter().map(|t| t.raw_fd()));
    super::program::keep_only_given_fds(&keep, ctx.preserve_fds)?;
    crate::cgroups::entry::join_self(ctx.cgroup_tasks).step("cgroup")?;
    super::program::begin(&ctx.channel)?;
    super::program::set_oom_score_adj(ctx.process)?;
    for (t, path, f) in ctx.join {
        super::namespaces::join_file(*t, f, path).step("namespaces")?;
    }
    common.session()?;
    if ctx.join_cgroup_late {
        ctx.channel.send(&Msg::JoinCgroup).step("sync")?;
        ctx.channel
            .expect("CgroupJoined", |m| matches!(m, Msg::CgroupJoined))
            .step("sync")?;
    }
    let program = common.program()?;
    Err(program.exec())
}

/// The init's namespaces that differ from ours, user first; pid and time come last (the
/// parent handles pid; time is joined by the child).
pub fn namespaces_to_join(init: i32) -> Result<Vec<(T, PathBuf, File)>> {
    let kinds = [
        (T::User, "user"),
        (T::Mount, "mnt"),
        (T::Ipc, "ipc"),
        (T::Uts, "uts"),
        (T::Network, "net"),
        (T::Cgroup, "cgroup"),
        (T::Time, "time"),
        (T::Pid, "pid"),
    ];
    let mut out = Vec::new();
    for (t, name) in kinds {
        let theirs = PathBuf::from(format!("/proc/{init}/ns/{name}"));
        let a = std::fs::metadata(&theirs)
            .with_context(|| format!("the container init's {name} namespace"))?;
        let b = std::fs::metadata(Path::new("/proc/self/ns").join(name))
            .with_context(|| format!("our {name} namespace"))?;
        use std::os::unix::fs::MetadataExt;
        if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
            // Opened now: once in the container's mount namespace, /proc is its own.
            let f = File::open(&theirs).with_context(|| format!("opening {}", theirs.display()))?;
            out.push((t, theirs, f));
        }
    }
    Ok(out)
}
