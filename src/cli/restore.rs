//! `berth restore`: a container from criu images (runc's flags). In the foreground it
//! waits like `run`: signals go to the restored init, its exit status becomes ours and the
//! container is deleted.
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::checkpoint::CommonCriuArgs;
use super::Global;
use crate::container::restore::{self, RestoreRequest};
use crate::container::{delete, Container};
use crate::process::foreground;

#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub common: CommonCriuArgs,
    /// Bundle directory (config.json + rootfs); default: the current directory.
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Return once the container is restored.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Write the restored init's pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the restored pty master (process.terminal).
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Do not use pivot_root (refused: criu always pivots into the root it restores).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// In the foreground, do not become a subreaper for the container's orphans.
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// LSM profile for the restored processes, as TYPE:NAME (apparmor:PROFILE; criu 3.16+).
    #[arg(long = "lsm-profile")]
    pub lsm_profile: Option<String>,
    /// SELinux mount context for the restored mounts (refused: berth applies no SELinux label).
    #[arg(long = "lsm-mount-context")]
    pub lsm_mount_context: Option<String>,
    /// The container id.
    pub id: String,
}

pub fn run(g: &Global, a: RestoreArgs) -> Result<i32> {
    let id = a.id.clone();
    let ctx = || format!("restore {id}");
    let req = RestoreRequest {
        root: &g.root,
        id: &a.id,
        bundle: &a.bundle,
        criu: &g.criu,
        flags: a.common.flags().with_context(ctx)?,
        console_socket: a.console_socket.as_deref(),
        pid_file: a.pid_file.as_deref(),
        no_pivot: a.no_pivot,
        systemd_cgroup: g.systemd_cgroup,
        rootless: g.is_rootless(),
        lsm_profile: a.lsm_profile.clone(),
        lsm_mount_context: a.lsm_mount_context.clone(),
    };
    // In the foreground the restored init is our child (criu restores it as its sibling):
    // block the forwarded signals first so none is lost, as `run` does.
    let sigs = foreground::handled_signals();
    if !a.detach {
        foreground::block(&sigs).with_context(ctx)?;
        if !a.no_subreaper {
            nix::sys::prctl::set_child_subreaper(true)
                .context("PR_SET_CHILD_SUBREAPER")
                .with_context(ctx)?;
        }
    }
    let restored = restore::restore(&req).with_context(ctx)?;
    if a.detach {
        return Ok(0);
    }
    let pid = restored.pid;
    drop(restored.container);
    let code = foreground::forward_and_wait(pid, None, &sigs).with_context(ctx)?;
    let c = Container::load(&g.root, &id).with_context(ctx)?;
    delete::delete(c, true).with_context(ctx)?;
    Ok(code)
}
