//! The starter `config.json` written by `berth spec` and used by `berth unpack`.
//! Same content as runc's template (libcontainer/specconv's Example and ToRootless), so
//! bundles made for runc run unchanged: the capabilities are bounding, effective and
//! permitted only, and a cgroup namespace is listed only where /sys/fs/cgroup is cgroup2,
//! as runc lists it. The hostname is ours.
use oci_spec::runtime::Spec;
use serde_json::{json, Value};

/// The default spec as JSON. `rootless` gives the variant for an unprivileged caller:
/// a user namespace mapping the caller to root, no network namespace, no cgroup resources,
/// and bind mounts instead of the mounts that need privilege. `cgroup2`: the host's
/// /sys/fs/cgroup is cgroup2 (unified), where the template adds a cgroup namespace.
pub fn default_spec_json(rootless: bool, uid: u32, gid: u32, cgroup2: bool) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = json!({
        "ociVersion": super::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
                "/sys/devices/virtual/tpm"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    if cgroup2 {
        spec["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "cgroup"}));
    }
    if rootless {
        let linux = &mut spec["linux"];
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        // As runc's ToRootless: the template's namespaces without network, then user.
        let namespaces = linux["namespaces"].as_array_mut().unwrap();
        namespaces.retain(|n| n["type"] != "network");
        namespaces.push(json!({"type": "user"}));
        linux.as_object_mut().unwrap().remove("resources");
        // Without privilege sysfs cannot be mounted fresh and devpts cannot take gid=5.
        let mounts = spec["mounts"].as_array_mut().unwrap();
        for m in mounts.iter_mut() {
            match m["destination"].as_str() {
                Some("/sys") => {
                    *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                }
                Some("/dev/pts") => {
                    m["options"] = json!([
                        "nosuid",
                        "noexec",
                        "newinstance",
                        "ptmxmode=0666",
                        "mode=0620"
                    ]);
                }
                _ => {}
            }
        }
        mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
    }
    spec
}

/// The default spec as typed value.
pub fn default_spec(rootless: bool, uid: u32, gid: u32, cgroup2: bool) -> Spec {
    serde_json::from_value(default_spec_json(rootless, uid, gid, cgroup2))
        .expect("the built-in template is a valid spec")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_and_validates_shape() {
        let s = default_spec(false, 0, 0, false);
        assert_eq!(
            s.process().as_ref().unwrap().args().as_ref().unwrap(),
            &["sh"]
        );
        assert_eq!(s.mounts().as_ref().unwrap().len(), 7);
        let r = default_spec(true, 1000, 1000, false);
        let ns = r.linux().as_ref().unwrap().namespaces().as_ref().unwrap();
        let names = |s: &Spec| -> Vec<String> {
            let ns = s.linux().as_ref().unwrap().namespaces().as_ref().unwrap();
            ns.iter()
                .map(|n| super::super::validate::ns_name(n.typ()).to_string())
                .collect()
        };
        assert_eq!(names(&s), ["pid", "network", "ipc", "uts", "mount"]);
        assert_eq!(
            names(&default_spec(false, 0, 0, true)),
            ["pid", "network", "ipc", "uts", "mount", "cgroup"]
        );
        assert_eq!(names(&r), ["pid", "ipc", "uts", "mount", "user"]);
        assert_eq!(
            names(&default_spec(true, 1, 1, true)),
            ["pid", "ipc", "uts", "mount", "cgroup", "user"]
        );
        let caps = s
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert!(caps.ambient().is_none() && caps.inheritable().is_none());
        assert!(ns
            .iter()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User));
        assert!(!ns
            .iter()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network));
    }
}
