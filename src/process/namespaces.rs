//! Which namespaces the container gets and how: created by the clone flags, created later
//! by unshare (cgroup: after the init joined its cgroup; time: so offsets can be written),
//! or joined by path (pid: by the parent around the clone; user: by a helper that clones the
//! init from inside it; the rest by the init).
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{LinuxNamespaceType as T, Spec};

use crate::spec::validate::ns_name;

/// The namespace plan for one container.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// CLONE_NEW* flags for the clone itself (user, pid, net, ipc, uts, mount).
    pub clone_flags: libc::c_int,
    /// Namespaces the init joins by path, user first.
    pub join: Vec<(T, PathBuf)>,
    /// The pid namespace joined by path (the parent enters it around the clone).
    pub join_pid: Option<PathBuf>,
    /// The user namespace joined by path: the init is cloned from inside it
    /// (`fork_in_userns`), so the namespaces it creates belong to that user namespace.
    pub join_user: Option<PathBuf>,
    pub new_user: bool,
    pub new_mount: bool,
    pub new_cgroup: bool,
    pub new_time: bool,
}

fn clone_flag(t: T) -> CloneFlags {
    match t {
        T::User => CloneFlags::CLONE_NEWUSER,
        T::Pid => CloneFlags::CLONE_NEWPID,
        T::Network => CloneFlags::CLONE_NEWNET,
        T::Ipc => CloneFlags::CLONE_NEWIPC,
        T::Uts => CloneFlags::CLONE_NEWUTS,
        T::Mount => CloneFlags::CLONE_NEWNS,
        T::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        T::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

impl Plan {
    pub fn from_spec(spec: &Spec) -> Plan {
        let mut p = Plan::default();
        let list = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
        for ns in list.into_iter().flatten() {
            match (ns.typ(), ns.path()) {
                (T::Pid, Some(path)) => p.join_pid = Some(path.clone()),
                (T::User, Some(path)) => p.join_user = Some(path.clone()),
                (t, Some(path)) => p.join.push((t, path.clone())),
                (T::Cgroup, None) => p.new_cgroup = true,
                (T::Time, None) => p.new_time = true,
                (t, None) => {
                    p.clone_flags |= clone_flag(t).bits();
                    p.new_user |= t == T::User;
                    p.new_mount |= t == T::Mount;
                }
            }
        }
        p
    }

    /// Whether the clone makes a new network namespace (whose loopback the init brings up).
    pub fn new_net(&self) -> bool {
        self.clone_flags & libc::CLONE_NEWNET != 0
    }

    /// Whether the init gets a mount namespace of its own (new, or joined by path).
    pub fn has_mount_ns(&self) -> bool {
        self.new_mount || self.join.iter().any(|(t, _)| *t == T::Mount)
    }

    /// Whether the init's mount namespace is the copy its clone makes of the runtime's (a
    /// new one, none joined by path): what is mounted outside the rootfs is what the
    /// runtime saw before the clone.
    pub fn mounts_copied(&self) -> bool {
        self.new_mount && !self.join.iter().any(|(t, _)| *t == T::Mount)
    }

    /// A config without a mount namespace is refused before anything is made. With masked
    /// or read-only paths, in runc's words; without, berth still refuses (runc would run the
    /// container in the runtime's mount namespace, on the host's filesystem).
    pub fn check_mount_ns(&self, spec: &Spec) -> Result<()> {
        if self.has_mount_ns() {
            return Ok(());
        }
        let linux = spec.linux().as_ref();
        let listed = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
        if linux.is_some_and(|l| {
            listed(l.masked_paths().as_ref()) || listed(l.readonly_paths().as_ref())
        }) {
            anyhow::bail!(
                "linux.namespaces: unable to restrict sys entries without a private MNT namespace (linux.maskedPaths, linux.readonlyPaths)"
            );
        }
        anyhow::bail!(
            "linux.namespaces: a mount namespace is required (berth does not run a container in the runtime's mount namespace)"
        )
    }

    /// Whether the init ends up in a user namespace other than the runtime's.
    pub fn in_user_ns(&self) -> bool {
        self.new_user || self.join_user.is_some()
    }

    /// In the init, after the parent said go: join by path, then the time namespace. (The
    /// cgroup namespace waits for the cgroup: `enter_cgroup`.)
    pub fn enter(
        &self,
        time_offsets: Option<
            &std::collections::HashMap<String, oci_spec::runtime::LinuxTimeOffset>,
        >,
    ) -> Result<()> {
        for (t, path) in &self.join {
            join(*t, path)?;
        }
        if self.new_time {
            new_time_namespace(time_offsets)?;
        }
        Ok(())
    }
}

impl Plan {
    /// In the init, once it is in its cgroup: the new cgroup namespace, rooted there.
    pub fn enter_cgroup(&self) -> Result<()> {
        if self.new_cgroup {
            unshare(CloneFlags::CLONE_NEWCGROUP).context("creating the cgroup namespace")?;
        }
        Ok(())
    }
}

/// setns into the namespace at `path`, checking it is of the expected type.
pub fn join(t: T, path: &Path) -> Result<()> {
    let f = File::open(path)
        .with_context(|| format!("opening the {} namespace {}", ns_name(t), path.display()))?;
    join_file(t, &f, path)
}

/// setns into an opened namespace file (`path` is for messages).
pub fn join_file(t: T, f: &File, path: &Path) -> Result<()> {
    setns(f.as_fd(), clone_flag(t))
        .with_context(|| format!("joining the {} namespace {}", ns_name(t), path.display()))
}

/// A new time namespace with offsets: unshare (only children would enter it), write the
/// offsets before any process is in it, then enter it ourselves through time_for_children.
fn new_time_namespace(
    offsets: Option<&std::collections::HashMap<String, oci_spec::runtime::LinuxTimeOffset>>,
) -> Result<()> {
    unshare(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
        .context("creating the time namespace")?;
    let mut text = String::new();
    for (clock, off) in offsets.into_iter().flatten() {
        let secs = off.secs().unwrap_or(0);
        let nanos = off.nanosecs().unwrap_or(0);
        text.push_str(&format!("{clock} {secs} {nanos}\n"));
    }
    if !text.is_empty() {
        std::fs::write("/proc/self/timens_offsets", &text)
            .with_context(|| format!("writing time offsets {:?}", text.trim()))?;
    }
    join(T::Time, Path::new("/proc/self/ns/time_for_children"))
}

/// Whether the runtime runs in a user namespace other than the initial one (whose uid_map
/// maps every id to itself), as the root of a rootless engine's namespace does. Read once
/// per command: a command never changes its own user namespace.
pub fn in_user_namespace() -> bool {
    static IN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN.get_or_init(|| {
        crate::sys::fdio::read_text(Path::new("/proc/self/uid_map"))
            .map(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
            .unwrap_or(false)
    })
}

/// Parent side: enter the pid namespace given by path for the clone only, and come back.
/// Clone the init from inside the user namespace at `user` (and the pid namespace at `pid`),
/// as runc's nsexec joins them before it unshares: a short-lived helper joins them and
/// clones the init with the other CLONE_NEW* `flags`, so those namespaces belong to the
/// joined user namespace (a network namespace the runtime made would not let the container
/// root bring up its loopback). The helper reports the init's pid and exits; this process is
/// a child subreaper, so the init becomes its child. Returns `Forked::Child` in the init.
///
/// # Safety
/// The caller must be single-threaded, as `fork_with_flags` requires.
pub unsafe fn fork_in_userns(
    user: &Path,
    pid: Option<&Path>,
    flags: libc::c_int,
) -> Result<crate::sys::process::Forked> {
    use crate::sys::process::{fork_with_flags, Forked};
    use std::io::{Read, Write};
    let open = |t: T, p: &Path| {
        File::open(p)
            .with_context(|| format!("opening the {} namespace {}", ns_name(t), p.display()))
    };
    let userns = open(T::User, user)?;
    let pidns = pid.map(|p| open(T::Pid, p)).transpose()?;
    nix::sys::prctl::set_child_subreaper(true).context("PR_SET_CHILD_SUBREAPER")?;
    let (r, w) = nix::unistd::pipe().context("pipe")?;
    // SAFETY: single-threaded, as our caller guarantees.
    match unsafe { fork_with_flags(0, None) }.context("fork of the namespace helper")? {
        Forked::Child => {
            drop(r);
            let joined = pidns
                .as_ref()
                .map_or(Ok(()), |p| setns(p.as_fd(), CloneFlags::CLONE_NEWPID))
                .and_then(|()| setns(userns.as_fd(), CloneFlags::CLONE_NEWUSER));
            // SAFETY: the helper is a fork of a single-threaded process.
            let res = joined.and_then(|()| unsafe { fork_with_flags(flags, None) });
            let word: i64 = match res {
                Ok(Forked::Child) => return Ok(Forked::Child),
                Ok(Forked::Parent(p)) => i64::from(p.as_raw()),
                Err(e) => -(e as i64),
            };
            let _ = File::from(w).write_all(&word.to_ne_bytes());
            crate::sys::process::exit_now(0)
        }
        Forked::Parent(helper) => {
            drop(w);
            let mut buf = [0u8; 8];
            let read = File::from(r).read_exact(&mut buf);
            let _ = nix::sys::wait::waitpid(helper, None);
            read.context("reading the init's pid from the namespace helper")?;
            match i64::from_ne_bytes(buf) {
                p if p > 0 => Ok(Forked::Parent(nix::unistd::Pid::from_raw(p as i32))),
                e => Err(nix::errno::Errno::from_raw(-e as i32)).with_context(|| {
                    format!(
                        "cloning the init inside the user namespace {}{}",
                        user.display(),
                        owner_note(&userns)
                    )
                }),
            }
        }
    }
}

/// ", owned by uid N (we are uid M)" when the user namespace belongs to someone else: the
/// usual reason a rootless caller may not join it.
fn owner_note(userns: &File) -> String {
    use std::os::fd::AsRawFd;
    let me = nix::unistd::geteuid().as_raw();
    match crate::sys::process::ns_owner_uid(userns.as_raw_fd()) {
        Ok(owner) if owner != me => format!(" (owned by uid {owner}, and we are uid {me})"),
        _ => String::new(),
    }
}

pub struct PidNsGuard {
    own: File,
}

impl PidNsGuard {
    pub fn enter(path: &Path) -> Result<PidNsGuard> {
        let own = File::open("/proc/self/ns/pid_for_children")
            .context("opening our own pid namespace")?;
        join(T::Pid, path)?;
        Ok(PidNsGuard { own })
    }

    pub fn leave(self) -> Result<()> {
        setns(self.own.as_fd(), CloneFlags::CLONE_NEWPID).context("returning to our pid namespace")
    }

    /// `leave`, for a caller that makes no other child afterwards. The root of a rootless
    /// engine's user namespace may enter a pid namespace that its namespace owns, but not
    /// return to the host's, over which it holds no capability (EPERM); it then stays set to
    /// make children in the container's pid namespace, which matters to nobody.
    pub fn leave_if_permitted(self) -> Result<()> {
        match setns(self.own.as_fd(), CloneFlags::CLONE_NEWPID) {
            Err(nix::errno::Errno::EPERM) if in_user_namespace() => Ok(()),
            r => r.context("returning to our pid namespace"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_from_spec() {
        let s: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.0",
            "linux": {"namespaces": [
                {"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"},
                {"type": "user", "path": "/proc/1/ns/user"}, {"type": "cgroup"}, {"type": "mount"}
            ]}
        }))
        .unwrap();
        let p = Plan::from_spec(&s);
        assert_eq!(p.clone_flags, libc::CLONE_NEWPID | libc::CLONE_NEWNS);
        assert_eq!(p.join_user.as_deref(), Some(Path::new("/proc/1/ns/user")));
        assert_eq!(p.join, [(T::Network, PathBuf::from("/proc/1/ns/net"))]);
        assert!(p.in_user_ns());
        assert!(p.new_cgroup && p.new_mount && !p.new_user && !p.new_time);
    }
}
