//! The time namespace (issue 7 item 20) and RLIMIT_NOFILE (item 21) as runc users set them,
//! for run and exec.
mod common;

use std::os::unix::process::CommandExt;

use common::*;
use serde_json::{json, Value};

fn with_time_ns(s: &mut Value) {
    s["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
}

fn offsets(text: &str) -> Vec<(String, i64)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && (f[0] == "monotonic" || f[0] == "boottime"))
                .then(|| (f[0].to_string(), f[1].parse().unwrap()))
        })
        .collect()
}

/// A time namespace without offsets is a new namespace with zero offsets; with offsets,
/// /proc/uptime moves by the boottime offset; and exec joins the same namespace.
#[test]
fn time_namespace_with_and_without_offsets_and_exec() {
    let host_ns = std::fs::read_link("/proc/self/ns/time").unwrap();
    let probe = [
        "sh",
        "-c",
        "readlink /proc/self/ns/time; cat /proc/self/timens_offsets",
    ];
    let root = Root::new();
    let b = Bundle::with(&probe, with_time_ns);
    let (code, out, err) = root.run_bundle(&b, &unique("compat-time0"));
    assert_eq!(code, 0, "{err}");
    assert_ne!(
        out.lines().next().unwrap(),
        host_ns.to_str().unwrap(),
        "{out}"
    );
    assert_eq!(
        offsets(&out),
        [("monotonic".to_string(), 0), ("boottime".to_string(), 0)]
    );

    let b = Bundle::with(&["sleep", "100"], |s| {
        with_time_ns(s);
        s["linux"]["timeOffsets"] =
            json!({"boottime": {"secs": 1000000, "nanosecs": 0}, "monotonic": {"secs": -5}});
    });
    let id = unique("compat-time1");
    root.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), &id]);
    let out = root.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "readlink /proc/self/ns/time; cat /proc/self/timens_offsets /proc/uptime",
    ]);
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    let init_ns = std::fs::read_link(format!("/proc/{pid}/ns/time")).unwrap();
    assert_eq!(
        out.lines().next().unwrap(),
        init_ns.to_str().unwrap(),
        "exec joins it"
    );
    assert_eq!(
        offsets(&out),
        [
            ("monotonic".to_string(), -5),
            ("boottime".to_string(), 1000000)
        ]
    );
    let uptime: f64 = out
        .lines()
        .last()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(uptime > 1_000_000.0, "{out}");
    root.ok(&["delete", "--force", &id]);
}

/// Offsets with a user namespace, and offsets without a time namespace refused cleanly.
#[test]
fn time_offsets_with_a_user_namespace_and_without_a_time_namespace() {
    let root = Root::new();
    let b = Bundle::with(&["cat", "/proc/self/timens_offsets"], |s| {
        with_time_ns(s);
        userns_100000(s);
        s["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 3600}});
    });
    chown_rootfs(&b, "100000:100000");
    let (code, out, err) = root.run_bundle(&b, &unique("compat-timeu"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        offsets(&out),
        [("monotonic".to_string(), 3600), ("boottime".to_string(), 0)]
    );

    let b = Bundle::with(&["true"], |s| {
        s["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 1}});
    });
    let id = unique("compat-timex");
    let err = root.fails(&["run", "-b", b.path().to_str().unwrap(), &id]);
    assert!(
        err.contains("linux.timeOffsets") && err.contains("time namespace"),
        "{err}"
    );
    assert_nothing_left(&root, &id, &b);
}

fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn nofile(soft: u64, hard: u64) -> Value {
    json!([{"type": "RLIMIT_NOFILE", "soft": soft, "hard": hard}])
}

const ULIMITS: [&str; 3] = ["sh", "-c", "echo $(ulimit -Sn) $(ulimit -Hn)"];

/// The caller's RLIMIT_NOFILE (soft, hard).
fn own_nofile() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct to a valid pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    (lim.rlim_cur, lim.rlim_max)
}

/// Whether this process may raise hard limits (CAP_SYS_RESOURCE, bit 24).
fn has_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    u64::from_str_radix(eff, 16).unwrap() & (1 << 24) != 0
}

/// RLIMIT_NOFILE below the caller's hard limit, at it, above it (root with
/// CAP_SYS_RESOURCE may raise it up to fs.nr_open; without it the kernel refuses, as it
/// refuses runc), soft above hard, and above fs.nr_open: each refusal is a clear error
/// naming the limit, and leaves nothing.
#[test]
fn rlimit_nofile_below_at_and_above_the_hard_limit() {
    let root = Root::new();
    let (_, hard) = own_nofile();
    let top = nr_open();
    let mut works = vec![(256, 256), (256, hard.min(4096)), (hard, hard)];
    let mut refused = vec![(hard + 1, hard), (top + 1, top + 1)];
    if has_sys_resource() {
        works.push((top, top));
    } else {
        println!("skipped: raising the hard limit (no CAP_SYS_RESOURCE here)");
        refused.push((hard + 1, hard + 1));
    }
    for (soft, hard) in works {
        let b = Bundle::with(&ULIMITS, |s| s["process"]["rlimits"] = nofile(soft, hard));
        let (code, out, err) = root.run_bundle(&b, &unique("compat-nofile"));
        assert_eq!(code, 0, "{soft}/{hard}: {err}");
        assert_eq!(out.trim(), format!("{soft} {hard}"));
    }
    for (soft, hard) in refused {
        let b = Bundle::with(&ULIMITS, |s| s["process"]["rlimits"] = nofile(soft, hard));
        let id = unique("compat-nofile");
        let err = root.fails(&["run", "-b", b.path().to_str().unwrap(), &id]);
        assert!(
            err.contains("process.rlimits[0]") && err.contains("Nofile"),
            "{err}"
        );
        assert!(err.contains("EPERM") || err.contains("EINVAL"), "{err}");
        assert_nothing_left(&root, &id, &b);
    }
}

/// Without RLIMIT_NOFILE in the config the container keeps the caller's limits.
#[test]
fn rlimit_nofile_unset_is_inherited_from_the_caller() {
    let root = Root::new();
    let b = Bundle::with(&ULIMITS, |s| {
        s["process"]["rlimits"] = json!([]);
    });
    let mut cmd = root.cmd();
    cmd.args([
        "run",
        "-b",
        b.path().to_str().unwrap(),
        &unique("compat-nofile"),
    ]);
    // SAFETY: setrlimit between fork and exec is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 4321,
                rlim_max: 8765,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4321 8765");
}

/// exec gets the container's rlimits (with a command, and with a process.json without
/// rlimits), or the process.json's own.
#[test]
fn exec_rlimit_nofile_as_runc() {
    let root = Root::new();
    let b = Bundle::with(&["sleep", "100"], |s| {
        s["process"]["rlimits"] = nofile(777, 888)
    });
    let id = unique("compat-xnofile");
    root.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), &id]);
    let out = root.ok(&["exec", &id, ULIMITS[0], ULIMITS[1], ULIMITS[2]]);
    assert_eq!(out.trim(), "777 888");
    let dir = TempDir::new("compat-proc");
    let p = dir.path().join("process.json");
    let mut process =
        json!({"args": ULIMITS, "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]});
    std::fs::write(&p, process.to_string()).unwrap();
    let out = root.ok(&["exec", "-p", p.to_str().unwrap(), &id]);
    assert_eq!(out.trim(), "777 888", "process.json without rlimits");
    process["rlimits"] = nofile(300, 400);
    std::fs::write(&p, process.to_string()).unwrap();
    let out = root.ok(&["exec", "-p", p.to_str().unwrap(), &id]);
    assert_eq!(out.trim(), "300 400");
    root.ok(&["delete", "--force", &id]);
}
