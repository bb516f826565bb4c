//! What criu must be told about a container that runc or berth built from an OCI spec:
//! the mounts whose source is outside the container (bind mounts, masked files, device
//! nodes) and the namespaces that were joined by path.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType as T, Spec};

use super::rpc::{ExtMountMap, InheritFd, JoinNamespace};
use crate::rootfs::options;

/// A bind mount of the spec: its destination inside the container (symlinks resolved
/// inside the rootfs, as criu sees the mount point) and its host source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub dest: PathBuf,
    pub source: PathBuf,
}

/// The spec's bind mounts, in order. A relative source is relative to the bundle.
/// Idmapped mounts are refused: criu would restore them as plain binds, with the ids of
/// the disk.
pub fn bind_mounts(spec: &Spec, bundle: &Path, rootfs: &Path) -> Result<Vec<BindMount>> {
    let idmaps = crate::rootfs::idmap::plan(spec)?;
    if let Some(i) = idmaps.iter().position(Option::is_some) {
        bail!(
            "mounts[{i}]: checkpoint and restore of id-mapped mounts are not supported \
             (criu would restore a plain bind mount)"
        );
    }
    let root = crate::rootfs::path::open_root(rootfs)?;
    let mut out = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        let opts = options::parse(m.options().as_deref().unwrap_or(&[]))?;
        if !(opts.is_bind() || m.typ().as_deref() == Some("bind")) {
            continue;
        }
        let Some(src) = m.source() else { continue };
        let dest = Path::new("/").join(m.destination());
        let resolved = crate::rootfs::path::lookup(std::os::fd::AsFd::as_fd(&root), &dest)
            .with_context(|| format!("resolving mount destination {}", dest.display()))?
            .map(|r| Path::new("/").join(r.path))
            .unwrap_or(dest);
        out.push(BindMount {
            dest: resolved,
            source: bundle.join(src),
        });
    }
    Ok(out)
}

fn ext(key: &Path, val: &Path) -> ExtMountMap {
    ExtMountMap {
        key: key.display().to_string(),
        val: val.display().to_string(),
    }
}

/// External mounts for a dump: each bind mount and device node is named by its path in the
/// container; each masked file (a bind of /dev/null) by "/dev/null". `is_dir` tells whether
/// a masked path is a directory in the running container (those are tmpfs mounts, which criu
/// dumps itself).
pub fn dump_mounts(
    spec: &Spec,
    binds: &[BindMount],
    is_dir: impl Fn(&Path) -> bool,
) -> Result<Vec<ExtMountMap>> {
    let mut out: Vec<ExtMountMap> = binds.iter().map(|b| ext(&b.dest, &b.dest)).collect();
    for p in masked(spec) {
        if !is_dir(&p) {
            out.push(ext(&p, Path::new("/dev/null")));
        }
    }
    for n in crate::rootfs::dev::nodes(spec)? {
        out.push(ext(&n.path, &n.path));
    }
    Ok(out)
}

/// External mounts for a restore: the keys written at dump time, mapped to host sources.
pub fn restore_mounts(spec: &Spec, binds: &[BindMount]) -> Result<Vec<ExtMountMap>> {
    let mut out: Vec<ExtMountMap> = binds.iter().map(|b| ext(&b.dest, &b.source)).collect();
    if !masked(spec).is_empty() {
        out.push(ext(Path::new("/dev/null"), Path::new("/dev/null")));
    }
    for n in crate::rootfs::dev::nodes(spec)? {
        if !out.iter().any(|e| Path::new(&e.key) == n.path) {
            out.push(ext(&n.path, &n.path));
        }
    }
    Ok(out)
}

/// The spec's `type: cgroup` mounts as external mounts named by their path in the container,
/// bound at restore onto the restored tree's cgroup: on v2 the mount at the destination (a
/// bind of the container's cgroup directory, or with a cgroup namespace a fresh cgroup2 mount
/// whose root is that directory), on v1 without a cgroup namespace one bind per hierarchy
/// below it (rootfs::cgroupfs). criu 3.17.1 cannot dump the v1 binds (slaves of the host's
/// hierarchies; runc declares them external too), and with `--manage-cgroups-mode ignore` it
/// restores the v2 mount as the host's root cgroup. For a dump `cgroup_of` is `None` (each
/// maps to itself); for a restore it is the restored tree's cgroups (criu's, once moved),
/// whose directories are the sources.
pub fn cgroup_mounts(
    spec: &Spec,
    cgroup_of: Option<&std::collections::BTreeMap<String, PathBuf>>,
) -> Result<Vec<ExtMountMap>> {
    let new_cgroupns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == T::Cgroup && n.path().is_none())
        });
    let dests: Vec<PathBuf> = spec
        .mounts()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .filter(|m| m.typ().as_deref() == Some("cgroup"))
        .map(|m| Path::new("/").join(m.destination()))
        .collect();
    let v2 = crate::cgroups::unified();
    // A v1 container with a cgroup namespace has fresh cgroup mounts, which criu dumps.
    if dests.is_empty() || (new_cgroupns && !v2) {
        return Ok(Vec::new());
    }
    let none = std::collections::BTreeMap::new();
    let cgroup_of_or_none = cgroup_of.unwrap_or(&none);
    // (name below the destination, host source)
    let binds: Vec<(String, Option<PathBuf>)> = if v2 {
        let src = cgroup_of_or_none.get("").map(|rel| {
            Path::new(crate::cgroups::CGROUP_ROOT).join(rel.strip_prefix("/").unwrap_or(rel))
        });
        vec![(String::new(), src)]
    } else {
        crate::rootfs::cgroupfs::v1_binds(cgroup_of_or_none)?
    };
    let mut out = Vec::new();
    for dest in &dests {
        for (name, src) in &binds {
            let key = if name.is_empty() {
                dest.clone()
            } else {
                dest.join(name)
            };
            let val = match (cgroup_of, src) {
                (None, _) => key.clone(),
                (Some(_), Some(src)) => src.clone(),
                (Some(_), None) => bail!(
                    "no cgroup of the restored container for the cgroup mount at {}",
                    key.display()
                ),
            };
            out.push(ext(&key, &val));
        }
    }
    Ok(out)
}

fn masked(spec: &Spec) -> Vec<PathBuf> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default()
        .into_iter()
        .map(PathBuf::from)
        .collect()
}

/// criu's name for a namespace type.
pub fn ns_name(t: T) -> &'static str {
    match t {
        T::Network => "net",
        T::Pid => "pid",
        T::Mount => "mnt",
        T::Ipc => "ipc",
        T::Uts => "uts",
        T::User => "user",
        T::Cgroup => "cgroup",
        T::Time => "time",
    }
}

/// The key criu knows an external namespace by (runc's keys, so images move between runtimes).
pub fn external_key(t: T) -> &'static str {
    match t {
        T::Network => "extRootNetNS",
        _ => "extRootPidNS",
    }
}

/// Namespaces the spec joins by path.
fn joined(spec: &Spec) -> Vec<(T, PathBuf)> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| n.path().clone().map(|p| (n.typ(), p)))
        .collect()
}

/// `--external net[INODE]:extRootNetNS` entries for a dump: a network or pid namespace
/// joined by path stays outside the image and is expected back at restore.
pub fn dump_external_namespaces(spec: &Spec) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (t, path) in joined(spec) {
        if matches!(t, T::Network | T::Pid) {
            let ino = std::fs::metadata(&path)
                .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
                .with_context(|| format!("namespace path {}", path.display()))?;
            out.push(format!("{}[{ino}]:{}", ns_name(t), external_key(t)));
        }
    }
    Ok(out)
}

/// For a restore: the namespace files to pass to criu (network and pid namespaces given by
/// path, as inherited fds) and the other namespaces to join by path.
pub struct RestoreNamespaces {
    pub files: Vec<std::fs::File>,
    pub inherit: Vec<InheritFd>,
    pub join: Vec<JoinNamespace>,
}

pub fn restore_namespaces(spec: &Spec, first_fd: usize) -> Result<RestoreNamespaces> {
    let mut r = RestoreNamespaces {
        files: Vec::new(),
        inherit: Vec::new(),
        join: Vec::new(),
    };
    for (t, path) in joined(spec) {
        match t {
            T::Network | T::Pid => {
                let f = std::fs::File::open(&path).with_context(|| {
                    format!("opening the {} namespace {}", ns_name(t), path.display())
                })?;
                r.inherit.push(InheritFd {
                    key: external_key(t).into(),
                    fd: super::inherit_fd_number(first_fd + r.files.len()),
                });
                r.files.push(f);
            }
            T::Cgroup | T::Mount => bail!(
                "linux.namespaces: criu cannot restore into an existing {} namespace ({})",
                ns_name(t),
                path.display()
            ),
            _ => r.join.push(JoinNamespace {
                ns: ns_name(t).into(),
                ns_file: path.display().to_string(),
                extra_opt: None,
            }),
        }
    }
    Ok(r)
}

/// runc's `--empty-ns` names to a CLONE_NEW* mask. criu can leave only the network
/// namespace empty (it refuses any other in the mask).
pub fn empty_ns_mask(names: &[String]) -> Result<u32> {
    let mut mask = 0;
    for n in names {
        match n.as_str() {
            "network" => mask |= libc::CLONE_NEWNET as u32,
            other => bail!(
                "--empty-ns: {other:?} is not supported: criu can only leave the network namespace empty"
            ),
        }
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idmapped_mounts_are_refused() {
        let spec = crate::spec::parse_config(
            br#"{"ociVersion":"1.2.0","mounts":[{"destination":"/a","source":"/s","options":["bind"]},
                {"destination":"/b","source":"/s","options":["bind"],
                 "uidMappings":[{"containerID":0,"hostID":1,"size":1}],
                 "gidMappings":[{"containerID":0,"hostID":1,"size":1}]}]}"#,
        )
        .unwrap();
        let err = bind_mounts(&spec, Path::new("/nonexistent"), Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("mounts[1]: checkpoint and restore of id-mapped"),
            "{err}"
        );
    }

    #[test]
    fn empty_ns_names() {
        assert_eq!(
            empty_ns_mask(&["network".into()]).unwrap(),
            libc::CLONE_NEWNET as u32
        );
        assert!(empty_ns_mask(&["net".into()]).is_err());
        assert!(empty_ns_mask(&["pid".into()]).is_err());
    }

    #[test]
    fn ext_mounts_for_dump_and_restore() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
               "linux":{"maskedPaths":["/proc/kcore","/proc/acpi"]}}"#,
        )
        .unwrap();
        let binds = vec![BindMount {
            dest: "/data".into(),
            source: "/srv/data".into(),
        }];
        let d = dump_mounts(&spec, &binds, |p| p == Path::new("/proc/acpi")).unwrap();
        let pairs: Vec<(&str, &str)> = d.iter().map(|e| (&*e.key, &*e.val)).collect();
        assert_eq!(pairs[0], ("/data", "/data"));
        assert_eq!(pairs[1], ("/proc/kcore", "/dev/null"));
        assert!(!pairs.iter().any(|p| p.0 == "/proc/acpi"));
        assert!(pairs.contains(&("/dev/null", "/dev/null")), "{pairs:?}");
        let r = restore_mounts(&spec, &binds).unwrap();
        assert_eq!((&*r[0].key, &*r[0].val), ("/data", "/srv/data"));
        assert_eq!((&*r[1].key, &*r[1].val), ("/dev/null", "/dev/null"));
    }
}
