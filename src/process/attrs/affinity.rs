//! `process.execCPUAffinity`, with runc's semantics: `initial` is the affinity the process
//! has while it joins its cgroup (the parent takes it around the fork, so the child starts
//! with it), `final` is set by the process once it is in the cgroup. With neither, the
//! process resets its affinity to every CPU once in the cgroup; the kernel narrows that to
//! the cgroup's cpuset, so a pinned caller does not pin the container.
use anyhow::{Context, Result};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use oci_spec::runtime::ExecCPUAffinity;

#[derive(Debug, Clone, Default)]
pub struct Affinity {
    pub initial: Option<CpuSet>,
    pub final_: Option<CpuSet>,
}

fn cpuset(list: Option<&String>) -> Result<Option<CpuSet>> {
    let Some(list) = list.map(|s| s.trim()).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let mut set = CpuSet::new();
    for cpu in super::parse_list(list, CpuSet::count() as u32)? {
        set.set(cpu as usize)?;
    }
    Ok(Some(set))
}

fn all_cpus() -> CpuSet {
    let mut set = CpuSet::new();
    for cpu in 0..CpuSet::count() {
        let _ = set.set(cpu);
    }
    set
}

fn describe(set: &CpuSet) -> String {
    let cpus: Vec<String> = (0..CpuSet::count())
        .filter(|c| set.is_set(*c).unwrap_or(false))
        .map(|c| c.to_string())
        .collect();
    cpus.join(",")
}

impl Affinity {
    pub fn from_spec(a: Option<&ExecCPUAffinity>) -> Result<Affinity> {
        let Some(a) = a else {
            return Ok(Affinity::default());
        };
        Ok(Affinity {
            initial: cpuset(a.initial().as_ref()).context("initial")?,
            final_: cpuset(a.cpu_affinity_final().as_ref()).context("final")?,
        })
    }

    /// In the process, once it is in its cgroup: `final`, else (without `initial`) all CPUs.
    pub fn apply_final(&self) -> Result<()> {
        let set = match (&self.initial, &self.final_) {
            (_, Some(f)) => *f,
            (Some(_), None) => return Ok(()),
            (None, None) => all_cpus(),
        };
        sched_setaffinity(Pid::from_raw(0), &set).with_context(|| {
            if self.final_.is_some() {
                format!("sched_setaffinity to final CPUs {}", describe(&set))
            } else {
                "resetting the CPU affinity to the cgroup's CPUs".to_string()
            }
        })
    }
}

/// The parent's affinity set to `initial` while it forks the process; restored on drop.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let a: ExecCPUAffinity = serde_json::from_str(r#"{"initial":"0-1","final":"1"}"#).unwrap();
        let a = Affinity::from_spec(Some(&a)).unwrap();
        assert_eq!(describe(&a.initial.unwrap()), "0,1");
        assert_eq!(describe(&a.final_.unwrap()), "1");
        let a: ExecCPUAffinity = serde_json::from_str(r#"{"final":"4096"}"#).unwrap();
        assert!(Affinity::from_spec(Some(&a)).is_err());
        assert!(serde_json::from_str::<ExecCPUAffinity>(r#"{"initial":"x"}"#).is_err());
    }
}
