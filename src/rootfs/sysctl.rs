//! `linux.sysctl`: each key is written to /proc/sys/<key with dots as slashes> through the
//! container's /proc, checked to be a real procfs, without following any symlink and
//! without crossing into another mount below /proc/sys.
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::OFlag;

use super::mounts::ensure_procfs;
use super::path;
use crate::sys::mount as sys;

const RESOLVE: u64 = libc::RESOLVE_BENEATH
    | libc::RESOLVE_NO_XDEV
    | libc::RESOLVE_NO_SYMLINKS
    | libc::RESOLVE_NO_MAGICLINKS;

/// Write every sysctl; `root` is the container's root directory.
pub fn apply(
    root: BorrowedFd<'_>,
    sysctl: &std::collections::HashMap<String, String>,
) -> Result<()> {
    if sysctl.is_empty() {
        return Ok(());
    }
    let procsys = path::open_in_root(
        root,
        Path::new("/proc/sys"),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
    )
    .context("opening /proc/sys (is /proc mounted?)")?;
    ensure_procfs(procsys.as_fd(), Path::new("/proc/sys"))?;
    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort();
    for key in keys {
        write(procsys.as_fd(), key, &sysctl[key])
            .with_context(|| format!("linux.sysctl: {key}"))?;
    }
    Ok(())
}

/// `net.ipv4.ip_forward` -> `net/ipv4/ip_forward`; refuses anything but plain names.
fn key_path(key: &str) -> Result<PathBuf> {
    let p = PathBuf::from(key.replace('.', "/"));
    if key.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        bail!("invalid sysctl name");
    }
    Ok(p)
}

fn write(procsys: BorrowedFd<'_>, key: &str, value: &str) -> Result<()> {
    let rel = key_path(key)?;
    let fd = sys::openat2(procsys, &rel, OFlag::O_WRONLY, 0, RESOLVE)
        .with_context(|| format!("opening /proc/sys/{}", rel.display()))?;
    ensure_procfs(fd.as_fd(), &Path::new("/proc/sys").join(&rel))?;
    std::fs::File::from(fd)
        .write_all(value.as_bytes())
        .with_context(|| format!("writing {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths() {
        assert_eq!(
            key_path("net.ipv4.ip_forward").unwrap(),
            Path::new("net/ipv4/ip_forward")
        );
        assert!(key_path("..kernel").is_err());
        assert!(key_path("").is_err());
        assert!(key_path("/etc/passwd").is_err());
    }
}
