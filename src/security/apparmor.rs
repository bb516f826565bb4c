//! AppArmor: `process.apparmorProfile` (and `exec --apparmor`) is applied by writing
//! `exec PROFILE` to the LSM's exec attribute of the thread that then calls execve, so the
//! program starts confined. The attribute is opened through a procfs handle taken on the
//! host's /proc before the process entered the container (checked to be the root of a real
//! procfs), never through a path in the container, whose /proc it controls.
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::fcntl::OFlag;
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

use crate::sys::mount::openat2;

/// Whether the host runs AppArmor (runc's test: securityfs has it and the module is enabled).
pub fn enabled() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.starts_with('Y'))
}

/// The error for a profile requested where AppArmor is not enabled.
pub fn check_available(profile: &str, field: &str) -> Result<()> {
    if !enabled() {
        bail!("{field} {profile:?}: AppArmor is not enabled on this host");
    }
    Ok(())
}

/// `process.apparmorProfile`, if set, can be applied on this host (no side effect: create and
/// exec check this before they make anything).
pub fn check_process(process: &oci_spec::runtime::Process) -> Result<()> {
    match process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        Some(profile) => check_available(profile, "process.apparmorProfile"),
        None => Ok(()),
    }
}

/// The host's /proc when `process` asks for an AppArmor profile (open it before entering the
/// container), else `None`.
pub fn procfs_for(process: &oci_spec::runtime::Process) -> Result<Option<ProcfsHandle>> {
    check_process(process)?;
    match process.apparmor_profile().as_deref() {
        Some(p) if !p.is_empty() => ProcfsHandle::open_host().map(Some),
        _ => Ok(None),
    }
}

/// An `O_PATH` fd on the root of a procfs.
pub struct ProcfsHandle(OwnedFd);

impl std::os::fd::AsRawFd for ProcfsHandle {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

impl ProcfsHandle {
    /// Opens the host's /proc; call it before entering the container's mount namespace.
    pub fn open_host() -> Result<ProcfsHandle> {
        let fd: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open("/proc")
            .context("opening /proc")?
            .into();
        ensure_procfs(fd.as_fd(), "/proc")?;
        let st = rustix::fs::fstat(&fd).context("fstat /proc")?;
        // PROC_ROOT_INO: the root of the procfs, not a directory inside one.
        if st.st_ino != 1 {
            bail!("/proc is not the root of a procfs mount");
        }
        Ok(ProcfsHandle(fd))
    }
}

fn ensure_procfs(fd: BorrowedFd<'_>, what: &str) -> Result<()> {
    let st = fstatfs(fd).with_context(|| format!("fstatfs {what}"))?;
    if st.filesystem_type() != PROC_SUPER_MAGIC {
        bail!("{what} is not on a procfs");
    }
    Ok(())
}

/// Makes the calling thread's next execve switch to `profile`: writes `exec PROFILE` to
/// thread-self/attr/apparmor/exec (attr/exec on kernels without per-LSM directories).
pub fn apply_exec_profile(proc: &ProcfsHandle, profile: &str) -> Result<()> {
    const RESOLVE: u64 =
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_XDEV | libc::RESOLVE_NO_MAGICLINKS;
    let open = |rel: &str| openat2(proc.0.as_fd(), Path::new(rel), OFlag::O_WRONLY, 0, RESOLVE);
    let (fd, rel) = match open("thread-self/attr/apparmor/exec") {
        Err(nix::errno::Errno::ENOENT) => {
            (open("thread-self/attr/exec"), "/proc/thread-self/attr/exec")
        }
        r => (r, "/proc/thread-self/attr/apparmor/exec"),
    };
    let fd = fd.with_context(|| format!("opening {rel}"))?;
    ensure_procfs(fd.as_fd(), rel)?;
    std::fs::File::from(fd)
        .write_all(format!("exec {profile}").as_bytes())
        .with_context(|| format!("writing \"exec {profile}\" to {rel} (is the profile loaded?)"))
}
