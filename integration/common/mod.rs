//! Shared helpers for the integration tests: a busybox-static rootfs, bundles made from
//! `berth spec`'s template, a private `--root` per test that is cleaned up on drop (even
//! when the test fails), and a runner for the real binary.
#![allow(dead_code)]

mod engine;
#[allow(unused_imports)]
pub use engine::*;
mod logrus;
#[allow(unused_imports)]
pub use logrus::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A unique name for this test process and call.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Build a busybox-static rootfs at `dir`.
pub fn busybox_rootfs(dir: &Path) {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is needed: apt-get install -y busybox-static");
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(busybox, dir.join("bin/busybox")).unwrap();
    let out = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nuser:x:1000:1000:user:/home/user:/bin/sh\n").unwrap();
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\nnogroup:x:65534:\nuser:x:1000:\n",
    )
    .unwrap();
}

/// A bundle (rootfs + config.json from the template, edited by `edit`).
pub struct Bundle {
    pub dir: TempDir,
}

impl Bundle {
    pub fn new(args: &[&str]) -> Bundle {
        Self::with(args, |_| {})
    }

    pub fn with(args: &[&str], edit: impl FnOnce(&mut Value)) -> Bundle {
        let dir = TempDir::new("berth-bundle");
        busybox_rootfs(&dir.path().join("rootfs"));
        let mut spec = template();
        spec["process"]["terminal"] = json!(false);
        spec["process"]["args"] = json!(args);
        // Tests write marker files into the rootfs; tests of root.readonly set it back.
        spec["root"]["readonly"] = json!(false);
        edit(&mut spec);
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_vec_pretty(&spec).unwrap(),
        )
        .unwrap();
        Bundle { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.path().join("config.json")).unwrap()).unwrap()
    }

    pub fn set_config(&self, v: &Value) {
        std::fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(v).unwrap(),
        )
        .unwrap();
    }
}

/// The template `berth spec` writes.
pub fn template() -> Value {
    template_with(&[])
}

/// The template `berth spec ARGS` writes (`--rootless`: the caller's ids mapped to root).
pub fn template_with(args: &[&str]) -> Value {
    let d = spec_dir(args);
    serde_json::from_slice(&std::fs::read(d.path().join("config.json")).unwrap()).unwrap()
}

/// A directory holding the config.json `berth spec ARGS` wrote.
pub fn spec_dir(args: &[&str]) -> TempDir {
    let d = TempDir::new("berth-spec");
    let out = Command::new(BERTH)
        .arg("spec")
        .args(args)
        .arg("-b")
        .arg(d.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "berth spec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

/// A private state root; on drop, force-deletes every container left in it.
pub struct Root {
    pub dir: TempDir,
    /// The runtime: berth, or runc for a test that compares the two.
    pub bin: &'static str,
}

impl Root {
    pub fn new() -> Root {
        Root {
            dir: TempDir::new("berth-root"),
            bin: BERTH,
        }
    }

    /// A state root for another runtime with runc's command line (`runc`).
    pub fn for_runtime(bin: &'static str) -> Root {
        Root {
            dir: TempDir::new("berth-root"),
            bin,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(self.bin);
        c.arg("--root").arg(self.path());
        c
    }

    /// Run berth with these args; stdin is /dev/null. stdout and stderr go through files,
    /// not pipes: a created container inherits them and would hold a pipe open.
    pub fn run(&self, args: &[&str]) -> Output {
        output_through_files(self.cmd().args(args))
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run and require failure; returns stderr, each log line reduced to its message.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "berth {args:?} should fail");
        messages(&out.stderr)
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    /// Whether the state root holds nothing (no container dir).
    pub fn is_empty(&self) -> bool {
        state_entries(self.path()).is_empty()
    }

    /// `run` the bundle in the foreground; returns (exit code, stdout, stderr).
    pub fn run_bundle(&self, b: &Bundle, id: &str) -> (i32, String, String) {
        let out = self.run(&["run", "-b", b.path().to_str().unwrap(), id]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(self.path()) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.cmd().args(["delete", "--force", &id]).output();
            }
        }
    }
}

/// Runs `cmd` with stdin /dev/null and stdout and stderr through files, not pipes: a
/// created container inherits them and would hold a pipe open.
pub fn output_through_files(cmd: &mut Command) -> Output {
    let tmp = TempDir::new("berth-out");
    let (o, e) = (tmp.path().join("out"), tmp.path().join("err"));
    let status = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .status()
        .unwrap();
    Output {
        status,
        stdout: std::fs::read(&o).unwrap(),
        stderr: std::fs::read(&e).unwrap(),
    }
}

/// Shell lines that, in a private mount namespace, put a new tmpfs over /sys/fs/cgroup with
/// only the v1 hierarchies bound back (`keep` is a scratch directory): a pure v1 host. The
/// cgroup2 mount stays listed in mountinfo, under the covered tmpfs, but is not reachable.
pub fn hide_cgroup2_script(keep: &Path) -> String {
    format!(
        r#"set -e
mount --make-rprivate /
mount --rbind /sys/fs/cgroup {keep}
mount -t tmpfs -o mode=0755 tmpfs /sys/fs/cgroup
for h in $(ls {keep}); do
  [ "$h" = unified ] && continue
  mkdir /sys/fs/cgroup/$h
  mount --bind {keep}/$h /sys/fs/cgroup/$h
done
umount -l {keep}
"#,
        keep = keep.display()
    )
}

/// The mount table lines mentioning a path (to check nothing is left behind).
pub fn mounts_mentioning(s: &str) -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(s))
        .count()
}

/// Every cgroup (v1) and cgroup2 mount point of the host.
pub fn cgroup_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let mp = left.split(' ').nth(4)?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| mp.to_string())
        })
        .collect()
}

/// (hierarchy id:controllers, path) for each line of a /proc/PID/cgroup text.
pub fn cgroup_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (head, path) = l.rsplit_once(':')?;
            Some((head.to_string(), path.to_string()))
        })
        .collect()
}

/// The host directory of each of a process's cgroups (v1 hierarchies and the cgroup2 one).
pub fn cgroup_dirs(pid: i64) -> Vec<std::path::PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    cgroup_lines(&text)
        .into_iter()
        .map(|(head, path)| {
            let ctrls = head.split_once(':').unwrap().1;
            let mount = match ctrls {
                "" if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() => {
                    String::new()
                }
                "" => "unified".to_string(),
                c => c
                    .trim_start_matches("name=")
                    .split(',')
                    .next()
                    .unwrap()
                    .to_string(),
            };
            std::path::Path::new("/sys/fs/cgroup")
                .join(mount)
                .join(path.trim_start_matches('/'))
        })
        .collect()
}

/// Makes `name` in each of the init's cgroup directories that are the container's (named
/// after `id`); a v1 cpuset one gets its parent's cpus and mems (a new v1 cpuset takes no
/// process without them). Returns what it made.
pub fn make_sub_cgroups(init: i64, id: &str, name: &str) -> Vec<std::path::PathBuf> {
    let mut made = Vec::new();
    for dir in cgroup_dirs(init).into_iter().filter(|d| d.ends_with(id)) {
        let sub = dir.join(name);
        std::fs::create_dir(&sub).unwrap();
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if sub.join(f).exists() {
                std::fs::write(sub.join(f), std::fs::read(dir.join(f)).unwrap()).unwrap();
            }
        }
        made.push(sub);
    }
    made
}

/// cgroup directories named after the id, in every cgroup and cgroup2 mount (every v1
/// hierarchy and the unified one).
pub fn cgroups_named(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for mp in cgroup_mounts() {
        let out = Command::new("find")
            .args([
                &mp,
                "-mindepth",
                "1",
                "-maxdepth",
                "4",
                "-type",
                "d",
                "-name",
                id,
            ])
            .output()
            .unwrap();
        found.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(PathBuf::from),
        );
    }
    found
}

/// What a state root holds but its spare directories (the ones a delete keeps for the next
/// create, `<root>/.spare~N`, with the files a spare keeps): a container's directory, or a
/// spare with anything else in it.
pub fn state_entries(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !berth::container::state::is_bare_spare(&e.path()))
        .map(|e| e.path())
        .collect()
}

/// Assert that a failed create left nothing: no state, no mounts, no cgroups.
pub fn assert_nothing_left(root: &Root, id: &str, bundle: &Bundle) {
    assert!(root.is_empty(), "state left in {}", root.path().display());
    assert_eq!(
        mounts_mentioning(bundle.path().to_str().unwrap()),
        0,
        "mounts left"
    );
    assert!(
        cgroups_named(id).is_empty(),
        "cgroups left: {:?}",
        cgroups_named(id)
    );
}

/// A controller file of the cgroup a process is in, from the host's view (v1 or v2).
pub fn cgroup_file(pid: i64, controller: &str, file: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for l in text.lines() {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let path = path.trim_start_matches('/');
        if ctrls.split(',').any(|c| c == controller) {
            return std::path::Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(path)
                .join(file);
        }
        if ctrls.is_empty() && std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            return std::path::Path::new("/sys/fs/cgroup").join(path).join(file);
        }
    }
    panic!("no {controller} cgroup for {pid}: {text}");
}

/// Poll `f` until it holds (10 s at most).
pub fn wait_for(f: impl FnMut() -> bool, what: &str) {
    wait_for_secs(10, f, what)
}

/// Poll `f` until it holds, for `secs` at most.
pub fn wait_for_secs(secs: u64, mut f: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A command's stdout, after asserting it succeeded (`what` and `log` go in the failure).
pub fn must(what: &str, out: Output, log: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `berth run` of the bundle with the caller's stdio on a new pty (its controlling terminal),
/// as a person at a terminal runs it; `input` is typed in. Returns (exit code, every byte the
/// terminal showed).
pub fn run_on_pty(root: &Root, b: &Bundle, id: &str, input: &[u8]) -> (i32, Vec<u8>) {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = pty.slave.as_raw_fd();
    let mut cmd = root.cmd();
    cmd.args(["run", "-b", b.path().to_str().unwrap(), id]);
    cmd.stdin(std::fs::File::from(pty.slave.try_clone().unwrap()))
        .stdout(std::fs::File::from(pty.slave.try_clone().unwrap()))
        .stderr(std::fs::File::from(pty.slave.try_clone().unwrap()));
    // SAFETY: setsid and TIOCSCTTY between fork and exec are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::ioctl(slave, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    // Our copies of the slave must go, or the master never sees the end.
    drop(cmd);
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    master.write_all(input).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), out)
}

/// Record that the running test is skipped: prints `skipped: REASON` and appends
/// `BINARY<TAB>TEST<TAB>REASON` to the skip log (`target/tmp/skips.log`, or
/// `$BERTH_SKIP_LOG`), which the test command counts (scripts/skips.sh). Use `skip!`.
pub fn record_skip(reason: &str) {
    println!("skipped: {reason}");
    let exe = std::env::current_exe().ok();
    let stem = exe
        .as_deref()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // target/debug/deps/NAME-HASH
    let binary = match stem.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
        _ => stem,
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("unknown")
        .to_string();
    let log = std::env::var_os("BERTH_SKIP_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("skips.log"));
    use std::io::Write;
    // One short append per line: concurrent tests do not interleave within a line.
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
    {
        let _ = writeln!(f, "{binary}\t{test}\t{}", reason.replace(['\t', '\n'], " "));
    }
}

/// Skip the rest of this test, visibly: `skip!("needs two CPUs")` or with format args.
#[macro_export]
macro_rules! skip {
    ($($arg:tt)*) => {{
        $crate::common::record_skip(&format!($($arg)*));
        return;
    }};
}

/// The fd that came with one SCM_RIGHTS message on `sock` (a console socket's pty master).
pub fn recv_fd(sock: i32) -> std::os::fd::OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::FromRawFd;
    let mut buf = [0u8; 64];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([i32; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed this fd for us.
            return unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received");
}

/// Drop `gid=5` from the devpts mount (a user namespace does not map gid 5).
pub fn devpts_without_tty_gid(s: &mut Value) {
    for m in s["mounts"].as_array_mut().unwrap() {
        if m["type"] == "devpts" {
            m["options"]
                .as_array_mut()
                .unwrap()
                .retain(|o| o != "gid=5");
        }
    }
}

/// A new user namespace mapping 0.. to 100000.. (64k ids), without what such a container
/// cannot mount: the cgroup mount and devpts' gid=5. The rootfs wants `chown_rootfs`.
pub fn userns_100000(s: &mut Value) {
    s["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    s["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/sys/fs/cgroup");
    devpts_without_tty_gid(s);
}

/// chown -R the bundle's rootfs to `ids` (user:group).
pub fn chown_rootfs(b: &Bundle, ids: &str) {
    let st = Command::new("chown")
        .args(["-R", ids])
        .arg(b.path().join("rootfs"))
        .status()
        .unwrap();
    assert!(st.success(), "chown -R {ids}");
}

/// Whether AppArmor is on here (the systemd lane has it; this host has no LSM).
pub fn apparmor_host() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'))
        && Path::new("/sys/kernel/security/apparmor").exists()
}

/// Loads (or replaces) AppArmor profile `name`, which allows everything but writes under
/// /denied.
pub fn load_deny_profile(name: &str) {
    let dir = TempDir::new("aa-profile");
    let file = dir.path().join(name);
    std::fs::write(
        &file,
        format!(
            "profile {name} flags=(attach_disconnected,mediate_deleted) {{\n  file,\n  \
             capability,\n  network,\n  mount,\n  umount,\n  pivot_root,\n  signal,\n  \
             ptrace,\n  unix,\n  deny /denied/** w,\n}}\n"
        ),
    )
    .unwrap();
    let out = Command::new("apparmor_parser")
        .arg("-r")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "apparmor_parser: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
