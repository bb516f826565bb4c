//! Faults during create. Two ways of killing it:
//! - fault injection: a debug build of berth dies at the point `BERTH_FAULT` names
//!   (`src/fault.rs`), every phase of `berth create` and every setup step of the init;
//! - a timing sweep: `berth create` SIGKILLed after a growing delay.
//!
//! After each, `berth delete --force ID`, or the next create of the same id, must leave
//! exactly nothing: no state dir, no entry under --root, no mount in the host's namespace,
//! no cgroup directory in any hierarchy (every v1 controller and the unified one), no
//! process.
mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// Every point in `berth create`, in the order it passes them (`create:cgroup-partly`
/// is after the first hierarchy of several on v1).
const CREATE_POINTS: &[&str] = &[
    "create:state-dir",
    "create:cgroup-planned",
    "create:fifo",
    "create:cgroup-partly",
    "create:cgroup",
    "create:clone",
    "create:go",
    "create:cgroup-joined",
    "create:config",
    "create:run-hooks",
    "create:hooks",
    "create:hooks-done",
    "create:ready",
    "create:state",
];

/// Every setup step of the container init.
const INIT_POINTS: &[&str] = &[
    "init:fds",
    "init:cgroup-joined",
    "init:go",
    "init:namespaces",
    "init:keyring",
    "init:mounts",
    "init:cgroup",
    "init:run-hooks",
    "init:hooks-done",
    "init:create-container-hooks",
    "init:pivot",
    "init:session",
    "init:rootfs-finish",
    "init:names",
    "init:program",
    "init:ready",
];

/// Processes whose command line or cgroup names `id` (the init runs berth's image with the
/// create's argv until it execs).
fn processes_of(id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cgroup = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(id) || cgroup.contains(id) {
            out.push(format!("pid {name}: {}", String::from_utf8_lossy(&cmdline)));
        }
    }
    out
}

/// Everything of `id` still on the host, one line each; empty when nothing is left.
fn leftovers(root: &Root, id: &str, bundle: &str) -> Vec<String> {
    let mut left = Vec::new();
    for e in state_entries(root.path()) {
        left.push(format!("under --root: {}", e.display()));
    }
    let root_path = root.path().to_str().unwrap();
    for l in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
    {
        if l.contains(bundle) || l.contains(root_path) || l.contains(id) {
            left.push(format!("mount: {l}"));
        }
    }
    for d in cgroups_named(id) {
        left.push(format!("cgroup: {}", d.display()));
    }
    left.extend(
        processes_of(id)
            .into_iter()
            .map(|p| format!("process: {p}")),
    );
    left
}

/// Assert nothing of `id` is left. A process whose create was killed before it joined the
/// cgroup (v1) sees end-of-file on its socket and exits by itself: that one is waited for
/// (bounded), the rest must be gone at once.
fn assert_clean(root: &Root, id: &str, bundle: &str, when: &str) {
    wait_for(
        || processes_of(id).is_empty(),
        "the init of a killed create to exit",
    );
    let left = leftovers(root, id, bundle);
    assert!(left.is_empty(), "{when}: left behind:\n{}", left.join("\n"));
}

/// Remove what a failed assertion would leave (best effort; the assertion says what).
struct Cleanup<'a>(&'a Root, String);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["delete", "--force", &self.1]);
    }
}

/// `berth create` with `BERTH_FAULT=point`. stderr goes through a file: an init left
/// waiting on its exec fifo holds it open.
fn create_with_fault(root: &Root, bundle: &str, id: &str, point: &str) -> std::process::Output {
    let tmp = TempDir::new("hd-fault-err");
    let err = tmp.path().join("err");
    let status = root
        .cmd()
        .args(["create", "-b", bundle, id])
        .env("BERTH_FAULT", point)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    std::process::Output {
        status,
        stdout: Vec::new(),
        stderr: std::fs::read(&err).unwrap(),
    }
}

/// A bundle whose create passes every point: a prestart hook (the parent's hooks), a
/// createContainer hook, a hostname.
fn bundle() -> Bundle {
    Bundle::with(&["sleep", "100"], |c| {
        c["hostname"] = "hd-fault".into();
        c["hooks"] = serde_json::json!({
            "prestart": [{"path": "/bin/true"}],
            "createContainer": [{"path": "/bin/true"}],
        });
    })
}

#[test]
fn create_killed_at_each_point_leaves_nothing() {
    let root = Root::new();
    let b = bundle();
    let bundle = b.path().to_str().unwrap().to_string();
    for point in CREATE_POINTS {
        // Then `delete --force`.
        let id = unique("hd-fault");
        let _c = Cleanup(&root, id.clone());
        let out = create_with_fault(&root, &bundle, &id, point);
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{point}: create was not killed there ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        root.ok(&["delete", "--force", &id]);
        assert_clean(
            &root,
            &id,
            &bundle,
            &format!("{point}, then delete --force"),
        );

        // Then a create of the same id, which must clean up first and succeed.
        let id = unique("hd-fault");
        let _c = Cleanup(&root, id.clone());
        let out = create_with_fault(&root, &bundle, &id, point);
        assert_eq!(out.status.signal(), Some(9), "{point}: not killed");
        if *point == "create:state" {
            // The container exists: state.json was written.
            assert!(root
                .fails(&["create", "-b", &bundle, &id])
                .contains("already exists"));
        } else {
            root.ok(&["create", "-b", &bundle, &id]);
        }
        root.ok(&["delete", "--force", &id]);
        assert_clean(&root, &id, &bundle, &format!("{point}, then create again"));
    }
    println!(
        "faults: {} create points, each killed twice",
        CREATE_POINTS.len()
    );
}

#[test]
fn init_dying_at_each_step_leaves_nothing() {
    let root = Root::new();
    let b = bundle();
    let bundle = b.path().to_str().unwrap().to_string();
    for point in INIT_POINTS {
        let id = unique("hd-fault");
        let _c = Cleanup(&root, id.clone());
        let out = create_with_fault(&root, &bundle, &id, point);
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            // Only after Ready can the create win the race with the init's exit.
            assert_eq!(*point, "init:ready", "{point}: create succeeded");
        } else {
            assert_eq!(out.status.code(), Some(1), "{point}: {}: {err}", out.status);
            assert!(
                err.contains("exited with status 137") || err.contains("died during create"),
                "{point}: the error does not say how the init died: {err}"
            );
            // The failed create undid everything itself.
            assert_clean(
                &root,
                &id,
                &bundle,
                &format!("{point}: after the failed create"),
            );
        }
        root.ok(&["delete", "--force", &id]);
        assert_clean(
            &root,
            &id,
            &bundle,
            &format!("{point}, then delete --force"),
        );
        // The id is usable again.
        root.ok(&["create", "-b", &bundle, &id]);
        root.ok(&["delete", "--force", &id]);
        assert_clean(
            &root,
            &id,
            &bundle,
            &format!("{point}, then create and delete"),
        );
    }
    println!("faults: {} init steps", INIT_POINTS.len());
}

#[test]
fn create_killed_at_any_time_leaves_nothing_after_delete_force() {
    let root = Root::new();
    let b = bundle();
    let bundle = b.path().to_str().unwrap().to_string();
    let mut killed = 0;
    for step in 0..40u64 {
        let id = unique("hd-fault");
        let _c = Cleanup(&root, id.clone());
        let mut child = root
            .cmd()
            .args(["create", "-b", &bundle, &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(step * 500));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.code().is_none() {
            killed += 1;
        }
        // Odd steps: the next create of the id cleans up (unless the container was
        // recorded before the kill); even ones: delete --force.
        let recorded = root.path().join(&id).join("state.json").exists();
        if step % 2 == 1 && status.code().is_none() && !recorded {
            root.ok(&["create", "-b", &bundle, &id]);
        }
        root.ok(&["delete", "--force", &id]);
        assert_clean(
            &root,
            &id,
            &bundle,
            &format!("killed after {} us", step * 500),
        );
    }
    println!("faults: {killed} of 40 creates killed mid-way");
    assert!(killed > 0, "no create was killed mid-way");
}
