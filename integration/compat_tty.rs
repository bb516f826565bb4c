//! Terminals as runc sets them up (issue 7 item 17): ONLCR off on the pty of a foreground
//! run, the pty's owner and group, and exec's consoleSize.
mod common;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;

use common::*;
use serde_json::json;

/// A foreground `run` with a terminal: LF reaches the caller's terminal as LF (berth puts
/// the caller's terminal in raw mode, so a CR could only come from the container's pty).
#[test]
fn foreground_run_with_a_terminal_clears_onlcr() {
    let root = Root::new();
    let b = Bundle::with(&["printf", "one\\ntwo\\n"], |s| {
        s["process"]["terminal"] = json!(true);
    });
    let (code, out) = run_on_pty(&root, &b, &unique("compat-onlcr"), b"");
    assert_eq!(code, 0);
    assert!(
        out.windows(8).any(|w| w == b"one\ntwo\n"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert!(!out.contains(&b'\r'), "{:?}", String::from_utf8_lossy(&out));
}

/// The pty belongs to the process's uid; its group is the one devpts gives (gid=5, the tty
/// group, in the template; the creator's, root, without that option), as with runc.
#[test]
fn pty_owner_and_group_as_runc() {
    for (gid_opt, want) in [(true, "1000 5 620"), (false, "1000 0 620")] {
        let root = Root::new();
        let b = Bundle::with(&["sh", "-c", "stat -c '%u %g %a' $(tty)"], |s| {
            s["process"]["terminal"] = json!(true);
            s["process"]["user"] = json!({"uid": 1000, "gid": 1000});
            if !gid_opt {
                devpts_without_tty_gid(s);
            }
        });
        let (code, out) = run_on_pty(&root, &b, &unique("compat-ptyown"), b"");
        let out = String::from_utf8_lossy(&out);
        assert_eq!(code, 0, "{out}");
        assert_eq!(out.trim(), want, "devpts gid=5: {gid_opt}");
    }
}

/// `exec -t --console-socket -p process.json` sizes the pty from its consoleSize.
#[test]
fn exec_honours_console_size() {
    let root = Root::new();
    let id = unique("compat-execsize");
    let b = Bundle::new(&["sleep", "100"]);
    root.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), &id]);
    let dir = TempDir::new("compat-sock");
    let sock_path = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let receiver = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        recv_fd(conn.as_raw_fd())
    });
    let process = dir.path().join("process.json");
    let p = json!({
        "terminal": true, "consoleSize": {"height": 33, "width": 77},
        "args": ["sh", "-c", "stty size; echo done"], "cwd": "/", "env": ["PATH=/bin"],
        "user": {"uid": 0, "gid": 0}
    });
    std::fs::write(&process, p.to_string()).unwrap();
    root.ok(&[
        "exec",
        "-d",
        "--console-socket",
        sock_path.to_str().unwrap(),
        "-p",
        process.to_str().unwrap(),
        &id,
    ]);
    let mut f = std::fs::File::from(receiver.join().unwrap());
    let mut out = String::new();
    let mut buf = [0u8; 256];
    while !out.contains("done") {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(out.contains("33 77"), "{out}");
    root.ok(&["delete", "--force", &id]);
}
