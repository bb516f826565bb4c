//! Rootfs behaviour that runc users rely on (issue 7, "The container"): masked paths, a
//! read-only /dev, `--no-pivot`, the working directory. Each test runs the real binary on a
//! busybox bundle made from `berth spec`'s template and checks from inside the container or
//! from the host.
mod common;

use common::*;
use serde_json::json;

/// One line of the container's mountinfo per mount point, as (major:minor, mount point).
fn mounts_at(out: &str, points: &[&str]) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 4 && points.contains(&f[4])).then(|| (f[2].to_string(), f[4].to_string()))
        })
        .collect()
}

/// A masked path listed twice is masked once, and every masked directory is a bind of one
/// read-only tmpfs (one superblock), as runc does it.
#[test]
fn masked_paths_twice_and_dirs_share_one_tmpfs() {
    let root = Root::new();
    let b = Bundle::with(
        &[
            "sh",
            "-c",
            "cat /proc/self/mountinfo; echo ===; cat /etc/m1/secret /etc/mf; touch /etc/m2/x",
        ],
        |s| {
            let masked = s["linux"]["maskedPaths"].as_array_mut().unwrap();
            for p in [
                "/etc/m1", "/etc/m2", "/etc/m1", "/etc/mf", "/etc//mf", "/etc/m1/",
            ] {
                masked.push(json!(p));
            }
        },
    );
    let rootfs = b.path().join("rootfs");
    for d in ["etc/m1", "etc/m2"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
        std::fs::write(rootfs.join(d).join("secret"), "secret").unwrap();
    }
    std::fs::write(rootfs.join("etc/mf"), "secret").unwrap();
    let (code, out, err) = root.run_bundle(&b, &unique("compat-mask"));
    let (info, rest) = out.split_once("===").unwrap();
    assert!(!rest.contains("secret"), "{out}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert_ne!(code, 0);
    let m = mounts_at(info, &["/etc/m1", "/etc/m2", "/etc/mf", "/sys/firmware"]);
    let count = |p: &str| m.iter().filter(|(_, mp)| mp == p).count();
    for p in ["/etc/m1", "/etc/m2", "/etc/mf"] {
        assert_eq!(count(p), 1, "{p} masked once:\n{info}");
    }
    let dev = |p: &str| m.iter().find(|(_, mp)| mp == p).unwrap().0.clone();
    assert_eq!(dev("/etc/m1"), dev("/etc/m2"), "one tmpfs:\n{info}");
    assert_eq!(dev("/etc/m1"), dev("/sys/firmware"), "one tmpfs:\n{info}");
}

/// A read-only /dev works with a terminal: the nodes, /dev/pts and /dev/console are made
/// before /dev is remounted read-only.
#[test]
fn readonly_dev_with_a_terminal() {
    let root = Root::new();
    let b = Bundle::with(&["sh"], |s| {
        s["process"]["terminal"] = json!(true);
        let dev = s["mounts"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|m| m["destination"] == "/dev")
            .unwrap();
        dev["options"].as_array_mut().unwrap().push(json!("ro"));
    });
    let script =
        b"ls /dev/console /dev/null /dev/ptmx && tty; touch /dev/new || echo ro-$((6*7)); exit 3\n";
    let (code, out) = run_on_pty(&root, &b, &unique("compat-rodev"), script);
    let out = String::from_utf8_lossy(&out);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("/dev/console") && out.contains("/dev/pts/0"),
        "{out}"
    );
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("ro-42"), "{out}");
}

/// With `--no-pivot` the host's procfs and sysfs mounts are gone from the container's mount
/// namespace: otherwise a process that makes its own user and pid namespace may mount a fresh,
/// unmasked procfs (the kernel allows it while a fully visible procfs exists in the namespace).
#[test]
fn no_pivot_leaves_no_host_proc_behind() {
    let root = Root::new();
    let probe = "unshare -rmpf sh -c 'mount -t proc -o nosuid,nodev,noexec proc /tmp && echo REVEALED || echo REFUSED'";
    let b = Bundle::with(&["sh", "-c", probe], |s| {
        s["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    for extra in [&["--no-pivot"][..], &[][..]] {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        let id = unique("compat-nopivot");
        args.extend(["-b", b.path().to_str().unwrap(), &id]);
        let out = root.run(&args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("REFUSED"), "{extra:?}: {text}");
    }
}

/// process.cwd is entered before the identity change (a directory only root can reach) and
/// again after it when root was refused, as runc does.
#[test]
fn cwd_only_root_can_reach() {
    let root = Root::new();
    let b = Bundle::with(&["pwd"], |s| {
        s["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        s["process"]["cwd"] = json!("/root/work");
    });
    let rootfs = b.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("root/work")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(rootfs.join("root"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let (code, out, err) = root.run_bundle(&b, &unique("compat-cwd"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "/root/work");
}
