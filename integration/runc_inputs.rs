//! Inputs runc users feed (issue 7, items 1-13): seccomp profiles of the classic kind, the
//! fds a caller leaves open, failures inside the container's processes, and the command line
//! as runc users type it.
mod common;

use common::*;
use serde_json::{json, Value};

/// Syscalls added to Linux in 2019 and later: a pre-2019 allow list has none of them.
const NEWER: &[&str] = &[
    "pidfd_send_signal",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "pidfd_open",
    "clone3",
    "close_range",
    "openat2",
    "pidfd_getfd",
    "faccessat2",
    "process_madvise",
    "epoll_pwait2",
    "mount_setattr",
    "quotactl_fd",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    "memfd_secret",
    "process_mrelease",
    "futex_waitv",
    "set_mempolicy_home_node",
    "cachestat",
    "fchmodat2",
    "map_shadow_stack",
    "futex_wake",
    "futex_wait",
    "futex_requeue",
    "statmount",
    "listmount",
    "lsm_get_self_attr",
    "lsm_set_self_attr",
    "lsm_list_modules",
    "mseal",
];

/// A suite-style profile: defaultAction SCMP_ACT_ERRNO and a classic allow list (docker's
/// unconditional allows without anything from 2019 on), plus a rule with no names, which
/// runc skips.
fn classic_profile() -> Value {
    let docker: Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/testdata/engine-configs/seccomp-docker-default.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut names: Vec<String> = Vec::new();
    for r in docker["syscalls"].as_array().unwrap() {
        let unconditional = r.get("args").is_none_or(|a| a.is_null())
            && r.get("includes")
                .is_none_or(|i| i.as_object().is_none_or(|o| o.is_empty()));
        if r["action"] == "SCMP_ACT_ALLOW" && unconditional {
            for n in r["names"].as_array().unwrap() {
                let n = n.as_str().unwrap();
                if !NEWER.contains(&n) && !names.iter().any(|m| m == n) {
                    names.push(n.to_string());
                }
            }
        }
    }
    // docker allows clone with conditions on its flags; a classic list allows it outright.
    names.extend(["clone".to_string(), "fork".to_string(), "vfork".to_string()]);
    assert!(names.len() > 250, "{}", names.len());
    assert!(!names.iter().any(|n| n == "close_range" || n == "clone3"));
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": [], "action": "SCMP_ACT_ALLOW"},
        ]
    })
}

#[test]
fn a_classic_seccomp_profile_runs_in_both_no_new_privileges_modes() {
    for nnp in [false, true] {
        let root = Root::new();
        let id = unique("seccomp-classic");
        let b = Bundle::with(&["sh", "-c", "echo started; sleep 30"], |s| {
            s["linux"]["seccomp"] = classic_profile();
            s["process"]["noNewPrivileges"] = json!(nnp);
            // A user change after the filter, as with engines' non-root users.
            s["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        });
        let (code, out, err) = root.run_bundle(
            &Bundle::with(&["sh", "-c", "echo ran"], |s| {
                s["linux"]["seccomp"] = classic_profile();
                s["process"]["noNewPrivileges"] = json!(nnp);
            }),
            &id,
        );
        assert_eq!((code, out.trim()), (0, "ran"), "nnp={nnp}: {err}");
        // create, start, exec (the exec'd process goes through the same setup).
        let id = unique("seccomp-classic");
        root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
        root.ok(&["start", &id]);
        let out = root.ok(&["exec", &id, "sh", "-c", "id -u; echo exec-ok"]);
        assert_eq!(out.trim(), "1000\nexec-ok", "nnp={nnp}");
        root.ok(&["delete", "--force", &id]);
    }
}

/// The fds > 2 of a process and what they point at.
fn fds_above_stdio(pid: &str) -> Vec<(u32, String)> {
    let mut v: Vec<(u32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n: u32 = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?.display().to_string();
            (n > 2).then_some((n, target))
        })
        .collect();
    v.sort();
    v
}

/// Wait (bounded) until the process has exec'd the container's `sleep`.
fn wait_until_running_sleep(pid: &str) {
    let comm = format!("/proc/{pid}/comm");
    wait_for(
        || std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep"),
        "the container's process to exec sleep",
    );
}

#[test]
fn the_init_and_exec_hold_only_what_they_were_given() {
    let root = Root::new();
    let id = unique("fds");
    let b = Bundle::new(&["sleep", "100"]);
    let stray = TempDir::new("berth-stray");
    let stray_file = stray.path().join("caller-output");
    // The caller leaves an fd open (as a test runner's output file is), through a shell.
    // Output to files, not pipes: the container's processes inherit stdout and stderr.
    let err_file = stray.path().join("stderr");
    let sh = |args: &str| {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec {BERTH} --root {} {args} 7>>{} >/dev/null 2>{}",
                root.path().display(),
                stray_file.display(),
                err_file.display()
            ))
            .status()
            .unwrap();
        let err = std::fs::read_to_string(&err_file).unwrap_or_default();
        assert!(status.success(), "{args}: {err}");
    };
    sh(&format!("create -b {} {id}", b.path().display()));
    let pid = root.state(&id)["pid"].to_string();
    let fds = fds_above_stdio(&pid);
    assert_eq!(
        fds.len(),
        2,
        "a created init holds only the sync socket and the fifo: {fds:?}"
    );
    assert!(
        fds.iter().any(|(_, t)| t.ends_with("/exec.fifo")),
        "{fds:?}"
    );
    assert!(fds.iter().any(|(_, t)| t.starts_with("socket:")), "{fds:?}");
    root.ok(&["start", &id]);
    // start returns once the init has read the fifo, a moment before its execve.
    wait_until_running_sleep(&pid);
    assert_eq!(
        fds_above_stdio(&pid),
        vec![],
        "the program holds stdio only"
    );
    let pid_file = stray.path().join("exec.pid");
    sh(&format!(
        "exec -d --pid-file {} {id} sleep 100",
        pid_file.display()
    ));
    let epid = std::fs::read_to_string(&pid_file).unwrap();
    wait_until_running_sleep(epid.trim());
    assert_eq!(
        fds_above_stdio(epid.trim()),
        vec![],
        "an exec'd process holds stdio only"
    );
    root.ok(&["delete", "--force", &id]);
}

#[test]
fn kill_zero_kill_after_exit_and_update_memory_unlimited() {
    let root = Root::new();
    let id = unique("kill0");
    let b = Bundle::new(&["sleep", "100"]);
    root.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), &id]);
    // kill(2) with signal 0: the container is alive.
    root.ok(&["kill", &id, "0"]);
    // -1 means unlimited, as with runc (parsed as a value, not a flag).
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let file = cgroup_file(
        pid,
        "memory",
        if v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        },
    );
    let limit = || std::fs::read_to_string(&file).unwrap().trim().to_string();
    root.ok(&["update", "--memory", "64m", &id]);
    assert_eq!(limit(), "67108864");
    root.ok(&["update", "--memory", "-1", &id]);
    let l = limit();
    assert!(l == "max" || l.parse::<u64>().unwrap() > 1 << 62, "{l}");
    root.ok(&["kill", &id, "KILL"]);
    wait_for(|| root.state(&id)["status"] == "stopped", "the init to die");
    let err = root.fails(&["kill", &id, "0"]);
    assert!(err.contains("is not running"), "{err}");
    // A KILL once the init is gone succeeds, as runc's.
    root.ok(&["kill", &id, "KILL"]);
    root.ok(&["delete", &id]);
}

/// The error a failed child must never reduce to: only the broken channel.
fn names_a_cause(err: &str) {
    assert!(
        !err.trim().ends_with("EPIPE: Broken pipe") && !err.trim().ends_with("exited"),
        "only the channel, no cause: {err}"
    );
}

/// A profile that kills the init during create, in both no_new_privileges modes (the filter
/// early, and as late as possible): the error says how it died and after which step, and
/// nothing is left.
#[test]
fn an_init_killed_by_its_profile_is_reported_as_killed() {
    for (action, nnp) in [("SCMP_ACT_KILL", false), ("SCMP_ACT_KILL_PROCESS", true)] {
        let root = Root::new();
        let id = unique("cp-seccomp-kill");
        let b = Bundle::with(&["true"], |s| {
            s["linux"]["seccomp"] = json!({"defaultAction": action, "syscalls": []});
            s["process"]["noNewPrivileges"] = json!(nnp);
        });
        let err = root.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
        assert!(
            err.contains("the container init was killed by SIGSYS"),
            "{action}: {err}"
        );
        assert!(err.contains("after its step 'seccomp'"), "{action}: {err}");
        names_a_cause(&err);
        assert_nothing_left(&root, &id, &b);
    }
}

/// A profile that kills an exec'd process before its execve: rt_sigaction, which the
/// runtime calls after the filter just before execve (SIGPIPE back to its default). A
/// created init waits on the exec fifo before that call, so it lives; an exec'd process
/// gets there at once. exec fails with 255 and says how the process died and where, in the
/// foreground and with --detach (which used to report success for a process that was gone).
#[test]
fn an_exec_process_killed_by_its_profile_is_reported_as_killed() {
    let root = Root::new();
    let id = unique("cp-exec-kill");
    let b = Bundle::with(&["true"], |s| {
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["rt_sigaction"], "action": "SCMP_ACT_KILL"}]
        });
    });
    root.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    let pid_file = b.path().join("exec.pid");
    for detach in [false, true] {
        let mut args = vec!["exec"];
        if detach {
            args.extend(["-d", "--pid-file", pid_file.to_str().unwrap()]);
        }
        args.extend([id.as_str(), "true"]);
        let out = root.run(&args);
        let err = messages(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "detach={detach}: {err}");
        assert!(
            err.contains("the exec process was killed by SIGSYS"),
            "detach={detach}: {err}"
        );
        assert!(
            err.contains("after its step 'seccomp'"),
            "detach={detach}: {err}"
        );
        names_a_cause(&err);
        assert!(
            !pid_file.exists(),
            "no pid file for a process that never ran"
        );
    }
    // The init is untouched: still created.
    assert_eq!(root.state(&id)["status"], "created");
    root.ok(&["delete", "--force", &id]);
}

/// A namespace the init cannot join (a network namespace given as an ipc namespace file):
/// the error names the step, the namespace and the errno; runc fails it too (exit 1).
#[test]
fn a_namespace_setup_that_fails_names_its_step() {
    let edit = |s: &mut Value| {
        let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({"type": "network", "path": "/proc/self/ns/ipc"}));
    };
    let b = Bundle::with(&["true"], edit);
    let root = Root::new();
    let id = unique("cp-badns");
    let err = root.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(
        err.contains(
            "container init: namespaces: joining the network namespace /proc/self/ns/ipc: EINVAL"
        ),
        "{err}"
    );
    names_a_cause(&err);
    assert_nothing_left(&root, &id, &b);
    let runc = Root::for_runtime("runc");
    let out = runc.run(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "runc: {}",
        messages(&out.stderr)
    );
    assert!(runc.is_empty());
}

/// No mount namespace: refused before anything is made. With the template's masked and
/// read-only paths in runc's words, and with runc's exit code; without them berth still
/// refuses (runc would run the container on the host's filesystem; README).
#[test]
fn a_container_without_a_mount_namespace_is_refused_up_front() {
    let no_mnt = |s: &mut Value| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "mount");
    };
    let b = Bundle::with(&["true"], no_mnt);
    let root = Root::new();
    let id = unique("cp-nomnt");
    let err = root.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(
        err.contains("unable to restrict sys entries without a private MNT namespace"),
        "{err}"
    );
    assert_nothing_left(&root, &id, &b);
    let runc = Root::for_runtime("runc");
    let out = runc.run(&["create", "-b", b.path().to_str().unwrap(), &id]);
    let runc_err = messages(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "runc: {runc_err}");
    assert!(
        runc_err.contains("unable to restrict sys entries without a private MNT namespace"),
        "{runc_err}"
    );
    let bare = Bundle::with(&["true"], |s| {
        no_mnt(s);
        s["linux"]["maskedPaths"] = json!([]);
        s["linux"]["readonlyPaths"] = json!([]);
    });
    let err = root.fails(&["create", "-b", bare.path().to_str().unwrap(), &id]);
    assert!(err.contains("a mount namespace is required"), "{err}");
    assert_nothing_left(&root, &id, &bare);
}
