//! The starter `config.json` written by `berth spec` and used by `berth unpack`.
//! Same content as runc's template, so bundles made for runc run unchanged. Like runc 1.2+'s
//! template it lists no ambient capabilities: without inheritable ones they cannot be
//! raised, and runc (and berth) warn about each.
use oci_spec::runtime::Spec;
use serde_json::{json, Value};

/// The default spec as JSON. `rootless` gives the variant for an unprivileged caller:
/// a user namespace mapping the caller to root, no network namespace, no cgroup resources,
/// and bind mounts instead of the mounts that need privilege.
pub fn default_spec_json(rootless: bool, uid: u32, gid: u32) -> Value {
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
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    if rootless {
        let linux = &mut spec["linux"];
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        linux["namespaces"] = json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
            {"type": "cgroup"}, {"type": "user"}
        ]);
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
pub fn default_spec(rootless: bool, uid: u32, gid: u32) -> Spec {
    serde_json::from_value(default_spec_json(rootless, uid, gid))
        .expect("the built-in template is a valid spec")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_and_validates_shape() {
        let s = default_spec(false, 0, 0);
        assert_eq!(
            s.process().as_ref().unwrap().args().as_ref().unwrap(),
            &["sh"]
        );
        assert_eq!(s.mounts().as_ref().unwrap().len(), 7);
        let r = default_spec(true, 1000, 1000);
        let ns = r.linux().as_ref().unwrap().namespaces().as_ref().unwrap();
        assert!(ns
            .iter()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User));
        assert!(!ns
            .iter()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network));
    }
}
