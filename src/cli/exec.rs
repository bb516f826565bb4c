//! `berth exec [--process P.json | ARGS...] ID`: run another process in a container. Without
//! --process the container's own process is the base, changed by the flags (as runc does).
//! In the foreground berth forwards signals, waits and exits with the process's status.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use oci_spec::runtime::{Capability, Process};

use super::{Global, IoOpts};
use crate::cgroups::sub::SubCgroups;
use crate::container::exec::{exec, ExecRequest};
use crate::container::Container;
use crate::process::foreground;

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// The process as runtime-spec JSON (as containerd and podman pass it).
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    #[command(flatten)]
    pub io: IoOpts,
    /// Return once the process runs.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (NAME=VALUE); repeatable.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// uid[:gid] inside the container.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// An additional group id; repeatable.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (CAP_X) to the process; repeatable.
    #[arg(short = 'c', long = "cap")]
    pub caps: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// The AppArmor profile for the process.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Run the process in an existing sub-cgroup of the container's: [CONTROLLER[,...]:]PATH
    /// (repeatable; without a controller, every hierarchy).
    #[arg(long = "cgroup")]
    pub cgroup: Vec<String>,
    /// Exec even if the container is paused.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    pub id: String,
    /// The command and its arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(g: &Global, a: ExecArgs) -> Result<i32> {
    let ctx = || format!("exec {}", a.id);
    let sub_cgroups = SubCgroups::parse(&a.cgroup).with_context(ctx)?;
    let c = Container::load(&g.root, &a.id).with_context(ctx)?;
    let process = build_process(&c, &a).with_context(ctx)?;
    let terminal = process.terminal().unwrap_or(false);
    if a.detach && terminal && a.io.console_socket.is_none() {
        bail!(
            "exec {}: a terminal with --detach needs --console-socket",
            a.id
        );
    }
    let sigs = foreground::handled_signals();
    if !a.detach {
        foreground::block(&sigs)?;
    }
    let req = ExecRequest {
        container: &c,
        process: &process,
        io: a.io.process_io(!a.detach && a.io.console_socket.is_none()),
        ignore_paused: a.ignore_paused,
        sub_cgroups: &sub_cgroups,
    };
    let started = exec(&req).with_context(ctx)?;
    drop(c); // release the lock while the process runs
    if a.detach {
        return Ok(0);
    }
    foreground::forward_and_wait(started.pid, started.console, &sigs).with_context(ctx)
}

/// The process to run: the --process file, or the container's process changed by the flags.
fn build_process(c: &Container, a: &ExecArgs) -> Result<Process> {
    if let Some(f) = &a.process {
        if !a.args.is_empty() {
            bail!("give either --process or a command, not both");
        }
        let text = crate::spec::read_json_file(f).context("--process")?;
        let mut p = crate::spec::parse_process(&text)
            .with_context(|| format!("parsing {}", f.display()))?;
        // As runc: a process without rlimits gets the container's.
        if p.rlimits().as_ref().is_none_or(|r| r.is_empty()) {
            let config = c.config()?;
            let own = config
                .process()
                .as_ref()
                .and_then(|cp| cp.rlimits().clone());
            p.set_rlimits(own);
        }
        return Ok(p);
    }
    if a.args.is_empty() {
        bail!("no command given (and no --process)");
    }
    let mut p = c
        .config()?
        .process()
        .clone()
        .context("config.json: process: missing")?;
    p.set_args(Some(a.args.clone()));
    p.set_terminal(Some(a.tty));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u.parse()?, g.parse()?),
            None => (u.parse()?, 0),
        };
        let user = p.user_mut();
        user.set_uid(uid);
        user.set_gid(gid);
    }
    if !a.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(a.additional_gids.clone()));
    }
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &a.caps {
            let cap: Capability = serde_json::from_value(serde_json::json!(name))
                .map_err(|_| anyhow::anyhow!("--cap: unknown capability {name:?}"))?;
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut set = set.clone().unwrap_or_default();
                set.insert(cap);
                Some(set)
            };
            let (b, e, pm, am) = (
                add(caps.bounding()),
                add(caps.effective()),
                add(caps.permitted()),
                add(caps.ambient()),
            );
            caps.set_bounding(b);
            caps.set_effective(e);
            caps.set_permitted(pm);
            caps.set_ambient(am);
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}
