//! v2 `cpuset` controller: cpuset.cpus and cpuset.mems (inherited from the parent when
//! empty, unlike v1).
use std::path::Path;

use anyhow::Result;
use oci_spec::runtime::LinuxCpu;

use crate::cgroups::fs;

pub fn requested(c: &LinuxCpu) -> bool {
    c.cpus().is_some() || c.mems().is_some()
}

pub fn set(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(cpus) = c.cpus() {
        fs::write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems() {
        fs::write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}
