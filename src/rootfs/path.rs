//! Safe resolution of container paths inside the rootfs.
//!
//! Paths inside the container are hostile: a symlink in the rootfs (`/etc/x -> /../../host`)
//! must never lead outside it. Every lookup goes through `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)` from an fd on the root, and missing components are created one
//! at a time through the fd of their (already resolved) parent. Symlinks met on the way are
//! expanded here, inside the root, so that a dangling link gets its target created inside
//! the root rather than failing, and so that `..` is always applied to a real directory.
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};

use crate::sys::mount as sys;

/// How every lookup below the root resolves.
pub const RESOLVE: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
/// How many symlinks one resolution may expand (the kernel's limit).
const MAX_LINKS: usize = 40;

/// What to create for a missing final component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// A path resolved inside the root: an `O_PATH` fd on it and the symlink-free path (absolute,
/// relative to the root) it was found at.
#[derive(Debug)]
pub struct Resolved {
    pub fd: OwnedFd,
    pub path: PathBuf,
    /// The last component was made by this resolution (`ensure`, `create_child`).
    pub created: bool,
}

/// Open a host directory as a root for later lookups (`O_PATH|O_DIRECTORY`).
pub fn open_root(path: &Path) -> Result<OwnedFd> {
    sys::openat(None, path, OFlag::O_PATH | OFlag::O_DIRECTORY, 0)
        .with_context(|| format!("opening {}", path.display()))
}

/// `openat2` below `root` with [`RESOLVE`].
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    sys::openat2(root, rel, flags, 0, RESOLVE)
}

/// The magic-link path through which `fd` can be named in mount(2) and friends.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Resolve `path` inside `root`, creating missing components (directories, and a `kind`
/// for the last one). A non-directory in the middle of the path is an error (ENOTDIR).
pub fn ensure(root: BorrowedFd<'_>, path: &Path, kind: Kind) -> Result<Resolved> {
    match direct(root, path) {
        Ok(found) => Ok(found),
        Err(e) => ensure_walk(root, path, kind, e),
    }
}

/// [`ensure`] for a caller whose [`direct`] open of `path` failed already, with `direct_err`.
pub fn ensure_walk(
    root: BorrowedFd<'_>,
    path: &Path,
    kind: Kind,
    direct_err: Errno,
) -> Result<Resolved> {
    walk(root, path, Some(kind), direct_err == Errno::ENOENT)?
        .context("path vanished while it was created")
}

/// [`create_child`] without opening what it made; its path.
pub fn make_child(dir: &Resolved, name: &OsStr, kind: Kind) -> Result<PathBuf> {
    let path = dir.path.join(name);
    create_entry(dir.fd.as_fd(), name, kind)
        .with_context(|| format!("creating {}", path.display()))?;
    Ok(path)
}

/// Create `name` (a `kind`) in the directory `dir` resolved already, and open it: for a
/// directory berth made itself and nothing else can have written to yet (the tmpfs of a
/// v1 `cgroup` mount), where no walk from the root is needed.
pub fn create_child(dir: &Resolved, name: &OsStr, kind: Kind) -> Result<Resolved> {
    let path = make_child(dir, name, kind)?;
    let fd = descend(dir.fd.as_fd(), name, kind != Kind::Dir)
        .with_context(|| format!("opening {}", path.display()))?;
    Ok(Resolved {
        fd,
        path,
        created: true,
    })
}

/// Resolve an existing `path` inside `root`; `None` when a component does not exist.
pub fn lookup(root: BorrowedFd<'_>, path: &Path) -> Result<Option<Resolved>> {
    match direct(root, path) {
        Ok(found) => Ok(Some(found)),
        // A component is missing: the walk would stop at the same one (see `direct`).
        Err(Errno::ENOENT) => Ok(None),
        Err(_) => walk(root, path, None, false),
    }
}

/// The file type of `path`'s last component inside `root`, not following it; `None` when
/// it (or its parent) does not exist. Symlinks in the parent are resolved inside the root.
pub fn type_nofollow(root: BorrowedFd<'_>, path: &Path) -> Result<Option<SFlag>> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(Some(SFlag::S_IFDIR)); // the root itself
    };
    let Some(dir) = lookup(root, parent)? else {
        return Ok(None);
    };
    match fstatat(Some(dir.fd.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("stat of {}", path.display())),
    }
}

fn components(path: &Path) -> Vec<OsString> {
    let mut out: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    out.reverse(); // used as a stack
    out
}

/// One `openat2` for the common case, a path that exists and has no symlink and no `..` in
/// it: `RESOLVE_NO_SYMLINKS` makes the kernel refuse any link on the way, so what it opens is
/// what the walk below would find, at the same symlink-free path. Anything else (a missing
/// component, a link, a non-directory in the middle) is left to the walk, which creates,
/// expands or reports it.
///
/// `ENOENT` means that a component does not exist: every component before it was reached
/// without a link (a link is `ELOOP`), so the walk would stop at the same one. A path with
/// `..` is not tried (`EXDEV`).
pub fn direct(root: BorrowedFd<'_>, path: &Path) -> nix::Result<Resolved> {
    let mut clean = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => clean.push(n),
            Component::ParentDir => return Err(Errno::EXDEV),
            _ => {}
        }
    }
    let rel = clean.strip_prefix("/").map_err(|_| Errno::EXDEV)?;
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let resolve = RESOLVE | libc::RESOLVE_NO_SYMLINKS;
    let fd = sys::openat2(root, rel, OFlag::O_PATH, 0, resolve)?;
    Ok(Resolved {
        fd,
        path: clean,
        created: false,
    })
}

/// The walk, for a path [`direct`] did not open; `missing` when that open said `ENOENT`
/// (then, when the parent opens directly, the last component is not looked at before it is
/// created).
fn walk(
    root: BorrowedFd<'_>,
    path: &Path,
    create: Option<Kind>,
    missing: bool,
) -> Result<Option<Resolved>> {
    let mut todo = components(path);
    let mut done = PathBuf::from("/");
    let mut links = 0;
    let mut created = false;
    // The fd of `done`, kept while the walk goes down; dropped when `done` changes any
    // other way (`..`, an absolute link), and then reopened from the root.
    let mut at: Option<OwnedFd> = None;
    // Most often only the last component is missing: start from its parent when that opens
    // directly.
    let mut leaf_missing = false;
    if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
        if let Ok(found) = direct(root, parent) {
            todo = vec![name.to_os_string()];
            done = found.path;
            at = Some(found.fd);
            leaf_missing = missing;
        }
    }
    while let Some(name) = todo.pop() {
        if name == ".." {
            done.pop();
            at = None;
            continue;
        }
        let last = todo.is_empty();
        let parent = match at.take() {
            Some(fd) => fd,
            None => open_in_root(root, &done, OFlag::O_PATH | OFlag::O_DIRECTORY)
                .with_context(|| format!("opening {}", done.display()))?,
        };
        let here = done.join(&name);
        let st = if std::mem::take(&mut leaf_missing) {
            Err(Errno::ENOENT)
        } else {
            fstatat(
                Some(parent.as_raw_fd()),
                name.as_os_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
        };
        match st {
            Ok(st) => {
                let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
                if fmt == SFlag::S_IFLNK {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Errno::ELOOP)
                            .with_context(|| format!("resolving {}", path.display()));
                    }
                    let target = nix::fcntl::readlinkat(Some(parent.as_raw_fd()), name.as_os_str())
                        .with_context(|| format!("reading link {}", here.display()))?;
                    let target = PathBuf::from(target);
                    if target.is_absolute() {
                        done = PathBuf::from("/");
                    } else {
                        at = Some(parent);
                    }
                    todo.extend(components(&target));
                } else if fmt == SFlag::S_IFDIR || last {
                    at = descend(parent.as_fd(), &name, last);
                    done = here;
                } else {
                    return Err(Errno::ENOTDIR)
                        .with_context(|| format!("resolving {}", here.display()));
                }
            }
            Err(Errno::ENOENT) => {
                let Some(kind) = create else { return Ok(None) };
                create_entry(parent.as_fd(), &name, if last { kind } else { Kind::Dir })
                    .with_context(|| format!("creating {}", here.display()))?;
                created = last;
                at = descend(parent.as_fd(), &name, last);
                done = here;
            }
            Err(e) => return Err(e).with_context(|| format!("resolving {}", here.display())),
        }
    }
    let fd = match at {
        Some(fd) => fd,
        None => open_in_root(root, &done, OFlag::O_PATH)
            .with_context(|| format!("opening {}", done.display()))?,
    };
    Ok(Some(Resolved {
        fd,
        path: done,
        created,
    }))
}

/// The fd of directory `name` under `parent`, for the next step of the walk (or of the last
/// component, of any type): opened beneath `parent` with no link followed, so a component
/// swapped for a symlink since its `fstatat` is not taken. `None` (the walk then reopens
/// from the root, which expands or refuses it) when that open fails.
fn descend(parent: BorrowedFd<'_>, name: &OsStr, last: bool) -> Option<OwnedFd> {
    let flags = if last {
        OFlag::O_PATH
    } else {
        OFlag::O_PATH | OFlag::O_DIRECTORY
    };
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
    sys::openat2(parent, Path::new(name), flags, 0, resolve).ok()
}

fn create_entry(parent: BorrowedFd<'_>, name: &OsStr, kind: Kind) -> nix::Result<()> {
    let res = match kind {
        Kind::Dir => mkdirat(
            Some(parent.as_raw_fd()),
            name,
            Mode::from_bits_truncate(0o755),
        ),
        Kind::File => sys::openat(
            Some(parent),
            Path::new(name),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW,
            0o644,
        )
        .map(drop),
    };
    match res {
        Err(Errno::EEXIST) => Ok(()), // raced with someone; the next lookup checks it
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-path-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("root")).unwrap();
        d
    }

    #[test]
    fn dangling_absolute_symlink_stays_inside() {
        let d = tmp("dangling");
        let root = d.join("root");
        std::fs::create_dir(root.join("etc")).unwrap();
        symlink("/../../host", root.join("etc/x")).unwrap();
        let fd = open_root(&root).unwrap();
        let r = ensure(fd.as_fd(), Path::new("/etc/x/sub"), Kind::File).unwrap();
        assert_eq!(r.path, Path::new("/host/sub"));
        assert!(root.join("host/sub").is_file());
        assert!(!d.join("host").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn existing_paths_resolve_link_free_whichever_route() {
        let d = tmp("existing");
        let root = d.join("root");
        std::fs::create_dir_all(root.join("real/sub")).unwrap();
        symlink("/real", root.join("link")).unwrap();
        let fd = open_root(&root).unwrap();
        // No link on the way: the direct open.
        let plain = lookup(fd.as_fd(), Path::new("/real/./sub"))
            .unwrap()
            .unwrap();
        assert_eq!(plain.path, Path::new("/real/sub"));
        // A link on the way: the walk, which names what the link leads to.
        let linked = lookup(fd.as_fd(), Path::new("/link/sub")).unwrap().unwrap();
        assert_eq!(linked.path, Path::new("/real/sub"));
        // Only the last component missing, under a link: created where the link leads.
        let made = ensure(fd.as_fd(), Path::new("/link/sub/new"), Kind::File).unwrap();
        assert_eq!(made.path, Path::new("/real/sub/new"));
        assert!(root.join("real/sub/new").is_file());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn relative_dotdot_symlink_is_clamped() {
        let d = tmp("dotdot");
        let root = d.join("root");
        symlink("../../../../escape", root.join("l")).unwrap();
        let fd = open_root(&root).unwrap();
        let r = ensure(fd.as_fd(), Path::new("l"), Kind::Dir).unwrap();
        assert_eq!(r.path, Path::new("/escape"));
        assert!(root.join("escape").is_dir());
        assert!(!d.join("escape").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn lookup_missing_is_none_and_file_in_middle_is_enotdir() {
        let d = tmp("missing");
        let root = d.join("root");
        std::fs::write(root.join("f"), b"").unwrap();
        let fd = open_root(&root).unwrap();
        assert!(lookup(fd.as_fd(), Path::new("/nope/x")).unwrap().is_none());
        let err = ensure(fd.as_fd(), Path::new("/f/x"), Kind::Dir).unwrap_err();
        assert_eq!(
            err.root_cause().downcast_ref::<Errno>(),
            Some(&Errno::ENOTDIR)
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn symlink_loop_is_eloop() {
        let d = tmp("loop");
        let root = d.join("root");
        symlink("b", root.join("a")).unwrap();
        symlink("a", root.join("b")).unwrap();
        let fd = open_root(&root).unwrap();
        let err = ensure(fd.as_fd(), Path::new("/a"), Kind::Dir).unwrap_err();
        assert_eq!(
            err.root_cause().downcast_ref::<Errno>(),
            Some(&Errno::ELOOP)
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
