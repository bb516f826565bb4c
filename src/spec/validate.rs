//! Validation of a parsed spec, before any side effect. Every error names the JSON path and
//! the bad value, e.g. `linux.namespaces[2]: malformed spec file: duplicated ns {"user" ""}`.
use std::collections::HashSet;

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// The ociVersion range we accept: 1.0.0 up to 1.MAX_MINOR.x (a pre-release suffix is
/// allowed). `features` reports the same range.
pub const OCI_VERSION_MIN: &str = "1.0.0";
const MAX_MINOR: u32 = 3;
pub const OCI_VERSION_MAX: &str = "1.3.0";

fn check_version(v: &str) -> Result<()> {
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let nums: Option<Vec<u32>> = parts.iter().map(|p| p.parse().ok()).collect();
    match nums.as_deref() {
        Some([1, minor, _]) if *minor <= MAX_MINOR => Ok(()),
        _ => bail!(
            "ociVersion: {v:?} is not supported (berth accepts {OCI_VERSION_MIN} to 1.{MAX_MINOR}.x)"
        ),
    }
}

/// Every namespace type berth creates and joins (`features` lists these).
pub const NAMESPACES: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Time,
];

/// Namespace types that the kernel names in /proc/self/ns, with their spec name.
pub fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// Whether berth implements linux.intelRdt (resctrl). `features` reports this same value.
pub const INTEL_RDT: bool = false;

pub fn validate(spec: &Spec) -> Result<()> {
    check_version(spec.version())?;
    let mounts = spec.mounts().as_ref().map_or(0, |m| m.len());
    if mounts > super::MAX_MOUNTS {
        bail!(
            "mounts: {mounts} entries; berth accepts at most {}",
            super::MAX_MOUNTS
        );
    }
    let linux = spec.linux().as_ref();
    let namespaces = linux.and_then(|l| l.namespaces().as_ref());
    let mut seen = HashSet::new();
    for (i, ns) in namespaces.into_iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            // runc refuses any namespace listed twice, with or without the same path.
            let path = ns.path().as_ref().map(|p| p.display().to_string());
            bail!(
                "linux.namespaces[{i}]: malformed spec file: duplicated ns {{{:?} {:?}}}",
                ns_name(ns.typ()),
                path.unwrap_or_default()
            );
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                bail!(
                    "linux.namespaces[{i}].path: {} is not absolute",
                    p.display()
                );
            }
            if !p.exists() {
                bail!("linux.namespaces[{i}].path: {} does not exist", p.display());
            }
        }
    }
    let has = |t| seen.contains(&t);
    let new_ns = |t| {
        namespaces
            .into_iter()
            .flatten()
            .any(|n| n.typ() == t && n.path().is_none())
    };

    if let Some(p) = spec.process() {
        validate_process(p)?;
        super::attrs::Attrs::from_spec(p, linux)?;
    }

    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        bail!("hostname: setting a hostname needs a uts namespace (linux.namespaces)");
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        bail!("domainname: setting a domainname needs a uts namespace (linux.namespaces)");
    }

    // A relative destination is taken as relative to "/", with a warning, as runc does
    // (the runtime-spec deprecates it).
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            tracing::warn!(
                "mounts[{i}].destination: {} is not absolute: it is taken as relative to /",
                m.destination().display()
            );
        }
    }

    let Some(linux) = linux else { return Ok(()) };
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if maps && !new_ns(LinuxNamespaceType::User) {
        bail!("linux.uidMappings: mappings need a new user namespace (linux.namespaces)");
    }
    if new_ns(LinuxNamespaceType::User) && !maps {
        bail!("linux.uidMappings: a new user namespace needs uidMappings and gidMappings");
    }
    if let Some(offsets) = linux.time_offsets() {
        if !offsets.is_empty() && !new_ns(LinuxNamespaceType::Time) {
            bail!("linux.timeOffsets: offsets need a new time namespace (linux.namespaces)");
        }
        for k in offsets.keys() {
            if k != "monotonic" && k != "boottime" {
                bail!("linux.timeOffsets: unknown clock {k:?} (monotonic or boottime)");
            }
        }
    }
    for (key, _) in linux.sysctl().iter().flatten() {
        check_sysctl(key, &has)?;
    }
    if linux.intel_rdt().is_some() && !INTEL_RDT {
        bail!("linux.intelRdt: intelRdt is specified in config, but Intel RDT is not supported by berth");
    }
    if !super::netdev::parse(Some(linux))?.is_empty() && !has(LinuxNamespaceType::Network) {
        bail!(
            "linux.netDevices: moving network devices needs a network namespace (linux.namespaces)"
        );
    }
    // linux.mountLabel and linux.rootfsPropagation: rootfs::validate (the mount tables).
    // Relative maskedPaths and readonlyPaths: taken from the root (spec::normalize).
    Ok(())
}

/// process (config.json's, or an `exec --process` file).
pub fn validate_process(p: &oci_spec::runtime::Process) -> Result<()> {
    match p.args() {
        Some(a) if !a.is_empty() => {}
        _ => bail!("process.args: must name the program to run"),
    }
    if p.cwd().as_os_str().is_empty() {
        bail!("process.cwd: Cwd property must not be empty");
    }
    if !p.cwd().is_absolute() {
        bail!("process.cwd: {:?} is not an absolute path", p.cwd());
    }
    for (i, e) in p.env().iter().flatten().enumerate() {
        match e.find('=') {
            None => bail!("process.env[{i}]: {e:?} is not NAME=VALUE"),
            Some(0) => bail!("process.env[{i}]: {e:?}: the variable name cannot be empty"),
            Some(_) if e.contains('\0') => bail!("process.env[{i}]: {e:?} contains a NUL byte"),
            Some(_) => {}
        }
    }
    if p.terminal().unwrap_or(false) && p.console_size().is_some() {
        // consoleSize is honoured by the terminal code; nothing to check.
    }
    if p.selinux_label().as_ref().is_some_and(|s| !s.is_empty()) {
        bail!("process.selinuxLabel: SELinux is not supported by berth on this host");
    }
    // ioPriority, scheduler and execCPUAffinity (and, with the config's linux section,
    // memoryPolicy and personality): checked where they are converted.
    super::attrs::Attrs::from_spec(p, None)?;
    if let Some(score) = p.oom_score_adj() {
        if !(-1000..=1000).contains(&score) {
            bail!("process.oomScoreAdj: {score} is outside -1000..1000");
        }
    }
    Ok(())
}

/// A sysctl is only allowed when the namespace that scopes it is the container's own
/// (the same rules as runc: ipc and net sysctls, kernel.hostname/domainname with uts).
fn check_sysctl(key: &str, has: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<()> {
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let need = if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        LinuxNamespaceType::Ipc
    } else if key.starts_with("net.") {
        LinuxNamespaceType::Network
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        LinuxNamespaceType::Uts
    } else {
        bail!("linux.sysctl: {key:?} is not namespaced and cannot be set in a container");
    };
    if !has(need) {
        bail!(
            "linux.sysctl: {key:?} needs a {} namespace (linux.namespaces)",
            ns_name(need)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        super::super::parse_config(json.as_bytes()).unwrap()
    }

    #[test]
    fn versions() {
        assert!(check_version("1.0.2-dev").is_ok());
        assert!(check_version("1.3.0").is_ok());
        assert!(check_version("2.0.0").is_err());
        assert!(check_version("1.4.0").is_err());
        assert!(check_version("junk").is_err());
    }

    #[test]
    fn duplicate_namespace_rejected() {
        let s = spec(
            r#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}}"#,
        );
        let e = validate(&s).unwrap_err().to_string();
        assert!(
            e.contains("linux.namespaces[1]: malformed spec file: duplicated ns {\"pid\" \"\"}"),
            "{e}"
        );
    }

    #[test]
    fn hostname_needs_uts() {
        let s = spec(r#"{"ociVersion":"1.0.0","hostname":"x","linux":{"namespaces":[]}}"#);
        assert!(validate(&s).unwrap_err().to_string().contains("uts"));
    }

    #[test]
    fn sysctl_rules() {
        let s = spec(
            r#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"ipc"}],"sysctl":{"net.ipv4.ip_forward":"1"}}}"#,
        );
        assert!(validate(&s)
            .unwrap_err()
            .to_string()
            .contains("network namespace"));
        let s = spec(r#"{"ociVersion":"1.0.0","linux":{"sysctl":{"vm.swappiness":"1"}}}"#);
        assert!(validate(&s)
            .unwrap_err()
            .to_string()
            .contains("not namespaced"));
    }

    #[test]
    fn relative_cwd_rejected() {
        let s = spec(
            r#"{"ociVersion":"1.0.0","process":{"cwd":"tmp","args":["sh"],"user":{"uid":0,"gid":0}}}"#,
        );
        assert!(validate(&s)
            .unwrap_err()
            .to_string()
            .contains("process.cwd"));
    }
}
