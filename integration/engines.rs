//! The engines lane: containerd (Debian's, started here with private state) drives berth
//! through its runc shim (`ctr --runc-binary berth`): run, exit codes, detached tasks, exec,
//! pause/resume, ps, kill and delete, on an image built here with umoci.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::*;

/// A containerd with its own root, state and socket; stopped and cleaned up on drop.
struct Containerd {
    dir: TempDir,
    child: Child,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = TempDir::new("berth-ctd");
        let d = dir.path();
        let config = format!(
            "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n[grpc]\n  address = \"{0}/ctd.sock\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\"]\n  disable_cgroup = true\n",
            d.display()
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("containerd.log")).unwrap())
            .spawn()
            .expect("containerd is needed: apt-get install -y containerd");
        let c = Containerd { dir, child };
        wait_for_secs(20, || c.ctr(&["version"]).status.success(), "containerd");
        c
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.dir.path().join("ctd.sock"))
            .args(["--namespace", "berth-test"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        must(&format!("ctr {args:?}"), self.ctr(args), &self.log())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in ["c-run", "c-code", "c-bg"] {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
            let _ = self.ctr(&["task", "delete", "-f", id]);
            let _ = self.ctr(&["container", "delete", id]);
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// A one-layer busybox image as an OCI archive (tag `smoke`), built with umoci.
fn build_image(dir: &Path) -> PathBuf {
    oci_image(dir, "smoke", &["sh", "-c", "echo hello-from-smoke"])
}

#[test]
fn containerd_drives_berth() {
    let work = TempDir::new("berth-engines");
    let tar = build_image(work.path());
    let ctd = Containerd::start();
    ctd.ok(&[
        "images",
        "import",
        "--base-name",
        "localhost/smoke",
        "--digests",
        tar.to_str().unwrap(),
    ]);
    let image = "localhost/smoke:smoke";
    let argv = ArgvCapture::new("containerd-ctr", work.path());
    let rt = ["--runc-binary", argv.path.to_str().unwrap()];

    // Foreground run: the image's command, its output and a clean exit.
    let out = ctd.ok(&["run", "--rm", rt[0], rt[1], image, "c-run"]);
    assert_eq!(out, "hello-from-smoke\n");
    // The exit code comes back through the shim.
    let out = ctd.ctr(&[
        "run", "--rm", rt[0], rt[1], image, "c-code", "sh", "-c", "exit 7",
    ]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A detached task: exec, pause/resume, ps, kill, delete.
    ctd.ok(&[
        "run",
        "-d",
        rt[0],
        rt[1],
        image,
        "c-bg",
        "sh",
        "-c",
        "trap 'exit 7' TERM; while :; do sleep 0.1; done",
    ]);
    let tasks = ctd.ok(&["task", "ls"]);
    assert!(
        tasks.contains("c-bg") && tasks.contains("RUNNING"),
        "{tasks}"
    );
    let ex = ctd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "c-bg",
        "sh",
        "-c",
        "echo exec-ok; exit 3",
    ]);
    assert_eq!(
        ex.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&ex.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ex.stdout), "exec-ok\n");
    ctd.ok(&["task", "pause", "c-bg"]);
    assert!(ctd.ok(&["task", "ls"]).contains("PAUSED"));
    ctd.ok(&["task", "resume", "c-bg"]);
    let ps = ctd.ok(&["task", "ps", "c-bg"]);
    assert!(ps.lines().count() >= 2, "{ps}");
    ctd.ok(&["task", "kill", "c-bg"]);
    wait_for(
        || ctd.ok(&["task", "ls"]).contains("STOPPED"),
        "the task to stop on SIGTERM",
    );
    ctd.ok(&["task", "delete", "c-bg"]);
    ctd.ok(&["container", "delete", "c-bg"]);
    assert!(!ctd.ok(&["task", "ls"]).contains("c-bg"));
    argv.report();
}

/// podman (Debian's, private storage, `--runtime berth`) through conmon.
#[test]
fn podman_drives_berth() {
    let work = TempDir::new("berth-podman");
    let tar = build_image(work.path());
    let d = work.path();
    // Podman asks for NOFILE and NPROC of 1048576; where the hard limits are lower and the
    // bounding set lacks CAP_SYS_RESOURCE (this host), runc fails the same way, so the
    // defaults are capped to the hard limits the runtime inherits, as the engine captures
    // did (podman itself runs with NPROC capped at 32768).
    use nix::sys::resource::{getrlimit, Resource};
    let (_, nofile) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let nproc = getrlimit(Resource::RLIMIT_NPROC).unwrap().1.min(32768);
    let argv = ArgvCapture::new("podman", d);
    let conf = d.join("containers.conf");
    std::fs::write(
        &conf,
        format!(
            "[containers]\nnetns = \"none\"\n\
             default_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"
        ),
    )
    .unwrap();
    let podman = |args: &[&str]| -> Output {
        Command::new("podman")
            .env("CONTAINERS_CONF", &conf)
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "vfs", "--runtime"])
            .arg(&argv.path)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("podman is needed: apt-get install -y podman")
    };
    let ok = |args: &[&str]| must(&format!("podman {args:?}"), podman(args), "");
    struct Cleanup<'a>(&'a dyn Fn(&[&str]) -> Output);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = (self.0)(&["rm", "-f", "-a"]);
        }
    }
    let _cleanup = Cleanup(&podman);
    let id = ok(&["pull", &format!("oci-archive:{}", tar.display())]);
    ok(&["tag", id.trim(), "localhost/smoke:latest"]);

    docker_cli_scenario("podman", &podman, &[]);
    argv.report();
}

/// dockerd (Debian's 20.10, private data and exec roots, no bridge or iptables) with berth
/// added as a runtime (`--add-runtime berth=…`, `docker run --runtime berth`).
#[test]
fn docker_drives_berth() {
    let work = TempDir::new("berth-docker");
    let d = work.path();
    let layout_tar = build_image(d);
    let docker_tar = d.join("smoke-docker.tar");
    let out = Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("oci-archive:{}", layout_tar.display()))
        .arg(format!(
            "docker-archive:{}:localhost/smoke:latest",
            docker_tar.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let argv = ArgvCapture::new("dockerd", d);
    let sock = format!("unix://{}/docker.sock", d.display());
    let mut daemon = Command::new("dockerd")
        .arg("--data-root")
        .arg(d.join("data"))
        .arg("--exec-root")
        .arg(d.join("exec"))
        .arg("--pidfile")
        .arg(d.join("docker.pid"))
        .args([
            "-H",
            &sock,
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
        ])
        .args([
            "--ip-masq=false",
            "--exec-opt",
            "native.cgroupdriver=cgroupfs",
        ])
        .arg(format!("--add-runtime=berth={}", argv.path.display()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("dockerd.log")).unwrap())
        .spawn()
        .expect("dockerd is needed: apt-get install -y docker.io");
    struct Daemon<'a>(&'a mut Child, String);
    impl Drop for Daemon<'_> {
        fn drop(&mut self) {
            let _ = Command::new("/usr/bin/docker")
                .args(["-H", &self.1, "rm", "-f", "docker-c1", "dd2"])
                .output();
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = self.0.wait();
        }
    }
    let _daemon = Daemon(&mut daemon, sock.clone());
    // Debian's client, which speaks this daemon's API version.
    let docker = |args: &[&str]| -> Output {
        Command::new("/usr/bin/docker")
            .args(["-H", &sock])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| -> String {
        let log = std::fs::read_to_string(d.join("dockerd.log")).unwrap_or_default();
        must(&format!("docker {args:?}"), docker(args), &log)
    };
    wait_for_secs(30, || docker(&["version"]).status.success(), "dockerd");
    ok(&["load", "-i", docker_tar.to_str().unwrap()]);
    // `docker save` writes its own docker-archive (layer tars by moby's archive package):
    // berth unpacks it to the same tree, times and all, as the image it was loaded from.
    let saved = d.join("saved.tar");
    ok(&[
        "save",
        "-o",
        saved.to_str().unwrap(),
        "localhost/smoke:latest",
    ]);
    let listing = |src: &Path, name: &str| -> String {
        let b = d.join(name);
        let out = Command::new(BERTH)
            .args(["unpack", src.to_str().unwrap(), b.to_str().unwrap()])
            .output()
            .unwrap();
        let out = must(&format!("berth unpack {}", src.display()), out, "");
        assert!(out.is_empty() || out.contains("unpacked"), "{out}");
        let l = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cd {}/rootfs && find . -printf '%p %y %m %U %G %l %s %T@\\n' | sort",
                b.display()
            ))
            .output()
            .unwrap();
        String::from_utf8(l.stdout).unwrap()
    };
    let want = listing(&layout_tar, "from-layout");
    assert!(want.contains("./bin/busybox"), "{want}");
    assert_eq!(
        listing(&saved, "from-docker-save"),
        want,
        "docker save vs the OCI archive"
    );
    let runtime = ["--runtime", "berth", "--network", "none"];
    docker_cli_scenario("docker", &docker, &runtime);
    // docker's limits config: dropped caps, read-only root, memory and pids limits.
    let limited = ok(&[
        &["run", "--rm"][..],
        &runtime,
        &[
            "--memory",
            "64m",
            "--pids-limit",
            "50",
            "--cpu-shares",
            "512",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "NET_BIND_SERVICE",
            "--read-only",
            "localhost/smoke",
            "sh",
            "-c",
            "grep CapEff /proc/self/status; touch /x 2>/dev/null || echo read-only",
        ],
    ]
    .concat());
    assert_eq!(limited, "CapEff:\t0000000000000400\nread-only\n");
    // `docker update` sends every field, zeros meaning unset.
    ok(&[
        &["run", "-d", "--name", "dd2"][..],
        &runtime,
        &["localhost/smoke", "sleep", "100"],
    ]
    .concat());
    ok(&["update", "--memory", "64m", "--memory-swap", "128m", "dd2"]);
    let pid: i64 = ok(&["inspect", "-f", "{{.State.Pid}}", "dd2"])
        .trim()
        .parse()
        .unwrap();
    let mem = cgroup_file(pid, "memory", "memory.limit_in_bytes");
    let mem = if mem.exists() {
        mem
    } else {
        cgroup_file(pid, "memory", "memory.max")
    };
    assert_eq!(std::fs::read_to_string(mem).unwrap().trim(), "67108864");
    ok(&["rm", "-f", "dd2"]);
    argv.report();
}

/// What podman and docker share (their CLIs agree): the image's command, exit codes, then a
/// detached container through exec, pause/unpause, top, stop (its TERM trap's code) and rm.
fn docker_cli_scenario(name: &str, cli: &dyn Fn(&[&str]) -> Output, run_flags: &[&str]) {
    let ok = |args: &[&str]| must(&format!("{name} {args:?}"), cli(args), "");
    fn run<'a>(run_flags: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [&["run"][..], run_flags, extra].concat()
    }
    assert_eq!(
        ok(&run(run_flags, &["--rm", "localhost/smoke"])),
        "hello-from-smoke\n"
    );
    let out = cli(&run(
        run_flags,
        &["--rm", "localhost/smoke", "sh", "-c", "exit 4"],
    ));
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let c = format!("{name}-c1");
    ok(&run(
        run_flags,
        &[
            "-d",
            "--name",
            &c,
            "localhost/smoke",
            "sh",
            "-c",
            "trap 'exit 7' TERM; while :; do sleep 0.1; done",
        ],
    ));
    let ex = cli(&["exec", &c, "sh", "-c", "echo exec-ok; exit 3"]);
    assert_eq!(
        ex.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&ex.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ex.stdout), "exec-ok\n");
    ok(&["pause", &c]);
    assert_eq!(
        ok(&["inspect", "--format", "{{.State.Status}}", &c]).trim(),
        "paused"
    );
    ok(&["unpause", &c]);
    assert!(ok(&["top", &c]).contains("sleep"));
    ok(&["stop", "-t", "5", &c]);
    assert_eq!(
        ok(&["inspect", "--format", "{{.State.ExitCode}}", &c]).trim(),
        "7"
    );
    ok(&["rm", &c]);
}
