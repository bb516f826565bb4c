//! v1 `cpuset` controller: cpus and mems; new cgroups inherit the parent's values (v1 leaves
//! them empty, and a process cannot join a cpuset cgroup with no cpus or mems).
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cgroups::fs;
use crate::cgroups::stats::CpuSet;
use crate::spec::attrs::parse_list;

/// Fills empty cpuset.cpus/cpuset.mems from `leaf` up to the first ancestor that has them,
/// top-down. Returns whether `leaf` itself had to be filled (its parent did not hand its
/// values down at mkdir, see [`hand_down`]).
pub fn inherit_from_parents(leaf: &Path) -> Result<bool> {
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
    let mut filled_leaf = false;
    for pair in chain.windows(2) {
        let (parent, child) = (&pair[0], &pair[1]);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if fs::read(child, file)?.trim().is_empty() {
                let v = fs::read(parent, file)?;
                fs::write(child, file, &v)?;
                filled_leaf |= child.as_path() == leaf;
            }
        }
    }
    Ok(filled_leaf)
}

/// Makes berth's own default parent (`/berth`) give its cpus and mems to every cgroup made
/// in it from now on (`cgroup.clone_children`), so that a container's cpuset is ready at its
/// mkdir: no cpuset.cpus/cpuset.mems write per container, a write that rebuilds the
/// scheduler domains and now and then waited for an RCU grace period here (README,
/// Benchmarks). `leaf`, made before the flag, keeps the kernel's default 0, as later leaves
/// get it written back ([`own_children_empty`]): the cgroups a container makes in its own
/// cgroup start empty, as under runc.
pub fn hand_down(parent: &Path) -> Result<()> {
    fs::write(parent, "cgroup.clone_children", "1")
}

/// `cgroup.clone_children` back to the kernel's default 0 on a leaf that inherited 1 from
/// berth's default parent (see [`hand_down`]).
pub fn own_children_empty(leaf: &Path) -> Result<()> {
    fs::write(leaf, "cgroup.clone_children", "0")
}

/// The cpuset state runc reports (`events --stats`): the lists and the flag files.
pub fn stats(dir: &Path) -> Result<CpuSet> {
    let list = |file: &str| -> Result<Vec<u16>> {
        let text = fs::read(dir, file)?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let nums = parse_list(text, u32::from(u16::MAX) + 1)
            .with_context(|| format!("parsing {}", dir.join(file).display()))?;
        Ok(nums.into_iter().map(|n| n as u16).collect())
    };
    let num = |file: &str| fs::read_u64(dir, file);
    Ok(CpuSet {
        cpus: list("cpuset.cpus")?,
        cpu_exclusive: num("cpuset.cpu_exclusive")?,
        mems: list("cpuset.mems")?,
        mem_hardwall: num("cpuset.mem_hardwall")?,
        mem_exclusive: num("cpuset.mem_exclusive")?,
        memory_migrate: num("cpuset.memory_migrate")?,
        memory_spread_page: num("cpuset.memory_spread_page")?,
        memory_spread_slab: num("cpuset.memory_spread_slab")?,
        memory_pressure: num("cpuset.memory_pressure")?,
        sched_load_balance: num("cpuset.sched_load_balance")?,
        sched_relax_domain_level: fs::read(dir, "cpuset.sched_relax_domain_level")?
            .trim()
            .parse()
            .with_context(|| {
                format!("parsing {}/cpuset.sched_relax_domain_level", dir.display())
            })?,
    })
}
