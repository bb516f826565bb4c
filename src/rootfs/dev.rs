//! /dev inside the container: the default devices (null, zero, full, random, urandom, tty),
//! `linux.devices`, the standard symlinks and /dev/ptmx -> pts/ptmx.
//!
//! As runc, this is done unless the spec bind-mounts /dev. A node is made with mknod; in a
//! new user namespace (or when mknod is refused with EPERM) the host's node is bind-mounted
//! onto an empty file instead. Paths are resolved inside the root.
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fchmodat, fstatat, makedev, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::path::{self, Kind};
use super::Ctx;
use crate::sys::mount as sys;

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub path: PathBuf,
    /// S_IFCHR, S_IFBLK or S_IFIFO.
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    /// Permission bits only (podman sends S_IFMT bits too: they are masked).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

const DEFAULTS: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Whether /dev is ours to populate: not when the spec bind-mounts it.
pub fn needs_setup(spec: &oci_spec::runtime::Spec) -> bool {
    !spec.mounts().iter().flatten().any(|m| {
        let bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind");
        bind && Path::new("/")
            .join(m.destination())
            .components()
            .eq(Path::new("/dev").components())
    })
}

/// The default devices plus `linux.devices`; a spec entry replaces a default at the same path.
pub fn nodes(spec: &oci_spec::runtime::Spec) -> Result<Vec<Node>> {
    let mut out: Vec<Node> = Vec::new();
    let devices = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    for (i, d) in devices.iter().enumerate() {
        out.push(
            node_of(d).with_context(|| format!("linux.devices[{i}] ({})", d.path().display()))?,
        );
    }
    for (p, major, minor) in DEFAULTS {
        if !out.iter().any(|n| n.path == Path::new(p)) {
            out.push(Node {
                path: p.into(),
                kind: SFlag::S_IFCHR,
                major: *major,
                minor: *minor,
                mode: 0o666,
                uid: 0,
                gid: 0,
            });
        }
    }
    Ok(out)
}

fn node_of(d: &LinuxDevice) -> Result<Node> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => anyhow::bail!("type \"a\" is not a device node type"),
    };
    let num = |v: i64, what: &str| u64::try_from(v).with_context(|| format!("negative {what} {v}"));
    Ok(Node {
        path: Path::new("/").join(d.path()),
        kind,
        major: num(d.major(), "major")?,
        minor: num(d.minor(), "minor")?,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Create every node, then /dev/ptmx and the symlinks.
pub(crate) fn setup(ctx: &Ctx<'_>) -> Result<()> {
    // The directory of the last node, kept for the next one (most are in /dev).
    let mut dir: Option<path::Resolved> = None;
    // No umask while the nodes are made: mknod gives them their exact mode (restored below
    // on every path; the container's own umask is set later anyway).
    let umask = nix::sys::stat::umask(Mode::empty());
    let made = nodes(ctx.cfg.spec).and_then(|nodes| {
        nodes.iter().try_for_each(|n| {
            create(ctx, n, &mut dir)
                .with_context(|| format!("creating device {}", n.path.display()))
        })
    });
    nix::sys::stat::umask(umask);
    made?;
    let dev = path::ensure(ctx.root(), Path::new("/dev"), Kind::Dir)?;
    setup_ptmx(dev.fd.as_fd()).context("/dev/ptmx")?;
    symlinks(dev.fd.as_fd()).context("/dev symlinks")
}

fn create(ctx: &Ctx<'_>, n: &Node, dir: &mut Option<path::Resolved>) -> Result<()> {
    let (parent, name) = split(n)?;
    let parent = match dir.take() {
        Some(d) if d.path == parent => dir.insert(d),
        _ => dir.insert(path::ensure(ctx.root(), parent, Kind::Dir)?),
    };
    // A FIFO needs no privilege; device nodes cannot be made in a user namespace.
    if ctx.cfg.new_userns && n.kind != SFlag::S_IFIFO {
        return bind_node(ctx, n);
    }
    match make_node(parent.fd.as_fd(), name, n) {
        Err(Errno::EPERM) => bind_node(ctx, n),
        other => other.context("mknod"),
    }
}

fn split(n: &Node) -> Result<(&Path, &OsStr)> {
    let name = n
        .path
        .file_name()
        .context("device path without a file name")?;
    Ok((n.path.parent().unwrap_or(Path::new("/")), name))
}

/// mknod (replacing a different existing node), then owner and exact mode. With no umask
/// (see `setup`), a node mknod made has its mode already, unless it has bits above 0777.
fn make_node(dir: BorrowedFd<'_>, name: &OsStr, n: &Node) -> nix::Result<()> {
    let dev = makedev(n.major, n.minor);
    let perm = Mode::from_bits_truncate(n.mode);
    let mut exact = n.mode & !0o777 == 0;
    match mknodat(Some(dir.as_raw_fd()), name, n.kind, perm, dev) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            exact = false;
            let st = fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
            let fmt = st.st_mode & libc::S_IFMT;
            if fmt == libc::S_IFDIR {
                return Err(Errno::EISDIR);
            }
            if fmt != n.kind.bits() || (n.kind != SFlag::S_IFIFO && st.st_rdev != dev) {
                unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)?;
                mknodat(Some(dir.as_raw_fd()), name, n.kind, perm, dev)?;
            }
        }
        Err(e) => return Err(e),
    }
    let (uid, gid) = (Some(Uid::from_raw(n.uid)), Some(Gid::from_raw(n.gid)));
    fchownat(
        Some(dir.as_raw_fd()),
        name,
        uid,
        gid,
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if exact {
        return Ok(());
    }
    fchmodat(
        Some(dir.as_raw_fd()),
        name,
        perm,
        FchmodatFlags::FollowSymlink,
    )
}

/// Bind the host's node at the same path onto an empty file in the container.
fn bind_node(ctx: &Ctx<'_>, n: &Node) -> Result<()> {
    let dst = path::ensure(ctx.root(), &n.path, Kind::File)?;
    let src = sys::openat(None, &n.path, OFlag::O_PATH, 0)
        .with_context(|| format!("opening host {}", n.path.display()))?;
    let tree = sys::clone_tree(src.as_fd(), false).context("open_tree")?;
    sys::move_mount(tree.as_fd(), dst.fd.as_fd()).context("bind-mounting the host node")
}

fn setup_ptmx(dev: BorrowedFd<'_>) -> Result<()> {
    match unlinkat(Some(dev.as_raw_fd()), "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).context("removing /dev/ptmx"),
    }
    symlinkat("pts/ptmx", Some(dev.as_raw_fd()), "ptmx").context("symlink /dev/ptmx -> pts/ptmx")
}

fn symlinks(dev: BorrowedFd<'_>) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match symlinkat(target, Some(dev.as_raw_fd()), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("symlink /dev/{name} -> {target}")),
        }
    }
    Ok(())
}

/// After pivot: stdio that is the host's /dev/null (podman's conmon gives the init one for
/// stdin) is replaced by the container's own, as runc's reOpenDevNull does. A file open on
/// a device outside the container's mounts cannot be checkpointed (criu: "Can't lookup
/// mount ... path=/dev/null"). Nothing is done when the container has no char device 1:3
/// at /dev/null.
pub fn reopen_dev_null(root: BorrowedFd<'_>) -> Result<()> {
    use nix::sys::stat::{fstat, major, minor};
    let Ok(null) = path::open_in_root(
        root,
        Path::new("/dev/null"),
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
    ) else {
        return Ok(());
    };
    let st = fstat(null.as_raw_fd()).context("stat /dev/null")?;
    let is_null = |mode: u32, rdev: u64| {
        mode & libc::S_IFMT == libc::S_IFCHR && major(rdev) == 1 && minor(rdev) == 3
    };
    if !is_null(st.st_mode, st.st_rdev) {
        return Ok(());
    }
    for fd in 0..3 {
        match fstat(fd) {
            Ok(s) if is_null(s.st_mode, s.st_rdev) => {
                nix::unistd::dup2(null.as_raw_fd(), fd)
                    .with_context(|| format!("reopening fd {fd} on the container's /dev/null"))?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> oci_spec::runtime::Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn podman_mode_is_masked_and_spec_overrides_default() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","linux":{"devices":[
            {"path":"/dev/null","type":"c","major":1,"minor":3,"fileMode":8630,"uid":5,"gid":6},
            {"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":8630}]}}"#,
        );
        let n = nodes(&s).unwrap();
        assert_eq!(
            n.iter()
                .filter(|x| x.path == Path::new("/dev/null"))
                .count(),
            1
        );
        let null = n.iter().find(|x| x.path == Path::new("/dev/null")).unwrap();
        assert_eq!((null.mode, null.uid, null.gid), (0o666, 5, 6));
        assert_eq!(n.len(), 7);
    }

    #[test]
    fn bind_mounted_dev_is_left_alone() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/dev","type":"bind","source":"/dev","options":["rbind"]}]}"#,
        );
        assert!(!needs_setup(&s));
        let s = spec(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/dev","type":"tmpfs","source":"tmpfs"}]}"#,
        );
        assert!(needs_setup(&s));
    }
}
