//! What the engine lanes share: a busybox image built with umoci, and a wrapper that records
//! the argv of every runtime call an engine makes before it execs berth.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{busybox_rootfs, BERTH};

/// Runs its closure on drop: an engine's cleanup that must happen even when a test fails.
pub struct OnDrop<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// A command's stdout then stderr, as text.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A one-layer busybox image as an OCI archive (umoci unpack + repack), tagged `tag`, whose
/// command is `cmd`. Returns the archive's path.
pub fn oci_image(dir: &Path, tag: &str, cmd: &[&str]) -> PathBuf {
    let run = |args: &[&str]| {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let layout = dir.join(format!("oci-{tag}"));
    let img = format!("{}:{tag}", layout.display());
    run(&["umoci", "init", "--layout", layout.to_str().unwrap()]);
    run(&["umoci", "new", "--image", &img]);
    let b = dir.join(format!("unpacked-{tag}"));
    run(&["umoci", "unpack", "--image", &img, b.to_str().unwrap()]);
    busybox_rootfs(&b.join("rootfs"));
    run(&["umoci", "repack", "--image", &img, b.to_str().unwrap()]);
    let mut config = vec![
        "umoci",
        "config",
        "--image",
        &img,
        "--config.env",
        "PATH=/bin",
    ];
    for c in cmd {
        config.extend(["--config.cmd", c]);
    }
    run(&config);
    let _ = std::fs::remove_dir_all(&b);
    let tar = dir.join(format!("{tag}.tar"));
    run(&[
        "tar",
        "-C",
        layout.to_str().unwrap(),
        "-cf",
        tar.to_str().unwrap(),
        ".",
    ]);
    tar
}

/// An executable that appends its argv to a log, one call a line, then execs berth. Engines
/// are pointed at `path` instead of berth; `summary` turns the log into the commands and flags
/// the engine used, which the lane writes to `target/argv/ENGINE.txt` and prints.
pub struct ArgvCapture {
    pub engine: String,
    pub path: PathBuf,
    pub log: PathBuf,
}

impl ArgvCapture {
    pub fn new(engine: &str, dir: &Path) -> ArgvCapture {
        let path = dir.join(format!("berth-{engine}"));
        let log = dir.join(format!("argv-{engine}.log"));
        let script = format!(
            "#!/bin/sh\nline=\nfor a in \"$@\"; do case \"$a\" in *' '*|'') line=\"$line '$a'\";; \
             *) line=\"$line $a\";; esac; done\nprintf '%s\\n' \"$line\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            BERTH
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(&log, "").unwrap();
        // Rootless engines run the wrapper as their own user.
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
        ArgvCapture {
            engine: engine.to_string(),
            path,
            log,
        }
    }

    pub fn calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    }

    /// Each command with the flags it was given (values dropped), e.g.
    /// `create: --bundle --log --log-format --pid-file --root`.
    pub fn summary(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for call in self.calls() {
            let mut flags = BTreeSet::new();
            let mut command = None;
            let mut i = 0;
            while i < call.len() {
                let a = &call[i];
                if let Some(flag) = a.strip_prefix('-').filter(|f| !f.is_empty()) {
                    let name = format!("-{}", flag.split('=').next().unwrap());
                    // Global flags that take a value come before the command.
                    if command.is_none()
                        && !a.contains('=')
                        && ["--root", "--log", "--log-format", "--rootless", "--criu"]
                            .contains(&name.as_str())
                    {
                        i += 1;
                    }
                    flags.insert(name);
                } else if command.is_none() {
                    command = Some(a.clone());
                }
                i += 1;
            }
            out.entry(command.unwrap_or_else(|| "(none)".into()))
                .or_default()
                .extend(flags);
        }
        out
    }

    /// Write the raw calls and the summary under target/argv/ and print the summary;
    /// then require the README's block for this engine (in "Runtime calls per engine") to
    /// say exactly that, so a new command or flag from an engine cannot go unnoticed.
    pub fn report(&self) -> String {
        let mut text = format!("argv capture: {}\n", self.engine);
        for (cmd, flags) in self.summary() {
            let flags: Vec<_> = flags.into_iter().collect();
            text.push_str(&format!("  {cmd}: {}\n", flags.join(" ")));
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/argv");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(format!("{}.txt", self.engine)), &text);
        let _ = std::fs::copy(&self.log, dir.join(format!("{}.log", self.engine)));
        eprint!("{text}");
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let documented: String = readme
            .split_once(&format!("\nargv capture: {}\n", self.engine))
            .map(|(_, rest)| {
                rest.lines()
                    .take_while(|l| l.starts_with("  "))
                    .map(|l| format!("{l}\n"))
                    .collect()
            })
            .unwrap_or_default();
        let seen = text.split_once('\n').unwrap().1;
        assert_eq!(
            documented, seen,
            "README.md (Runtime calls per engine) must list what {} used",
            self.engine
        );
        text
    }
}
