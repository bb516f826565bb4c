//! The runtime-spec features document (`berth features`). Built from the same tables that
//! parse and validate configs, so it never claims what berth rejects: the mount options come
//! from the rootfs option table, the namespaces from the namespace names, the capabilities
//! from the capability table, and every feature validation rejects is reported disabled.
use oci_spec::runtime::LinuxNamespaceType as T;
use serde_json::{json, Value};

use super::validate::ns_name;
use crate::security::seccomp;

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
    let namespaces: Vec<&str> = [
        T::Cgroup,
        T::Ipc,
        T::Mount,
        T::Network,
        T::Pid,
        T::User,
        T::Uts,
        T::Time,
    ]
    .into_iter()
    .map(ns_name)
    .collect();
    let mut caps: Vec<caps::Capability> = caps::all().into_iter().collect();
    caps.sort_by_key(|c| c.index());
    let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
    let mut mount_options = crate::rootfs::options::known_options();
    mount_options.sort_unstable();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.3.0",
        "hooks": HOOKS,
        "mountOptions": mount_options,
        "linux": {
            "namespaces": namespaces,
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": seccomp::ACTIONS,
                "operators": seccomp::OPERATORS,
                "archs": seccomp::ARCHES,
                "knownFlags": seccomp::FLAGS,
                "supportedFlags": seccomp::FLAGS,
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}},
        },
        "annotations": {
            "org.opencontainers.berth.version": crate::cli::VERSION,
            "org.opencontainers.berth.commit": option_env!("BERTH_COMMIT").unwrap_or("unknown"),
        }
    })
}
