//! Bad input everywhere: every command with bad ids, a bad --root, a broken state.json, and
//! create with oversized or hostile config.json files. Each gets one clear error line, exit
//! status 1, and changes nothing (the state root is compared before and after).
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::json;

/// Every command that takes an id, with the arguments it needs besides the id.
fn id_commands(bundle: &str) -> Vec<Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&["create", "-b", bundle]),
        v(&["run", "-b", bundle]),
        v(&["start"]),
        v(&["state"]),
        v(&["kill"]),
        v(&["delete"]),
        v(&["delete", "--force"]),
        v(&["pause"]),
        v(&["resume"]),
        v(&["ps"]),
        v(&["update", "--pids-limit", "10"]),
        v(&["events", "--stats"]),
        v(&["exec"]),
    ]
}

/// The args for one command and id (exec needs a command after the id).
fn with_id(cmd: &[String], id: &str) -> Vec<String> {
    let mut a = cmd.to_vec();
    a.push(id.to_string());
    if a[0] == "exec" {
        a.push("true".into());
    }
    a
}

/// Everything under a directory: relative path → contents (dirs as "<dir>").
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.insert(rel, b"<dir>".to_vec());
                todo.push(p);
            } else if ft.is_file() {
                out.insert(rel, std::fs::read(&p).unwrap());
            } else {
                out.insert(rel, format!("{ft:?}").into_bytes());
            }
        }
    }
    out
}

/// Run berth and require runc's exit status (1; 255 for exec) with one error line
/// containing `want`.
fn refused(root: &Root, args: &[String], want: &str) {
    refused_at(root.path(), args, want)
}

/// The same with any --root (a file, a missing dir).
fn refused_at(root: &Path, args: &[String], want: &str) {
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let out = std::process::Command::new(BERTH)
        .arg("--root")
        .arg(root)
        .args(&a)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = messages(&out.stderr);
    let code = if a.contains(&"exec") { 255 } else { 1 };
    assert_eq!(out.status.code(), Some(code), "berth {a:?}: {err}");
    assert!(err.contains(want), "berth {a:?}: want {want:?} in {err:?}");
    assert_eq!(err.trim_end().lines().count(), 1, "one error line: {err:?}");
}

#[test]
fn every_command_refuses_bad_ids() {
    let root = Root::new();
    let b = Bundle::new(&["true"]);
    let bundle = b.path().to_str().unwrap().to_string();
    let before = snapshot(root.path());
    for cmd in id_commands(&bundle) {
        let creates = cmd[0] == "create" || cmd[0] == "run";
        for (id, want) in [
            ("harden-nope", "does not exist"),
            ("", "invalid container id"),
            ("a/b", "invalid container id"),
            ("..", "invalid container id"),
            ("../harden-x", "invalid container id"),
            (".", "invalid container id"),
        ] {
            if creates && id == "harden-nope" {
                continue; // a fine id for a new container
            }
            if cmd[1..] == ["--force"] && id == "harden-nope" {
                // As runc: forcing the delete of a container that is not there succeeds.
                let out = root.run(&["delete", "--force", id]);
                assert!(out.status.success());
                continue;
            }
            refused(&root, &with_id(&cmd, id), want);
        }
        assert_eq!(snapshot(root.path()), before, "{cmd:?} changed the root");
    }
    assert_eq!(cgroups_named("harden-x").len(), 0);
}

#[test]
fn every_command_refuses_a_bad_root() {
    let b = Bundle::new(&["true"]);
    let bundle = b.path().to_str().unwrap().to_string();
    let dir = TempDir::new("harden-badroot");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a dir").unwrap();
    let missing = dir.path().join("missing");
    for cmd in id_commands(&bundle) {
        let id = unique("harden-br");
        let creates = cmd[0] == "create" || cmd[0] == "run";
        let args = with_id(&cmd, &id);
        let force = cmd[1..] == ["--force"];
        let want = if creates {
            "state root"
        } else {
            "does not exist"
        };
        if force {
            // As runc: nothing to delete is success, and still touches nothing.
            for r in [&file, &missing] {
                let out = std::process::Command::new(BERTH)
                    .arg("--root")
                    .arg(r)
                    .args(&args)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        } else {
            refused_at(&file, &args, want);
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"not a dir");
        if !creates && !force {
            refused_at(&missing, &args, "does not exist");
        }
        assert!(!missing.exists(), "{cmd:?} created the missing root");
        assert_eq!(cgroups_named(&id).len(), 0);
    }
    // list: a root that is a file is an error, and so is a --root that does not exist
    // (runc 1.5; only a missing default root lists nothing).
    refused_at(&file, &["list".into()], "state root");
    refused_at(
        &missing,
        &["list".into(), "-q".into()],
        "no such file or directory",
    );
    assert!(!missing.exists());
}

#[test]
fn every_command_refuses_a_broken_state_json() {
    let root = Root::new();
    let id = unique("harden-corrupt");
    let b = Bundle::new(&["sleep", "100"]);
    let bundle = b.path().to_str().unwrap().to_string();
    root.ok(&["create", "-b", &bundle, &id]);
    let state = root.path().join(&id).join("state.json");
    let good = std::fs::read(&state).unwrap();
    for broken in [
        good[..good.len() / 2].to_vec(),
        Vec::new(),
        b"{\"id\": 17}".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x7b],
    ] {
        std::fs::write(&state, &broken).unwrap();
        let before = snapshot(root.path());
        for cmd in id_commands(&bundle) {
            let want = if cmd[0] == "create" || cmd[0] == "run" {
                "already exists"
            } else {
                "state.json"
            };
            refused(&root, &with_id(&cmd, &id), want);
            assert_eq!(snapshot(root.path()), before, "{cmd:?} changed the root");
        }
        // list skips it with a warning and still succeeds.
        let out = root.run(&["list", "-q"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(&state, &good).unwrap();
    root.ok(&["delete", "--force", &id]);
    assert!(root.is_empty());
}

#[test]
fn create_refuses_hostile_configs() {
    let root = Root::new();
    let id = unique("harden-cfg");
    let b = Bundle::new(&["true"]);
    let bundle = b.path().to_str().unwrap().to_string();
    let good = b.config();
    let create = vec![
        "create".to_string(),
        "-b".into(),
        bundle.clone(),
        id.clone(),
    ];

    // Over 10 MB (a valid config padded with an annotation).
    let mut big = good.clone();
    big["annotations"] = json!({"pad": "x".repeat(11 << 20)});
    b.set_config(&big);
    refused(&root, &create, "larger than");
    assert_nothing_left(&root, &id, &b);

    // 100,000 mounts.
    let mut many = good.clone();
    let m = json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"});
    many["mounts"] = json!(vec![m; 100_000]);
    b.set_config(&many);
    refused(&root, &create, "mounts");
    assert_nothing_left(&root, &id, &b);

    // Deeply nested JSON, in an unknown field and in a known one.
    for field in ["x-unknown", "annotations"] {
        let depth = 100_000;
        let text = format!(
            "{}{}{}",
            serde_json::to_string(&good).unwrap().trim_end_matches('}'),
            format_args!(",\"{field}\":{}", "[".repeat(depth)),
            format_args!("{}}}", "]".repeat(depth))
        );
        std::fs::write(b.path().join("config.json"), text).unwrap();
        refused(&root, &create, "invalid JSON");
        assert_nothing_left(&root, &id, &b);
    }

    // The same limits hold for exec --process.
    b.set_config(&good);
    let sleeper = Bundle::new(&["sleep", "100"]);
    root.ok(&["create", "-b", sleeper.path().to_str().unwrap(), &id]);
    let p = b.path().join("process.json");
    std::fs::write(
        &p,
        format!(
            "{{\"args\":{}1{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    )
    .unwrap();
    refused(
        &root,
        &[
            "exec".into(),
            "--process".into(),
            p.to_str().unwrap().into(),
            id.clone(),
        ],
        "invalid JSON",
    );
    let mut proc_big = good["process"].clone();
    proc_big["env"] = json!(["X=".to_string() + &"y".repeat(11 << 20)]);
    std::fs::write(&p, serde_json::to_vec(&proc_big).unwrap()).unwrap();
    refused(
        &root,
        &[
            "exec".into(),
            "--process".into(),
            p.to_str().unwrap().into(),
            id.clone(),
        ],
        "larger than",
    );
    root.ok(&["delete", "--force", &id]);
    assert!(root.is_empty());
}
