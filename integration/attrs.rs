//! Per-process attributes, read back from inside the container or from /proc and the
//! kernel for the init and an exec'd process: linux.memoryPolicy, process.ioPriority,
//! process.scheduler, linux.personality and process.execCPUAffinity. Bad values fail with
//! a clear error and leave nothing behind.
mod common;

use std::process::Command;

use berth::sys::sched;
use common::*;
use serde_json::{json, Value};

/// A config with the attribute fields edited by `edit`, run in the foreground: stdout.
fn run_out(args: &[&str], edit: impl FnOnce(&mut Value)) -> String {
    let root = Root::new();
    let id = unique("feat-attr");
    let b = Bundle::with(args, edit);
    let (code, out, err) = root.run_bundle(&b, &id);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    out
}

/// A create that must fail: the error, after checking nothing is left behind.
fn create_fails(edit: impl FnOnce(&mut Value)) -> String {
    let root = Root::new();
    let id = unique("feat-attr");
    let b = Bundle::with(&["true"], edit);
    let err = root.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert_nothing_left(&root, &id, &b);
    err
}

/// A created-and-started container running `sleep`, with its init's pid.
struct Running {
    root: Root,
    id: String,
    b: Bundle,
    pid: i32,
}

fn running(edit: impl FnOnce(&mut Value)) -> Running {
    let root = Root::new();
    let id = unique("feat-attr");
    let b = Bundle::with(&["sleep", "60"], edit);
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    root.ok(&["start", &id]);
    let pid = root.state(&id)["pid"].as_i64().unwrap() as i32;
    Running { root, id, b, pid }
}

impl Running {
    /// `exec --process` of the config's process with `args`, edited; stdout.
    fn exec(&self, args: &[&str], edit: impl FnOnce(&mut Value)) -> String {
        let mut p = self.b.config()["process"].clone();
        p["args"] = json!(args);
        edit(&mut p);
        let f = self.b.path().join(unique("process.json"));
        std::fs::write(&f, p.to_string()).unwrap();
        self.root
            .ok(&["exec", "--process", f.to_str().unwrap(), &self.id])
    }

    /// Detached `exec --process`: the exec'd process's host pid.
    fn exec_detached(&self, edit: impl FnOnce(&mut Value)) -> i32 {
        let mut p = self.b.config()["process"].clone();
        p["args"] = json!(["sleep", "60"]);
        edit(&mut p);
        let f = self.b.path().join(unique("process.json"));
        std::fs::write(&f, p.to_string()).unwrap();
        let pidfile = self.b.path().join(unique("exec.pid"));
        self.root.ok(&[
            "exec",
            "-d",
            "--pid-file",
            pidfile.to_str().unwrap(),
            "--process",
            f.to_str().unwrap(),
            &self.id,
        ]);
        std::fs::read_to_string(&pidfile).unwrap().parse().unwrap()
    }
}

// ---- linux.memoryPolicy -------------------------------------------------------------

/// The policy numa_maps shows for the first mapping (the task's policy when the mapping has
/// none of its own).
fn numa_policy(numa_maps: &str) -> String {
    numa_maps
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn memory_policy_every_mode_in_numa_maps() {
    let cases = [
        ("MPOL_DEFAULT", "", vec![], "default"),
        ("MPOL_BIND", "0", vec![], "bind:0"),
        ("MPOL_INTERLEAVE", "0", vec![], "interleave:0"),
        (
            "MPOL_WEIGHTED_INTERLEAVE",
            "0",
            vec![],
            "weighted interleave:0",
        ),
        ("MPOL_PREFERRED", "0", vec![], "prefer:0"),
        ("MPOL_PREFERRED_MANY", "0", vec![], "prefer (many):0"),
        ("MPOL_LOCAL", "", vec![], "local"),
        (
            "MPOL_BIND",
            "0",
            vec!["MPOL_F_STATIC_NODES"],
            "bind=static:0",
        ),
        (
            "MPOL_INTERLEAVE",
            "0",
            vec!["MPOL_F_RELATIVE_NODES"],
            "interleave=relative:0",
        ),
        (
            "MPOL_BIND",
            "0",
            vec!["MPOL_F_NUMA_BALANCING"],
            "bind=balancing:0",
        ),
    ];
    for (mode, nodes, flags, want) in cases {
        let out = run_out(&["cat", "/proc/self/numa_maps"], |s| {
            let mut p = json!({"mode": mode});
            if !nodes.is_empty() {
                p["nodes"] = json!(nodes);
            }
            if !flags.is_empty() {
                p["flags"] = json!(flags);
            }
            s["linux"]["memoryPolicy"] = p;
        });
        // After the address; "prefer (many)" and "weighted interleave" hold a space.
        let first = out.lines().next().unwrap_or_default();
        let policy = first.split_once(' ').map_or("", |(_, rest)| rest);
        let got = if policy.starts_with(&format!("{want} ")) {
            want
        } else {
            policy
        };
        assert_eq!(got, want, "{mode} {flags:?}: {first}");
    }
}

#[test]
fn memory_policy_applies_to_init_and_exec() {
    let c = running(|s| {
        s["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    });
    let init_maps = std::fs::read_to_string(format!("/proc/{}/numa_maps", c.pid)).unwrap();
    assert_eq!(numa_policy(&init_maps), "bind:0", "{init_maps}");
    let out = c.exec(
        &[
            "sh",
            "-c",
            "head -1 /proc/self/numa_maps; grep Mems_allowed_list /proc/self/status",
        ],
        |_| {},
    );
    assert_eq!(numa_policy(&out), "bind:0", "{out}");
    assert!(out.contains("Mems_allowed_list:\t0"), "{out}");
}

#[test]
fn memory_policy_bad_values() {
    let e = create_fails(|s| s["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND"}));
    assert!(
        e.contains("linux.memoryPolicy: nodes: MPOL_BIND needs at least one node"),
        "{e}"
    );
    let e = create_fails(|s| s["linux"]["memoryPolicy"] = json!({"mode": "MPOL_NOPE"}));
    assert!(
        e.contains("linux.memoryPolicy.mode: unknown variant `MPOL_NOPE`"),
        "{e}"
    );
    let e = create_fails(|s| {
        s["linux"]["memoryPolicy"] =
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NOPE"]})
    });
    assert!(
        e.contains("linux.memoryPolicy.flags[0]: unknown variant `MPOL_F_NOPE`"),
        "{e}"
    );
    let e = create_fails(|s| {
        s["linux"]["memoryPolicy"] = json!({"mode": "MPOL_INTERLEAVE", "nodes": "0",
            "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]})
    });
    assert!(e.contains("exclude each other"), "{e}");
    let e = create_fails(|s| {
        s["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0,4095"})
    });
    assert!(
        e.contains("node 4095 is beyond this kernel's highest node"),
        "{e}"
    );
    let e =
        create_fails(|s| s["linux"]["memoryPolicy"] = json!({"mode": "MPOL_LOCAL", "nodes": "0"}));
    assert!(e.contains("MPOL_LOCAL takes no nodes"), "{e}");
    // The kernel's own refusal (NUMA balancing is for BIND and PREFERRED_MANY only): EINVAL.
    let e = create_fails(|s| {
        s["linux"]["memoryPolicy"] = json!({"mode": "MPOL_INTERLEAVE", "nodes": "0",
            "flags": ["MPOL_F_NUMA_BALANCING"]})
    });
    assert!(
        e.contains("memoryPolicy: set_mempolicy") && e.contains("EINVAL"),
        "{e}"
    );
}

// ---- process.ioPriority ------------------------------------------------------------

#[test]
fn io_priority_for_init_and_exec() {
    let c = running(|s| {
        s["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 3});
    });
    let prio = sched::ioprio_get(sched::IOPRIO_WHO_PROCESS, c.pid).unwrap();
    assert_eq!((prio >> 13, prio & 7), (2, 3), "BE/3 on the init");
    let pid = c.exec_detached(|p| {
        p["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    });
    let prio = sched::ioprio_get(sched::IOPRIO_WHO_PROCESS, pid).unwrap();
    assert_eq!(prio >> 13, 3, "IDLE on the exec'd process");
    let pid = c.exec_detached(|p| {
        p["ioPriority"] = json!({"class": "IOPRIO_CLASS_RT", "priority": 1});
    });
    let prio = sched::ioprio_get(sched::IOPRIO_WHO_PROCESS, pid).unwrap();
    assert_eq!((prio >> 13, prio & 7), (1, 1), "RT/1 on the exec'd process");
}

#[test]
fn io_priority_bad_values() {
    let e = create_fails(|s| {
        s["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 8})
    });
    assert!(
        e.contains("process.ioPriority: priority: 8 is outside 0..7"),
        "{e}"
    );
    let e = create_fails(|s| {
        s["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_NOPE", "priority": 0})
    });
    assert!(e.contains("process.ioPriority.class"), "{e}");
}

// ---- process.scheduler -------------------------------------------------------------

#[test]
fn scheduler_for_init_and_exec() {
    let c = running(|s| {
        s["process"]["scheduler"] =
            json!({"policy": "SCHED_BATCH", "nice": 7, "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
    });
    let a = sched::sched_getattr(c.pid).unwrap();
    assert_eq!((a.policy, a.nice), (3, 7), "SCHED_BATCH nice 7: {a:?}");
    // What the init forks keeps a negative nice (prio 115), unless SCHED_FLAG_RESET_ON_FORK.
    for (flags, want) in [
        (json!([]), "115"),
        (json!(["SCHED_FLAG_RESET_ON_FORK"]), "120"),
    ] {
        let out = run_out(&["sh", "-c", "grep '^prio ' /proc/self/sched; true"], |s| {
            s["process"]["scheduler"] =
                json!({"policy": "SCHED_BATCH", "nice": -5, "flags": flags});
        });
        assert_eq!(
            out.split(':').nth(1).map(str::trim),
            Some(want),
            "{flags}: {out}"
        );
    }
    let pid = c.exec_detached(|p| {
        p["scheduler"] = json!({"policy": "SCHED_IDLE"});
    });
    assert_eq!(
        sched::sched_getattr(pid).unwrap().policy,
        5,
        "SCHED_IDLE on exec"
    );
    // SCHED_DEADLINE: the container's cgroup has every CPU of the root domain.
    let pid = c.exec_detached(|p| {
        p["scheduler"] = json!({"policy": "SCHED_DEADLINE", "runtime": 1_000_000u64,
            "deadline": 10_000_000u64, "period": 10_000_000u64});
    });
    let a = sched::sched_getattr(pid).unwrap();
    assert_eq!(
        (a.policy, a.runtime, a.period),
        (6, 1_000_000, 10_000_000),
        "{a:?}"
    );
}

#[test]
fn scheduler_deadline_needs_the_whole_root_domain() {
    // Applied after the process joined its cgroup: a SCHED_DEADLINE task must be allowed on
    // every CPU of its root domain, which a cpuset of one CPU (of two) is not.
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        skip!("needs two CPUs");
    }
    let dl = json!({"policy": "SCHED_DEADLINE", "runtime": 1_000_000u64,
        "deadline": 10_000_000u64, "period": 10_000_000u64});
    // The init: limits are written before it sets its scheduler, as with runc.
    let e = create_fails(|s| {
        s["linux"]["resources"]["cpu"] = json!({"cpus": "1"});
        s["process"]["scheduler"] = dl.clone();
    });
    assert!(
        e.contains("scheduler: sched_setattr(SCHED_DEADLINE") && e.contains("EPERM"),
        "{e}"
    );
    // An exec'd process.
    let c = running(|s| s["linux"]["resources"]["cpu"] = json!({"cpus": "1"}));
    let mut p = c.b.config()["process"].clone();
    p["args"] = json!(["true"]);
    p["scheduler"] = json!({"policy": "SCHED_DEADLINE", "runtime": 1_000_000u64,
        "deadline": 10_000_000u64, "period": 10_000_000u64});
    let f = c.b.path().join("dl.json");
    std::fs::write(&f, p.to_string()).unwrap();
    let e = c
        .root
        .fails(&["exec", "--process", f.to_str().unwrap(), &c.id]);
    assert!(
        e.contains("scheduler: sched_setattr(SCHED_DEADLINE") && e.contains("EPERM"),
        "{e}"
    );
}

#[test]
fn scheduler_bad_values() {
    let e =
        create_fails(|s| s["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "nice": 20}));
    assert!(e.contains("invalid scheduler.nice: 20"), "{e}");
    let e = create_fails(|s| {
        s["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "priority": 3})
    });
    assert!(
        e.contains("scheduler.priority can only be specified for SchedFIFO or SchedRR policy"),
        "{e}"
    );
    let e = create_fails(|s| {
        s["process"]["scheduler"] = json!({"policy": "SCHED_RR", "priority": 1, "runtime": 5})
    });
    assert!(
        e.contains("runtime/deadline/period can only be specified for SchedDeadline"),
        "{e}"
    );
    // The kernel's refusal: SCHED_FIFO priority 0 is EINVAL.
    let e = create_fails(|s| s["process"]["scheduler"] = json!({"policy": "SCHED_FIFO"}));
    assert!(
        e.contains("scheduler: sched_setattr(SCHED_FIFO") && e.contains("EINVAL"),
        "{e}"
    );
}

// ---- linux.personality -------------------------------------------------------------

#[test]
fn personality_for_init_and_exec() {
    let out = run_out(&["uname", "-m"], |s| {
        s["linux"]["personality"] = json!({"domain": "LINUX32"});
    });
    assert_eq!(out.trim(), "i686");
    let out = run_out(&["uname", "-m"], |s| {
        s["linux"]["personality"] = json!({"domain": "LINUX"});
    });
    assert_eq!(out.trim(), "x86_64");
    let c = running(|s| {
        s["linux"]["personality"] = json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]});
    });
    let p = std::fs::read_to_string(format!("/proc/{}/personality", c.pid)).unwrap();
    assert_eq!(
        p.trim(),
        "00040008",
        "LINUX32 | ADDR_NO_RANDOMIZE on the init"
    );
    let out = c.exec(
        &["sh", "-c", "uname -m; cat /proc/self/personality"],
        |_| {},
    );
    assert_eq!(out, "i686\n00040008\n");
}

#[test]
fn personality_bad_values_and_a_profile_that_denies_it() {
    let e = create_fails(|s| s["linux"]["personality"] = json!({"domain": "LINUX64"}));
    assert!(e.contains("linux.personality.domain"), "{e}");
    let e =
        create_fails(|s| s["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["NOPE"]}));
    assert!(
        e.contains("linux.personality: flags[0]: unknown personality flag \"NOPE\""),
        "{e}"
    );
    // As with runc, personality(2) comes after seccomp: a profile that denies it fails create.
    for nnp in [true, false] {
        let e = create_fails(|s| {
            s["process"]["noNewPrivileges"] = json!(nnp);
            s["linux"]["personality"] = json!({"domain": "LINUX32"});
            s["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
            });
        });
        assert!(
            e.contains("personality: personality(0x8)") && e.contains("EPERM"),
            "{e}"
        );
    }
}

// ---- process.execCPUAffinity -------------------------------------------------------

fn cpus_allowed(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `berth ARGS` pinned to CPU 0 (as a caller pinned by its own parent would be). Output
/// through files: a created container holds its stdio open.
fn pinned(root: &Root, args: &[&str]) -> String {
    let tmp = TempDir::new("feat-out");
    let (o, e) = (tmp.path().join("out"), tmp.path().join("err"));
    let status = Command::new("taskset")
        .args(["-c", "0", BERTH, "--root"])
        .arg(root.path())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .status()
        .unwrap();
    let err = std::fs::read_to_string(&e).unwrap();
    assert!(status.success(), "{args:?}: {err}");
    std::fs::read_to_string(&o).unwrap()
}

#[test]
fn cpu_affinity_initial_final_and_reset() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        skip!("needs two CPUs");
    }
    let all = format!("0-{}", cpus - 1);
    let root = Root::new();
    let id = unique("feat-aff");
    let b = Bundle::with(&["sleep", "60"], |_| {});
    // Neither set: the pinned caller's affinity is not inherited.
    pinned(&root, &["create", "-b", b.path().to_str().unwrap(), &id]);
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(cpus_allowed(&st), all, "init reset to every CPU");
    root.ok(&["start", &id]);
    let out = pinned(
        &root,
        &[
            "exec",
            &id,
            "grep",
            "Cpus_allowed_list",
            "/proc/self/status",
        ],
    );
    assert_eq!(cpus_allowed(&out), all, "exec reset");

    // Through a process.json: final wins; initial alone stays.
    let c = Running {
        root,
        id,
        b,
        pid: pid as i32,
    };
    let out = c.exec(&["grep", "Cpus_allowed_list", "/proc/self/status"], |p| {
        p["execCPUAffinity"] = json!({"initial": "0", "final": "1"});
    });
    assert_eq!(cpus_allowed(&out), "1");
    let out = c.exec(&["grep", "Cpus_allowed_list", "/proc/self/status"], |p| {
        p["execCPUAffinity"] = json!({"initial": "1"});
    });
    assert_eq!(cpus_allowed(&out), "1");
    // The caller's own affinity is restored after the fork.
    let me = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(cpus_allowed(&me), all);

    // For the init too (run).
    let out = run_out(&["grep", "Cpus_allowed_list", "/proc/self/status"], |s| {
        s["process"]["execCPUAffinity"] = json!({"final": "0"});
    });
    assert_eq!(cpus_allowed(&out), "0");
}

/// Without execCPUAffinity.initial the parent moves the init off its own CPU for the time of
/// the create (`sys::sched::run_elsewhere`): neither the container's process nor a
/// createContainer hook, which runs before the program sets its affinity, sees that.
#[test]
fn the_init_working_on_another_cpu_leaves_no_trace() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        skip!("needs two CPUs");
    }
    let ours = cpus_allowed(&std::fs::read_to_string("/proc/self/status").unwrap());
    let dir = TempDir::new("feat-aff-hook");
    let log = dir.path().join("hook");
    let hook = json!({"path": "/bin/sh", "args": ["sh", "-c",
        format!("grep Cpus_allowed_list /proc/self/status > {}", log.display())]});
    let out = run_out(&["grep", "Cpus_allowed_list", "/proc/self/status"], |s| {
        s["hooks"] = json!({"createContainer": [hook]});
    });
    assert_eq!(cpus_allowed(&out), ours, "the container's process");
    let hook = std::fs::read_to_string(&log).unwrap();
    assert_eq!(cpus_allowed(&hook), ours, "the createContainer hook");
}

#[test]
fn cpu_affinity_reset_is_bounded_by_the_cpuset() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        skip!("needs two CPUs");
    }
    let root = Root::new();
    let id = unique("feat-aff");
    let b = Bundle::with(&["sleep", "60"], |s| {
        s["linux"]["resources"]["cpu"] = json!({"cpus": "1"});
    });
    pinned(&root, &["create", "-b", b.path().to_str().unwrap(), &id]);
    root.ok(&["start", &id]);
    let out = pinned(
        &root,
        &[
            "exec",
            &id,
            "grep",
            "Cpus_allowed_list",
            "/proc/self/status",
        ],
    );
    assert_eq!(cpus_allowed(&out), "1");
}

#[test]
fn cpu_affinity_bad_values() {
    let e = create_fails(|s| s["process"]["execCPUAffinity"] = json!({"initial": "0-x"}));
    assert!(e.contains("Invalid execCPUAffinity format"), "{e}");
    let e = create_fails(|s| s["process"]["execCPUAffinity"] = json!({"final": "5000"}));
    assert!(
        e.contains("process.execCPUAffinity: final: \"5000\": 5000 is beyond the maximum"),
        "{e}"
    );
    let e = create_fails(|s| s["process"]["execCPUAffinity"] = json!({"final": "1-0"}));
    assert!(e.contains("backwards"), "{e}");
}

#[test]
fn features_list_memory_policy() {
    let root = Root::new();
    let f: Value = serde_json::from_str(&root.ok(&["features"])).unwrap();
    let modes = f["linux"]["memoryPolicy"]["modes"].as_array().unwrap();
    assert_eq!(modes.len(), 7, "{modes:?}");
    assert!(modes.contains(&json!("MPOL_WEIGHTED_INTERLEAVE")));
    let flags = f["linux"]["memoryPolicy"]["flags"].as_array().unwrap();
    assert!(flags.contains(&json!("MPOL_F_NUMA_BALANCING")), "{flags:?}");
    assert_eq!(f["linux"]["intelRdt"]["enabled"], false);
    assert_eq!(f["linux"]["netDevices"]["enabled"], true);
}

#[test]
fn intel_rdt_is_refused_like_features_says() {
    let e = create_fails(|s| s["linux"]["intelRdt"] = json!({"closID": "feat"}));
    assert!(
        e.contains(
            "linux.intelRdt: intelRdt is specified in config, but Intel RDT is not supported"
        ),
        "{e}"
    );
}
