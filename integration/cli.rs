//! Issue 7, items 8 to 12: the commands around a container (`list`, `events`, `exec
//! --cgroup`, `kill --all`, `delete --force`) compared with runc where runc can run the same.
//! Ids and cgroups start with `cl-`.
mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

/// runc (Debian's package) with a private `--root`; every container left in it is
/// force-deleted on drop.
struct Runc {
    root: TempDir,
}

impl Runc {
    fn new() -> Runc {
        assert!(
            Command::new("runc").arg("--version").output().is_ok(),
            "runc is needed for the comparison: apt-get install -y runc"
        );
        Runc {
            root: TempDir::new("cl-runc-root"),
        }
    }
    fn run(&self, args: &[&str]) -> std::process::Output {
        output_through_files(
            Command::new("runc")
                .arg("--root")
                .arg(self.root.path())
                .args(args),
        )
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "runc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
    /// Its output with its own spec version (the state's `ociVersion`) replaced by berth's.
    fn ok_as_berth(&self, args: &[&str]) -> String {
        let version = String::from_utf8(
            Command::new("runc")
                .arg("--version")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let spec = version
            .lines()
            .find_map(|l| l.strip_prefix("spec: "))
            .expect("runc --version prints its spec version")
            .to_string();
        let ours = template()["ociVersion"].as_str().unwrap().to_string();
        self.ok(args)
            .replace(
                &format!("\"ociVersion\":\"{spec}\""),
                &format!("\"ociVersion\":\"{ours}\""),
            )
            .replace(
                &format!("\"ociVersion\": \"{spec}\""),
                &format!("\"ociVersion\": \"{ours}\""),
            )
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(self.root.path()) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.run(&["delete", "--force", &id]);
            }
        }
    }
}

/// Rewrite `created` in a state.json (runc's or berth's) so two runs print the same time.
fn set_created(state_json: &std::path::Path, when: &str) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(state_json).unwrap()).unwrap();
    v["created"] = json!(when);
    std::fs::write(state_json, serde_json::to_vec(&v).unwrap()).unwrap();
}

fn pid_alive(pid: i64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
}

/// `list` as runc prints it, byte for byte: two stopped containers (pid 0) with the same ids,
/// times and annotations under runc and berth give the same table, JSON and `-q`; an empty
/// root gives runc's empty table and `null`; a `--root` that does not exist is an error.
#[test]
fn list_prints_what_runc_prints() {
    let runc = Runc::new();
    let root = Root::new();
    let ids = [unique("cl-list"), unique("cl-list-with-a-longer-id")];
    let b = Bundle::with(&["sleep", "100"], |s| {
        s["annotations"] = json!({"org.b": "x<y>", "org.a": "1&2"});
    });
    let bundle = b.path().to_str().unwrap();
    // The same bytes for an empty root.
    for args in [&["list"][..], &["list", "-f", "json"], &["list", "-q"]] {
        assert_eq!(root.ok(args), runc.ok(args), "{args:?} of an empty root");
    }
    let times = ["2026-12-02T00:43:44.5765Z", "2026-12-02T00:43:45Z"];
    for (id, when) in ids.iter().zip(times) {
        root.ok(&["create", "-b", bundle, id]);
        runc.ok(&["create", "-b", bundle, id]);
        for (dir, tool) in [(root.path(), "berth"), (runc.root.path(), "runc")] {
            let pid = if tool == "berth" {
                root.state(id)["pid"].as_i64().unwrap()
            } else {
                let s: Value = serde_json::from_str(&runc.ok(&["state", id])).unwrap();
                s["pid"].as_i64().unwrap()
            };
            set_created(&dir.join(id).join("state.json"), when);
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            wait_for(|| !pid_alive(pid), "the init to die");
        }
    }
    for args in [&["list"][..], &["list", "-f", "json"], &["list", "-q"]] {
        let ours = root.ok(args);
        assert_eq!(ours, runc.ok_as_berth(args), "{args:?}");
        if args.len() == 1 {
            assert!(ours.contains("stopped"), "{ours}");
        }
    }
    // A state dir that does not load: a line on stderr, the rest is listed, exit 0.
    for dir in [root.path(), runc.root.path()] {
        std::fs::create_dir(dir.join("cl-broken")).unwrap();
        std::fs::write(dir.join("cl-broken/state.json"), "{").unwrap();
    }
    let (ours, theirs) = (root.run(&["list", "-q"]), runc.run(&["list", "-q"]));
    assert!(ours.status.success() && theirs.status.success());
    assert_eq!(ours.stdout, theirs.stdout);
    for err in [&ours.stderr, &theirs.stderr] {
        let err = String::from_utf8_lossy(err);
        assert!(err.starts_with("load container cl-broken: "), "{err}");
    }
    for dir in [root.path(), runc.root.path()] {
        std::fs::remove_dir_all(dir.join("cl-broken")).unwrap();
    }
    for id in &ids {
        assert_eq!(
            root.ok(&["state", id]),
            runc.ok_as_berth(&["state", id]),
            "state {id}"
        );
        root.ok(&["delete", id]);
        runc.ok(&["delete", id]);
    }
    // A --root that does not exist: runc 1.5's error (1.1.5 made the directory instead).
    let missing = root.path().join("cl-missing");
    let out = Command::new(BERTH)
        .arg("--root")
        .arg(&missing)
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "open {}: no such file or directory",
            missing.display()
        )),
        "{err}"
    );
    assert!(!missing.exists());
}

/// The names of the keys in a JSON text, in the order they appear (nesting ignored).
fn key_sequence(json: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut chars = json.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut end = i + 1;
        let mut escaped = false;
        for (j, d) in chars.by_ref() {
            if escaped {
                escaped = false;
            } else if d == '\\' {
                escaped = true;
            } else if d == '"' {
                end = j;
                break;
            }
        }
        if json[end + 1..].starts_with(':') {
            keys.push(json[i + 1..end].to_string());
        }
    }
    keys
}

/// `events --stats` prints runc's event, `{"type":"stats","id":…,"data":…}`, with runc's
/// keys in runc's order (cpu, cpuset, memory, pids, blkio, hugetlb, intel_rdt,
/// network_interfaces, and inside each). Keys runc leaves out when they are zero may differ
/// between two containers; every other key must be the same, in the same place.
#[test]
fn events_stats_keys_in_runcs_order() {
    let runc = Runc::new();
    let root = Root::new();
    let id = unique("cl-stats");
    let b = Bundle::with(&["sleep", "1000"], |s| {
        s["linux"]["resources"]["pids"] = json!({"limit": 20});
    });
    let bundle = b.path().to_str().unwrap();
    root.ok(&["run", "-d", "-b", bundle, &id]);
    runc.ok(&["run", "-d", "-b", bundle, &id]);
    let ours = root.ok(&["events", "--stats", &id]);
    let theirs = runc.ok(&["events", "--stats", &id]);
    assert!(
        ours.starts_with(&format!(
            "{{\"type\":\"stats\",\"id\":\"{id}\",\"data\":{{\"cpu\":"
        )),
        "{ours}"
    );
    assert_eq!(ours.lines().count(), 1, "{ours}");
    // runc's omitempty fields: present only when not zero.
    let omitempty = [
        "total",
        "percpu",
        "percpu_kernel",
        "percpu_user",
        "periods",
        "throttledPeriods",
        "throttledTime",
        "cpus",
        "mems",
        "cache",
        "usage",
        "max",
        "current",
        "limit",
        "raw",
    ];
    let fixed = |s: &str| -> Vec<String> {
        key_sequence(s)
            .into_iter()
            .filter(|k| !omitempty.contains(&k.as_str()))
            .collect()
    };
    assert_eq!(fixed(&ours), fixed(&theirs), "ours: {ours}\nrunc: {theirs}");
    // The memory.stat keys come sorted, as Go prints a map.
    let raw: Value = serde_json::from_str(&ours).unwrap();
    assert!(raw["data"]["memory"]["raw"]["total_rss"].is_u64(), "{ours}");
    assert_eq!(raw["data"]["pids"]["limit"], 20);
    assert_eq!(raw["data"]["network_interfaces"], Value::Null);
    for args in [
        &["events", "--interval", "0s", &id][..],
        &["events", "--stats", "nope"],
    ] {
        let (r, o) = (runc.run(args), root.run(args));
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(r.status.code(), Some(1), "runc {args:?}");
    }
    let err = root.fails(&["events", "--interval", "0s", &id]);
    assert!(
        err.contains("duration interval must be greater than 0"),
        "{err}"
    );
    root.ok(&["delete", "--force", &id]);
    runc.ok(&["delete", "--force", &id]);
    assert!(cgroups_named(&id).is_empty(), "{:?}", cgroups_named(&id));
}

/// A running `events` whose lines are collected by a thread; killed on drop.
struct Stream {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Stream {
    fn start(mut cmd: Command) -> Stream {
        use std::io::BufRead;
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        Stream { child, lines }
    }
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
    fn count(&self, kind: &str) -> usize {
        let prefix = format!("{{\"type\":\"{kind}\"");
        self.lines()
            .iter()
            .filter(|l| l.starts_with(&prefix))
            .count()
    }
    /// Waits (bounded) for the stream to end by itself; its exit status.
    fn ends(&mut self) -> std::process::ExitStatus {
        let mut status = None;
        wait_for_secs(
            20,
            || {
                status = self.child.try_wait().unwrap();
                status.is_some()
            },
            "events to end",
        );
        status.unwrap()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `events` streams stats at --interval, reports an OOM kill as `{"type":"oom","id":…}`
/// (the same line runc prints for the same container), and ends by itself when the OOM
/// killer ends the init. A stream on a running container ends when it is deleted.
#[test]
fn events_stream_reports_oom_and_ends_with_the_container() {
    let runc = Runc::new();
    let root = Root::new();
    let id = unique("cl-oom");
    // The init waits for /tmp/go, then holds 64 MiB in a shell variable under a 16 MiB limit.
    let hog = "while [ ! -e /tmp/go ]; do sleep 0.05; done; x=$(head -c 64m /dev/zero | tr '\\0' a); sleep 1000";
    let b = Bundle::with(&["sh", "-c", hog], |s| {
        s["linux"]["resources"]["memory"] = json!({"limit": 16 << 20, "swap": 16 << 20});
    });
    let bundle = b.path().to_str().unwrap();
    let go = b.path().join("rootfs/tmp/go");
    for tool in ["berth", "runc"] {
        let _ = std::fs::remove_file(&go);
        let mut cmd = if tool == "berth" {
            root.ok(&["run", "-d", "-b", bundle, &id]);
            root.cmd()
        } else {
            runc.ok(&["run", "-d", "-b", bundle, &id]);
            let mut c = Command::new("runc");
            c.arg("--root").arg(runc.root.path());
            c
        };
        cmd.args(["events", "--interval", "100ms", &id]);
        let mut events = Stream::start(cmd);
        wait_for(|| events.count("stats") >= 2, "two stats events");
        std::fs::write(&go, "").unwrap();
        wait_for_secs(30, || events.count("oom") >= 1, "an oom event");
        let oom: Vec<String> = events
            .lines()
            .into_iter()
            .filter(|l| l.contains("\"oom\""))
            .collect();
        assert_eq!(
            oom[0],
            format!("{{\"type\":\"oom\",\"id\":\"{id}\"}}"),
            "{tool}"
        );
        if tool == "berth" {
            // The OOM killer took the init: the stream ends by itself.
            assert!(events.ends().success());
            assert_eq!(root.state(&id)["status"], "stopped");
            root.ok(&["delete", &id]);
        } else {
            runc.ok(&["delete", "--force", &id]);
        }
    }
    // A stream on a running container ends when the container is deleted.
    let b = Bundle::new(&["sleep", "1000"]);
    let id = unique("cl-ev-del");
    root.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), &id]);
    let mut cmd = root.cmd();
    cmd.args(["events", "--interval", "100ms", &id]);
    let mut events = Stream::start(cmd);
    wait_for(|| events.count("stats") >= 1, "a stats event");
    root.ok(&["delete", "--force", &id]);
    assert!(events.ends().success());
    assert!(cgroups_named(&id).is_empty());
}

/// `exec --cgroup` as runc: `--cgroup sub` puts the process in the sub-cgroup of every
/// hierarchy (the cgroup2 one of a hybrid host included), `--cgroup memory,pids:sub2` in
/// those two only; a plain exec joins exactly the init's cgroups, the unified `0::` line
/// included. With and without a cgroup namespace, runc and berth print the same
/// /proc/self/cgroup, each relative to its own container cgroup. A missing sub-cgroup, a path
/// out of the container's cgroup and an unknown controller are errors.
#[test]
fn exec_cgroup_joins_sub_cgroups_as_runc() {
    let runc = Runc::new();
    let root = Root::new();
    let mut seen = Vec::new();
    for cgroupns in [false, true] {
        let id = unique("cl-exec-cg");
        let b = Bundle::with(&["sleep", "1000"], |s| {
            let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "cgroup");
            if cgroupns {
                ns.push(json!({"type": "cgroup"}));
            }
        });
        let bundle = b.path().to_str().unwrap();
        for tool in ["berth", "runc"] {
            seen.push(exec_cgroup_case(&root, &runc, tool, bundle, &id, cgroupns));
        }
        assert!(cgroups_named(&id).is_empty(), "{:?}", cgroups_named(&id));
    }
    assert_eq!(
        seen[0], seen[1],
        "berth vs runc, relative to each container's cgroup"
    );
    assert_eq!(seen[2], seen[3], "berth vs runc, in a cgroup namespace");
}

/// One container of `exec_cgroup_joins_sub_cgroups_as_runc`: what `--cgroup sub` and
/// `--cgroup memory,pids:sub2` print, relative to the container's cgroup.
fn exec_cgroup_case(
    root: &Root,
    runc: &Runc,
    tool: &str,
    bundle: &str,
    id: &str,
    cgroupns: bool,
) -> (String, String) {
    let run = |a: &[&str]| {
        if tool == "berth" {
            root.run(a)
        } else {
            runc.run(a)
        }
    };
    let out = run(&["run", "-d", "-b", bundle, id]);
    assert!(
        out.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state: Value = serde_json::from_slice(&run(&["state", id]).stdout).unwrap();
    let init = state["pid"].as_i64().unwrap();
    let host = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    let made: Vec<_> = [
        make_sub_cgroups(init, id, "sub"),
        make_sub_cgroups(init, id, "sub2"),
    ]
    .concat();
    // What a process in the container's cgroup (plus `extra`) sees: host paths, or paths
    // below the namespace's root, the container's cgroup.
    let view = |own: &str, extra: &str| -> String {
        match (cgroupns, extra) {
            (false, "") => own.to_string(),
            (false, e) => format!("{own}/{e}"),
            (true, e) => format!("/{e}"),
        }
    };
    let cat = |extra: &[&str]| -> String {
        let mut a = vec!["exec"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&[id, "cat", "/proc/self/cgroup"]);
        let out = run(&a);
        assert!(
            out.status.success(),
            "{tool} {a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let (plain, all, some) = (
        cat(&[]),
        cat(&["--cgroup", "sub"]),
        cat(&["--cgroup", "memory,pids:sub2"]),
    );
    let lines = cgroup_lines(&host);
    assert_eq!(lines.len(), cgroup_lines(&plain).len(), "{tool}: {plain}");
    for (i, (head, own)) in lines.iter().enumerate() {
        let picked = head.ends_with(":memory") || head.ends_with(":pids");
        let want = [
            view(own, ""),
            view(own, "sub"),
            view(own, if picked { "sub2" } else { "" }),
        ];
        for (text, want) in [&plain, &all, &some].iter().zip(want) {
            let got = &cgroup_lines(text)[i];
            assert_eq!(
                (&got.0, &got.1),
                (head, &want),
                "{tool} cgroupns={cgroupns}: {text}"
            );
        }
    }
    // Refused: nothing runs.
    for bad in [
        &["--cgroup", "memory:nope"][..],
        &["--cgroup", "../x"],
        &["--cgroup", "nosuch:sub"],
    ] {
        let mut a = vec!["exec"];
        a.extend_from_slice(bad);
        a.extend_from_slice(&[id, "true"]);
        let out = run(&a);
        assert!(!out.status.success(), "{tool} {a:?} should fail");
        if tool == "berth" {
            let err = String::from_utf8_lossy(&out.stderr);
            let want = [
                "does not exist",
                "is not a sub cgroup path",
                "unknown controller nosuch",
            ];
            assert!(want.iter().any(|w| err.contains(w)), "{a:?}: {err}");
        }
    }
    let rel = |text: &str| -> String {
        cgroup_lines(text)
            .iter()
            .zip(&lines)
            .map(|((h, p), (_, o))| format!("{h}:{}\n", p.replacen(o.as_str(), "<C>", 1)))
            .collect()
    };
    for d in made.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
    let out = run(&["delete", "--force", id]);
    assert!(
        out.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (rel(&all), rel(&some))
}

/// How berth sees the host's cgroups: as they are, or (on a hybrid host) with the cgroup2
/// tree hidden under a new tmpfs in a private mount namespace, a pure v1 host, where
/// `kill --all` freezes, signals and thaws instead of writing cgroup.kill.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Layout {
    AsIs,
    V1Only,
}

fn berth_in(layout: Layout, root: &Root, args: &[&str]) -> std::process::Output {
    if layout == Layout::AsIs {
        return root.run(args);
    }
    let keep = TempDir::new("cl-oldcg");
    let script = format!("{}exec \"$@\"", hide_cgroup2_script(keep.path()));
    output_through_files(
        Command::new("unshare")
            .args(["-m", "sh", "-c", &script, "sh", BERTH, "--root"])
            .arg(root.path())
            .args(args),
    )
}

/// The pids in a container's pids cgroup and below (read on the host).
fn pids_in(id: &str) -> Vec<i64> {
    let dir = std::path::Path::new("/sys/fs/cgroup/pids/berth").join(id);
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        if let Ok(t) = std::fs::read_to_string(d.join("cgroup.procs")) {
            out.extend(t.lines().filter_map(|l| l.parse::<i64>().ok()));
        }
        if let Ok(entries) = std::fs::read_dir(&d) {
            stack.extend(
                entries
                    .flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.path()),
            );
        }
    }
    out
}

/// A container without a pid namespace of its own, whose init forks: `kill --all` reaches
/// every process (also one forking all the time: the v1 cgroup is frozen meanwhile, and
/// thawed again); `kill ID KILL` kills them all, as runc 1.2+ does, also once the init is
/// gone (`kill ID TERM` then says it is not running); `delete --force` kills them all,
/// those in sub-cgroups of the container's cgroup included, and removes every directory.
/// On a hybrid host it runs twice: as is (cgroup.kill) and with the cgroup2 tree hidden.
#[test]
fn kill_and_delete_reach_every_process_without_a_pid_namespace() {
    let mut layouts = vec![Layout::AsIs];
    if std::path::Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        layouts.push(Layout::V1Only);
    }
    assert!(
        std::path::Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists(),
        "a v1 pids hierarchy"
    );
    let root = Root::new();
    let host_pidns = |args: &[&str]| {
        Bundle::with(args, |s| {
            let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "pid");
            s["linux"]["resources"]["pids"] = json!({"limit": 40});
        })
    };
    let forker = host_pidns(&["sh", "-c", "while :; do sleep 1000 & sleep 0.02; done"]);
    let family = host_pidns(&["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    let orphans = host_pidns(&["sh", "-c", "sleep 1000 & sleep 1000 & exit 0"]);
    for layout in layouts {
        let ok = |args: &[&str]| {
            let out = berth_in(layout, &root, args);
            assert!(
                out.status.success(),
                "{layout:?} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let gone = |id: &str, what: &str| wait_for(|| pids_in(id).is_empty(), what);
        let run = |b: &Bundle, n: usize| -> String {
            let id = unique("cl-kill");
            ok(&["run", "-d", "-b", b.path().to_str().unwrap(), &id]);
            wait_for(|| pids_in(&id).len() >= n, "the container's processes");
            id
        };

        // kill --all TERM, with a process forking meanwhile.
        let id = run(&forker, 6);
        ok(&["kill", "--all", &id, "TERM"]);
        gone(&id, "every process after kill --all TERM");
        let freezer = std::path::Path::new("/sys/fs/cgroup/freezer/berth")
            .join(&id)
            .join("freezer.state");
        assert_eq!(
            std::fs::read_to_string(&freezer).unwrap().trim(),
            "THAWED",
            "{layout:?}"
        );
        ok(&["delete", &id]);

        // kill KILL, no --all: every process.
        let id = run(&family, 3);
        ok(&["kill", &id, "KILL"]);
        gone(&id, "every process after kill KILL");
        ok(&["delete", &id]);

        // The init is gone, its children are not: TERM is refused, KILL reaches them.
        let id = run(&orphans, 2);
        wait_for(|| pids_in(&id).len() == 2, "the init to exit");
        let out = berth_in(layout, &root, &["kill", &id, "TERM"]);
        assert!(
            !out.status.success(),
            "{layout:?}: TERM after the init is gone"
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
        assert_eq!(pids_in(&id).len(), 2);
        ok(&["kill", &id, "KILL"]);
        gone(&id, "the orphans after kill KILL");
        ok(&["delete", &id]);

        // delete --force: every process, in sub-cgroups too, and every directory.
        let id = run(&family, 3);
        let made = make_sub_cgroups(pids_in(&id)[0], &id, "sub");
        let nested: Vec<_> = made.iter().map(|d| d.join("deeper")).collect();
        for d in &nested {
            std::fs::create_dir(d).unwrap();
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if d.join(f).exists() {
                    std::fs::write(
                        d.join(f),
                        std::fs::read(d.parent().unwrap().join(f)).unwrap(),
                    )
                    .unwrap();
                }
            }
        }
        ok(&["exec", "-d", "--cgroup", "sub/deeper", &id, "sleep", "999"]);
        ok(&["exec", "-d", "--cgroup", "memory:sub", &id, "sleep", "998"]);
        wait_for(|| pids_in(&id).len() >= 4, "the exec'd processes");
        let before = pids_in(&id);
        ok(&["delete", "--force", &id]);
        for pid in before {
            assert!(
                !pid_alive(pid),
                "{layout:?}: pid {pid} survived delete --force"
            );
        }
        assert!(
            cgroups_named(&id).is_empty(),
            "{layout:?}: {:?}",
            cgroups_named(&id)
        );
    }
    assert!(root.is_empty());
}

/// Takes the hugetlb bit of a cgroup2 directory's `cgroup.subtree_control` back off on drop
/// when it was off before (berth turns it on in the ancestors of a cgroup that needs it).
struct HugetlbBit(std::path::PathBuf, bool);

impl HugetlbBit {
    fn save(dir: &std::path::Path) -> HugetlbBit {
        let on = std::fs::read_to_string(dir.join("cgroup.subtree_control"))
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| c == "hugetlb");
        HugetlbBit(dir.to_path_buf(), on)
    }
}

impl Drop for HugetlbBit {
    fn drop(&mut self) {
        if !self.1 {
            let _ = std::fs::write(self.0.join("cgroup.subtree_control"), "-hugetlb");
        }
    }
}

/// linux.resources.hugepageLimits on this host: hugetlb lives in the cgroup2 tree of a
/// hybrid host (or a v1 hierarchy, or v2). create writes each page size's limit (and the
/// reservation limit where the kernel has it, as runc), `events --stats` reports the sizes as
/// runc reads them, `update -r` changes a limit, and a page size the kernel lacks fails
/// create with an error naming it and leaves nothing.
#[test]
fn hugepage_limits_at_create_and_update() {
    let v1 = std::path::Path::new("/sys/fs/cgroup/hugetlb");
    let v2 = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        std::path::Path::new("/sys/fs/cgroup")
    } else {
        std::path::Path::new("/sys/fs/cgroup/unified")
    };
    let in_v2 = std::fs::read_to_string(v2.join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .any(|c| c == "hugetlb");
    if !v1.join("cgroup.procs").exists() && !in_v2 {
        skip!("no hugetlb controller on this host");
    }
    let (base, suffix) = if v1.join("cgroup.procs").exists() {
        (v1, "limit_in_bytes")
    } else {
        (v2, "max")
    };
    let _bit = HugetlbBit::save(v2);
    let root = Root::new();
    let parent = unique("cl-huge");
    let id = unique("cl-huge");
    let limits = |mb2: u64| json!([{"pageSize": "2MB", "limit": mb2 << 20}, {"pageSize": "1GB", "limit": 0}]);
    let b = Bundle::with(&["sleep", "1000"], |s| {
        s["linux"]["cgroupsPath"] = json!(format!("/{parent}/{id}"));
        s["linux"]["resources"]["hugepageLimits"] = limits(4);
    });
    root.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), &id]);
    let dir = base.join(&parent).join(&id);
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(
        read(&format!("hugetlb.2MB.{suffix}")),
        (4u64 << 20).to_string()
    );
    assert_eq!(read(&format!("hugetlb.1GB.{suffix}")), "0");
    let rsvd = format!("hugetlb.2MB.rsvd.{suffix}");
    if dir.join(&rsvd).exists() {
        assert_eq!(read(&rsvd), (4u64 << 20).to_string());
    }
    let stats: Value = serde_json::from_str(&root.ok(&["events", "--stats", &id])).unwrap();
    let huge = &stats["data"]["hugetlb"];
    assert_eq!(huge["2MB"]["failcnt"], 0, "{huge}");
    assert!(huge["1GB"].is_object(), "{huge}");
    if base == v2 {
        assert!(
            huge["2MB"].get("max").is_none(),
            "cgroup2 has no peak: {huge}"
        );
    }
    // update -r: the 2MB limit changes.
    let patch = TempDir::new("cl-huge-patch");
    let file = patch.path().join("r.json");
    std::fs::write(&file, json!({"hugepageLimits": limits(8)}).to_string()).unwrap();
    root.ok(&["update", "-r", file.to_str().unwrap(), &id]);
    assert_eq!(
        read(&format!("hugetlb.2MB.{suffix}")),
        (8u64 << 20).to_string()
    );
    root.ok(&["delete", "--force", &id]);
    assert!(
        !base.join(&parent).exists(),
        "the parent berth made is gone"
    );

    // A page size the kernel does not have.
    let id = unique("cl-huge-bad");
    let b = Bundle::with(&["true"], |s| {
        s["linux"]["cgroupsPath"] = json!(format!("/{parent}/{id}"));
        s["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "3MB", "limit": 1}]);
    });
    let err = root.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(err.contains("3MB"), "{err}");
    assert_nothing_left(&root, &id, &b);
    assert!(!base.join(&parent).exists());
}

/// Output to a reader that has gone (`berth state ID | head -c1`): berth ends silently by
/// SIGPIPE, as runc does (Go dies of SIGPIPE on a broken stdout), not with a panic or an
/// error line. The pipe's read end is closed before berth starts, so every write fails.
#[test]
fn output_to_a_closed_pipe_ends_by_sigpipe_as_runc() {
    use std::os::unix::process::ExitStatusExt;
    let root = Root::new();
    let id = unique("cl-pipe");
    let b = Bundle::new(&["sleep", "100"]);
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    let rr = root.path().to_str().unwrap().to_string();
    let runc_root = TempDir::new("cl-pipe-runc");
    let runc_rr = runc_root.path().to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (BERTH, vec!["--root", &rr, "state", &id]),
        (BERTH, vec!["--root", &rr, "list"]),
        (BERTH, vec!["--root", &rr, "ps", &id]),
        (BERTH, vec!["--root", &rr, "events", "--stats", &id]),
        (BERTH, vec!["features"]),
        (BERTH, vec!["--version"]),
        ("runc", vec!["--root", &runc_rr, "list"]),
    ];
    for (bin, args) in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(bin)
            .args(&args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{bin} {args:?}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{bin} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    root.ok(&["delete", "--force", &id]);
}
