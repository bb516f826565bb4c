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
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    _stderr: ChildStderr,
}

impl Pipes {
    /// Send a line to the counting loop and read its answer.
    fn ask(&mut self) -> String {
        writeln!(self.stdin, "next").unwrap();
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
    let mut child = root
        .cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // wait() would close our end of stdin: take it first.
    let stdin = child.stdin.take().unwrap();
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

/// No network namespace of its own: criu 3.17.1 on the VM's 6.1 kernel cannot dump one
/// (its netlink dump of the links gets EINVAL), whether the container made it or joined it
/// by path. The UTS namespace is joined by path instead, to restore into a namespace that
/// exists (criu's join_ns).
struct Uts(std::process::Child);

impl Uts {
    fn new() -> Uts {
        let child = Command::new("unshare")
            .args(["-u", "sleep", "100000"])
            .spawn()
            .unwrap();
        let me = std::fs::read_link("/proc/self/ns/uts").unwrap();
        let path = format!("/proc/{}/ns/uts", child.id());
        wait_for(
            || std::fs::read_link(&path).is_ok_and(|l| l != me),
            "unshare -u to enter its uts namespace",
        );
        Uts(child)
    }
    fn path(&self) -> String {
        format!("/proc/{}/ns/uts", self.0.id())
    }
    fn inode(&self) -> String {
        std::fs::read_link(self.path())
            .unwrap()
            .display()
            .to_string()
    }
}

impl Drop for Uts {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The host's network namespace, and `uts` joined by path.
fn namespaces(s: &mut serde_json::Value, uts: &Uts) {
    let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "network" && n["type"] != "uts");
    ns.push(json!({"type": "uts", "path": uts.path()}));
    // A hostname needs a uts namespace of the container's own.
    s.as_object_mut().unwrap().remove("hostname");
}

fn counter_bundle(edit: impl FnOnce(&mut serde_json::Value)) -> (Bundle, Uts) {
    let uts = Uts::new();
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
    let img = TempDir::new("criu-img");
    checkpoint(&root, &["--image-path", img.path().to_str().unwrap(), &id]);
    drop(p);
    let pid_file = img.path().join("restored.pid");
    let mut p = restore_piped(
        &root,
        &b,
        img.path(),
        &id,
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
    let img = TempDir::new("criu-img");
    checkpoint(&root, &["--image-path", img.path().to_str().unwrap(), &id]);
    drop(p);
    let mut p = restore_piped(&root, &b, img.path(), &id, &[]);
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
    let img = TempDir::new("criu-img");
    checkpoint(&root, &["--image-path", img.path().to_str().unwrap(), &id]);
    drop(p);
    let mut p = restore_piped(&root, &b, img.path(), &id, &[]);
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
    let uts = Uts::new();
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
    let err = root.fails(&["checkpoint", "--page-server", "nowhere", "x"]);
    assert!(err.contains("ADDRESS:PORT"), "{err}");
    let err = root.fails(&["restore", "--no-pivot", "-b", bp, "x"]);
    assert!(err.contains("--no-pivot"), "{err}");
    assert!(root.is_empty());
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
