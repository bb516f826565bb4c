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
