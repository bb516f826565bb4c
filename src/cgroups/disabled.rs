//! The manager of a container that runs without a cgroup: a rootless caller could not create
//! one (berth warned at create). It accepts what needs no cgroup and refuses the rest with
//! the reason.
use anyhow::{bail, Result};
use nix::sys::signal::Signal;

use super::{resources_requested, CgroupState, Entry, LinuxResources, Manager, Stats, Ways};

const NO_CGROUP: &str = "rootless: the container has no cgroup (creating it was denied)";

pub struct Disabled;

impl Manager for Disabled {
    fn create(&self) -> Result<super::Made> {
        Ok(super::Made::New)
    }
    fn apply(&self, _pid: i32) -> Result<()> {
        Ok(())
    }
    /// An empty request is fine; any limit is refused.
    fn set(&self, r: &LinuxResources) -> Result<()> {
        if resources_requested(r) {
            bail!("{NO_CGROUP}, so cgroup resources cannot be applied");
        }
        Ok(())
    }
    fn pids(&self) -> Result<Vec<i32>> {
        Ok(Vec::new())
    }
    fn freeze(&self) -> Result<()> {
        bail!("{NO_CGROUP}, so it cannot be frozen")
    }
    fn thaw(&self) -> Result<()> {
        bail!("{NO_CGROUP}, so it cannot be thawed")
    }
    fn is_frozen(&self) -> Result<bool> {
        Ok(false)
    }
    fn kill_all(&self, _sig: Signal) -> Result<()> {
        bail!("{NO_CGROUP}, so its processes cannot be listed to signal them")
    }
    fn destroy(&self) -> Result<()> {
        Ok(())
    }
    fn stats(&self) -> Result<Stats> {
        bail!("{NO_CGROUP}, so it has no statistics")
    }
    fn oom_kills(&self) -> Result<u64> {
        Ok(0)
    }
    fn entry(&self, _ways: Ways) -> Entry {
        Entry::none()
    }
    fn path(&self) -> String {
        "(no cgroup)".into()
    }
    fn state(&self) -> CgroupState {
        CgroupState::Disabled
    }
}
