//! User namespaces as runc users join them (issue 7 item 16): another container's user
//! namespace by its /proc path or through a bind-mounted ns file, with the container's other
//! new namespaces owned by it, and a clear error when the caller may not join it.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

/// Joins the user namespace at `path` instead of making one (no mappings of its own).
fn join_userns(s: &mut Value, path: &Path) {
    userns_100000(s);
    let nss = s["linux"]["namespaces"].as_array_mut().unwrap();
    nss.retain(|n| n["type"] != "user");
    nss.push(json!({"type": "user", "path": path}));
    let linux = s["linux"].as_object_mut().unwrap();
    linux.remove("uidMappings");
    linux.remove("gidMappings");
}

/// A bind mount of a namespace file, undone on drop.
struct NsFile(PathBuf, #[allow(dead_code)] TempDir);

impl NsFile {
    fn bind(ns: &Path) -> NsFile {
        let dir = TempDir::new("compat-nsfile");
        let f = dir.path().join("userns");
        std::fs::write(&f, "").unwrap();
        let st = Command::new("mount")
            .args(["--bind"])
            .arg(ns)
            .arg(&f)
            .status()
            .unwrap();
        assert!(st.success());
        NsFile(f, dir)
    }
}

impl Drop for NsFile {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A running user namespace container; returns its init's pid.
fn owner_container(root: &Root, id: &str) -> (Bundle, i64) {
    let b = Bundle::with(&["sleep", "100"], userns_100000);
    chown_rootfs(&b, "100000:100000");
    root.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), id]);
    let pid = root.state(id)["pid"].as_i64().unwrap();
    (b, pid)
}

const PROBE: &str = "readlink /proc/self/ns/user; cat /proc/self/uid_map";

/// Joining by /proc/PID/ns/user and by a bind-mounted copy of it: the container is in that
/// user namespace, and its new network namespace belongs to it (its root brings up lo).
#[test]
fn join_another_containers_user_namespace_by_path_and_by_ns_file() {
    let root = Root::new();
    let owner = unique("compat-usero");
    let (_ob, pid) = owner_container(&root, &owner);
    let want = std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    let by_proc = PathBuf::from(format!("/proc/{pid}/ns/user"));
    let file = NsFile::bind(&by_proc);
    for path in [by_proc.as_path(), file.0.as_path()] {
        let b = Bundle::with(&["sh", "-c", PROBE], |s| join_userns(s, path));
        chown_rootfs(&b, "100000:100000");
        let (code, out, err) = root.run_bundle(&b, &unique("compat-userj"));
        assert_eq!(code, 0, "{}: {err}", path.display());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], want.to_str().unwrap(), "{out}");
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["0", "100000", "65536"]
        );
    }
    root.ok(&["delete", "--force", &owner]);
}

/// A caller that may not join the user namespace (an unprivileged user, a namespace root
/// owns) gets an error that names the namespace and its owner, and nothing is left.
#[test]
fn joining_a_user_namespace_owned_by_someone_else_is_a_clear_error() {
    let root = Root::new();
    let owner = unique("compat-usero");
    let (_ob, pid) = owner_container(&root, &owner);
    let file = NsFile::bind(Path::new(&format!("/proc/{pid}/ns/user")));
    let nobody_root = Root::new();
    let st = Command::new("chown")
        .arg("65534:65534")
        .arg(nobody_root.path())
        .status()
        .unwrap();
    assert!(st.success());
    let b = Bundle::with(&["true"], |s| {
        join_userns(s, &file.0);
        // Rootless: no cgroup resources.
        s["linux"].as_object_mut().unwrap().remove("resources");
    });
    let id = unique("compat-userx");
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BERTH,
            "--root",
        ])
        .arg(nobody_root.path())
        .args(["run", "-b"])
        .arg(b.path())
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(file.0.to_str().unwrap()), "{err}");
    assert!(
        err.contains("owned by uid 0") && err.contains("uid 65534"),
        "{err}"
    );
    assert!(err.contains("EPERM"), "{err}");
    assert!(nobody_root.is_empty(), "state left");
    root.ok(&["delete", "--force", &owner]);
}

/// A bind source below a directory only the host's root may search: the init of a user
/// namespace cannot open it, so the copy the runtime opened before the clone is attached,
/// with the entry's flags, as runc passes mount-source fds.
#[test]
fn bind_source_the_container_root_cannot_reach() {
    use std::os::unix::fs::PermissionsExt;
    let root = Root::new();
    let hidden = TempDir::new("compat-hidden");
    std::fs::set_permissions(hidden.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let vol = hidden.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("hello"), "from the host").unwrap();
    std::fs::set_permissions(&vol, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(vol.join("hello"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let b = Bundle::with(
        &[
            "sh",
            "-c",
            "cat /vol/hello; echo; awk '$2 == \"/vol\" { print $4 }' /proc/self/mounts",
        ],
        |s| {
            userns_100000(s);
            s["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/vol", "type": "bind", "source": vol, "options": ["rbind", "ro", "nosuid"]
            }));
        },
    );
    chown_rootfs(&b, "100000:100000");
    let (code, out, err) = root.run_bundle(&b, &unique("compat-hiddenvol"));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "from the host", "{out}");
    let flags: Vec<&str> = lines[1].split(',').collect();
    assert!(flags.contains(&"ro") && flags.contains(&"nosuid"), "{out}");
}
