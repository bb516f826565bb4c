//! `linux.personality`: the execution domain (LINUX, LINUX32) and the kernel's persona flags,
//! as the value personality(2) takes.
use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxPersonality, LinuxPersonalityDomain as D};

/// The domains, by spec name (include/uapi/linux/personality.h).
pub const DOMAINS: [(&str, u64); 2] = [("LINUX", 0x0000), ("LINUX32", 0x0008)];

/// The persona flags personality(2) accepts, by their kernel names.
pub const FLAGS: [(&str, u64); 11] = [
    ("UNAME26", 0x002_0000),
    ("ADDR_NO_RANDOMIZE", 0x004_0000),
    ("FDPIC_FUNCPTRS", 0x008_0000),
    ("MMAP_PAGE_ZERO", 0x010_0000),
    ("ADDR_COMPAT_LAYOUT", 0x020_0000),
    ("READ_IMPLIES_EXEC", 0x040_0000),
    ("ADDR_LIMIT_32BIT", 0x080_0000),
    ("SHORT_INODE", 0x100_0000),
    ("WHOLE_SECONDS", 0x200_0000),
    ("STICKY_TIMEOUTS", 0x400_0000),
    ("ADDR_LIMIT_3GB", 0x800_0000),
];

pub fn from_spec(p: &LinuxPersonality) -> Result<u64> {
    let mut persona = match p.domain() {
        D::PerLinux => DOMAINS[0].1,
        D::PerLinux32 => DOMAINS[1].1,
    };
    for (i, f) in p.flags().iter().flatten().enumerate() {
        match FLAGS.iter().find(|(n, _)| n == f) {
            Some((_, v)) => persona |= v,
            None => bail!("flags[{i}]: unknown personality flag {f:?}"),
        }
    }
    Ok(persona)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let p = |j| from_spec(&serde_json::from_str(j).unwrap());
        assert_eq!(p(r#"{"domain":"LINUX"}"#).unwrap(), 0);
        assert_eq!(
            p(r#"{"domain":"LINUX32","flags":["ADDR_NO_RANDOMIZE"]}"#).unwrap(),
            0x4_0008
        );
        assert!(p(r#"{"domain":"LINUX","flags":["NOPE"]}"#).is_err());
        assert!(serde_json::from_str::<LinuxPersonality>(r#"{"domain":"LINUX64"}"#).is_err());
    }
}
