//! `exec --cgroup [CONTROLLER[,CONTROLLER]:]PATH`: run an exec'd process in an existing
//! sub-cgroup of the container's, as runc does. A PATH without a controller applies to every
//! hierarchy (on v2 it is the only form; on a hybrid host it covers the cgroup2 group too);
//! with controllers, to those hierarchies only, the others keeping the container's cgroup.
//! The result is the container's [`CgroupState`] with the directories moved down, to build a
//! manager from (its `entry` places the process; it owns nothing).
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Result};

use super::{CgroupState, CommonState};

/// The parsed `--cgroup` arguments.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SubCgroups {
    /// PATH given without a controller: every hierarchy.
    pub all: Option<String>,
    /// Controller → PATH.
    pub per: BTreeMap<String, String>,
}

impl SubCgroups {
    /// Parses the arguments with runc's rules and words.
    pub fn parse(args: &[String]) -> Result<SubCgroups> {
        let mut s = SubCgroups::default();
        for arg in args {
            match arg.split_once(':') {
                Some((ctrls, path)) => {
                    for ctrl in ctrls.split(',') {
                        if ctrl.is_empty() {
                            bail!("invalid --cgroup argument: {arg} (empty <controller> prefix)");
                        }
                        if s.per.insert(ctrl.to_string(), path.to_string()).is_some() {
                            bail!("invalid --cgroup argument(s): controller {ctrl} specified multiple times");
                        }
                    }
                }
                None => {
                    if s.all.replace(arg.clone()).is_some() {
                        bail!("invalid --cgroup argument(s): multiple <controller>-less prefixes given");
                    }
                }
            }
        }
        Ok(s)
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.per.is_empty()
    }

    /// The container's cgroup state with the sub-cgroups in place of its directories. Each
    /// directory must exist: a process joins a sub-cgroup, it does not make one.
    pub fn apply_to(&self, state: &CgroupState) -> Result<CgroupState> {
        let out = match state {
            CgroupState::V1 { paths, unified, .. } => {
                let mut moved = paths.clone();
                if let Some(sub) = &self.all {
                    for dir in moved.values_mut() {
                        *dir = below(dir, sub)?;
                    }
                }
                for (ctrl, sub) in &self.per {
                    let Some(base) = paths.get(ctrl) else {
                        bail!(
                            "invalid --cgroup argument: unknown controller {ctrl} (the container's are {})",
                            paths.keys().cloned().collect::<Vec<_>>().join(", ")
                        );
                    };
                    // Controllers sharing a hierarchy (cpu,cpuacct) share a directory.
                    let dir = below(base, sub)?;
                    for (other, _) in paths.iter().filter(|(_, d)| *d == base) {
                        let already = self.per.get(other).filter(|s| *s != sub);
                        if let Some(theirs) = already {
                            bail!("invalid --cgroup argument(s): {ctrl} and {other} share a hierarchy but were given {sub} and {theirs}");
                        }
                        moved.insert(other.clone(), dir.clone());
                    }
                }
                let unified = match (unified, &self.all) {
                    (Some(u), Some(sub)) => Some(below(u, sub)?),
                    (u, _) => u.clone(),
                };
                CgroupState::V1 {
                    paths: moved,
                    unified,
                    common: CommonState::default(),
                }
            }
            CgroupState::V2 { path, .. } => {
                if let Some(ctrl) = self.per.keys().next() {
                    bail!("invalid --cgroup argument: {ctrl}: a controller prefix is for cgroup v1 (this host runs cgroup v2)");
                }
                let sub = self.all.as_deref().unwrap_or("");
                CgroupState::V2 {
                    path: below(path, sub)?,
                    common: CommonState::default(),
                }
            }
            // exec joins the unit's cgroup directly.
            CgroupState::Systemd(st) => return self.apply_to(&st.cgroupfs),
            CgroupState::Disabled => {
                bail!("--cgroup: the container has no cgroup (it runs rootless without one)")
            }
        };
        for dir in dirs(&out) {
            if !dir.is_dir() {
                bail!(
                    "--cgroup: sub-cgroup {} does not exist (create it in the container's cgroup first)",
                    dir.display()
                );
            }
        }
        Ok(out)
    }
}

fn dirs(state: &CgroupState) -> Vec<&Path> {
    match state {
        CgroupState::V1 { paths, unified, .. } => paths
            .values()
            .chain(unified.iter())
            .map(PathBuf::as_path)
            .collect(),
        CgroupState::V2 { path, .. } => vec![path.as_path()],
        _ => Vec::new(),
    }
}

/// `base` joined with `sub` as Go's path.Join cleans it (a leading `/` is still below
/// `base`); refused when `..` climbs out of `base`.
pub fn below(base: &Path, sub: &str) -> Result<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in Path::new(sub).components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::ParentDir => {
                if parts.pop().is_none() {
                    bail!("{sub} is not a sub cgroup path");
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    let mut out = base.to_path_buf();
    out.extend(parts);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_as_runc() {
        let s = SubCgroups::parse(&args(&["cpu,memory:a/b", "c"])).unwrap();
        assert_eq!(s.all.as_deref(), Some("c"));
        assert_eq!(s.per["cpu"], "a/b");
        assert_eq!(s.per["memory"], "a/b");
        let err = |a: &[&str]| format!("{:#}", SubCgroups::parse(&args(a)).unwrap_err());
        assert!(err(&[":x"]).contains("empty <controller> prefix"));
        assert!(err(&["cpu:x", "cpu:y"]).contains("controller cpu specified multiple times"));
        assert!(err(&["x", "y"]).contains("multiple <controller>-less prefixes"));
    }

    #[test]
    fn stays_below_the_container() {
        let b = Path::new("/sys/fs/cgroup/pids/c1");
        assert_eq!(below(b, "a/./b//c").unwrap(), b.join("a/b/c"));
        assert_eq!(below(b, "/a").unwrap(), b.join("a"));
        assert_eq!(below(b, "a/../b").unwrap(), b.join("b"));
        assert_eq!(below(b, "").unwrap(), b);
        assert!(below(b, "../c2").is_err());
        assert!(below(b, "a/../../c1x").is_err());
    }
}
