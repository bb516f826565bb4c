//! Configs and process.json files as runc users write them by hand (issue 7, items 4 and 7):
//! keys in any case, an empty namespace path, device access letters in any order, relative
//! masked paths, fields berth does not know, a template extended with what it already has,
//! and exec processes without a user or an env.
mod common;

use common::*;
use serde_json::{json, Value};

/// Every key of `v` named `from` renamed to `to` (objects only, at any depth).
fn rename(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::Object(m) => {
            if let Some(x) = m.remove(from) {
                m.insert(to.to_string(), x);
            }
            for x in m.values_mut() {
                rename(x, from, to);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rename(x, from, to)),
        _ => {}
    }
}

fn hand_written(script: &str) -> Bundle {
    Bundle::with(&["sh", "-c", script], |s| {
        s["hostname"] = json!("handmade");
        let linux = &mut s["linux"];
        linux["resources"]["pids"] = json!({"LIMIT": 77});
        linux["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "wrrw"},
            {"allow": true, "type": "c", "major": 1, "minor": 12, "access": "rwa"},
            {"allow": true, "type": "c", "major": 1, "minor": 13, "access": "mrw"}
        ]);
        linux["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "uts");
        linux["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "uts", "path": ""}));
        linux["maskedPaths"] = json!(["proc/timer_list", "/proc/keys"]);
        linux["readonlyPaths"] = json!(["proc/sys"]);
        s["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_CHOWN"]);
        s["process"]["notAField"] = json!(true);
        s["notAFieldEither"] = json!({"x": 1});
        rename(s, "process", "Process");
        rename(s, "capabilities", "CAPABILITIES");
        rename(s, "args", "Args");
        rename(s, "maskedPaths", "maskedpaths");
        rename(s, "readonlyPaths", "READONLYPATHS");
        rename(s, "hostname", "hostName");
    })
}

/// runc decodes config.json with Go's encoding/json: keys match fields case-insensitively,
/// and fields it does not know are ignored without a word. An empty namespace path is a new
/// namespace, device access letters come in any order (others are dropped), and relative
/// masked and readonly paths are taken from the container's root.
#[test]
fn a_hand_written_config_runs_as_under_runc() {
    let root = Root::new();
    let id = unique("st-hand");
    let script = "hostname; grep CapBnd /proc/self/status; wc -c < /proc/timer_list; \
                  awk '$2 == \"/proc/sys\" { split($4, o, \",\"); print o[1] }' /proc/mounts";
    let b = hand_written(script);
    let out = root.run(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("notAField") && !stderr.to_lowercase().contains("warn"),
        "unknown fields are not warned about: {stderr}"
    );
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    let pids_max = std::fs::read_to_string(cgroup_file(pid, "pids", "pids.max")).unwrap();
    assert_eq!(pids_max.trim(), "77", "LIMIT is pids.limit");
    if std::path::Path::new("/sys/fs/cgroup/devices").exists() {
        let list = std::fs::read_to_string(cgroup_file(pid, "devices", "devices.list")).unwrap();
        for line in ["c 1:11 rw", "c 1:12 rw", "c 1:13 rwm"] {
            assert!(list.lines().any(|l| l == line), "{line} in\n{list}");
        }
    }
    root.ok(&["start", &id]);
    wait_for(
        || root.state(&id)["status"] == "stopped",
        "the container's script",
    );
    root.ok(&["delete", &id]);

    // The same config run in the foreground, to read what the process saw.
    let id = unique("st-hand");
    let (code, stdout, stderr) = root.run_bundle(&b, &id);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0], "handmade",
        "hostName, in a new uts namespace: {stdout}"
    );
    // CAP_CHOWN (0) and CAP_KILL (5).
    assert_eq!(
        lines[1].split_whitespace().nth(1),
        Some("0000000000000021"),
        "{stdout}"
    );
    assert_eq!(lines[2].trim(), "0", "proc/timer_list is masked: {stdout}");
    assert_eq!(lines[3].trim(), "ro", "proc/sys is read-only: {stdout}");
    assert!(
        !stderr.contains("notAField"),
        "unknown fields are not warned about: {stderr}"
    );
    assert!(root.is_empty());

    // With --debug, the ignored fields are named (at debug level).
    let mut cfg = b.config();
    cfg["root"]["path"] = json!("/nonexistent-st-rootfs");
    b.set_config(&cfg);
    let out = root.run(&["--debug", "create", "-b", b.path().to_str().unwrap(), &id]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for field in ["notAFieldEither", "process.notAField"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("level=debug") && l.contains(&format!("unknown field {field}"))),
            "{field}: {stderr}"
        );
    }
    assert!(root.is_empty());
}

/// Device access as runc reads it: an empty access is refused with runc's words.
#[test]
fn an_empty_device_access_is_refused_as_runc_refuses_it() {
    let root = Root::new();
    let id = unique("st-devacc");
    let b = Bundle::with(&["true"], |s| {
        s["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 11}]);
    });
    let err = root.fails(&["run", "-b", b.path().to_str().unwrap(), &id]);
    assert!(
        err.contains("device access at 1 field cannot be empty"),
        "{err}"
    );
    assert_nothing_left(&root, &id, &b);
}

/// `berth spec` writes runc's template for this host: a cgroup namespace only where
/// /sys/fs/cgroup is cgroup2, no ambient or inheritable capabilities; and a config that adds
/// what the template already has still runs.
#[test]
fn the_template_for_this_host_and_configs_that_repeat_it() {
    let t = template();
    let unified = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let ns: Vec<&str> = t["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(ns.contains(&"cgroup"), unified, "{ns:?}");
    let caps = &t["process"]["capabilities"];
    assert!(
        caps.get("ambient").is_none() && caps.get("inheritable").is_none(),
        "{caps}"
    );
    assert!(t["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .contains(&json!("/sys/devices/virtual/tpm")));

    let root = Root::new();
    let id = unique("st-repeat");
    let b = Bundle::with(&["sh", "-c", "echo ok; ulimit -n; echo $A"], |s| {
        let again = |v: &mut Value| {
            let first = v.as_array().unwrap()[0].clone();
            v.as_array_mut().unwrap().push(first);
        };
        again(&mut s["mounts"]);
        let shm = s["mounts"].as_array().unwrap()[3].clone();
        s["mounts"].as_array_mut().unwrap().push(shm);
        again(&mut s["process"]["capabilities"]["bounding"]);
        again(&mut s["process"]["capabilities"]["effective"]);
        s["process"]["rlimits"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "RLIMIT_NOFILE", "hard": 512, "soft": 512}));
        s["process"]["env"]
            .as_array_mut()
            .unwrap()
            .extend([json!("A=1"), json!("A=2")]);
        again(&mut s["linux"]["maskedPaths"]);
        again(&mut s["linux"]["readonlyPaths"]);
        again(&mut s["linux"]["resources"]["devices"]);
    });
    let (code, stdout, stderr) = root.run_bundle(&b, &id);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "ok\n512\n2\n");
    assert!(root.is_empty());
}

/// A started container to exec into.
fn running(root: &Root, id: &str) -> Bundle {
    let b = Bundle::new(&["sleep", "300"]);
    root.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), id]);
    b
}

fn exec_process(root: &Root, id: &str, process: &Value) -> std::process::Output {
    let dir = TempDir::new("st-proc");
    let f = dir.path().join("process.json");
    std::fs::write(&f, serde_json::to_vec(process).unwrap()).unwrap();
    root.run(&["exec", "-p", f.to_str().unwrap(), id])
}

/// process.json for `exec -p` as runc decodes it: no user is uid 0, no env is an empty env
/// plus HOME from the container's /etc/passwd (or "/" for a user it does not list), an empty
/// HOME is replaced, a variable given twice is set once with its last value, and a value
/// with a newline is kept. No cwd is runc's error.
#[test]
fn exec_processes_as_runc_reads_them() {
    let root = Root::new();
    let id = unique("st-exec");
    let _b = running(&root, &id);
    let show = r#"id -u; echo "HOME=$HOME"; env | grep -c '^A='; echo "A=$A"; printf '%s|' "$NL"; echo; env | grep -vE '^(A|HOME|NL|PWD|SHLVL|PATH|_)=' | grep -v '^b$' | tr '\n' ' '; echo end"#;

    let out = exec_process(&root, &id, &json!({"cwd": "/", "args": ["sh", "-c", show]}));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[..4], ["0", "HOME=/root", "0", "A="], "{stdout}");
    assert_eq!(
        lines.last().map(|l| l.trim()),
        Some("end"),
        "no other env: {stdout}"
    );

    let out = exec_process(
        &root,
        &id,
        &json!({"cwd": "/", "args": ["sh", "-c", show],
                "env": ["A=1", "HOME=", "NL=a\nb", "A=2"]}),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().take(6).collect::<Vec<_>>(),
        ["0", "HOME=/root", "1", "A=2", "a", "b|"],
        "{stdout}"
    );

    let out = exec_process(
        &root,
        &id,
        &json!({"cwd": "/", "user": {"uid": 4242, "gid": 4242}, "args": ["sh", "-c", show]}),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().take(2).collect::<Vec<_>>(),
        ["4242", "HOME=/"],
        "{stdout}"
    );

    let out = exec_process(&root, &id, &json!({"args": ["true"]}));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Cwd property must not be empty"), "{err}");

    root.ok(&["delete", "--force", &id]);
    assert!(root.is_empty());
}

/// HOME for the container's own process: from /etc/passwd when the env has it empty.
#[test]
fn run_gets_home_from_passwd_when_the_env_has_it_empty() {
    let root = Root::new();
    let id = unique("st-home");
    let b = Bundle::with(&["sh", "-c", "echo \"$HOME\"; env | grep -c ^HOME="], |s| {
        s["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("HOME="));
    });
    let (code, stdout, stderr) = root.run_bundle(&b, &id);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "/root\n1\n");
}

/// A namespace listed twice is refused as runc refuses it (specconv: "malformed spec file:
/// duplicated ns"), with the same path, different paths, or one path and none.
#[test]
fn a_namespace_listed_twice_is_runcs_error() {
    let root = Root::new();
    let net = "/proc/self/ns/net";
    for (a, b) in [(Some(net), Some(net)), (Some(net), None), (None, None)] {
        let id = unique("st-dupns");
        let entry = |p: Option<&str>| match p {
            Some(p) => json!({"type": "network", "path": p}),
            None => json!({"type": "network"}),
        };
        let bundle = Bundle::with(&["true"], |s| {
            let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "network");
            ns.push(entry(a));
            ns.push(entry(b));
        });
        let err = root.fails(&["run", "-b", bundle.path().to_str().unwrap(), &id]);
        assert!(
            err.contains("malformed spec file: duplicated ns {\"network\""),
            "{a:?} {b:?}: {err}"
        );
        assert_nothing_left(&root, &id, &bundle);
    }
}
