//! OCI hooks as runc runs them (issue 7 item 18): failures at each point of the lifecycle,
//! the environment a hook inherits, the mount namespace each kind runs in, and argv[0].
mod common;

use common::*;
use serde_json::{json, Value};

/// A hook running `script` with /bin/sh (on the host, or in the container for the kinds run
/// there).
fn sh(script: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

fn with_hooks(args: &[&str], hooks: Value) -> Bundle {
    Bundle::with(args, |s| s["hooks"] = hooks)
}

/// A failing hook at create time fails create with runc's words and leaves nothing; the
/// hooks before it ran.
#[test]
fn failing_create_hooks_fail_create_and_leave_nothing() {
    for kind in ["createRuntime", "prestart", "createContainer"] {
        let root = Root::new();
        let dir = TempDir::new("compat-hookmark");
        let mark = dir.path().join("first");
        let b = with_hooks(
            &["true"],
            json!({ kind: [sh(&format!("touch {}", mark.display())), {"path": "/bin/false"}] }),
        );
        let id = unique("compat-hookfail");
        let err = root.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
        assert!(
            err.contains(&format!(
                "error running {kind} hook #1: /bin/false: exit status 1"
            )),
            "{kind}: {err}"
        );
        assert!(mark.exists(), "{kind}: the first hook ran");
        assert_nothing_left(&root, &id, &b);
    }
}

/// A failing poststart hook makes `start` fail and stops the container, as runc does (the
/// runtime-spec would only warn).
#[test]
fn failing_poststart_fails_start_and_stops_the_container() {
    let root = Root::new();
    let b = with_hooks(
        &["sleep", "100"],
        json!({"poststart": [{"path": "/bin/false"}]}),
    );
    let id = unique("compat-poststart");
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    let err = root.fails(&["start", &id]);
    assert!(
        err.contains("error running poststart hook #0: /bin/false: exit status 1"),
        "{err}"
    );
    assert_eq!(root.state(&id)["status"], "stopped");
    root.ok(&["delete", &id]);
    assert!(root.is_empty());
}

/// A failing poststop hook is a warning: delete succeeds and removes the container.
#[test]
fn failing_poststop_is_a_warning() {
    let root = Root::new();
    let b = with_hooks(&["true"], json!({"poststop": [{"path": "/bin/false"}]}));
    let id = unique("compat-poststop");
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    root.ok(&["start", &id]);
    wait_for(|| root.state(&id)["status"] == "stopped", "exit");
    let out = root.run(&["delete", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("poststop hook #0"));
    assert!(root.is_empty());
    assert!(cgroups_named(&id).is_empty());
}

/// A hook without `env` inherits as runc's do: createContainer and startContainer the
/// container process's env, the runtime's hooks the runtime's env; a hook with `env` gets
/// only that.
#[test]
fn hook_environment_as_runc() {
    let root = Root::new();
    let dir = TempDir::new("compat-hookenv");
    let out = dir.path().join("env");
    let rec = |name: &str| {
        sh(&format!(
            "echo \"{name} [$FROM_PROCESS] [$FROM_RUNTIME] [$OWN]\" >> {}",
            out.display()
        ))
    };
    let mut own = rec("own");
    own["env"] = json!(["OWN=1"]);
    let b = Bundle::with(&["true"], |s| {
        s["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("FROM_PROCESS=p"));
        s["hooks"] = json!({
            "createRuntime": [rec("createRuntime"), own],
            "createContainer": [rec("createContainer")],
            "startContainer": [sh("echo \"startContainer [$FROM_PROCESS] [$FROM_RUNTIME]\" > /hookenv")],
            "poststop": [rec("poststop")],
        });
    });
    let id = unique("compat-hookenv");
    let status = root
        .cmd()
        .args(["run", "-b", b.path().to_str().unwrap(), &id])
        .env("FROM_RUNTIME", "r")
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "createRuntime [] [r] []",
            "own [] [] [1]",
            "createContainer [p] [] []",
            "poststop [] [r] []",
        ],
        "{text}"
    );
    let inside = std::fs::read_to_string(b.path().join("rootfs/hookenv")).unwrap();
    assert_eq!(inside.trim(), "startContainer [p] []");
}

/// prestart, createRuntime, poststart and poststop run in the runtime's mount namespace;
/// createContainer and startContainer in the container's. argv[0] is the hook's args[0]
/// (busybox runs the applet argv[0] names).
#[test]
fn hooks_run_in_the_mount_namespace_the_spec_names_with_argv0_kept() {
    let root = Root::new();
    let dir = TempDir::new("compat-hookns");
    let log = dir.path().join("ns");
    let rec = |name: &str| json!({"path": "/bin/busybox", "args": ["sh", "-c", format!("echo {name} $(readlink /proc/self/ns/mnt) >> {}", log.display())]});
    let b = with_hooks(
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/mnt > /container-ns; sleep 100",
        ],
        json!({
            "prestart": [rec("prestart")],
            "createRuntime": [rec("createRuntime")],
            "createContainer": [rec("createContainer")],
            "startContainer": [{"path": "/bin/busybox", "args": ["sh", "-c", "echo startContainer $(readlink /proc/self/ns/mnt) > /hookns"]}],
            "poststart": [rec("poststart")],
            "poststop": [rec("poststop")],
        }),
    );
    let id = unique("compat-hookns");
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    root.ok(&["start", &id]);
    let container_ns = b.path().join("rootfs/container-ns");
    // The shell creates the file before readlink's line is in it: wait for the line.
    wait_for(
        || std::fs::read_to_string(&container_ns).is_ok_and(|s| s.ends_with('\n')),
        "the container's first line",
    );
    root.ok(&["delete", "--force", &id]);
    let host = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let host = host.to_str().unwrap();
    let container = std::fs::read_to_string(container_ns).unwrap();
    let container = container.trim();
    assert_ne!(host, container);
    let text = std::fs::read_to_string(&log).unwrap();
    let inside = std::fs::read_to_string(b.path().join("rootfs/hookns")).unwrap();
    let mut seen: Vec<(String, String)> = text
        .lines()
        .chain(inside.lines())
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    seen.sort();
    for (kind, ns) in &seen {
        let want = if kind.ends_with("Container") {
            container
        } else {
            host
        };
        assert_eq!(ns, want, "{kind}");
    }
    let kinds: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "createContainer",
            "createRuntime",
            "poststart",
            "poststop",
            "prestart",
            "startContainer"
        ]
    );
}

/// A failing startContainer hook (run by the init after `start` released it, when create
/// has returned) ends the container, and its error, in runc's words, reaches the log of the
/// create (here its --log file), since no caller waits for it. `start` succeeds, as runc's.
#[test]
fn failing_start_container_hook_reaches_the_log() {
    let root = Root::new();
    let b = with_hooks(&["sleep", "100"], json!({"startContainer": [sh("exit 3")]}));
    let id = unique("cp-starthook");
    let dir = TempDir::new("cp-hooklog");
    let log = dir.path().join("log");
    let log_s = log.to_str().unwrap();
    root.ok(&[
        "--log",
        log_s,
        "create",
        "-b",
        b.path().to_str().unwrap(),
        &id,
    ]);
    root.ok(&["--log", log_s, "start", &id]);
    wait_for(|| root.state(&id)["status"] == "stopped", "the init to end");
    let text = messages(&std::fs::read(&log).unwrap());
    assert!(
        text.contains("error running startContainer hook #0: /bin/sh: exit status 3"),
        "{text}"
    );
    root.ok(&["delete", &id]);
}

/// The pids.max of the cgroup that `/proc/<who>/cgroup` names, written to `out` by a hook.
fn pids_max_of(who: &str, out: &std::path::Path) -> String {
    format!(
        "f=/proc/{who}/cgroup; l=$(grep -E '^[0-9]+:([^:]*,)?pids(,[^:]*)?:' $f); \
         if [ -n \"$l\" ]; then d=/sys/fs/cgroup/pids${{l##*:}}; \
         else l=$(grep '^0::' $f); d=/sys/fs/cgroup${{l##*:}}; fi; cat $d/pids.max > {}",
        out.display()
    )
}

/// The cgroup limits are set before the init's createContainer hooks run, with runtime
/// hooks (then once the mounts are done, before prestart) and without (then while the init
/// mounts): each hook reads pids.max of the container's cgroup.
#[test]
fn limits_are_set_before_the_create_hooks_run() {
    let root = Root::new();
    for prestart in [false, true] {
        let dir = TempDir::new("compat-hooklim");
        let (cc, pre) = (dir.path().join("cc"), dir.path().join("pre"));
        let hook = |script: String| json!({"path": "/bin/busybox", "args": ["sh", "-c", script]});
        let mut hooks = json!({"createContainer": [hook(pids_max_of("self", &cc))]});
        if prestart {
            let script = format!(
                "pid=$(sed 's/.*\"pid\": *\\([0-9]*\\).*/\\1/'); {}",
                pids_max_of("$pid", &pre)
            );
            hooks["prestart"] = json!([hook(script)]);
        }
        let b = Bundle::with(&["true"], |s| {
            s["hooks"] = hooks;
            s["linux"]["resources"]["pids"] = json!({"limit": 77});
            // Paths in /proc/self/cgroup as the host names them.
            if let Some(ns) = s["linux"]["namespaces"].as_array_mut() {
                ns.retain(|n| n["type"] != "cgroup");
            }
        });
        let id = unique("compat-hooklim");
        root.ok(&["run", "-b", b.path().to_str().unwrap(), &id]);
        let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(
            read(&cc).trim(),
            "77",
            "createContainer, prestart: {prestart}"
        );
        if prestart {
            assert_eq!(read(&pre).trim(), "77", "prestart");
        }
    }
}
