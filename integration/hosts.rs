//! Host layouts berth must read right: a private mount namespace whose /sys/fs/cgroup was
//! replaced by a new tmpfs holding only the v1 hierarchies. mountinfo still lists the
//! hidden cgroup2 mount under the covered tmpfs; berth must check what is really at the
//! path (statfs) and run the container as on a pure v1 host.
mod common;

use std::path::Path;
use std::process::Command;

use common::*;

#[test]
fn a_cgroup2_tree_hidden_under_a_new_tmpfs_is_ignored() {
    if !Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        println!("skipped: not a hybrid cgroup host");
        return;
    }
    let root = Root::new();
    let b = Bundle::new(&["true"]);
    let id = unique("harden-hidden");
    let keep = TempDir::new("harden-oldcg");
    // The v1 hierarchies, bound back onto a fresh tmpfs; the cgroup2 mount stays listed
    // (under the covered tmpfs) but is not reachable.
    let script = format!(
        r#"{hide}grep -q ' /sys/fs/cgroup/unified ' /proc/self/mountinfo
[ ! -e /sys/fs/cgroup/unified ]
exec {berth} --root {root} run -b {bundle} {id}"#,
        hide = hide_cgroup2_script(keep.path()),
        berth = BERTH,
        root = root.path().display(),
        bundle = b.path().display(),
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(root.is_empty());
    assert!(cgroups_named(&id).is_empty(), "{:?}", cgroups_named(&id));
}
