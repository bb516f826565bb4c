//! Applying the per-process kernel attributes that `spec::attrs` checked and converted, in
//! runc's order: the memory policy, final CPU affinity, I/O priority and scheduler once the
//! process is in its cgroup and before seccomp (`before_seccomp`); the personality after
//! seccomp, just before execve (`after_seccomp`). The initial CPU affinity is the parent's,
//! around the fork (`InitialAffinity`).
use anyhow::{Context, Result};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use super::channel::{ChildError, Step};
use crate::spec::attrs::affinity::{describe, Affinity};
use crate::spec::attrs::ioprio::CLASS_SHIFT;
use crate::spec::attrs::mempolicy::MemPolicy;
use crate::spec::attrs::sched::POLICIES;
use crate::spec::attrs::Attrs;
use crate::sys::sched::{ioprio_set, sched_setattr, SchedAttr, IOPRIO_WHO_PGRP};

/// In the process, once it is in its cgroup and session, before seccomp and the identity
/// change (the scheduler and RT I/O class need privileges).
pub fn before_seccomp(a: &Attrs) -> Result<(), ChildError> {
    if let Some(p) = &a.mempolicy {
        mempolicy(p).step("memoryPolicy")?;
    }
    final_affinity(&a.affinity).step("execCPUAffinity")?;
    if let Some(prio) = a.ioprio {
        ioprio(prio).step("ioPriority")?;
    }
    if let Some(s) = &a.sched {
        sched(s).step("scheduler")?;
    }
    Ok(())
}

/// Just before execve, after seccomp (as runc: a profile that denies personality(2) makes
/// the create fail).
pub fn after_seccomp(a: &Attrs) -> Result<(), ChildError> {
    if let Some(p) = a.personality {
        personality(p).step("personality")?;
    }
    Ok(())
}

/// set_mempolicy(2) for the process, inherited by its children.
fn mempolicy(p: &MemPolicy) -> Result<()> {
    crate::sys::sched::set_mempolicy(p.mode_and_flags, &p.nodes).with_context(|| {
        format!(
            "set_mempolicy(mode {:#x}, nodes {:x?})",
            p.mode_and_flags, p.nodes
        )
    })
}

/// ioprio_set(2) on the process group, as runc does (the process has just made its own
/// session, so that is the process and what it forks).
fn ioprio(prio: u16) -> Result<()> {
    ioprio_set(IOPRIO_WHO_PGRP, 0, prio).with_context(|| {
        format!(
            "ioprio_set(IOPRIO_WHO_PGRP, class {}, level {})",
            prio >> CLASS_SHIFT,
            prio & 7
        )
    })
}

/// sched_setattr(2), once the process is in its cgroup (a SCHED_DEADLINE admission depends
/// on the cgroup's cpuset).
fn sched(a: &SchedAttr) -> Result<()> {
    let name = POLICIES
        .iter()
        .find(|(_, v)| *v == a.policy)
        .map_or("?", |(n, _)| n);
    sched_setattr(0, a).with_context(|| {
        format!(
            "sched_setattr({name}, nice {}, priority {}, flags {:#x}, runtime {}, deadline {}, period {})",
            a.nice, a.priority, a.flags, a.runtime, a.deadline, a.period
        )
    })
}

fn personality(persona: u64) -> Result<()> {
    crate::sys::sched::personality(persona)
        .map(drop)
        .with_context(|| format!("personality({persona:#x})"))
}

fn all_cpus() -> CpuSet {
    let mut set = CpuSet::new();
    for cpu in 0..CpuSet::count() {
        let _ = set.set(cpu);
    }
    set
}

/// In the process, once it is in its cgroup: `final`, else (without `initial`) all CPUs.
/// With neither, the kernel narrows all CPUs to the cgroup's cpuset, so a pinned caller
/// does not pin the container.
fn final_affinity(a: &Affinity) -> Result<()> {
    let set = match (&a.initial, &a.final_) {
        (_, Some(f)) => *f,
        (Some(_), None) => return Ok(()),
        (None, None) => all_cpus(),
    };
    sched_setaffinity(Pid::from_raw(0), &set).with_context(|| {
        if a.final_.is_some() {
            format!("sched_setaffinity to final CPUs {}", describe(&set))
        } else {
            "resetting the CPU affinity to the cgroup's CPUs".to_string()
        }
    })
}

/// The parent's affinity set to `initial` while it forks the process (so the child starts
/// with it and joins its cgroup with it); restored on drop.
pub struct InitialAffinity(Option<CpuSet>);

impl InitialAffinity {
    pub fn set(a: &Affinity) -> Result<InitialAffinity> {
        let Some(initial) = &a.initial else {
            return Ok(InitialAffinity(None));
        };
        let saved = sched_getaffinity(Pid::from_raw(0)).context("sched_getaffinity")?;
        sched_setaffinity(Pid::from_raw(0), initial).with_context(|| {
            format!(
                "process.execCPUAffinity.initial: sched_setaffinity to CPUs {}",
                describe(initial)
            )
        })?;
        Ok(InitialAffinity(Some(saved)))
    }
}

impl Drop for InitialAffinity {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = sched_setaffinity(Pid::from_raw(0), saved);
        }
    }
}
