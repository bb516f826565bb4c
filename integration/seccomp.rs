//! Root tests for `berth::security::seccomp` against the real kernel: each test re-executes
//! this test binary (`scenario_child`, selected by `BERTH_SECCOMP_SCENARIO`); the child sets
//! no_new_privs, compiles and installs a profile, makes real syscalls and checks what they
//! return. The parent checks the exit status (or the SIGSYS that killed the child) and, for
//! NOTIFY, plays the seccomp agent: it receives the listener fd over its unix socket and
//! answers the notification.
use std::fs;
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth::security::seccomp;
use nix::errno::Errno;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};

const ENV: &str = "BERTH_SECCOMP_SCENARIO";
const DOCKER: &str = include_str!("../src/security/seccomp/testdata/seccomp-docker-default.json");
const PODMAN: &str = include_str!("../src/security/seccomp/testdata/seccomp-podman-default.json");

/// A temporary directory removed on drop (also when the test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("berth-seccomp-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Kills and reaps the child if the test fails before waiting for it.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn child_cmd(scenario: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "scenario_child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ENV, format!("{scenario}:{}", dir.display()))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run a scenario to completion and insist it reported success.
fn run_ok(scenario: &str) {
    let dir = TempDir::new(scenario);
    let out = child_cmd(scenario, &dir.0).output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "scenario {scenario} failed:\n{t}");
    assert!(
        t.contains(&format!("SCENARIO {scenario} OK")),
        "scenario did not run:\n{t}"
    );
}

fn install(profile: Value) -> Option<std::os::fd::OwnedFd> {
    let s: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(profile).unwrap();
    let p = seccomp::compile(&s).expect("compile");
    nix::sys::prctl::set_no_new_privs().expect("no_new_privs");
    seccomp::install(&p).expect("install")
}

fn errno_of(r: std::io::Result<()>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[test]
fn errno_rule_and_flags() {
    run_ok("errno");
}

#[test]
fn masked_eq_and_64bit_compares() {
    run_ok("masked");
}

#[test]
fn kill_process_kills_with_sigsys() {
    let dir = TempDir::new("kill");
    let out = child_cmd("kill", &dir.0).output().unwrap();
    let t = text(&out);
    assert!(
        t.contains("installed"),
        "the filter was not installed:\n{t}"
    );
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSYS),
        "{:?}\n{t}",
        out.status
    );
}

#[test]
fn install_without_nnp_or_cap_sys_admin_fails_with_eacces() {
    run_ok("eacces");
}

#[test]
fn docker_default_profile() {
    run_ok("docker");
}

#[test]
fn podman_default_profile_allows_setns() {
    run_ok("podman");
}

/// NOTIFY end to end: the child hands its listener fd to our socket with `send_to_listener`;
/// we answer its mkdir with EXDEV, which the child must see.
#[test]
fn notify_reaches_the_agent() {
    let dir = TempDir::new("notify");
    let sock = dir.0.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut child = ChildGuard(Some(child_cmd("notify", &dir.0).spawn().unwrap()));
    let child_pid = child.0.as_ref().unwrap().id();

    let deadline = Instant::now() + Duration::from_secs(30);
    let (stream, _) = loop {
        match listener.accept() {
            Ok(s) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(st) = child.0.as_mut().unwrap().try_wait().unwrap() {
                    let out = child.0.take().unwrap().wait_with_output().unwrap();
                    panic!("child exited ({st}) before connecting:\n{}", text(&out));
                }
                assert!(Instant::now() < deadline, "the child never connected");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();

    // containerProcessState with the fd as SCM_RIGHTS.
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let (n, raw) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .unwrap();
        let mut raw = None;
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(fds) = c {
                raw = fds.first().copied();
            }
        }
        (msg.bytes, raw)
    };
    let raw = raw.expect("an fd with the state");
    // SAFETY: the fd came in the SCM_RIGHTS message just received: ours alone.
    let listener_fd = unsafe { berth::sys::fd::take(raw) };
    buf.truncate(n);
    (&stream).read_to_end(&mut buf).unwrap();
    let doc: Value = serde_json::from_slice(&buf).unwrap();
    assert_eq!(doc["fds"], json!(["seccompFd"]), "{doc}");
    assert_eq!(doc["pid"], json!(child_pid), "{doc}");
    assert_eq!(doc["metadata"], "berth-test", "{doc}");
    assert_eq!(doc["ociVersion"], "1.0.2", "{doc}");
    assert_eq!(doc["state"]["id"], "seccomp-notify", "{doc}");

    // Wait for the child's mkdir and fail it with EXDEV.
    let mut pfd = [nix::poll::PollFd::new(
        listener_fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ready = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(30_000u16)).unwrap();
    assert_eq!(ready, 1, "no notification within 30s");
    let n = seccomp::receive_notification(listener_fd.as_fd()).unwrap();
    // The notification names the thread (libtest runs the scenario in a thread of the child).
    assert!(
        Path::new(&format!("/proc/{child_pid}/task/{}", n.pid)).exists(),
        "notification from {} is not a thread of the child {child_pid}",
        n.pid
    );
    assert_eq!(n.arch, 0xc000_003e, "AUDIT_ARCH_X86_64");
    assert!(
        n.nr == libc::SYS_mkdir as i32 || n.nr == libc::SYS_mkdirat as i32,
        "unexpected syscall {}",
        n.nr
    );
    seccomp::respond_errno(listener_fd.as_fd(), n.id, libc::EXDEV).unwrap();

    let out = child.0.take().unwrap().wait_with_output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "child failed:\n{t}");
    assert!(t.contains("SCENARIO notify OK"), "{t}");
    assert!(!dir.0.join("made-by-child").exists());
}

/// The re-executed child. Does nothing in a normal test run.
#[test]
fn scenario_child() {
    let Ok(arg) = std::env::var(ENV) else {
        return;
    };
    let (scenario, dir) = arg.split_once(':').unwrap();
    let dir = Path::new(dir);
    match scenario {
        "errno" => child_errno(dir),
        "masked" => child_masked(),
        "kill" => child_kill(),
        "eacces" => child_eacces(),
        "docker" => child_docker(dir),
        "podman" => child_podman(),
        "notify" => child_notify(dir),
        other => panic!("unknown scenario {other}"),
    }
    println!("SCENARIO {scenario} OK");
}

fn child_errno(dir: &Path) {
    install(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
        ]
    }));
    let target = dir.join("denied");
    assert_eq!(errno_of(fs::create_dir(&target)), Some(libc::ENOSYS));
    assert!(!target.exists());
    assert_eq!(errno_of(fs::remove_dir(dir)), Some(libc::EPERM));
    assert_eq!(nix::unistd::getpid().as_raw() as u32, std::process::id());
    fs::write(dir.join("allowed"), b"x").unwrap();
}

fn child_masked() {
    install(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [
            {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES, "args": [
                {"index": 1, "value": 0xF000_0000_0000_00FFu64, "valueTwo": 0x1000_0000_0000_0042u64,
                 "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EDOM, "args": [
                {"index": 1, "value": 0x1_0000_0000u64, "op": "SCMP_CMP_GT"}]},
        ]
    }));
    // lseek on /dev/null succeeds for any offset unless the filter says otherwise.
    let null = fs::File::open("/dev/null").unwrap();
    let seek = |off: u64| {
        nix::unistd::lseek(null.as_raw_fd(), off as i64, nix::unistd::Whence::SeekSet)
            .map(drop)
            .map_err(|e| e as i32)
    };
    assert_eq!(seek(0x1000_0000_0000_0042), Err(libc::EACCES));
    assert_eq!(seek(0x1FF0_0000_0000_0042), Err(libc::EACCES)); // bits outside the mask
    assert_eq!(seek(0x42), Ok(())); // high word differs
    assert_eq!(seek(0x1000_0000_0000_0043), Err(libc::EDOM)); // masked fails, GT holds
    assert_eq!(seek(0x1_0000_0001), Err(libc::EDOM));
    assert_eq!(seek(0x1_0000_0000), Ok(()));
    assert_eq!(seek(0xffff_ffff), Ok(()));
}

fn child_eacces() {
    caps::drop(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_ADMIN,
    )
    .unwrap();
    let s: oci_spec::runtime::LinuxSeccomp =
        serde_json::from_value(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]}))
        .unwrap();
    let p = seccomp::compile(&s).unwrap();
    let e = seccomp::install(&p).expect_err("no no_new_privs, no CAP_SYS_ADMIN");
    assert_eq!(e.root_cause().downcast_ref::<Errno>(), Some(&Errno::EACCES));
    assert!(
        format!("{e:#}").contains("no_new_privs or CAP_SYS_ADMIN"),
        "{e:#}"
    );
    // Nothing was installed.
    assert_eq!(nix::unistd::getpid().as_raw() as u32, std::process::id());
}

fn child_kill() {
    install(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]
    }));
    println!("installed");
    let _ = nix::unistd::getppid();
    println!("still alive after getppid");
    std::process::exit(3);
}

fn child_docker(dir: &Path) {
    // A private UTS namespace: if the filter failed to deny sethostname, the host keeps its name.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUTS).unwrap();
    install(serde_json::from_str(DOCKER).unwrap());
    // Process creation goes through clone3 (ENOSYS) and falls back to clone without
    // namespace flags, which the MASKED_EQ rule allows.
    let st = Command::new("/bin/true")
        .status()
        .expect("spawning /bin/true");
    assert!(st.success());
    assert_eq!(nix::unistd::sethostname("berth-seccomp"), Err(Errno::EPERM));
    // Not in docker's list: the default ERRNO, EPERM.
    assert_eq!(
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER),
        Err(Errno::EPERM)
    );
    let ns = fs::File::open("/proc/self/ns/uts").unwrap();
    assert_eq!(
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWUTS),
        Err(Errno::EPERM)
    );
    fs::create_dir(dir.join("made")).unwrap();
}

fn child_podman() {
    // A private UTS namespace: if the filter failed to deny sethostname, the host keeps its name.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUTS).unwrap();
    install(serde_json::from_str(PODMAN).unwrap());
    // setns: ALLOW at syscalls[1] wins over ERRNO(EPERM) at syscalls[10].
    let ns = fs::File::open("/proc/self/ns/uts").unwrap();
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWUTS).expect("setns is allowed");
    // ERRNO(EPERM) at syscalls[10].
    assert_eq!(nix::unistd::sethostname("berth-seccomp"), Err(Errno::EPERM));
}

fn child_notify(dir: &Path) {
    let sock = dir.join("agent.sock");
    let fd = install(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "berth-test",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    }))
    .expect("a listener fd");
    let state = json!({"ociVersion": "1.0.2", "id": "seccomp-notify", "status": "creating",
        "pid": std::process::id(), "bundle": dir});
    seccomp::send_to_listener(&sock, fd.as_fd(), &state, Some("berth-test")).unwrap();
    drop(fd);
    assert_eq!(
        errno_of(fs::create_dir(dir.join("made-by-child"))),
        Some(libc::EXDEV)
    );
}
