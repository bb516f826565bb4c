//! Idmapped mounts (`idmap`, `ridmap`, `uidMappings`/`gidMappings` on a mount), with and
//! without a container user namespace. Each test runs a real container and reads the owners
//! it sees through the mount, its mountinfo, and what a write leaves on the host. The
//! sources sit in the bundle directory, under /tmp (ext4 here; a tmpfs is used for the
//! submount, which supports idmapping since 6.3).
mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn map(container: u32, host: u32, size: u32) -> Value {
    json!([{"containerID": container, "hostID": host, "size": size}])
}

/// A bind mount of `src` at `dest`, with these options and optional (uid, gid) maps.
fn bind(src: &Path, dest: &str, options: &[&str], maps: Option<(Value, Value)>) -> Value {
    let mut m = json!({"source": src, "destination": dest, "options": options});
    if let Some((u, g)) = maps {
        m["uidMappings"] = u;
        m["gidMappings"] = g;
    }
    m
}

/// `dir/name` with files owned by these (uid, gid) pairs: f0, f1, ...
fn source(dir: &Path, name: &str, owners: &[(u32, u32)]) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    for (i, (u, g)) in owners.iter().enumerate() {
        let f = d.join(format!("f{i}"));
        std::fs::write(&f, "x").unwrap();
        std::os::unix::fs::chown(&f, Some(*u), Some(*g)).unwrap();
    }
    d
}

/// A bundle whose rootfs is made first, so that the sources can go next to it.
fn bundle_with(args: &[&str], edit: impl FnOnce(&mut Value, &Path)) -> Bundle {
    let b = Bundle::new(args);
    let mut spec = b.config();
    edit(&mut spec, b.path());
    b.set_config(&spec);
    b
}

fn mounts(s: &mut Value) -> &mut Vec<Value> {
    s["mounts"].as_array_mut().unwrap()
}

fn run(root: &Root, b: &Bundle, id: &str) -> String {
    let (code, out, err) = root.run_bundle(b, id);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    out
}

#[test]
fn idmap_without_a_user_namespace() {
    let root = Root::new();
    let id = unique("ft-idmap");
    let script = "stat -c '%n %u %g' /tmp/m1/f0 /tmp/m1/f1 /tmp/plain/f0 /tmp/m2/f0 /tmp/rel/f0 \
                  /tmp/again/f1 /tmp/file; touch /tmp/m1/new 2>&1; echo touch=$?; sh -c ': > /tmp/file' 2>&1; echo ro=$?";
    let b = bundle_with(&["sh", "-c", script], |s, dir| {
        let s1 = source(dir, "s1", &[(0, 0), (1, 2)]);
        let s2 = source(dir, "s2", &[(5, 6)]);
        let m = mounts(s);
        let maps1 = (map(0, 100000, 65536), map(0, 200000, 65536));
        m.push(bind(&s1, "/tmp/m1", &["bind"], Some(maps1.clone())));
        m.push(bind(&s1, "/tmp/plain", &["bind"], None));
        // Mappings alone make an idmapped mount, as in runc; a different mapping per mount.
        m.push(
            json!({"source": s2, "destination": "/tmp/m2", "type": "bind",
            "uidMappings": map(5, 1005, 1), "gidMappings": map(6, 2006, 1)}),
        );
        // A relative destination is taken from /.
        m.push(bind(
            &s1,
            "tmp/rel",
            &["bind", "idmap"],
            Some(maps1.clone()),
        ));
        // A file can be idmapped too.
        m.push(bind(
            &s1.join("f1"),
            "/tmp/file",
            &["bind", "ro"],
            Some(maps1),
        ));
        // A bind of the idmapped mount keeps its idmapping.
        let again = dir.join("rootfs/tmp/m1");
        m.push(bind(&again, "/tmp/again", &["bind"], None));
    });
    let out = run(&root, &b, &id);
    let want = [
        "/tmp/m1/f0 100000 200000",
        "/tmp/m1/f1 100001 200002",
        "/tmp/plain/f0 0 0",
        "/tmp/m2/f0 1005 2006",
        "/tmp/rel/f0 100000 200000",
        "/tmp/again/f1 100001 200002",
        "/tmp/file 100001 200002",
    ];
    for w in want {
        assert!(out.contains(w), "missing {w:?} in:\n{out}");
    }
    // The flags of the entry are set on the idmapped tree too.
    assert!(out.contains("Read-only file system"), "{out}");
    // Root of the host's user namespace has no id on the mount: the write fails (EOVERFLOW).
    assert!(out.contains("Value too large"), "{out}");
    assert!(!out.contains("touch=0"), "{out}");
    assert!(!b.path().join("s1/new").exists());
}

/// A container with the user namespace 0 -> 100000 (64k ids) and its rootfs chowned to it.
fn userns_bundle(args: &[&str], edit: impl FnOnce(&mut Value, &Path)) -> Bundle {
    let b = bundle_with(args, |s, dir| {
        userns_100000(s);
        edit(s, dir);
    });
    chown_rootfs(&b, "100000:100000");
    b
}

#[test]
fn idmap_in_a_user_namespace() {
    let root = Root::new();
    let id = unique("ft-idmap");
    let script = "stat -c '%n %u %g' /tmp/m1/f0 /tmp/implied/f1 /tmp/plain/f0 /tmp/multi/f0 \
                  /tmp/multi/f1 /tmp/same/f0 && touch /tmp/m1/new && stat -c '%n %u %g' /tmp/m1/new";
    let b = userns_bundle(&["sh", "-c", script], |s, dir| {
        let s1 = source(dir, "s1", &[(0, 0), (1, 1)]);
        let multi = source(dir, "multi", &[(100, 211), (101, 222)]);
        let m = mounts(s);
        let same = (map(0, 100000, 65536), map(0, 100000, 65536));
        m.push(bind(&s1, "/tmp/m1", &["bind"], Some(same.clone())));
        // No mappings: the container's own are implied.
        m.push(bind(&s1, "/tmp/implied", &["bind", "idmap"], None));
        m.push(bind(&s1, "/tmp/plain", &["bind"], None));
        m.push(bind(
            &multi,
            "/tmp/multi",
            &["bind"],
            Some((map(100, 101100, 3), map(200, 101900, 50))),
        ));
        // A second mount with the same mapping (one user namespace serves both).
        m.push(bind(&multi, "/tmp/same", &["bind"], Some(same)));
    });
    let out = run(&root, &b, &id);
    let want = [
        "/tmp/m1/f0 0 0",
        "/tmp/implied/f1 1 1",
        "/tmp/plain/f0 65534 65534",
        "/tmp/multi/f0 1100 1911",
        "/tmp/multi/f1 1101 1922",
        "/tmp/same/f0 100 211",
        "/tmp/m1/new 0 0",
    ];
    for w in want {
        assert!(out.contains(w), "missing {w:?} in:\n{out}");
    }
    // The write went through the idmapping: on disk it is the source's own uid 0, not the
    // container root's 100000.
    let md = std::fs::metadata(b.path().join("s1/new")).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0));
}

/// A tmpfs mounted on the host below a source, unmounted on drop.
struct Submount(PathBuf);

impl Submount {
    fn new(at: PathBuf) -> Submount {
        std::fs::create_dir_all(&at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "ft-idmap-sub"])
            .arg(&at)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::write(at.join("f"), "x").unwrap();
        Submount(at)
    }
}

impl Drop for Submount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn ridmap_maps_the_submounts_and_idmap_only_the_top() {
    let root = Root::new();
    let id = unique("ft-idmap");
    let script = "stat -c '%n %u' /a/f0 /a/sub/f /b/f0 /b/sub/f; grep -E ' /(a|b)(/sub)? ' /proc/self/mountinfo";
    let mut sub = None;
    let b = bundle_with(&["sh", "-c", script], |s, dir| {
        let src = source(dir, "tree", &[(0, 0)]);
        sub = Some(Submount::new(src.join("sub")));
        let m = mounts(s);
        let maps = (map(0, 100000, 65536), map(0, 100000, 65536));
        m.push(bind(&src, "/a", &["rbind", "idmap"], Some(maps.clone())));
        m.push(bind(
            &src,
            "/b",
            &["rbind", "ridmap", "rprivate"],
            Some(maps),
        ));
    });
    let out = run(&root, &b, &id);
    drop(sub);
    for w in [
        "/a/f0 100000",
        "/a/sub/f 0",
        "/b/f0 100000",
        "/b/sub/f 100000",
    ] {
        assert!(out.contains(w), "missing {w:?} in:\n{out}");
    }
    let line = |p: &str| {
        out.lines()
            .find(|l| l.split(' ').nth(4) == Some(p))
            .unwrap_or_else(|| panic!("no mountinfo line for {p} in:\n{out}"))
            .to_string()
    };
    let idmapped = |p: &str| line(p).split(' ').nth(5).unwrap().contains("idmapped");
    assert!(idmapped("/a") && !idmapped("/a/sub"), "{out}");
    assert!(idmapped("/b") && idmapped("/b/sub"), "{out}");
    assert_eq!(mounts_mentioning("ft-idmap-sub"), 0);
}

/// A propagation option on an idmapped mount (and on a plain bind beside it) is what the
/// container sees: the pivot's rslave of the old root does not reach the new root's mounts.
#[test]
fn idmap_with_propagation_flags() {
    let root = Root::new();
    let id = unique("ft-idmap");
    let b = bundle_with(&["grep", " /shared", "/proc/self/mountinfo"], |s, dir| {
        let src = source(dir, "s", &[(0, 0)]);
        let maps = (map(0, 100000, 65536), map(0, 100000, 65536));
        let m = mounts(s);
        m.push(bind(
            &src,
            "/shared",
            &["bind", "idmap", "shared"],
            Some(maps),
        ));
        m.push(bind(&src, "/shared-plain", &["bind", "shared"], None));
    });
    let out = run(&root, &b, &id);
    let fields = |p: &str| -> Vec<String> {
        let l = out
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(p))
            .unwrap_or_else(|| panic!("no {p} in:\n{out}"));
        l.split(' ').map(String::from).collect()
    };
    let idm = fields("/shared");
    assert!(idm[5].contains("idmapped"), "{out}");
    assert!(idm[6].starts_with("shared:"), "{out}");
    assert!(fields("/shared-plain")[6].starts_with("shared:"), "{out}");
}

#[test]
fn idmap_implied_from_a_joined_user_namespace() {
    let root = Root::new();
    // A container whose user namespace the second one joins.
    let holder = unique("ft-idmap-holder");
    let hb = userns_bundle(&["sleep", "100"], |_, _| {});
    root.ok(&["create", "-b", hb.path().to_str().unwrap(), &holder]);
    let pid = root.state(&holder)["pid"].as_i64().unwrap();
    let id = unique("ft-idmap");
    let b = bundle_with(
        &["stat", "-c", "%n %u %g", "/tmp/m/f0", "/tmp/m/f1"],
        |s, dir| {
            userns_100000(s);
            let linux = s["linux"].as_object_mut().unwrap();
            linux.remove("uidMappings");
            linux.remove("gidMappings");
            for ns in linux["namespaces"].as_array_mut().unwrap() {
                if ns["type"] == "user" {
                    ns["path"] = json!(format!("/proc/{pid}/ns/user"));
                }
            }
            let src = source(dir, "s", &[(0, 0), (7, 8)]);
            mounts(s).push(bind(&src, "/tmp/m", &["bind", "idmap"], None));
        },
    );
    chown_rootfs(&b, "100000:100000");
    let out = run(&root, &b, &id);
    root.ok(&["delete", "--force", &holder]);
    assert!(out.contains("/tmp/m/f0 0 0"), "{out}");
    assert!(out.contains("/tmp/m/f1 7 8"), "{out}");
}

#[test]
fn no_mount_source_stays_open_in_the_init() {
    let root = Root::new();
    let id = unique("ft-idmap");
    let b = userns_bundle(&["true"], |s, dir| {
        let src = source(dir, "s", &[(0, 0)]);
        let m = mounts(s);
        m.push(bind(&src, "/tmp/m", &["bind", "idmap"], None));
        m.push(bind(&src, "/tmp/plain", &["bind"], None));
    });
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    let mut links = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let e = e.unwrap();
        let target = std::fs::read_link(e.path()).unwrap();
        links.push(format!(
            "{} -> {}",
            e.file_name().to_string_lossy(),
            target.display()
        ));
    }
    root.ok(&["delete", "--force", &id]);
    // What the init holds while it waits for start: stdio, the sync socket, the exec fifo.
    // A mount tree fd reads as a directory ("/" of its own detached mount, or the source).
    for l in &links {
        let target = l.split(" -> ").nth(1).unwrap();
        let expected = target.starts_with("socket:")
            || target.starts_with("pipe:")
            || target.ends_with("/exec.fifo")
            || target.starts_with("/dev/null")
            || target.starts_with("/tmp/berth-out");
        assert!(expected, "unexpected fd in the init: {l}\nall: {links:#?}");
    }
}

#[test]
fn idmap_errors_leave_nothing() {
    let root = Root::new();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
            "mounts[N] (/t): id-mapped mounts are only supported for bind-mounts",
        ),
        (
            json!({"destination": "/t", "source": "/tmp", "options": ["bind", "ridmap"]}),
            "mounts[N] (/t): id-mapped mounts must have both uid and gid mappings specified",
        ),
        (
            json!({"destination": "/t", "source": "/tmp", "options": ["bind"],
                   "uidMappings": map(0, 100000, 10)}),
            "mounts[N] (/t): id-mapped mounts must have both uid and gid mappings specified",
        ),
        // sysfs cannot be idmapped: the kernel's EINVAL, with the entry named.
        (
            json!({"destination": "/t", "source": "/sys", "options": ["bind"],
                   "uidMappings": map(0, 100000, 10), "gidMappings": map(0, 100000, 10)}),
            "mount_setattr(MOUNT_ATTR_IDMAP) (a filesystem of the source that cannot be idmapped?): EINVAL",
        ),
        // A mapping the kernel refuses (size 0) fails while its namespace is made.
        (
            json!({"destination": "/t", "source": "/tmp", "options": ["bind"],
                   "uidMappings": map(0, 100000, 0), "gidMappings": map(0, 100000, 10)}),
            "making a user namespace for the mount's mapping: writing \"0 100000 0\" to /proc/",
        ),
    ];
    for (mount, want) in cases {
        let id = unique("ft-idmap-bad");
        let b = Bundle::with(&["true"], |s| mounts(s).push(mount.clone()));
        let n = b.config()["mounts"].as_array().unwrap().len() - 1;
        let want = want.replace("mounts[N]", &format!("mounts[{n}]"));
        let e = root.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
        assert!(e.contains(&want), "{mount}: want {want:?} in:\n{e}");
        assert_nothing_left(&root, &id, &b);
    }
}

/// An idmapped mount made on the host (our own, below the test's directory) with the user
/// namespace at `userns`; unmounted on drop.
struct HostIdmapped(PathBuf);

impl HostIdmapped {
    fn new(src: &Path, at: PathBuf, userns: &Path) -> HostIdmapped {
        use berth::sys::mount as m;
        use nix::fcntl::OFlag;
        use std::os::fd::AsFd;
        std::fs::create_dir_all(&at).unwrap();
        let fd = m::openat(None, src, OFlag::O_PATH, 0).unwrap();
        let tree = m::clone_tree(fd.as_fd(), false).unwrap();
        let ns = std::fs::File::open(userns).unwrap();
        m::mount_setattr_idmap(tree.as_fd(), false, ns.as_fd()).unwrap();
        let dst = m::openat(None, &at, OFlag::O_PATH | OFlag::O_DIRECTORY, 0).unwrap();
        m::move_mount(tree.as_fd(), dst.as_fd()).unwrap();
        HostIdmapped(at)
    }
}

impl Drop for HostIdmapped {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A source that is an idmapped mount already: a plain bind of it keeps its idmapping;
/// idmapping it again is the kernel's EPERM, with the entry named, and leaves nothing.
#[test]
fn a_source_that_is_idmapped_already() {
    let root = Root::new();
    // A created container lends its user namespace (0 -> 100000) to the host mount.
    let holder = unique("ft-idmap-holder");
    let hb = userns_bundle(&["true"], |_, _| {});
    root.ok(&["create", "-b", hb.path().to_str().unwrap(), &holder]);
    let pid = root.state(&holder)["pid"].as_i64().unwrap();
    let dir = TempDir::new("ft-idmap-host");
    let src = source(dir.path(), "s", &[(3, 4)]);
    let host = HostIdmapped::new(
        &src,
        dir.path().join("idmapped"),
        Path::new(&format!("/proc/{pid}/ns/user")),
    );
    root.ok(&["delete", "--force", &holder]);

    let id = unique("ft-idmap");
    let b = Bundle::with(&["stat", "-c", "%n %u %g", "/again/f0"], |s| {
        mounts(s).push(bind(&host.0, "/again", &["bind"], None));
    });
    let (code, out, err) = root.run_bundle(&b, &id);
    let bad = unique("ft-idmap-bad");
    let bb = Bundle::with(&["true"], |s| {
        let maps = (map(0, 200000, 65536), map(0, 200000, 65536));
        mounts(s).push(bind(&host.0, "/twice", &["bind"], Some(maps)));
    });
    let e = root.fails(&["create", "-b", bb.path().to_str().unwrap(), &bad]);
    drop(host);

    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "/again/f0 100003 100004\n");
    assert!(
        e.contains("mount_setattr(MOUNT_ATTR_IDMAP) (a source that is idmapped already?): EPERM"),
        "{e}"
    );
    assert_nothing_left(&root, &bad, &bb);
    assert_eq!(mounts_mentioning(dir.path().to_str().unwrap()), 0);
}
