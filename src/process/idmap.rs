//! The init's uid_map and gid_map, written by the parent once the init exists. Root writes
//! them itself. An unprivileged caller may write only a map of its own id, and for the gid
//! map only after denying setgroups. A map of more ids goes through the setuid helpers
//! newuidmap and newgidmap (the uidmap package), which check /etc/subuid and /etc/subgid;
//! setgroups then stays allowed. This is runc's rule too.
//!
//! Idmapped mounts need user namespaces of their own, with the mount's maps: see
//! `MappingNamespaces`.
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Command;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxIdMapping;

use crate::rootfs::idmap::Mapping;

/// Write both maps of `pid` (uids first, as the kernel wants nothing else to come first).
pub fn write(pid: i32, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    let unprivileged = euid != 0;
    let uid_helper = unprivileged && !only_own_id(uids, euid);
    let gid_helper = unprivileged && !only_own_id(gids, egid);
    if unprivileged && !gid_helper {
        let p = format!("/proc/{pid}/setgroups");
        std::fs::write(&p, "deny").with_context(|| format!("writing deny to {p}"))?;
    }
    for (file, helper, maps, field) in [
        (
            "uid_map",
            uid_helper.then_some("newuidmap"),
            uids,
            "linux.uidMappings",
        ),
        (
            "gid_map",
            gid_helper.then_some("newgidmap"),
            gids,
            "linux.gidMappings",
        ),
    ] {
        if let Some(tool) = helper {
            run_helper(tool, pid, maps, field)?;
        } else {
            let text: String = maps
                .iter()
                .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                .collect();
            let p = format!("/proc/{pid}/{file}");
            std::fs::write(&p, &text)
                .with_context(|| format!("writing {:?} to {p}", text.trim()))?;
        }
    }
    Ok(())
}

/// A map of just the caller's own id, which an unprivileged process may write itself.
fn only_own_id(maps: &[LinuxIdMapping], own: u32) -> bool {
    matches!(maps, [m] if m.host_id() == own && m.size() == 1)
}

/// `newuidmap PID ID HOST-ID SIZE...` (or newgidmap).
fn run_helper(tool: &str, pid: i32, maps: &[LinuxIdMapping], field: &str) -> Result<()> {
    let mut args = vec![pid.to_string()];
    for m in maps {
        args.extend([m.container_id(), m.host_id(), m.size()].map(|v| v.to_string()));
    }
    let out = match Command::new(tool).args(&args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{field}: mapping more than our own id as an unprivileged user needs {tool} \
             (Debian's uidmap package), which is not in PATH"
        ),
        Err(e) => return Err(e).with_context(|| format!("{field}: running {tool}")),
    };
    if !out.status.success() {
        bail!(
            "{field}: {tool} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The user namespaces idmapped mounts are made with, one per distinct mapping (several
/// mounts with the same mapping share one). Each made one lives only in its fd: the process
/// that made it is gone by the time `get` returns.
#[derive(Default)]
pub struct MappingNamespaces(Vec<(Mapping, OwnedFd)>);

impl MappingNamespaces {
    /// An fd of the user namespace for `mapping`: the joined one for a path, else a new one
    /// with those maps.
    ///
    /// # Safety
    /// The caller must be single-threaded, as `fork_with_flags` requires.
    pub unsafe fn get(&mut self, mapping: &Mapping) -> Result<OwnedFd> {
        if let Some((_, fd)) = self.0.iter().find(|(m, _)| m == mapping) {
            return fd.try_clone().context("dup of a user namespace fd");
        }
        let fd: OwnedFd = match mapping {
            Mapping::Userns(p) => std::fs::File::open(p)
                .with_context(|| format!("opening the user namespace {}", p.display()))?
                .into(),
            // SAFETY: single-threaded, as our caller guarantees.
            Mapping::Maps(uids, gids) => unsafe { with_maps(uids, gids) }
                .context("making a user namespace for the mount's mapping")?,
        };
        let dup = fd.try_clone().context("dup of a user namespace fd")?;
        self.0.push((mapping.clone(), fd));
        Ok(dup)
    }
}

/// A new user namespace with these maps: a child made with CLONE_NEWUSER waits on a pipe
/// while we write its maps and open its namespace, and exits at end-of-file.
///
/// # Safety
/// The caller must be single-threaded, as `fork_with_flags` requires.
unsafe fn with_maps(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<OwnedFd> {
    use crate::sys::process::{fork_with_flags, Forked};
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    // SAFETY: single-threaded, as our caller guarantees.
    match unsafe { fork_with_flags(libc::CLONE_NEWUSER, None) }.context("clone(CLONE_NEWUSER)")? {
        Forked::Child => {
            drop(w);
            let mut b = [0u8; 1];
            while let Err(nix::errno::Errno::EINTR) = nix::unistd::read(r.as_raw_fd(), &mut b) {}
            crate::sys::process::exit_now(0)
        }
        Forked::Parent(pid) => {
            drop(r);
            let ns = write(pid.as_raw(), uids, gids).and_then(|()| {
                let p = format!("/proc/{pid}/ns/user");
                std::fs::File::open(&p).with_context(|| format!("opening {p}"))
            });
            drop(w);
            let _ = nix::sys::wait::waitpid(pid, None);
            Ok(ns?.into())
        }
    }
}
