//! cgroup v1: one hierarchy per controller (or group of controllers), found in mountinfo.
//! On a hybrid host the container also joins the cgroup2 tree (usually
//! /sys/fs/cgroup/unified), which then serves hugetlb limits when no v1 hugetlb hierarchy is
//! mounted, and `cgroup.kill`.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;

use super::shared::{self, cgroup2, pids, rdma};
use super::{
    entry, fs, CgroupState, CommonState, Entry, LinuxResources, Manager, Stats, Tracker, Ways,
};

pub mod blkio;
pub mod cpu;
pub mod cpuacct;
pub mod cpuset;
pub mod devices;
pub mod freezer;
pub mod hugetlb;
pub mod memory;
pub mod net_cls;
pub mod net_prio;

/// Manager for a v1 (or hybrid) host.
pub struct V1Manager {
    /// Controller (or `name=X`) → cgroup directory.
    paths: BTreeMap<String, PathBuf>,
    /// The cgroup2 directory on a hybrid host.
    unified: Option<PathBuf>,
    tracker: Tracker,
}

impl V1Manager {
    pub fn new(
        paths: BTreeMap<String, PathBuf>,
        unified: Option<PathBuf>,
        common: CommonState,
    ) -> V1Manager {
        V1Manager {
            paths,
            unified,
            tracker: Tracker::new(common),
        }
    }

    /// Every distinct directory: one per hierarchy, then the cgroup2 one.
    fn dirs(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        for p in self.paths.values().chain(self.unified.iter()) {
            // Byte equality: these are paths we built, and Path's == parses components.
            if !out.iter().any(|o| o.as_os_str() == p.as_os_str()) {
                out.push(p);
            }
        }
        out
    }

    /// Each v1 hierarchy's directory once, with its controllers (`cpu,cpuacct` when they share one).
    fn hierarchies(&self) -> Vec<(&Path, String)> {
        let mut out: Vec<(&Path, String)> = Vec::new();
        for (c, p) in &self.paths {
            match out.iter_mut().find(|(d, _)| d.as_os_str() == p.as_os_str()) {
                Some((_, names)) => {
                    names.push(',');
                    names.push_str(c);
                }
                None => out.push((p, c.clone())),
            }
        }
        out
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.paths.get(controller).map(PathBuf::as_path)
    }

    /// The directory of `controller`, or an error naming what needed it.
    fn need(&self, controller: &str, what: &str) -> Result<&Path> {
        self.dir(controller).with_context(|| {
            format!("{what} was requested but the cgroup v1 {controller} controller is not mounted")
        })
    }

    /// The cgroup2 directory on a hybrid host, if its tree offers `controller`.
    fn unified_with(&self, controller: &str) -> Option<&Path> {
        let u = self.unified.as_deref()?;
        let root = cgroup2::tree_root(u)?;
        cgroup2::available_controllers(&root)
            .ok()?
            .iter()
            .any(|c| c == controller)
            .then_some(u)
    }

    /// The directory whose `cgroup.procs` lists the container's processes.
    fn procs_dir(&self) -> Result<&Path> {
        ["pids", "freezer", "memory", "devices"]
            .iter()
            .find_map(|c| self.dir(c))
            .or_else(|| self.dirs().first().copied())
            .context("no cgroup directory to list processes from")
    }

    fn set_resources(&self, r: &LinuxResources) -> Result<()> {
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            bail!("linux.resources.unified is set, but this host uses cgroup v1");
        }
        if let Some(m) = r.memory() {
            memory::set(self.need("memory", "linux.resources.memory")?, m)?;
        }
        if let Some(c) = r.cpu() {
            if cpu::requested(c) {
                cpu::set(self.need("cpu", "linux.resources.cpu")?, c)?;
            }
            if shared::cpuset::requested(c) {
                shared::cpuset::set(self.need("cpuset", "linux.resources.cpu.cpus/mems")?, c)?;
            }
        }
        if let Some(p) = r.pids() {
            pids::set(self.need("pids", "linux.resources.pids")?, p)?;
        }
        if let Some(b) = r.block_io() {
            blkio::set(self.need("blkio", "linux.resources.blockIO")?, b)?;
        }
        if let Some(h) = r.hugepage_limits().as_deref().filter(|h| !h.is_empty()) {
            self.set_hugetlb(h)?;
        }
        if let Some(n) = r.network() {
            if let Some(id) = n.class_id() {
                net_cls::set(self.need("net_cls", "linux.resources.network.classID")?, id)?;
            }
            if let Some(p) = n.priorities().as_deref().filter(|p| !p.is_empty()) {
                net_prio::set(
                    self.need("net_prio", "linux.resources.network.priorities")?,
                    p,
                )?;
            }
        }
        if let Some(rd) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
            rdma::set(self.need("rdma", "linux.resources.rdma")?, rd)?;
        }
        self.set_devices(r)
    }

    fn set_hugetlb(&self, h: &[oci_spec::runtime::LinuxHugepageLimit]) -> Result<()> {
        if let Some(d) = self.dir("hugetlb") {
            return hugetlb::set(d, h);
        }
        match self.unified_with("hugetlb") {
            Some(u) => {
                cgroup2::enable_in_ancestors(u, &["hugetlb"])?;
                shared::hugetlb::set(u, h)
            }
            None => bail!("linux.resources.hugepageLimits was requested but no hugetlb cgroup controller is available (v1 or the cgroup2 tree)"),
        }
    }

    fn set_devices(&self, r: &LinuxResources) -> Result<()> {
        let rules = crate::cgroups::devices::effective_rules(r.devices().as_deref())?;
        let want = crate::cgroups::devices::DeviceState::from_rules(&rules);
        devices::set(self.need("devices", "the device cgroup")?, &want)
    }

    fn freezer_dir(&self) -> Result<FreezeVia<'_>> {
        if let Some(d) = self.dir("freezer") {
            return Ok(FreezeVia::V1(d));
        }
        match self
            .unified
            .as_deref()
            .filter(|u| u.join("cgroup.freeze").exists())
        {
            Some(u) => Ok(FreezeVia::V2(u)),
            None => bail!("freezing needs the cgroup v1 freezer controller, which is not mounted"),
        }
    }
}

enum FreezeVia<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

impl Manager for V1Manager {
    fn create(&self) -> Result<super::Made> {
        let mut new = super::Made::New;
        for dir in self.dirs() {
            let made = fs::mkdir_all(dir)?;
            new = new.and(super::Made::leaf(dir, &made));
            self.tracker.record_created(made);
            // Some hierarchies made, not all.
            crate::fault::point("create:cgroup-partly");
        }
        if let Some(d) = self.dir("cpuset") {
            let filled = cpuset::inherit_from_parents(d)?;
            let parent = d.parent().filter(|_| self.tracker.get().default_parent);
            match parent {
                // Only a shortcut for the next containers: without it each fills its own.
                Some(p) if filled => {
                    if let Err(e) = cpuset::hand_down(p) {
                        tracing::debug!("cpuset: {e:#}");
                    }
                }
                Some(_) => cpuset::own_children_empty(d)?,
                None => {}
            }
        }
        Ok(new)
    }

    fn apply(&self, pid: i32) -> Result<()> {
        entry::move_pid(self.dirs(), pid)
    }

    /// Each v1 hierarchy through its `tasks` file, the cgroup2 tree of a hybrid host with
    /// CLONE_INTO_CGROUP.
    fn entry(&self, ways: Ways) -> Entry {
        let mut e = Entry::none();
        for (dir, hierarchy) in self.hierarchies() {
            e.add_v1(hierarchy, dir, ways);
        }
        if let Some(u) = &self.unified {
            e.add_cgroup2(u, ways);
        }
        e
    }

    fn set(&self, r: &LinuxResources) -> Result<()> {
        self.set_resources(&crate::cgroups::without_unset(r)?)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        fs::procs_recursive(self.procs_dir()?)
    }

    fn pids_anywhere(&self) -> Result<Vec<i32>> {
        let mut all = Vec::new();
        for d in self.dirs().into_iter().filter(|d| d.exists()) {
            all.extend(fs::procs_recursive(d)?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    fn freeze(&self) -> Result<()> {
        match self.freezer_dir()? {
            FreezeVia::V1(d) => freezer::freeze(d),
            FreezeVia::V2(d) => shared::freeze::freeze(d),
        }
    }

    fn thaw(&self) -> Result<()> {
        match self.freezer_dir()? {
            FreezeVia::V1(d) => freezer::thaw(d),
            FreezeVia::V2(d) => shared::freeze::thaw(d),
        }
    }

    fn is_frozen(&self) -> Result<bool> {
        match self.freezer_dir()? {
            FreezeVia::V1(d) => freezer::is_frozen(d),
            FreezeVia::V2(d) => shared::freeze::is_frozen(d),
        }
    }

    fn kill_all(&self, sig: Signal) -> Result<()> {
        let freezer = self.freezer_dir().is_ok();
        if sig == Signal::SIGKILL {
            if let Some(u) = self
                .unified
                .as_deref()
                .filter(|u| u.join("cgroup.kill").exists())
            {
                fs::write(u, "cgroup.kill", "1")?;
                // Tasks frozen by the v1 freezer die only once thawed.
                if freezer && self.is_frozen()? {
                    self.thaw()?;
                }
                return Ok(());
            }
        }
        // Frozen, no process can fork a new one between the listing and the signal (runc).
        let was_frozen = freezer && self.is_frozen()?;
        let froze = freezer && !was_frozen;
        let res = if froze { self.freeze() } else { Ok(()) }
            .and_then(|()| self.pids())
            .and_then(|p| super::signal_pids(&p, sig));
        // Thaw what we froze, on every path; after SIGKILL thaw a paused container too, so
        // it can exit.
        if froze || (was_frozen && sig == Signal::SIGKILL) {
            let thawed = self.thaw();
            return res.and(thawed);
        }
        res
    }

    fn destroy(&self) -> Result<()> {
        self.tracker.destroy(&self.dirs())
    }

    fn oom_kills(&self) -> Result<u64> {
        match self.dir("memory") {
            Some(d) => Ok(fs::flat_keyed_value(d, "memory.oom_control", "oom_kill")?.unwrap_or(0)),
            _ => Ok(0),
        }
    }

    fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        if let Some(d) = self.dir("cpuacct") {
            s.cpu.usage = cpuacct::usage(d)?;
        }
        if let Some(d) = self.dir("cpu") {
            s.cpu.throttling = cpu::throttling(d)?;
        }
        if let Some(d) = self.dir("cpuset") {
            s.cpuset = cpuset::stats(d)?;
        }
        if let Some(d) = self.dir("memory") {
            s.memory = memory::stats(d)?;
        }
        if let Some(d) = self.dir("pids") {
            s.pids = pids::stats(d)?;
        }
        if let Some(d) = self.dir("blkio") {
            s.blkio = blkio::stats(d)?;
        }
        if let Some(d) = self.dir("hugetlb") {
            s.hugetlb = hugetlb::stats(d)?;
        } else if let Some(u) = self.unified_with("hugetlb") {
            s.hugetlb = shared::hugetlb::stats(u)?;
        }
        Ok(s)
    }

    fn path(&self) -> String {
        self.dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn state(&self) -> CgroupState {
        CgroupState::V1 {
            paths: self.paths.clone(),
            unified: self.unified.clone(),
            common: self.tracker.get(),
        }
    }
}
