//! Each known runtime CVE class, as a real attack through the real binary. Every test leaves
//! a host-side marker where the attack would land and checks it is untouched afterwards.
//! The README's "Attacks" table lists each class, its test here and the protection.
mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::*;
use serde_json::json;

/// A host directory an attack aims at; it must still be empty (and unmounted) at the end.
struct HostTarget(TempDir);

impl HostTarget {
    fn new() -> HostTarget {
        HostTarget(TempDir::new("harden-host"))
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn assert_untouched(&self) {
        let entries: Vec<_> = std::fs::read_dir(self.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(entries.is_empty(), "the host dir was written: {entries:?}");
        assert_eq!(
            mounts_mentioning(self.path().to_str().unwrap()),
            0,
            "something was mounted on the host dir"
        );
    }
}

/// CVE-2019-16884 / CVE-2019-19921 class: the image's /proc (or /sys) is a symlink, here to a
/// host directory and to places inside the rootfs where procfs would shadow what runc later
/// checks. The create is refused, naming the cause, and nothing is left; it never hangs.
#[test]
fn proc_or_sys_as_a_symlink_is_refused() {
    let host = HostTarget::new();
    for (dir, target) in [
        ("proc", host.path().to_str().unwrap()),
        ("proc", "/dev"),
        ("proc", "/"),
        ("proc", "/proc/self"),
        ("sys", host.path().to_str().unwrap()),
        ("sys", "../../../sys"),
    ] {
        let root = Root::new();
        let id = unique("harden-procsym");
        let b = Bundle::new(&["true"]);
        let p = b.path().join("rootfs").join(dir);
        std::fs::remove_dir(&p).unwrap();
        symlink(target, &p).unwrap();
        let err = root.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
        assert!(
            err.contains("must be mounted on an ordinary directory")
                && err.contains(&format!("/{dir} in the rootfs is a symlink")),
            "/{dir} -> {target}: {err}"
        );
        assert_nothing_left(&root, &id, &b);
        host.assert_untouched();
    }
}

/// CVE-2019-19921 class: mount destinations that climb out with `..` or through a symlink in
/// the image land inside the rootfs.
#[test]
fn mount_destinations_cannot_climb_out() {
    let host = HostTarget::new();
    let hp = host.path().to_str().unwrap().to_string();
    let b = Bundle::with(
        &[
            "sh",
            "-c",
            "ls /escape-link/sub /host-escape/vol/v >/dev/null && echo INSIDE",
        ],
        |s| {
            let m = s["mounts"].as_array_mut().unwrap();
            m.push(json!({"destination": format!("/../../../../..{hp}/dotdot"), "type": "tmpfs", "source": "tmpfs"}));
            m.push(json!({"destination": "/escape-link/sub", "type": "tmpfs", "source": "tmpfs"}));
            m.push(json!({"destination": "/host-escape/vol", "type": "bind", "source": "vol", "options": ["rbind"]}));
        },
    );
    let rootfs = b.path().join("rootfs");
    std::fs::create_dir(b.path().join("vol")).unwrap();
    std::fs::write(b.path().join("vol/v"), "v").unwrap();
    symlink(
        format!("../../../../../../..{hp}"),
        rootfs.join("escape-link"),
    )
    .unwrap();
    symlink(&hp, rootfs.join("host-escape")).unwrap();
    let root = Root::new();
    let (code, out, err) = root.run_bundle(&b, &unique("harden-climb"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "INSIDE\n");
    host.assert_untouched();
    // The targets were made inside the rootfs instead.
    assert!(rootfs
        .join(hp.trim_start_matches('/'))
        .join("dotdot")
        .is_dir());
    assert!(rootfs.join(hp.trim_start_matches('/')).join("sub").is_dir());
    assert!(rootfs.join(hp.trim_start_matches('/')).join("vol").is_dir());
}

/// CVE-2016-9962 class: while the init runs berth's code (created, not started), a process
/// exec'd into the container cannot get at it through /proc: not its environment, not its
/// fds (one of them leads to the host's state dir), not its cwd.
#[test]
fn the_init_cannot_be_ptraced_before_exec() {
    let root = Root::new();
    let id = unique("harden-ptrace");
    let b = Bundle::new(&["true"]);
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    let out = root.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/1/environ >/dev/null 2>&1 && echo READ environ; \
         ls /proc/1/cwd/ /proc/1/root/ >/dev/null 2>&1 && echo LISTED cwd/root; \
         for f in /proc/1/fd/*; do readlink $f >/dev/null 2>&1 && echo LINK $f; done; echo done",
    ]);
    assert_eq!(out, "done\n", "the init was reachable: {out}");
    root.ok(&["delete", "--force", &id]);
}

/// CVE-2024-21626 class: a cwd through a leaked fd (/proc/self/fd/N) must not put the
/// program outside the root, and the program gets no fd but its stdio.
#[test]
fn no_leaked_fds_and_no_cwd_outside_the_root() {
    let root = Root::new();
    let b = Bundle::new(&["sh", "-c", "ls /proc/self/fd | tr '\\n' ' '; pwd"]);
    let (code, out, err) = root.run_bundle(&b, &unique("harden-fds"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0 1 2 3 /\n", "fds or cwd: {out}"); // 3: ls's own dir fd
    for n in 3..12 {
        let host = HostTarget::new();
        let b = Bundle::with(
            &[
                "sh",
                "-c",
                "pwd; ls .. > /dev/null; echo > ../../../../harden-escape",
            ],
            |s| {
                s["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
            },
        );
        let root = Root::new();
        let (code, out, err) = root.run_bundle(&b, &unique("harden-cwd"));
        // Either refused, or the cwd is inside the container.
        if code == 0 {
            assert!(!out.contains("harden-host"), "fd {n}: cwd outside: {out}");
        } else {
            assert!(
                err.contains("cwd") || err.contains("No such file"),
                "fd {n}: {err}"
            );
        }
        host.assert_untouched();
        assert!(
            !Path::new("/harden-escape").exists(),
            "fd {n}: wrote on the host"
        );
    }
}

/// CVE-2025-31133 class: /dev/null swapped for a symlink before masking uses it, two ways:
/// the image's /dev (no tmpfs over it) holds /dev/null as a symlink to a host file, and a
/// racing process replaces the container's /dev/null with a link to another file after /dev
/// is set up. Masking must not bind that file anywhere, nor write through it.
#[test]
fn dev_null_swapped_for_a_symlink_is_not_used_to_mask() {
    let host = HostTarget::new();
    let victim = host.path().join("victim");
    std::fs::write(&victim, "host data").unwrap();
    let cmd = ["sh", "-c", "cat /proc/version | head -c 12"];
    let b = Bundle::with(&cmd, |s| {
        let m = s["mounts"].as_array_mut().unwrap();
        m.retain(|m| m["destination"] != "/dev");
        m.retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev/"));
        s["linux"]["maskedPaths"] = json!(["/proc/version"]);
    });
    let dev = b.path().join("rootfs/dev");
    let _ = std::fs::remove_file(dev.join("null"));
    symlink(&victim, dev.join("null")).unwrap();
    let root = Root::new();
    let (_code, out, err) = root.run_bundle(&b, &unique("harden-devnull"));
    assert!(
        !out.contains("host data"),
        "the host file was bound over a masked path: {out} {err}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host data");
    assert_eq!(mounts_mentioning(victim.to_str().unwrap()), 0);

    // The race: in the CVE the link led to a procfs file such as core_pattern; here to a
    // file of the rootfs.
    let tmp = TempDir::new("hd-hook");
    let b = Bundle::with(&cmd, |s| {
        s["linux"]["maskedPaths"] = json!(["/proc/version"])
    });
    let rootfs = b.path().join("rootfs");
    std::fs::write(rootfs.join("victim"), "in-root data").unwrap();
    let hooks = attacker_hook(
        tmp.path(),
        &rootfs,
        "rm -f \"$R/dev/null\"; ln -s /victim \"$R/dev/null\"",
    );
    let mut c = b.config();
    c["hooks"] = hooks;
    b.set_config(&c);
    let (code, out, err) = root.run_bundle(&b, &unique("hd-devnull-race"));
    assert!(
        !out.contains("in-root data"),
        "the linked file was bound over a masked path: {out} {err}"
    );
    assert_ne!(code, 0, "out {out:?} err {err:?}");
    assert!(
        err.contains("/dev/null is not the char device 1:3"),
        "{err}"
    );
}

/// CVE-2026-30892: `exec -u 1` is uid 1, not 0. And (seen with runc 1.1.5) `exec --user`
/// never re-owns the host's /dev/null.
#[test]
fn exec_user_is_parsed_right_and_leaves_host_dev_null_alone() {
    use std::os::unix::fs::MetadataExt;
    let before = std::fs::metadata("/dev/null").unwrap();
    let root = Root::new();
    let id = unique("harden-user");
    let b = Bundle::new(&["sleep", "100"]);
    root.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), &id]);
    for (u, want) in [
        ("1", "1 0"),
        ("1:2", "1 2"),
        ("1000", "1000 0"),
        ("0", "0 0"),
    ] {
        let out = root.ok(&[
            "exec",
            "-u",
            u,
            &id,
            "sh",
            "-c",
            "echo $(id -u) $(id -g) </dev/null >/dev/null; id -u; id -g",
        ]);
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>().join(" "),
            want,
            "-u {u}"
        );
        // After each exec: a later `-u 0` would give it back to root.
        let after = std::fs::metadata("/dev/null").unwrap();
        assert_eq!(
            (before.uid(), before.gid(), before.mode()),
            (after.uid(), after.gid(), after.mode()),
            "-u {u}: the host's /dev/null was re-owned"
        );
    }
    root.ok(&["delete", "--force", &id]);
}

/// CVE-2022-29162: no inheritable capabilities by default (the template's process), and
/// none in an exec'd process either.
#[test]
fn no_inheritable_capabilities_by_default() {
    let root = Root::new();
    let id = unique("harden-capinh");
    let b = Bundle::new(&["sh", "-c", "grep CapInh /proc/self/status; sleep 100"]);
    let spec = b.config();
    assert!(spec["process"]["capabilities"].get("inheritable").is_none());
    root.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), &id]);
    let out = root.ok(&["exec", &id, "grep", "CapInh", "/proc/self/status"]);
    assert_eq!(out.trim(), "CapInh:\t0000000000000000");
    let out = root.ok(&[
        "exec",
        "--cap",
        "CAP_NET_ADMIN",
        &id,
        "grep",
        "CapInh",
        "/proc/self/status",
    ]);
    assert_eq!(out.trim(), "CapInh:\t0000000000000000");
    root.ok(&["delete", "--force", &id]);
}

/// A prestart hook that plays the attacker racing the create: once the init's mounts exist
/// and before pivot_root, it runs `script` (with `$R` the rootfs path) inside the init's
/// mount and network namespaces (/proc/sys/net is per network namespace), as a process
/// sharing a volume or a mount with the container would.
fn attacker_hook(dir: &Path, rootfs: &Path, script: &str) -> serde_json::Value {
    let attack = dir.join("attack.sh");
    std::fs::write(&attack, format!("R='{}'\n{script}\n", rootfs.display())).unwrap();
    let hook = dir.join("hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\npid=$(sed -n 's/.*\"pid\":\\([0-9][0-9]*\\).*/\\1/p')\n\
             exec nsenter -t \"$pid\" -m -n /bin/sh -e '{}'\n",
            attack.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    json!({"prestart": [{"path": hook}]})
}

/// CVE-2025-52881 class: a mount made over a /proc/sys file while the container is set up
/// (here by a racing process in the init's mount namespace) must not redirect berth's
/// sysctl write into the file mounted there, a host file here.
#[test]
fn sysctl_writes_are_not_redirected_by_a_racing_mount() {
    let host = TempDir::new("hd-decoy");
    let decoy = host.path().join("ping_group_range");
    std::fs::write(&decoy, "decoy\n").unwrap();
    let tmp = TempDir::new("hd-hook");
    let b = Bundle::new(&["cat", "/proc/sys/net/ipv4/ping_group_range"]);
    let rootfs = b.path().join("rootfs");
    let hooks = attacker_hook(
        tmp.path(),
        &rootfs,
        &format!(
            "mount --bind '{}' \"$R/proc/sys/net/ipv4/ping_group_range\"",
            decoy.display()
        ),
    );
    let mut c = b.config();
    c["linux"]["sysctl"] = json!({"net.ipv4.ping_group_range": "0 0"});
    c["hooks"] = hooks;
    b.set_config(&c);
    let root = Root::new();
    let id = unique("hd-sysctl-redirect");
    let (code, out, err) = root.run_bundle(&b, &id);
    assert_eq!(
        std::fs::read_to_string(&decoy).unwrap(),
        "decoy\n",
        "the sysctl write went into the file mounted over /proc/sys: {out} {err}"
    );
    assert_ne!(code, 0, "the redirected sysctl was not refused: {out}");
    assert!(
        err.contains("net.ipv4.ping_group_range"),
        "the error does not name the sysctl: {err}"
    );
    assert_nothing_left(&root, &id, &b);
    assert_eq!(mounts_mentioning(decoy.to_str().unwrap()), 0);
}

/// CVE-2025-52565 class, the source: the container's /dev/pts entries swapped, before the
/// console is set up, for links to another file (a racing mount of a tmpfs over /dev/pts;
/// its ptmx still leads to the real devpts). The pty must still be a pty: never that file
/// as the console, the controlling terminal or the program's stdio.
#[test]
fn a_swapped_dev_pts_entry_is_not_used_as_the_console() {
    let tmp = TempDir::new("hd-hook");
    let b = Bundle::with(
        &["sh", "-c", "tty; stat -c %F /dev/console; cat /decoy"],
        |s| s["process"]["terminal"] = json!(true),
    );
    let rootfs = b.path().join("rootfs");
    std::fs::write(rootfs.join("decoy"), "decoy\n").unwrap();
    let hooks = attacker_hook(
        tmp.path(),
        &rootfs,
        "mkdir \"$R/dev/.real\"; mount --bind \"$R/dev/pts\" \"$R/dev/.real\"\n\
         mount -t tmpfs tmpfs \"$R/dev/pts\"\n\
         ln -s ../.real/ptmx \"$R/dev/pts/ptmx\"\n\
         i=0; while [ $i -lt 64 ]; do ln -s /decoy \"$R/dev/pts/$i\"; i=$((i+1)); done",
    );
    let mut c = b.config();
    c["hooks"] = hooks;
    b.set_config(&c);
    let root = Root::new();
    let (code, out) = run_on_pty(&root, &b, &unique("hd-console-src"), b"");
    let out = String::from_utf8_lossy(&out);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("/dev/") && !out.contains("not a tty"),
        "stdio is not the pty: {out}"
    );
    assert!(
        out.contains("character special file"),
        "/dev/console is not the pty: {out}"
    );
    assert!(out.contains("decoy"), "{out}");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("decoy")).unwrap(),
        "decoy\n"
    );
}

/// CVE-2025-52565 class, the target: /dev/console swapped for a link to another file (here
/// a file of the rootfs; in the CVE, a procfs file) before the console is bound there. The
/// pty is never mounted through the link: the create is refused, naming /dev/console.
#[test]
fn a_dev_console_link_is_not_followed() {
    let tmp = TempDir::new("hd-hook");
    let b = Bundle::with(&["stat", "-c", "%F", "/decoy"], |s| {
        s["process"]["terminal"] = json!(true)
    });
    let rootfs = b.path().join("rootfs");
    std::fs::write(rootfs.join("decoy"), "decoy\n").unwrap();
    let hooks = attacker_hook(
        tmp.path(),
        &rootfs,
        "rm -f \"$R/dev/console\"; ln -s /decoy \"$R/dev/console\"",
    );
    let mut c = b.config();
    c["hooks"] = hooks;
    b.set_config(&c);
    let root = Root::new();
    let (code, out) = run_on_pty(&root, &b, &unique("hd-console-dst"), b"");
    let out = String::from_utf8_lossy(&out);
    assert!(
        !out.contains("character special file"),
        "the pty was mounted over the link's target: {out}"
    );
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("/dev/console is a symbolic link"), "{out}");
}

/// CVE-2021-30465 class: a process with write access to a volume (here the test itself)
/// swaps a directory of it for a symlink to a host directory, in a loop, while containers
/// that mount something below that directory start. The mount must land inside the
/// container every time, never on (or create anything in) the host directory.
#[test]
fn a_symlink_exchange_race_on_a_mount_destination_stays_inside() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let host = HostTarget::new();
    let vol = TempDir::new("hd-vol");
    std::fs::create_dir(vol.path().join("sub")).unwrap();
    symlink(host.path(), vol.path().join("link")).unwrap();
    let b = Bundle::with(&["true"], |s| {
        let m = s["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/shared", "type": "bind",
            "source": vol.path(), "options": ["rbind"]}));
        m.push(json!({"destination": "/shared/sub/mnt", "type": "tmpfs", "source": "tmpfs"}));
    });
    let stop = AtomicBool::new(false);
    let (mut ok, mut swaps) = (0, 0u64);
    std::thread::scope(|s| {
        let racer = s.spawn(|| {
            let (a, l) = (vol.path().join("sub"), vol.path().join("link"));
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                nix::fcntl::renameat2(None, &a, None, &l, nix::fcntl::RenameFlags::RENAME_EXCHANGE)
                    .unwrap();
                n += 1;
            }
            n
        });
        let root = Root::new();
        for _ in 0..20 {
            let (code, _, _) = root.run_bundle(&b, &unique("hd-race"));
            if code == 0 {
                ok += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        swaps = racer.join().unwrap();
    });
    println!(
        "30465: {ok} of 20 containers ran while the volume's directory was swapped {swaps} times"
    );
    assert!(swaps > 0);
    host.assert_untouched();
}
