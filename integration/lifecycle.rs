//! The runtime spine, driven through the real binary as root: lifecycle, namespaces,
//! process attributes, terminal, fds, hooks, bad input, and a differential check with runc.
mod common;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;
use serde_json::json;

#[test]
fn run_prints_output_and_returns_exit_code() {
    let root = Root::new();
    let b = Bundle::new(&["sh", "-c", "echo hello-from-berth; exit 42"]);
    let (code, out, err) = root.run_bundle(&b, &unique("run"));
    assert_eq!(code, 42, "stderr: {err}");
    assert_eq!(out, "hello-from-berth\n");
    assert!(root.is_empty(), "run without --keep deletes the container");
}

/// A delete keeps the emptied state directory as `<root>/.spare~N` (at most SPARES of them)
/// and the next create takes it: same inode, nothing of the last container in it, and no
/// command sees a spare as a container.
#[test]
fn deleted_state_directories_are_kept_as_spares_and_reused() {
    use std::os::unix::fs::MetadataExt;
    let root = Root::new();
    let b = Bundle::new(&["true"]);
    let bundle = b.path().to_str().unwrap();
    let spare = root.path().join(".spare~0");
    let ids: Vec<String> = (0..6).map(|i| unique(&format!("spare{i}"))).collect();
    for id in &ids {
        root.ok(&["create", "-b", bundle, id]);
    }
    for id in &ids {
        root.ok(&["delete", "--force", id]);
    }
    let mut names: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let want: Vec<String> = (0..berth::container::state::SPARES)
        .map(|k| format!(".spare~{k}"))
        .collect();
    assert_eq!(names, want, "six deletes keep the first SPARES directories");
    assert!(root.is_empty());
    assert_eq!(root.ok(&["list", "-q"]), "");
    assert!(root
        .fails(&["delete", ".spare~0"])
        .contains("invalid container id"));

    // A spare keeps the inodes of the files the next create makes, under names no command
    // reads; the create takes them back.
    let kept = [
        (".cgroup.json.tmp", "cgroup.json"),
        (".config.json.tmp", "config.json"),
        (".exec.fifo", "exec.fifo"),
        (".state.json.tmp", "state.json"),
    ];
    let names_in = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names_in(&spare), kept.map(|(k, _)| k));
    let ino = |p: PathBuf| std::fs::metadata(p).unwrap().ino();
    let inos = kept.map(|(k, _)| ino(spare.join(k)));
    let dir_ino = ino(spare.clone());
    let id = unique("spare-again");
    root.ok(&["create", "-b", bundle, &id]);
    let dir = root.path().join(&id);
    assert!(!spare.exists(), "the create took spare 0");
    assert_eq!(ino(dir.clone()), dir_ino);
    assert_eq!(names_in(&dir), kept.map(|(_, n)| n));
    assert_eq!(kept.map(|(_, n)| ino(dir.join(n))), inos, "the same inodes");
    let state = root.state(&id);
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], id.as_str(), "nothing of the last container");
    root.ok(&["delete", "--force", &id]);
    assert!(spare.is_dir() && root.is_empty());

    // What a spare holds under the fifo's name is taken only if it is a fifo of ours: a
    // regular file there would let the init through without a start.
    let fake = spare.join(".exec.fifo");
    std::fs::remove_file(&fake).unwrap();
    std::fs::write(&fake, "").unwrap();
    let id = unique("spare-fake");
    root.ok(&["create", "-b", bundle, &id]);
    use std::os::unix::fs::FileTypeExt;
    let fifo = root.path().join(&id).join("exec.fifo");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(root.state(&id)["status"], "created");
    root.ok(&["delete", "--force", &id]);
}

#[test]
fn lifecycle_states_field_by_field() {
    let root = Root::new();
    let id = unique("life");
    let b = Bundle::with(
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; while :; do sleep 0.1; done",
        ],
        |s| {
            s["annotations"] = json!({"org.example.k": "v"});
        },
    );
    let bundle = b.path().to_str().unwrap();
    let pidfile = b.path().join("pid");
    root.ok(&[
        "create",
        "-b",
        bundle,
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
    ]);
    let st = root.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["ociVersion"], "1.2.1");
    assert_eq!(st["bundle"], bundle);
    assert_eq!(st["rootfs"], format!("{bundle}/rootfs"));
    assert_eq!(st["owner"], "");
    assert_eq!(st["annotations"]["org.example.k"], "v");
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    let created = st["created"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");
    // A second create with the same id is refused.
    let err = root.fails(&["create", "-b", bundle, &id]);
    assert!(err.contains("already exists"), "{err}");

    root.ok(&["start", &id]);
    assert_eq!(root.state(&id)["status"], "running");
    assert!(root.fails(&["start", &id]).contains("not created"));
    assert!(root.fails(&["delete", &id]).contains("running"));
    let list = root.ok(&["list", "-q"]);
    assert_eq!(list.trim(), id);
    let list: serde_json::Value = serde_json::from_str(&root.ok(&["list", "-f", "json"])).unwrap();
    assert_eq!(list[0]["status"], "running");

    root.ok(&["kill", &id, "TERM"]);
    wait_for(|| root.state(&id)["status"] == "stopped", "stopped");
    assert_eq!(root.state(&id)["pid"], 0);
    root.ok(&["delete", &id]);
    assert!(root.fails(&["state", &id]).contains("does not exist"));
    assert!(root.is_empty());
    assert!(cgroups_named(&id).is_empty(), "cgroup removed by delete");
}

#[test]
fn cgroup_limits_seen_inside_and_removed_after() {
    let root = Root::new();
    let id = unique("cg");
    let script = "if [ -f /sys/fs/cgroup/memory.max ]; then cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; \
                  else cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; fi";
    let b = Bundle::with(&["sh", "-c", script], |s| {
        s["linux"]["resources"]["memory"] = json!({"limit": 67108864});
        s["linux"]["resources"]["pids"] = json!({"limit": 50});
    });
    let (code, out, err) = root.run_bundle(&b, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "67108864\n50\n");
    assert!(
        cgroups_named(&id).is_empty(),
        "cgroup removed: {:?}",
        cgroups_named(&id)
    );
}

#[test]
fn foreground_run_forwards_sigterm() {
    let root = Root::new();
    let id = unique("fwd");
    let b = Bundle::new(&[
        "sh",
        "-c",
        "trap 'exit 7' TERM; echo ready > /tmp/ready; while :; do sleep 0.1; done",
    ]);
    let mut child = root
        .cmd()
        .args(["run", "-b", b.path().to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let ready = b.path().join("rootfs/tmp/ready");
    wait_for(|| ready.exists(), "the container to start");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7));
}

/// Create a container running `sleep`, return (root guard, id, host pid).
fn created(b: &Bundle) -> (Root, String, i32) {
    let root = Root::new();
    let id = unique("ns");
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    let pid = root.state(&id)["pid"].as_i64().unwrap() as i32;
    (root, id, pid)
}

fn ns_link(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn namespaces_are_new_and_joinable_by_path() {
    let b = Bundle::with(&["sleep", "100"], |s| {
        let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
        // The template lists a cgroup namespace only on a cgroup2 host (as runc's).
        if !ns.iter().any(|n| n["type"] == "cgroup") {
            ns.push(json!({"type": "cgroup"}));
        }
        ns.push(json!({"type": "time"}));
    });
    let (_root, _id, pid) = created(&b);
    for ns in [
        "pid_for_children",
        "net",
        "ipc",
        "uts",
        "mnt",
        "cgroup",
        "time_for_children",
    ] {
        assert_ne!(
            ns_link(&pid.to_string(), ns),
            ns_link("self", ns),
            "{ns} is new"
        );
    }
    assert_eq!(
        ns_link(&pid.to_string(), "user"),
        ns_link("self", "user"),
        "no user ns asked"
    );

    // A second container joins the first one's network and uts namespaces by path.
    let b2 = Bundle::with(&["sleep", "100"], |s| {
        let nss = s["linux"]["namespaces"].as_array_mut().unwrap();
        for n in nss.iter_mut() {
            if n["type"] == "network" || n["type"] == "uts" {
                let name = if n["type"] == "network" { "net" } else { "uts" };
                n["path"] = json!(format!("/proc/{pid}/ns/{name}"));
            }
        }
        s.as_object_mut().unwrap().remove("hostname");
    });
    let (_root2, _id2, pid2) = created(&b2);
    assert_eq!(
        ns_link(&pid2.to_string(), "net"),
        ns_link(&pid.to_string(), "net")
    );
    assert_eq!(
        ns_link(&pid2.to_string(), "uts"),
        ns_link(&pid.to_string(), "uts")
    );
    assert_ne!(
        ns_link(&pid2.to_string(), "ipc"),
        ns_link(&pid.to_string(), "ipc")
    );
}

#[test]
fn user_namespace_maps_and_time_offsets_seen_inside() {
    let root = Root::new();
    let b = Bundle::with(
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map /proc/self/timens_offsets",
        ],
        |s| {
            let nss = s["linux"]["namespaces"].as_array_mut().unwrap();
            nss.push(json!({"type": "user"}));
            nss.push(json!({"type": "time"}));
            s["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            s["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            s["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 172800, "nanosecs": 5}});
            // A fresh sysfs needs a network namespace owned by the user namespace: keep it; the
            // cgroup mount is not allowed in a new user namespace without a cgroup namespace.
            s["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["destination"] != "/sys/fs/cgroup");
        },
    );
    std::process::Command::new("chown")
        .args(["-R", "100000:200000"])
        .arg(b.path().join("rootfs"))
        .status()
        .unwrap();
    let (code, out, err) = root.run_bundle(&b, &unique("userns"));
    assert_eq!(code, 0, "{err}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        &words[..6],
        ["0", "100000", "65536", "0", "200000", "65536"],
        "{out}"
    );
    assert!(out.contains("monotonic") && out.contains("86400"), "{out}");
    assert!(out.contains("boottime") && out.contains("172800"), "{out}");
}

#[test]
fn process_attributes_seen_inside() {
    let root = Root::new();
    let script = "hostname; echo env=$FOO; pwd; id -u; id -g; cat /proc/self/status | grep -E '^(Groups|CapBnd|CapEff|CapPrm|CapInh|CapAmb|NoNewPrivs)'; umask; ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj; cat /proc/sys/kernel/domainname";
    let b = Bundle::with(&["sh", "-c", script], |s| {
        s["hostname"] = json!("berthbox");
        s["domainname"] = json!("example.org");
        s["process"]["env"] = json!(["PATH=/bin", "FOO=bar"]);
        s["process"]["cwd"] = json!("/work/dir");
        s["process"]["user"] =
            json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 63});
        s["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]);
        s["process"]["oomScoreAdj"] = json!(100);
        s["process"]["noNewPrivileges"] = json!(true);
        let caps = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        s["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": caps});
    });
    let (code, out, err) = root.run_bundle(&b, &unique("attrs"));
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "berthbox");
    assert_eq!(l[1], "env=bar");
    assert_eq!(l[2], "/work/dir");
    assert_eq!((l[3], l[4]), ("1000", "1000"));
    let field = |k: &str| {
        l.iter()
            .find(|x| x.starts_with(k))
            .unwrap()
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(field("Groups:"), "10 20");
    // CAP_KILL (5) and CAP_NET_BIND_SERVICE (10): bits 0x420.
    for set in ["CapBnd:", "CapEff:", "CapPrm:", "CapInh:", "CapAmb:"] {
        assert_eq!(field(set), "0000000000000420", "{set}");
    }
    assert_eq!(field("NoNewPrivs:"), "1");
    let rest = &l[l.len() - 5..];
    assert_eq!(rest, ["0077", "123", "456", "100", "example.org"]);
}

#[test]
fn terminal_through_console_socket() {
    let root = Root::new();
    let id = unique("tty");
    let dir = TempDir::new("berth-sock");
    let sock_path = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let b = Bundle::with(&["sh", "-c", "tty; echo through-the-pty"], |s| {
        s["process"]["terminal"] = json!(true);
    });
    let receiver = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        recv_fd(conn.as_raw_fd())
    });
    root.ok(&[
        "create",
        "-b",
        b.path().to_str().unwrap(),
        "--console-socket",
        sock_path.to_str().unwrap(),
        &id,
    ]);
    let master = receiver.join().unwrap();
    root.ok(&["start", &id]);
    let mut f = std::fs::File::from(master);
    let mut out = String::new();
    let mut buf = [0u8; 256];
    while !out.contains("through-the-pty") {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("through-the-pty"), "{out}");
}

/// `run` without a console socket wires the container's pty to the caller's terminal.
#[test]
fn run_wires_the_terminal_to_the_caller() {
    let root = Root::new();
    let b = Bundle::with(&["sh"], |s| {
        s["process"]["terminal"] = json!(true);
    });
    let input = b"echo in-$((6*7)); tty; exit 4\n";
    let (code, out) = run_on_pty(&root, &b, &unique("rtty"), input);
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("in-42"), "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert_eq!(code, 4, "{out}");
}

/// `berth run` with `files` at fds 3.. and extra env, for the fd-passing tests.
fn run_passing_fds(
    root: &Root,
    b: &Bundle,
    extra: &[&str],
    env: &[(&str, &str)],
    files: &[std::fs::File],
) -> std::process::Output {
    let raws: Vec<i32> = files.iter().map(|f| f.as_raw_fd()).collect();
    let mut cmd = root.cmd();
    cmd.arg("run")
        .args(extra)
        .args(["-b", b.path().to_str().unwrap(), &unique("fds")]);
    cmd.envs(env.iter().copied());
    // SAFETY: dup2 and fcntl between fork and exec are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            // Move them out of the way first, then into place; dup2 onto itself keeps
            // close-on-exec, so clear it explicitly.
            let tmp: Vec<i32> = raws
                .iter()
                .map(|r| libc::fcntl(*r, libc::F_DUPFD_CLOEXEC, 100))
                .collect();
            for (i, t) in tmp.iter().enumerate() {
                let target = 3 + i as i32;
                if *t < 0 || libc::dup2(*t, target) < 0 || libc::fcntl(target, libc::F_SETFD, 0) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.stdin(Stdio::null()).output().unwrap()
}

#[test]
fn preserve_fds_passes_fd_3() {
    let root = Root::new();
    let b = Bundle::new(&["sh", "-c", "echo via-fd-3 >&3; ls /proc/self/fd"]);
    let out_file = b.path().join("fd3.out");
    let out = run_passing_fds(
        &root,
        &b,
        &["--preserve-fds", "1"],
        &[],
        &[std::fs::File::create(&out_file).unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "via-fd-3\n");
    // Only stdio, fd 3 and the fd `ls` itself opens: nothing of the runtime leaks.
    let fds: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(fds, ["0", "1", "2", "3", "4"], "open fds inside: {fds:?}");
}

/// Socket activation: LISTEN_FDS fds come first (at 3..), --preserve-fds ones after them,
/// and the program sees LISTEN_FDS=N and LISTEN_PID=1, as with runc.
#[test]
fn listen_fds_are_passed_before_preserved_ones() {
    let root = Root::new();
    let b = Bundle::new(&[
        "sh",
        "-c",
        "echo listen >&3; echo preserved >&4; echo $LISTEN_FDS $LISTEN_PID",
    ]);
    let (l, p) = (b.path().join("listen.out"), b.path().join("preserved.out"));
    let files = [
        std::fs::File::create(&l).unwrap(),
        std::fs::File::create(&p).unwrap(),
    ];
    let out = run_passing_fds(
        &root,
        &b,
        &["--preserve-fds", "1"],
        &[("LISTEN_FDS", "1")],
        &files,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 1\n");
    assert_eq!(std::fs::read_to_string(&l).unwrap(), "listen\n");
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "preserved\n");
}

#[test]
fn hooks_run_in_order_with_state_on_stdin() {
    let root = Root::new();
    let id = unique("hooks");
    let log_dir = TempDir::new("berth-hooklog");
    let log = log_dir.path().join("log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read -r s; echo \"{name} $s\" >> {}", log.display())]});
    let b = Bundle::with(&["true"], |s| {
        s["root"]["readonly"] = json!(false);
        s["hooks"] = json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "createContainer": [hook("createContainer")],
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "read -r s; echo \"startContainer $s\" >> /tmp/hooklog"]}],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        });
    });
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    root.ok(&["start", &id]);
    wait_for(|| root.state(&id)["status"] == "stopped", "exit");
    root.ok(&["delete", &id]);
    let text = std::fs::read_to_string(&log).unwrap();
    let names: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ]
    );
    for line in text.lines() {
        let (_, state) = line.split_once(' ').unwrap();
        let v: serde_json::Value = serde_json::from_str(state).unwrap();
        assert_eq!(v["id"], id.as_str(), "{line}");
        assert!(
            v["pid"].as_i64().unwrap() > 0 || line.starts_with("poststop"),
            "{line}"
        );
    }
    // startContainer ran inside the container (its /tmp is the rootfs' /tmp).
    let inside = std::fs::read_to_string(b.path().join("rootfs/tmp/hooklog")).unwrap();
    assert!(inside.starts_with("startContainer {"), "{inside}");
}

#[test]
fn failing_prestart_fails_create_and_leaves_nothing() {
    let root = Root::new();
    let id = unique("badhook");
    let b = Bundle::with(&["true"], |s| {
        s["hooks"] = json!({"prestart": [{"path": "/bin/false"}]});
    });
    let err = root.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(
        err.contains("error running prestart hook #0: /bin/false: exit status 1"),
        "{err}"
    );
    assert_nothing_left(&root, &id, &b);
}

#[test]
fn bad_input_is_refused_cleanly() {
    let root = Root::new();
    let id = unique("bad");
    let b = Bundle::new(&["true"]);
    let bundle = b.path().to_str().unwrap().to_string();
    let check = |args: &[&str], want: &str| {
        let err = root.fails(args);
        assert!(
            err.contains(want),
            "berth {args:?}: want {want:?} in {err:?}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one error line: {err:?}");
        assert_nothing_left(&root, &id, &b);
    };
    // Missing config.json.
    let empty = TempDir::new("berth-empty");
    check(
        &["create", "-b", empty.path().to_str().unwrap(), &id],
        "config.json",
    );
    // Invalid JSON.
    std::fs::write(b.path().join("config.json"), "{not json").unwrap();
    check(&["create", "-b", &bundle, &id], "invalid JSON");
    // A wrong field type names the JSON path.
    let mut spec = template();
    spec["process"]["args"] = json!(["true"]);
    spec["process"]["terminal"] = json!(false);
    spec["linux"]["resources"]["memory"] = json!({"limit": "lots"});
    b.set_config(&spec);
    check(
        &["create", "-b", &bundle, &id],
        "linux.resources.memory.limit",
    );
    // A missing rootfs.
    spec["linux"]["resources"]["memory"] = json!({});
    spec["root"]["path"] = json!("no-such-rootfs");
    b.set_config(&spec);
    check(&["create", "-b", &bundle, &id], "no-such-rootfs");
    // A missing program fails at create, not at start.
    spec["root"]["path"] = json!("rootfs");
    spec["process"]["args"] = json!(["/no/such/program"]);
    b.set_config(&spec);
    check(&["create", "-b", &bundle, &id], "executable file not found");
    // Bad ids, unknown ids, bad signals.
    check(&["create", "-b", &bundle, "a/b"], "invalid container id");
    check(&["state", "nope"], "does not exist");
    check(&["kill", "nope", "TERM"], "does not exist");
    check(&["kill", &id, "SIGNOPE"], "unknown signal");
    check(&["delete", "nope"], "does not exist");
}

#[test]
fn json_log_names_the_cause() {
    let root = Root::new();
    let dir = TempDir::new("berth-log");
    let log = dir.path().join("log.json");
    let b = Bundle::new(&["/no/such/program"]);
    let out = root
        .cmd()
        .args([
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "create",
            "-b",
            b.path().to_str().unwrap(),
            "logid",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    let msg = last["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("create logid: container init: exec:"),
        "{msg}"
    );
    assert!(msg.contains("executable file not found"), "{msg}");
    assert!(last["time"].as_str().is_some());
}

#[test]
fn version_and_features() {
    let root = Root::new();
    let v = root.ok(&["--version"]);
    let lines: Vec<&str> = v.lines().collect();
    assert!(lines[0].starts_with("berth version "), "{v}");
    assert!(lines[1].starts_with("commit: "), "{v}");
    assert_eq!(lines[2], "spec: 1.2.1");
    let f: serde_json::Value = serde_json::from_str(&root.ok(&["features"])).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h == "createRuntime"));
    assert!(f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "time"));
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);
    assert!(f["linux"]["seccomp"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "SCMP_ACT_NOTIFY"));
}

/// Differential: the same bundle under runc and berth sees the same capabilities,
/// namespaces (as a set of kinds that differ from the host) and mount points.
#[test]
fn differential_with_runc() {
    if std::process::Command::new("runc")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("runc is needed for the differential test: apt-get install -y runc");
    }
    let script =
        "grep -E '^Cap' /proc/self/status; mount | awk '{print $3, $5}' | sort; hostname; id";
    let b = Bundle::new(&["sh", "-c", script]);
    let root = Root::new();
    let (code, ours, err) = root.run_bundle(&b, &unique("diff"));
    assert_eq!(code, 0, "{err}");
    let runc_root = TempDir::new("runc-root");
    let out = std::process::Command::new("runc")
        .arg("--root")
        .arg(runc_root.path())
        .args([
            "run",
            "-b",
            b.path().to_str().unwrap(),
            &unique("diff-runc"),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "runc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = String::from_utf8_lossy(&out.stdout).into_owned();
    let norm = |s: &str| s.replace("runc", "berth");
    assert_eq!(norm(&theirs), ours, "runc vs berth, seen from inside");
}

#[test]
fn pause_resume_ps_update() {
    let root = Root::new();
    let id = unique("pause");
    let b = Bundle::with(
        &["sh", "-c", "sleep 100 & while :; do sleep 0.1; done"],
        |s| {
            s["linux"]["resources"]["pids"] = json!({"limit": 50});
        },
    );
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    root.ok(&["start", &id]);
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    wait_for(
        || {
            serde_json::from_str::<Vec<i64>>(&root.ok(&["ps", "-f", "json", &id]))
                .unwrap()
                .len()
                >= 2
        },
        "the background sleep",
    );
    let pids: Vec<i64> = serde_json::from_str(&root.ok(&["ps", "-f", "json", &id])).unwrap();
    assert!(pids.contains(&pid), "{pids:?} holds the init {pid}");
    let table = root.ok(&["ps", &id]);
    assert!(
        table.lines().next().unwrap().contains("PID") && table.contains("sleep 100"),
        "{table}"
    );

    root.ok(&["pause", &id]);
    assert_eq!(root.state(&id)["status"], "paused");
    assert!(root.fails(&["pause", &id]).contains("paused, not running"));
    assert!(root.fails(&["delete", &id]).contains("stop it first"));
    root.ok(&["resume", &id]);
    assert_eq!(root.state(&id)["status"], "running");

    // update: the new pids limit reaches the cgroup; the memory limit is added alongside.
    root.ok(&["update", "--pids-limit", "77", "--memory", "64m", &id]);
    let cg = cgroup_file(pid, "pids", "pids.max");
    assert_eq!(std::fs::read_to_string(cg).unwrap().trim(), "77");
    let mem = cgroup_file(pid, "memory", "memory.limit_in_bytes");
    let mem = if mem.exists() {
        mem
    } else {
        cgroup_file(pid, "memory", "memory.max")
    };
    assert_eq!(std::fs::read_to_string(mem).unwrap().trim(), "67108864");
    root.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_joins_the_container() {
    let root = Root::new();
    let id = unique("exec");
    let b = Bundle::with(
        &[
            "sh",
            "-c",
            "echo init-was-here > /tmp/mark; while :; do sleep 0.1; done",
        ],
        |_| {},
    );
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    root.ok(&["start", &id]);
    let init = root.state(&id)["pid"].as_i64().unwrap();
    wait_for(|| b.path().join("rootfs/tmp/mark").exists(), "the init");

    // Foreground exec: output, exit code, the same mount/pid namespaces as the init.
    let out = root.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /tmp/mark; echo pid=$$; exit 9",
    ]);
    assert_eq!(
        out.status.code(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("init-was-here\npid="), "{text}");
    let inner_pid: i64 = text.trim().rsplit('=').next().unwrap().parse().unwrap();
    assert!(
        inner_pid > 1,
        "a new pid in the container's pid namespace: {inner_pid}"
    );

    // Detached exec with --pid-file: the process is in the container's namespaces and cgroup.
    let pidfile = b.path().join("exec.pid");
    root.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "-u",
        "1000:1000",
        &id,
        "sleep",
        "30",
    ]);
    let pid: i64 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    for ns in ["mnt", "pid", "net", "ipc", "uts", "cgroup"] {
        assert_eq!(
            ns_link(&pid.to_string(), ns),
            ns_link(&init.to_string(), ns),
            "{ns}"
        );
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("1000")),
        "{status}"
    );
    let pids: Vec<i64> = serde_json::from_str(&root.ok(&["ps", "-f", "json", &id])).unwrap();
    assert!(pids.contains(&pid), "{pids:?} holds the exec'd {pid}");

    // The process.json containerd writes for `ctr task exec`.
    let mut p: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/testdata/engine-configs/containerd-ctr-exec.process.json"
        ))
        .unwrap(),
    )
    .unwrap();
    p["args"] = json!(["sh", "-c", "cat /tmp/mark && echo exec-ok; exit 3"]);
    let pfile = b.path().join("process.json");
    std::fs::write(&pfile, p.to_string()).unwrap();
    let out = root.run(&["exec", "--process", pfile.to_str().unwrap(), &id]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "init-was-here\nexec-ok\n"
    );

    // A missing program: one clear error, nothing started.
    let err = root.fails(&["exec", &id, "/no/such/program"]);
    assert!(
        err.contains("exec process: exec: \"/no/such/program\": executable file not found"),
        "{err}"
    );
    root.ok(&["delete", "--force", &id]);
    assert!(root
        .fails(&["exec", &id, "true"])
        .contains("does not exist"));
}

#[test]
fn events_report_stats_and_oom() {
    let root = Root::new();
    let id = unique("events");
    let b = Bundle::with(
        &[
            "sh",
            "-c",
            "while [ ! -e /tmp/go ]; do sleep 0.05; done; head -c 200m /dev/zero | tail; sleep 100",
        ],
        |s| {
            s["linux"]["resources"]["memory"] = json!({"limit": 16777216, "swap": 16777216});
        },
    );
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    root.ok(&["start", &id]);
    let once: serde_json::Value =
        serde_json::from_str(root.ok(&["events", "--stats", &id]).trim()).unwrap();
    assert_eq!(once["type"], "stats");
    assert_eq!(once["id"], id.as_str());
    assert_eq!(once["data"]["memory"]["usage"]["limit"], 16777216);
    assert!(
        once["data"]["pids"]["current"].as_u64().unwrap() >= 1,
        "{once}"
    );

    let out_dir = TempDir::new("berth-events");
    let out = out_dir.path().join("events");
    let mut stream = root
        .cmd()
        .args(["events", "--interval", "1s", &id])
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    // The stream's first stats line means it has its baseline OOM count: now trigger one.
    wait_for(
        || {
            std::fs::read_to_string(&out)
                .unwrap()
                .contains("\"type\":\"stats\"")
        },
        "the first stats event",
    );
    std::fs::write(b.path().join("rootfs/tmp/go"), "").unwrap();
    wait_for(
        || {
            std::fs::read_to_string(&out)
                .unwrap()
                .contains("\"type\":\"oom\"")
        },
        "an oom event",
    );
    let _ = stream.kill();
    let _ = stream.wait();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.lines().next().unwrap().contains("\"type\":\"stats\""),
        "{text}"
    );
}

/// Rootless: an unprivileged user runs a `spec --rootless` bundle (a user namespace mapping
/// the caller to root, no cgroup).
#[test]
fn rootless_run_as_an_unprivileged_user() {
    let root = Root::new();
    let b = Bundle::new(&["true"]);
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let spec_dir = TempDir::new("berth-rootless");
    std::process::Command::new("chown")
        .args(["65534:65534"])
        .arg(spec_dir.path())
        .status()
        .unwrap();
    std::process::Command::new("chown")
        .args(["65534:65534"])
        .arg(root.path())
        .status()
        .unwrap();
    let out = std::process::Command::new("setpriv")
        .args(nobody)
        .args([BERTH, "spec", "--rootless", "-b"])
        .arg(spec_dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(spec_dir.path().join("config.json")).unwrap())
            .unwrap();
    spec["root"]["path"] = json!(b.path().join("rootfs"));
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(["sh", "-c", "id -u; cat /proc/self/uid_map"]);
    b.set_config(&spec);
    let out = std::process::Command::new("setpriv")
        .args(nobody)
        .args([BERTH, "--root"])
        .arg(root.path())
        .args(["run", "-b"])
        .arg(b.path())
        .arg(unique("rootless"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "0", "65534", "1"],
        "root inside, nobody outside: {text}"
    );
}

/// CVE-2019-5736: while the init still runs berth's image (created, not started), a process
/// in the container cannot open it through /proc/1/exe.
#[test]
fn container_cannot_open_the_runtime_binary() {
    let root = Root::new();
    let id = unique("cve");
    let b = Bundle::new(&["true"]);
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    let out = root.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/1/exe > /dev/null 2>&1 && echo OPENED || echo DENIED",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "DENIED\n");
    root.ok(&["delete", "--force", &id]);
}

/// exec into a container with its own user namespace (podman --uidmap): the process joins
/// the user namespace first and takes the ids asked for inside it.
#[test]
fn exec_into_a_user_namespace() {
    let root = Root::new();
    let id = unique("execuserns");
    let b = Bundle::with(&["sleep", "100"], userns_100000);
    chown_rootfs(&b, "100000:100000");
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    root.ok(&["start", &id]);
    let out = root.ok(&[
        "exec",
        "-u",
        "1000:1000",
        &id,
        "sh",
        "-c",
        "id -u; id -g; cat /proc/self/uid_map",
    ]);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, ["1000", "1000", "0", "100000", "65536"], "{out}");
    root.ok(&["delete", "--force", &id]);
}

/// The init, and processes exec'd into it, are in the container's cgroup in every hierarchy
/// the host has mounted: each v1 one (they join it themselves, writing "0" to the `tasks`
/// file the parent opened), and the cgroup2 tree of a hybrid host (cloned into it). A join
/// that silently did nothing in any one hierarchy fails here. The same from a new user
/// namespace, and for `exec --cgroup` into a sub-cgroup of every hierarchy.
#[test]
fn init_and_exec_join_every_hierarchy() {
    let mounts = cgroup_mounts();
    assert!(!mounts.is_empty(), "no cgroup hierarchy is mounted");
    for userns in [false, true] {
        let root = Root::new();
        let id = unique("life-join");
        let b = Bundle::with(&["sleep", "100"], |s| {
            s["linux"]["cgroupsPath"] = json!(format!("/{id}"));
            if userns {
                userns_100000(s);
            }
        });
        if userns {
            chown_rootfs(&b, "100000:100000");
        }
        root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
        let dirs: Vec<PathBuf> = mounts.iter().map(|m| Path::new(m).join(&id)).collect();
        let init = root.state(&id)["pid"].as_i64().unwrap();
        let what = format!("the init (userns {userns})");
        assert_in_every(&dirs, init, &what);
        let exec = |extra: &[&str]| -> i64 {
            let pid_file = b.path().join("exec.pid");
            let mut a = vec!["exec", "-d", "--pid-file", pid_file.to_str().unwrap()];
            a.extend_from_slice(extra);
            a.extend_from_slice(&[&id, "sleep", "100"]);
            root.ok(&a);
            let pid = std::fs::read_to_string(&pid_file).unwrap();
            pid.trim().parse().unwrap()
        };
        let pid = exec(&[]);
        assert_in_every(&dirs, pid, &format!("an exec'd process (userns {userns})"));
        let subs = make_sub_cgroups(init, &id, "sub");
        assert_eq!(subs.len(), dirs.len(), "{subs:?}");
        let pid = exec(&["--cgroup", "sub"]);
        let what = format!("exec --cgroup sub (userns {userns})");
        assert_in_every(&subs, pid, &what);
        // A v1 cpuset without cpus takes no task: the process's own join fails, and says
        // where and why. (Only v1 has `tasks`; a v2 cpuset takes no controller prefix.)
        let cpuset = dirs
            .iter()
            .find(|d| d.join("cpuset.cpus").exists() && d.join("tasks").exists());
        if let Some(empty) = cpuset.map(|d| d.join("empty")) {
            std::fs::create_dir(&empty).unwrap();
            let err = root.fails(&["exec", "--cgroup", "cpuset:empty", &id, "true"]);
            let want = format!(
                "exec process: cgroup: joining the cgroup {} (v1 hierarchy cpuset) through its tasks file",
                empty.display()
            );
            assert!(err.contains(&want), "{err}");
            assert!(err.contains("(os error 28)"), "ENOSPC: {err}");
        }
        root.ok(&["delete", "--force", &id]);
        assert!(cgroups_named(&id).is_empty(), "{:?}", cgroups_named(&id));
    }
}

/// `pid` is listed in the `cgroup.procs` of each of `dirs`.
fn assert_in_every(dirs: &[PathBuf], pid: i64, what: &str) {
    for d in dirs {
        let procs = std::fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "{what}, pid {pid}, is not in {}: {procs:?}",
            d.display()
        );
    }
}

/// `exec -t --console-socket` (what containerd does for `ctr task exec -t`): the pty master
/// arrives on the socket and carries the process's output.
#[test]
fn exec_terminal_through_console_socket() {
    let root = Root::new();
    let id = unique("exectty");
    let b = Bundle::new(&["sleep", "100"]);
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    root.ok(&["start", &id]);
    let dir = TempDir::new("berth-sock");
    let sock_path = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let receiver = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        recv_fd(conn.as_raw_fd())
    });
    root.ok(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        sock_path.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "tty; echo exec-through-the-pty; sleep 1",
    ]);
    let mut f = std::fs::File::from(receiver.join().unwrap());
    let mut out = String::new();
    let mut buf = [0u8; 256];
    while !out.contains("exec-through-the-pty") {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("exec-through-the-pty"), "{out}");
    root.ok(&["delete", "--force", &id]);
}

#[test]
fn a_bundle_changed_after_create_changes_nothing() {
    // exec, start and delete read the config snapshot taken at create, as runc reads the
    // config kept in its state.json.
    let log_dir = TempDir::new("berth-snaplog");
    let log = log_dir.path().join("log");
    let b = Bundle::with(&["sleep", "100"], |s| {
        s["process"]["env"] = json!(["PATH=/bin", "SNAP=taken-at-create"]);
        s["hooks"] = json!({
            "poststart": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo poststart >> {}", log.display())]}],
            "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo poststop >> {}", log.display())]}],
        });
    });
    let (root, id, _) = created(&b);
    // The bundle's config now says something else, then nothing parseable at all.
    let mut edited = b.config();
    edited["process"]["env"] = json!(["PATH=/bin", "SNAP=edited"]);
    edited["hooks"] = json!({});
    b.set_config(&edited);
    let out = root.ok(&["exec", &id, "sh", "-c", "echo $SNAP"]);
    assert_eq!(out.trim(), "taken-at-create");
    std::fs::write(b.path().join("config.json"), "not json").unwrap();
    root.ok(&["start", &id]);
    let out = root.ok(&["exec", &id, "sh", "-c", "echo $SNAP"]);
    assert_eq!(out.trim(), "taken-at-create");
    std::fs::remove_file(b.path().join("config.json")).unwrap();
    root.ok(&["delete", "--force", &id]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text, "poststart\npoststop\n");
}

#[test]
fn program_gets_default_signal_actions() {
    // berth's own runtime ignores SIGPIPE; an ignored signal survives execve, so the program
    // would inherit it unless the runtime gives SIGPIPE back its default action.
    let root = Root::new();
    let b = Bundle::new(&["grep", "SigIgn", "/proc/self/status"]);
    let (code, out, err) = root.run_bundle(&b, &unique("sigpipe"));
    assert_eq!(code, 0, "{err}");
    let mask = u64::from_str_radix(out.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(
        mask & (1 << (libc::SIGPIPE - 1)),
        0,
        "SIGPIPE ignored: {out}"
    );
}
