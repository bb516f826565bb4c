//! `linux.memoryPolicy` as what set_mempolicy(2) takes (the mode with its flags, the node mask).
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType as F, MemoryPolicyModeType as M};

/// The modes, by spec name, with the kernel's numbers (include/uapi/linux/mempolicy.h).
pub const MODES: [(&str, i32); 7] = [
    ("MPOL_DEFAULT", 0),
    ("MPOL_PREFERRED", 1),
    ("MPOL_BIND", 2),
    ("MPOL_INTERLEAVE", 3),
    ("MPOL_LOCAL", 4),
    ("MPOL_PREFERRED_MANY", 5),
    ("MPOL_WEIGHTED_INTERLEAVE", 6),
];

/// The mode flags, by spec name.
pub const FLAGS: [(&str, i32); 3] = [
    ("MPOL_F_NUMA_BALANCING", 1 << 13),
    ("MPOL_F_RELATIVE_NODES", 1 << 14),
    ("MPOL_F_STATIC_NODES", 1 << 15),
];

/// What set_mempolicy takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemPolicy {
    pub mode_and_flags: i32,
    pub nodes: Vec<libc::c_ulong>,
}

fn mode_name(m: M) -> &'static str {
    match m {
        M::MpolDefault => "MPOL_DEFAULT",
        M::MpolPreferred => "MPOL_PREFERRED",
        M::MpolBind => "MPOL_BIND",
        M::MpolInterleave => "MPOL_INTERLEAVE",
        M::MpolLocal => "MPOL_LOCAL",
        M::MpolPreferredMany => "MPOL_PREFERRED_MANY",
        M::MpolWeightedInterleave => "MPOL_WEIGHTED_INTERLEAVE",
    }
}

fn flag_name(f: F) -> &'static str {
    match f {
        F::MpolFNumaBalancing => "MPOL_F_NUMA_BALANCING",
        F::MpolFRelativeNodes => "MPOL_F_RELATIVE_NODES",
        F::MpolFStaticNodes => "MPOL_F_STATIC_NODES",
    }
}

fn lookup(table: &[(&str, i32)], name: &str) -> i32 {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .expect("every oci-spec name is in the table")
}

/// The highest node number this kernel can have (/sys/devices/system/node/possible).
fn max_node() -> Result<u32> {
    let path = "/sys/devices/system/node/possible";
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let nodes =
        super::parse_list(text.trim(), u32::MAX).with_context(|| format!("parsing {path}"))?;
    nodes
        .last()
        .copied()
        .with_context(|| format!("{path} is empty"))
}

impl MemPolicy {
    pub fn from_spec(p: &LinuxMemoryPolicy) -> Result<MemPolicy> {
        Self::with_max_node(p, max_node().unwrap_or(0))
    }

    fn with_max_node(p: &LinuxMemoryPolicy, max: u32) -> Result<MemPolicy> {
        let mode = mode_name(p.mode());
        let nodes_text = p.nodes().as_deref().unwrap_or("").trim();
        let nodes = if nodes_text.is_empty() {
            vec![]
        } else {
            super::parse_list(nodes_text, u32::MAX).context("nodes")?
        };
        if let Some(n) = nodes.iter().find(|n| **n > max) {
            bail!("nodes: node {n} is beyond this kernel's highest node {max} (/sys/devices/system/node/possible)");
        }
        match p.mode() {
            M::MpolDefault | M::MpolLocal if !nodes.is_empty() => {
                bail!("nodes: {mode} takes no nodes, got {nodes_text:?}")
            }
            M::MpolBind | M::MpolInterleave | M::MpolWeightedInterleave | M::MpolPreferredMany
                if nodes.is_empty() =>
            {
                bail!("nodes: {mode} needs at least one node")
            }
            _ => {}
        }
        let mut flags = 0;
        for f in p.flags().iter().flatten() {
            flags |= lookup(&FLAGS, flag_name(*f));
        }
        let (st, rel) = (
            lookup(&FLAGS, "MPOL_F_STATIC_NODES"),
            lookup(&FLAGS, "MPOL_F_RELATIVE_NODES"),
        );
        if flags & st != 0 && flags & rel != 0 {
            bail!("flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other");
        }
        if flags != 0 && matches!(p.mode(), M::MpolDefault) {
            bail!("flags: MPOL_DEFAULT takes no flags");
        }
        let bits = libc::c_ulong::BITS;
        let mut mask =
            vec![0 as libc::c_ulong; nodes.last().map_or(0, |n| (n / bits + 1) as usize)];
        for n in &nodes {
            mask[(n / bits) as usize] |= 1 << (n % bits);
        }
        Ok(MemPolicy {
            mode_and_flags: lookup(&MODES, mode) | flags,
            nodes: mask,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Result<MemPolicy> {
        let p: LinuxMemoryPolicy = serde_json::from_str(json).unwrap();
        MemPolicy::with_max_node(&p, 3)
    }

    #[test]
    fn modes_and_nodes() {
        let p = policy(r#"{"mode":"MPOL_BIND","nodes":"0,2-3"}"#).unwrap();
        assert_eq!(p.mode_and_flags, 2);
        assert_eq!(p.nodes, vec![0b1101]);
        let p = policy(r#"{"mode":"MPOL_INTERLEAVE","nodes":"1","flags":["MPOL_F_STATIC_NODES"]}"#)
            .unwrap();
        assert_eq!(p.mode_and_flags, 3 | 1 << 15);
        let p = policy(r#"{"mode":"MPOL_LOCAL"}"#).unwrap();
        assert_eq!((p.mode_and_flags, p.nodes.len()), (4, 0));
        let p = policy(r#"{"mode":"MPOL_PREFERRED"}"#).unwrap();
        assert_eq!(p.mode_and_flags, 1);
        for (mode, _) in MODES {
            let json = format!(r#"{{"mode":"{mode}","nodes":"0"}}"#);
            let r = policy(&json);
            assert_eq!(
                r.is_ok(),
                !matches!(mode, "MPOL_DEFAULT" | "MPOL_LOCAL"),
                "{mode}"
            );
        }
    }

    #[test]
    fn bad_values() {
        let e = |j| format!("{:#}", policy(j).unwrap_err());
        assert!(e(r#"{"mode":"MPOL_BIND"}"#).contains("needs at least one node"));
        assert!(e(r#"{"mode":"MPOL_LOCAL","nodes":"0"}"#).contains("takes no nodes"));
        assert!(e(r#"{"mode":"MPOL_BIND","nodes":"4"}"#).contains("beyond this kernel"));
        assert!(e(r#"{"mode":"MPOL_BIND","nodes":"0-x"}"#).contains("not a number"));
        assert!(e(r#"{"mode":"MPOL_BIND","nodes":"0","flags":["MPOL_F_STATIC_NODES","MPOL_F_RELATIVE_NODES"]}"#)
            .contains("exclude each other"));
        assert!(
            e(r#"{"mode":"MPOL_DEFAULT","flags":["MPOL_F_STATIC_NODES"]}"#).contains("no flags")
        );
        assert!(serde_json::from_str::<LinuxMemoryPolicy>(r#"{"mode":"MPOL_NOPE"}"#).is_err());
    }
}
