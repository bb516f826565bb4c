//! `berth checkpoint` and `berth restore` through criu. criu must work on the kernel: on
//! this project's hosts it does not (Debian's criu 3.17 stops on the 6.18 vDSO), so these
//! tests print `skipped: criu ...` there and run for real in the VM lane
//! (integration/vm/run.sh), which boots Debian's 6.1 kernel and fails if they skip.
//!
//! The containers' stdio are pipes, as containerd's shim passes them: a restore hands new
//! pipes in their place, and the tests talk to the restored process through them.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

use common::*;
use serde_json::json;

/// Whether criu works here (`criu check`), with the reason when it does not.
fn criu_problem() -> Option<String> {
    static PROBLEM: OnceLock<Option<String>> = OnceLock::new();
    PROBLEM
        .get_or_init(|| {
            let out = match Command::new("criu").arg("check").output() {
                Ok(o) => o,
                Err(e) => return Some(format!("cannot run criu: {e}")),
            };
            if out.status.success() {
                return None;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.lines().rfind(|l| l.contains("Error")).unwrap_or("");
            Some(format!("criu check fails on this kernel: {last}"))
        })
        .clone()
}

macro_rules! need_criu {
    () => {
        if let Some(why) = criu_problem() {
            skip!("{why}");
        }
    };
}

/// A container's stdio as the test holds it.
struct Pipes {
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    _stderr: ChildStderr,
}

impl Pipes {
    /// Send a line to the counting loop and read its answer.
    fn ask(&mut self) -> String {
        self.send("next");
        self.line()
    }

    /// Write a line to the container's stdin.
    fn send(&mut self, line: &str) {
        writeln!(self.stdin.as_mut().expect("stdin is a pipe"), "{line}").unwrap();
    }

    /// The container's next line of output.
    fn line(&mut self) -> String {
        // Bounded: a restored process that lost its pipes must fail the test, not hang it.
        if self.stdout.buffer().is_empty() {
            use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
            use std::os::fd::AsFd;
            let mut fds = [PollFd::new(
                self.stdout.get_ref().as_fd(),
                PollFlags::POLLIN,
            )];
            let n = poll(&mut fds, PollTimeout::from(60_000u16)).unwrap();
            assert!(n > 0, "no answer from the container in 60 s");
        }
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_string()
    }
}

/// Run berth with fresh pipes as stdio; the container init (or the restored tree) keeps
/// them. Panics with berth's stderr if it fails.
fn berth_piped(root: &Root, args: &[&str]) -> Pipes {
    berth_with_stdin(root, args, Stdio::piped())
}

/// As [`berth_piped`], with `stdin` as the container's stdin.
fn berth_with_stdin(root: &Root, args: &[&str], stdin: Stdio) -> Pipes {
    let mut child = root
        .cmd()
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // wait() would close our end of stdin: take it first.
    let stdin = child.stdin.take();
    let status = child.wait().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    if !status.success() {
        let mut err = String::new();
        stderr.read_to_string(&mut err).unwrap();
        show_criu_logs(args);
        panic!("berth {args:?} failed ({status}): {err}");
    }
    Pipes {
        stdin,
        stdout: BufReader::new(child.stdout.take().unwrap()),
        _stderr: stderr,
    }
}

/// A loop that counts the lines it reads, answering "COUNT PID-OF-ITS-SLEEP"; fd 5 is open
/// on /bin/busybox.
const COUNTER: &str =
    "exec 5</bin/busybox; sleep 100000 & i=0; while read x; do i=$((i+1)); echo \"$i $!\"; done";

/// A namespace held by `unshare -FLAG sleep`, for containers to join by path.
struct Holder {
    child: std::process::Child,
    kind: &'static str,
}

impl Holder {
    /// `flag` is unshare's (`-u`, `-n`), `kind` the /proc/PID/ns name (`uts`, `net`).
    fn new(flag: &str, kind: &'static str) -> Holder {
        let child = Command::new("unshare")
            .args([flag, "sleep", "100000"])
            .spawn()
            .unwrap();
        let me = std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
        let h = Holder { child, kind };
        wait_for(
            || std::fs::read_link(h.path()).is_ok_and(|l| l != me),
            &format!("unshare {flag} to enter its {kind} namespace"),
        );
        h
    }
    fn path(&self) -> String {
        format!("/proc/{}/ns/{}", self.child.id(), self.kind)
    }
    fn inode(&self) -> String {
        std::fs::read_link(self.path())
            .unwrap()
            .display()
            .to_string()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The UTS namespace the counting containers join by path (criu's join_ns), so that
/// restoring into a namespace that exists is covered by every test.
type Uts = Holder;

fn uts() -> Uts {
    Holder::new("-u", "uts")
}

/// The host's network namespace (criu 3.17.1 fails on network namespaces in the initramfs
/// lane; the systemd lane runs the tests that have one), and `uts` joined by path.
fn namespaces(s: &mut serde_json::Value, uts: &Uts) {
    let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "network" && n["type"] != "uts");
    ns.push(json!({"type": "uts", "path": uts.path()}));
    // A hostname needs a uts namespace of the container's own.
    s.as_object_mut().unwrap().remove("hostname");
}

fn counter_bundle(edit: impl FnOnce(&mut serde_json::Value)) -> (Bundle, Uts) {
    let uts = uts();
    let b = Bundle::with(&["sh", "-c", COUNTER], |s| {
        s["process"]["terminal"] = json!(false);
        namespaces(s, &uts);
        edit(s)
    });
    (b, uts)
}

/// Create and start a counting container; returns its pipes after the first answer.
fn start_counter(root: &Root, b: &Bundle, id: &str) -> (Pipes, String) {
    let mut p = berth_piped(root, &["create", "-b", b.path().to_str().unwrap(), id]);
    root.ok(&["start", id]);
    let first = p.ask();
    let sleep_pid = first.split(' ').nth(1).unwrap().to_string();
    assert_eq!(first, format!("1 {sleep_pid}"));
    (p, sleep_pid)
}

fn restore_piped(root: &Root, b: &Bundle, img: &Path, id: &str, extra: &[&str]) -> Pipes {
    let mut args = vec![
        "restore",
        "-d",
        "-b",
        b.path().to_str().unwrap(),
        "--image-path",
        img.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(id);
    berth_piped(root, &args)
}

/// Print criu's logs from the image path in `args` (a failing test shows its stdout).
fn show_criu_logs(args: &[&str]) {
    let Some(i) = args.iter().position(|a| *a == "--image-path") else {
        return;
    };
    for log in ["dump.log", "pre-dump.log", "restore.log"] {
        let p = Path::new(args[i + 1]).join(log);
        if let Ok(text) = std::fs::read_to_string(&p) {
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(
                if std::env::var_os("CRIU_LOG_ALL").is_some() {
                    100000
                } else {
                    60
                },
            )..];
            println!(
                "---- {} (last {} lines)\n{}",
                p.display(),
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

/// `berth checkpoint ARGS`, showing criu's log when it fails.
fn checkpoint(root: &Root, args: &[&str]) {
    let mut all = vec!["checkpoint"];
    all.extend_from_slice(args);
    let out = root.run(&all);
    if !out.status.success() {
        show_criu_logs(&all);
        panic!(
            "berth {all:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Checkpoint `id` with `dump_flags` into a new image directory, let its old pipes go and
/// restore it with `restore_flags`: the restored container's pipes, and the image directory.
fn round_trip(
    root: &Root,
    b: &Bundle,
    id: &str,
    p: Pipes,
    dump_flags: &[&str],
    restore_flags: &[&str],
) -> (Pipes, TempDir) {
    let img = TempDir::new("criu-img");
    let mut args = dump_flags.to_vec();
    args.extend(["--image-path", img.path().to_str().unwrap(), id]);
    checkpoint(root, &args);
    drop(p);
    let p = restore_piped(root, b, img.path(), id, restore_flags);
    (p, img)
}

fn exec_out(root: &Root, id: &str, cmd: &[&str]) -> String {
    let mut args = vec!["exec", id];
    args.extend_from_slice(cmd);
    root.ok(&args).trim().to_string()
}

fn status(root: &Root, id: &str) -> String {
    root.state(id)["status"].as_str().unwrap().to_string()
}

fn gone(root: &Root, id: &str) -> bool {
    !root.run(&["state", id]).status.success()
}

/// The loop goes on counting from where it was, with the same pids and open files.
#[test]
fn criu_counter_goes_on_after_restore() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-count");
    let (b, net) = counter_bundle(|_| {});
    let (mut p, sleep_pid) = start_counter(&root, &b, &id);
    assert_eq!(p.ask(), format!("2 {sleep_pid}"));
    let fd5 = exec_out(&root, &id, &["readlink", "/proc/1/fd/5"]);
    assert_eq!(fd5, "/bin/busybox");
    let img = TempDir::new("criu-img");
    checkpoint(&root, &["--image-path", img.path().to_str().unwrap(), &id]);
    assert!(
        gone(&root, &id),
        "a checkpoint without --leave-running removes the container"
    );
    assert!(img.path().join("inventory.img").exists());
    assert!(
        img.path().join("dump.log").exists(),
        "criu's log is in the work path"
    );
    drop(p);

    let mut p = restore_piped(&root, &b, img.path(), &id, &[]);
    assert_eq!(p.ask(), format!("3 {sleep_pid}"));
    assert_eq!(status(&root, &id), "running");
    assert_eq!(
        exec_out(&root, &id, &["readlink", "/proc/1/ns/uts"]),
        net.inode(),
        "back in the uts namespace it joined by path"
    );
    assert_eq!(exec_out(&root, &id, &["readlink", "/proc/1/fd/5"]), fd5);
    let ps = exec_out(&root, &id, &["ps", "-o", "pid,args"]);
    assert!(
        ps.lines()
            .any(|l| l.trim().starts_with(&format!("{sleep_pid} ")) && l.contains("sleep")),
        "the sleep keeps its pid:\n{ps}"
    );
    root.ok(&["delete", "--force", &id]);
    assert!(cgroups_named(&id).is_empty());
}

/// A restored container is an ordinary one: state, exec, pause/resume, kill, delete.
#[test]
fn criu_restored_container_takes_every_command() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-cmds");
    let (b, _net) = counter_bundle(|_| {});
    let (p, _) = start_counter(&root, &b, &id);
    let dir = TempDir::new("criu-pid");
    let pid_file = dir.path().join("restored.pid");
    let (mut p, _img) = round_trip(
        &root,
        &b,
        &id,
        p,
        &[],
        &["--pid-file", pid_file.to_str().unwrap()],
    );
    let st = root.state(&id);
    assert_eq!(st["status"], "running");
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    assert_eq!(
        exec_out(&root, &id, &["echo", "in-restored"]),
        "in-restored"
    );
    root.ok(&["pause", &id]);
    assert_eq!(status(&root, &id), "paused");
    root.ok(&["resume", &id]);
    assert_eq!(status(&root, &id), "running");
    assert!(p.ask().starts_with("2 "));
    let ps = root.ok(&["ps", "-f", "json", &id]);
    assert!(ps.contains(&pid.to_string()), "{ps}");
    root.ok(&["kill", &id, "KILL"]);
    wait_for(
        || status(&root, &id) == "stopped",
        "the restored init to die",
    );
    root.ok(&["delete", &id]);
    assert!(gone(&root, &id));
    assert!(cgroups_named(&id).is_empty());
}

#[test]
fn criu_leave_running_keeps_the_original() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-leave");
    let (b, _net) = counter_bundle(|_| {});
    let (mut p, sleep_pid) = start_counter(&root, &b, &id);
    let img = TempDir::new("criu-img");
    checkpoint(
        &root,
        &[
            "--leave-running",
            "--image-path",
            img.path().to_str().unwrap(),
            &id,
        ],
    );
    assert_eq!(status(&root, &id), "running");
    assert_eq!(p.ask(), format!("2 {sleep_pid}"));
    assert!(img.path().join("inventory.img").exists());
    root.ok(&["delete", "--force", &id]);
}

#[test]
fn criu_pre_dump_then_dump_with_parent() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-pre");
    let (b, _net) = counter_bundle(|_| {});
    let (mut p, sleep_pid) = start_counter(&root, &b, &id);
    let imgs = TempDir::new("criu-img");
    let (pre, last) = (imgs.path().join("pre"), imgs.path().join("last"));
    checkpoint(
        &root,
        &["--pre-dump", "--image-path", pre.to_str().unwrap(), &id],
    );
    assert_eq!(
        status(&root, &id),
        "running",
        "a pre-dump leaves it running"
    );
    assert_eq!(p.ask(), format!("2 {sleep_pid}"));
    checkpoint(
        &root,
        &[
            "--image-path",
            last.to_str().unwrap(),
            "--parent-path",
            "../pre",
            &id,
        ],
    );
    assert!(gone(&root, &id));
    let parent = std::fs::read_link(last.join("parent")).unwrap();
    assert_eq!(parent, Path::new("../pre"));
    drop(p);
    let mut p = restore_piped(&root, &b, &last, &id, &[]);
    assert_eq!(p.ask(), format!("3 {sleep_pid}"));
    root.ok(&["delete", "--force", &id]);
}

/// `--manage-cgroups-mode ignore` with a new cgroupsPath: the restored tree lands in the new
/// cgroup, and nothing of the old one is left.
#[test]
fn criu_restore_into_another_cgroup() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-cg");
    let (old, new) = (unique("criu-cga"), unique("criu-cgb"));
    let (b, _net) = counter_bundle(|s| s["linux"]["cgroupsPath"] = json!(format!("/{old}")));
    let (p, _) = start_counter(&root, &b, &id);
    let img = TempDir::new("criu-img");
    checkpoint(&root, &["--image-path", img.path().to_str().unwrap(), &id]);
    assert!(
        cgroups_named(&old).is_empty(),
        "checkpoint removed the old cgroup"
    );
    drop(p);
    let mut cfg = b.config();
    cfg["linux"]["cgroupsPath"] = json!(format!("/{new}"));
    b.set_config(&cfg);
    let mut p = restore_piped(
        &root,
        &b,
        img.path(),
        &id,
        &["--manage-cgroups-mode", "ignore"],
    );
    assert!(p.ask().starts_with("2 "));
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains(&format!("/{new}")), "{cg}");
    assert!(cgroups_named(&old).is_empty(), "old cgroup recreated");
    root.ok(&["delete", "--force", &id]);
    assert!(cgroups_named(&new).is_empty());
}

/// Bind mounts come back, including one whose destination is a symlink in the rootfs.
#[test]
fn criu_bind_mounts_come_back() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-bind");
    let (d1, d2) = (TempDir::new("criu-src1"), TempDir::new("criu-src2"));
    std::fs::write(d1.path().join("a"), "from-d1").unwrap();
    std::fs::write(d2.path().join("b"), "from-d2").unwrap();
    let (s1, s2) = (
        d1.path().to_str().unwrap().to_string(),
        d2.path().to_str().unwrap().to_string(),
    );
    let (b, _net) = counter_bundle(|s| {
        let mounts = s["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/data", "type": "bind", "source": s1, "options": ["rbind", "rw"]}));
        mounts.push(json!({"destination": "/lnk", "type": "bind", "source": s2, "options": ["rbind", "rw"]}));
    });
    std::fs::create_dir(b.path().join("rootfs/real")).unwrap();
    std::os::unix::fs::symlink("/real", b.path().join("rootfs/lnk")).unwrap();
    let (p, _) = start_counter(&root, &b, &id);
    assert_eq!(exec_out(&root, &id, &["cat", "/real/b"]), "from-d2");
    let (mut p, _img) = round_trip(&root, &b, &id, p, &[], &[]);
    assert!(p.ask().starts_with("2 "));
    assert_eq!(exec_out(&root, &id, &["cat", "/data/a"]), "from-d1");
    assert_eq!(exec_out(&root, &id, &["cat", "/real/b"]), "from-d2");
    exec_out(&root, &id, &["sh", "-c", "echo written > /data/c"]);
    assert_eq!(
        std::fs::read_to_string(d1.path().join("c")).unwrap(),
        "written\n"
    );
    root.ok(&["delete", "--force", &id]);
    assert_eq!(mounts_mentioning(&s1), 0, "mounts left");
}

#[test]
fn criu_new_cgroup_namespace() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-cgns");
    let (b, _net) = counter_bundle(|s| {
        // The template lists a cgroup namespace only on a cgroup2 host (as runc's).
        let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
        if !ns.iter().any(|n| n["type"] == "cgroup") {
            ns.push(json!({"type": "cgroup"}));
        }
    });
    let (p, _) = start_counter(&root, &b, &id);
    assert_eq!(exec_out(&root, &id, &["cat", "/proc/1/cgroup"]), "0::/");
    let (mut p, _img) = round_trip(&root, &b, &id, p, &[], &[]);
    assert!(p.ask().starts_with("2 "));
    assert_eq!(exec_out(&root, &id, &["cat", "/proc/1/cgroup"]), "0::/");
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    let host_view = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(host_view.trim().ends_with(&id), "{host_view}");
    root.ok(&["delete", "--force", &id]);
}

/// A tty container: the restored pty master reaches the new console socket.
#[test]
fn criu_tty_restored_through_console_socket() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-tty");
    let dir = TempDir::new("criu-sock");
    let uts = uts();
    let b = Bundle::with(
        &["sh", "-c", "while read x; do echo \"got-$x\"; done"],
        |s| {
            s["process"]["terminal"] = json!(true);
            namespaces(s, &uts);
        },
    );
    let console = |name: &str| {
        let path = dir.path().join(name);
        let listener = UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            recv_fd(conn.as_raw_fd())
        });
        (path, t)
    };
    let (sock, t) = console("c1.sock");
    root.ok(&[
        "create",
        "-b",
        b.path().to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    let master = t.join().unwrap();
    root.ok(&["start", &id]);
    assert!(talk(&master, "one").contains("got-one"));
    let img = TempDir::new("criu-img");
    checkpoint(&root, &["--image-path", img.path().to_str().unwrap(), &id]);
    drop(master);
    let (sock, t) = console("c2.sock");
    // Its terminal is its own pty, which goes to the console socket: --shell-job (the
    // caller's terminal in its place) is refused for it, before anything is made.
    let err = root.fails(&[
        "restore",
        "-d",
        "--shell-job",
        "-b",
        b.path().to_str().unwrap(),
        "--image-path",
        img.path().to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    assert!(
        err.contains("--shell-job is for a container on its caller's terminal"),
        "{err}"
    );
    assert_nothing_left(&root, &id, &b);
    ok_or_logs(
        &root,
        &[
            "restore",
            "-d",
            "-b",
            b.path().to_str().unwrap(),
            "--image-path",
            img.path().to_str().unwrap(),
            "--console-socket",
            sock.to_str().unwrap(),
            &id,
        ],
    );
    let master = t.join().unwrap();
    assert!(talk(&master, "two").contains("got-two"));
    root.ok(&["delete", "--force", &id]);
}

fn ok_or_logs(root: &Root, args: &[&str]) {
    let out = root.run(args);
    if !out.status.success() {
        show_criu_logs(args);
        panic!(
            "berth {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Write a line to a pty master and read until the answer shows up.
fn talk(master: &OwnedFd, line: &str) -> String {
    let mut f = std::fs::File::from(master.try_clone().unwrap());
    writeln!(f, "{line}").unwrap();
    let mut out = String::new();
    let mut buf = [0u8; 256];
    while !out.contains(&format!("got-{line}")) {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    out
}

/// Bad inputs that never reach criu (these run on every host): clear errors, and nothing
/// left behind.
#[test]
fn criu_bad_flags_and_states_are_refused() {
    let root = Root::new();
    let (b, _uts) = counter_bundle(|_| {});
    let bp = b.path().to_str().unwrap();

    // A missing image directory.
    let id = unique("criu-noimg");
    let err = root.fails(&[
        "restore",
        "-d",
        "-b",
        bp,
        "--image-path",
        "/nonexistent/img",
        &id,
    ]);
    assert!(err.contains("--image-path /nonexistent/img"), "{err}");
    assert_nothing_left(&root, &id, &b);

    // An image directory without runc's descriptors.json.
    let img = TempDir::new("criu-img");
    let err = root.fails(&[
        "restore",
        "-d",
        "-b",
        bp,
        "--image-path",
        img.path().to_str().unwrap(),
        &id,
    ]);
    assert!(err.contains("descriptors.json"), "{err}");
    assert_nothing_left(&root, &id, &b);

    // A stopped container.
    let id = unique("criu-stopped");
    let stopped = Bundle::with(&["true"], |s| s["process"]["terminal"] = json!(false));
    root.ok(&["run", "-d", "-b", stopped.path().to_str().unwrap(), &id]);
    wait_for(|| status(&root, &id) == "stopped", "the container to stop");
    let target = img.path().join("ck");
    let err = root.fails(&["checkpoint", "--image-path", target.to_str().unwrap(), &id]);
    assert!(err.contains("it is stopped"), "{err}");
    assert!(
        !target.exists(),
        "no image directory for a refused checkpoint"
    );
    assert_eq!(status(&root, &id), "stopped");
    root.ok(&["delete", &id]);

    // Flags criu does not have, and flags without their partner.
    let err = root.fails(&["checkpoint", "--manage-cgroups-mode", "bogus", "x"]);
    assert!(err.contains("bogus"), "{err}");
    let err = root.fails(&["checkpoint", "--status-fd", "1", "x"]);
    assert!(err.contains("--lazy-pages"), "{err}");
    let err = root.fails(&["checkpoint", "--empty-ns", "pid", "x"]);
    assert!(
        err.contains("only leave the network namespace empty"),
        "{err}"
    );
    // network is accepted (and always in the set: criu_own_network_namespace shows it),
    // so this fails only on the missing container.
    let err = root.fails(&["checkpoint", "--empty-ns", "network", "criu-none"]);
    assert!(
        !err.contains("--empty-ns") && err.contains("criu-none"),
        "{err}"
    );
    let err = root.fails(&["checkpoint", "--page-server", "nowhere", "x"]);
    assert!(err.contains("ADDRESS:PORT"), "{err}");
    let err = root.fails(&["restore", "--no-pivot", "-b", bp, "x"]);
    assert!(err.contains("--no-pivot"), "{err}");
    // LSM flags: berth applies no SELinux label, so SELinux's mount context is refused
    // (naming the flag) wherever it runs; a profile must be criu's TYPE:NAME, and AppArmor
    // must run here for an apparmor: one.
    let err = root.fails(&[
        "restore",
        "--lsm-mount-context",
        "system_u:object_r:container_file_t:s0",
        "-b",
        bp,
        "x",
    ]);
    assert!(
        err.contains("--lsm-mount-context \"system_u") && err.contains("SELinux"),
        "{err}"
    );
    let err = root.fails(&["restore", "--manage-cgroups-mode", "strict", "-b", bp, "x"]);
    assert!(
        err.contains("--manage-cgroups-mode strict is not supported"),
        "{err}"
    );
    let err = root.fails(&["restore", "--lsm-profile", "unconfined", "-b", bp, "x"]);
    assert!(err.contains("expected apparmor:PROFILE"), "{err}");
    let err = root.fails(&["restore", "--lsm-profile", "selinux:s0", "-b", bp, "x"]);
    assert!(
        err.contains("--lsm-profile \"selinux:s0\": SELinux"),
        "{err}"
    );
    if !apparmor_host() {
        let err = root.fails(&["restore", "--lsm-profile", "apparmor:p", "-b", bp, "x"]);
        assert!(
            err.contains("--lsm-profile \"apparmor:p\": AppArmor is not enabled"),
            "{err}"
        );
    }
    assert!(root.is_empty());
}

/// `--lsm-profile apparmor:NAME`: a container confined by one profile
/// (process.apparmorProfile) is restored under another, init and sleep alike, and goes on
/// counting; without the flag it comes back under its own. criu replaces only a profile the
/// dumped processes had, so on an unconfined container the flag is refused, naming it.
#[test]
fn criu_lsm_profile_confines_the_restored_tree() {
    need_criu!();
    if !apparmor_host() {
        skip!("AppArmor is not enabled here (the systemd lane has it)");
    }
    let (dumped, restored) = ("criu-aa-dumped", "criu-aa-restored");
    load_deny_profile(dumped);
    load_deny_profile(restored);
    let root = Root::new();
    let id = unique("criu-aa");
    let (b, _uts) = counter_bundle(|s| s["process"]["apparmorProfile"] = json!(dumped));
    let (mut p, sleep_pid) = start_counter(&root, &b, &id);
    assert_eq!(p.ask(), format!("2 {sleep_pid}"));
    // The init and its sleep, as the host sees them, and their profiles.
    let profiles = |root: &Root| -> Vec<String> {
        let pid = root.state(&id)["pid"].as_i64().unwrap();
        let sleep = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
        [pid.to_string(), sleep.trim().to_string()]
            .iter()
            .map(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/attr/current"))
                    .unwrap()
                    .trim()
                    .to_string()
            })
            .collect()
    };
    let under = |name: &str| vec![format!("{name} (enforce)"); 2];
    assert_eq!(profiles(&root), under(dumped));
    let (mut p, _img) = round_trip(&root, &b, &id, p, &[], &[]);
    assert_eq!(p.ask(), format!("3 {sleep_pid}"));
    assert_eq!(
        profiles(&root),
        under(dumped),
        "restored under its own profile"
    );
    let lsm = format!("apparmor:{restored}");
    let (mut p, _img) = round_trip(&root, &b, &id, p, &[], &["--lsm-profile", &lsm]);
    assert_eq!(p.ask(), format!("4 {sleep_pid}"));
    assert_eq!(
        profiles(&root),
        under(restored),
        "restored under --lsm-profile's"
    );
    root.ok(&["delete", "--force", &id]);

    // An unconfined container: nothing for criu to replace.
    let id = unique("criu-aa");
    let (b, _uts) = counter_bundle(|_| {});
    let (p, _) = start_counter(&root, &b, &id);
    let img = TempDir::new("criu-img");
    let ip = img.path().to_str().unwrap();
    checkpoint(&root, &["--image-path", ip, &id]);
    drop(p);
    let bp = b.path().to_str().unwrap();
    let err = root.fails(&[
        "restore",
        "-d",
        "--lsm-profile",
        &lsm,
        "-b",
        bp,
        "--image-path",
        ip,
        &id,
    ]);
    assert!(
        err.contains("--lsm-profile") && err.contains("no process.apparmorProfile"),
        "{err}"
    );
    assert_nothing_left(&root, &id, &b);
}

/// `features` names checkpoint exactly where criu works.
#[test]
fn criu_features_list_checkpoint_only_where_criu_works() {
    let root = Root::new();
    let doc: serde_json::Value = serde_json::from_str(&root.ok(&["features"])).unwrap();
    let listed = doc["annotations"]["org.opencontainers.berth.checkpoint.enabled"] == "true";
    assert_eq!(listed, criu_problem().is_none(), "{:?}", criu_problem());
}

/// An image criu cannot restore from: criu's own error line, and nothing left behind.
#[test]
fn criu_errors_are_criu_s_last_error_line() {
    need_criu!();
    let root = Root::new();
    let (b, _uts) = counter_bundle(|_| {});
    let id = unique("criu-badimg");
    let img = TempDir::new("criu-img");
    std::fs::write(img.path().join("descriptors.json"), "[]").unwrap();
    let err = root.fails(&[
        "restore",
        "-d",
        "-b",
        b.path().to_str().unwrap(),
        "--image-path",
        img.path().to_str().unwrap(),
        &id,
    ]);
    assert!(err.contains("criu restore failed: Error ("), "{err}");
    assert!(err.contains("restore.log"), "{err}");
    assert_nothing_left(&root, &id, &b);
}

/// A container joining a network namespace by path (podman's and CNI's way): criu leaves
/// it out of the image (`--external net[INODE]:extRootNetNS`) and restores into the one
/// passed back by path (an inherited fd), as runc does.
#[test]
fn criu_network_namespace_joined_by_path() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-netns");
    let net = Holder::new("-n", "net");
    let (b, _uts) = counter_bundle(|s| {
        let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "network", "path": net.path()}));
    });
    let (p, sleep_pid) = start_counter(&root, &b, &id);
    assert_eq!(
        exec_out(&root, &id, &["readlink", "/proc/1/ns/net"]),
        net.inode()
    );
    let (mut p, _img) = round_trip(&root, &b, &id, p, &[], &[]);
    assert_eq!(p.ask(), format!("2 {sleep_pid}"));
    assert_eq!(
        exec_out(&root, &id, &["readlink", "/proc/1/ns/net"]),
        net.inode(),
        "restored into the network namespace given by path"
    );
    root.ok(&["delete", "--force", &id]);
    assert!(cgroups_named(&id).is_empty());
}

/// Hooks as runc runs them around a checkpoint and a restore: the checkpoint removes the
/// container (poststop), the restore runs prestart and createRuntime with the restored
/// pid (criu's setup-namespaces), and nothing else; `events` reads the restored cgroup.
#[test]
fn criu_hooks_and_events_after_restore() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-hooks");
    let dir = TempDir::new("criu-hooks");
    let log = dir.path().join("hooks.log");
    let hook = |name: &str| {
        json!([{"path": "/bin/sh", "args": ["sh", "-c",
            format!("echo \"{name} $(cat)\" >> {}", log.display())]}])
    };
    let (b, _uts) = counter_bundle(|s| {
        s["hooks"] = json!({
            "prestart": hook("prestart"),
            "createRuntime": hook("createRuntime"),
            "poststart": hook("poststart"),
            "poststop": hook("poststop"),
        });
    });
    let hooks_run = || -> Vec<(String, serde_json::Value)> {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        std::fs::write(&log, "").unwrap();
        text.lines()
            .map(|l| {
                let (name, state) = l.split_once(' ').unwrap();
                (name.to_string(), serde_json::from_str(state).unwrap())
            })
            .collect()
    };
    let names = |h: &[(String, serde_json::Value)]| -> Vec<String> {
        h.iter().map(|(n, _)| n.clone()).collect()
    };
    let (p, _) = start_counter(&root, &b, &id);
    assert_eq!(
        names(&hooks_run()),
        ["prestart", "createRuntime", "poststart"]
    );
    let img = TempDir::new("criu-img");
    checkpoint(&root, &["--image-path", img.path().to_str().unwrap(), &id]);
    assert_eq!(
        names(&hooks_run()),
        ["poststop"],
        "the checkpoint deleted it"
    );
    drop(p);

    let mut p = restore_piped(&root, &b, img.path(), &id, &[]);
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    let ran = hooks_run();
    assert_eq!(names(&ran), ["prestart", "createRuntime"]);
    for (name, state) in &ran {
        assert_eq!(state["pid"], pid, "{name}: {state}");
        assert_eq!(state["status"], "creating", "{name}: {state}");
        assert_eq!(state["id"], id.as_str(), "{name}: {state}");
    }
    assert!(p.ask().starts_with("2 "));

    // `events --stats`: the restored cgroup, with the shell and its sleep in it.
    let out = root.ok(&["events", "--stats", &id]);
    let ev: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(ev["type"], "stats", "{out}");
    assert_eq!(ev["id"], id.as_str());
    assert_eq!(ev["data"]["pids"]["current"], 2, "{out}");
    root.ok(&["delete", "--force", &id]);
    assert_eq!(names(&hooks_run()), ["poststop"]);
}

/// Whether criu would lock the network with nftables here (no iptables-restore) and is
/// older than 3.18, whose restore leaves that lock in place: berth refuses
/// `--tcp-established` then.
fn nftables_lock_outlives_restore() -> bool {
    let iptables = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join("iptables-restore").exists());
    let out = Command::new("criu").arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u32> = text
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .unwrap_or("0.0")
        .split('.')
        .map(|n| n.trim().parse().unwrap_or(0))
        .collect();
    !iptables && (v[0], v.get(1).copied().unwrap_or(0)) < (3, 18)
}

/// A free TCP port on the loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `--tcp-established`: without it criu refuses the open connection (and the container
/// goes on); with it the connection survives the checkpoint and the restore, both ways.
#[test]
fn criu_tcp_established_connection_survives() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-tcp");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let uts = uts();
    let b = Bundle::with(&["nc", "127.0.0.1", &port], |s| {
        s["process"]["terminal"] = json!(false);
        namespaces(s, &uts);
    });
    let mut p = berth_piped(&root, &["create", "-b", b.path().to_str().unwrap(), &id]);
    root.ok(&["start", &id]);
    listener.set_nonblocking(true).unwrap();
    let mut conn = None;
    wait_for(
        || {
            conn = listener.accept().ok().map(|(c, _)| c);
            conn.is_some()
        },
        "nc in the container to connect",
    );
    let conn = conn.unwrap();
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut from_nc = BufReader::new(conn.try_clone().unwrap());
    let mut to_nc = conn;
    let mut both_ways = |p: &mut Pipes, word: &str| {
        writeln!(to_nc, "to-{word}").unwrap();
        assert_eq!(p.line(), format!("to-{word}"));
        p.send(&format!("from-{word}"));
        let mut line = String::new();
        from_nc.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), format!("from-{word}"));
    };
    both_ways(&mut p, "one");

    let img = TempDir::new("criu-img");
    let ip = img.path().to_str().unwrap();
    if nftables_lock_outlives_restore() {
        let err = root.fails(&["checkpoint", "--tcp-established", "--image-path", ip, &id]);
        assert!(
            err.contains("--tcp-established needs iptables-restore"),
            "{err}"
        );
        assert_eq!(status(&root, &id), "running");
        both_ways(&mut p, "refused");
        root.ok(&["delete", "--force", &id]);
        return;
    }
    let err = root.fails(&["checkpoint", "--image-path", ip, &id]);
    assert!(err.contains("--tcp-established"), "{err}");
    assert_eq!(status(&root, &id), "running");
    both_ways(&mut p, "two");

    let flag = ["--tcp-established"];
    let (mut p, _img) = round_trip(&root, &b, &id, p, &flag, &flag);
    both_ways(&mut p, "three");
    root.ok(&["delete", "--force", &id]);
}

/// `--ext-unix-sk`: `logger` keeps a datagram socket connected to /dev/log, the test's
/// socket. Without the flag criu refuses it; with it the socket is reconnected at restore
/// and the lines go on arriving.
#[test]
fn criu_ext_unix_sk_reconnects_to_the_outside_socket() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-usk");
    let dir = TempDir::new("criu-usk");
    let sock = dir.path().join("log");
    let server = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    server
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let received = || {
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).expect("a line from logger");
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    // criu reconnects to the peer by the name it was bound to, so the directory is mounted
    // at the same path inside, and /dev/log links there.
    let uts = uts();
    let d = dir.path().to_str().unwrap().to_string();
    let script = format!("ln -s {d}/log /dev/log && exec logger -t criu-usk");
    let b = Bundle::with(&["sh", "-c", &script], |s| {
        s["process"]["terminal"] = json!(false);
        namespaces(s, &uts);
        s["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": d, "type": "bind", "source": d, "options": ["rbind"]}));
    });
    let mut p = berth_piped(&root, &["create", "-b", b.path().to_str().unwrap(), &id]);
    root.ok(&["start", &id]);
    p.send("one");
    let got = received();
    assert!(got.contains("criu-usk: one"), "{got}");

    let img = TempDir::new("criu-img");
    let ip = img.path().to_str().unwrap();
    let err = root.fails(&["checkpoint", "--image-path", ip, &id]);
    assert!(err.contains("--ext-unix-sk"), "{err}");
    assert_eq!(status(&root, &id), "running");

    let flag = ["--ext-unix-sk"];
    let (mut p, _img) = round_trip(&root, &b, &id, p, &flag, &flag);
    p.send("two");
    let got = received();
    assert!(got.contains("criu-usk: two"), "{got}");
    root.ok(&["delete", "--force", &id]);
}

/// `--file-locks`: the container holds an flock on a file it opened (/locks/held, fd 3;
/// the test takes the lock on that very open file through pidfd_getfd, as busybox has no
/// flock). Without the flag criu refuses to dump the lock; with it the lock goes with the
/// dumped tree and is taken again at restore.
#[test]
fn criu_file_locks_are_dumped_and_taken_again() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-lock");
    let dir = TempDir::new("criu-lock");
    let file = dir.path().join("held");
    std::fs::write(&file, "").unwrap();
    let locked = || {
        let f = std::fs::File::open(&file).unwrap();
        match f.try_lock() {
            Ok(()) => false,
            Err(std::fs::TryLockError::WouldBlock) => true,
            Err(e) => panic!("flock {}: {e}", file.display()),
        }
    };
    let d = dir.path().to_str().unwrap().to_string();
    let (b, _uts) = counter_bundle(|s| {
        s["process"]["args"] = json!([
            "sh",
            "-c",
            "exec 3<>/locks/held; i=0; while read x; do i=$((i+1)); echo \"$i $$\"; done"
        ]);
        s["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/locks", "type": "bind", "source": d, "options": ["rbind"]}),
        );
    });
    let mut p = berth_piped(&root, &["create", "-b", b.path().to_str().unwrap(), &id]);
    root.ok(&["start", &id]);
    assert!(p.ask().starts_with("1 "));
    let pid = root.state(&id)["pid"].as_i64().unwrap() as i32;
    {
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid).unwrap(),
            rustix::process::PidfdFlags::empty(),
        )
        .unwrap();
        let theirs =
            rustix::process::pidfd_getfd(&pidfd, 3, rustix::process::PidfdGetfdFlags::empty())
                .unwrap();
        std::fs::File::from(theirs).lock().unwrap();
        // Our copy closes here; the lock stays with the container's open file.
    }
    assert!(locked(), "the container holds the lock");

    let img = TempDir::new("criu-img");
    let ip = img.path().to_str().unwrap();
    let err = root.fails(&["checkpoint", "--image-path", ip, &id]);
    assert!(err.contains("--file-locks"), "{err}");
    assert_eq!(status(&root, &id), "running");
    assert!(locked());

    checkpoint(&root, &["--file-locks", "--image-path", ip, &id]);
    assert!(!locked(), "the dumped tree is gone, and its lock");
    drop(p);
    let mut p = restore_piped(&root, &b, img.path(), &id, &["--file-locks"]);
    assert!(p.ask().starts_with("2 "));
    assert!(locked(), "the restored tree holds the lock again");
    root.ok(&["delete", "--force", &id]);
    assert!(!locked());
}

/// `--page-server`: the memory goes to `criu page-server`, not to the image directory; with
/// the pages put back, the restore goes on counting.
#[test]
fn criu_page_server_receives_the_pages() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-ps");
    let (b, _uts) = counter_bundle(|_| {});
    let (p, sleep_pid) = start_counter(&root, &b, &id);
    let pages = TempDir::new("criu-pages");
    let port = free_port().to_string();
    let pidfile = pages.path().join("server.pid");
    // -d: criu returns once it listens, and serves one dump.
    let st = Command::new("criu")
        .args(["page-server", "-d", "--port", &port, "--images-dir"])
        .arg(pages.path())
        .arg("--pidfile")
        .arg(&pidfile)
        .arg("-o")
        .arg(pages.path().join("server.log"))
        .status()
        .unwrap();
    assert!(st.success(), "criu page-server");
    let _server = OnDrop(|| {
        if let Ok(pid) = std::fs::read_to_string(&pidfile) {
            let pid = nix::unistd::Pid::from_raw(pid.trim().parse().unwrap());
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    });
    let img = TempDir::new("criu-img");
    checkpoint(
        &root,
        &[
            "--page-server",
            &format!("127.0.0.1:{port}"),
            "--image-path",
            img.path().to_str().unwrap(),
            &id,
        ],
    );
    let page_files = |d: &Path| -> Vec<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("pages-"))
            .collect()
    };
    assert!(
        page_files(img.path()).is_empty(),
        "pages went to the image directory"
    );
    assert!(
        !page_files(pages.path()).is_empty(),
        "no pages at the page server"
    );
    // What the page server got (pages and pagemaps) goes back next to the other images.
    for e in std::fs::read_dir(pages.path()).unwrap() {
        let name = e.unwrap().file_name();
        if name.to_string_lossy().ends_with(".img") {
            std::fs::copy(pages.path().join(&name), img.path().join(&name)).unwrap();
        }
    }
    drop(p);
    let mut p = restore_piped(&root, &b, img.path(), &id, &[]);
    assert_eq!(p.ask(), format!("2 {sleep_pid}"));
    root.ok(&["delete", "--force", &id]);
}

/// Blocks allocated to the `pages-*.img` files of an image directory.
fn page_blocks(d: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("pages-"))
        .map(|e| e.metadata().unwrap().blocks())
        .sum()
}

/// `--auto-dedup`: the dump on top of a pre-dump punches the pages it took over out of
/// the parent's images, and the restore goes on counting from them.
#[test]
fn criu_auto_dedup_shrinks_the_parent_images() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-dedup");
    let (b, _uts) = counter_bundle(|_| {});
    let (mut p, sleep_pid) = start_counter(&root, &b, &id);
    let imgs = TempDir::new("criu-img");
    let (pre, last) = (imgs.path().join("pre"), imgs.path().join("last"));
    checkpoint(
        &root,
        &["--pre-dump", "--image-path", pre.to_str().unwrap(), &id],
    );
    let before = page_blocks(&pre);
    assert!(before > 0);
    assert_eq!(p.ask(), format!("2 {sleep_pid}"));
    checkpoint(
        &root,
        &[
            "--auto-dedup",
            "--image-path",
            last.to_str().unwrap(),
            "--parent-path",
            "../pre",
            &id,
        ],
    );
    let after = page_blocks(&pre);
    assert!(
        after < before,
        "the parent's pages were not deduplicated: {before} blocks before, {after} after"
    );
    drop(p);
    let mut p = restore_piped(&root, &b, &last, &id, &["--auto-dedup"]);
    assert_eq!(p.ask(), format!("3 {sleep_pid}"));
    root.ok(&["delete", "--force", &id]);
}

/// `--lazy-pages` with `--page-server` and `--status-fd`: the dump keeps the memory at
/// criu's lazy page server and says so on the status fd; `criu lazy-pages` feeds the
/// restore through userfaultfd, and the dump ends once every page is fetched. As in runc's
/// test, the restore is another container (the dumped one is there until then).
#[test]
fn criu_lazy_pages_restore_through_the_page_server() {
    need_criu!();
    let root = Root::new();
    let (id, id2) = (unique("criu-lazy"), unique("criu-lazy2"));
    let (b, _uts) = counter_bundle(|_| {});
    let (p, sleep_pid) = start_counter(&root, &b, &id);
    let img = TempDir::new("criu-img");
    let ip = img.path().to_str().unwrap();
    let port = free_port().to_string();
    // The status fd is the checkpoint's stdout, a pipe to us.
    let mut dump = root
        .cmd()
        .args([
            "checkpoint",
            "--lazy-pages",
            "--page-server",
            &format!("127.0.0.1:{port}"),
            "--status-fd",
            "1",
            "--image-path",
            ip,
            &id,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = dump.stdout.take().unwrap();
    {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let mut fds = [PollFd::new(status.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(60_000u16)).unwrap();
        assert!(n > 0, "no word on the status fd in 60 s");
    }
    let mut byte = [1u8; 1];
    status.read_exact(&mut byte).unwrap();
    assert_eq!(
        byte[0], 0,
        "criu writes a \\0 when the lazy page server is up"
    );
    let st = Command::new("criu")
        .args([
            "lazy-pages",
            "--page-server",
            "--address",
            "127.0.0.1",
            "--port",
            &port,
            "-d",
        ])
        .args(["--images-dir", ip, "--work-dir", ip, "-o", "lazy-pages.log"])
        .status()
        .unwrap();
    assert!(st.success(), "criu lazy-pages");
    drop(p);
    let mut p = restore_piped(&root, &b, img.path(), &id2, &["--lazy-pages"]);
    assert_eq!(p.ask(), format!("2 {sleep_pid}"));
    wait_for_secs(
        300,
        || dump.try_wait().unwrap().is_some(),
        "the lazy dump to end once its pages are fetched",
    );
    let out = dump.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(gone(&root, &id), "the dumped container is removed");
    assert_eq!(p.ask(), format!("3 {sleep_pid}"));
    root.ok(&["delete", "--force", &id2]);
}

/// A network namespace of the container's own (the template's): as with runc, network is
/// always in `--empty-ns`'s set (the runtime does not manage network devices; the engine
/// sets them up again), so the restore gets a new namespace, created empty: loopback down,
/// the address added before the checkpoint gone.
#[test]
fn criu_own_network_namespace() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-ownnet");
    let (b, _uts) = counter_bundle(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "network"}));
        for set in ["bounding", "effective", "permitted"] {
            s["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_NET_ADMIN"));
        }
    });
    let (p, sleep_pid) = start_counter(&root, &b, &id);
    exec_out(&root, &id, &["ip", "link", "set", "lo", "up"]);
    exec_out(
        &root,
        &id,
        &["ip", "addr", "add", "10.7.7.7/32", "dev", "lo"],
    );
    let addrs = exec_out(&root, &id, &["ip", "addr", "show", "dev", "lo"]);
    assert!(
        addrs.contains("10.7.7.7/32") && addrs.contains("UP"),
        "{addrs}"
    );
    let before = exec_out(&root, &id, &["readlink", "/proc/1/ns/net"]);
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(before, host_net.display().to_string());
    let (mut p, _img) = round_trip(&root, &b, &id, p, &[], &[]);
    assert_eq!(p.ask(), format!("2 {sleep_pid}"));
    let after = exec_out(&root, &id, &["readlink", "/proc/1/ns/net"]);
    assert_ne!(after, host_net.display().to_string());
    let addrs = exec_out(&root, &id, &["ip", "addr", "show", "dev", "lo"]);
    assert!(
        !addrs.contains("10.7.7.7") && !addrs.contains("UP"),
        "restored empty, as runc's --empty-ns network: {addrs}"
    );
    root.ok(&["delete", "--force", &id]);
}

/// A terminal the test owns, as a shell's: the master to type into and read from, the slave
/// to give berth as its stdio. No echo, no CR before LF: the lines come back as written.
struct Terminal {
    master: std::fs::File,
    slave: OwnedFd,
}

impl Terminal {
    fn new() -> Terminal {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, OutputFlags, SetArg};
        let pty = nix::pty::openpty(None, None).unwrap();
        let mut t = tcgetattr(&pty.slave).unwrap();
        t.local_flags.remove(LocalFlags::ECHO);
        t.output_flags.remove(OutputFlags::ONLCR);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &t).unwrap();
        Terminal {
            master: std::fs::File::from(pty.master),
            slave: pty.slave,
        }
    }

    /// The slave's path, as /proc/PID/fd shows it.
    fn path(&self) -> String {
        std::fs::read_link(format!("/proc/self/fd/{}", self.slave.as_raw_fd()))
            .unwrap()
            .display()
            .to_string()
    }

    /// Run berth with the slave as stdin, stdout and stderr; its output (berth's errors).
    fn berth(&self, root: &Root, args: &[&str]) -> std::process::Output {
        let io = || Stdio::from(self.slave.try_clone().unwrap());
        root.cmd()
            .args(args)
            .stdin(io())
            .stdout(io())
            .stderr(io())
            .output()
            .unwrap()
    }

    /// Send a line to the counting loop and read its answer (60 s at most).
    fn ask(&mut self) -> String {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        writeln!(self.master, "next").unwrap();
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while line.last() != Some(&b'\n') {
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            let n = poll(&mut fds, PollTimeout::from(60_000u16)).unwrap();
            assert!(n > 0, "no answer on the terminal in 60 s: {line:?}");
            self.master.read_exact(&mut b).unwrap();
            line.push(b[0]);
        }
        String::from_utf8_lossy(&line).trim().to_string()
    }
}

/// `--shell-job`: a container on its caller's terminal (process.terminal false, berth's stdio
/// a pty the test owns). Without the flag the checkpoint is refused, naming it; with it, the
/// restore puts the container on the terminal berth's stdin is then (another pty), and the
/// loop goes on counting there. A restore of that image without the flag, or with it but
/// without a terminal, is refused, leaving nothing behind.
#[test]
fn criu_shell_job_on_the_callers_terminal() {
    need_criu!();
    let root = Root::new();
    let id = unique("criu-shjob");
    let (b, _uts) = counter_bundle(|_| {});
    let bp = b.path().to_str().unwrap();
    let mut term = Terminal::new();
    let out = term.berth(&root, &["create", "-b", bp, &id]);
    assert!(out.status.success(), "create on the terminal failed");
    root.ok(&["start", &id]);
    let first = term.ask();
    let sleep_pid = first.split(' ').nth(1).unwrap().to_string();
    assert_eq!(first, format!("1 {sleep_pid}"));
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    let fd0 = |pid: i64| {
        std::fs::read_link(format!("/proc/{pid}/fd/0"))
            .unwrap()
            .display()
            .to_string()
    };
    assert_eq!(fd0(pid), term.path());

    let img = TempDir::new("criu-img");
    let ip = img.path().to_str().unwrap();
    let target = img.path().join("refused");
    let err = root.fails(&["checkpoint", "--image-path", target.to_str().unwrap(), &id]);
    assert!(err.contains("checkpoint it with --shell-job"), "{err}");
    assert!(
        !target.exists(),
        "no image directory for a refused checkpoint"
    );
    assert_eq!(status(&root, &id), "running");
    assert_eq!(term.ask(), format!("2 {sleep_pid}"));

    checkpoint(&root, &["--shell-job", "--image-path", ip, &id]);
    assert!(gone(&root, &id));
    drop(term);

    // Refused restores: without the flag, and with it but a pipe as stdin.
    let err = root.fails(&["restore", "-d", "-b", bp, "--image-path", ip, &id]);
    assert!(err.contains("restore it with --shell-job"), "{err}");
    assert_nothing_left(&root, &id, &b);
    let err = root.fails(&[
        "restore",
        "-d",
        "--shell-job",
        "-b",
        bp,
        "--image-path",
        ip,
        &id,
    ]);
    assert!(
        err.contains("--shell-job: berth's stdin is not a terminal"),
        "{err}"
    );
    assert_nothing_left(&root, &id, &b);

    let mut term = Terminal::new();
    let args = [
        "restore",
        "-d",
        "--shell-job",
        "-b",
        bp,
        "--image-path",
        ip,
        &id,
    ];
    let out = term.berth(&root, &args);
    if !out.status.success() {
        show_criu_logs(&args);
        // berth's error went to the terminal.
        let mut buf = vec![0u8; 4096];
        let n = term.master.read(&mut buf).unwrap_or(0);
        panic!(
            "restore --shell-job failed: {}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    assert_eq!(term.ask(), format!("3 {sleep_pid}"));
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(
        fd0(pid),
        term.path(),
        "the restored init is on the new terminal"
    );
    root.ok(&["delete", "--force", &id]);
    assert!(cgroups_named(&id).is_empty());
}

/// What a restore with one `--manage-cgroups-mode` did to the cgroups.
#[derive(Debug, PartialEq)]
struct CgroupsAfter {
    /// The restored sleep's cgroup, relative to the container's ("" or "/sub").
    sleep_in: String,
    /// Whether the sub-cgroup was made again.
    sub_made: bool,
    /// pids.max of the container's cgroup.
    limit: String,
    /// pids.max as the container sees it through its cgroup mount (on v1 a bind of each
    /// hierarchy's cgroup, external to criu and given back at restore).
    seen_inside: String,
}

/// A counting container whose sleep the host moved into a sub-cgroup of the container's,
/// with pids.max 50 from the spec raised to 77 by `update`, checkpointed
/// and restored with `--manage-cgroups-mode MODE` (or the refusal's text).
fn restore_with_cgroups_mode(mode: &str) -> Result<CgroupsAfter, String> {
    let root = Root::new();
    let id = unique(&format!("criu-cgm-{mode}"));
    let (b, _uts) = counter_bundle(|s| {
        s["linux"]["resources"]["pids"] = json!({"limit": 50});
    });
    let (p, _) = start_counter(&root, &b, &id);
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    // The sleep as the host sees it: the init's one child.
    let child_of = |pid: i64| -> String {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap()
            .trim()
            .to_string()
    };
    let sleep_pid = child_of(pid);
    let inside = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "/sys/fs/cgroup/pids.max"
    } else {
        "/sys/fs/cgroup/pids/pids.max"
    };
    let limit_file = cgroup_file(pid, "pids", "pids.max");
    let dir = limit_file.parent().unwrap().to_path_buf();
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("cgroup.procs"), &sleep_pid).unwrap();
    root.ok(&["update", "--pids-limit", "77", &id]);
    assert_eq!(std::fs::read_to_string(&limit_file).unwrap().trim(), "77");
    assert_eq!(exec_out(&root, &id, &["cat", inside]), "77");
    let img = TempDir::new("criu-img");
    let ip = img.path().to_str().unwrap();
    checkpoint(&root, &["--image-path", ip, &id]);
    assert!(!dir.exists(), "the checkpoint removed the cgroup");
    drop(p);
    let args = [
        "restore",
        "-d",
        "-b",
        b.path().to_str().unwrap(),
        "--image-path",
        ip,
        "--manage-cgroups-mode",
        mode,
        &id,
    ];
    let mut child = root
        .cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _stdin = child.stdin.take();
    let st = child.wait().unwrap();
    if !st.success() {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        show_criu_logs(&args);
        assert_nothing_left(&root, &id, &b);
        assert!(!dir.exists(), "a failed restore left {}", dir.display());
        return Err(err);
    }
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    let sleep: i64 = child_of(pid).parse().unwrap();
    let after_dir = cgroup_file(pid, "pids", "");
    let sleep_dir = cgroup_file(sleep, "pids", "");
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let after = CgroupsAfter {
        sleep_in: sleep_dir
            .strip_prefix(&after_dir)
            .map(|r| {
                let r = r.display().to_string();
                if r.is_empty() {
                    r
                } else {
                    format!("/{r}")
                }
            })
            .unwrap_or_else(|_| sleep_dir.display().to_string()),
        sub_made: after_dir.join("sub").exists(),
        limit: read(&after_dir.join("pids.max")).unwrap_or_default(),
        seen_inside: exec_out(&root, &id, &["cat", inside]),
    };
    assert_eq!(after_dir, dir, "restored into the container's cgroup");
    root.ok(&["delete", "--force", &id]);
    assert!(!dir.exists(), "delete left {}", dir.display());
    Ok(after)
}

/// `--manage-cgroups-mode` at restore, each mode on the same kind of container (see
/// [`restore_with_cgroups_mode`]).
#[test]
fn criu_manage_cgroups_modes() {
    need_criu!();
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let moved = |limit: &str| {
        Ok(CgroupsAfter {
            sleep_in: "/sub".into(),
            sub_made: true,
            limit: limit.into(),
            seen_inside: limit.into(),
        })
    };
    // soft (criu's default): membership comes from the image (criu makes the sub-cgroup and
    // puts the sleep back in it); the limits are the bundle's, which berth set on the
    // container's cgroup before criu ran: the update to 77 is not restored.
    assert_eq!(restore_with_cgroups_mode("soft"), moved("50"));
    // full: the properties of the cgroups that exist too, so the updated limit comes back
    // (v1). On v2 criu dumps no controller property, and berth refuses it.
    let full = restore_with_cgroups_mode("full");
    if v2 {
        let err = full.unwrap_err();
        assert!(
            err.contains("--manage-cgroups-mode full is not supported on cgroup v2"),
            "{err}"
        );
    } else {
        assert_eq!(full, moved("77"));
    }
    // strict: criu would fail on the container's cgroup, which berth makes first.
    let err = restore_with_cgroups_mode("strict").unwrap_err();
    assert!(
        err.contains("--manage-cgroups-mode strict is not supported"),
        "{err}"
    );
    // ignore: criu leaves the cgroups to berth: the whole tree is restored into the
    // container's cgroup (criu's own), no sub-cgroup is made, the limits are the bundle's.
    assert_eq!(
        restore_with_cgroups_mode("ignore"),
        Ok(CgroupsAfter {
            sleep_in: String::new(),
            sub_made: false,
            limit: "50".into(),
            seen_inside: "50".into(),
        })
    );
    // none and props want every cgroup of the image to exist already: criu's error names
    // the one that does not.
    for mode in ["none", "props"] {
        let err = restore_with_cgroups_mode(mode).unwrap_err();
        assert!(err.contains("/sub doesn't exist"), "{mode}: {err}");
    }
}
