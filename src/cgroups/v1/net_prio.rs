//! v1 `net_prio` controller: per-interface priorities.
use std::path::Path;

use anyhow::Result;
use oci_spec::runtime::LinuxInterfacePriority;

use crate::cgroups::fs;

pub fn set(dir: &Path, prios: &[LinuxInterfacePriority]) -> Result<()> {
    for p in prios {
        fs::write(
            dir,
            "net_prio.ifpriomap",
            &format!("{} {}", p.name(), p.priority()),
        )?;
    }
    Ok(())
}
