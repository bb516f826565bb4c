//! A minimal `/proc/self/mountinfo` reader: root, mount point, propagation tags, fstype and
//! super options. Used for the cgroup hierarchies (cgroups/ and the rootfs `cgroup` mount) and
//! the rootfs parent's propagation.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// The root of the mount inside its filesystem (a cgroup path for cgroup mounts).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// Optional fields (`shared:N`, `master:N`, ...).
    pub tags: Vec<String>,
    pub fstype: String,
    pub super_options: Vec<String>,
}

impl MountInfo {
    pub fn is_shared(&self) -> bool {
        self.tags.iter().any(|t| t.starts_with("shared:"))
    }
}

/// Read and parse `/proc/self/mountinfo`.
pub fn read() -> Result<Vec<MountInfo>> {
    Ok(parse(&read_text()?))
}

fn read_text() -> Result<String> {
    crate::sys::fdio::read_text(Path::new("/proc/self/mountinfo"))
        .context("reading /proc/self/mountinfo")
}

/// The mounts that can be seen: an entry over-mounted later at the same mount point (say an
/// empty tmpfs hiding /sys/fs/cgroup/unified) is dropped. The kernel writes mount points
/// normalized, so their bytes are compared (Path's `==` parses both into components, and
/// this comparison is quadratic: it was 4% of a `run`'s user time).
pub fn visible(mounts: &[MountInfo]) -> Vec<&MountInfo> {
    mounts
        .iter()
        .enumerate()
        .filter(|(i, m)| {
            !mounts[i + 1..]
                .iter()
                .any(|l| l.mount_point.as_os_str() == m.mount_point.as_os_str())
        })
        .map(|(_, m)| m)
        .collect()
}

/// Whether a cgroup mount listed in mountinfo is really what is at its mount point. A mount
/// whose parent was covered (a new tmpfs over /sys/fs/cgroup, holding only the v1
/// hierarchies, hides the cgroup2 mount at /sys/fs/cgroup/unified) is still listed, under a
/// path that now leads elsewhere: statfs tells. Other mounts are taken as listed.
pub fn backed(m: &MountInfo) -> bool {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC};
    let want = match m.fstype.as_str() {
        "cgroup" => CGROUP_SUPER_MAGIC,
        "cgroup2" => CGROUP2_SUPER_MAGIC,
        _ => return true,
    };
    statfs(&m.mount_point).is_ok_and(|s| s.filesystem_type() == want)
}

/// Read `/proc/self/mountinfo`, keeping only the cgroup mounts that are [`backed`]. Only
/// the cgroup lines are parsed (fstype `cgroup` or `cgroup2`; a line without the `-`
/// separator is malformed either way).
pub fn read_backed() -> Result<Vec<MountInfo>> {
    let text = read_text()?;
    let cgroup = |l: &&str| {
        split_at_separator(l)
            .is_some_and(|(_, r)| r.starts_with("cgroup ") || r.starts_with("cgroup2 "))
    };
    Ok(text
        .lines()
        .filter(cgroup)
        .filter_map(parse_line)
        .filter(backed)
        .collect())
}

/// [`read_backed`] once per process: the cgroup mounts as this process first saw them. The
/// cgroup manager reads them before the clone; the init, whose mount namespace the clone
/// copied from ours, finds them here again instead of reading and statfs'ing them anew.
pub fn backed_once() -> Result<&'static [MountInfo]> {
    static ONCE: std::sync::OnceLock<Vec<MountInfo>> = std::sync::OnceLock::new();
    if let Some(v) = ONCE.get() {
        return Ok(v);
    }
    let v = read_backed()?;
    Ok(ONCE.get_or_init(|| v))
}

/// Parse mountinfo text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

/// A line split around its " - " separator: the fields before it (the optional tags end
/// there) and fstype, source, super options. The first " - " is the separator, since the
/// paths before it escape their spaces (`\040`). Found from its '-' (a byte search), not
/// with `split_once(" - ")`, whose substring search of every line took 13,000 instructions
/// of each create (callgrind).
fn split_at_separator(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    let i = line
        .match_indices('-')
        .map(|(i, _)| i)
        .find(|&i| i > 0 && b[i - 1] == b' ' && b.get(i + 1) == Some(&b' '))?;
    Some((&line[..i - 1], &line[i + 2..]))
}

fn parse_line(line: &str) -> Option<MountInfo> {
    let (left, right) = split_at_separator(line)?;
    let fields: Vec<&str> = left.split(' ').collect();
    let root = PathBuf::from(unescape(fields.get(3)?));
    let mount_point = PathBuf::from(unescape(fields.get(4)?));
    let tags = fields
        .get(6..)
        .unwrap_or(&[])
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut right = right.split(' ');
    let fstype = right.next()?.to_string();
    let _source = right.next()?;
    let super_options = right
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect();
    Some(MountInfo {
        root,
        mount_point,
        tags,
        fstype,
        super_options,
    })
}

/// Undo the kernel's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount whose mount point is the longest prefix of `path`.
pub fn mount_of<'a>(mounts: &'a [MountInfo], path: &Path) -> Option<&'a MountInfo> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n\
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
        50 27 0:40 / /mnt/a\\040b rw - tmpfs tmpfs rw\n";

    #[test]
    fn the_separator_is_the_first_spaced_dash() {
        let lines = [
            "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard",
            "60 27 0:50 /a-b /mnt/x-y rw master:3 - overlay over-lay rw,lowerdir=/l-1",
            "61 27 0:51 / /mnt/a\\040-\\040b rw - tmpfs - rw",
            "62 27 0:52 / /-x rw - cgroup2 cgroup2 rw",
        ];
        for l in lines {
            assert_eq!(split_at_separator(l), l.split_once(" - "), "{l}");
        }
        assert_eq!(split_at_separator("1 2 3 / /x rw -"), None);
        assert_eq!(split_at_separator("- tmpfs"), None);
    }

    #[test]
    fn parses_fields() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 3);
        assert!(m[0].is_shared());
        assert_eq!(m[1].fstype, "cgroup");
        assert_eq!(m[1].super_options, vec!["rw", "cpu"]);
        assert_eq!(m[2].mount_point, Path::new("/mnt/a b"));
    }

    #[test]
    fn longest_prefix() {
        let m = parse(SAMPLE);
        assert_eq!(
            mount_of(&m, Path::new("/sys/fs/cgroup/cpu/x"))
                .unwrap()
                .fstype,
            "cgroup"
        );
        assert_eq!(mount_of(&m, Path::new("/sys/fs")).unwrap().fstype, "ext4");
    }
}
