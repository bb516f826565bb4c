//! Host layouts berth must read right: a private mount namespace whose /sys/fs/cgroup was
//! replaced by a new tmpfs holding only the v1 hierarchies. mountinfo still lists the
//! hidden cgroup2 mount under the covered tmpfs; berth must check what is really at the
//! path (statfs) and run the container as on a pure v1 host.
mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Whether this is a hybrid cgroup host (a cgroup2 tree to hide); says so when not.
fn hybrid() -> bool {
    let yes = Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists();
    if !yes {
        println!("skipped: not a hybrid cgroup host");
    }
    yes
}

#[test]
fn a_cgroup2_tree_hidden_under_a_new_tmpfs_is_ignored() {
    if !hybrid() {
        return;
    }
    let root = Root::new();
    let b = Bundle::new(&["true"]);
    let id = unique("harden-hidden");
    // The v1 hierarchies, bound back onto a fresh tmpfs; the cgroup2 mount stays listed
    // (under the covered tmpfs) but is not reachable.
    on_pure_v1(&format!(
        r#"grep -q ' /sys/fs/cgroup/unified ' /proc/self/mountinfo
[ ! -e /sys/fs/cgroup/unified ]
exec {berth} --root {root} run -b {bundle} {id}"#,
        berth = BERTH,
        root = root.path().display(),
        bundle = b.path().display(),
    ));
    assert!(root.is_empty());
    assert!(cgroups_named(&id).is_empty(), "{:?}", cgroups_named(&id));
}

/// `berth` under `unshare -m` with the cgroup2 tree hidden (a pure v1 host), running
/// `body` (a shell script); its output, which must say success.
fn on_pure_v1(body: &str) -> String {
    let keep = TempDir::new("harden-v1cg");
    let script = format!("{}{body}", hide_cgroup2_script(keep.path()));
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// On pure v1 the init is cloned before its cgroup exists and makes its network namespace
/// itself (create.rs, `late_cgroup`): it must still end up in every hierarchy's cgroup
/// before its program runs, in a network namespace of its own with the loopback up.
#[test]
fn a_late_cgroup_still_holds_the_init_in_a_new_network_namespace() {
    if !hybrid() {
        return;
    }
    let root = Root::new();
    let b = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/self/cgroup; readlink /proc/self/ns/net; \
         echo devs=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '); \
         echo lo-flags=$(cat /sys/class/net/lo/flags)",
    ]);
    let id = unique("harden-late");
    let logs = TempDir::new("harden-late-log");
    let log = logs.path().join("log");
    let out = on_pure_v1(&format!(
        "exec {berth} --root {root} --debug --log {log} run -b {bundle} {id}",
        berth = BERTH,
        root = root.path().display(),
        log = log.display(),
        bundle = b.path().display(),
    ));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("makes its network namespace while we make its cgroup"),
        "{log}"
    );
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    let lines: Vec<&str> = out.lines().collect();
    let v1: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains(':') && !l.starts_with("0::") && l.split(':').count() == 3)
        .collect();
    assert!(v1.len() >= 5, "{out}");
    for l in &v1 {
        assert!(
            l.ends_with(&format!("/{id}")),
            "not in its cgroup: {l}\n{out}"
        );
    }
    let net = lines.iter().find(|l| l.starts_with("net:[")).expect(&out);
    assert_ne!(*net, host_net.to_str().unwrap(), "{out}");
    // Only the loopback in a new network namespace, and it is up (IFF_UP | IFF_LOOPBACK...).
    let devs = lines
        .iter()
        .find_map(|l| l.strip_prefix("devs="))
        .expect(&out);
    assert_eq!(devs, "lo", "{out}");
    let flags = lines
        .iter()
        .find_map(|l| l.strip_prefix("lo-flags=0x"))
        .expect(&out);
    assert!(
        u32::from_str_radix(flags, 16).unwrap() & 1 == 1,
        "lo is down: {out}"
    );
    assert!(root.is_empty());
    assert!(cgroups_named(&id).is_empty(), "{:?}", cgroups_named(&id));
}

/// A create killed after the clone of a late cgroup, while or after it makes the cgroup:
/// the init (waiting for its `tasks` files) exits on its own, and `delete --force` leaves
/// no cgroup, process or state behind.
#[test]
fn a_late_cgroup_create_killed_after_the_clone_leaves_nothing() {
    if !hybrid() {
        return;
    }
    let root = Root::new();
    let b = Bundle::new(&["sleep", "100"]);
    for point in [
        "create:clone",
        "create:cgroup-partly",
        "create:cgroup",
        "init:fds",
    ] {
        let id = unique("harden-latek");
        on_pure_v1(&format!(
            "BERTH_FAULT={point} {berth} --root {root} create -b {bundle} {id} </dev/null >/dev/null 2>&1 && exit 1
{berth} --root {root} delete --force {id}",
            berth = BERTH,
            root = root.path().display(),
            bundle = b.path().display(),
        ));
        wait_for(
            || {
                std::fs::read_dir("/proc").unwrap().flatten().all(|e| {
                    let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                    !String::from_utf8_lossy(&cmd).contains(&id)
                })
            },
            "the init of a killed create to exit",
        );
        assert!(root.is_empty(), "{point}");
        assert!(
            cgroups_named(&id).is_empty(),
            "{point}: {:?}",
            cgroups_named(&id)
        );
    }
}
