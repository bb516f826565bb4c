//! cgroups and `update` as runc users drive them (issue 7 item 19), on this host's cgroup v1
//! hierarchies (the v2 cases run in the VM lane's cgroups tests): unified on v1, pids.limit 0
//! and -1, `update` of the common limits, cpu burst, cpu.idle and the realtime period and
//! runtime, a cpu period under a pod cgroup with its own quota, and device rules updated
//! without a window where allowed devices are denied.
mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};

fn v1_host() -> bool {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        common::record_skip("cgroup v2 host (these cases are for v1)");
        return false;
    }
    true
}

/// A created container running `sleep`; returns its init pid.
fn created(root: &Root, b: &Bundle, id: &str) -> i64 {
    root.ok(&["create", "-b", b.path().to_str().unwrap(), id]);
    root.state(id)["pid"].as_i64().unwrap()
}

fn read(pid: i64, controller: &str, file: &str) -> String {
    let p = cgroup_file(pid, controller, file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

fn sleeper(edit: impl FnOnce(&mut Value)) -> Bundle {
    Bundle::with(&["sleep", "100"], edit)
}

#[test]
fn unified_on_a_v1_host_is_an_invalid_configuration() {
    if !v1_host() {
        return;
    }
    let root = Root::new();
    let b = sleeper(|s| s["linux"]["resources"] = json!({"unified": {"pids.max": "10"}}));
    let id = unique("compat-unified");
    let err = root.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(
        err.contains("linux.resources.unified") && err.contains("v1"),
        "{err}"
    );
    assert_nothing_left(&root, &id, &b);
}

/// runc 1.3: pids.limit 0 is "not set" (a new cgroup has no limit), -1 is "max"; `update`
/// with 0 leaves the limit as it is.
#[test]
fn pids_limit_zero_and_minus_one_as_runc() {
    if !v1_host() {
        return;
    }
    for (limit, want) in [(0, "max"), (-1, "max"), (10, "10")] {
        let root = Root::new();
        let b = sleeper(|s| s["linux"]["resources"] = json!({"pids": {"limit": limit}}));
        let id = unique("compat-pids");
        let pid = created(&root, &b, &id);
        assert_eq!(read(pid, "pids", "pids.max"), want, "limit {limit}");
        if limit == 10 {
            root.ok(&["update", "--pids-limit", "0", &id]);
            assert_eq!(read(pid, "pids", "pids.max"), "10", "update 0 leaves it");
            root.ok(&["update", "--pids-limit", "-1", &id]);
            assert_eq!(read(pid, "pids", "pids.max"), "max");
            root.ok(&["update", "--pids-limit", "20", &id]);
            assert_eq!(read(pid, "pids", "pids.max"), "20");
        }
        root.ok(&["delete", "--force", &id]);
    }
}

#[test]
fn update_the_common_limits() {
    if !v1_host() {
        return;
    }
    let root = Root::new();
    let b = sleeper(|_| {});
    let id = unique("compat-update");
    let pid = created(&root, &b, &id);
    root.ok(&[
        "update",
        "--memory",
        "64m",
        "--memory-reservation",
        "32m",
        "--memory-swap",
        "128m",
        "--cpu-share",
        "512",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        "--cpu-burst",
        "20000",
        "--cpuset-cpus",
        "0",
        "--pids-limit",
        "7",
        &id,
    ]);
    let want = [
        ("memory", "memory.limit_in_bytes", "67108864"),
        ("memory", "memory.soft_limit_in_bytes", "33554432"),
        ("memory", "memory.memsw.limit_in_bytes", "134217728"),
        ("cpu", "cpu.shares", "512"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("cpu", "cpu.cfs_burst_us", "20000"),
        ("cpuset", "cpuset.cpus", "0"),
        ("pids", "pids.max", "7"),
    ];
    for (ctrl, file, v) in want {
        if ctrl == "memory" && file.contains("memsw") && !cgroup_file(pid, ctrl, file).exists() {
            continue; // no swap accounting on this kernel
        }
        assert_eq!(read(pid, ctrl, file), v, "{file}");
    }
    // cpu.idle on its own (the kernel ties shares to it), and back.
    root.ok(&["update", "--cpu-idle", "1", &id]);
    assert_eq!(read(pid, "cpu", "cpu.idle"), "1");
    root.ok(&["update", "--cpu-idle", "0", &id]);
    assert_eq!(read(pid, "cpu", "cpu.idle"), "0");
    // The applied resources are recorded: a later update keeps them.
    root.ok(&["update", "--memory", "96m", &id]);
    assert_eq!(read(pid, "pids", "pids.max"), "7");
    assert_eq!(read(pid, "memory", "memory.limit_in_bytes"), "100663296");
    root.ok(&["delete", "--force", &id]);
}

/// A pod cgroup with its own cpu limits, removed from every v1 hierarchy on drop.
struct Pod(String);

impl Pod {
    fn new() -> Pod {
        let name = unique("compat-pod");
        let cpu = Pod::dir("cpu", &name);
        std::fs::create_dir_all(&cpu).unwrap();
        Pod(name)
    }
    fn dir(controller: &str, name: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup").join(controller).join(name)
    }
    fn write(&self, file: &str, v: &str) {
        let p = Pod::dir("cpu", &self.0).join(file);
        std::fs::write(&p, v).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        for d in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let _ = std::fs::remove_dir(d.path().join(&self.0));
        }
    }
}

/// Under a pod that allows half a CPU, a container at the pod's limit moves to a shorter
/// period: writing the period first is refused (the old quota over the new period exceeds
/// the pod), so the quota goes first, as runc does. The realtime runtime and period are
/// updated within the pod's realtime budget.
#[test]
fn update_cpu_period_and_realtime_under_a_pod() {
    if !v1_host() {
        return;
    }
    let pod = Pod::new();
    pod.write("cpu.cfs_period_us", "100000");
    pod.write("cpu.cfs_quota_us", "50000");
    let rt = Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists();
    if rt {
        pod.write("cpu.rt_runtime_us", "10000");
    }
    let root = Root::new();
    let id = unique("compat-podctr");
    let b = sleeper(|s| {
        s["linux"]["cgroupsPath"] = json!(format!("/{}/{id}", pod.0));
        s["linux"]["resources"] = json!({"cpu": {"period": 100000, "quota": 50000}});
    });
    let pid = created(&root, &b, &id);
    root.ok(&[
        "update",
        "--cpu-period",
        "10000",
        "--cpu-quota",
        "5000",
        &id,
    ]);
    assert_eq!(read(pid, "cpu", "cpu.cfs_period_us"), "10000");
    assert_eq!(read(pid, "cpu", "cpu.cfs_quota_us"), "5000");
    if rt {
        root.ok(&[
            "update",
            "--cpu-rt-period",
            "500000",
            "--cpu-rt-runtime",
            "5000",
            &id,
        ]);
        assert_eq!(read(pid, "cpu", "cpu.rt_period_us"), "500000");
        assert_eq!(read(pid, "cpu", "cpu.rt_runtime_us"), "5000");
        // More than the pod has is refused, with the file named.
        let err = root.fails(&["update", "--cpu-rt-runtime", "20000", &id]);
        assert!(err.contains("cpu.rt_runtime_us"), "{err}");
    } else {
        println!("skipped: realtime part (no CONFIG_RT_GROUP_SCHED)");
    }
    root.ok(&["delete", "--force", &id]);
}

/// `update` of the device rules writes only the difference: a process that opens /dev/zero
/// in a loop never sees it denied while rules for other devices come and go.
#[test]
fn device_update_never_denies_an_allowed_device() {
    if !v1_host() {
        return;
    }
    let root = Root::new();
    let b = Bundle::with(
        &[
            "sh",
            "-c",
            "while :; do head -c1 /dev/zero >/dev/null || echo DENIED >> /denied; done",
        ],
        |_| {},
    );
    let id = unique("compat-devupd");
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    root.ok(&["start", &id]);
    let dir = TempDir::new("compat-devrules");
    let with = dir.path().join("with.json");
    let without = dir.path().join("without.json");
    let rule = json!({"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"});
    std::fs::write(&with, json!({"devices": [rule]}).to_string()).unwrap();
    std::fs::write(&without, json!({"devices": []}).to_string()).unwrap();
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    let list = || read(pid, "devices", "devices.list");
    for _ in 0..30 {
        root.ok(&["update", "-r", with.to_str().unwrap(), &id]);
        assert!(list().contains("c 10:200 rwm"), "{}", list());
        root.ok(&["update", "-r", without.to_str().unwrap(), &id]);
        assert!(!list().contains("c 10:200"), "{}", list());
    }
    assert!(list().contains("c 1:5 rwm"), "{}", list());
    root.ok(&["kill", &id, "KILL"]);
    wait_for(|| root.state(&id)["status"] == "stopped", "exit");
    root.ok(&["delete", &id]);
    let denied = b.path().join("rootfs/denied");
    assert!(!denied.exists(), "/dev/zero was denied during an update");
}
