//! `process.execCPUAffinity` as CPU sets: `initial`, the affinity the process has while it
//! joins its cgroup, and `final`, set once it is in the cgroup (process::attrs applies them
//! with runc's semantics).
use anyhow::{Context, Result};
use nix::sched::CpuSet;
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

/// A CPU set as a list, for messages: "0,1".
pub fn describe(set: &CpuSet) -> String {
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
