//! Reading and writing cgroup control files. Every error names the file and the value, and keeps
//! the `io::Error` (and so the errno) as the root of the chain.
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Writes `value` to `dir/file` in one `write(2)`, as the kernel expects for control files.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    Writer::open(dir, file)
        .with_context(|| format!("writing {value:?}"))?
        .write(value)
}

/// A control file open for writing, each value in one `write(2)` of its own: the kernel
/// takes each write as a whole (one rule of a v1 devices list), so several values need no
/// open and close each.
pub struct Writer {
    path: PathBuf,
    file: fs::File,
}

impl Writer {
    pub fn open(dir: &Path, file: &str) -> Result<Writer> {
        let path = dir.join(file);
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {} to write", path.display()))?;
        Ok(Writer { path, file })
    }

    pub fn write(&mut self, value: &str) -> Result<()> {
        self.file
            .write_all(value.as_bytes())
            .with_context(|| format!("writing {value:?} to {}", self.path.display()))
    }
}

/// Reads `dir/file` with the trailing newline removed.
pub fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    let s = crate::sys::fdio::read_text(&path)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(s.trim_end_matches('\n').to_string())
}

/// Reads a file holding one number; `max` (v2 "unlimited") reads as `u64::MAX`.
pub fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let s = read(dir, file)?;
    parse_u64(&s).with_context(|| format!("parsing {:?} from {}", s, dir.join(file).display()))
}

/// Like [`read_u64`], but a missing file reads as `None` (controller or feature not present).
pub fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>> {
    if !dir.join(file).exists() {
        return Ok(None);
    }
    read_u64(dir, file).map(Some)
}

/// Parses a control-file number; `max` is `u64::MAX`.
pub fn parse_u64(s: &str) -> Result<u64> {
    let s = s.trim();
    if s == "max" {
        return Ok(u64::MAX);
    }
    s.parse::<u64>()
        .with_context(|| format!("{s:?} is not a number"))
}

/// Parses "key value" lines (memory.stat, cpu.stat, cgroup.events) into pairs; lines that do not
/// hold a number are skipped.
pub fn parse_flat_keyed(s: &str) -> Vec<(String, u64)> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = parse_u64(it.next()?).ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// The value of `key` in a flat-keyed file.
pub fn flat_keyed_value(dir: &Path, file: &str, key: &str) -> Result<Option<u64>> {
    let s = read(dir, file)?;
    Ok(parse_flat_keyed(&s)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v))
}

/// Makes `path` and every missing parent; returns the directories actually created, top-down.
/// A parent removed meanwhile (the last container leaving a shared parent) is made again.
pub fn mkdir_all(path: &Path) -> Result<Vec<PathBuf>> {
    let mut attempt = 0;
    loop {
        match mkdir_missing(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < 5 => attempt += 1,
            r => return r.with_context(|| format!("creating cgroup {}", path.display())),
        }
    }
}

/// `path` and its parents that do not exist, top-down: what `mkdir_all` would make now.
pub fn missing(path: &Path) -> Vec<PathBuf> {
    let mut missing = Vec::new();
    let mut cur = Some(path);
    while let Some(p) = cur {
        if p.exists() {
            break;
        }
        missing.push(p.to_path_buf());
        cur = p.parent();
    }
    missing.reverse();
    missing
}

/// One `mkdir` when the parent exists (the common case); the parents first when it does not.
fn mkdir_missing(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    use std::io::ErrorKind::{AlreadyExists, NotFound};
    let mut made = Vec::new();
    let mut res = fs::create_dir(path);
    if let (Err(e), Some(parent)) = (&res, path.parent()) {
        if e.kind() == NotFound {
            made = mkdir_missing(parent)?;
            res = fs::create_dir(path);
        }
    }
    match res {
        Ok(()) => made.push(path.to_path_buf()),
        Err(e) if e.kind() == AlreadyExists => {}
        Err(e) => return Err(e),
    }
    Ok(made)
}

/// Removes a cgroup directory and any child cgroups under it, bottom-up. A cgroup directory
/// holds only kernel files, so `rmdir` is the removal; `EBUSY` (tasks still exiting) is retried
/// for about two seconds. A directory already gone is fine.
pub fn remove_cgroup_tree(path: &Path) -> Result<()> {
    // The common case first: no child cgroup and no task left, one rmdir. A cgroup with
    // children (or tasks still exiting) is EBUSY, and then the children go first.
    match fs::remove_dir(path) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    let entries = match fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("listing cgroup {}", path.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing cgroup {}", path.display()))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_cgroup_tree(&entry.path())?;
        }
    }
    rmdir_retry(path)
}

fn rmdir_retry(path: &Path) -> Result<()> {
    let mut delay = Duration::from_millis(5);
    for attempt in 0.. {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 12 => {
                sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(300));
            }
            Err(e) => return Err(e).with_context(|| format!("removing cgroup {}", path.display())),
        }
    }
    unreachable!("the retry loop returns")
}

/// Removes directories this manager created above the leaf (deepest first), stopping at the
/// first one still in use by someone else (`EBUSY`/`ENOTEMPTY`): those are shared parents.
pub fn remove_created_parents(created: &[PathBuf]) -> Result<()> {
    for dir in created.iter().rev() {
        match fs::remove_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EBUSY) | Some(libc::ENOTEMPTY) | Some(libc::EEXIST)
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(e).with_context(|| format!("removing cgroup {}", dir.display())),
        }
    }
    Ok(())
}

/// Reads the pids listed in `cgroup.procs` of `dir` and every child cgroup.
pub fn procs_recursive(dir: &Path) -> Result<Vec<i32>> {
    let mut out = Vec::new();
    collect_procs(dir, &mut out)?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn collect_procs(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let s = match fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}/cgroup.procs", dir.display())),
    };
    for l in s.lines().filter(|l| !l.is_empty()) {
        out.push(
            l.parse()
                .with_context(|| format!("bad pid {l:?} in {}/cgroup.procs", dir.display()))?,
        );
    }
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_procs(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// Polls `check` until it returns true, for at most `timeout`.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<bool> {
    let start = std::time::Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        if check()? {
            return Ok(true);
        }
        if start.elapsed() >= timeout {
            return Ok(false);
        }
        sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// Rejects a cgroup file name that would escape the cgroup directory.
pub fn check_file_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        bail!("invalid cgroup file name {name:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_max_and_numbers() {
        assert_eq!(parse_u64("max").unwrap(), u64::MAX);
        assert_eq!(parse_u64("42\n").unwrap(), 42);
        assert!(parse_u64("x").is_err());
    }

    #[test]
    fn flat_keyed() {
        let v = parse_flat_keyed("usage_usec 10\nuser_usec 4\nbad line x\n");
        assert_eq!(v, vec![("usage_usec".into(), 10), ("user_usec".into(), 4)]);
    }

    #[test]
    fn file_names() {
        assert!(check_file_name("memory.max").is_ok());
        assert!(check_file_name("../x").is_err());
        assert!(check_file_name("..").is_err());
        assert!(check_file_name("").is_err());
    }
}
