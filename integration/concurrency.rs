//! Concurrency: parallel creates of one id, many containers under concurrent
//! state/list/kill/delete, and delete racing start. Only the expected errors appear, and no
//! state.json is ever seen torn.
mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::*;

/// The errors a command may give when another one got there first.
const RACE_ERRORS: &[&str] = &[
    "does not exist",
    "not running",
    "is stopped",
    "not created",
    "already exists",
];

fn expected(err: &str) -> bool {
    RACE_ERRORS.iter().any(|e| err.contains(e))
}

#[test]
fn parallel_creates_of_one_id_one_wins() {
    let root = Arc::new(Root::new());
    let id = unique("harden-same");
    let b = Arc::new(Bundle::new(&["sleep", "100"]));
    let n = 20;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (root, b, id, barrier) = (root.clone(), b.clone(), id.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                root.run(&["create", "-b", b.path().to_str().unwrap(), &id])
            })
        })
        .collect();
    let outs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let wins = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(wins, 1, "exactly one create wins");
    for o in outs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(o.status.code(), Some(1));
    }
    assert_eq!(root.state(&id)["status"], "created");
    root.ok(&["delete", "--force", &id]);
    assert!(root.is_empty());
    assert!(cgroups_named(&id).is_empty());
}

#[test]
fn fifty_containers_with_concurrent_commands() {
    let root = Arc::new(Root::new());
    let b = Arc::new(Bundle::new(&["sleep", "100"]));
    let ids: Arc<Vec<String>> = Arc::new((0..50).map(|_| unique("harden-many")).collect());
    // Create them in parallel (5 workers), then start each.
    let workers: Vec<_> = (0..5)
        .map(|w| {
            let (root, b, ids) = (root.clone(), b.clone(), ids.clone());
            thread::spawn(move || {
                for id in ids.iter().skip(w).step_by(5) {
                    root.ok(&["create", "-b", b.path().to_str().unwrap(), id]);
                    root.ok(&["start", id]);
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(root.ok(&["list", "-q"]).lines().count(), 50);

    // Readers: state and list in a loop, checking every state.json they see is whole.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (root, ids, stop) = (root.clone(), ids.clone(), stop.clone());
            thread::spawn(move || {
                let mut seen = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let out = root.run(&["list", "-f", "json"]);
                    let err = String::from_utf8_lossy(&out.stderr);
                    assert!(out.status.success(), "list: {err}");
                    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                        .unwrap_or_else(|e| panic!("torn list output: {e}"));
                    // runc prints null for an empty list.
                    assert!(v.is_array() || v.is_null(), "{v}");
                    for id in ids.iter().skip(r).step_by(7) {
                        let out = root.run(&["state", id]);
                        if out.status.success() {
                            let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                                .unwrap_or_else(|e| panic!("torn state: {e}"));
                            assert_eq!(v["id"], id.as_str());
                            seen += 1;
                        } else {
                            let err = String::from_utf8_lossy(&out.stderr);
                            assert!(expected(&err), "state {id}: {err}");
                        }
                    }
                }
                seen
            })
        })
        .collect();
    // Killers and deleters on overlapping halves.
    let actors: Vec<_> = (0..4)
        .map(|w| {
            let (root, ids) = (root.clone(), ids.clone());
            thread::spawn(move || {
                for id in ids.iter().skip(w % 2).step_by(2) {
                    let args: &[&str] = if w < 2 {
                        &["kill", id, "KILL"]
                    } else {
                        &["delete", "--force", id]
                    };
                    let out = root.run(&[args, &[]].concat());
                    if !out.status.success() {
                        let err = String::from_utf8_lossy(&out.stderr);
                        assert!(expected(&err), "{args:?}: {err}");
                    }
                }
            })
        })
        .collect();
    actors.into_iter().for_each(|h| h.join().unwrap());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    // Whatever is left is stopped or gone; delete the rest.
    for id in root.ok(&["list", "-q"]).lines() {
        root.ok(&["delete", "--force", id]);
    }
    assert!(root.is_empty());
    for id in ids.iter() {
        assert!(cgroups_named(id).is_empty(), "cgroup left for {id}");
    }
}

#[test]
fn delete_racing_start() {
    let b = Bundle::new(&["sleep", "100"]);
    for _ in 0..10 {
        let root = Arc::new(Root::new());
        let id = unique("harden-race");
        root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
        let barrier = Arc::new(Barrier::new(2));
        let (r2, id2, b2) = (root.clone(), id.clone(), barrier.clone());
        let starter = thread::spawn(move || {
            b2.wait();
            r2.run(&["start", &id2])
        });
        barrier.wait();
        let del = root.run(&["delete", "--force", &id]);
        let start = starter.join().unwrap();
        assert!(
            del.status.success(),
            "delete: {}",
            String::from_utf8_lossy(&del.stderr)
        );
        if !start.status.success() {
            let err = String::from_utf8_lossy(&start.stderr);
            assert!(
                expected(&err) || err.contains("exited before start"),
                "start: {err}"
            );
        }
        // Nothing survives, whoever won.
        assert!(root.is_empty());
        assert!(cgroups_named(&id).is_empty());
    }
}
