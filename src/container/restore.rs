//! `restore`: a container from criu images, as runc does it.
//!
//! Steps: check everything (bundle, console, criu and the image) before any side effect;
//! lock `<root>/<id>` and make the cgroup; in a private mount namespace, bind the rootfs on
//! `<root>/<id>/criu-root` (criu wants a mount point) and make the bind mounts' mount points;
//! start `criu swrk`, move it into the container's cgroup (the restored tree is created
//! there), send RESTORE and answer criu's notifications:
//! - `setup-namespaces`: the prestart and createRuntime hooks, with the restored pid;
//! - `orphan-pts-master`: the new pty master goes to `--console-socket`;
//! then record the restored init in state.json, as create does. The restored tree is our
//! child (criu's `rst_sibling`), so a foreground restore can wait for it.
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::checkpoint::{open_dir, CriuFlags, DESCRIPTORS};
use super::state::{self, write_pid_file, Container, Record};
use crate::cgroups::{self, CgroupConfig};
use crate::criu::{self, rpc, Criu, CriuReq, CriuReqType};
use crate::spec::Bundle;

/// What `berth restore` asked for.
pub struct RestoreRequest<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub criu: &'a Path,
    pub flags: CriuFlags,
    pub console_socket: Option<&'a Path>,
    pub pid_file: Option<&'a Path>,
    pub no_pivot: bool,
    pub systemd_cgroup: bool,
    pub rootless: bool,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
}

/// A restored container, still locked by this process.
pub struct Restored {
    pub container: Container,
    pub pid: Pid,
}

/// Undo a failed restore.
struct Cleanup {
    dir: Option<PathBuf>,
    /// The rootfs bind (unmounted before the directory is removed: removing through it
    /// would empty the rootfs).
    criu_root: Option<PathBuf>,
    cgroup: Option<Box<dyn cgroups::Manager>>,
    restored: Option<Pid>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.restored.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(cg) = self.cgroup.take() {
            if !cg.pids().unwrap_or_default().is_empty() {
                let _ = cg.kill_all(Signal::SIGKILL);
            }
            if let Err(e) = cg.destroy() {
                tracing::warn!("cleanup: removing the cgroup: {e:#}");
            }
        }
        if let Some(r) = self.criu_root.take() {
            if unmount_root(&r).is_err() {
                // Never remove a directory that may still show the rootfs.
                self.dir = None;
            }
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Unmount and remove `<root>/<id>/criu-root`.
fn unmount_root(at: &Path) -> Result<()> {
    match nix::mount::umount2(at, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e).with_context(|| format!("unmounting {}", at.display())),
    }
    match std::fs::remove_dir(at) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", at.display()))
        }
        _ => Ok(()),
    }
}

pub fn restore(req: &RestoreRequest) -> Result<Restored> {
    // 1. Checks, no side effect.
    state::check_id(req.id)?;
    if req.rootless {
        bail!("restore needs root (criu cannot restore a rootless container)");
    }
    if req.no_pivot {
        bail!(
            "--no-pivot is not supported by restore: criu always pivots into the root it restores"
        );
    }
    let bundle = crate::spec::load_bundle(req.bundle)?;
    let spec = &bundle.spec;
    let terminal = spec
        .process()
        .as_ref()
        .context("config.json: process: missing")?
        .terminal()
        .unwrap_or(false);
    if terminal && req.console_socket.is_none() {
        bail!("process.terminal is true: pass --console-socket to receive the restored pty");
    }
    if !terminal && req.console_socket.is_some() {
        bail!("--console-socket given but process.terminal is false");
    }
    let f = &req.flags;
    let images =
        open_dir(&f.image).with_context(|| format!("--image-path {}", f.image.display()))?;
    let descriptors = read_descriptors(&f.image)?;
    let criu = Criu::find(req.criu)?;
    let min = if req.lsm_profile.is_some() { 31600 } else { 0 };
    criu.require(min, "restore")?;
    f.check_features(&criu, false)?;
    let binds = criu::spec::bind_mounts(spec, &bundle.dir, &bundle.rootfs)?;
    let cg_cfg = CgroupConfig {
        cgroups_path: spec.linux().as_ref().and_then(|l| l.cgroups_path().clone()),
        id: req.id.to_string(),
        systemd: req.systemd_cgroup,
        rootless: req.rootless,
    };
    let cgroup = cgroups::new_manager(&cg_cfg)?;
    let console = req
        .console_socket
        .map(|p| {
            UnixStream::connect(p)
                .with_context(|| format!("connecting to --console-socket {}", p.display()))
        })
        .transpose()?;

    // 2. State directory (a duplicate id stops here) and cgroup.
    let (dir, lock) = state::create_dir(req.root, req.id)?;
    let mut cleanup = Cleanup {
        dir: Some(dir.clone()),
        criu_root: None,
        cgroup: None,
        restored: None,
    };
    let cgroup = cleanup.cgroup.insert(cgroup);
    cgroup.create()?;

    // 3. The root criu restores into, in a mount namespace of our own (nothing to unmount
    // afterwards, nothing left behind if we die).
    let criu_root = dir.join("criu-root");
    cleanup.criu_root = Some(criu_root.clone());
    prepare_root(&bundle, &binds, &criu_root)?;

    // 4. The request.
    let (work, log) = f.open_work("restore.log")?;
    let mut opts = f.opts(&images, &work, "restore.log");
    opts.root = Some(criu_root.display().to_string());
    opts.rst_sibling = Some(true);
    opts.evasive_devices = Some(true);
    opts.config_file = CriuFlags::config_file(spec.annotations().as_ref());
    opts.lsm_profile = req.lsm_profile.clone();
    opts.lsm_mount_context = req.lsm_mount_context.clone();
    opts.ext_mnt = criu::spec::restore_mounts(spec, &binds)?;
    let ns = criu::spec::restore_namespaces(spec, 0)?;
    opts.inherit_fd = ns.inherit;
    opts.join_ns = ns.join;
    // The init's stdio pipes are replaced by ours (criu inherits our 0, 1 and 2).
    for (i, d) in descriptors.iter().enumerate() {
        if d.contains("pipe:") {
            opts.inherit_fd.push(rpc::InheritFd {
                key: d.clone(),
                fd: i as i32,
            });
        }
    }
    let inherit: Vec<_> = ns.files.iter().map(|f| f.as_fd()).collect();
    let mut session = criu.spawn(&inherit, Some(log))?;

    // 5. criu joins the container's cgroup; the restored tree is created in it.
    cgroup.apply(session.pid())?;
    if let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        cgroup.set(r)?;
    }
    opts.cg_root = cgroup_roots(session.pid())?;

    let mut notes = Notes {
        id: req.id,
        bundle: &bundle,
        console,
        pid: None,
    };
    let resp = session.call(
        &CriuReq {
            r#type: CriuReqType::Restore as i32,
            opts: Some(opts),
            ..Default::default()
        },
        &mut notes,
    );
    if let Some(pid) = notes.pid {
        cleanup.restored = Some(Pid::from_raw(pid));
    }
    let resp = resp?;
    let pid = resp
        .restore
        .map(|r| r.pid)
        .context("criu answered RESTORE without a pid")?;
    cleanup.restored = Some(Pid::from_raw(pid));
    session.finish()?;
    cleanup.criu_root = None;
    unmount_root(&criu_root)?;

    // 6. Record, as create does.
    let record = Record {
        oci_version: spec.version().clone(),
        id: req.id.to_string(),
        pid,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        owner: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        init_start_time: state::start_time(pid).context("the restored init died during restore")?,
        cgroup: cgroup.state(),
        resources: spec.linux().as_ref().and_then(|l| l.resources().clone()),
        hooks: spec.hooks().clone(),
        rootless: req.rootless,
    };
    let container = Container::new(dir, lock, record);
    container.save()?;
    if let Some(p) = req.pid_file {
        write_pid_file(p, pid)?;
    }
    cleanup.dir = None;
    cleanup.cgroup = None;
    cleanup.restored = None;
    Ok(Restored {
        container,
        pid: Pid::from_raw(pid),
    })
}

/// criu's notifications during a restore.
struct Notes<'a> {
    id: &'a str,
    bundle: &'a Bundle,
    console: Option<UnixStream>,
    pid: Option<i32>,
}

impl criu::Notify for Notes<'_> {
    fn notify(&mut self, script: &str, pid: i32, fd: Option<OwnedFd>) -> Result<()> {
        match script {
            "setup-namespaces" => {
                self.pid = Some(pid);
                let st = super::create::hook_state(self.id, self.bundle, "creating", pid);
                let hooks = self.bundle.spec.hooks().as_ref();
                crate::hooks::run_all("prestart", hooks.and_then(|h| h.prestart().as_ref()), &st)?;
                crate::hooks::run_all(
                    "createRuntime",
                    hooks.and_then(|h| h.create_runtime().as_ref()),
                    &st,
                )
            }
            "post-restore" => {
                self.pid = Some(pid);
                Ok(())
            }
            "orphan-pts-master" => {
                let master = fd.context("criu sent orphan-pts-master without the pty master")?;
                let sock = self
                    .console
                    .as_ref()
                    .context("criu restored a pty but no --console-socket was given")?;
                crate::process::channel::send_packet(
                    sock.as_raw_fd(),
                    b"/dev/ptmx",
                    Some(master.as_raw_fd()),
                )
                .context("sending the pty master to --console-socket")
            }
            _ => Ok(()),
        }
    }
}

/// The init's stdio at checkpoint time.
fn read_descriptors(image: &Path) -> Result<Vec<String>> {
    let path = image.join(DESCRIPTORS);
    let text = std::fs::read(&path).with_context(|| {
        format!(
            "--image-path {}: no {DESCRIPTORS} (not a checkpoint made by berth or runc?)",
            image.display()
        )
    })?;
    serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Enter a private mount namespace, bind the rootfs on `at`, and make the mount points of
/// the bind mounts (criu mounts them back but needs the points to exist), except below a
/// tmpfs, whose contents criu restores itself.
fn prepare_root(bundle: &Bundle, binds: &[criu::spec::BindMount], at: &Path) -> Result<()> {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .context("unshare(CLONE_NEWNS) for the restore")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .context("making our mount namespace a slave")?;
    std::fs::create_dir(at).with_context(|| format!("creating {}", at.display()))?;
    mount(
        Some(&bundle.rootfs),
        at,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("binding the rootfs on {}", at.display()))?;
    let tmpfs: Vec<PathBuf> = bundle
        .spec
        .mounts()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| Path::new("/").join(m.destination()))
        .collect();
    let root = crate::rootfs::path::open_root(&bundle.rootfs)?;
    for b in binds {
        if tmpfs.iter().any(|t| b.dest.starts_with(t) && b.dest != *t) {
            continue;
        }
        let kind = if std::fs::metadata(&b.source)
            .with_context(|| format!("bind mount source {}", b.source.display()))?
            .is_dir()
        {
            crate::rootfs::path::Kind::Dir
        } else {
            crate::rootfs::path::Kind::File
        };
        crate::rootfs::path::ensure(root.as_fd(), &b.dest, kind)
            .with_context(|| format!("creating the mount point {}", b.dest.display()))?;
    }
    Ok(())
}

/// Where criu puts the restored cgroups: under the cgroup criu itself was moved into, for
/// every hierarchy (`0::/path` on v2: the default root for all controllers).
fn cgroup_roots(pid: i32) -> Result<Vec<rpc::CgroupRoot>> {
    let path = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let v1 = text.lines().any(|l| !l.starts_with("0::"));
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrl, p) = (parts.next()?, parts.next()?, parts.next()?);
            match ctrl {
                // On a hybrid host the v1 hierarchies are what criu manages.
                "" if v1 => None,
                "" => Some(rpc::CgroupRoot {
                    ctrl: None,
                    path: p.to_string(),
                }),
                c => Some(rpc::CgroupRoot {
                    ctrl: Some(c.trim_start_matches("name=").to_string()),
                    path: p.to_string(),
                }),
            }
        })
        .collect())
}
