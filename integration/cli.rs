//! Issue 7, items 8 to 12: the commands around a container (`list`, `events`, `exec
//! --cgroup`, `kill --all`, `delete --force`) compared with runc where runc can run the same.
//! Ids and cgroups start with `cl-`.
mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

/// runc (Debian's package) with a private `--root`; every container left in it is
/// force-deleted on drop.
struct Runc {
    root: TempDir,
}

impl Runc {
    fn new() -> Runc {
        assert!(
            Command::new("runc").arg("--version").output().is_ok(),
            "runc is needed for the comparison: apt-get install -y runc"
        );
        Runc {
            root: TempDir::new("cl-runc-root"),
        }
    }
    fn run(&self, args: &[&str]) -> std::process::Output {
        let tmp = TempDir::new("cl-runc-out");
        let (o, e) = (tmp.path().join("out"), tmp.path().join("err"));
        let status = Command::new("runc")
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        std::process::Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        }
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "runc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
    /// Its output with its own spec version (the state's `ociVersion`) replaced by berth's.
    fn ok_as_berth(&self, args: &[&str]) -> String {
        let version = String::from_utf8(
            Command::new("runc")
                .arg("--version")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let spec = version
            .lines()
            .find_map(|l| l.strip_prefix("spec: "))
            .expect("runc --version prints its spec version")
            .to_string();
        let ours = template()["ociVersion"].as_str().unwrap().to_string();
        self.ok(args)
            .replace(
                &format!("\"ociVersion\":\"{spec}\""),
                &format!("\"ociVersion\":\"{ours}\""),
            )
            .replace(
                &format!("\"ociVersion\": \"{spec}\""),
                &format!("\"ociVersion\": \"{ours}\""),
            )
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(self.root.path()) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.run(&["delete", "--force", &id]);
            }
        }
    }
}

/// Rewrite `created` in a state.json (runc's or berth's) so two runs print the same time.
fn set_created(state_json: &std::path::Path, when: &str) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(state_json).unwrap()).unwrap();
    v["created"] = json!(when);
    std::fs::write(state_json, serde_json::to_vec(&v).unwrap()).unwrap();
}

fn pid_alive(pid: i64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
}

/// `list` as runc prints it, byte for byte: two stopped containers (pid 0) with the same ids,
/// times and annotations under runc and berth give the same table, JSON and `-q`; an empty
/// root gives runc's empty table and `null`; a `--root` that does not exist is an error.
#[test]
fn list_prints_what_runc_prints() {
    let runc = Runc::new();
    let root = Root::new();
    let ids = [unique("cl-list"), unique("cl-list-with-a-longer-id")];
    let b = Bundle::with(&["sleep", "100"], |s| {
        s["annotations"] = json!({"org.b": "x<y>", "org.a": "1&2"});
    });
    let bundle = b.path().to_str().unwrap();
    // The same bytes for an empty root.
    for args in [&["list"][..], &["list", "-f", "json"], &["list", "-q"]] {
        assert_eq!(root.ok(args), runc.ok(args), "{args:?} of an empty root");
    }
    let times = ["2026-12-02T00:43:44.5765Z", "2026-12-02T00:43:45Z"];
    for (id, when) in ids.iter().zip(times) {
        root.ok(&["create", "-b", bundle, id]);
        runc.ok(&["create", "-b", bundle, id]);
        for (dir, tool) in [(root.path(), "berth"), (runc.root.path(), "runc")] {
            let pid = if tool == "berth" {
                root.state(id)["pid"].as_i64().unwrap()
            } else {
                let s: Value = serde_json::from_str(&runc.ok(&["state", id])).unwrap();
                s["pid"].as_i64().unwrap()
            };
            set_created(&dir.join(id).join("state.json"), when);
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            wait_for(|| !pid_alive(pid), "the init to die");
        }
    }
    for args in [&["list"][..], &["list", "-f", "json"], &["list", "-q"]] {
        let ours = root.ok(args);
        assert_eq!(ours, runc.ok_as_berth(args), "{args:?}");
        if args.len() == 1 {
            assert!(ours.contains("stopped"), "{ours}");
        }
    }
    for id in &ids {
        assert_eq!(
            root.ok(&["state", id]),
            runc.ok_as_berth(&["state", id]),
            "state {id}"
        );
        root.ok(&["delete", id]);
        runc.ok(&["delete", id]);
    }
    // A --root that does not exist: runc 1.5's error (1.1.5 made the directory instead).
    let missing = root.path().join("cl-missing");
    let out = Command::new(BERTH)
        .arg("--root")
        .arg(&missing)
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "open {}: no such file or directory",
            missing.display()
        )),
        "{err}"
    );
    assert!(!missing.exists());
}
