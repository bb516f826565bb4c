//! The soak: cycles of create/start/exec/kill/delete, with failures mixed in (a bad config,
//! a missing binary, a failing hook), counting before and after: the caller's fds, the
//! host's mounts, cgroups in every hierarchy, entries under --root, zombies and berth's
//! peak RSS. Every count must be equal at the end.
//!
//! `cargo test --test soak` runs a short variant (BERTH_SOAK_CYCLES, default 15);
//! `bash scripts/soak.sh [CYCLES]` runs 1,000 (with the same test build) and prints the counts.
mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Counts {
    fds: usize,
    mounts: usize,
    cgroups: usize,
    root_entries: usize,
    zombies: usize,
}

/// Count what a leak would grow. Mounts and cgroups are counted host-wide; other work on
/// the machine may change those, so the assertion uses the ones that name this soak.
fn counts(root: &Root, tag: &str, bundles: &[&str]) -> (Counts, usize, usize) {
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let ours = mountinfo
        .lines()
        .filter(|l| l.contains(tag) || bundles.iter().any(|b| l.contains(b)))
        .count();
    let out = Command::new("find")
        .args(["/sys/fs/cgroup", "-mindepth", "1", "-type", "d"])
        .output()
        .unwrap();
    let all_cg = String::from_utf8_lossy(&out.stdout);
    let our_cg = all_cg.lines().filter(|l| l.contains(tag)).count();
    let me = std::process::id().to_string();
    let zombies = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|s| {
            let rest = s.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = rest.split(' ').collect();
            f.first() == Some(&"Z") && f.get(1) == Some(&me.as_str())
        })
        .count();
    let c = Counts {
        fds,
        mounts: ours,
        cgroups: our_cg,
        root_entries: state_entries(root.path()).len(),
        zombies,
    };
    (c, mountinfo.lines().count(), all_cg.lines().count())
}

/// Run berth; returns (exit code, peak RSS in KiB) from wait4.
fn berth(root: &Root, args: &[&str]) -> (i32, i64) {
    let child = root
        .cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut status = 0;
    // SAFETY: rusage is plain data the kernel fills in; the child is ours and not waited
    // for elsewhere (`child` is forgotten, never waited on).
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid);
    std::mem::forget(child);
    let st = std::process::ExitStatus::from_raw(status);
    (st.code().unwrap_or(-1), ru.ru_maxrss)
}

fn soak(cycles: usize) {
    let tag = unique("hd-soak");
    let root = Root::new();
    let good = Bundle::new(&["sleep", "100"]);
    let bad_json = Bundle::new(&["true"]);
    std::fs::write(bad_json.path().join("config.json"), "{\"ociVersion\": ").unwrap();
    let missing = Bundle::new(&["/no/such/binary"]);
    let hook_fails = Bundle::with(&["true"], |s| {
        s["hooks"] = json!({"prestart": [{"path": "/bin/false"}]});
    });
    let b = |x: &Bundle| x.path().to_str().unwrap().to_string();
    let (g, j, m, h) = (b(&good), b(&bad_json), b(&missing), b(&hook_fails));
    assert!(g.contains("berth-bundle"));
    // Warm up once (first-use allocations, the shared default cgroup parent).
    let id0 = format!("{tag}-warm");
    assert_eq!(berth(&root, &["run", "-d", "-b", &g, &id0]).0, 0);
    assert_eq!(berth(&root, &["delete", "--force", &id0]).0, 0);

    let (before, host_mounts0, host_cgroups0) = counts(&root, &tag, &[&g, &j, &m, &h]);
    let mut rss_first = 0;
    let mut rss_last = 0;
    for i in 0..cycles {
        let id = format!("{tag}-{i}");
        let mut peak = 0;
        let mut step = |args: &[&str], want: i32| {
            let (code, rss) = berth(&root, args);
            assert_eq!(code, want, "cycle {i}: berth {args:?}");
            peak = peak.max(rss);
        };
        step(&["create", "-b", &g, &id], 0);
        step(&["start", &id], 0);
        step(&["exec", &id, "true"], 0);
        step(&["exec", &id, "/no/such/binary"], 255); // runc: exec failures exit 255
        step(&["kill", &id, "KILL"], 0);
        step(&["delete", "--force", &id], 0);
        step(&["create", "-b", &j, &id], 1);
        step(&["create", "-b", &m, &id], 1);
        step(&["create", "-b", &h, &id], 1);
        if i == 0 {
            rss_first = peak;
        }
        rss_last = peak;
    }
    let (after, host_mounts1, host_cgroups1) = counts(&root, &tag, &[&g, &j, &m, &h]);
    println!(
        "soak: {cycles} cycles ({} berth calls); before {before:?}, after {after:?}; host mounts {host_mounts0} -> {host_mounts1}, host cgroups {host_cgroups0} -> {host_cgroups1}; berth peak RSS {rss_first} KiB (first cycle) -> {rss_last} KiB (last)",
        cycles * 9
    );
    assert_eq!(before, after, "a count changed");
    // Each call is a new process; growth here would mean its work grows with history.
    assert!(
        rss_last <= rss_first + 1024,
        "berth's RSS grew: {rss_first} -> {rss_last} KiB"
    );
    assert!(root.is_empty());
    assert!(!Path::new(&g).join("rootfs/proc/self").exists());
}

#[test]
fn soak_short() {
    let cycles = std::env::var("BERTH_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    soak(cycles);
}
