//! No unbounded wait: a frozen or busy cgroup at create is refused naming it, an exec into a
//! paused container is refused unless --ignore-paused and then returns without waiting on
//! the freezer, and `events` ends when its container goes. Every berth call here runs under
//! a bound: a hang fails the test instead of wedging it.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// Run berth with `args` under `root`, killing it and failing if it takes over `secs`.
/// Output goes through files: a process berth leaves behind would hold a pipe open.
fn bounded(root: &Root, args: &[&str], secs: u64) -> Output {
    let tmp = TempDir::new("harden-out");
    let (o, e) = (tmp.path().join("out"), tmp.path().join("err"));
    let child = root
        .cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .unwrap();
    let status = wait_bounded(child, secs, &format!("{args:?}"));
    Output {
        status,
        stdout: std::fs::read(&o).unwrap(),
        stderr: std::fs::read(&e).unwrap(),
    }
}

fn wait_bounded(mut child: Child, secs: u64, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("berth {what} still running after {secs} s: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A cgroup made by the test (frozen or holding a process); thawed, emptied and removed on
/// drop.
struct TestCgroup {
    dir: PathBuf,
    name: String,
    sleeper: Option<Child>,
}

impl TestCgroup {
    fn new(prefix: &str) -> TestCgroup {
        let name = unique(prefix);
        let dir = if v2() {
            PathBuf::from("/sys/fs/cgroup").join(&name)
        } else {
            PathBuf::from("/sys/fs/cgroup/freezer").join(&name)
        };
        std::fs::create_dir(&dir).unwrap();
        TestCgroup {
            dir,
            name,
            sleeper: None,
        }
    }
    fn freeze(&self, on: bool) {
        if v2() {
            std::fs::write(self.dir.join("cgroup.freeze"), if on { "1" } else { "0" }).unwrap();
        } else {
            std::fs::write(
                self.dir.join("freezer.state"),
                if on { "FROZEN" } else { "THAWED" },
            )
            .unwrap();
        }
    }
    fn occupy(&mut self) {
        let child = Command::new("sleep").arg("300").spawn().unwrap();
        std::fs::write(self.dir.join("cgroup.procs"), child.id().to_string()).unwrap();
        self.sleeper = Some(child);
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        self.freeze(false);
        if let Some(mut c) = self.sleeper.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn bundle_in(cgroup: &str) -> Bundle {
    Bundle::with(&["true"], |s| {
        s["linux"]["cgroupsPath"] = json!(format!("/{cgroup}"));
    })
}

#[test]
fn create_in_a_frozen_cgroup_is_refused_naming_it() {
    let cg = TestCgroup::new("harden-frozen");
    cg.freeze(true);
    let root = Root::new();
    let b = bundle_in(&cg.name);
    let id = unique("harden-fz");
    let out = bounded(
        &root,
        &["create", "-b", b.path().to_str().unwrap(), &id],
        30,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is frozen") && err.contains(&cg.name), "{err}");
    assert!(root.is_empty());
    // Only the test's own cgroup is left (create made the others and removed them).
    let left = cgroups_named(&cg.name);
    assert_eq!(left, vec![cg.dir.clone()], "left: {left:?}");
}

#[test]
fn create_in_a_busy_cgroup_is_refused_naming_it() {
    let mut cg = TestCgroup::new("harden-busy");
    cg.occupy();
    let root = Root::new();
    let b = bundle_in(&cg.name);
    let id = unique("harden-bz");
    let out = bounded(
        &root,
        &["create", "-b", b.path().to_str().unwrap(), &id],
        30,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is not empty") && err.contains(&cg.name),
        "{err}"
    );
    assert!(root.is_empty());
    assert_eq!(cgroups_named(&cg.name), vec![cg.dir.clone()]);
}

#[test]
fn exec_into_a_paused_container() {
    let root = Root::new();
    let id = unique("harden-paused");
    let b = Bundle::new(&["sleep", "300"]);
    root.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), &id]);
    root.ok(&["pause", &id]);
    // Refused without --ignore-paused, saying how.
    let out = bounded(&root, &["exec", &id, "true"], 30);
    let err = String::from_utf8_lossy(&out.stderr);
    // 255: the runtime failed before the process ran, as runc's exec reports it.
    assert_eq!(out.status.code(), Some(255));
    assert!(
        err.contains("paused") && err.contains("--ignore-paused"),
        "{err}"
    );
    // With it: returns at once with the process waiting, frozen, in the container.
    let marker = b.path().join("rootfs/tmp/ran");
    let pidfile = b.path().join("exec.pid");
    let out = bounded(
        &root,
        &[
            "exec",
            "-d",
            "--ignore-paused",
            "--pid-file",
            pidfile.to_str().unwrap(),
            &id,
            "sh",
            "-c",
            "echo ran > /tmp/ran",
        ],
        30,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert!(!marker.exists(), "the process ran in a paused container");
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let init = root.state(&id)["pid"].as_i64().unwrap();
    let init_cgroups = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    assert_eq!(
        cgroups, init_cgroups,
        "the exec'd process is in the container's cgroup"
    );
    // The lock is free and resume is not stuck; then the process runs.
    let out = bounded(&root, &["resume", &id], 30);
    assert!(out.status.success());
    wait_for(|| marker.exists(), "the exec'd process ran after resume");
    root.ok(&["delete", "--force", &id]);
}

#[test]
fn events_end_when_the_container_goes() {
    for how in ["exit", "delete"] {
        let root = Root::new();
        let id = unique("harden-events");
        let b = Bundle::new(&["sleep", "300"]);
        root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
        root.ok(&["start", &id]);
        let events = root
            .cmd()
            .args(["events", "--interval", "1s", &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        match how {
            "exit" => root.ok(&["kill", &id, "KILL"]),
            _ => root.ok(&["delete", "--force", &id]),
        };
        let status = wait_bounded(events, 20, "events");
        assert!(status.code().is_some(), "{how}");
        let _ = root.run(&["delete", "--force", &id]);
    }
}
