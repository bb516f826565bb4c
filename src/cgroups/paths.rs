//! Where a container's cgroup lives: the cgroup mounts (from /proc/self/mountinfo), the
//! runtime's own cgroup (from /proc/self/cgroup), `linux.cgroupsPath` resolution and systemd's
//! slice layout.
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::mountinfo::{self, MountInfo};

/// cgroup v1 controllers the kernel may mount as (part of) a hierarchy.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "pids",
    "hugetlb",
    "rdma",
    "misc",
];

/// A mounted cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Controllers (and `name=X` for named hierarchies) bound to it.
    pub controllers: Vec<String>,
    pub mountpoint: PathBuf,
    /// The cgroup the mount shows as its root (not "/" inside a container's cgroup namespace
    /// without a fresh mount).
    pub root: PathBuf,
}

/// The cgroup mounts found in the mount table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupMounts {
    pub v1: Vec<V1Hierarchy>,
    /// Mountpoint and root of a cgroup2 mount (the whole tree on v2, `unified` on hybrid).
    pub unified: Option<(PathBuf, PathBuf)>,
}

/// Picks the cgroup mounts out of a mount table; the first visible mount of a hierarchy wins
/// (one hidden under a later mount at the same place does not count).
pub fn cgroup_mounts(entries: &[MountInfo]) -> CgroupMounts {
    let mut out = CgroupMounts::default();
    for m in mountinfo::visible(entries) {
        match m.fstype.as_str() {
            "cgroup" => {
                let controllers: Vec<String> = m
                    .super_options
                    .iter()
                    .filter(|o| V1_CONTROLLERS.contains(&o.as_str()) || o.starts_with("name="))
                    .cloned()
                    .collect();
                let seen = out
                    .v1
                    .iter()
                    .any(|h| h.controllers.iter().any(|c| controllers.contains(c)));
                if !controllers.is_empty() && !seen {
                    out.v1.push(V1Hierarchy {
                        controllers,
                        mountpoint: m.mount_point.clone(),
                        root: m.root.clone(),
                    });
                }
            }
            "cgroup2" if out.unified.is_none() => {
                out.unified = Some((m.mount_point.clone(), m.root.clone()));
            }
            _ => {}
        }
    }
    out
}

/// The cgroup mounts of this process's mount namespace (read once per process).
pub fn host_cgroup_mounts() -> Result<CgroupMounts> {
    Ok(cgroup_mounts(mountinfo::backed_once()?))
}

/// This process's cgroups, from /proc/self/cgroup text: controller (or `name=X`) → path; the
/// v2 entry (`0::/path`) is keyed by the empty string.
pub fn parse_proc_cgroup(text: &str) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if ctrls.is_empty() {
            out.insert(String::new(), PathBuf::from(path));
        }
        for c in ctrls.split(',').filter(|c| !c.is_empty()) {
            out.insert(c.to_string(), PathBuf::from(path));
        }
    }
    out
}

/// Reads /proc/self/cgroup.
pub fn own_cgroups() -> Result<BTreeMap<String, PathBuf>> {
    let text = crate::sys::fdio::read_text(Path::new("/proc/self/cgroup"))
        .context("reading /proc/self/cgroup")?;
    Ok(parse_proc_cgroup(&text))
}

/// `linux.cgroupsPath` after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupPath {
    /// Relative to each hierarchy's root (config gave an absolute path, or the default).
    FromRoot(PathBuf),
    /// Relative to the runtime's own cgroup in each hierarchy.
    FromOwn(PathBuf),
}

/// Validates `linux.cgroupsPath` (no `..`, not empty) and defaults it to `/berth/<id>`.
pub fn resolve_cgroups_path(path: Option<&Path>, id: &str) -> Result<CgroupPath> {
    let Some(path) = path.filter(|p| !p.as_os_str().is_empty()) else {
        if id.is_empty() || id.contains('/') || id == "." || id == ".." {
            bail!("container id {id:?} cannot name a cgroup");
        }
        return Ok(CgroupPath::FromRoot(PathBuf::from("berth").join(id)));
    };
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                bail!("linux.cgroupsPath {path:?}: \"..\" is not allowed")
            }
        }
    }
    if rel.as_os_str().is_empty() {
        bail!("linux.cgroupsPath {path:?} names the root cgroup; a container needs its own cgroup");
    }
    Ok(if path.is_absolute() {
        CgroupPath::FromRoot(rel)
    } else {
        CgroupPath::FromOwn(rel)
    })
}

/// The directory for `path` in a hierarchy mounted at `mountpoint` whose mount root is
/// `mount_root`, given the runtime's own cgroup `own` in that hierarchy.
pub fn dir_in_hierarchy(
    mountpoint: &Path,
    mount_root: &Path,
    own: Option<&Path>,
    path: &CgroupPath,
) -> PathBuf {
    match path {
        CgroupPath::FromRoot(rel) => mountpoint.join(rel),
        CgroupPath::FromOwn(rel) => {
            let own = own.unwrap_or(Path::new("/"));
            let own = own.strip_prefix(mount_root).unwrap_or(own);
            let own = own.strip_prefix("/").unwrap_or(own);
            mountpoint.join(own).join(rel)
        }
    }
}

/// Expands a systemd slice name the way systemd lays it out in the cgroup tree:
/// `a-b.slice` → `a.slice/a-b.slice`; `-.slice` is the root.
pub fn expand_slice(slice: &str) -> Result<PathBuf> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        bail!("invalid systemd slice {slice:?}: must end in \".slice\"");
    };
    if slice.contains('/') {
        bail!("invalid systemd slice {slice:?}: must not contain \"/\"");
    }
    if stem == "-" {
        return Ok(PathBuf::new());
    }
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        bail!("invalid systemd slice {slice:?}");
    }
    let mut out = PathBuf::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        out.push(format!("{prefix}.slice"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 /sub /sys/fs/cgroup/cpu\\040acct rw - cgroup cgroup rw,cpuacct,cpu_extra
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 31 0:32 / /mnt/again rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn finds_hierarchies_in_mountinfo() {
        let m = cgroup_mounts(&mountinfo::parse(HYBRID));
        let names: Vec<_> = m.v1.iter().map(|h| h.controllers.join(",")).collect();
        assert_eq!(names, vec!["cpu", "memory", "cpuacct", "name=systemd"]);
        assert_eq!(m.v1[2].mountpoint, PathBuf::from("/sys/fs/cgroup/cpu acct"));
        assert_eq!(m.v1[2].root, PathBuf::from("/sub"));
        assert_eq!(
            m.unified,
            Some((PathBuf::from("/sys/fs/cgroup/unified"), PathBuf::from("/")))
        );
    }

    #[test]
    fn parses_proc_self_cgroup() {
        let c = parse_proc_cgroup("4:memory:/a/b\n2:cpu,cpuacct:/\n1:name=systemd:/s\n0::/u\n");
        assert_eq!(c["memory"], PathBuf::from("/a/b"));
        assert_eq!(c["cpuacct"], PathBuf::from("/"));
        assert_eq!(c["name=systemd"], PathBuf::from("/s"));
        assert_eq!(c[""], PathBuf::from("/u"));
    }

    #[test]
    fn resolves_paths() {
        assert_eq!(
            resolve_cgroups_path(None, "c1").unwrap(),
            CgroupPath::FromRoot("berth/c1".into())
        );
        assert_eq!(
            resolve_cgroups_path(Some(Path::new("/x/y")), "c1").unwrap(),
            CgroupPath::FromRoot("x/y".into())
        );
        assert_eq!(
            resolve_cgroups_path(Some(Path::new("x/./y")), "c1").unwrap(),
            CgroupPath::FromOwn("x/y".into())
        );
        assert!(resolve_cgroups_path(Some(Path::new("/x/../../etc")), "c1").is_err());
        assert!(resolve_cgroups_path(Some(Path::new("/")), "c1").is_err());
        assert!(resolve_cgroups_path(None, "../x").is_err());
    }

    #[test]
    fn dirs_in_hierarchy() {
        let mp = Path::new("/sys/fs/cgroup/memory");
        let abs = CgroupPath::FromRoot("a/b".into());
        assert_eq!(
            dir_in_hierarchy(mp, Path::new("/"), None, &abs),
            mp.join("a/b")
        );
        let rel = CgroupPath::FromOwn("c".into());
        let own = Path::new("/user/me");
        assert_eq!(
            dir_in_hierarchy(mp, Path::new("/"), Some(own), &rel),
            mp.join("user/me/c")
        );
        // The mount shows /user as its root: strip it.
        assert_eq!(
            dir_in_hierarchy(mp, Path::new("/user"), Some(own), &rel),
            mp.join("me/c")
        );
    }

    #[test]
    fn systemd_names() {
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            PathBuf::from("a.slice/a-b.slice/a-b-c.slice")
        );
        assert_eq!(expand_slice("-.slice").unwrap(), PathBuf::new());
        assert!(expand_slice("a--b.slice").is_err());
        assert!(expand_slice("a").is_err());
    }
}
