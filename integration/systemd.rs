//! Tests that need systemd as PID 1 (the systemd lane: integration/vm-systemd/run.sh boots a
//! Debian userland and runs this binary there, on cgroup v2 and on v1). On a host without
//! systemd those tests are skipped (`skip!`). Ids and cgroups start with `sysd`.
mod common;

use common::*;
use serde_json::json;
use std::path::Path;

/// Whether systemd runs as PID 1 here (sd_booted's test).
fn systemd_host() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

const NO_SYSTEMD: &str =
    "systemd is not PID 1 here (the systemd lane, integration/vm-systemd, has it)";

fn is_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The lane boots what it says: systemd as PID 1, the cgroup hierarchy it asked for, AppArmor
/// on, and the tools later tests use.
#[test]
fn sysd_lane_host() {
    let Ok(want) = std::env::var("BERTH_VM_HIERARCHY") else {
        skip!("not in the systemd lane's VM");
    };
    assert_eq!(
        std::fs::read_to_string("/proc/1/comm").unwrap().trim(),
        "systemd"
    );
    assert_eq!(if is_v2() { "v2" } else { "v1" }, want, "cgroup hierarchy");
    assert_eq!(
        std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .unwrap()
            .trim(),
        "Y",
        "AppArmor enabled"
    );
    for tool in [
        "/usr/sbin/criu",
        "/usr/bin/podman",
        "/sbin/apparmor_parser",
        "/usr/bin/containerd",
        "/usr/bin/ctr",
        "/usr/sbin/iptables",
    ] {
        assert!(Path::new(tool).exists(), "{tool} in the image");
    }
}

/// The cgroupfs driver still works on a systemd host: a limit lands in the container's cgroup.
#[test]
fn sysd_cgroupfs_driver_on_a_systemd_host() {
    if !systemd_host() {
        skip!("{NO_SYSTEMD}");
    }
    let root = Root::new();
    let id = unique("sysd-fs");
    // The container sees its own cgroup at /sys/fs/cgroup (cgroup namespace).
    let file = if is_v2() {
        "/sys/fs/cgroup/pids.max"
    } else {
        "/sys/fs/cgroup/pids/pids.max"
    };
    let b = Bundle::with(&["cat", file], |s| {
        s["linux"]["resources"] = json!({"pids": {"limit": 42}});
        s["linux"]["cgroupsPath"] = json!(format!("/sysd.slice/{id}"));
    });
    let (code, out, err) = root.run_bundle(&b, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "42");
    assert!(cgroups_named(&id).is_empty(), "{:?}", cgroups_named(&id));
}

/// `systemctl show UNIT -p NAME` → the value.
fn unit_prop(unit: &str, name: &str) -> String {
    let out = std::process::Command::new("systemctl")
        .args(["show", unit, "-p", name, "--value"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The container process's cgroup path (v2 entry, or the name=systemd one on v1).
fn proc_cgroup(pid: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("0::")
                .or_else(|| l.split_once(":name=systemd:").map(|(_, p)| p))
        })
        .unwrap_or_else(|| panic!("no systemd cgroup in {text}"))
        .to_string()
}

/// A created-and-started `sleep` container under the systemd driver; returns its pid.
fn started(root: &Root, b: &Bundle, id: &str) -> String {
    start_with(root, b, id, &["--systemd-cgroup"])
}

/// Create and start with these global flags; returns the pid.
fn start_with(root: &Root, b: &Bundle, id: &str, global: &[&str]) -> String {
    let bundle = b.path().to_str().unwrap();
    root.ok(&[global, &["create", "-b", bundle, id]].concat());
    root.ok(&[global, &["start", id]].concat());
    root.state(id)["pid"].to_string()
}

/// `--systemd-cgroup run` that must fail; returns stderr.
fn sysd_run_fails(root: &Root, b: &Bundle, id: &str) -> String {
    root.fails(&[
        "--systemd-cgroup",
        "run",
        "-b",
        b.path().to_str().unwrap(),
        id,
    ])
}

/// A limit file of the container's cgroup from the host: v2 `file` in the scope, or the v1
/// controller's.
fn limit_file(pid: &str, v2_file: &str, v1_controller: &str, v1_file: &str) -> String {
    let p = if is_v2() {
        cgroup_file(pid.parse().unwrap(), "", v2_file)
    } else {
        cgroup_file(pid.parse().unwrap(), v1_controller, v1_file)
    };
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// The scope: made over D-Bus in the slice asked for, with Delegate=yes, the container's
/// resources as unit properties and in the cgroup files, the annotations' properties;
/// `update` changes both; `delete` stops the unit and its cgroup goes.
#[test]
fn sysd_scope_properties_update_delete() {
    if !systemd_host() {
        skip!("{NO_SYSTEMD}");
    }
    let root = Root::new();
    let id = unique("sysd-scope");
    let unit = format!("sysd-{id}.scope");
    let b = Bundle::with(&["sleep", "600"], |s| {
        s["linux"]["cgroupsPath"] = json!(format!("system.slice:sysd:{id}"));
        s["linux"]["resources"] = json!({
            "memory": {"limit": 67108864},
            "pids": {"limit": 40},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000},
        });
        s["annotations"] = json!({
            "org.systemd.property.TimeoutStopSec": "uint64 7",
            "org.systemd.property.CollectMode": "'inactive-or-failed'",
        });
    });
    let pid = started(&root, &b, &id);
    assert_eq!(proc_cgroup(&pid), format!("/system.slice/{unit}"));
    assert_eq!(unit_prop(&unit, "ActiveState"), "active");
    assert_eq!(unit_prop(&unit, "Delegate"), "yes");
    assert_eq!(unit_prop(&unit, "Slice"), "system.slice");
    assert_eq!(unit_prop(&unit, "TasksMax"), "40");
    assert_eq!(unit_prop(&unit, "CPUQuotaPerSecUSec"), "500ms");
    assert_eq!(unit_prop(&unit, "TimeoutStopUSec"), "7s");
    assert_eq!(unit_prop(&unit, "CollectMode"), "inactive-or-failed");
    if is_v2() {
        assert_eq!(unit_prop(&unit, "MemoryMax"), "67108864");
        assert_eq!(unit_prop(&unit, "CPUWeight"), "59");
    } else {
        assert_eq!(unit_prop(&unit, "MemoryLimit"), "67108864");
        assert_eq!(unit_prop(&unit, "CPUShares"), "512");
    }
    assert_eq!(
        limit_file(&pid, "memory.max", "memory", "memory.limit_in_bytes"),
        "67108864"
    );
    assert_eq!(limit_file(&pid, "pids.max", "pids", "pids.max"), "40");

    root.ok(&[
        "--systemd-cgroup",
        "update",
        "--pids-limit",
        "30",
        "--memory",
        "50331648",
        &id,
    ]);
    assert_eq!(unit_prop(&unit, "TasksMax"), "30");
    assert_eq!(limit_file(&pid, "pids.max", "pids", "pids.max"), "30");
    assert_eq!(
        limit_file(&pid, "memory.max", "memory", "memory.limit_in_bytes"),
        "50331648"
    );
    // The container still runs after the update (it was frozen while systemd reprogrammed
    // its devices, and thawed).
    assert_eq!(root.state(&id)["status"], "running");
    let cg = cgroup_file(pid.parse().unwrap(), if is_v2() { "" } else { "pids" }, "");
    root.ok(&["--systemd-cgroup", "delete", "--force", &id]);
    assert_eq!(unit_prop(&unit, "LoadState"), "not-found");
    assert!(!cg.exists(), "{} is left", cg.display());
    assert!(root.is_empty());
}

/// A slice `a-b-c.slice` nests as systemd expands it; an empty cgroupsPath gets
/// `system.slice:berth:<id>`; exec joins the scope.
#[test]
fn sysd_nested_slice_default_path_and_exec() {
    if !systemd_host() {
        skip!("{NO_SYSTEMD}");
    }
    let root = Root::new();
    let id = unique("sysd-nest");
    let b = Bundle::with(&["sleep", "600"], |s| {
        s["linux"]["cgroupsPath"] = json!(format!("sysd-nest-deep.slice:sysd:{id}"));
        // runc's template has a cgroup namespace only on v2; this test wants one on v1 too.
        let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
        if !ns.iter().any(|n| n["type"] == "cgroup") {
            ns.push(json!({"type": "cgroup"}));
        }
    });
    let pid = started(&root, &b, &id);
    assert_eq!(
        proc_cgroup(&pid),
        format!("/sysd.slice/sysd-nest.slice/sysd-nest-deep.slice/sysd-{id}.scope")
    );
    let out = root.ok(&["--systemd-cgroup", "exec", &id, "cat", "/proc/self/cgroup"]);
    // Inside its cgroup namespace the container sees its scope as the root.
    assert!(
        out.lines()
            .any(|l| l == "0::/" || l.ends_with(":name=systemd:/")),
        "{out}"
    );
    let host_view = root.ok(&[
        "--systemd-cgroup",
        "exec",
        &id,
        "sh",
        "-c",
        "echo $$; sleep 600 & echo $!",
    ]);
    let exec_pid = host_view.lines().last().unwrap().trim().to_string();
    let _ = exec_pid; // exec'd children run inside the container's pid namespace.
    let procs = std::fs::read_to_string(cgroup_file(
        pid.parse().unwrap(),
        if is_v2() { "" } else { "pids" },
        "cgroup.procs",
    ))
    .unwrap();
    assert!(
        procs.lines().count() >= 2,
        "the exec'd sleep is in the scope: {procs}"
    );
    root.ok(&["--systemd-cgroup", "delete", "--force", &id]);

    let id = unique("sysd-default");
    let b = Bundle::new(&["sleep", "600"]);
    let pid = started(&root, &b, &id);
    assert_eq!(proc_cgroup(&pid), format!("/system.slice/berth-{id}.scope"));
    root.ok(&["--systemd-cgroup", "delete", "--force", &id]);
    assert_eq!(
        unit_prop(&format!("berth-{id}.scope"), "LoadState"),
        "not-found"
    );
}

/// A property systemd refuses fails the create with systemd's message, and leaves no unit
/// and no state; so does a malformed annotation (before anything is made).
#[test]
fn sysd_refused_properties_leave_nothing() {
    if !systemd_host() {
        skip!("{NO_SYSTEMD}");
    }
    let root = Root::new();
    let id = unique("sysd-bad");
    let b = Bundle::with(&["true"], |s| {
        s["linux"]["cgroupsPath"] = json!(format!("system.slice:sysd:{id}"));
        s["annotations"] = json!({"org.systemd.property.NoSuchProperty": "true"});
    });
    let err = sysd_run_fails(&root, &b, &id);
    assert!(err.contains("NoSuchProperty"), "{err}");
    assert!(err.contains(&format!("sysd-{id}.scope")), "{err}");
    assert_eq!(
        unit_prop(&format!("sysd-{id}.scope"), "LoadState"),
        "not-found"
    );
    assert_nothing_left(&root, &id, &b);

    let mut c = b.config();
    c["annotations"] = json!({"org.systemd.property.TimeoutStopSec": "'soon'"});
    b.set_config(&c);
    let err = sysd_run_fails(&root, &b, &id);
    assert!(err.contains("org.systemd.property.TimeoutStopSec"), "{err}");
    assert_nothing_left(&root, &id, &b);
}

/// Without systemd as PID 1, `--systemd-cgroup` is a clear error naming the unit, and leaves
/// nothing behind.
#[test]
fn sysd_clear_error_without_systemd() {
    if systemd_host() {
        skip!("systemd runs here (this checks the error without it)");
    }
    let root = Root::new();
    let id = unique("sysd-none");
    let b = Bundle::new(&["true"]);
    let err = sysd_run_fails(&root, &b, &id);
    assert!(err.contains("systemd is not running"), "{err}");
    assert!(
        err.contains(&format!("system.slice/berth-{id}.scope")),
        "{err}"
    );
    assert_nothing_left(&root, &id, &b);
}

/// `features` says the systemd driver is there exactly where systemd runs.
#[test]
fn sysd_features_tell_the_truth() {
    let root = Root::new();
    let f: serde_json::Value = serde_json::from_str(&root.ok(&["features"])).unwrap();
    let booted = Path::new("/run/systemd/system").is_dir();
    assert_eq!(f["linux"]["cgroup"]["systemd"], json!(booted), "{f}");
    assert_eq!(f["linux"]["cgroup"]["systemdUser"], json!(booted), "{f}");
}

/// process.apparmorProfile confines the container's program (attr/current names the
/// profile, the denied write fails, others work); exec gets the container's profile, and
/// `exec --apparmor` sets one; a profile that is not loaded fails the create clearly.
#[test]
fn sysd_apparmor_profile_applied_at_exec() {
    if !apparmor_host() {
        skip!("AppArmor is not enabled here (the systemd lane has it)");
    }
    let profile = "sysd-deny-write";
    load_deny_profile(profile);
    let root = Root::new();
    let id = unique("sysd-aa");
    let script = "cat /proc/self/attr/current; echo; \
                  echo x > /tmp/ok && echo tmp-write-ok; \
                  if echo x > /denied/f; then echo denied-write-succeeded; else echo denied-write-refused; fi";
    let b = Bundle::with(&["sh", "-c", script], |s| {
        s["process"]["apparmorProfile"] = json!(profile);
    });
    std::fs::create_dir_all(b.path().join("rootfs/denied")).unwrap();
    let (code, out, err) = root.run_bundle(&b, &id);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("sysd-deny-write (enforce)"), "{out}");
    assert!(out.contains("tmp-write-ok"), "{out}");
    assert!(out.contains("denied-write-refused"), "{out}");
    assert!(!b.path().join("rootfs/denied/f").exists());

    // exec: the container's profile, and --apparmor on an unconfined container.
    let mut c = b.config();
    c["process"]["args"] = json!(["sleep", "600"]);
    b.set_config(&c);
    let id = unique("sysd-aa");
    start_with(&root, &b, &id, &[]);
    let cur = root.ok(&["exec", &id, "cat", "/proc/self/attr/current"]);
    assert!(cur.contains("sysd-deny-write (enforce)"), "{cur}");
    root.ok(&["delete", "--force", &id]);
    c["process"]
        .as_object_mut()
        .unwrap()
        .remove("apparmorProfile");
    b.set_config(&c);
    let id = unique("sysd-aa");
    start_with(&root, &b, &id, &[]);
    let cur = root.ok(&["exec", &id, "cat", "/proc/self/attr/current"]);
    assert!(cur.starts_with("unconfined"), "{cur}");
    let cur = root.ok(&[
        "exec",
        "--apparmor",
        profile,
        &id,
        "sh",
        "-c",
        "cat /proc/self/attr/current; echo x > /denied/g || echo refused",
    ]);
    assert!(cur.contains("sysd-deny-write (enforce)"), "{cur}");
    assert!(cur.contains("refused"), "{cur}");
    root.ok(&["delete", "--force", &id]);

    // A profile the kernel does not know.
    let id = unique("sysd-aa");
    c["process"]["apparmorProfile"] = json!("sysd-not-loaded");
    c["process"]["args"] = json!(["true"]);
    b.set_config(&c);
    let err = root.fails(&["run", "-b", b.path().to_str().unwrap(), &id]);
    assert!(err.contains("apparmor"), "{err}");
    assert!(err.contains("sysd-not-loaded"), "{err}");
    assert_nothing_left(&root, &id, &b);
}

/// Where the host has no AppArmor, a requested profile is a clear error (create and exec),
/// and `features` says AppArmor is off; where it has, `features` says on.
#[test]
fn sysd_apparmor_features_and_absence() {
    let root = Root::new();
    let f: serde_json::Value = serde_json::from_str(&root.ok(&["features"])).unwrap();
    let on = apparmor_host();
    assert_eq!(f["linux"]["apparmor"]["enabled"], json!(on), "{f}");
    if on {
        return;
    }
    let id = unique("sysd-noaa");
    let b = Bundle::with(&["true"], |s| {
        s["process"]["apparmorProfile"] = json!("some-profile");
    });
    let err = root.fails(&["run", "-b", b.path().to_str().unwrap(), &id]);
    assert!(
        err.contains("AppArmor is not enabled on this host"),
        "{err}"
    );
    assert_nothing_left(&root, &id, &b);
    let b = Bundle::new(&["sleep", "600"]);
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    let err = root.fails(&["exec", "--apparmor", "p", &id, "true"]);
    assert!(
        err.contains("AppArmor is not enabled on this host"),
        "{err}"
    );
    root.ok(&["delete", "--force", &id]);
}

/// Debian's podman with private storage, `--cgroup-manager systemd --runtime berth`, and a
/// busybox image imported as `localhost/sysd-busybox`; every container is removed on drop.
struct Podman {
    work: TempDir,
}

impl Podman {
    /// None where podman is missing.
    fn new() -> Option<Podman> {
        std::process::Command::new("podman")
            .arg("--version")
            .output()
            .ok()?;
        let p = Podman {
            work: TempDir::new("sysd-podman"),
        };
        let rootfs = p.work.path().join("rootfs");
        busybox_rootfs(&rootfs);
        let tar = p.work.path().join("rootfs.tar");
        let st = std::process::Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        p.ok(&[
            "import",
            tar.to_str().unwrap(),
            "localhost/sysd-busybox:latest",
        ]);
        Some(p)
    }

    /// One podman command, bounded: 300 s, then it is killed (exit status 124).
    fn run(&self, args: &[&str]) -> std::process::Output {
        let d = self.work.path();
        println!("sysd: podman {args:?}");
        std::process::Command::new("timeout")
            .args(["--kill-after=10", "300", "podman"])
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "systemd",
                "--events-backend",
                "file",
                "--runtime",
                BERTH,
            ])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        must(&format!("podman {args:?}"), self.run(args), "")
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-f", "-a"]);
    }
}

/// podman with `--cgroup-manager systemd --runtime berth` (Debian's podman, in the lane's VM):
/// run, exec, stop and rm, with the container in its `libpod-ID.scope` and its limits in the
/// scope's unit properties.
#[test]
fn sysd_podman_with_the_systemd_cgroup_manager() {
    if !systemd_host() {
        skip!("{NO_SYSTEMD}");
    }
    let Some(podman) = Podman::new() else {
        skip!("no podman here");
    };
    let ok = |args: &[&str]| podman.ok(args);

    let out = ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/sysd-busybox",
        "echo",
        "hello from berth",
    ]);
    assert_eq!(out.trim(), "hello from berth");

    let name = unique("sysd-pod");
    let cid = ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--cpu-shares",
        "512",
        "localhost/sysd-busybox",
        "sleep",
        "600",
    ]);
    let cid = cid.trim();
    let unit = format!("libpod-{cid}.scope");
    assert_eq!(unit_prop(&unit, "ActiveState"), "active", "{unit}");
    assert_eq!(unit_prop(&unit, "TasksMax"), "50");
    if is_v2() {
        assert_eq!(unit_prop(&unit, "MemoryMax"), "67108864");
    } else {
        assert_eq!(unit_prop(&unit, "MemoryLimit"), "67108864");
        assert_eq!(unit_prop(&unit, "CPUShares"), "512");
    }
    let pid = ok(&["inspect", "--format", "{{.State.Pid}}", &name]);
    let cg = proc_cgroup(pid.trim());
    assert!(cg.ends_with(&format!("/{unit}")), "{cg}");
    assert!(cg.starts_with("/machine.slice/"), "{cg}");
    // podman confines containers with its AppArmor profile where the host has AppArmor.
    let label = ok(&["exec", &name, "cat", "/proc/self/attr/current"]);
    assert!(
        label.contains("containers-default") && label.contains("(enforce)"),
        "{label}"
    );
    let out = ok(&["exec", &name, "sh", "-c", "echo exec-ok"]);
    assert_eq!(out.trim(), "exec-ok");
    ok(&["stop", "-t", "2", &name]);
    assert_ne!(unit_prop(&unit, "ActiveState"), "active");
    ok(&["rm", &name]);
    assert_eq!(unit_prop(&unit, "LoadState"), "not-found");
}

/// Rootless: an unprivileged user with a systemd user instance (the lane's lingering
/// `sysdtest`, uid 1000) gets a scope from its own manager over the session bus, in
/// `user.slice` of `user@1000.service`, with its properties; delete stops it.
#[test]
fn sysd_rootless_scope_in_the_user_instance() {
    if !systemd_host() {
        skip!("{NO_SYSTEMD}");
    }
    let bus = Path::new("/run/user/1000/bus");
    if !bus.exists() {
        skip!("no user instance with a session bus for uid 1000 here (the lane has one)");
    }
    let root = Root::new();
    let b = Bundle::new(&["true"]);
    let chown = |p: &Path| {
        let st = std::process::Command::new("chown")
            .args(["-R", "1000:1000"])
            .arg(p)
            .status()
            .unwrap();
        assert!(st.success());
    };
    chown(root.path());
    // Output through files, not pipes: a created container inherits them.
    let as_user = |args: &[&str]| -> std::process::Output {
        let tmp = TempDir::new("sysd-out");
        let (o, e) = (tmp.path().join("out"), tmp.path().join("err"));
        let status = std::process::Command::new("setpriv")
            .args(["--reuid=1000", "--regid=1000", "--clear-groups"])
            .env("XDG_RUNTIME_DIR", "/run/user/1000")
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus")
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        std::process::Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        }
    };
    let spec_dir = TempDir::new("sysd-rootless");
    chown(spec_dir.path());
    must(
        "spec --rootless",
        as_user(&[
            BERTH,
            "spec",
            "--rootless",
            "-b",
            spec_dir.path().to_str().unwrap(),
        ]),
        "",
    );
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(spec_dir.path().join("config.json")).unwrap())
            .unwrap();
    spec["root"]["path"] = json!(b.path().join("rootfs"));
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(["sleep", "600"]);
    if is_v2() {
        spec["linux"]["resources"] = json!({"pids": {"limit": 20}});
    }
    b.set_config(&spec);
    let id = unique("sysd-rl");
    let berth = |args: &[&str]| {
        let mut all = vec![
            BERTH,
            "--root",
            root.path().to_str().unwrap(),
            "--systemd-cgroup",
        ];
        all.extend_from_slice(args);
        must(&format!("berth {args:?} as uid 1000"), as_user(&all), "")
    };
    berth(&["create", "-b", b.path().to_str().unwrap(), &id]);
    berth(&["start", &id]);
    let st: serde_json::Value = serde_json::from_str(&berth(&["state", &id])).unwrap();
    let pid = st["pid"].to_string();
    let cg = proc_cgroup(&pid);
    let unit = format!("berth-{id}.scope");
    assert!(
        cg.ends_with(&format!("/user@1000.service/user.slice/{unit}")),
        "{cg}"
    );
    let show = |prop: &str| {
        must(
            "systemctl --user show",
            as_user(&["systemctl", "--user", "show", &unit, "-p", prop, "--value"]),
            "",
        )
        .trim()
        .to_string()
    };
    assert_eq!(show("ActiveState"), "active");
    if is_v2() {
        assert_eq!(show("TasksMax"), "20");
        let pids_max = Path::new("/sys/fs/cgroup")
            .join(cg.trim_start_matches('/'))
            .join("pids.max");
        if pids_max.exists() {
            assert_eq!(std::fs::read_to_string(&pids_max).unwrap().trim(), "20");
        }
    }
    berth(&["delete", "--force", &id]);
    assert_eq!(show("LoadState"), "not-found");
}

/// Whether criu works on this kernel (it does in the lane's VM, not on the 6.18 hosts).
fn criu_works() -> bool {
    std::process::Command::new("criu")
        .arg("check")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A loop that prints "TOKEN COUNT" every second, the token read once into its memory: a
/// restored process goes on with the same token and the next count, a restarted one would
/// start again with a new token. /token is replaced by a rename, so a reader never sees it
/// half written.
const TOKEN_COUNTER: &str = "read t </proc/sys/kernel/random/uuid; i=0; \
    while :; do i=$((i+1)); echo \"$t $i\"; echo \"$t\" >/token.new; mv /token.new /token; \
    sleep 1; done";

/// The last "TOKEN COUNT" line of `text`.
fn last_count(text: &str) -> Option<(String, u64)> {
    let (t, n) = text.lines().rev().find_map(|l| l.split_once(' '))?;
    Some((t.to_string(), n.trim().parse().ok()?))
}

/// `podman container checkpoint` and `restore` with `--runtime berth`: the counting
/// container goes on counting with the same memory, in a network namespace of its own
/// (`--network none`) and in one podman joins by path (the default bridge, set up by
/// netavark), then takes exec and a checkpoint with `--leave-running` (which podman passes
/// twice).
#[test]
fn sysd_podman_checkpoint_and_restore() {
    if !systemd_host() {
        skip!("{NO_SYSTEMD}");
    }
    if !criu_works() {
        skip!("criu check fails on this kernel");
    }
    let Some(podman) = Podman::new() else {
        skip!("no podman here");
    };
    for net in ["none", "bridge"] {
        let name = unique(&format!("sysd-ck-{net}"));
        podman.ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            net,
            "localhost/sysd-busybox",
            "sh",
            "-c",
            TOKEN_COUNTER,
        ]);
        let logs = || podman.ok(&["logs", &name]);
        wait_for(
            || last_count(&logs()).is_some_and(|(_, n)| n >= 2),
            "the counter to count",
        );
        let sandbox = podman.ok(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.SandboxKey}}",
            &name,
        ]);
        assert_eq!(
            sandbox.trim().starts_with("/run/netns/"),
            net == "bridge",
            "{net}: {sandbox}"
        );
        podman.ok(&["container", "checkpoint", &name]);
        let (token, at) = last_count(&logs()).unwrap();
        let state = podman.ok(&["inspect", "--format", "{{.State.Status}}", &name]);
        assert_eq!(state.trim(), "exited", "{net}");

        podman.ok(&["container", "restore", &name]);
        let state = podman.ok(&["inspect", "--format", "{{.State.Status}}", &name]);
        assert_eq!(state.trim(), "running", "{net}");
        wait_for(
            || last_count(&logs()).is_some_and(|(_, n)| n > at),
            "the restored counter to go on",
        );
        let all = logs();
        let tokens: std::collections::BTreeSet<&str> =
            all.lines().filter_map(|l| l.split(' ').next()).collect();
        assert_eq!(tokens.len(), 1, "{net}: restarted, not restored:\n{all}");
        assert!(
            all.lines().any(|l| *l == format!("{token} {}", at + 1)),
            "{net}: the count goes on from {at}:\n{all}"
        );
        let inside = podman.ok(&["exec", &name, "cat", "/token"]);
        assert_eq!(inside.trim(), token);
        podman.ok(&["container", "checkpoint", "--leave-running", &name]);
        let state = podman.ok(&["inspect", "--format", "{{.State.Status}}", &name]);
        assert_eq!(state.trim(), "running", "{net}: --leave-running");
        podman.ok(&["rm", "-f", &name]);
    }
}

/// containerd's `ctr` through its runc shim with berth as the runtime binary: `ctr c
/// checkpoint --task` (the shim pauses the task and runs `berth checkpoint --leave-running`),
/// then, with the task and container gone, `ctr c restore --live` (the shim runs `berth
/// restore ... -no-subreaper`, Go's one-dash spelling, into a rootfs made afresh): the task
/// runs again with the memory it had.
#[test]
fn sysd_ctr_checkpoint_and_restore() {
    if !systemd_host() {
        skip!("{NO_SYSTEMD}");
    }
    if !criu_works() {
        skip!("criu check fails on this kernel");
    }
    let Some(podman) = Podman::new() else {
        skip!("no podman here (it makes the image)");
    };
    // A containerd of its own (in the VM, where no other runs).
    let dir = TempDir::new("sysd-ctd");
    let d = dir.path();
    let sock = d.join("ctd.sock");
    let mut daemon = std::process::Command::new("containerd")
        .arg("--root")
        .arg(d.join("root"))
        .arg("--state")
        .arg(d.join("state"))
        .arg("--address")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(d.join("containerd.log")).unwrap())
        .spawn()
        .expect("containerd");
    let ctr = |args: &[&str]| {
        std::process::Command::new("ctr")
            .arg("--address")
            .arg(&sock)
            .args(["--namespace", "sysd-ck"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let log = || std::fs::read_to_string(d.join("containerd.log")).unwrap_or_default();
    let ok = |args: &[&str]| must(&format!("ctr {args:?}"), ctr(args), &log());
    let _stop = OnDrop(|| {
        let _ = ctr(&["task", "kill", "-s", "SIGKILL", "sysd-k1"]);
        let _ = ctr(&["task", "delete", "-f", "sysd-k1"]);
        let _ = ctr(&["container", "delete", "sysd-k1"]);
    });
    let _daemon = OnDrop(|| {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(daemon.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = daemon.wait();
    });
    wait_for_secs(60, || ctr(&["version"]).status.success(), "containerd");
    let tar = podman.work.path().join("oci.tar");
    podman.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        tar.to_str().unwrap(),
        "localhost/sysd-busybox",
    ]);
    ok(&[
        "images",
        "import",
        "--base-name",
        "localhost/sysd-busybox",
        "--digests",
        tar.to_str().unwrap(),
    ]);
    let image = "localhost/sysd-busybox:latest";
    ok(&[
        "run",
        "-d",
        "--runc-binary",
        BERTH,
        image,
        "sysd-k1",
        "sh",
        "-c",
        TOKEN_COUNTER,
    ]);
    let token = || {
        let out = ctr(&[
            "task",
            "exec",
            "--exec-id",
            &unique("e"),
            "sysd-k1",
            "cat",
            "/token",
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let mut before = String::new();
    wait_for(
        || {
            before = token();
            !before.is_empty()
        },
        "the counter's first token",
    );
    ok(&[
        "container",
        "checkpoint",
        "--task",
        "sysd-k1",
        "localhost/sysd-k1-ck:1",
    ]);
    assert!(
        ok(&["task", "ls"]).contains("RUNNING"),
        "the shim resumed it"
    );
    ok(&["task", "kill", "-s", "SIGKILL", "sysd-k1"]);
    wait_for(
        || ok(&["task", "ls"]).contains("STOPPED"),
        "the killed task to stop",
    );
    ok(&["task", "delete", "sysd-k1"]);
    ok(&["container", "delete", "sysd-k1"]);

    ok(&[
        "container",
        "restore",
        "--live",
        "sysd-k1",
        "localhost/sysd-k1-ck:1",
    ]);
    let tasks = ok(&["task", "ls"]);
    assert!(
        tasks.contains("sysd-k1") && tasks.contains("RUNNING"),
        "{tasks}"
    );
    // The rootfs is new (no --rw): /token comes back once the restored loop writes it.
    let mut after = String::new();
    wait_for(
        || {
            after = token();
            !after.is_empty()
        },
        "the restored counter to write its token",
    );
    assert_eq!(after, before, "restarted, not restored");
}
