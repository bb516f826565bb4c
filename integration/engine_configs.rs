//! The config.json files containerd, podman and dockerd really wrote (shared/testdata), run
//! under berth and under runc with the same rootfs: both must agree on the output the
//! container sees (its capabilities and the exit code).
mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

fn configs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/engine-configs")
}

/// Host capability bounding set (some engine configs ask for caps this host lacks).
fn host_has_cap(bit: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim();
    u64::from_str_radix(hex, 16).unwrap() & (1 << bit) != 0
}

/// Make an engine's config runnable here: our rootfs, no captured bind sources, no hooks.
fn adapt(mut spec: Value, rootfs: &std::path::Path) -> Value {
    spec["root"]["path"] = json!(rootfs);
    spec["process"]["args"] = json!([
        "sh",
        "-c",
        "grep -E '^Cap(Eff|Bnd)' /proc/self/status; id -u; exit 3"
    ]);
    spec["process"]["terminal"] = json!(false);
    spec.as_object_mut().unwrap().remove("hooks");
    let mounts = spec["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| {
        !m["source"]
            .as_str()
            .unwrap_or("")
            .starts_with("/var/lib/capture")
    });
    spec
}

fn run(
    runtime: &str,
    root: &std::path::Path,
    bundle: &std::path::Path,
    id: &str,
) -> (i32, String, String) {
    let out = Command::new(runtime)
        .arg("--root")
        .arg(root)
        .args(["run", "-b"])
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn engine_configs_run_like_runc() {
    let dir = configs_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".config.json"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "engine configs: {names:?}");
    for name in names {
        let raw: Value = serde_json::from_slice(&std::fs::read(dir.join(&name)).unwrap()).unwrap();
        let bundle = TempDir::new("berth-engine");
        let rootfs = bundle.path().join("rootfs");
        busybox_rootfs(&rootfs);
        let userns = raw["linux"]["uidMappings"].is_array();
        if userns {
            // The mapped root must own its rootfs and reach it.
            let host = raw["linux"]["uidMappings"][0]["hostID"].as_u64().unwrap();
            Command::new("chown")
                .args(["-R", &format!("{host}:{host}")])
                .arg(&rootfs)
                .status()
                .unwrap();
            Command::new("chmod")
                .args(["755"])
                .arg(bundle.path())
                .status()
                .unwrap();
        }
        std::fs::write(
            bundle.path().join("config.json"),
            serde_json::to_vec(&adapt(raw.clone(), &rootfs)).unwrap(),
        )
        .unwrap();
        let root = Root::new();
        let runc_root = TempDir::new("runc-root");
        let ours = run(BERTH, root.path(), bundle.path(), &unique("eng"));
        let theirs = run("runc", runc_root.path(), bundle.path(), &unique("eng-runc"));
        let wants_sys_resource = raw["process"]["capabilities"]["bounding"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c == "CAP_SYS_RESOURCE"));
        if wants_sys_resource && !host_has_cap(24) {
            // Like runc, refuse caps the host does not have; with one clear error.
            assert_ne!(ours.0, 0, "{name}: berth should fail");
            assert_ne!(theirs.0, 0, "{name}: runc failed here when captured");
            assert!(ours.2.contains("capabilities"), "{name}: {}", ours.2);
            continue;
        }
        assert_eq!(theirs.0, 3, "{name}: runc: {}", theirs.2);
        assert_eq!(ours.0, 3, "{name}: berth: {}", ours.2);
        assert_eq!(ours.1, theirs.1, "{name}: what the container sees differs");
    }
}
