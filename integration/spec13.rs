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

/// A listener for `--pidfd-socket`: a thread accepts one connection and returns the name
/// and the pid the received pidfd refers to (from its fdinfo).
fn pidfd_listener(dir: &std::path::Path) -> (String, std::thread::JoinHandle<(String, i64)>) {
    let path = dir.join(unique("pidfd.sock"));
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let h = std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let (conn, _) = l.accept().unwrap();
        let mut buf = [0u8; 64];
        let (n, fd) = berth::process::channel::recv_packet(conn.as_raw_fd(), &mut buf).unwrap();
        let fd = fd.expect("a pidfd");
        let info =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("Pid:"))
            .expect("a pidfd's fdinfo has Pid:")
            .trim()
            .parse()
            .unwrap();
        (String::from_utf8_lossy(&buf[..n]).into_owned(), pid)
    });
    (path.to_str().unwrap().to_string(), h)
}

#[test]
fn pidfd_socket_on_create_exec_and_run() {
    let root = Root::new();
    let id = unique("feat-pidfd");
    let b = Bundle::with(&["sleep", "60"], |_| {});
    let (sock, h) = pidfd_listener(b.path());
    root.ok(&[
        "create",
        "--pidfd-socket",
        &sock,
        "-b",
        b.path().to_str().unwrap(),
        &id,
    ]);
    let (name, pid) = h.join().unwrap();
    assert_eq!(
        (name.as_str(), pid),
        ("standard", root.state(&id)["pid"].as_i64().unwrap())
    );
    root.ok(&["start", &id]);

    let (sock, h) = pidfd_listener(b.path());
    let pidfile = b.path().join("exec.pid");
    root.ok(&[
        "exec",
        "-d",
        "--pidfd-socket",
        &sock,
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
        "sleep",
        "30",
    ]);
    let (name, pid) = h.join().unwrap();
    let want: i64 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    assert_eq!((name.as_str(), pid), ("setns", want));

    // run: the pidfd names the init, which printed its pid in the container (1).
    let b2 = Bundle::with(&["sh", "-c", "echo $$"], |_| {});
    let (sock, h) = pidfd_listener(b2.path());
    let id2 = unique("feat-pidfd");
    let out = root.ok(&[
        "run",
        "--pidfd-socket",
        &sock,
        "-b",
        b2.path().to_str().unwrap(),
        &id2,
    ]);
    assert_eq!(out.trim(), "1");
    let (name, pid) = h.join().unwrap();
    assert_eq!(name, "standard");
    assert!(pid > 1, "the host pid of the init: {pid}");
}

#[test]
fn pidfd_socket_that_does_not_listen() {
    let root = Root::new();
    let id = unique("feat-pidfd");
    let b = Bundle::with(&["true"], |_| {});
    let sock = b.path().join("nobody.sock");
    let e = root.fails(&[
        "create",
        "--pidfd-socket",
        sock.to_str().unwrap(),
        "-b",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert!(e.contains("connecting to --pidfd-socket"), "{e}");
    assert_nothing_left(&root, &id, &b);
}

// ---- linux.netDevices --------------------------------------------------------------

fn ip(args: &[&str]) -> String {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip_ok(args: &[&str]) -> bool {
    std::process::Command::new("ip")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A tap device on the host (this kernel has no veth or dummy), removed on drop.
struct Tap {
    name: String,
    mac: String,
}

impl Tap {
    fn new(n: u8) -> Tap {
        let name = format!("ft{}x{n}", std::process::id() % 100_000);
        let mac = format!("02:fe:00:00:{:02x}:{n:02x}", std::process::id() % 256);
        ip(&["tuntap", "add", "dev", &name, "mode", "tap"]);
        ip(&["link", "set", &name, "mtu", "1400", "address", &mac]);
        ip(&["addr", "add", &format!("10.213.{n}.1/24"), "dev", &name]);
        ip(&["addr", "add", &format!("fd00:213:{n}::1/64"), "dev", &name]);
        ip(&["link", "set", &name, "up"]);
        Tap { name, mac }
    }

    /// On the host, with its addresses.
    fn on_host(&self) -> bool {
        ip_ok(&["link", "show", &self.name])
    }

    fn check_host_addrs(&self, n: u8) {
        let a = ip(&["addr", "show", &self.name]);
        assert!(a.contains(&format!("10.213.{n}.1/24")), "{a}");
        assert!(a.contains(&format!("fd00:213:{n}::1/64")), "{a}");
        assert!(a.contains("mtu 1400") && a.contains(&self.mac), "{a}");
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.name])
            .output();
    }
}

const SHOW: &str = "ip -o link show eth1; ip -o addr show eth1";

fn check_inside(out: &str, tap: &Tap, n: u8) {
    assert!(out.contains("eth1:") && out.contains("mtu 1400"), "{out}");
    assert!(out.contains(&tap.mac), "MAC kept: {out}");
    assert!(
        out.contains(&format!("10.213.{n}.1/24")),
        "IPv4 kept: {out}"
    );
    assert!(
        out.contains(&format!("fd00:213:{n}::1/64")),
        "IPv6 kept: {out}"
    );
    assert!(out.contains("UP"), "up again: {out}");
}

#[test]
fn net_device_moves_in_renamed_and_comes_back() {
    let tap = Tap::new(1);
    let root = Root::new();
    let id = unique("feat-net");
    let b = Bundle::with(&["sleep", "60"], |s| {
        s["linux"]["netDevices"] = json!({tap.name.clone(): {"name": "eth1"}});
    });
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(!tap.on_host(), "moved out of the host namespace");
    root.ok(&["start", &id]);
    let out = root.ok(&["exec", &id, "sh", "-c", SHOW]);
    check_inside(&out, &tap, 1);
    root.ok(&["kill", &id, "KILL"]);
    wait_for(|| root.state(&id)["status"] == "stopped", "the init to die");
    // The init is gone, its namespace pinned: delete still brings the device back.
    root.ok(&["delete", &id]);
    assert!(tap.on_host(), "back under its own name");
    tap.check_host_addrs(1);
    assert!(root.is_empty());

    // run, in a user namespace too.
    let id = unique("feat-net");
    let b = Bundle::with(&["sh", "-c", SHOW], |s| {
        s["linux"]["netDevices"] = json!({tap.name.clone(): {"name": "eth1"}});
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        let m = s["mounts"].as_array_mut().unwrap();
        m.retain(|m| {
            m["type"] != "devpts" && !m["destination"].as_str().unwrap().starts_with("/sys")
        });
    });
    let (code, out, err) = root.run_bundle(&b, &id);
    assert_eq!(code, 0, "{err}");
    check_inside(&out, &tap, 1);
    assert!(tap.on_host());
    tap.check_host_addrs(1);
}

#[test]
fn net_device_into_a_namespace_given_by_path() {
    let tap = Tap::new(2);
    let ns = format!("featns{}", std::process::id());
    ip(&["netns", "add", &ns]);
    struct Ns(String);
    impl Drop for Ns {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .output();
        }
    }
    let _ns = Ns(ns.clone());
    let root = Root::new();
    let id = unique("feat-net");
    let b = Bundle::with(&["sleep", "60"], |s| {
        s["linux"]["netDevices"] = json!({tap.name.clone(): {"name": "eth1"}});
        for n in s["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = json!(format!("/run/netns/{ns}"));
            }
        }
    });
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    let inside = ip(&["-n", &ns, "addr", "show", "eth1"]);
    assert!(inside.contains("10.213.2.1/24"), "{inside}");
    root.ok(&["delete", "--force", &id]);
    assert!(tap.on_host());
    tap.check_host_addrs(2);
    assert!(!ip_ok(&["-n", &ns, "link", "show", "eth1"]));
}

#[test]
fn net_device_errors_move_nothing() {
    let tap = Tap::new(3);
    let root = Root::new();
    // A device the host does not have.
    let id = unique("feat-net");
    let b = Bundle::with(&["true"], |s| {
        s["linux"]["netDevices"] = json!({"feat-none0": {}})
    });
    let e = root.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(e.contains("linux.netDevices.feat-none0: the network device \"feat-none0\" does not exist on the host"), "{e}");
    assert_nothing_left(&root, &id, &b);
    // A name taken in the container (lo): EEXIST, and the tap stays on the host as it was.
    let id = unique("feat-net");
    let b = Bundle::with(&["true"], |s| {
        s["linux"]["netDevices"] = json!({tap.name.clone(): {"name": "lo"}});
    });
    let e = root.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(
        e.contains(&format!("linux.netDevices.{}", tap.name)) && e.contains("EEXIST"),
        "{e}"
    );
    assert_nothing_left(&root, &id, &b);
    assert!(tap.on_host());
    tap.check_host_addrs(3);
    // Without a network namespace.
    let id = unique("feat-net");
    let b = Bundle::with(&["true"], |s| {
        s["linux"]["netDevices"] = json!({tap.name.clone(): {}});
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "network");
    });
    let e = root.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(
        e.contains("linux.netDevices: moving network devices needs a network namespace"),
        "{e}"
    );
    assert_nothing_left(&root, &id, &b);
    // A failure after the move (a missing program) brings the device back.
    let id = unique("feat-net");
    let b = Bundle::with(&["/no/such/program"], |s| {
        s["linux"]["netDevices"] = json!({tap.name.clone(): {"name": "eth1"}});
    });
    let e = root.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(e.contains("executable file not found"), "{e}");
    assert_nothing_left(&root, &id, &b);
    assert!(tap.on_host());
    tap.check_host_addrs(3);
}

// ---- seccomp ----------------------------------------------------------------------

#[test]
fn seccomp_flags_and_notify_without_a_listener() {
    // LOG and SPEC_ALLOW are known to this kernel (checked before any side effect) and the
    // filter is installed.
    let root = Root::new();
    let id = unique("feat-sc");
    let b = Bundle::with(&["grep", "^Seccomp", "/proc/self/status"], |s| {
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]
        });
    });
    let (code, out, err) = root.run_bundle(&b, &id);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Seccomp:\t2") && out.contains("Seccomp_filters:\t1"),
        "{out}"
    );

    // SCMP_ACT_NOTIFY without listenerPath: refused before anything exists.
    let id = unique("feat-sc");
    let b = Bundle::with(&["true"], |s| {
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let e = root.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(
        e.contains("linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY"),
        "{e}"
    );
    assert_nothing_left(&root, &id, &b);
}

/// What the agent saw of one notification: syscall number, pid, third argument.
type Notified = (i32, u32, u64);

/// A seccomp agent on `sock`: it takes the listener fd and the container state the runtime
/// sends, then answers every notification, the first with EXDEV and the rest with CONTINUE,
/// until the filter has no process left (POLLHUP). Every wait is bounded (30 s).
fn seccomp_agent(sock: std::path::PathBuf) -> std::thread::JoinHandle<(Value, Vec<Notified>)> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::io::Read;
    use std::os::fd::{AsFd, AsRawFd};
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        let wait = |fd: std::os::fd::BorrowedFd, what: &str| {
            let mut p = [PollFd::new(fd, PollFlags::POLLIN)];
            let n = poll(&mut p, PollTimeout::from(30_000u16)).unwrap();
            assert_eq!(n, 1, "the agent waited 30 s for {what}");
            p[0].revents().unwrap()
        };
        wait(l.as_fd(), "the runtime to connect");
        let (mut conn, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let (n, fd) = berth::process::channel::recv_packet(conn.as_raw_fd(), &mut buf).unwrap();
        let fd = fd.expect("the listener fd with the state");
        buf.truncate(n);
        conn.read_to_end(&mut buf).unwrap();
        let state: Value = serde_json::from_slice(&buf).unwrap();
        let mut seen = Vec::new();
        loop {
            let ev = wait(fd.as_fd(), "a notification");
            if !ev.contains(PollFlags::POLLIN) {
                break; // POLLHUP: no process uses the filter any more.
            }
            let Ok(n) = berth::security::seccomp::receive_notification(fd.as_fd()) else {
                continue; // the process went away meanwhile
            };
            seen.push((n.nr, n.pid, n.args[2]));
            let answer = if seen.len() == 1 {
                berth::security::seccomp::respond_errno(fd.as_fd(), n.id, libc::EXDEV)
            } else {
                berth::security::seccomp::respond_continue(fd.as_fd(), n.id)
            };
            answer.unwrap();
        }
        (state, seen)
    })
}

/// SCMP_ACT_NOTIFY on `write` in a real container: the agent on listenerPath gets the fd and
/// the state, fails the first 13-byte write with EXDEV and lets the others through.
#[test]
fn seccomp_notify_agent_answers_a_write() {
    let root = Root::new();
    let dir = TempDir::new("ft-agent");
    let sock = dir.path().join("agent.sock");
    let agent = seccomp_agent(sock.clone());
    let id = unique("ft-notify");
    let script = "echo hello-berth! > /tmp/a; echo rc=$?; echo hello-berth! > /tmp/b; echo rc=$?; cat /tmp/b";
    let b = Bundle::with(&["sh", "-c", script], |s| {
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "listenerMetadata": "ft-agent",
            "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY",
                          "args": [{"index": 2, "value": 13, "op": "SCMP_CMP_EQ"}]}]
        });
    });
    let (code, out, err) = root.run_bundle(&b, &id);
    let (state, seen) = agent.join().unwrap();
    assert_eq!(code, 0, "{err}");
    // The first write got the agent's EXDEV, the second went through.
    assert_eq!(out, "rc=1\nrc=0\nhello-berth!\n", "stderr: {err}");
    assert!(
        err.contains("Cross-device link") || err.contains("write error"),
        "{err}"
    );
    let rootfs = b.path().join("rootfs/tmp");
    assert_eq!(std::fs::read(rootfs.join("a")).unwrap(), b"");
    assert_eq!(std::fs::read(rootfs.join("b")).unwrap(), b"hello-berth!\n");
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "ft-agent", "{state}");
    assert_eq!(state["state"]["id"], json!(id), "{state}");
    let pid = state["pid"].as_u64().unwrap() as u32;
    // The two echos of the init (sh, seen with its host pid); cat copies with sendfile.
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter()
            .all(|(nr, p, len)| *nr == libc::SYS_write as i32 && *p == pid && *len == 13),
        "{seen:?}"
    );
}

/// A startContainer hook runs in the container after the filter is loaded, as runc runs it:
/// it runs, and gets the profile's errors, in both no_new_privs modes.
#[test]
fn start_container_hook_runs_under_the_profile() {
    let root = Root::new();
    for nnp in [false, true] {
        let id = unique("ft-hook");
        let b = Bundle::with(
            &["sh", "-c", "cat /hook.out; mkdir /x; echo program-mkdir=$?"],
            |s| {
                s["process"]["noNewPrivileges"] = json!(nnp);
                s["linux"]["seccomp"] = json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
                });
                s["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": [
                "sh", "-c", "mkdir /from-hook; echo hook-mkdir=$? > /hook.out"]}]});
            },
        );
        let (code, out, err) = root.run_bundle(&b, &id);
        assert_eq!(code, 0, "nnp {nnp}: {err}");
        assert_eq!(out, "hook-mkdir=1\nprogram-mkdir=1\n", "nnp {nnp}: {err}");
        assert!(!b.path().join("rootfs/from-hook").exists());
    }
}

/// After the filter is loaded the runtime makes only the syscalls in
/// `berth::process::program::POST_SECCOMP`: a profile that allows those and what busybox
/// `sleep` and `true` need, and denies everything else (setuid, capset, prctl's cousins,
/// close_range...), runs the init and an exec'd process, with and without no_new_privs, as
/// root and as another user.
#[test]
fn runtime_syscalls_after_the_filter_are_the_listed_ones() {
    let program = [
        "arch_prctl",
        "brk",
        "clock_nanosleep",
        "exit_group",
        "getrandom",
        "getuid",
        "mprotect",
        "prctl",
        "prlimit64",
        "readlink",
        "rseq",
        "set_robust_list",
        "set_tid_address",
    ];
    let mut names: Vec<&str> = berth::process::program::POST_SECCOMP.to_vec();
    names.extend(program);
    let root = Root::new();
    for (nnp, uid) in [(false, 0), (true, 0), (false, 1000), (true, 1000)] {
        let id = unique("ft-post");
        let b = Bundle::with(&["sleep", "60"], |s| {
            s["process"]["noNewPrivileges"] = json!(nnp);
            s["process"]["user"] = json!({"uid": uid, "gid": uid});
            s["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
            });
        });
        root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
        root.ok(&["start", &id]);
        let out = root.run(&["exec", &id, "true"]);
        root.ok(&["delete", "--force", &id]);
        assert!(
            out.status.success(),
            "exec, nnp {nnp}, uid {uid}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Without no_new_privs the runtime keeps CAP_SYS_ADMIN to load the filter after the
/// identity change: the program's capabilities are the same as without a filter, as root
/// and as another user.
#[test]
fn the_capability_kept_for_the_filter_does_not_reach_the_program() {
    let root = Root::new();
    for uid in [0, 1000] {
        let caps = |seccomp: bool| {
            let id = unique("ft-caps");
            let b = Bundle::with(&["grep", "^Cap", "/proc/self/status"], |s| {
                s["process"]["noNewPrivileges"] = json!(false);
                s["process"]["user"] = json!({"uid": uid, "gid": uid});
                if seccomp {
                    s["linux"]["seccomp"] = json!({
                        "defaultAction": "SCMP_ACT_ALLOW",
                        "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]
                    });
                }
            });
            let (code, out, err) = root.run_bundle(&b, &id);
            assert_eq!(code, 0, "{err}");
            out
        };
        let (with, without) = (caps(true), caps(false));
        assert_eq!(with, without, "uid {uid}");
        let eff = with.lines().find(|l| l.starts_with("CapEff")).unwrap();
        let bits = u64::from_str_radix(eff.split_whitespace().nth(1).unwrap(), 16).unwrap();
        assert_eq!(bits & (1 << 21), 0, "CAP_SYS_ADMIN in {eff} (uid {uid})");
    }
}
