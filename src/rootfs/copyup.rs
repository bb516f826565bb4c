//! `tmpcopyup`: copy what a directory held before a tmpfs was mounted over it into the
//! tmpfs. The old contents are read through an fd opened before the mount (it still names
//! the covered directory); everything is done with `*at` calls and `O_NOFOLLOW`, so
//! symlinks in the image are copied as links, never followed.
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fchmodat, fstatat, mkdirat, mknodat, FchmodatFlags, FileStat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};

use crate::sys::mount as sys;

/// Copy the contents of directory `from` into directory `to`, recursively.
pub fn copy_dir(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<()> {
    let dup = from.try_clone_to_owned().context("dup")?;
    let mut dir = Dir::from_fd(dup.into_raw_fd()).context("opendir")?;
    for entry in dir.iter() {
        let entry = entry.context("readdir")?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        copy_entry(from, to, name)
            .with_context(|| format!("copying {}", Path::new(name).display()))?;
    }
    Ok(())
}

fn copy_entry(from: BorrowedFd<'_>, to: BorrowedFd<'_>, name: &OsStr) -> Result<()> {
    let st = fstatat(Some(from.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
    match fmt {
        SFlag::S_IFDIR => {
            mkdirat(Some(to.as_raw_fd()), name, perm)?;
            let nofollow = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
            let src = sys::openat(Some(from), Path::new(name), nofollow, 0)?;
            let dst = sys::openat(Some(to), Path::new(name), nofollow, 0)?;
            copy_dir(src.as_fd(), dst.as_fd())?;
        }
        SFlag::S_IFREG => {
            let src = sys::openat(
                Some(from),
                Path::new(name),
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW,
                0,
            )?;
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
            let dst = sys::openat(Some(to), Path::new(name), flags, perm.bits())?;
            std::io::copy(&mut std::fs::File::from(src), &mut std::fs::File::from(dst))?;
        }
        SFlag::S_IFLNK => {
            let target = nix::fcntl::readlinkat(Some(from.as_raw_fd()), name)?;
            nix::unistd::symlinkat(target.as_os_str(), Some(to.as_raw_fd()), name)?;
        }
        _ => mknodat(Some(to.as_raw_fd()), name, fmt, perm, st.st_rdev)?,
    }
    copy_owner_and_mode(to, name, &st, fmt)
}

fn copy_owner_and_mode(to: BorrowedFd<'_>, name: &OsStr, st: &FileStat, fmt: SFlag) -> Result<()> {
    let (uid, gid) = (Uid::from_raw(st.st_uid), Gid::from_raw(st.st_gid));
    fchownat(
        Some(to.as_raw_fd()),
        name,
        Some(uid),
        Some(gid),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if fmt != SFlag::S_IFLNK {
        // Not a symlink (we just created it): undo the umask and restore the setuid bits
        // that chown cleared.
        let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
        fchmodat(
            Some(to.as_raw_fd()),
            name,
            perm,
            FchmodatFlags::FollowSymlink,
        )?;
    }
    Ok(())
}
