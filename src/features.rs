//! The runtime-spec features document (`berth features`). Built from the same tables that
//! parse and validate configs, so it never claims what berth rejects: the ociVersion range,
//! the namespaces and the memory policies from spec's tables, the mount options (propagation names
//! included) from the rootfs option table, the capabilities from the capability table, the
//! seccomp names from the compiler's tables, and every feature validation rejects is
//! reported disabled.
use serde_json::{json, Value};

use crate::security::seccomp;
use crate::spec::attrs::mempolicy;
use crate::spec::validate::{ns_name, INTEL_RDT, NAMESPACES, OCI_VERSION_MAX, OCI_VERSION_MIN};

/// The hooks berth runs (hooks.rs), in lifecycle order.
pub const HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

pub fn features() -> Value {
    let namespaces: Vec<&str> = NAMESPACES.into_iter().map(ns_name).collect();
    let mut caps: Vec<caps::Capability> = caps::all().into_iter().collect();
    caps.sort_by_key(|c| c.index());
    let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
    // The systemd driver needs systemd running (it talks to it over D-Bus).
    let systemd = crate::cgroups::systemd::booted();
    let mount_options = crate::rootfs::options::known_options();
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": HOOKS,
        "mountOptions": mount_options,
        "linux": {
            "namespaces": namespaces,
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": systemd, "systemdUser": systemd, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": seccomp::ACTIONS,
                "operators": seccomp::OPERATORS,
                "archs": seccomp::ARCHES,
                "knownFlags": seccomp::FLAGS,
                "supportedFlags": seccomp::FLAGS,
            },
            "apparmor": {"enabled": crate::security::apparmor::enabled()},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": INTEL_RDT},
            "netDevices": {"enabled": true},
            "memoryPolicy": {
                "modes": mempolicy::MODES.map(|(n, _)| n),
                "flags": mempolicy::FLAGS.map(|(n, _)| n),
            },
            "mountExtensions": {"idmap": {"enabled": true}},
        },
        "annotations": {
            "org.opencontainers.berth.version": crate::VERSION,
            "org.opencontainers.berth.commit": crate::COMMIT,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> String {
        format!(r#"{{"ociVersion":"1.2.0","root":{{"path":"rootfs"}}{extra}}}"#)
    }

    fn accepted(json: &str) -> anyhow::Result<()> {
        let spec = crate::spec::parse_config(json.as_bytes())?;
        crate::spec::validate::validate(&spec)?;
        crate::rootfs::validate(&spec)
    }

    /// Everything `features` claims, a config that uses it is accepted.
    #[test]
    fn every_claim_is_accepted_by_validation() {
        let f = features();
        for v in [&f["ociVersionMin"], &f["ociVersionMax"]] {
            let json = config("").replace("1.2.0", v.as_str().unwrap());
            accepted(&json).unwrap_or_else(|e| panic!("ociVersion {v}: {e:#}"));
        }
        for ns in f["linux"]["namespaces"].as_array().unwrap() {
            let maps = r#"[{"containerID":0,"hostID":1000,"size":1}]"#;
            let maps = format!(r#","uidMappings":{maps},"gidMappings":{maps}"#);
            let maps = if ns == "user" { maps.as_str() } else { "" };
            let json = config(&format!(
                r#","linux":{{"namespaces":[{{"type":{ns}}}]{maps}}}"#
            ));
            accepted(&json).unwrap_or_else(|e| panic!("namespace {ns}: {e:#}"));
        }
        for o in f["mountOptions"].as_array().unwrap() {
            let m = match o.as_str().unwrap() {
                // An idmapped mount is a bind mount with mappings.
                "idmap" | "ridmap" => {
                    let maps = r#"[{"containerID":0,"hostID":1000,"size":1}]"#;
                    format!(
                        r#","mounts":[{{"destination":"/m","source":"/s","options":["bind",{o}],"uidMappings":{maps},"gidMappings":{maps}}}]"#
                    )
                }
                _ => {
                    format!(r#","mounts":[{{"destination":"/m","type":"tmpfs","options":[{o}]}}]"#)
                }
            };
            accepted(&config(&m)).unwrap_or_else(|e| panic!("mount option {o}: {e:#}"));
            let is_propagation = crate::rootfs::options::propagation_flag(o.as_str().unwrap());
            if is_propagation.is_ok() {
                let json = config(&format!(r#","linux":{{"rootfsPropagation":{o}}}"#));
                accepted(&json).unwrap_or_else(|e| panic!("rootfsPropagation {o}: {e:#}"));
            }
        }
        assert_eq!(f["linux"]["cgroup"]["rdma"], true);
        let rdma =
            r#","linux":{"resources":{"rdma":{"mlx5_1":{"hcaHandles":3,"hcaObjects":100}}}}"#;
        accepted(&config(rdma)).unwrap();
    }

    /// Just past what `features` claims is refused.
    #[test]
    fn past_the_claims_is_refused() {
        assert!(accepted(&config("").replace("1.2.0", "1.4.0")).is_err());
        assert!(accepted(&config("").replace("1.2.0", "0.9.0")).is_err());
        assert!(accepted(&config(r#","linux":{"rootfsPropagation":"sideways"}"#)).is_err());
    }
}
