//! Mount semantics runc users rely on (issue 7 item 15): how a bind mount's options combine
//! with the flags of its source (runc's remount, which is not mount(8)'s), the atime family,
//! rbind with recursive attributes, binds through dangling symlinks, mount order, and
//! rootfsPropagation seen from the host. The cases follow runc's mounts_sshfs.bats with a
//! tmpfs source.
mod common;

use std::process::Command;

use common::*;
use serde_json::json;

/// The options of `/mnt` inside a container whose /mnt is a bind (options `bind_opts`) of a
/// tmpfs made, in a private mount namespace, with the per-mount flags `host_flags`.
/// With `in_userns` the container has its own user namespace. Returns (exit code, /mnt's
/// options, stderr).
fn bind_flags(host_flags: &str, bind_opts: &str, in_userns: bool) -> (i32, String, String) {
    let root = Root::new();
    let src = TempDir::new("compat-src");
    let b = Bundle::with(
        &[
            "sh",
            "-c",
            "awk '$2 == \"/mnt\" { print $4 }' /proc/self/mounts",
        ],
        |s| {
            let opts: Vec<&str> = bind_opts.split(',').collect();
            s["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/mnt", "type": "bind",
                "source": src.path(), "options": opts,
            }));
            if in_userns {
                userns_100000(s);
            }
        },
    );
    if in_userns {
        chown_rootfs(&b, "100000:100000");
    }
    let script = format!(
        "mount -t tmpfs -o rw,suid,dev,exec tmpfs {src} && \
         mount --bind -o remount,diratime,strictatime {src} && \
         mount --bind -o remount,{host_flags} {src} && \
         exec {berth} --root {root} run -b {bundle} {id}",
        src = src.path().display(),
        berth = BERTH,
        root = root.path().display(),
        bundle = b.path().display(),
        id = unique("compat-bind"),
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn has(flags: &str, f: &str) -> bool {
    flags.split(',').any(|x| x == f)
}

/// Assert every `+flag` is in the options and every `-flag` is not.
fn check(flags: &str, want: &str, what: &str) {
    for w in want.split_whitespace() {
        let (yes, f) = (w.starts_with('+'), &w[1..]);
        assert_eq!(has(flags, f), yes, "{what}: {w} in {flags:?}");
    }
}

fn pass(host: &str, bind: &str, want: &str) {
    let (code, flags, err) = bind_flags(host, bind, false);
    assert_eq!(code, 0, "host {host}, bind {bind}: {err}");
    check(&flags, want, &format!("host {host}, bind {bind}"));
}

#[test]
fn bind_keeps_source_flags_when_nothing_is_asked() {
    pass(
        "ro,noexec,nosymfollow,nodiratime",
        "bind",
        "+ro -rw +noexec +nosymfollow +nodiratime",
    );
}

/// runc remounts with exactly the flags asked for: what is not named is cleared, unlike
/// mount(8) (util-linux issue 2433), except the atime setting, which a bare clear keeps.
#[test]
fn bind_flags_clear_what_the_source_has_as_runc() {
    pass(
        "ro,noexec,nosymfollow,nodiratime",
        "bind,dev",
        "-ro +rw -noexec -nosymfollow +nodiratime",
    );
    pass("ro", "bind,nosuid,nodev,rprivate", "-ro +rw +nosuid +nodev");
    pass(
        "ro",
        "bind,rw,nosuid,nodev,rprivate",
        "-ro +rw +nosuid +nodev",
    );
    pass(
        "nosuid,nodev,noexec,noatime",
        "bind,dev,suid,exec,atime",
        "-ro +rw -nosuid -nodev -noexec +noatime",
    );
    pass(
        "rw,nodev,nosuid,noexec,noatime",
        "bind,ro",
        "+ro -nosuid -nodev -noexec",
    );
    pass(
        "rw,nodev,nosymfollow",
        "bind,ro,symfollow",
        "+ro -rw -nodev -nosymfollow",
    );
}

#[test]
fn bind_atime_family() {
    pass("noatime", "bind", "+noatime -relatime");
    pass("noatime", "bind,norelatime", "+noatime -relatime");
    pass("noatime", "bind,atime", "+noatime -relatime");
    pass("noatime", "bind,relatime", "-noatime +relatime");
    pass(
        "noatime",
        "bind,nodiratime",
        "-noatime +nodiratime +relatime",
    );
    pass(
        "nodiratime",
        "bind,strictatime",
        "-noatime -relatime -nodiratime",
    );
    pass(
        "noatime",
        "bind,nodiratime,strictatime",
        "-noatime +nodiratime -relatime",
    );
}

/// In a user namespace the source's flags are locked: unnamed ones are kept (runc retries
/// with them), and clearing one by name fails with a clear error.
#[test]
fn bind_flags_in_a_user_namespace_keep_locked_ones() {
    let (code, flags, err) = bind_flags("ro", "bind,nosuid,nodev,rprivate", true);
    assert_eq!(code, 0, "{err}");
    check(&flags, "+ro +nosuid +nodev", "userns, implied rw");
    let (code, flags, err) = bind_flags("nodev,nosuid,noatime", "bind,ro,exec", true);
    assert_eq!(code, 0, "{err}");
    check(
        &flags,
        "+ro -noexec +nosuid +nodev +noatime",
        "userns, ro,exec",
    );
    let (code, _, err) = bind_flags("ro", "bind,rw,nosuid,nodev,rprivate", true);
    assert_ne!(code, 0);
    assert!(
        err.contains("/mnt") && err.contains("cannot be cleared"),
        "{err}"
    );
}

/// rbind with the recursive atime options reaches the submounts; with a non-recursive flag
/// beside it only the top mount gets that flag.
#[test]
fn rbind_with_recursive_atime_family() {
    let cases = [
        (
            "rbind,rnoatime,rnodiratime",
            "+noatime +nodiratime",
            "+noatime +nodiratime",
        ),
        (
            "rbind,rstrictatime",
            "-noatime -relatime",
            "-noatime -relatime",
        ),
        (
            "rbind,rrelatime",
            "+relatime -noatime",
            "+relatime -noatime",
        ),
        ("rbind,rnoatime,ro", "+noatime +ro", "+noatime -ro +rw"),
    ];
    for (opts, top, sub) in cases {
        let root = Root::new();
        let src = TempDir::new("compat-rsrc");
        let b = Bundle::with(
            &[
                "sh",
                "-c",
                "awk '$2 ~ /^\\/mnt/ { print $2, $4 }' /proc/self/mounts",
            ],
            |s| {
                let opts: Vec<&str> = opts.split(',').collect();
                s["mounts"].as_array_mut().unwrap().push(json!({
                    "destination": "/mnt", "type": "bind",
                    "source": src.path(), "options": opts,
                }));
            },
        );
        let script = format!(
            "mount -t tmpfs -o strictatime tmpfs {src} && mkdir {src}/sub && \
             mount -t tmpfs -o relatime tmpfs {src}/sub && \
             exec {berth} --root {root} run -b {bundle} {id}",
            src = src.path().display(),
            berth = BERTH,
            root = root.path().display(),
            bundle = b.path().display(),
            id = unique("compat-rbind"),
        );
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{opts}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let flags_of = |p: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{p} ")))
                .unwrap_or_else(|| panic!("{opts}: no {p} in {text}"))
                .to_string()
        };
        check(&flags_of("/mnt"), top, &format!("{opts}: /mnt"));
        check(&flags_of("/mnt/sub"), sub, &format!("{opts}: /mnt/sub"));
    }
}

/// A destination through a dangling symlink (absolute, or climbing with ..) and a trailing
/// dangling symlink are created inside the root, never outside it.
#[test]
fn bind_through_dangling_symlinks_stays_inside() {
    let root = Root::new();
    let escape = format!("compat-escape-{}", std::process::id());
    let script = format!("cat /gone/file /{escape}/up/dir/hello");
    let b = Bundle::with(&["sh", "-c", &script], |s| {
        let mounts = s["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/trailing", "type": "bind", "source": "vol/hello", "options": ["bind"]}));
        mounts.push(json!({"destination": "/dotdot/dir", "type": "bind", "source": "vol", "options": ["rbind", "ro"]}));
    });
    let rootfs = b.path().join("rootfs");
    std::os::unix::fs::symlink("/gone/file", rootfs.join("trailing")).unwrap();
    std::os::unix::fs::symlink(format!("../../../../{escape}/up"), rootfs.join("dotdot")).unwrap();
    std::fs::create_dir_all(b.path().join("vol")).unwrap();
    std::fs::write(b.path().join("vol/hello"), "hello").unwrap();
    let (code, out, err) = root.run_bundle(&b, &unique("compat-dangling"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "hellohello", "{out}");
    assert!(rootfs.join("gone/file").is_file());
    assert!(
        rootfs.join(&escape).join("up/dir").is_dir(),
        "created inside the root"
    );
    for base in [std::path::Path::new("/"), b.path(), &std::env::temp_dir()] {
        assert!(
            !base.join(&escape).exists(),
            "escaped to {}",
            base.display()
        );
    }
}

/// A bind whose source is a rootfs path that an earlier entry mounted binds that mount.
#[test]
fn bind_source_made_by_an_earlier_mount() {
    let root = Root::new();
    let b = Bundle::with(
        &["sh", "-c", "echo shared > /data2/f; cat /data/f; awk '$2 == \"/data2\" { print $3 }' /proc/self/mounts"],
        |s| {
            let mounts = s["mounts"].as_array_mut().unwrap();
            mounts.push(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["mode=777"]}));
            mounts.push(json!({"destination": "/data2", "type": "bind", "source": "rootfs/data", "options": ["bind"]}));
        },
    );
    let (code, out, err) = root.run_bundle(&b, &unique("compat-order"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["shared", "tmpfs"],
        "{out}"
    );
    assert!(
        !b.path().join("rootfs/data/f").exists(),
        "written to the tmpfs, not the rootfs"
    );
}

/// linux.rootfsPropagation seen from the host: with "slave" a mount the host makes under the
/// rootfs after create reaches the container; with "private" it does not; with "shared" the
/// container's / is shared (and, as with runc, in its own peer group).
#[test]
fn rootfs_propagation_seen_from_the_host() {
    for (prop, reaches, tag) in [
        ("slave", true, "master:"),
        ("private", false, ""),
        ("shared", false, "shared:"),
    ] {
        let root = Root::new();
        let b = Bundle::with(
            &["sh", "-c", "awk '$5 == \"/\" { print }' /proc/self/mountinfo; awk '$2 == \"/mnt\" { print $3 }' /proc/self/mounts"],
            |s| s["linux"]["rootfsPropagation"] = json!(prop),
        );
        let id = unique("compat-prop");
        let script = format!(
            "{berth} --root {root} create -b {bundle} {id} && \
             mount -t tmpfs tmpfs {bundle}/rootfs/mnt && \
             {berth} --root {root} start {id} && \
             while {berth} --root {root} state {id} | grep -q running; do sleep 0.05; done; \
             cat {bundle}/out; {berth} --root {root} delete {id}",
            berth = BERTH,
            root = root.path().display(),
            bundle = b.path().display(),
        );
        std::fs::create_dir_all(b.path().join("rootfs/mnt")).unwrap();
        let mut cfg = b.config();
        let args = cfg["process"]["args"][2].as_str().unwrap().to_string();
        cfg["process"]["args"][2] = json!(format!("({args}) > /out 2>&1"));
        b.set_config(&cfg);
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "shared", "sh", "-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{prop}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(b.path().join("rootfs/out")).unwrap();
        assert_eq!(text.contains("tmpfs"), reaches, "{prop}: {text}");
        let root_line = text.lines().next().unwrap();
        if tag.is_empty() {
            assert!(
                !root_line.contains("shared:") && !root_line.contains("master:"),
                "{prop}: {root_line}"
            );
        } else {
            assert!(root_line.contains(tag), "{prop}: {root_line}");
        }
    }
}
