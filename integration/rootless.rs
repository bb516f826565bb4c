//! The rootless lane: an ordinary user, created here with an /etc/subuid and /etc/subgid
//! range (Debian's uidmap package supplies newuidmap and newgidmap), runs
//! - podman with `--runtime berth` (through an argv-capturing wrapper): run with an exit code,
//!   exec, stop, rm, inside podman's user namespace of 65537 ids, and a file written by a
//!   non-root user inside showing its mapped owner outside;
//! - berth itself: a bundle mapping 65536 subordinate ids as well as the user's own, which
//!   berth writes through newuidmap/newgidmap as runc does; the clear errors when the helper
//!   is missing, and for limits when cgroup v1 gives the user no cgroup.
//!
//! The user, its ids and its files are gone at the end, and so is every process it ran.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::json;

/// Each user's subordinate ids: a 65536-id range of its own, far above everyone else's.
const SUBIDS: u32 = 65536;
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// An ordinary user made for one test: a name starting with `cri-rl`, a home and an
/// XDG_RUNTIME_DIR under a private directory, and a subordinate id range.
struct TestUser {
    name: String,
    uid: u32,
    subid: u32,
    dir: TempDir,
}

impl TestUser {
    fn create() -> TestUser {
        let name = unique("cri-rl");
        let dir = TempDir::new("cri-rootless");
        let n = std::process::id() % 8000 * 4
            + SEQ_USERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 4;
        let subid = 1_000_000_000 + n * SUBIDS;
        let out = Command::new("useradd")
            .args(["-M", "-d"])
            .arg(dir.path().join("home"))
            .args([
                "-s",
                "/bin/sh",
                "-K",
                "SUB_UID_COUNT=0",
                "-K",
                "SUB_GID_COUNT=0",
                &name,
            ])
            .output()
            .expect("useradd (passwd package)");
        must("useradd", out, "");
        let mut user = TestUser {
            uid: 0,
            subid,
            name,
            dir,
        };
        // usermod needs the files (a fresh system may not have them yet).
        for f in ["/etc/subuid", "/etc/subgid"] {
            if !Path::new(f).exists() {
                std::fs::write(f, "").unwrap();
            }
        }
        let range = format!("{}-{}", subid, subid + SUBIDS - 1);
        must(
            "usermod --add-subuids",
            Command::new("usermod")
                .args(["--add-subuids", &range, "--add-subgids", &range, &user.name])
                .output()
                .unwrap(),
            "",
        );
        user.uid = must(
            "id -u",
            Command::new("id")
                .args(["-u", &user.name])
                .output()
                .unwrap(),
            "",
        )
        .trim()
        .parse()
        .unwrap();
        for d in ["home", "run"] {
            let p = user.dir.path().join(d);
            std::fs::create_dir(&p).unwrap();
            std::os::unix::fs::chown(&p, Some(user.uid), Some(user.uid)).unwrap();
        }
        std::fs::set_permissions(
            user.dir.path().join("run"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        user
    }

    /// `prog` as this user, in a clean environment: its HOME, XDG_RUNTIME_DIR and USER,
    /// `path` as PATH, and `env`.
    fn cmd_with(&self, prog: &Path, path: &str, env: &[String]) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", &self.name, "--", "env", "-i"])
            .arg(format!("HOME={}", self.dir.path().join("home").display()))
            .arg(format!("XDG_RUNTIME_DIR={}", self.run().display()))
            .arg(format!("USER={}", self.name))
            .arg(format!("PATH={path}"))
            .args(env)
            .arg(prog)
            .stdin(Stdio::null());
        c
    }

    fn run(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// The live (not zombie) processes running as this user.
    fn processes(&self) -> Vec<String> {
        let mut out = vec![];
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
                continue;
            };
            let field = |k: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(k))
                    .unwrap_or("")
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string()
            };
            if field("Uid:") == self.uid.to_string() && field("State:") != "Z" {
                out.push(format!(
                    "{} {}",
                    e.file_name().to_string_lossy(),
                    field("Name:")
                ));
            }
        }
        out
    }

    /// podman's pause process (it holds podman's user namespace), if one runs.
    fn stop_pause_process(&self) {
        for f in ["tmp/pause.pid", "libpod/tmp/pause.pid"] {
            if let Ok(pid) = std::fs::read_to_string(self.run().join(f)) {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

static SEQ_USERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Drop for TestUser {
    fn drop(&mut self) {
        self.stop_pause_process();
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// The same image as the other engine lanes, readable by the user.
fn image(dir: &Path) -> PathBuf {
    oci_image(dir, "latest", &["sh", "-c", "echo hello-from-smoke"])
}

#[test]
fn rootless_podman_drives_berth() {
    let user = TestUser::create();
    let d = user.dir.path();
    let tar = image(d);
    let argv = ArgvCapture::new("podman-rootless", d);
    let conf = d.join("containers.conf");
    std::fs::write(
        &conf,
        "[containers]\nnetns = \"none\"\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
    )
    .unwrap();
    let home = d.join("home");
    let env = [format!("CONTAINERS_CONF={}", conf.display())];
    let podman = |args: &[&str]| -> Output {
        user.cmd_with(Path::new("podman"), PATH, &env)
            .arg(format!("--root={}", home.join("storage").display()))
            .arg(format!(
                "--runroot={}",
                user.run().join("storage").display()
            ))
            .arg(format!("--tmpdir={}", user.run().join("tmp").display()))
            .args(["--storage-driver", "vfs", "--runtime"])
            .arg(&argv.path)
            .args(args)
            .output()
            .expect("podman is needed: apt-get install -y podman")
    };
    let ok = |args: &[&str]| must(&format!("podman {args:?}"), podman(args), "");
    let cleanup = OnDrop(|| {
        let _ = podman(&["rm", "-f", "-a"]);
    });
    ok(&["pull", "-q", &format!("oci-archive:{}", tar.display())]);
    let image = "localhost/latest:latest";

    // Run: the image's command and an exit code, in podman's user namespace (the user as
    // root, then the 65536 subordinate ids).
    let none = ["--network", "none"];
    let run = |extra: &[&str]| -> Output { podman(&[&["run", "--rm"][..], &none, extra].concat()) };
    assert_eq!(output_text(&run(&[image])), "hello-from-smoke\n");
    assert_eq!(run(&[image, "sh", "-c", "exit 4"]).status.code(), Some(4));
    let maps = run(&[image, "cat", "/proc/self/uid_map"]);
    let maps: Vec<Vec<u64>> = String::from_utf8_lossy(&maps.stdout)
        .lines()
        .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(
        maps,
        vec![
            vec![0, user.uid as u64, 1],
            vec![1, user.subid as u64, SUBIDS as u64]
        ]
    );

    // A file written by uid 1000 inside belongs to the mapped id outside.
    let vol = d.join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::set_permissions(&vol, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let out = run(&[
        "--user",
        "1000:1000",
        "-v",
        &format!("{}:/data", vol.display()),
        image,
        "sh",
        "-c",
        "touch /data/f && id -u",
    ]);
    assert_eq!(output_text(&out), "1000\n");
    let meta = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(vol.join("f")).unwrap());
    assert_eq!(
        meta,
        user.subid + 999,
        "uid 1000 inside is subid+999 outside"
    );

    // A detached container: exec with an exit code, stop (its TERM trap's code), rm.
    ok(&[
        &["run", "-d", "--name", "cri-rl-c1"][..],
        &none,
        &[
            image,
            "sh",
            "-c",
            "trap 'exit 7' TERM; while :; do sleep 0.1; done",
        ],
    ]
    .concat());
    let ex = podman(&["exec", "cri-rl-c1", "sh", "-c", "echo exec-ok; exit 3"]);
    assert_eq!(
        (ex.status.code(), output_text(&ex)),
        (Some(3), "exec-ok\n".into())
    );
    ok(&["stop", "-t", "5", "cri-rl-c1"]);
    assert_eq!(
        ok(&["inspect", "--format", "{{.State.ExitCode}}", "cri-rl-c1"]).trim(),
        "7"
    );
    ok(&["rm", "cri-rl-c1"]);
    assert_eq!(ok(&["ps", "-a", "-q"]), "");

    // podman itself drops limits on cgroup v1 for a rootless user, with a warning; berth's
    // own refusal is checked in berth_maps_subordinate_ids_through_newuidmap.
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let out = run(&["--memory", "64m", image, "true"]);
        assert!(
            output_text(&out).contains("ignored on cgroups V1 rootless"),
            "{}",
            output_text(&out)
        );
    }

    drop(cleanup);
    user.stop_pause_process();
    wait_for(
        || user.processes().is_empty(),
        "the user's processes to end",
    );
    argv.report();
    for cmd in ["create", "start", "exec", "kill", "delete"] {
        assert!(argv.summary().contains_key(cmd), "{}", argv.report());
    }
}

/// berth run directly by the user: its own id plus 65536 subordinate ids need newuidmap and
/// newgidmap (setgroups stays allowed); without them the error says so; limits are refused
/// when cgroup v1 gives the user no cgroup.
#[test]
fn berth_maps_subordinate_ids_through_newuidmap() {
    let user = TestUser::create();
    let d = user.dir.path();
    let bundle = d.join("bundle");
    busybox_rootfs(&bundle.join("rootfs"));
    let mut spec = template();
    spec["process"]["terminal"] = json!(false);
    spec["root"]["readonly"] = json!(false);
    spec["linux"]["namespaces"] = json!([
        {"type": "user"}, {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
    ]);
    let map = json!([
        {"containerID": 0, "hostID": user.uid, "size": 1},
        {"containerID": 1, "hostID": user.subid, "size": SUBIDS},
    ]);
    for set in ["bounding", "effective", "permitted"] {
        spec["process"]["capabilities"][set] = json!(["CAP_CHOWN"]);
    }
    spec["linux"]["uidMappings"] = map.clone();
    spec["linux"]["gidMappings"] = map;
    // The user's own container: its ids own the rootfs (root inside is the user).
    let chown = Command::new("chown")
        .args(["-R", &format!("{0}:{0}", user.uid)])
        .arg(&bundle)
        .output()
        .unwrap();
    must("chown", chown, "");
    let write = |spec: &serde_json::Value| {
        std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    };
    let berth = |path: &str, id: &str| -> Output {
        user.cmd_with(Path::new(BERTH), path, &[])
            .args(["run", "-b"])
            .arg(&bundle)
            .arg(id)
            .output()
            .unwrap()
    };

    spec["process"]["args"] = json!([
        "sh", "-c",
        "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; touch /tmp/by-1000; chown 1000:1000 /tmp/by-1000"
    ]);
    write(&spec);
    let out = berth(PATH, &unique("cri-rl"));
    assert!(out.status.success(), "{}", output_text(&out));
    let line = |a: u32, b: u32, c: u32| format!("{a:>10} {b:>10} {c:>10}\n");
    let both = line(0, user.uid, 1) + &line(1, user.subid, SUBIDS);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{both}{both}allow\n"),
        "{}",
        output_text(&out)
    );
    let owner = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(bundle.join("rootfs/tmp/by-1000")).unwrap(),
    );
    assert_eq!(owner, user.subid + 999);

    // Without the helpers in PATH: an error that names them.
    let out = berth("/nonexistent", &unique("cri-rl"));
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("linux.uidMappings") && output_text(&out).contains("newuidmap"),
        "{}",
        output_text(&out)
    );
    // Ids outside the user's /etc/subuid range: newuidmap refuses, and we say so.
    let mut bad = spec.clone();
    bad["linux"]["uidMappings"][1]["hostID"] = json!(user.subid - SUBIDS);
    write(&bad);
    let out = berth(PATH, &unique("cri-rl"));
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("newuidmap"),
        "{}",
        output_text(&out)
    );

    // Limits on cgroup v1, where an unprivileged user gets no cgroup: refused clearly.
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let mut limited = spec.clone();
        limited["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
        write(&limited);
        let out = berth(PATH, &unique("cri-rl"));
        assert!(!out.status.success());
        assert!(
            output_text(&out).contains("cgroup"),
            "{}",
            output_text(&out)
        );
    }
    // Nothing left: the user's state root under XDG_RUNTIME_DIR holds no container.
    let root = user.run().join("berth");
    let left = state_entries(&root);
    assert!(
        left.is_empty(),
        "state left in {}: {left:?}",
        root.display()
    );
    assert!(user.processes().is_empty(), "{:?}", user.processes());
}
