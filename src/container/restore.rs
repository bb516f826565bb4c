//! `restore`: a container from criu images, as runc does it.
//!
//! Steps: check everything (bundle, console, criu and the image) before any side effect;
//! lock `<root>/<id>` and make the cgroup; in a private mount namespace, bind the rootfs on
//! `<root>/<id>/criu-root` (criu wants a mount point) and make the bind mounts' mount points;
//! start `criu swrk`, move it into the container's cgroup (the restored tree is created
//! there), send RESTORE and answer criu's notifications:
//! - `setup-namespaces`: the prestart and createRuntime hooks, with the restored pid;
//! - `orphan-pts-master`: the new pty master goes to `--console-socket`.
//!
//! Then record the restored init in state.json, as create does. The restored tree is our
//! child (criu's `rst_sibling`), so a foreground restore can wait for it.
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::unistd::Pid;

use super::checkpoint::{open_dir, CriuFlags, DESCRIPTORS, SHELL_JOB_TTYS};
use super::create::{prepare, record, CreateRequest, Made, Prepared, Recorded};
use super::process_io::ProcessIo;
use super::state::Container;
use crate::cgroups;
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

/// `<root>/<id>/criu-root`, bound to the rootfs in our private mount namespace: unmounted
/// (lazily, which cannot fail on a mount) and removed when dropped. It is declared after the
/// state directory's guard, so on a failure it goes first: removing the state directory
/// through the bind would empty the rootfs.
struct RootMount(PathBuf);

impl RootMount {
    fn release(self) -> Result<()> {
        let r = unmount_root(&self.0);
        std::mem::forget(self);
        r
    }
}

impl Drop for RootMount {
    fn drop(&mut self) {
        if let Err(e) = unmount_root(&self.0) {
            tracing::warn!("cleanup: {e:#}");
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

/// `berth restore`: create's prepare, criu in place of spawn and drive, create's record.
pub fn restore(req: &RestoreRequest) -> Result<Restored> {
    // 1. Checks, no side effect: create's, then the image and criu.
    if req.rootless {
        bail!("restore needs root (criu cannot restore a rootless container)");
    }
    if req.no_pivot {
        bail!(
            "--no-pivot is not supported by restore: criu always pivots into the root it restores"
        );
    }
    check_lsm(req.lsm_profile.as_deref(), req.lsm_mount_context.as_deref())?;
    check_cgroups_mode(req.flags.cgroups_mode)?;
    let prep = prepare(&CreateRequest {
        root: req.root,
        id: req.id,
        bundle: req.bundle,
        io: ProcessIo {
            console_socket: req.console_socket,
            pid_file: req.pid_file,
            ..ProcessIo::default()
        },
        no_pivot: false,
        no_new_keyring: false,
        systemd_cgroup: req.systemd_cgroup,
        rootless: req.rootless,
    })?;
    let spec = &prep.bundle.spec;
    check_lsm_profile_replaces(req.lsm_profile.as_deref(), spec)?;
    let f = &req.flags;
    let images =
        open_dir(&f.image).with_context(|| format!("--image-path {}", f.image.display()))?;
    let descriptors = read_descriptors(&f.image)?;
    let ttys = read_shell_job_ttys(&f.image)?;
    check_shell_job(f.shell_job, &ttys, spec)?;
    let criu = Criu::find(req.criu)?;
    let min = if req.lsm_profile.is_some() { 31600 } else { 0 };
    let version = criu.require(min, "restore")?;
    f.check_network_lock(version)?;
    f.check_features(&criu, false)?;
    let binds = criu::spec::bind_mounts(spec, &prep.bundle.dir, &prep.bundle.rootfs)?;
    let ns = criu::spec::restore_namespaces(spec, 0)?;
    let console = req
        .console_socket
        .map(|p| {
            UnixStream::connect(p)
                .with_context(|| format!("connecting to --console-socket {}", p.display()))
        })
        .transpose()?;

    // 2. State directory (a duplicate id stops here) and cgroup, undone on failure.
    let mut made = Made::state_dir(&prep)?;
    made.create_cgroup(&prep)?;

    // 3. The root criu restores into, in a mount namespace of our own.
    let root_mount = RootMount(made.dir().join("criu-root"));
    prepare_root(&prep.bundle, &binds, &root_mount.0)?;

    // 4. The request.
    let (work, log) = f.open_work("restore.log")?;
    let mut opts = f.opts(&images, &work, "restore.log");
    opts.root = Some(root_mount.0.display().to_string());
    opts.rst_sibling = Some(true);
    opts.evasive_devices = Some(true);
    opts.config_file = CriuFlags::config_file(spec.annotations().as_ref());
    opts.lsm_profile = req.lsm_profile.clone();
    opts.ext_mnt = criu::spec::restore_mounts(spec, &binds)?;
    opts.inherit_fd = ns.inherit;
    opts.join_ns = ns.join;
    // The init's stdio pipes are replaced by ours, passed to criu after the namespaces.
    let mut inherit: Vec<_> = ns.files.iter().map(|f| f.as_fd()).collect();
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let stdio = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
    for (d, fd) in descriptors.iter().zip(stdio) {
        if d.contains("pipe:") {
            opts.inherit_fd.push(rpc::InheritFd {
                key: d.clone(),
                fd: criu::inherit_fd_number(inherit.len()),
            });
            inherit.push(fd);
        }
    }
    // --shell-job: berth's stdin, the caller's terminal, takes the place of the one the
    // checkpoint left out (criu's inherit-fd by its key), and is criu's stdin too (criu
    // wants a terminal there for a shell job, and gives it to a pty it inherits).
    let stdin_fd = stdin.as_fd();
    for key in &ttys {
        opts.inherit_fd.push(rpc::InheritFd {
            key: key.clone(),
            fd: criu::inherit_fd_number(inherit.len()),
        });
        inherit.push(stdin_fd);
    }
    let criu_stdin = f.shell_job.then_some(stdin_fd);
    let mut session = criu.spawn_with_stdin(&inherit, criu_stdin, Some(log))?;

    // 5. criu joins the container's cgroup, where the restored tree is created.
    let cgroup = made.cgroup()?;
    cgroup.apply(session.pid())?;
    if let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        cgroup.set(&cgroups::without_unset(r)?)?;
    }
    opts.cg_root = cgroup_roots(session.pid())?;
    // The cgroup mount's binds, onto the cgroup criu now is in (the restored tree's).
    let criu_cgroups = format!("/proc/{}/cgroup", session.pid());
    let text = std::fs::read_to_string(&criu_cgroups)
        .with_context(|| format!("reading {criu_cgroups}"))?;
    let cgroup_of = cgroups::paths::parse_proc_cgroup(&text);
    opts.ext_mnt
        .extend(criu::spec::cgroup_mounts(spec, Some(&cgroup_of))?);
    let mut notes = Notes {
        prep: &prep,
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
        made.child(Pid::from_raw(pid));
    }
    let pid = resp?
        .restore
        .map(|r| r.pid)
        .context("criu answered RESTORE without a pid")?;
    made.child(Pid::from_raw(pid));
    session.finish()?;
    root_mount.release()?;

    // 6. Record, as create does.
    super::state::save_config(made.dir(), &prep.bundle.spec)?;
    let rec = Recorded::stage(&prep, &made, Pid::from_raw(pid))?;
    let container = record(&prep, made, rec, req.pid_file)?;
    Ok(Restored {
        container,
        pid: Pid::from_raw(pid),
    })
}

/// `--lsm-profile TYPE:NAME` (criu's form: the restored processes run under that profile
/// instead of the one they were dumped with) and `--lsm-mount-context`, checked against the
/// LSMs of this host before anything is made. berth applies no SELinux label anywhere
/// (process.selinuxLabel and linux.mountLabel are refused where SELinux runs), so the SELinux
/// forms are refused too: `--lsm-mount-context` is SELinux's mount context.
fn check_lsm(profile: Option<&str>, mount_context: Option<&str>) -> Result<()> {
    let selinux = || {
        if crate::security::selinux_enabled() {
            "SELinux labels are not supported by berth"
        } else {
            "SELinux is not enabled on this host"
        }
    };
    if let Some(p) = profile {
        match p.split_once(':') {
            Some(("apparmor", name)) if !name.is_empty() => {
                if !crate::security::apparmor::enabled() {
                    bail!("--lsm-profile {p:?}: AppArmor is not enabled on this host");
                }
            }
            Some(("selinux", label)) if !label.is_empty() => {
                bail!("--lsm-profile {p:?}: {}", selinux())
            }
            _ => bail!("--lsm-profile {p:?}: expected apparmor:PROFILE (criu's TYPE:NAME)"),
        }
    }
    if let Some(c) = mount_context {
        bail!(
            "--lsm-mount-context {c:?}: an SELinux mount context for the restored mounts, and {}",
            selinux()
        );
    }
    Ok(())
}

/// criu puts `--lsm-profile`'s profile in place of the one each dumped process had, and
/// leaves an unconfined process unconfined: on a container without process.apparmorProfile
/// the flag would do nothing, so it is refused.
fn check_lsm_profile_replaces(profile: Option<&str>, spec: &oci_spec::runtime::Spec) -> Result<()> {
    let confined = spec
        .process()
        .as_ref()
        .and_then(|p| p.apparmor_profile().as_deref())
        .is_some_and(|p| !p.is_empty() && p != "unconfined");
    match profile {
        Some(p) if !confined => bail!(
            "--lsm-profile {p:?}: the container has no process.apparmorProfile, and criu only \
             replaces the profile the checkpointed processes ran under (an unconfined one stays \
             unconfined)"
        ),
        _ => Ok(()),
    }
}

/// `--manage-cgroups-mode` at restore. berth makes the container's cgroup, with the bundle's
/// limits, and moves criu into it before criu restores (runc's order), so:
/// - `strict` (criu makes every cgroup itself and fails on one that exists) cannot work;
/// - `full` (also restore the properties of cgroups that exist) restores nothing more than
///   `soft` on cgroup v2, where criu dumps no controller property (only which cgroup each
///   process is in; seen with criu 3.17.1): there it is refused rather than left to do less
///   than it says.
fn check_cgroups_mode(mode: Option<crate::criu::CriuCgMode>) -> Result<()> {
    use crate::criu::CriuCgMode as M;
    match mode {
        Some(M::Strict) => bail!(
            "--manage-cgroups-mode strict is not supported: criu then makes every cgroup itself \
             and fails on one that exists, and berth makes the container's cgroup (with the \
             bundle's limits) before criu restores, as runc does; use full or soft"
        ),
        Some(M::Full) if cgroups::unified() => bail!(
            "--manage-cgroups-mode full is not supported on cgroup v2: criu dumps no cgroup v2 \
             controller property (only which cgroup each process is in), so there is nothing \
             for full to restore beyond what soft (the default) does; the limits are the \
             bundle's"
        ),
        _ => Ok(()),
    }
}

/// criu's notifications during a restore.
struct Notes<'a> {
    prep: &'a Prepared,
    console: Option<UnixStream>,
    pid: Option<i32>,
}

impl criu::Notify for Notes<'_> {
    fn notify(&mut self, script: &str, pid: i32, fd: Option<OwnedFd>) -> Result<()> {
        match script {
            "setup-namespaces" => {
                self.pid = Some(pid);
                let st = self.prep.hook_state("creating", pid);
                let hooks = self.prep.bundle.spec.hooks().as_ref();
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
                    &[master.as_raw_fd()],
                )
                .context("sending the pty master to --console-socket")
            }
            _ => Ok(()),
        }
    }
}

/// The terminals a `--shell-job` checkpoint left out of the image (none for other
/// checkpoints, and for runc's).
fn read_shell_job_ttys(image: &Path) -> Result<Vec<String>> {
    let path = image.join(SHELL_JOB_TTYS);
    match std::fs::read(&path) {
        Ok(text) => {
            serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// `--shell-job` at restore: the container goes onto the caller's terminal, berth's stdin.
/// Needed when the checkpoint left a terminal out; refused for a container with a terminal
/// of its own (criu would put the caller's terminal in place of its pty).
fn check_shell_job(shell_job: bool, ttys: &[String], spec: &oci_spec::runtime::Spec) -> Result<()> {
    if !shell_job {
        if !ttys.is_empty() {
            bail!(
                "the checkpoint was made with --shell-job (the container ran on its caller's \
                 terminal): restore it with --shell-job, with a terminal as berth's stdin"
            );
        }
        return Ok(());
    }
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal {
        bail!(
            "--shell-job is for a container on its caller's terminal (process.terminal false); \
             this one has a pty of its own, restored through --console-socket"
        );
    }
    if !nix::unistd::isatty(0).unwrap_or(false) {
        bail!(
            "--shell-job: berth's stdin is not a terminal (the restored container gets the \
             terminal on berth's stdin, as its caller's terminal was at checkpoint time)"
        );
    }
    Ok(())
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

/// Enter a private mount namespace, bind the rootfs on `at`, and make the mount point of
/// every mount (criu mounts them back but needs the points to exist: a rootfs made afresh
/// for the restore, as containerd's, lacks those create made, like /run), except below a
/// tmpfs, whose contents criu restores itself. As runc's prepareCriuRestoreMounts.
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
    let mounts = bundle.spec.mounts().as_deref().unwrap_or(&[]);
    let tmpfs: Vec<PathBuf> = mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| Path::new("/").join(m.destination()))
        .collect();
    let mut points: Vec<(PathBuf, crate::rootfs::path::Kind)> = Vec::new();
    for b in binds {
        let kind = if std::fs::metadata(&b.source)
            .with_context(|| format!("bind mount source {}", b.source.display()))?
            .is_dir()
        {
            crate::rootfs::path::Kind::Dir
        } else {
            crate::rootfs::path::Kind::File
        };
        points.push((b.dest.clone(), kind));
    }
    for m in mounts {
        let dest = Path::new("/").join(m.destination());
        let opts = crate::rootfs::options::parse(m.options().as_deref().unwrap_or(&[]))?;
        if !(opts.is_bind() || m.typ().as_deref() == Some("bind")) {
            points.push((dest, crate::rootfs::path::Kind::Dir));
        }
    }
    let root = crate::rootfs::path::open_root(&bundle.rootfs)?;
    for (dest, kind) in points {
        if tmpfs.iter().any(|t| dest.starts_with(t) && dest != *t) {
            continue;
        }
        crate::rootfs::path::ensure(root.as_fd(), &dest, kind)
            .with_context(|| format!("creating the mount point {}", dest.display()))?;
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
