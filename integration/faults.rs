//! Faults during create, by timing sweep: `berth create` is killed with SIGKILL after a
//! growing delay; then `delete --force ID` must leave no state dir, no mount and no process,
//! and the id must be usable again.
mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

#[test]
fn create_killed_at_any_point_leaves_nothing_after_delete_force() {
    let root = Root::new();
    let b = Bundle::new(&["sleep", "100"]);
    let bundle = b.path().to_str().unwrap().to_string();
    let (mut killed, mut cgroups_left) = (0, 0);
    for step in 0..40u64 {
        let id = unique("harden-fault");
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
        root.ok(&["delete", "--force", &id]);
        assert!(
            !root.path().join(&id).exists(),
            "step {step}: state dir left"
        );
        assert_eq!(mounts_mentioning(&bundle), 0, "step {step}: mounts left");
        // The init goes with the create that made it (it reads end-of-file on its socket)
        // or with delete.
        wait_for(
            || {
                !std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
                    std::fs::read_to_string(e.path().join("cmdline")).is_ok_and(|c| c.contains(&id))
                })
            },
            "no process of the killed create",
        );
        cgroups_left += cgroups_named(&id).len();
        for d in cgroups_named(&id) {
            let _ = std::fs::remove_dir(d);
        }
        // The id can be used again.
        root.ok(&["create", "-b", &bundle, &id]);
        root.ok(&["delete", "--force", &id]);
    }
    println!(
        "faults: {killed} of 40 creates killed mid-way; cgroup dirs left behind: {cgroups_left}"
    );
    assert!(killed > 0, "no create was killed mid-way");
}
