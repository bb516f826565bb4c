//! Root tests for `berth::rootfs`: each test re-executes this test binary under
//! `unshare -m -p -f -i [-U -r]` with `BERTH_ROOTFS_SCENARIO` naming a scenario and a bundle;
//! the child (`scenario_child`) runs prepare / pivot / finish on a busybox-static rootfs and
//! checks, from inside the container, what each feature must produce. The parent checks the
//! host side: exit status, the hostile symlink stayed inside the rootfs, and the host mount
//! table is unchanged.
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use berth::rootfs::{finish, pivot, prepare, RootfsConfig};
use serde_json::{json, Value};

const ENV: &str = "BERTH_ROOTFS_SCENARIO";

/// A temporary bundle removed on drop (also when the test fails).
struct Bundle(PathBuf);

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Where the hostile symlink points: named after the test process (the parent's pid, handed
/// to the child through the environment).
fn escape_name() -> String {
    let pid =
        std::env::var("BERTH_ROOTFS_PARENT").unwrap_or_else(|_| std::process::id().to_string());
    format!("berth-escape-{pid}")
}

/// A busybox rootfs with a hostile symlink and content for tmpcopyup / masks.
fn make_bundle(name: &str, spec: Value) -> Bundle {
    let dir = std::env::temp_dir().join(format!("berth-rootfs-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let b = Bundle(dir.clone());
    let root = dir.join("rootfs");
    for d in [
        "bin",
        "etc/masked_dir",
        "etc/rodir",
        "proc",
        "sys",
        "dev",
        "tmp",
        "data",
        "ro",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", root.join("bin/busybox")).expect("apt-get install -y busybox-static");
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    std::os::unix::fs::symlink(format!("/../../{}", escape_name()), root.join("etc/x")).unwrap();
    fs::write(root.join("etc/masked_file"), "secret").unwrap();
    fs::write(root.join("etc/masked_dir/secret"), "secret").unwrap();
    fs::write(root.join("data/keep"), "kept").unwrap();
    fs::set_permissions(root.join("data/keep"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::create_dir_all(dir.join("vol")).unwrap();
    fs::write(dir.join("vol/hello"), "hello").unwrap();
    fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&spec).unwrap(),
    )
    .unwrap();
    b
}

/// The `berth spec` template's mounts (without devpts gid=5 in a user namespace, where gid 5
/// is not mapped), plus the cases these tests probe.
fn base_spec(userns: bool) -> Value {
    let mut spec = berth::spec::template::default_spec_json(false, 0, 0, true);
    let mounts = spec["mounts"].as_array_mut().unwrap();
    if userns {
        for m in mounts.iter_mut().filter(|m| m["type"] == "devpts") {
            m["options"]
                .as_array_mut()
                .unwrap()
                .retain(|o| o != "gid=5");
        }
    }
    mounts.extend([
        json!({"destination": "/etc/x/vol", "type": "bind", "source": "vol", "options": ["rbind", "ro", "nosuid"]}),
        json!({"destination": "/ro", "type": "bind", "source": "vol", "options": ["bind", "rro"]}),
        json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "mode=755"]}),
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}),
    ]);
    spec["linux"] = json!({
        "rootfsPropagation": "shared",
        "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                     "fileMode": 8630, "uid": 1000, "gid": 1000}],
        "sysctl": {"kernel.shmmax": "12345678"},
        "maskedPaths": ["/proc/kcore", "/proc/timer_list", "/proc/acpi", "/etc/masked_file", "/etc/masked_dir", "/does/not/exist"],
        "readonlyPaths": ["/proc/sys", "/etc/rodir", "/nope"]
    });
    spec
}

fn mountinfo_lines() -> usize {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

/// Run `scenario` on `spec` in a child under unshare; return its combined output.
fn run(scenario: &str, spec: Value, userns: bool) -> (Bundle, String) {
    let bundle = make_bundle(scenario, spec);
    let before = mountinfo_lines();
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "-p", "-f", "-i", "--propagation", "unchanged"]);
    if userns {
        cmd.args(["-U", "-r"]);
    }
    if scenario == "cgroupns" {
        cmd.arg("-C");
    }
    cmd.arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "scenario_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BERTH_ROOTFS_PARENT", std::process::id().to_string())
        .env(
            ENV,
            format!("{scenario}:{}:{}", bundle.0.display(), userns as u8),
        );
    let out = cmd.output().expect("running unshare (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "scenario {scenario} failed:\n{text}");
    assert!(
        text.contains(&format!("SCENARIO {scenario} OK")),
        "scenario did not run:\n{text}"
    );
    assert_eq!(mountinfo_lines(), before, "the host mount table changed");
    let escaped = Path::new("/").join(escape_name());
    assert!(
        !escaped.exists(),
        "a symlink led outside the rootfs to {}",
        escaped.display()
    );
    (bundle, text)
}

#[test]
fn full_container_rootfs() {
    let (bundle, _) = run("full", base_spec(false), false);
    // The hostile destination /etc/x/vol was created inside the rootfs.
    assert!(bundle
        .0
        .join("rootfs")
        .join(escape_name())
        .join("vol")
        .is_dir());
}

#[test]
fn full_container_rootfs_in_user_namespace() {
    run("userns", base_spec(true), true);
}

#[test]
fn cgroup_namespace_mounts_cgroupfs() {
    run("cgroupns", base_spec(false), false);
}

#[test]
fn no_pivot_moves_root() {
    let mut spec = base_spec(false);
    spec["linux"]["rootfsPropagation"] = json!("rslave");
    // A read-only /dev is remounted so only after the devices were made.
    spec["mounts"][1]["options"]
        .as_array_mut()
        .unwrap()
        .push(json!("ro"));
    spec["linux"]["devices"]
        .as_array_mut()
        .unwrap()
        .push(json!({"path": "/dev/myfifo", "type": "p"}));
    run("nopivot", spec, false);
}

#[test]
fn errors_name_the_mount_and_errno() {
    let spec = json!({
        "ociVersion": "1.2.0", "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/x", "type": "nosuchfs", "source": "none"}
        ]
    });
    run("error", spec, false);
}

// ---- the child side ----

#[test]
fn scenario_child() {
    let Ok(arg) = std::env::var(ENV) else { return };
    let mut it = arg.splitn(3, ':');
    let (scenario, bundle, userns) = (
        it.next().unwrap(),
        it.next().unwrap(),
        it.next().unwrap() == "1",
    );
    let bundle = PathBuf::from(bundle);
    let text = fs::read(bundle.join("config.json")).unwrap();
    let spec = berth::spec::parse_config(&text).unwrap();
    let cfg = RootfsConfig {
        spec: &spec,
        rootfs: fs::canonicalize(bundle.join("rootfs")).unwrap(),
        bundle: bundle.clone(),
        no_pivot: scenario == "nopivot",
        new_userns: userns,
        new_cgroupns: scenario == "cgroupns",
        mounts_copied: false,
        cgroup_ready: &|| Ok(()),
        mount_sources: &Default::default(),
    };
    if scenario == "error" {
        let err = format!("{:#}", prepare(&cfg).unwrap_err());
        assert_eq!(
            err,
            "mounts[1]: mounting \"none\" (type nosuchfs) at /x: mount: ENODEV: No such device"
        );
    } else {
        prepare(&cfg).unwrap_or_else(|e| panic!("prepare: {e:#}"));
        pivot(&cfg).unwrap_or_else(|e| panic!("pivot: {e:#}"));
        if scenario == "full" {
            check_console();
        }
        finish(&cfg).unwrap_or_else(|e| panic!("finish: {e:#}"));
        check_inside(scenario, userns);
    }
    println!("SCENARIO {scenario} OK");
    std::io::stdout().flush().unwrap();
}

/// A pty from the container's devpts; its slave is bound onto /dev/console.
fn check_console() {
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let master = posix_openpt(nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let slave = ptsname_r(&master).unwrap();
    let fd = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&slave)
        .unwrap();
    berth::rootfs::mount_console(std::os::fd::AsFd::as_fd(&fd), Path::new(&slave))
        .unwrap_or_else(|e| panic!("console: {e:#}"));
    let console = fs::metadata("/dev/console").unwrap();
    assert!(console.file_type().is_char_device());
    assert_eq!(console.rdev(), fs::metadata(&slave).unwrap().rdev());
}

fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The read-only `cgroup` mount shows this process's own cgroup (v1: per hierarchy).
fn check_cgroup_mount() {
    let (procs, own_file) = if cgroup_v2() {
        (
            "/sys/fs/cgroup/cgroup.procs",
            "/sys/fs/cgroup/cgroup.controllers",
        )
    } else {
        assert!(Path::new("/sys/fs/cgroup/cpu").exists());
        (
            "/sys/fs/cgroup/memory/cgroup.procs",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        )
    };
    assert_eq!(write_err(procs), Some(libc::EROFS), "ro cgroup");
    assert!(Path::new(own_file).exists(), "own cgroup bound");
    let me = std::process::id().to_string();
    let listed = fs::read_to_string(procs).unwrap();
    assert!(
        listed.lines().any(|l| l == me),
        "pid {me} not in {procs}: {listed}"
    );
}

fn mount_points() -> Vec<(String, String, String)> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let fstype = l.split(" - ").nth(1).unwrap().split(' ').next().unwrap();
            (
                f[4].to_string(),
                f[5].to_string(),
                format!("{} {fstype}", f[6..].join(" ")),
            )
        })
        .collect()
}

fn write_err(p: &str) -> Option<i32> {
    fs::write(p, "x").err().and_then(|e| e.raw_os_error())
}

fn check_inside(scenario: &str, userns: bool) {
    let mounts = mount_points();
    let find = |p: &str| {
        mounts
            .iter()
            .rev()
            .find(|m| m.0 == p)
            .unwrap_or_else(|| panic!("{p} not mounted: {mounts:?}"))
    };
    for p in [
        "/",
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
        "/ro",
        "/data",
        "/tmp",
    ] {
        find(p);
    }
    // Nothing of the host is left (the old root was detached).
    assert!(
        !mounts
            .iter()
            .any(|m| m.0.starts_with("/mnt/") || m.0.contains("rootfs")),
        "{mounts:?}"
    );
    let vol = format!("/{}/vol", escape_name());
    let volm = find(&vol);
    assert!(
        volm.1.contains("ro") && volm.1.contains("nosuid"),
        "{volm:?}"
    );
    assert_eq!(fs::read_to_string(format!("{vol}/hello")).unwrap(), "hello");
    assert_eq!(fs::read_to_string("/etc/x/vol/hello").unwrap(), "hello");

    // Devices.
    let null = fs::metadata("/dev/null").unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap()
        .write_all(b"x")
        .unwrap();
    let fuse = fs::metadata("/dev/fuse").unwrap();
    assert_eq!(fuse.rdev(), nix::sys::stat::makedev(10, 229));
    if !userns {
        assert_eq!(fuse.mode() & 0o7777, 0o666);
        assert_eq!((fuse.uid(), fuse.gid()), (1000, 1000));
    }
    assert_eq!(fs::read_link("/dev/ptmx").unwrap(), Path::new("pts/ptmx"));
    assert_eq!(
        fs::read_link("/dev/fd").unwrap(),
        Path::new("/proc/self/fd")
    );
    assert_eq!(
        fs::read_link("/dev/stderr").unwrap(),
        Path::new("/proc/self/fd/2")
    );
    for d in ["zero", "full", "random", "urandom", "tty"] {
        assert!(
            fs::metadata(format!("/dev/{d}"))
                .unwrap()
                .file_type()
                .is_char_device(),
            "/dev/{d}"
        );
    }

    if scenario == "nopivot" {
        assert_eq!(write_err("/dev/newfile"), Some(libc::EROFS), "ro /dev");
        assert!(fs::metadata("/dev/myfifo").unwrap().file_type().is_fifo());
    }
    if scenario == "cgroupns" && !cgroup_v2() {
        // A fresh cgroup mount: its root is the cgroup namespace root, our own cgroup.
        let own = fs::read_to_string("/proc/self/cgroup").unwrap();
        let mem = own.lines().find(|l| l.contains(":memory:")).unwrap();
        assert!(mem.ends_with(":memory:/"), "{mem}");
        assert!(find("/sys/fs/cgroup/memory").2.contains("cgroup"));
    }

    // Read-only things.
    assert_eq!(write_err("/ro/hello"), Some(libc::EROFS), "rro bind");
    assert_eq!(write_err("/newfile"), Some(libc::EROFS), "root.readonly");
    assert_eq!(
        write_err("/proc/sys/kernel/hostname"),
        Some(libc::EROFS),
        "readonlyPaths /proc/sys"
    );
    assert_eq!(
        write_err("/etc/rodir/f"),
        Some(libc::EROFS),
        "readonlyPaths /etc/rodir"
    );
    check_cgroup_mount();
    fs::write("/tmp/w", "writable").unwrap();

    // Masks.
    assert_eq!(fs::read("/etc/masked_file").unwrap(), b"");
    assert_eq!(fs::read("/proc/timer_list").unwrap().len(), 0);
    assert_eq!(write_err("/proc/acpi/x"), Some(libc::EROFS));
    assert_eq!(fs::read_dir("/etc/masked_dir").unwrap().count(), 0);
    assert_eq!(write_err("/etc/masked_dir/x"), Some(libc::EROFS));

    // tmpcopyup kept content and mode.
    assert_eq!(fs::read_to_string("/data/keep").unwrap(), "kept");
    assert_eq!(fs::metadata("/data/keep").unwrap().mode() & 0o777, 0o640);
    assert_eq!(find("/data").2.split(' ').next_back(), Some("tmpfs"));

    // sysctl went to the container's ipc namespace.
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/shmmax")
            .unwrap()
            .trim(),
        "12345678"
    );

    // Propagation of / at the end.
    let root = find("/");
    if scenario == "nopivot" {
        assert!(
            root.2.contains("master:") || !root.2.contains("shared:"),
            "{root:?}"
        );
    } else {
        assert!(
            root.2.contains("shared:"),
            "rootfsPropagation shared: {root:?}"
        );
    }

    // The rootfs works: exec busybox from it.
    let out = Command::new("/bin/busybox")
        .args(["cat", "/etc/x/vol/hello"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"hello");
    assert!(
        matches!(fs::metadata("/etc/../../..").map(|m| m.ino()), Ok(i) if i == fs::metadata("/").unwrap().ino())
    );
}
