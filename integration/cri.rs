//! The CRI lane: how a Kubernetes node runs berth. containerd 1.6 (Debian's) is started here
//! with private root, state and socket, from the README's config snippet, so its CRI plugin
//! starts pods through the runc shim with berth as `BinaryName`. Our own CRI client
//! (`integration/cri/cri.py`, grpcio with our own message definitions) plays the kubelet:
//! a pod sandbox, two containers sharing its network, IPC and UTS namespaces, ExecSync,
//! limits read back from the cgroup, stats, an update, exit codes and OOMKilled, stop with a
//! grace period, and removal of everything, after which no process, mount or cgroup is left.
//!
//! Pods get their own network namespace from a CNI `ptp` network. containerd (and so the CNI
//! plugins, which it runs) lives in a network namespace the test makes, so the host side of
//! each pod's veth never touches the host's own network; pods only talk over loopback.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::*;
use serde_json::{json, Value};

const IMAGE: &str = "localhost/cri-busybox:latest";
const MIB: i64 = 1 << 20;

/// A containerd with the CRI plugin, its own root, state, socket and network namespace.
struct Containerd {
    dir: PathBuf,
    child: Child,
    /// Pods to remove (with their containers) if the test fails half way.
    pods: std::cell::RefCell<Vec<String>>,
}

/// The README's containerd snippet for a Kubernetes node (the first toml block after the
/// `<!-- cri-config -->` marker).
fn readme_snippet() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let after = readme
        .split("<!-- cri-config -->")
        .nth(1)
        .expect("README.md has a <!-- cri-config --> marker before the containerd snippet");
    let block = after.split("```toml\n").nth(1).expect("a ```toml block");
    block.split("```").next().unwrap().to_string()
}

/// The snippet with test-private settings: top-level keys first (TOML wants them before any
/// table), then root, state and sockets, the CRI plugin's sandbox image and CNI dirs, then the
/// snippet's tables, its berth path pointing at the argv-capturing wrapper with a private
/// berth root.
fn containerd_config(d: &Path, wrapper: &Path) -> String {
    let snippet = readme_snippet();
    let (top, tables) = snippet.split_at(snippet.find("\n[").map_or(0, |i| i + 1));
    assert!(
        tables.contains("BinaryName = \"/usr/local/bin/berth\""),
        "the README snippet points BinaryName at /usr/local/bin/berth:\n{snippet}"
    );
    let tables = tables.replace(
        "BinaryName = \"/usr/local/bin/berth\"",
        &format!(
            "BinaryName = \"{}\"\n  Root = \"{}/berth\"",
            wrapper.display(),
            d.display()
        ),
    );
    format!(
        "{top}root = \"{0}/root\"\nstate = \"{0}/state\"\n\
         [grpc]\n  address = \"{0}/ctd.sock\"\n\
         [ttrpc]\n  address = \"{0}/ctd.sock.ttrpc\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"{IMAGE}\"\n  \
         netns_mounts_under_state_dir = true\n  restrict_oom_score_adj = {restrict}\n\
         [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"/usr/lib/cni\"\n  \
         conf_dir = \"{0}/net.d\"\n{tables}",
        d.display(),
        restrict = restrict_oom_score_adj()
    )
}

/// Whether we may lower oom_score_adj (CAP_SYS_RESOURCE); on hosts whose bounding set lacks
/// it (this project's machines), containerd must keep scores at or above its own, or the
/// sandbox's -998 fails with EACCES, under runc as under berth.
fn restrict_oom_score_adj() -> bool {
    !caps::has_cap(
        None,
        caps::CapSet::Bounding,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false)
}

impl Containerd {
    fn start(d: &Path, wrapper: &Path) -> Containerd {
        std::fs::create_dir_all(d.join("net.d")).unwrap();
        // A point-to-point veth per pod; addresses from the documentation range, routed only
        // inside containerd's own network namespace.
        let cni = json!({
            "cniVersion": "0.4.0",
            "name": "cri-ptp",
            "plugins": [{
                "type": "ptp",
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": "192.0.2.0/26"}]],
                    "dataDir": d.join("ipam"),
                },
            }],
        });
        std::fs::write(d.join("net.d/10-cri-ptp.conflist"), cni.to_string()).unwrap();
        let config = containerd_config(d, wrapper);
        std::fs::write(d.join("config.toml"), &config).unwrap();
        let child = Command::new("unshare")
            .args(["--net", "--", "sh", "-c"])
            .arg("ip link set lo up && exec containerd --config \"$0\"")
            .arg(d.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("containerd.log")).unwrap())
            .spawn()
            .expect("containerd is needed: apt-get install -y containerd");
        let c = Containerd {
            dir: d.to_path_buf(),
            child,
            pods: Default::default(),
        };
        wait_for_secs(
            30,
            || c.call_raw("Version", json!({})).status.success(),
            "containerd's CRI socket",
        );
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    fn ctr(&self, args: &[&str]) -> String {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(self.dir.join("ctd.sock"))
            .args(["--namespace", "k8s.io"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        must(&format!("ctr {args:?}"), out, &self.log())
    }

    fn call_raw(&self, method: &str, req: Value) -> Output {
        let tmp = TempDir::new("cri-req");
        let req_file = tmp.path().join("req.json");
        std::fs::write(&req_file, req.to_string()).unwrap();
        Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/integration/cri/cri.py"
            ))
            .arg(self.dir.join("ctd.sock"))
            .arg(method)
            .env("PYTHONPATH", python_path())
            .stdin(std::fs::File::open(&req_file).unwrap())
            .output()
            .expect("python3 is needed")
    }

    /// A CRI call that must succeed; returns the response.
    fn call(&self, method: &str, req: Value) -> Value {
        let out = self.call_raw(method, req.clone());
        let text = must(&format!("CRI {method} {req}"), out, &self.log());
        serde_json::from_str(&text).unwrap()
    }

    /// A CRI call that must fail; returns the error (`CODE: details`).
    fn call_err(&self, method: &str, req: Value) -> String {
        let out = self.call_raw(method, req.clone());
        assert!(
            !out.status.success(),
            "CRI {method} {req} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn container_status(&self, id: &str) -> (Value, Value) {
        let r = self.call(
            "ContainerStatus",
            json!({"container_id": id, "verbose": true}),
        );
        let info = r["info"]["info"]
            .as_str()
            .map(|s| serde_json::from_str(s).unwrap())
            .unwrap_or(Value::Null);
        (r["status"].clone(), info)
    }

    fn wait_exited(&self, id: &str) -> Value {
        let mut last = Value::Null;
        wait_for_secs(
            30,
            || {
                last = self.container_status(id).0;
                last["state"] == 2
            },
            &format!("container {id} to exit"),
        );
        last
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for pod in self.pods.borrow().iter() {
            let _ = self.call_raw("StopPodSandbox", json!({"pod_sandbox_id": pod}));
            let _ = self.call_raw("RemovePodSandbox", json!({"pod_sandbox_id": pod}));
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// Where scripts/test.sh installs grpcio from PyPI (`pip install --target target/py grpcio`).
fn python_path() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/target/py").to_string()
}

fn ns(pid: &str, kind: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap()
}

/// A limit the container's cgroup holds, read from the host (v1 file, or the v2 one).
fn cgroup_value(pid: i64, controller: &str, v1: &str, v2: &str) -> String {
    let f = cgroup_file(pid, controller, v1);
    let f = if f.exists() {
        f
    } else {
        cgroup_file(pid, controller, v2)
    };
    std::fs::read_to_string(&f)
        .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
        .trim()
        .to_string()
}

fn container_config(name: &str, script: &str, resources: Value) -> Value {
    json!({
        "metadata": {"name": name},
        "image": {"image": IMAGE},
        "command": ["sh", "-c", script],
        "log_path": format!("{name}.log"),
        "linux": {
            "resources": resources,
            // The kubelet's defaults: the pod's network and IPC, a pid namespace of its own.
            "security_context": {"namespace_options": {"network": 0, "pid": 1, "ipc": 0}},
        },
    })
}

#[test]
fn kubernetes_pod_through_containerd_cri() {
    assert!(
        Path::new(&python_path()).join("grpc").exists(),
        "the CRI client needs grpcio in target/py: python3 -m pip install --target target/py grpcio (scripts/test.sh does it)"
    );
    let work = TempDir::new("cri");
    let d = work.path();
    let argv = ArgvCapture::new("containerd-cri", d);
    let tar = oci_image(d, "latest", &["sleep", "1000000"]);
    let ctd = Containerd::start(d, &argv.path);
    ctd.ctr(&[
        "images",
        "import",
        "--base-name",
        "localhost/cri-busybox",
        "--digests",
        tar.to_str().unwrap(),
    ]);
    let v = ctd.call("Version", json!({"version": "v1"}));
    assert_eq!(v["runtime_name"], "containerd", "{v}");

    // The pod: its own network namespace (CNI), IPC and UTS shared by its containers, a pid
    // namespace per container (the kubelet's default), under a cgroup parent of ours.
    let cgroup_parent = format!("/{}", unique("cri-pod"));
    let _parent_guard = CgroupParentGuard(cgroup_parent.clone());
    let pod_config = json!({
        "metadata": {"name": "cri-pod", "uid": unique("cri-uid"), "namespace": "cri-test"},
        "hostname": "cri-pod",
        "log_directory": d.join("logs"),
        "linux": {
            "cgroup_parent": cgroup_parent,
            "security_context": {"namespace_options": {"network": 0, "pid": 1, "ipc": 0}},
        },
    });
    let pod = ctd.call("RunPodSandbox", json!({"config": pod_config}))["pod_sandbox_id"]
        .as_str()
        .unwrap()
        .to_string();
    ctd.pods.borrow_mut().push(pod.clone());
    let ps = ctd.call(
        "PodSandboxStatus",
        json!({"pod_sandbox_id": pod, "verbose": true}),
    );
    assert_eq!(
        ps["status"]["state"],
        Value::Null,
        "SANDBOX_READY is 0: {ps}"
    );
    let ip = ps["status"]["network"]["ip"].as_str().unwrap_or_default();
    assert!(ip.starts_with("192.0.2."), "the pod's CNI address: {ps}");
    let pod_info: Value = serde_json::from_str(ps["info"]["info"].as_str().unwrap()).unwrap();
    let pause_pid = pod_info["pid"].as_i64().unwrap();

    let create = |config: Value| -> String {
        ctd.call(
            "CreateContainer",
            json!({"pod_sandbox_id": pod, "config": config, "sandbox_config": pod_config}),
        )["container_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let limits = json!({
        "cpu_period": 100000, "cpu_quota": 50000, "cpu_shares": 512,
        "memory_limit_in_bytes": 64 * MIB,
    });
    // "web" exits 7 on SIGTERM; "side" ignores SIGTERM, so its stop needs the SIGKILL that
    // follows the grace period.
    let web = create(container_config(
        "web",
        "trap 'exit 7' TERM; echo web-started; while :; do sleep 0.1; done",
        limits,
    ));
    let side = create(container_config(
        "side",
        "trap '' TERM; while :; do sleep 0.1; done",
        json!({}),
    ));
    for c in [&web, &side] {
        ctd.call("StartContainer", json!({"container_id": c}));
    }
    let (st, info) = ctd.container_status(&web);
    assert_eq!(st["state"], 1, "running: {st}");
    let web_pid = info["pid"].as_i64().unwrap();
    let side_pid = ctd.container_status(&side).1["pid"].as_i64().unwrap();
    let (pause, web_p, side_p) = (
        pause_pid.to_string(),
        web_pid.to_string(),
        side_pid.to_string(),
    );

    // Namespaces: both containers joined the sandbox's network, IPC and UTS namespaces (by
    // path), which are not the host's; each has its own pid and mount namespaces.
    for kind in ["net", "ipc", "uts"] {
        assert_ne!(
            ns(&pause, kind),
            ns("self", kind),
            "the pod has its own {kind} ns"
        );
        for pid in [&web_p, &side_p] {
            assert_eq!(ns(pid, kind), ns(&pause, kind), "{kind} ns of {pid}");
        }
    }
    for kind in ["pid", "mnt"] {
        assert_ne!(ns(&web_p, kind), ns(&pause, kind), "{kind}");
        assert_ne!(ns(&web_p, kind), ns(&side_p, kind), "{kind}");
    }

    // Limits from the CRI request, read back from the cgroup (under our cgroup parent).
    let cg = std::fs::read_to_string(format!("/proc/{web_pid}/cgroup")).unwrap();
    assert!(cg.contains(&format!("{cgroup_parent}/{web}")), "{cg}");
    assert_eq!(
        cgroup_value(web_pid, "memory", "memory.limit_in_bytes", "memory.max"),
        (64 * MIB).to_string()
    );
    if cgroup_file(web_pid, "cpu", "cpu.cfs_quota_us").exists() {
        assert_eq!(
            cgroup_value(web_pid, "cpu", "cpu.cfs_quota_us", ""),
            "50000"
        );
        assert_eq!(
            cgroup_value(web_pid, "cpu", "cpu.cfs_period_us", ""),
            "100000"
        );
        assert_eq!(cgroup_value(web_pid, "cpu", "cpu.shares", ""), "512");
    } else {
        assert_eq!(cgroup_value(web_pid, "cpu", "", "cpu.max"), "50000 100000");
    }
    // UpdateContainerResources goes through `berth update`.
    ctd.call(
        "UpdateContainerResources",
        json!({"container_id": web, "linux": {
            "cpu_period": 100000, "cpu_quota": 20000, "cpu_shares": 512,
            "memory_limit_in_bytes": 96 * MIB,
        }}),
    );
    assert_eq!(
        cgroup_value(web_pid, "memory", "memory.limit_in_bytes", "memory.max"),
        (96 * MIB).to_string()
    );

    // ExecSync: output, exit codes, the pod's hostname, and a liveness command that fails.
    let exec = |c: &str, cmd: &[&str]| {
        ctd.call(
            "ExecSync",
            json!({"container_id": c, "cmd": cmd, "timeout": 30}),
        )
    };
    let r = exec(&web, &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(
        (&r["stdout"], &r["stderr"], &r["exit_code"]),
        (&json!("out\n"), &json!("err\n"), &json!(3)),
        "{r}"
    );
    assert_eq!(exec(&side, &["hostname"])["stdout"], "cri-pod\n");
    assert_eq!(exec(&web, &["false"])["exit_code"], 1);
    // An exec whose binary is missing is an error naming the cause, from berth's log.
    let err = ctd.call_err(
        "ExecSync",
        json!({"container_id": web, "cmd": ["/no-such-probe"], "timeout": 30}),
    );
    assert!(err.contains("/no-such-probe"), "{err}");
    // The containers share the pod's loopback: one listens, the other connects.
    ctd.call(
        "ExecSync",
        json!({"container_id": web, "cmd": ["sh", "-c", "nc -l -p 7070 -e echo via-lo >/dev/null 2>&1 &"], "timeout": 30}),
    );
    let mut got = Value::Null;
    wait_for(
        || {
            got = exec(&side, &["sh", "-c", "nc 127.0.0.1 7070 </dev/null"]);
            got["stdout"] == "via-lo\n"
        },
        "the side container to reach the web container over the pod's loopback",
    );

    // Stats, from the container's cgroup.
    let stats = ctd.call("ContainerStats", json!({"container_id": web}))["stats"].clone();
    assert_eq!(stats["attributes"]["id"], web.as_str(), "{stats}");
    assert!(
        stats["cpu"]["usage_core_nano_seconds"]["value"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{stats}"
    );
    assert!(
        stats["memory"]["working_set_bytes"]["value"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{stats}"
    );

    // Stop with a grace period: web's TERM trap exits 7; side ignores TERM and is killed
    // once its one-second grace period is over.
    ctd.call("StopContainer", json!({"container_id": web, "timeout": 10}));
    let st = ctd.wait_exited(&web);
    assert_eq!(
        (&st["exit_code"], &st["reason"]),
        (&json!(7), &json!("Error")),
        "{st}"
    );
    ctd.call("StopContainer", json!({"container_id": side, "timeout": 1}));
    let st = ctd.wait_exited(&side);
    assert_eq!(st["exit_code"], 137, "{st}");
    let log = std::fs::read_to_string(d.join("logs/web.log")).unwrap_or_default();
    assert!(log.contains("web-started"), "the container log: {log}");

    // Exit codes and reasons: a plain exit code, a clean exit, and a container over its
    // memory limit.
    let code = create(container_config("code", "exit 3", json!({})));
    let done = create(container_config("done", "true", json!({})));
    let oom = create(container_config(
        "oom",
        "head -c 200m /dev/zero | tail",
        json!({"memory_limit_in_bytes": 16 * MIB, "memory_swap_limit_in_bytes": 16 * MIB}),
    ));
    for c in [&code, &done, &oom] {
        ctd.call("StartContainer", json!({"container_id": c}));
    }
    let st = ctd.wait_exited(&code);
    assert_eq!(
        (&st["exit_code"], &st["reason"]),
        (&json!(3), &json!("Error")),
        "{st}"
    );
    let st = ctd.wait_exited(&done);
    assert_eq!(
        (&st["exit_code"], &st["reason"]),
        (&Value::Null, &json!("Completed")),
        "{st}"
    );
    let st = ctd.wait_exited(&oom);
    assert_eq!(st["reason"], "OOMKilled", "{st}");
    assert_eq!(st["exit_code"], 137, "{st}");

    // Remove everything; then nothing is left.
    let all = [&web, &side, &code, &done, &oom];
    for c in all {
        ctd.call("RemoveContainer", json!({"container_id": c}));
    }
    let listed = ctd.call("ListContainers", json!({"filter": {"pod_sandbox_id": pod}}));
    assert_eq!(listed, json!({}), "no containers left in the pod");
    ctd.call("StopPodSandbox", json!({"pod_sandbox_id": pod}));
    ctd.call("RemovePodSandbox", json!({"pod_sandbox_id": pod}));
    ctd.pods.borrow_mut().clear();
    assert_eq!(ctd.call("ListPodSandbox", json!({})), json!({}));

    for pid in [pause_pid, web_pid, side_pid] {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} left"
        );
    }
    let berth_root = d.join("berth/k8s.io");
    let left = state_entries(&berth_root);
    assert!(left.is_empty(), "berth state left: {left:?}");
    assert_eq!(mounts_mentioning(d.to_str().unwrap()), 0, "mounts left");
    for c in all.iter().map(|c| c.as_str()).chain([pod.as_str()]) {
        assert!(
            cgroups_named(c).is_empty(),
            "cgroups left: {:?}",
            cgroups_named(c)
        );
    }
    remove_cgroup_parent(&cgroup_parent);

    // Every runtime call the shim made, and the flags it used.
    let summary = argv.report();
    for cmd in ["create", "start", "exec", "kill", "delete", "update"] {
        assert!(summary.contains(&format!("  {cmd}:")), "{summary}");
    }
}

/// Removes the pod's cgroup parent (as the kubelet would) if a failed test left it.
struct CgroupParentGuard(String);

impl Drop for CgroupParentGuard {
    fn drop(&mut self) {
        for dir in cgroup_parent_dirs(&self.0) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn cgroup_parent_dirs(parent: &str) -> Vec<PathBuf> {
    let name = parent.trim_start_matches('/');
    let mut dirs = cgroups_named(name);
    if Path::new("/sys/fs/cgroup").join(name).is_dir() {
        dirs.push(Path::new("/sys/fs/cgroup").join(name));
    }
    dirs
}

/// The pod's cgroup parent, in every hierarchy: it must have no children left; then it goes.
fn remove_cgroup_parent(parent: &str) {
    for dir in cgroup_parent_dirs(parent) {
        let children: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name())
            .collect();
        assert!(
            children.is_empty(),
            "cgroups left in {}: {children:?}",
            dir.display()
        );
        std::fs::remove_dir(&dir).unwrap_or_else(|e| panic!("rmdir {}: {e}", dir.display()));
    }
}
