//! `berth checkpoint`: dump a running container with criu (runc's flags).
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::Global;
use crate::container::checkpoint::{self, CheckpointRequest, CriuFlags};
use crate::container::Container;

// Flags `checkpoint` and `restore` share (a plain comment, see cli::CreateOpts).
#[derive(Args, Debug, Clone)]
pub struct CommonCriuArgs {
    /// Directory of criu's image files (default: ./checkpoint).
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// Directory for criu's work files and its log (default: the image path).
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections.
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs (a session or process group outside the container).
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Handle file locks.
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// How criu handles cgroups.
    #[arg(long = "manage-cgroups-mode", value_enum)]
    pub manage_cgroups_mode: Option<CgroupsMode>,
    /// Create this namespace but do not restore its contents (network is always in the set,
    /// as with runc: the runtime does not manage network devices).
    #[arg(long = "empty-ns")]
    pub empty_ns: Vec<String>,
    /// Deduplicate memory images as they are written or read.
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// Restore memory pages lazily, through userfaultfd.
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
}

/// criu's cgroup modes, under runc's names.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupsMode {
    None,
    Props,
    Soft,
    Full,
    Strict,
    Ignore,
}

impl CommonCriuArgs {
    pub fn flags(&self) -> Result<CriuFlags> {
        use crate::criu::CriuCgMode as M;
        let image = match &self.image_path {
            Some(p) => p.clone(),
            None => std::env::current_dir()
                .context("the current directory")?
                .join("checkpoint"),
        };
        Ok(CriuFlags {
            work: self.work_path.clone().unwrap_or_else(|| image.clone()),
            image,
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            cgroups_mode: self.manage_cgroups_mode.map(|m| match m {
                CgroupsMode::None => M::CgNone,
                CgroupsMode::Props => M::Props,
                CgroupsMode::Soft => M::Soft,
                CgroupsMode::Full => M::Full,
                CgroupsMode::Strict => M::Strict,
                CgroupsMode::Ignore => M::Ignore,
            }),
            empty_ns: crate::criu::spec::empty_ns_mask(&self.empty_ns)? | libc::CLONE_NEWNET as u32,
            auto_dedup: self.auto_dedup,
            lazy_pages: self.lazy_pages,
        })
    }
}

#[derive(Args, Debug)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub common: CommonCriuArgs,
    /// Previous images (a pre-dump) this dump builds on, relative to the image path.
    #[arg(long = "parent-path")]
    pub parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint.
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// Dump only the memory, leaving the container running (for a later dump with
    /// --parent-path).
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// Send memory pages to criu's page server at ADDRESS:PORT.
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
    /// With --lazy-pages: criu writes a \0 to this fd once the lazy page server is ready.
    #[arg(long = "status-fd")]
    pub status_fd: Option<i32>,
    /// The container id.
    pub id: String,
}

/// `ADDRESS:PORT` (an IPv6 address in brackets).
pub fn parse_page_server(s: &str) -> Result<(String, i32)> {
    let (addr, port) = s
        .rsplit_once(':')
        .with_context(|| format!("--page-server {s:?}: expected ADDRESS:PORT"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("--page-server {s:?}: bad port {port:?}"))?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    if addr.is_empty() || port == 0 {
        bail!("--page-server {s:?}: expected ADDRESS:PORT");
    }
    Ok((addr.to_string(), port as i32))
}

pub fn run(g: &Global, a: CheckpointArgs) -> Result<i32> {
    let ctx = || format!("checkpoint {}", a.id);
    if a.status_fd.is_some() && !a.common.lazy_pages {
        bail!("{}: --status-fd is only used with --lazy-pages", ctx());
    }
    let req = CheckpointRequest {
        criu: &g.criu,
        flags: a.common.flags().with_context(ctx)?,
        parent: a.parent_path.clone(),
        leave_running: a.leave_running,
        pre_dump: a.pre_dump,
        page_server: a
            .page_server
            .as_deref()
            .map(parse_page_server)
            .transpose()
            .with_context(ctx)?,
        status_fd: a.status_fd,
    };
    let c = Container::load(&g.root, &a.id).with_context(ctx)?;
    checkpoint::checkpoint(c, &req).with_context(ctx)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// podman passes `--leave-running` twice when asked for it; runc takes that.
    #[test]
    fn a_flag_given_twice_is_taken_once() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "berth",
            "checkpoint",
            "--leave-running",
            "--tcp-established",
            "--leave-running",
            "x",
        ])
        .unwrap();
        match cli.command {
            Some(crate::cli::Command::Checkpoint(a)) => {
                assert!(a.leave_running && a.common.tcp_established)
            }
            other => panic!("{other:?}"),
        }
        assert!(crate::cli::Cli::try_parse_from([
            "berth", "restore", "-d", "--detach", "-b", ".", "-b", "/b", "x"
        ])
        .is_ok());
    }

    #[test]
    fn page_server_addresses() {
        assert_eq!(
            parse_page_server("10.0.0.1:27").unwrap(),
            ("10.0.0.1".into(), 27)
        );
        assert_eq!(parse_page_server("[::1]:8").unwrap(), ("::1".into(), 8));
        for bad in ["host", ":9", "h:0", "h:x"] {
            assert!(parse_page_server(bad).is_err(), "{bad}");
        }
    }
}
