//! v1 `cpuset` controller: cpus and mems; new cgroups inherit the parent's values (v1 leaves
//! them empty, and a process cannot join a cpuset cgroup with no cpus or mems).
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cgroups::fs;

/// Fills empty cpuset.cpus/cpuset.mems from `leaf` up to the first ancestor that has them,
/// top-down.
pub fn inherit_from_parents(leaf: &Path) -> Result<()> {
    let mut chain: Vec<PathBuf> = Vec::new();
    let mut cur = Some(leaf);
    while let Some(d) = cur {
        if !d.join("cpuset.cpus").exists() {
            break;
        }
        chain.push(d.to_path_buf());
        cur = d.parent();
    }
    chain.reverse();
    for pair in chain.windows(2) {
        let (parent, child) = (&pair[0], &pair[1]);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if fs::read(child, file)?.trim().is_empty() {
                let v = fs::read(parent, file)?;
                fs::write(child, file, &v)?;
            }
        }
    }
    Ok(())
}
