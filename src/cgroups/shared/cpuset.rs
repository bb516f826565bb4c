//! `cpuset` (the same cpuset.cpus and cpuset.mems files on v1 and v2).
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
