//! cgroup v2: one tree. Controllers are enabled in `cgroup.subtree_control` of every ancestor
//! on `create()`; devices are an eBPF program; freezing and killing use cgroup.freeze and
//! cgroup.kill.
use std::path::PathBuf;

use anyhow::{bail, Result};
use nix::sys::signal::Signal;

use super::shared::cgroup2::{available_controllers, enable_in_ancestors, tree_root};
use super::shared::{cpuset, freeze, hugetlb, pids, rdma};
use super::{
    entry, fs, CgroupState, CommonState, Entry, LinuxResources, Manager, Stats, Tracker, Ways,
};

pub mod cpu;
pub mod devices;
pub mod io;
pub mod memory;
pub mod unified;

/// Manager for a cgroup v2 host.
pub struct V2Manager {
    dir: PathBuf,
    tracker: Tracker,
}

impl V2Manager {
    pub fn new(dir: PathBuf, common: CommonState) -> V2Manager {
        V2Manager {
            dir,
            tracker: Tracker::new(common),
        }
    }

    /// Enables every controller the tree offers down to our directory. A controller the kernel
    /// refuses (say, `cpu` while a realtime task sits in an ancestor) is skipped here; `set`
    /// then reports it by name if a limit needs it.
    fn enable_all_controllers(&self) -> Result<()> {
        let Some(root) = tree_root(&self.dir) else {
            bail!("{} is not inside a cgroup2 tree", self.dir.display());
        };
        for c in available_controllers(&root)? {
            if let Err(e) = enable_in_ancestors(&self.dir, &[&c]) {
                tracing::debug!("cgroup v2: controller {c} stays disabled: {e:#}");
            }
        }
        Ok(())
    }

    /// Errors unless `controller` is enabled for our directory.
    fn need(&self, controller: &str, what: &str) -> Result<()> {
        if available_controllers(&self.dir)?
            .iter()
            .any(|c| c == controller)
        {
            return Ok(());
        }
        let parent = self.dir.parent().unwrap_or(&self.dir);
        bail!("{what} needs the {controller} controller, which is not enabled in {}/cgroup.subtree_control", parent.display())
    }

    fn set_resources(&self, r: &LinuxResources) -> Result<()> {
        let d = self.dir.as_path();
        if let Some(m) = r.memory() {
            self.need("memory", "linux.resources.memory")?;
            memory::set(d, m)?;
        }
        if let Some(c) = r.cpu() {
            if cpu::requested(c) {
                self.need("cpu", "linux.resources.cpu")?;
                cpu::set(d, c)?;
            }
            if cpuset::requested(c) {
                self.need("cpuset", "linux.resources.cpu.cpus/mems")?;
                cpuset::set(d, c)?;
            }
        }
        if let Some(p) = r.pids() {
            self.need("pids", "linux.resources.pids")?;
            pids::set(d, p)?;
        }
        if let Some(b) = r.block_io() {
            self.need("io", "linux.resources.blockIO")?;
            io::set(d, b)?;
        }
        if let Some(h) = r.hugepage_limits().as_deref().filter(|h| !h.is_empty()) {
            self.need("hugetlb", "linux.resources.hugepageLimits")?;
            hugetlb::set(d, h)?;
        }
        if let Some(n) = r.network() {
            if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                bail!(
                    "linux.resources.network (classID, priorities) is not supported on cgroup v2"
                );
            }
        }
        if let Some(rd) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
            self.need("rdma", "linux.resources.rdma")?;
            rdma::set(d, rd)?;
        }
        let rules = crate::cgroups::devices::effective_rules(r.devices().as_deref())?;
        if let Err(e) = devices::set(d, &crate::cgroups::devices::DeviceState::from_rules(&rules)) {
            // As runc: loading a device program needs privileges a rootless caller (even one
            // with a delegated subtree) lacks; its device nodes are bind mounts anyway.
            if !self.tracker.get().rootless {
                return Err(e);
            }
            tracing::debug!("rootless: no device filter: {e:#}");
        }
        if let Some(u) = r.unified().as_ref().filter(|u| !u.is_empty()) {
            unified::set(d, u)?;
        }
        Ok(())
    }
}

impl Manager for V2Manager {
    fn create(&self) -> Result<super::Made> {
        let made = fs::mkdir_all(&self.dir)?;
        let new = super::Made::leaf(&self.dir, &made);
        self.tracker.record_created(made);
        self.enable_all_controllers()?;
        Ok(new)
    }

    fn apply(&self, pid: i32) -> Result<()> {
        entry::move_pid([self.dir.as_path()], pid)
    }

    fn entry(&self, ways: Ways) -> Entry {
        Entry::cgroup2(&self.dir, ways)
    }

    fn set(&self, r: &LinuxResources) -> Result<()> {
        self.set_resources(&crate::cgroups::without_unset(r)?)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        fs::procs_recursive(&self.dir)
    }

    fn freeze(&self) -> Result<()> {
        freeze::freeze(&self.dir)
    }

    fn thaw(&self) -> Result<()> {
        freeze::thaw(&self.dir)
    }

    fn is_frozen(&self) -> Result<bool> {
        freeze::is_frozen(&self.dir)
    }

    fn kill_all(&self, sig: Signal) -> Result<()> {
        if sig == Signal::SIGKILL && self.dir.join("cgroup.kill").exists() {
            return fs::write(&self.dir, "cgroup.kill", "1");
        }
        let we_froze = !self.is_frozen()?;
        let res = if we_froze { self.freeze() } else { Ok(()) }
            .and_then(|()| self.pids())
            .and_then(|p| super::signal_pids(&p, sig));
        // Thaw what we froze, on every path.
        if we_froze {
            let thawed = self.thaw();
            return res.and(thawed);
        }
        res
    }

    fn destroy(&self) -> Result<()> {
        self.tracker.destroy(&[self.dir.as_path()])
    }

    fn oom_kills(&self) -> Result<u64> {
        if !self.dir.join("memory.events").exists() {
            return Ok(0);
        }
        Ok(fs::flat_keyed_value(&self.dir, "memory.events", "oom_kill")?.unwrap_or(0))
    }

    fn stats(&self) -> Result<Stats> {
        let d = self.dir.as_path();
        let has = |f: &str| d.join(f).exists();
        let mut s = Stats {
            cpu: cpu::stats(d)?,
            ..Default::default()
        };
        if has("memory.current") {
            s.memory = memory::stats(d)?;
        }
        if has("pids.current") {
            s.pids = pids::stats(d)?;
        }
        s.blkio = io::stats(d)?;
        s.hugetlb = hugetlb::stats(d)?;
        Ok(s)
    }

    fn path(&self) -> String {
        self.dir.display().to_string()
    }

    fn state(&self) -> CgroupState {
        CgroupState::V2 {
            path: self.dir.clone(),
            common: self.tracker.get(),
        }
    }
}
