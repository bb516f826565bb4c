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
