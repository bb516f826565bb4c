//! `checkpoint`: dump a running container's process tree with criu, as runc does.
//!
//! criu is told about everything the container holds from outside: bind mounts, masked
//! files (binds of /dev/null) and device nodes as external mounts, network and pid
//! namespaces joined by path as external namespaces. The container's stdio as its init sees
//! it goes to `descriptors.json` in the image directory (runc's file), so that `restore`
//! can hand new pipes in their place. Unless `--leave-running` or `--pre-dump`, the
//! container is deleted once criu has dumped it (criu kills the tree).
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::state::{Container, Status};
use crate::cgroups::CgroupState;
use crate::criu::{self, rpc, Criu, CriuCgMode, CriuOpts, CriuReq, CriuReqType};

/// The file listing the init's stdio (runc's name and format: a JSON array of link targets).
pub const DESCRIPTORS: &str = "descriptors.json";

/// berth's file listing the terminals outside the container that its init's stdio was on
/// (a `--shell-job` checkpoint): criu's keys for them, `tty[RDEV:DEV]` in hex, a JSON array.
pub const SHELL_JOB_TTYS: &str = "shell-job-ttys.json";

/// Options `checkpoint` and `restore` share.
#[derive(Debug, Clone)]
pub struct CriuFlags {
    pub image: PathBuf,
    pub work: PathBuf,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub cgroups_mode: Option<CriuCgMode>,
    /// CLONE_NEW* mask of namespaces created empty.
    pub empty_ns: u32,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
}

impl CriuFlags {
    /// The options both requests carry.
    pub fn opts(&self, images: &File, work: &File, log: &str) -> CriuOpts {
        CriuOpts {
            images_dir_fd: images.as_raw_fd(),
            work_dir_fd: Some(work.as_raw_fd()),
            log_level: Some(4),
            log_file: Some(log.into()),
            manage_cgroups: Some(true),
            manage_cgroups_mode: self.cgroups_mode.map(|m| m as i32),
            notify_scripts: Some(true),
            tcp_established: Some(self.tcp_established),
            ext_unix_sk: Some(self.ext_unix_sk),
            shell_job: Some(self.shell_job),
            file_locks: Some(self.file_locks),
            empty_ns: Some(self.empty_ns),
            auto_dedup: Some(self.auto_dedup),
            lazy_pages: Some(self.lazy_pages),
            orphan_pts_master: Some(true),
            network_lock: criu::network_lock(),
            ..Default::default()
        }
    }

    /// Check the kernel features the flags need (criu's FEATURE_CHECK).
    pub fn check_features(&self, criu: &Criu, mem_track: bool) -> Result<()> {
        if !(mem_track || self.lazy_pages) {
            return Ok(());
        }
        let missing = criu.missing_features(rpc::CriuFeatures {
            mem_track: mem_track.then_some(true),
            lazy_pages: self.lazy_pages.then_some(true),
            pidfd_store: None,
        })?;
        if !missing.is_empty() {
            bail!(
                "criu reports that this kernel lacks {}",
                missing.join(" and ")
            );
        }
        Ok(())
    }

    /// With `--tcp-established`, refuse criu's nftables network lock before criu 3.18: it
    /// names the lock's table after the root pid, which the restored tree does not have, so
    /// a restore leaves the restored connections locked. Where `iptables-restore` is
    /// installed criu locks with iptables instead.
    pub fn check_network_lock(&self, version: u32) -> Result<()> {
        let nft = criu::network_lock() == Some(rpc::CriuNetworkLockMethod::Nftables as i32);
        if self.tcp_established && nft && version < 31800 {
            bail!(
                "--tcp-established needs iptables-restore here: without it criu {} locks the \
                 network with nftables, and before criu 3.18 a restore leaves that lock on the \
                 restored connections (apt-get install iptables)",
                criu::dotted(version)
            );
        }
        Ok(())
    }

    /// The work directory (made if missing) and the path of criu's log in it.
    pub fn open_work(&self, log: &str) -> Result<(File, PathBuf)> {
        mkdir(&self.work).with_context(|| format!("--work-path {}", self.work.display()))?;
        let f =
            open_dir(&self.work).with_context(|| format!("--work-path {}", self.work.display()))?;
        Ok((f, self.work.join(log)))
    }

    /// criu's config file, as runc picks it: the `org.criu.config` annotation ("" for none),
    /// else /etc/criu/berth.conf when it exists.
    pub fn config_file(
        annotations: Option<&std::collections::HashMap<String, String>>,
    ) -> Option<String> {
        match annotations.and_then(|a| a.get("org.criu.config")) {
            Some(f) if f.is_empty() => None,
            Some(f) => Some(f.clone()),
            None => Some("/etc/criu/berth.conf".to_string()).filter(|f| Path::new(f).exists()),
        }
    }
}

/// What `berth checkpoint` asked for beyond the shared flags.
pub struct CheckpointRequest<'a> {
    pub criu: &'a Path,
    pub flags: CriuFlags,
    pub parent: Option<PathBuf>,
    pub leave_running: bool,
    pub pre_dump: bool,
    pub page_server: Option<(String, i32)>,
    pub status_fd: Option<i32>,
}

pub fn checkpoint(c: Container, req: &CheckpointRequest) -> Result<()> {
    let id = c.record.id.clone();
    let status = c.status();
    if !matches!(status, Status::Running | Status::Paused) {
        bail!("cannot checkpoint container {id:?}: it is {status}");
    }
    if c.record.rootless {
        bail!("cannot checkpoint rootless container {id:?}: criu needs root");
    }
    let criu = Criu::find(req.criu)?;
    let version = criu.require(0, "checkpoint")?;
    req.flags.check_network_lock(version)?;
    req.flags.check_features(&criu, req.pre_dump)?;
    // criu writes to the status fd itself: it is passed to criu as an inherited fd.
    let status_fd = req
        .status_fd
        .map(|fd| {
            check_writable_fd(fd)?;
            crate::sys::fd::dup_number(fd).with_context(|| format!("--status-fd {fd}"))
        })
        .transpose()?;
    // A terminal outside the container, checked before the image directory is made.
    let ttys = if req.pre_dump {
        Vec::new()
    } else {
        caller_terminals(c.record.pid, req.flags.shell_job)?
    };
    // The config as create saw it (mounts, masked paths, namespaces).
    let spec = c.config()?.clone();
    let spec = &spec;

    let f = &req.flags;
    mkdir(&f.image).with_context(|| format!("--image-path {}", f.image.display()))?;
    let images =
        open_dir(&f.image).with_context(|| format!("--image-path {}", f.image.display()))?;
    let log_name = if req.pre_dump {
        "pre-dump.log"
    } else {
        "dump.log"
    };
    let (work, log) = f.open_work(log_name)?;

    let mut opts = f.opts(&images, &work, log_name);
    opts.pid = Some(c.record.pid);
    opts.root = Some(c.record.rootfs.display().to_string());
    opts.leave_running = Some(req.leave_running);
    opts.config_file = CriuFlags::config_file(spec.annotations().as_ref());
    opts.external = criu::spec::dump_external_namespaces(spec)?;
    opts.freeze_cgroup = freezer_dir(&c.record.cgroup).map(|p| p.display().to_string());
    if let Some(parent) = &req.parent {
        opts.parent_img = Some(parent.display().to_string());
        opts.track_mem = Some(true);
    }
    if req.pre_dump {
        opts.track_mem = Some(true);
    }
    if let Some((address, port)) = &req.page_server {
        opts.ps = Some(rpc::CriuPageServerInfo {
            address: Some(address.clone()),
            port: Some(*port),
            ..Default::default()
        });
    }
    opts.status_fd = status_fd.as_ref().map(|_| criu::inherit_fd_number(0));
    if !req.pre_dump {
        let binds = criu::spec::bind_mounts(spec, &c.record.bundle, &c.record.rootfs)?;
        let proc_root = PathBuf::from(format!("/proc/{}/root", c.record.pid));
        opts.ext_mnt = criu::spec::dump_mounts(spec, &binds, |p| {
            proc_root.join(p.strip_prefix("/").unwrap_or(p)).is_dir()
        })?;
        opts.ext_mnt.extend(criu::spec::cgroup_mounts(spec, None)?);
        write_descriptors(c.record.pid, &f.image)?;
        write_shell_job_ttys(&ttys, &f.image)?;
        opts.external.extend(ttys);
    }
    let kind = if req.pre_dump {
        CriuReqType::PreDump
    } else {
        CriuReqType::Dump
    };
    let inherit: Vec<_> = status_fd.iter().map(|f| f.as_fd()).collect();
    let mut session = criu.spawn(&inherit, Some(log))?;
    session.call(
        &CriuReq {
            r#type: kind as i32,
            opts: Some(opts),
            ..Default::default()
        },
        &mut criu::Ignore,
    )?;
    if req.pre_dump {
        session.finish_pre_dump();
        return Ok(());
    }
    session.finish()?;
    if req.leave_running {
        return Ok(());
    }
    // criu killed the tree: what is left is the container's cgroup and state.
    super::delete::delete(c, true).context("removing the checkpointed container")
}

/// The freezer criu uses to stop the tree (v1 freezer, or the v2 cgroup itself).
fn freezer_dir(cg: &CgroupState) -> Option<PathBuf> {
    match cg {
        CgroupState::V1 { paths, .. } => paths.get("freezer").cloned(),
        CgroupState::V2 { path, .. } => Some(path.clone()),
        CgroupState::Disabled => None,
        // The systemd driver: the cgroupfs manager of the unit's cgroup.
        CgroupState::Systemd(st) => freezer_dir(&st.cgroupfs),
    }
}

/// Record where the init's stdio points (`pipe:[123]`, `/dev/null`, …).
fn write_descriptors(pid: i32, image: &Path) -> Result<()> {
    let fds: Vec<String> = (0..3)
        .map(|i| {
            std::fs::read_link(format!("/proc/{pid}/fd/{i}"))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    write_json(image, DESCRIPTORS, &fds)
}

/// Writes `value` as JSON to file `name` of the image directory.
fn write_json(image: &Path, name: &str, value: &impl serde::Serialize) -> Result<()> {
    let path = image.join(name);
    std::fs::write(&path, serde_json::to_vec(value)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// criu's name for a terminal (its `tty_d_name`): `tty[RDEV:DEV]` in hex.
pub fn tty_key(st: &nix::sys::stat::FileStat) -> String {
    format!("tty[{:x}:{:x}]", st.st_rdev, st.st_dev)
}

/// Whether a character device is one of the terminals criu knows (its `get_tty_driver`):
/// /dev/tty and the console, virtual consoles and serial ports, pty masters and slaves.
fn is_terminal(rdev: u64) -> bool {
    matches!(libc::major(rdev), 4 | 5 | 128..=143 | 188 | 204)
}

/// The terminals outside the container that the init's stdio is on (a shell job: the
/// caller's terminal, with process.terminal false), as criu's keys. criu 3.17 cannot dump
/// such a pty (its devpts is not a mount of the container), so they are declared external
/// (`--external tty[RDEV:DEV]`) and the restore gives its own terminal in their place. The
/// container's own pty (process.terminal) is on its devpts and is dumped by criu. Without
/// `--shell-job` such a terminal is refused here, as criu would refuse it.
fn caller_terminals(pid: i32, shell_job: bool) -> Result<Vec<String>> {
    use nix::sys::stat::{stat, SFlag};
    let own = stat(format!("/proc/{pid}/root/dev/pts").as_str())
        .ok()
        .map(|s| s.st_dev);
    let mut keys = Vec::new();
    for fd in 0..3 {
        let link = format!("/proc/{pid}/fd/{fd}");
        let Ok(st) = stat(link.as_str()) else {
            continue;
        };
        let chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
        if !chr || !is_terminal(st.st_rdev) || Some(st.st_dev) == own {
            continue;
        }
        if !shell_job {
            let path = std::fs::read_link(&link).unwrap_or_default();
            bail!(
                "the container's fd {fd} is the terminal {} outside it (process.terminal is \
                 false: it runs on its caller's terminal): that is a shell job, checkpoint it \
                 with --shell-job",
                path.display()
            );
        }
        let key = tty_key(&st);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

fn write_shell_job_ttys(keys: &[String], image: &Path) -> Result<()> {
    let path = image.join(SHELL_JOB_TTYS);
    if keys.is_empty() {
        // A stale list from an earlier checkpoint into the same directory.
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        };
    }
    write_json(image, SHELL_JOB_TTYS, &keys)
}

fn check_writable_fd(fd: i32) -> Result<()> {
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL)
        .with_context(|| format!("--status-fd {fd}"))?;
    let acc = nix::fcntl::OFlag::from_bits_truncate(flags) & nix::fcntl::OFlag::O_ACCMODE;
    if acc == nix::fcntl::OFlag::O_RDONLY {
        bail!("--status-fd {fd}: not open for writing");
    }
    Ok(())
}

/// `mkdir -p` (0700), as runc's MkdirAll: an existing directory is fine (a container is
/// checkpointed again and again into the same place), and missing parents are made.
fn mkdir(p: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(p)
        .context("creating the directory")
}

pub(crate) fn open_dir(p: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(p)
        .context("opening the directory")
}
