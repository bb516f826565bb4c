//! Control groups: one [`Manager`] trait over cgroup v1 (a hierarchy per controller) and
//! cgroup v2 (the unified tree).
//!
//! Contract used by the create path (`container::create`) and the later commands:
//! 1. [`new_manager`] picks v1 or v2 from the host ([`detect`]) and resolves
//!    `linux.cgroupsPath` (absolute: under each hierarchy's root; relative: under the runtime's
//!    own cgroup; none: `/berth/<id>`). It has no side effect.
//! 2. `create()` makes the directories (idempotent). A process about to be forked enters
//!    through `entry()` ([`entry`]: CLONE_INTO_CGROUP on cgroup2, the child's own write to
//!    each v1 `tasks` file, the rest by pid); `apply(pid)` moves a running one. `set(&resources)`
//!    writes the limits, devices included (the default allowlist is added here). Each error
//!    names the file and the value.
//! 3. After `create()`, store `manager.state()` (serde) in state.json; [`load_manager`] rebuilds
//!    the manager from it for `delete`, `kill --all`, `pause`, `resume`, `ps`, `update`,
//!    `events`.
//! 4. `destroy()` removes the directories `create()` made, leaf subtrees first; it kills
//!    nothing (call `kill_all(SIGKILL)` first).
//!
//! Hybrid hosts (v1 controllers plus a cgroup2 tree, usually at /sys/fs/cgroup/unified) are
//! driven as v1, and the container also joins the cgroup2 tree, as runc does.
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

pub mod devices;
pub mod disabled;
pub mod entry;
pub mod fs;
pub mod paths;
pub mod shared;
pub mod stats;
pub mod sub;
pub mod systemd;
pub mod v1;
pub mod v2;

pub use entry::{Entry, Ways};
pub use oci_spec::runtime::LinuxResources;
pub use stats::Stats;

/// What the create path knows about the cgroup it wants.
#[derive(Debug, Clone, Default)]
pub struct CgroupConfig {
    /// `linux.cgroupsPath` as written in config.json.
    pub cgroups_path: Option<PathBuf>,
    /// The container id (used for the default path).
    pub id: String,
    /// `--systemd-cgroup` was given.
    pub systemd: bool,
    /// The runtime runs rootless (errors creating cgroups become warnings).
    pub rootless: bool,
    /// `linux.resources` (the systemd driver starts its unit with them).
    pub resources: Option<LinuxResources>,
    /// The spec's annotations (the systemd driver reads `org.systemd.property.*`).
    pub annotations: HashMap<String, String>,
}

/// One container's cgroup(s). Object safe; not `Sync` (the runtime is single-threaded).
pub trait Manager {
    /// Makes every directory (idempotent). On v1, copies cpuset.cpus/mems down from the parent
    /// into new cpuset cgroups so a process can be attached. Rootless: a permission error is a
    /// warning and the manager becomes a no-op (then `set` refuses any resource request).
    /// Returns a [`Made`] saying whether this call made every leaf directory itself.
    fn create(&self) -> Result<Made>;
    /// Moves `pid` into the cgroup (every hierarchy on v1), by pid: on v1 and v2 this may
    /// wait for an RCU grace period (see [`entry`]); a process about to be forked enters
    /// through [`Manager::entry`] instead.
    fn apply(&self, pid: i32) -> Result<()>;
    /// Prepares, before a fork, the entry of the child into the cgroup: CLONE_INTO_CGROUP on
    /// cgroup2, the child's own write to each v1 hierarchy's `tasks`, the rest by pid after
    /// the fork ([`Entry::forked`]), as far as `ways` allows.
    fn entry(&self, ways: Ways) -> Entry;
    /// Writes every limit in `r`, devices included (spec rules, then the default allowlist).
    /// The device list is always applied as a whole, so for `update` pass the container's
    /// resources merged with the update (as runc does), not the update alone.
    fn set(&self, r: &LinuxResources) -> Result<()>;
    /// Every pid in the cgroup and its child cgroups, sorted.
    fn pids(&self) -> Result<Vec<i32>>;
    /// Every pid in any of the container's cgroup directories (on v1 a process may sit in
    /// the container's cgroup of one hierarchy only), sorted.
    fn pids_anywhere(&self) -> Result<Vec<i32>> {
        self.pids()
    }
    /// Freezes every task; returns once the kernel reports the cgroup frozen.
    fn freeze(&self) -> Result<()>;
    fn thaw(&self) -> Result<()>;
    fn is_frozen(&self) -> Result<bool>;
    /// Sends `sig` to every process: `cgroup.kill` on v2 for SIGKILL; otherwise the cgroup is
    /// frozen, each pid signalled, and the cgroup thawed (no fork can escape meanwhile).
    fn kill_all(&self, sig: Signal) -> Result<()>;
    /// Removes the directories `create()` made (leaf subtrees bottom-up, retrying EBUSY
    /// briefly, then the parents it made if nobody else uses them).
    fn destroy(&self) -> Result<()>;
    fn stats(&self) -> Result<Stats>;
    /// How many processes the kernel's OOM killer has killed in the cgroup so far.
    fn oom_kills(&self) -> Result<u64>;
    /// The cgroup directory (v2) or directories (v1), for messages.
    fn path(&self) -> String;
    /// What to store in state.json to rebuild this manager with [`load_manager`].
    fn state(&self) -> CgroupState;
}

/// What [`Manager::create`] made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// Every leaf directory was made by this call: it holds no process and no child cgroup.
    New,
    /// Some leaf already existed (or the cgroup is made elsewhere, by systemd): it may be in
    /// use.
    Existing,
}

impl Made {
    /// Of a leaf `dir` and the directories `fs::mkdir_all` made for it.
    pub(crate) fn leaf(dir: &Path, made: &[PathBuf]) -> Made {
        match made.last().is_some_and(|m| m == dir) {
            true => Made::New,
            false => Made::Existing,
        }
    }

    /// `New` only if both are.
    pub(crate) fn and(self, other: Made) -> Made {
        match (self, other) {
            (Made::New, Made::New) => Made::New,
            _ => Made::Existing,
        }
    }
}

/// A container's cgroup must hold no process and must not be frozen before its init goes
/// in: in a frozen cgroup the init would stop mid-setup and create would wait for it
/// forever; in a used one, another workload would share its limits and its `kill --all`.
/// runc refuses both. A cgroup `create` has just made (`Made::New`) holds no process, so
/// only the freezer is read (a new v1 cgroup under a frozen parent starts frozen).
pub fn check_usable(m: &dyn Manager, made: Made) -> Result<()> {
    let pids = match made {
        Made::New => Vec::new(),
        Made::Existing => m
            .pids_anywhere()
            .with_context(|| format!("listing the processes of cgroup {}", m.path()))?,
    };
    if let Some(first) = pids.first() {
        bail!(
            "cgroup {} is not empty: it holds {} process(es) (pid {first}); a container needs a cgroup of its own",
            m.path(),
            pids.len()
        );
    }
    // No freezer at all is not frozen.
    if m.is_frozen().unwrap_or(false) {
        bail!(
            "cgroup {} is frozen: thaw it (or pick another cgroupsPath) before creating a container in it",
            m.path()
        );
    }
    Ok(())
}

/// A manager's resolved paths, serialisable for state.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "version", rename_all = "lowercase")]
pub enum CgroupState {
    V1 {
        /// Controller (or `name=X`) → cgroup directory. Controllers sharing a hierarchy share a
        /// directory.
        paths: BTreeMap<String, PathBuf>,
        /// The cgroup2 directory joined on a hybrid host.
        unified: Option<PathBuf>,
        #[serde(flatten)]
        common: CommonState,
    },
    V2 {
        path: PathBuf,
        #[serde(flatten)]
        common: CommonState,
    },
    /// No cgroup: a rootless caller could not create one.
    Disabled,
    /// A systemd unit (`--systemd-cgroup`) and the cgroupfs manager of its cgroup.
    Systemd(systemd::SystemdState),
}

/// State shared by both versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommonState {
    /// Directories `create()` made, top-down (what `destroy()` removes).
    #[serde(default)]
    pub created: Vec<PathBuf>,
    #[serde(default)]
    pub rootless: bool,
    /// The leaf sits in berth's own default parent (`/berth`), shared by the containers
    /// without a cgroupsPath; it is never removed (see `Tracker::destroy`).
    #[serde(default)]
    pub default_parent: bool,
}

/// Mutable bookkeeping a manager keeps between `create()` and `destroy()`.
#[derive(Debug, Default)]
pub(crate) struct Tracker(RefCell<CommonState>);

impl Tracker {
    pub(crate) fn new(c: CommonState) -> Tracker {
        Tracker(RefCell::new(c))
    }
    pub(crate) fn get(&self) -> CommonState {
        self.0.borrow().clone()
    }
    pub(crate) fn record_created(&self, dirs: Vec<PathBuf>) {
        let mut s = self.0.borrow_mut();
        for d in dirs {
            add_once(&mut s.created, d);
        }
    }
    /// Removes leaves (with their subtrees), then the parents this manager made.
    pub(crate) fn destroy(&self, leaves: &[&Path]) -> Result<()> {
        let (created, default_parent) = {
            let s = self.0.borrow();
            (s.created.clone(), s.default_parent)
        };
        let made: Vec<&Path> = created.iter().map(PathBuf::as_path).collect();
        for leaf in leaves {
            if holds(&made, leaf) {
                fs::remove_cgroup_tree(leaf)?;
            }
        }
        // berth's shared default parent stays, as the parents of runc's and crun's cgroups
        // do: on v1, making and removing it again for every container cost as much as the
        // container's own cgroups (about 4 ms a container here), and parallel creates raced
        // with the delete that removed it.
        let shared: Vec<&Path> = if default_parent {
            leaves.iter().filter_map(|l| l.parent()).collect()
        } else {
            Vec::new()
        };
        let parents: Vec<PathBuf> = made
            .into_iter()
            .filter(|c| !holds(leaves, c) && !holds(&shared, c))
            .map(Path::to_path_buf)
            .collect();
        fs::remove_created_parents(&parents)
    }
}

/// Engines write 0 (and "" for cpusets) for "not set": docker's config has `cpu.shares: 0`
/// and `blockIO.weight: 0`, and its `update` sends every field, zeros included. runc reads
/// these as unset; so do we, in this one place, before anything is written.
pub fn without_unset(r: &LinuxResources) -> Result<LinuxResources> {
    let mut v = serde_json::to_value(r)?;
    let zero_means_unset: [(&str, &[&str]); 3] = [
        (
            "memory",
            &["limit", "reservation", "swap", "kernel", "kernelTCP"],
        ),
        (
            "cpu",
            &[
                "shares",
                "quota",
                "period",
                "realtimeRuntime",
                "realtimePeriod",
            ],
        ),
        ("blockIO", &["weight", "leafWeight"]),
    ];
    for (section, keys) in zero_means_unset {
        if let Some(obj) = v
            .get_mut(section)
            .and_then(serde_json::Value::as_object_mut)
        {
            obj.retain(|k, val| !(keys.contains(&k.as_str()) && val.as_i64() == Some(0)));
            if section == "cpu" {
                obj.retain(|k, val| !((k == "cpus" || k == "mems") && val.as_str() == Some("")));
            }
        }
    }
    Ok(serde_json::from_value(v)?)
}

/// Whether `r` asks for any limit (devices aside: rootless containers get bind-mounted device
/// nodes, and the default allowlist is always present).
pub fn resources_requested(r: &LinuxResources) -> bool {
    r.memory().is_some()
        || r.cpu().is_some()
        || r.pids().is_some()
        || r.block_io().is_some()
        || r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())
        || r.network().is_some()
        || r.rdma().as_ref().is_some_and(|m| !m.is_empty())
        || r.unified().as_ref().is_some_and(|m| !m.is_empty())
}

/// Which cgroup version the host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// v1 controllers (possibly with a cgroup2 tree beside them: hybrid).
    V1,
    /// /sys/fs/cgroup is cgroup2.
    V2,
}

/// The cgroup filesystem root.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// v2 when /sys/fs/cgroup is a cgroup2 filesystem, v1 otherwise.
pub fn detect() -> Result<Version> {
    let st =
        nix::sys::statfs::statfs(CGROUP_ROOT).with_context(|| format!("statfs {CGROUP_ROOT}"))?;
    Ok(
        if st.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
            Version::V2
        } else {
            Version::V1
        },
    )
}

/// Whether /sys/fs/cgroup is cgroup2 (runc's IsCgroup2UnifiedMode).
pub fn unified() -> bool {
    matches!(detect(), Ok(Version::V2))
}

/// Builds the manager for a new container. No side effects.
pub fn new_manager(cfg: &CgroupConfig) -> Result<Box<dyn Manager>> {
    if cfg.systemd {
        if !systemd::booted() {
            return Err(systemd_unavailable(cfg));
        }
        return Ok(Box::new(systemd::SystemdManager::new(cfg, detect()?)?));
    }
    let path = paths::resolve_cgroups_path(cfg.cgroups_path.as_deref(), &cfg.id)?;
    let common = CommonState {
        rootless: cfg.rootless,
        default_parent: cfg.cgroups_path.is_none(),
        ..Default::default()
    };
    fs_manager(&path, common)
}

/// The cgroupfs manager (v1 or v2, as the host runs) for a resolved path. No side effects.
pub fn fs_manager(path: &paths::CgroupPath, common: CommonState) -> Result<Box<dyn Manager>> {
    let mounts = paths::host_cgroup_mounts()?;
    let own = paths::own_cgroups()?;
    match detect()? {
        Version::V2 => {
            let (mp, root) = mounts
                .unified
                .filter(|(mp, _)| mp == Path::new(CGROUP_ROOT))
                .unwrap_or_else(|| (PathBuf::from(CGROUP_ROOT), PathBuf::from("/")));
            let dir = paths::dir_in_hierarchy(&mp, &root, own.get("").map(PathBuf::as_path), path);
            Ok(Box::new(v2::V2Manager::new(dir, common)))
        }
        Version::V1 => {
            if mounts.v1.is_empty() {
                bail!("no cgroup v1 hierarchy is mounted and {CGROUP_ROOT} is not cgroup2");
            }
            let mut dirs = BTreeMap::new();
            for h in &mounts.v1 {
                let own_path = h.controllers.iter().find_map(|c| own.get(c));
                let dir = paths::dir_in_hierarchy(
                    &h.mountpoint,
                    &h.root,
                    own_path.map(PathBuf::as_path),
                    path,
                );
                for c in &h.controllers {
                    dirs.insert(c.clone(), dir.clone());
                }
            }
            let unified = mounts.unified.map(|(mp, root)| {
                paths::dir_in_hierarchy(&mp, &root, own.get("").map(PathBuf::as_path), path)
            });
            Ok(Box::new(v1::V1Manager::new(dirs, unified, common)))
        }
    }
}

/// Rebuilds a manager from what [`Manager::state`] returned. No side effects.
pub fn load_manager(state: &CgroupState) -> Result<Box<dyn Manager>> {
    Ok(match state.clone() {
        CgroupState::V1 {
            paths,
            unified,
            common,
        } => Box::new(v1::V1Manager::new(paths, unified, common)),
        CgroupState::V2 { path, common } => Box::new(v2::V2Manager::new(path, common)),
        CgroupState::Disabled => Box::new(disabled::Disabled),
        CgroupState::Systemd(st) => Box::new(systemd::SystemdManager::load(&st)?),
    })
}

/// Whether `set` holds `p`, compared as bytes: all the cgroup paths a manager lists come
/// from the same joins, and Path's `==` walks the components of every pair that differs
/// (with a dozen v1 hierarchies, a fifth of delete's instructions and about 90,000 of each
/// create's, bench/callgrind.sh).
fn holds<P: AsRef<Path>>(set: &[P], p: &Path) -> bool {
    set.iter().any(|s| s.as_ref().as_os_str() == p.as_os_str())
}

/// Appends `d` unless `list` [`holds`] it.
fn add_once(list: &mut Vec<PathBuf>, d: PathBuf) {
    if !holds(list, &d) {
        list.push(d);
    }
}

/// What `state` will hold once `create()` has run, written ahead of it: the directories it
/// will make are already listed as made. A create killed between its first mkdir and the
/// record of what it made leaves this behind, and `destroy()` of it removes what exists
/// (a directory never made is skipped; a parent someone else filled meanwhile stays).
pub fn planned(state: &CgroupState) -> CgroupState {
    let plan = |leaves: Vec<&PathBuf>, common: &CommonState| {
        let mut c = common.clone();
        for l in leaves {
            for d in fs::missing(l) {
                add_once(&mut c.created, d);
            }
        }
        c
    };
    match state {
        CgroupState::V1 {
            paths,
            unified,
            common,
        } => CgroupState::V1 {
            paths: paths.clone(),
            unified: unified.clone(),
            common: plan(paths.values().chain(unified.iter()).collect(), common),
        },
        CgroupState::V2 { path, common } => CgroupState::V2 {
            path: path.clone(),
            common: plan(vec![path], common),
        },
        // Nothing, or made by systemd when the unit starts (after the clone).
        CgroupState::Disabled | CgroupState::Systemd(_) => state.clone(),
    }
}

/// Make the container's cgroup with `m.create()`. On failure what was made is removed again;
/// for a rootless caller a permission error is a warning instead, and the container runs
/// without a cgroup: the manager returned is then [`disabled::Disabled`].
pub fn create(m: Box<dyn Manager>, rootless: bool) -> Result<(Box<dyn Manager>, Made)> {
    let err = match m.create() {
        Ok(made) => return Ok((m, made)),
        Err(err) => err,
    };
    if let Err(e) = m.destroy() {
        tracing::warn!("removing the partly made cgroup: {e:#}");
    }
    if rootless && permission_denied(&err) {
        tracing::warn!("rootless: cannot create cgroup, running without one: {err:#}");
        return Ok((Box::new(disabled::Disabled), Made::New));
    }
    Err(err)
}

fn permission_denied(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(
                e.raw_os_error(),
                Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
            )
        })
    })
}

/// `--systemd-cgroup` without systemd as PID 1: a clear error naming the unit systemd would
/// have made.
fn systemd_unavailable(cfg: &CgroupConfig) -> anyhow::Error {
    match systemd::unit_name(cfg.cgroups_path.as_deref(), &cfg.id, cfg.rootless) {
        Ok(u) => anyhow::anyhow!(
            "systemd cgroup driver: systemd is not running (cannot create {}/{}); run without --systemd-cgroup",
            u.slice, u.unit
        ),
        Err(e) => e.context("systemd cgroup driver"),
    }
}

/// `rdma.max` lines for `linux.resources.rdma` (same syntax on v1 and v2).
pub(crate) fn rdma_lines(rdma: &HashMap<String, oci_spec::runtime::LinuxRdma>) -> Vec<String> {
    let mut lines: Vec<String> = rdma
        .iter()
        .map(|(dev, l)| {
            let n = |v: Option<u32>| v.map_or("max".to_string(), |v| v.to_string());
            format!(
                "{dev} hca_handle={} hca_object={}",
                n(l.hca_handles()),
                n(l.hca_objects())
            )
        })
        .collect();
    lines.sort();
    lines
}

/// Signals each pid, ignoring ones that already exited.
pub(crate) fn signal_pids(pids: &[i32], sig: Signal) -> Result<()> {
    for &pid in pids {
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => return Err(e).with_context(|| format!("sending {sig} to pid {pid}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_json() {
        let st = CgroupState::V1 {
            paths: [(
                "memory".to_string(),
                PathBuf::from("/sys/fs/cgroup/memory/berth/a"),
            )]
            .into(),
            unified: Some(PathBuf::from("/sys/fs/cgroup/unified/berth/a")),
            common: CommonState {
                created: vec![PathBuf::from("/sys/fs/cgroup/memory/berth/a")],
                rootless: false,
                default_parent: true,
            },
        };
        let j = serde_json::to_value(&st).unwrap();
        assert_eq!(j["version"], "v1");
        let back: CgroupState = serde_json::from_value(j).unwrap();
        assert_eq!(back, st);
        let v2: CgroupState =
            serde_json::from_str(r#"{"version":"v2","path":"/sys/fs/cgroup/x"}"#).unwrap();
        assert!(matches!(v2, CgroupState::V2 { .. }));
    }

    #[test]
    fn destroy_keeps_the_shared_default_parent_only() {
        let t = tempfile::tempdir().unwrap();
        for default_parent in [true, false] {
            let parent = t.path().join("berth");
            let leaf = parent.join("c1");
            std::fs::create_dir_all(&leaf).unwrap();
            let tracker = Tracker::new(CommonState {
                created: vec![parent.clone(), leaf.clone()],
                default_parent,
                ..Default::default()
            });
            tracker.destroy(&[&leaf]).unwrap();
            assert!(!leaf.exists());
            assert_eq!(
                parent.exists(),
                default_parent,
                "default_parent {default_parent}"
            );
            let _ = std::fs::remove_dir(&parent);
        }
    }

    #[test]
    fn systemd_driver_fails_clearly() {
        let cfg = CgroupConfig {
            cgroups_path: Some("system.slice:berth:c1".into()),
            id: "c1".into(),
            systemd: true,
            ..Default::default()
        };
        if systemd::booted() {
            eprintln!(
                "skipping: systemd runs here (the driver is tested in integration/systemd.rs)"
            );
            return;
        }
        let msg = format!("{:#}", new_manager(&cfg).err().unwrap());
        assert!(msg.starts_with("systemd cgroup driver:"), "{msg}");
        assert!(msg.contains("system.slice/berth-c1.scope"), "{msg}");
    }

    #[test]
    fn rdma_syntax() {
        let l = oci_spec::runtime::LinuxRdmaBuilder::default()
            .hca_handles(3u32)
            .build()
            .unwrap();
        let m: HashMap<_, _> = [("mlx5_0".to_string(), l)].into();
        assert_eq!(rdma_lines(&m), vec!["mlx5_0 hca_handle=3 hca_object=max"]);
    }

    #[test]
    fn rootless_permission_errors_disable_the_manager() {
        let denied = || {
            anyhow::Error::new(std::io::Error::from_raw_os_error(libc::EACCES))
                .context("creating cgroup /x")
        };
        assert!(permission_denied(&denied()));
        let other = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(!permission_denied(&other));
        let d = disabled::Disabled;
        d.set(&LinuxResources::default()).unwrap();
        let msg = format!("{:#}", d.set(&pids_limit_5()).unwrap_err());
        assert!(
            msg.starts_with("rootless: the container has no cgroup"),
            "{msg}"
        );
        assert_eq!(d.state(), CgroupState::Disabled);
        let back: CgroupState =
            serde_json::from_value(serde_json::to_value(d.state()).unwrap()).unwrap();
        assert!(matches!(
            load_manager(&back).unwrap().state(),
            CgroupState::Disabled
        ));
    }

    fn pids_limit_5() -> LinuxResources {
        serde_json::from_value(serde_json::json!({"pids": {"limit": 5}})).unwrap()
    }

    #[test]
    fn engine_zeros_are_unset() {
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 0, "swappiness": 0},
            "cpu": {"shares": 0, "quota": 0, "period": 0, "cpus": "", "mems": "0"},
            "blockIO": {"weight": 0},
            "pids": {"limit": 5}
        }))
        .unwrap();
        let v = serde_json::to_value(without_unset(&r).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "memory": {"swappiness": 0},
                "cpu": {"mems": "0"},
                "blockIO": {},
                "pids": {"limit": 5}
            })
        );
    }

    #[test]
    fn empty_resources_are_not_a_request() {
        assert!(!resources_requested(&LinuxResources::default()));
        let r = pids_limit_5();
        assert!(resources_requested(&r));
    }
}
