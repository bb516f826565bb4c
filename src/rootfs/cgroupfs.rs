//! The `type: cgroup` mount.
//!
//! cgroup v2 (unified /sys/fs/cgroup): with a cgroup namespace, a fresh `cgroup2` mount;
//! without one, a bind of the container's own cgroup directory.
//!
//! cgroup v1: a tmpfs at the destination holding one directory per v1 hierarchy of the host
//! (found in /proc/self/mountinfo under /sys/fs/cgroup; the runtime's reading of it when the
//! init's mount namespace is a copy of the runtime's). With a cgroup namespace each one is
//! a fresh `cgroup` mount with the hierarchy's controllers; without one it is a bind of the
//! host directory of the container's own cgroup in that hierarchy, read from
//! /proc/self/cgroup (so the init must already be in its cgroup). Co-mounted hierarchies get
//! a symlink per controller (`cpu -> cpu,cpuacct`). The read-only flag applies to all.
use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};

use super::attach::{apply_propagation, bind, detached_copy_at, mount_fd};
use super::options::MountOptions;
use super::path::{self, Kind};
use super::Ctx;
use crate::mountinfo::{self, MountInfo};
use crate::sys::mount::{self as sys, MountAttr};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

pub fn mount(ctx: &mut Ctx<'_>, dest: &Path, opts: &MountOptions) -> Result<()> {
    (ctx.cfg.cgroup_ready)().context("waiting to join the container's cgroup")?;
    let v2 = statfs(CGROUP_ROOT)
        .map(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
        .with_context(|| format!("statfs {CGROUP_ROOT}"))?;
    if v2 {
        mount_v2(ctx, dest, opts)
    } else {
        mount_v1(ctx, dest, opts)
    }
}

/// Flags for a mount made on behalf of the cgroup entry: its flags without bind/remount.
fn fs_flags(opts: &MountOptions) -> libc::c_ulong {
    opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT)
}

/// Options for binding a host cgroup directory: the entry's flags, not recursive.
fn bind_opts(opts: &MountOptions) -> MountOptions {
    MountOptions {
        flags: fs_flags(opts) | libc::MS_BIND,
        cleared: opts.cleared,
        ..Default::default()
    }
}

fn mount_v2(ctx: &mut Ctx<'_>, dest: &Path, opts: &MountOptions) -> Result<()> {
    let dst = path::ensure(ctx.root(), dest, Kind::Dir).context("creating the destination")?;
    if ctx.cfg.new_cgroupns {
        mount_fd(
            Path::new("cgroup2"),
            dst.fd.as_fd(),
            "cgroup2",
            fs_flags(opts),
            &opts.data_string(),
        )
        .context("mounting cgroup2")?;
    } else {
        let own = crate::cgroups::paths::own_cgroups()?;
        let rel = own
            .get("")
            .context("/proc/self/cgroup has no cgroup v2 entry")?;
        let src = Path::new(CGROUP_ROOT).join(rel.strip_prefix("/").unwrap_or(rel));
        let fd = path::open_root(&src)?;
        bind(ctx.root(), fd.as_fd(), &dst, &bind_opts(opts))
            .with_context(|| format!("binding {}", src.display()))?;
    }
    apply_propagation(ctx.root(), &dst.path, &opts.propagation)
}

fn mount_v1(ctx: &mut Ctx<'_>, dest: &Path, opts: &MountOptions) -> Result<()> {
    let dst = path::ensure(ctx.root(), dest, Kind::Dir).context("creating the destination")?;
    let flags = fs_flags(opts);
    mount_fd(
        Path::new("tmpfs"),
        dst.fd.as_fd(),
        "tmpfs",
        flags & !libc::MS_RDONLY,
        "mode=755",
    )
    .context("mounting the tmpfs")?;
    // The new tmpfs: its directories are made right in it, with no walk from the root.
    let top = path::Resolved {
        fd: path::open_in_root(ctx.root(), &dst.path, OFlag::O_PATH | OFlag::O_DIRECTORY)?,
        path: dst.path.clone(),
        created: false,
    };
    let controllers = known_controllers()?;
    let own = if ctx.cfg.new_cgroupns {
        BTreeMap::new()
    } else {
        crate::cgroups::paths::own_cgroups()?
    };
    let read;
    let mounts = if ctx.cfg.mounts_copied {
        mountinfo::backed_once()?
    } else {
        read = mountinfo::read_backed()?;
        &read
    };
    for h in hierarchies(mounts) {
        let name = h
            .mount_point
            .file_name()
            .context("hierarchy without a name")?
            .to_owned();
        let list: Vec<String> = h
            .super_options
            .iter()
            .filter(|o| o.starts_with("name=") || controllers.contains(o))
            .cloned()
            .collect();
        if ctx.cfg.new_cgroupns {
            let sub = path::create_child(&top, &name, Kind::Dir)?;
            mount_fd(
                Path::new("cgroup"),
                sub.fd.as_fd(),
                "cgroup",
                flags,
                &list.join(","),
            )
            .with_context(|| format!("mounting cgroup {}", list.join(",")))?;
        } else {
            // Every controller of a hierarchy has the same line in /proc/self/cgroup.
            let rel = list.first().and_then(|c| own.get(c)).with_context(|| {
                format!(
                    "/proc/self/cgroup has no entry for the {} hierarchy",
                    list.join(",")
                )
            })?;
            let src = h.mount_point.join(rel.strip_prefix("/").unwrap_or(rel));
            // Made in the tmpfs above, which only this mount namespace has: it is attached
            // to by name, with no fd opened on it.
            path::make_child(&top, &name, Kind::Dir)?;
            detached_copy_at(&src, &bind_opts(opts))
                .and_then(|t| {
                    sys::move_mount_to(t.as_fd(), top.fd.as_fd(), &name).context("move_mount")
                })
                .with_context(|| format!("binding {}", src.display()))?;
        }
        comount_links(top.fd.as_fd(), &name.to_string_lossy())?;
    }
    if flags & libc::MS_RDONLY != 0 {
        let attr = MountAttr {
            set: libc::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        sys::mount_setattr(top.fd.as_fd(), false, attr).context("making the tmpfs read-only")?;
    }
    if !opts.recursive.is_empty() {
        sys::mount_setattr(top.fd.as_fd(), true, opts.recursive)
            .context("setting recursive attributes")?;
    }
    apply_propagation(ctx.root(), &dst.path, &opts.propagation)
}

/// What the mount binds on a cgroup v1 host without a cgroup namespace, for checkpoint and
/// restore (criu cannot dump those binds: they are slaves of the host's hierarchies, so they
/// are external mounts, as runc declares them): each v1 hierarchy's name under the mount's
/// destination, and the host directory of the cgroup that `cgroup_of` (a parsed
/// /proc/PID/cgroup) names in it.
pub fn v1_binds(
    cgroup_of: &BTreeMap<String, std::path::PathBuf>,
) -> Result<Vec<(String, Option<std::path::PathBuf>)>> {
    let controllers = known_controllers()?;
    let mut out = Vec::new();
    for h in hierarchies(&mountinfo::read_backed()?) {
        let name = h
            .mount_point
            .file_name()
            .context("hierarchy without a name")?
            .to_string_lossy()
            .into_owned();
        let src = h
            .super_options
            .iter()
            .find(|o| o.starts_with("name=") || controllers.contains(o))
            .and_then(|c| cgroup_of.get(c))
            .map(|rel| h.mount_point.join(rel.strip_prefix("/").unwrap_or(rel)));
        out.push((name, src));
    }
    Ok(out)
}

/// `cpu -> cpu,cpuacct` and `cpuacct -> cpu,cpuacct` for a co-mounted hierarchy.
fn comount_links(dir: std::os::fd::BorrowedFd<'_>, name: &str) -> Result<()> {
    if !name.contains(',') {
        return Ok(());
    }
    for part in name.split(',') {
        match nix::unistd::symlinkat(name, Some(dir.as_raw_fd()), part) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("symlink {part} -> {name}")),
        }
    }
    Ok(())
}

/// The host's v1 hierarchies, mounted directly under /sys/fs/cgroup.
fn hierarchies(mounts: &[MountInfo]) -> Vec<&MountInfo> {
    mountinfo::visible(mounts)
        .into_iter()
        .filter(|m| m.fstype == "cgroup" && m.mount_point.parent() == Some(Path::new(CGROUP_ROOT)))
        .collect()
}

/// Controller names the kernel knows (/proc/cgroups).
fn known_controllers() -> Result<Vec<String>> {
    let text =
        crate::sys::fdio::read_text(Path::new("/proc/cgroups")).context("reading /proc/cgroups")?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_direct_v1_hierarchies() {
        let mi = mountinfo::parse(
            "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
             32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             42 1 0:39 / /other/cpu rw - cgroup cgroup rw,cpu\n",
        );
        let h = hierarchies(&mi);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
    }
}
