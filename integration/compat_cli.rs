//! The command line as runc users meet it (issue 7, items 5 and 13): how errors and
//! warnings reach stderr and the --log file, the exit codes, help, unknown commands and
//! usage errors. Each input goes through runc (Debian's, which the test command installs)
//! and through berth, and the two must agree on the exit code and on the shape of what they
//! write: a logrus text line, a JSON line or a plain message.
mod common;

use common::*;
use serde_json::{json, Value};

const RUNC: &str = "runc";

/// What one call of a runtime showed: exit code, stderr lines, stdout, the log's lines.
#[derive(Debug)]
struct Seen {
    code: i32,
    stderr: Vec<Line>,
    stdout: String,
    log: Vec<Line>,
}

/// Run `args` (after the global flags `global`) with this runtime; `log` adds --log FILE.
fn call(root: &Root, global: &[&str], log: bool, args: &[&str]) -> Seen {
    let dir = TempDir::new("cp-log");
    let file = dir.path().join("log");
    let mut all: Vec<&str> = global.to_vec();
    if log {
        all.extend(["--log", file.to_str().unwrap()]);
    }
    all.extend(args);
    let out = root.run(&all);
    let lines = |b: &[u8]| -> Vec<Line> {
        String::from_utf8_lossy(b)
            .lines()
            .filter(|l| !l.is_empty())
            .map(Line::parse)
            .collect()
    };
    Seen {
        code: out.status.code().unwrap_or(-1),
        stderr: lines(&out.stderr),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        log: lines(&std::fs::read(&file).unwrap_or_default()),
    }
}

fn forms(lines: &[Line]) -> Vec<String> {
    lines.iter().map(Line::form).collect()
}

fn runc_and_berth() -> [Root; 2] {
    [Root::for_runtime(RUNC), Root::new()]
}

/// An error that ends a command: without --log, one logrus line on stderr in the
/// --log-format asked for; with --log, the line goes to the log and stderr gets the plain
/// message. Exit code 1. The same message in every form (escapes undone).
#[test]
fn errors_reach_stderr_and_the_log_as_runc_writes_them() {
    for format in ["text", "json"] {
        for log in [false, true] {
            let seen: Vec<Seen> = runc_and_berth()
                .iter()
                .map(|rt| call(rt, &["--log-format", format], log, &["state", "cp-nope"]))
                .collect();
            let (runc, berth) = (&seen[0], &seen[1]);
            let what = format!("--log-format {format}, --log: {log}");
            assert_eq!(runc.code, 1, "{what}: {runc:?}");
            assert_eq!(berth.code, runc.code, "{what}: {berth:?}");
            assert_eq!(
                forms(&berth.stderr),
                forms(&runc.stderr),
                "{what}: {berth:?}"
            );
            assert_eq!(forms(&berth.log), forms(&runc.log), "{what}: {berth:?}");
            let msg = berth.stderr[0].msg();
            assert!(
                msg.contains("container \"cp-nope\" does not exist"),
                "{what}: {msg}"
            );
            if log {
                // The log line says what stderr says.
                assert_eq!(berth.log[0].msg(), msg, "{what}");
            }
        }
    }
}

/// The same error with --debug: still one error line, in the same form as runc's (runc's
/// debug lines name the caller, which the parse ignores).
#[test]
fn errors_with_debug_keep_their_form() {
    for format in ["text", "json"] {
        let seen: Vec<Seen> = runc_and_berth()
            .iter()
            .map(|rt| {
                call(
                    rt,
                    &["--debug", "--log-format", format],
                    false,
                    &["state", "cp-nope"],
                )
            })
            .collect();
        assert_eq!(seen[1].code, seen[0].code, "{seen:?}");
        assert_eq!(forms(&seen[1].stderr), forms(&seen[0].stderr), "{seen:?}");
    }
}

/// exec: 255 when the runtime fails before the process runs (no such container, a
/// --pid-file it cannot write, a stopped container), the process's own code otherwise.
#[test]
fn exec_exit_codes_as_runc() {
    let b = Bundle::new(&["sleep", "100"]);
    for rt in runc_and_berth() {
        let who = rt.bin;
        let id = unique("cp-exec");
        let nope = call(&rt, &[], false, &["exec", "cp-nope", "true"]);
        assert_eq!(nope.code, 255, "{who}: {nope:?}");
        assert_eq!(forms(&nope.stderr), ["text level=error"], "{who}: {nope:?}");
        rt.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), &id]);
        let own = call(&rt, &[], false, &["exec", &id, "sh", "-c", "exit 7"]);
        assert_eq!(own.code, 7, "{who}: {own:?}");
        let bad_pid_file = call(
            &rt,
            &[],
            false,
            &["exec", "--pid-file", "/nonexistent/cp/pid", &id, "true"],
        );
        assert_eq!(bad_pid_file.code, 255, "{who}: {bad_pid_file:?}");
        rt.ok(&["kill", &id, "KILL"]);
        wait_for(
            || {
                let st = rt.run(&["state", &id]);
                serde_json::from_slice::<Value>(&st.stdout).is_ok_and(|v| v["status"] == "stopped")
            },
            "the container to stop",
        );
        let stopped = call(&rt, &[], false, &["exec", &id, "true"]);
        assert_eq!(stopped.code, 255, "{who}: {stopped:?}");
        assert_eq!(
            forms(&stopped.stderr),
            ["text level=error"],
            "{who}: {stopped:?}"
        );
        rt.ok(&["delete", &id]);
    }
}

/// Every command has -h and --help (exit 0, usage on stdout, nothing on stderr), as with
/// runc for the commands both have.
#[test]
fn help_for_berth_and_every_command() {
    let berth = Root::new();
    let runc = Root::for_runtime(RUNC);
    let commands = [
        "create",
        "start",
        "state",
        "kill",
        "delete",
        "run",
        "pause",
        "resume",
        "ps",
        "checkpoint",
        "restore",
        "update",
        "events",
        "exec",
        "list",
        "spec",
        "features",
    ];
    for flag in ["-h", "--help"] {
        for args in std::iter::once(vec![flag])
            .chain(commands.iter().map(|c| vec![*c, flag]))
            .chain(std::iter::once(vec!["unpack", flag]))
        {
            let b = call(&berth, &[], false, &args);
            assert_eq!(b.code, 0, "berth {args:?}: {b:?}");
            assert!(b.stderr.is_empty(), "berth {args:?}: {b:?}");
            assert!(b.stdout.contains("Usage:"), "berth {args:?}: {}", b.stdout);
            if args[0] != "unpack" {
                let r = call(&runc, &[], false, &args);
                assert_eq!(b.code, r.code, "runc {args:?}: {r:?}");
            }
        }
    }
    // `berth help CMD` as `runc help CMD`.
    let b = call(&berth, &[], false, &["help", "state"]);
    assert_eq!(b.code, 0, "{b:?}");
    assert!(b.stdout.contains("Usage:"), "{b:?}");
}

/// An unknown command, with or without -h, is an error naming it, with runc's exit code
/// (3); other usage errors (a missing argument, an unknown flag) exit 1 with one error line
/// on stderr.
#[test]
fn unknown_commands_and_usage_errors_as_runc() {
    // A global flag after the command is a usage error in runc and crun (Go's flag package
    // and urfave/cli read them before the command only), and in berth.
    let cases: [(&[&str], i32); 8] = [
        (&["cp-foo", "-h"], 3),
        (&["cp-foo"], 3),
        (&["help", "cp-foo"], 3),
        (&["state"], 1),
        (&["state", "--cp-bogus", "x"], 1),
        (&["state", "--debug", "x"], 1),
        (&["list", "--log-format", "json"], 1),
        (&["delete", "--root", "/tmp", "x"], 1),
    ];
    for (args, code) in cases {
        let seen: Vec<Seen> = runc_and_berth()
            .iter()
            .map(|rt| call(rt, &[], false, args))
            .collect();
        let (runc, berth) = (&seen[0], &seen[1]);
        assert_eq!(runc.code, code, "runc {args:?}: {runc:?}");
        assert_eq!(berth.code, code, "berth {args:?}: {berth:?}");
        assert_eq!(
            forms(&berth.stderr),
            forms(&runc.stderr),
            "{args:?}: {berth:?}"
        );
        let msg = berth.stderr[0].msg();
        if code == 3 {
            assert!(msg.contains("'cp-foo'"), "{args:?}: {msg}");
        } else if args.len() > 1 {
            assert!(msg.contains(args[1]), "{args:?}: {msg}");
        }
    }
}

/// The warnings tools match on, in runc's words, on stderr without --log and in the log
/// with it; the container runs. An unknown capability is named in one warning. An ambient
/// capability that is not inheritable cannot be raised: a warning (runc 1.2 and later; the
/// runc 1.1 here stays silent), and the container runs without it.
#[test]
fn warnings_in_runcs_words_and_the_container_runs() {
    let status = "grep -E '^Cap(Bnd|Amb)' /proc/self/status";
    let unknown = Bundle::with(&["sh", "-c", status], |s| {
        let caps = &mut s["process"]["capabilities"];
        caps["bounding"]
            .as_array_mut()
            .unwrap()
            .extend([json!("CAP_NOPE"), json!("UNKNOWN_CAP")]);
    });
    let ambient = Bundle::with(&["sh", "-c", status], |s| {
        s["process"]["capabilities"]["ambient"] = json!(["CAP_KILL"]);
        s["process"]["noNewPrivileges"] = json!(false);
    });
    let unknown_msg = "ignoring unknown or unavailable capabilities: [CAP_NOPE UNKNOWN_CAP]";
    let ambient_msg = "can't raise ambient capability CAP_KILL: operation not permitted";
    for log in [false, true] {
        let mut seen = Vec::new();
        for rt in runc_and_berth() {
            let mut one = Vec::new();
            for b in [&unknown, &ambient] {
                let id = unique("cp-warn");
                let s = call(
                    &rt,
                    &["--log-format", "json"],
                    log,
                    &["run", "-b", b.path().to_str().unwrap(), &id],
                );
                assert_eq!(s.code, 0, "{} --log {log}: {s:?}", rt.bin);
                assert!(s.stdout.contains("CapAmb:\t0000000000000000"), "{s:?}");
                one.push(s);
            }
            seen.push(one);
        }
        let where_ = |s: &Seen| if log { s.log.clone() } else { s.stderr.clone() };
        // Unknown capabilities: the same single warning from both.
        let (runc, berth) = (where_(&seen[0][0]), where_(&seen[1][0]));
        let want = Line::Json {
            level: "warning".into(),
            msg: unknown_msg.into(),
        };
        assert_eq!(runc, std::slice::from_ref(&want), "runc --log {log}");
        assert_eq!(berth, [want], "berth --log {log}");
        // Ambient: berth warns in runc 1.2+'s words; runc, where it warns, says the same.
        let (runc, berth) = (where_(&seen[0][1]), where_(&seen[1][1]));
        let want = Line::Json {
            level: "warning".into(),
            msg: ambient_msg.into(),
        };
        assert_eq!(berth, std::slice::from_ref(&want), "berth --log {log}");
        assert!(
            runc.is_empty() || runc == [want],
            "runc --log {log}: {runc:?}"
        );
        if log {
            assert!(
                seen[1][0].stderr.is_empty() && seen[1][1].stderr.is_empty(),
                "{seen:?}"
            );
        }
    }
}

/// The fields of a debug line whose message is `msg`, from a text or a JSON line.
fn debug_fields(text: &str, msg: &str) -> Option<std::collections::BTreeMap<String, String>> {
    text.lines().find_map(|l| {
        let kv: Vec<(String, String)> = match serde_json::from_str::<Value>(l) {
            Ok(Value::Object(m)) => m
                .into_iter()
                .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect(),
            _ => logfmt(l)?,
        };
        let map: std::collections::BTreeMap<_, _> = kv.into_iter().collect();
        (map.get("level").map(String::as_str) == Some("debug")
            && map.get("msg").map(String::as_str) == Some(msg))
        .then_some(map)
    })
}

fn debug_forms(lines: &[Line]) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .map(Line::form)
        .filter(|f| f.ends_with("level=debug"))
        .collect();
    v.dedup();
    v
}

/// --debug: debug lines for create, run and exec, in text and JSON, to stderr or to the
/// --log file, as runc writes its own (compared by form: runc's words are its own). They
/// name the values applied: namespaces, cgroup, CPU affinity, seccomp; the init's steps and
/// the exec'd process's. Without --debug there are none.
#[test]
fn debug_lines_for_create_run_and_exec() {
    let b = Bundle::with(&["sleep", "100"], |s| {
        s["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "0"});
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]
        });
    });
    let bundle = b.path().to_str().unwrap();
    // run in the foreground, text on stderr: the same form as runc's.
    let short = Bundle::new(&["true"]);
    let mut forms = Vec::new();
    for rt in runc_and_berth() {
        let id = unique("cp-dbg");
        let s = call(
            &rt,
            &["--debug"],
            false,
            &["run", "-b", short.path().to_str().unwrap(), &id],
        );
        assert_eq!(s.code, 0, "{}: {s:?}", rt.bin);
        forms.push(debug_forms(&s.stderr));
    }
    assert_eq!(forms[0], ["text level=debug"], "runc");
    assert_eq!(forms[1], forms[0], "berth");

    let berth = Root::new();
    let id = unique("cp-dbg");
    let out = berth.run(&["--debug", "run", "-d", "-b", bundle, &id]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let ns = debug_fields(&err, "namespaces").expect(&err);
    assert!(
        ns["namespaces"].contains("pid") && ns["namespaces"].contains("mount"),
        "{ns:?}"
    );
    let cg = debug_fields(&err, "cgroup").expect(&err);
    assert!(cg["cgroup"].contains(&id), "{cg:?}");
    let aff = debug_fields(&err, "cpu affinity").expect(&err);
    assert_eq!((aff["initial"].as_str(), aff["final"].as_str()), ("0", "0"));
    let sc = debug_fields(&err, "seccomp filter compiled").expect(&err);
    assert_eq!(sc["default_action"], "SCMP_ACT_ALLOW");
    assert_eq!(sc["rules"], "1");
    assert!(
        debug_fields(&err, "container init: rootfs done").is_some(),
        "{err}"
    );
    // The caller is named, as in runc's debug lines.
    assert!(
        sc["file"].starts_with("src/") && sc.contains_key("func"),
        "{sc:?}"
    );

    // exec and create with --log and JSON: the lines go to the file only, as runc's do.
    for rt in runc_and_berth() {
        let dir = TempDir::new("cp-dbglog");
        let log = dir.path().join("log");
        let logged = |args: &[&str]| {
            let mut a = vec![
                "--debug",
                "--log",
                log.to_str().unwrap(),
                "--log-format",
                "json",
            ];
            a.extend(args);
            let out = rt.run(&a);
            assert!(out.status.success(), "{} {args:?}: {out:?}", rt.bin);
            assert!(out.stderr.is_empty(), "{} {args:?}: {out:?}", rt.bin);
        };
        let cid = unique("cp-dbg");
        logged(&["create", "-b", bundle, &cid]);
        logged(&["start", &cid]);
        logged(&["exec", &cid, "true"]);
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<Line> = text.lines().map(Line::parse).collect();
        assert_eq!(
            debug_forms(&lines),
            ["json level=debug"],
            "{}: {text}",
            rt.bin
        );
        if rt.bin != RUNC {
            let fork = debug_fields(&text, &format!("exec {cid}: process forked")).expect(&text);
            assert!(fork["namespaces"].contains("mount"), "{fork:?}");
            assert!(debug_fields(&text, "the exec process runs its program").is_some());
            assert!(debug_fields(&text, "container init cloned").is_some());
        }
        rt.ok(&["delete", "--force", &cid]);
    }

    // No --debug: no debug line, in either place.
    let plain = call(
        &berth,
        &["--log-format", "json"],
        true,
        &["exec", &id, "true"],
    );
    assert_eq!(plain.code, 0, "{plain:?}");
    assert!(
        debug_forms(&plain.stderr).is_empty() && debug_forms(&plain.log).is_empty(),
        "{plain:?}"
    );
    berth.ok(&["delete", "--force", &id]);
}

/// On a terminal, logrus writes text lines in colour, `ERRO[0000] message` padded to 44
/// columns; berth writes the same. JSON stays JSON. (Through script(1), which gives the
/// command a pty as stdin, stdout and stderr.)
#[test]
fn on_a_terminal_errors_are_coloured_as_logrus() {
    for format in ["text", "json"] {
        let mut seen = Vec::new();
        for rt in runc_and_berth() {
            let cmd = format!(
                "{} --root {} --log-format {format} state cp-nope",
                rt.bin,
                rt.path().display()
            );
            let out = std::process::Command::new("script")
                .args(["-qec", &cmd, "/dev/null"])
                .stdin(std::process::Stdio::null())
                .output()
                .expect("script(1) is needed (bsdutils)");
            let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
            seen.push((out.status.code(), text));
        }
        let (runc, berth) = (&seen[0], &seen[1]);
        assert_eq!(berth.0, runc.0, "{format}: {seen:?}");
        if format == "text" {
            let prefix = "\x1b[31mERRO\x1b[0m[0000] ";
            assert!(runc.1.starts_with(prefix), "runc: {:?}", runc.1);
            assert!(berth.1.starts_with(prefix), "berth: {:?}", berth.1);
            assert!(
                berth.1.contains("container \"cp-nope\" does not exist"),
                "{:?}",
                berth.1
            );
        } else {
            assert_eq!(
                Line::parse(berth.1.trim()).form(),
                "json level=error",
                "{:?}",
                berth.1
            );
            assert_eq!(
                Line::parse(runc.1.trim()).form(),
                "json level=error",
                "{:?}",
                runc.1
            );
        }
    }
}
