//! runtime-spec 1.3 features beyond the process attributes (attrs.rs): tmpfs modes,
//! `--pidfd-socket`, seccomp completeness. Each test runs a real container and reads the
//! effect back; bad values fail with a clear error and leave nothing behind.
mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use serde_json::{json, Value};

fn tmpfs(dest: &str, options: &[&str]) -> Value {
    json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options})
}

#[test]
fn tmpfs_takes_the_destination_mode() {
    let root = Root::new();
    let id = unique("feat-tmpfs");
    let b = Bundle::with(
        &[
            "stat",
            "-c",
            "%n %a",
            "/data",
            "/explicit",
            "/tmp",
            "/created",
        ],
        |s| {
            let m = s["mounts"].as_array_mut().unwrap();
            m.push(tmpfs("/data", &["nosuid"]));
            m.push(tmpfs("/explicit", &["mode=711"]));
            m.push(tmpfs("/tmp", &[]));
            m.push(tmpfs("/created", &[]));
        },
    );
    let rootfs = b.path().join("rootfs");
    for (d, mode) in [("data", 0o750), ("explicit", 0o750), ("tmp", 0o1777)] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
        std::fs::set_permissions(rootfs.join(d), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let (code, out, err) = root.run_bundle(&b, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out, "/data 750\n/explicit 711\n/tmp 1777\n/created 1777\n",
        "no mode= takes the directory's; mode= wins; a new directory keeps tmpfs's 1777"
    );
}
