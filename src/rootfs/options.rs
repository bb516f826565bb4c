//! The `mounts[].options` table: every option runc's `features` lists, parsed in order
//! (a later option wins over an earlier one) into mount(2) flags, the flags explicitly
//! cleared, propagation changes, recursive attributes for `mount_setattr(AT_RECURSIVE)`, the
//! filesystem data string (unknown options), `tmpcopyup`, and `idmap`/`ridmap` (what they
//! mean for a mount is decided in `idmap.rs`).
use anyhow::{bail, Result};
use libc::c_ulong;

use crate::sys::mount::MountAttr;

/// One option's effect on the mount(2) flags.
enum Flag {
    Set(c_ulong),
    Clear(c_ulong),
}

/// mount(2) flag options, as runc spells them.
const FLAGS: &[(&str, Flag)] = &[
    ("acl", Flag::Set(libc::MS_POSIXACL)),
    ("async", Flag::Clear(libc::MS_SYNCHRONOUS)),
    ("atime", Flag::Clear(libc::MS_NOATIME)),
    ("bind", Flag::Set(libc::MS_BIND)),
    ("defaults", Flag::Set(0)),
    ("dev", Flag::Clear(libc::MS_NODEV)),
    ("diratime", Flag::Clear(libc::MS_NODIRATIME)),
    ("dirsync", Flag::Set(libc::MS_DIRSYNC)),
    ("exec", Flag::Clear(libc::MS_NOEXEC)),
    ("iversion", Flag::Set(libc::MS_I_VERSION)),
    ("lazytime", Flag::Set(libc::MS_LAZYTIME)),
    ("loud", Flag::Clear(libc::MS_SILENT)),
    ("mand", Flag::Set(libc::MS_MANDLOCK)),
    ("noacl", Flag::Clear(libc::MS_POSIXACL)),
    ("noatime", Flag::Set(libc::MS_NOATIME)),
    ("nodev", Flag::Set(libc::MS_NODEV)),
    ("nodiratime", Flag::Set(libc::MS_NODIRATIME)),
    ("noexec", Flag::Set(libc::MS_NOEXEC)),
    ("noiversion", Flag::Clear(libc::MS_I_VERSION)),
    ("nolazytime", Flag::Clear(libc::MS_LAZYTIME)),
    ("nomand", Flag::Clear(libc::MS_MANDLOCK)),
    ("norelatime", Flag::Clear(libc::MS_RELATIME)),
    ("nostrictatime", Flag::Clear(libc::MS_STRICTATIME)),
    ("nosuid", Flag::Set(libc::MS_NOSUID)),
    ("nosymfollow", Flag::Set(MS_NOSYMFOLLOW)),
    ("rbind", Flag::Set(libc::MS_BIND | libc::MS_REC)),
    ("relatime", Flag::Set(libc::MS_RELATIME)),
    ("remount", Flag::Set(libc::MS_REMOUNT)),
    ("ro", Flag::Set(libc::MS_RDONLY)),
    ("rw", Flag::Clear(libc::MS_RDONLY)),
    ("silent", Flag::Set(libc::MS_SILENT)),
    ("strictatime", Flag::Set(libc::MS_STRICTATIME)),
    ("suid", Flag::Clear(libc::MS_NOSUID)),
    ("symfollow", Flag::Clear(MS_NOSYMFOLLOW)),
    ("sync", Flag::Set(libc::MS_SYNCHRONOUS)),
];

/// MS_NOSYMFOLLOW (Linux 5.10), not in every libc.
pub const MS_NOSYMFOLLOW: c_ulong = 256;

/// Propagation options; each becomes its own mount(2)/mount_setattr call after the mount.
const PROPAGATION: &[(&str, c_ulong)] = &[
    ("private", libc::MS_PRIVATE),
    ("rprivate", libc::MS_PRIVATE | libc::MS_REC),
    ("shared", libc::MS_SHARED),
    ("rshared", libc::MS_SHARED | libc::MS_REC),
    ("slave", libc::MS_SLAVE),
    ("rslave", libc::MS_SLAVE | libc::MS_REC),
    ("unbindable", libc::MS_UNBINDABLE),
    ("runbindable", libc::MS_UNBINDABLE | libc::MS_REC),
];

const ATIME_MASK: u64 = libc::MOUNT_ATTR__ATIME;

/// Recursive attribute options: (name, attr bits to set, attr bits to clear). The atime
/// setting is an enum in the kernel, so every atime option clears the whole field and sets
/// one value: `ratime`/`rnostrictatime` go back to relatime (the kernel default) and
/// `rnorelatime` selects strictatime, mirroring what the mount(2) spelling would leave.
const RECURSIVE: &[(&str, u64, u64)] = &[
    ("rro", libc::MOUNT_ATTR_RDONLY, 0),
    ("rrw", 0, libc::MOUNT_ATTR_RDONLY),
    ("rnosuid", libc::MOUNT_ATTR_NOSUID, 0),
    ("rsuid", 0, libc::MOUNT_ATTR_NOSUID),
    ("rnodev", libc::MOUNT_ATTR_NODEV, 0),
    ("rdev", 0, libc::MOUNT_ATTR_NODEV),
    ("rnoexec", libc::MOUNT_ATTR_NOEXEC, 0),
    ("rexec", 0, libc::MOUNT_ATTR_NOEXEC),
    ("rnodiratime", libc::MOUNT_ATTR_NODIRATIME, 0),
    ("rdiratime", 0, libc::MOUNT_ATTR_NODIRATIME),
    ("rnosymfollow", libc::MOUNT_ATTR_NOSYMFOLLOW, 0),
    ("rsymfollow", 0, libc::MOUNT_ATTR_NOSYMFOLLOW),
    ("rrelatime", libc::MOUNT_ATTR_RELATIME, ATIME_MASK),
    ("rnorelatime", libc::MOUNT_ATTR_STRICTATIME, ATIME_MASK),
    ("rnoatime", libc::MOUNT_ATTR_NOATIME, ATIME_MASK),
    ("ratime", libc::MOUNT_ATTR_RELATIME, ATIME_MASK),
    ("rstrictatime", libc::MOUNT_ATTR_STRICTATIME, ATIME_MASK),
    ("rnostrictatime", libc::MOUNT_ATTR_RELATIME, ATIME_MASK),
];

/// The idmapped-mount options: (name, whether the idmapping applies to the submounts too).
const IDMAP: &[(&str, bool)] = &[("idmap", false), ("ridmap", true)];

/// Parsed `mounts[].options`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// mount(2) flags to set.
    pub flags: c_ulong,
    /// mount(2) flags an option explicitly cleared (`rw`, `suid`, `exec`, ...).
    pub cleared: c_ulong,
    /// Propagation changes, in order.
    pub propagation: Vec<c_ulong>,
    /// Recursive attributes (`rro`, `rnosuid`, ...).
    pub recursive: MountAttr,
    /// Filesystem-specific options, comma-joined in order.
    pub data: Vec<String>,
    /// Copy the destination's old contents into the new tmpfs.
    pub tmpcopyup: bool,
    /// `idmap` (`Some(false)`) or `ridmap` (`Some(true)`, submounts too); the last one wins.
    pub idmap: Option<bool>,
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }
    pub fn is_rec(&self) -> bool {
        self.flags & libc::MS_REC != 0
    }
    pub fn data_string(&self) -> String {
        self.data.join(",")
    }

    /// The per-mount attributes a bind mount gets after the bind, as runc's remount
    /// (`MS_REMOUNT|MS_BIND|flags`) gives them; `None` keeps the source's flags.
    ///
    /// - No flag set and none cleared beyond bind/rbind: the source's flags stay.
    /// - Otherwise ro, nosuid, nodev, noexec and nosymfollow become exactly the flags asked
    ///   for: one not named is cleared, so `bind,nosuid` of a read-only source is read-write.
    ///   (mount(8) would keep the source's other flags; runc does not.)
    /// - The atime setting (noatime, nodiratime, relatime, strictatime) is kept unless one of
    ///   noatime, nodiratime, relatime or strictatime is given; then it is that one, relatime
    ///   unless noatime or strictatime says otherwise, as the kernel's remount sets it.
    ///   Clearing an atime flag alone (`atime`, `norelatime`) keeps the source's setting.
    ///
    /// Superblock flags (sync, dirsync, mand, iversion, lazytime, acl, silent) cannot change
    /// on a bind mount; as with runc, they only trigger the remount.
    pub fn bind_attr(&self) -> Option<MountAttr> {
        let asked = self.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
        if asked == 0 && self.cleared == 0 {
            return None;
        }
        let mut attr = MountAttr::default();
        for (ms, at) in PER_MOUNT {
            if self.flags & ms != 0 {
                attr.set |= at;
            } else {
                attr.clr |= at;
            }
        }
        let atime_flags =
            libc::MS_NOATIME | libc::MS_NODIRATIME | libc::MS_RELATIME | libc::MS_STRICTATIME;
        if self.flags & atime_flags != 0 {
            let value = if self.flags & libc::MS_STRICTATIME != 0 {
                libc::MOUNT_ATTR_STRICTATIME
            } else if self.flags & libc::MS_NOATIME != 0 {
                libc::MOUNT_ATTR_NOATIME
            } else {
                libc::MOUNT_ATTR_RELATIME
            };
            attr.clr |= ATIME_MASK;
            attr.set |= value;
            if self.flags & libc::MS_NODIRATIME != 0 {
                attr.set |= libc::MOUNT_ATTR_NODIRATIME;
            } else {
                attr.clr |= libc::MOUNT_ATTR_NODIRATIME;
            }
        }
        Some(attr)
    }

    /// After `bind_attr` was refused with EPERM (a user namespace locks the flags of mounts
    /// it got from its parent): keep the locked flags the source has, as runc retries,
    /// unless the options cleared one of them by name, which cannot be honoured.
    /// `source` holds the source mount's `MOUNT_ATTR_*` flags.
    pub fn keep_locked(&self, mut attr: MountAttr, source: u64) -> Result<MountAttr> {
        for (ms, at, name) in LOCKABLE {
            if source & at == 0 {
                continue;
            }
            if self.cleared & ms != 0 {
                bail!(
                    "the source is {name} and its user namespace locks that flag: it cannot be cleared"
                );
            }
            attr.clr &= !at;
            attr.set |= at;
        }
        Ok(attr)
    }
}

/// mount(2) flags that are per-mount attributes, and their `MOUNT_ATTR_*` bits.
const PER_MOUNT: [(c_ulong, u64); 5] = [
    (libc::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
    (libc::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
    (libc::MS_NODEV, libc::MOUNT_ATTR_NODEV),
    (libc::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
    (MS_NOSYMFOLLOW, libc::MOUNT_ATTR_NOSYMFOLLOW),
];

/// The per-mount flags a user namespace locks on the mounts it inherits (nosymfollow is not
/// lockable; the atime setting is, and cannot change at all).
const LOCKABLE: [(c_ulong, u64, &str); 4] = [
    (libc::MS_RDONLY, libc::MOUNT_ATTR_RDONLY, "ro"),
    (libc::MS_NOSUID, libc::MOUNT_ATTR_NOSUID, "nosuid"),
    (libc::MS_NODEV, libc::MOUNT_ATTR_NODEV, "nodev"),
    (libc::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC, "noexec"),
];

/// Parse `options` in order.
pub fn parse(options: &[String]) -> Result<MountOptions> {
    let mut out = MountOptions::default();
    for opt in options {
        let opt = opt.as_str();
        if let Some((_, flag)) = FLAGS.iter().find(|(n, _)| *n == opt) {
            match flag {
                Flag::Set(f) => {
                    out.flags |= f;
                    out.cleared &= !f;
                }
                Flag::Clear(f) => {
                    out.flags &= !f;
                    out.cleared |= f;
                }
            }
        } else if let Some((_, p)) = PROPAGATION.iter().find(|(n, _)| *n == opt) {
            out.propagation.push(*p);
        } else if let Some((_, set, clr)) = RECURSIVE.iter().find(|(n, _, _)| *n == opt) {
            apply_recursive(&mut out.recursive, *set, *clr);
        } else if opt == "tmpcopyup" {
            out.tmpcopyup = true;
        } else if let Some((_, rec)) = IDMAP.iter().find(|(n, _)| *n == opt) {
            out.idmap = Some(*rec);
        } else if !opt.is_empty() {
            out.data.push(opt.to_string());
        }
    }
    Ok(out)
}

fn apply_recursive(attr: &mut MountAttr, set: u64, clr: u64) {
    if clr & ATIME_MASK == ATIME_MASK {
        attr.set &= !ATIME_MASK;
        attr.clr |= ATIME_MASK;
        attr.set |= set;
        return;
    }
    attr.set = (attr.set & !clr) | set;
    attr.clr = (attr.clr & !set) | clr;
}

/// Every option name this table accepts (for `features`).
pub fn known_options() -> Vec<&'static str> {
    let mut v: Vec<&str> = FLAGS.iter().map(|(n, _)| *n).collect();
    v.extend(PROPAGATION.iter().map(|(n, _)| *n));
    v.extend(RECURSIVE.iter().map(|(n, _, _)| *n));
    v.extend(IDMAP.iter().map(|(n, _)| *n));
    v.push("tmpcopyup");
    v.sort_unstable();
    v
}

/// A `linux.rootfsPropagation` value as mount(2) propagation flags.
pub fn propagation_flag(name: &str) -> Result<c_ulong> {
    match PROPAGATION.iter().find(|(n, _)| *n == name) {
        Some((_, f)) => Ok(*f),
        None => bail!("linux.rootfsPropagation: unknown value {name:?}"),
    }
}

/// mount(2) propagation flags (without MS_REC) as a `mount_setattr` propagation value.
pub fn propagation_attr(flags: c_ulong) -> u64 {
    flags & (libc::MS_PRIVATE | libc::MS_SHARED | libc::MS_SLAVE | libc::MS_UNBINDABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> MountOptions {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn later_option_wins() {
        let o = p(&["ro", "rw", "nosuid"]);
        assert_eq!(o.flags, libc::MS_NOSUID);
        assert_eq!(o.cleared, libc::MS_RDONLY);
        let o = p(&["rw", "ro"]);
        assert_eq!(o.flags, libc::MS_RDONLY);
        assert_eq!(o.cleared, 0);
    }

    #[test]
    fn unknown_options_go_to_data() {
        let o = p(&["nosuid", "mode=755", "size=65536k", "defaults"]);
        assert_eq!(o.data_string(), "mode=755,size=65536k");
        assert_eq!(o.flags, libc::MS_NOSUID);
    }

    #[test]
    fn bind_and_propagation() {
        let o = p(&["rbind", "rslave", "private"]);
        assert!(o.is_bind() && o.is_rec());
        assert_eq!(
            o.propagation,
            vec![libc::MS_SLAVE | libc::MS_REC, libc::MS_PRIVATE]
        );
        assert_eq!(propagation_attr(o.propagation[0]), libc::MS_SLAVE);
    }

    #[test]
    fn recursive_attrs() {
        let o = p(&["rro", "rnosuid", "rnoatime"]);
        assert_eq!(
            o.recursive.set,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOATIME
        );
        assert_eq!(o.recursive.clr, ATIME_MASK);
        let o = p(&["rro", "rrw"]);
        assert_eq!(o.recursive.set, 0);
        assert_eq!(o.recursive.clr, libc::MOUNT_ATTR_RDONLY);
        let o = p(&["rnoatime", "rstrictatime"]);
        assert_eq!(o.recursive.set, libc::MOUNT_ATTR_STRICTATIME);
    }

    #[test]
    fn bind_attr_as_runc_remounts() {
        use libc::{
            MOUNT_ATTR_NODEV as NODEV, MOUNT_ATTR_NODIRATIME as NODIRATIME,
            MOUNT_ATTR_NOEXEC as NOEXEC, MOUNT_ATTR_NOSUID as NOSUID,
            MOUNT_ATTR_NOSYMFOLLOW as NOSYMFOLLOW, MOUNT_ATTR_RDONLY as RDONLY,
        };
        // Nothing asked: the source's flags stay, atime included.
        assert_eq!(p(&["rbind", "rprivate"]).bind_attr(), None);
        // A flag cleared by name is enough to remount; unnamed flags are cleared.
        let a = p(&["bind", "dev"]).bind_attr().unwrap();
        assert_eq!(
            (a.set, a.clr),
            (0, RDONLY | NOSUID | NODEV | NOEXEC | NOSYMFOLLOW)
        );
        let a = p(&["bind", "ro", "nosuid", "exec"]).bind_attr().unwrap();
        assert_eq!(a.set, RDONLY | NOSUID);
        assert_eq!(a.clr, NODEV | NOEXEC | NOSYMFOLLOW);
        // Clearing an atime flag alone keeps the atime setting; naming one sets it.
        assert_eq!(
            p(&["bind", "atime"]).bind_attr().unwrap().clr & ATIME_MASK,
            0
        );
        let a = p(&["bind", "nodiratime"]).bind_attr().unwrap();
        assert_eq!(a.set, libc::MOUNT_ATTR_RELATIME | NODIRATIME);
        assert_eq!(a.clr & ATIME_MASK, ATIME_MASK);
        let a = p(&["bind", "noatime", "strictatime"]).bind_attr().unwrap();
        assert_eq!(a.set, libc::MOUNT_ATTR_STRICTATIME);
        assert_ne!(a.clr & NODIRATIME, 0);
        // Locked flags of the source are kept unless cleared by name.
        let o = p(&["bind", "nosuid"]);
        let a = o
            .keep_locked(o.bind_attr().unwrap(), RDONLY | NODEV)
            .unwrap();
        assert_eq!(a.set, NOSUID | RDONLY | NODEV);
        assert_eq!(a.clr & (RDONLY | NODEV), 0);
        let o = p(&["bind", "rw", "nosuid"]);
        let err = o.keep_locked(o.bind_attr().unwrap(), RDONLY).unwrap_err();
        assert!(err.to_string().contains("ro"), "{err}");
    }

    #[test]
    fn idmap_ridmap_and_tmpcopyup_parsed() {
        assert_eq!(p(&["bind"]).idmap, None);
        assert_eq!(p(&["rbind", "idmap"]).idmap, Some(false));
        assert_eq!(p(&["ridmap"]).idmap, Some(true));
        assert_eq!(
            p(&["ridmap", "idmap"]).idmap,
            Some(false),
            "the last one wins"
        );
        assert!(p(&["tmpcopyup"]).tmpcopyup);
    }

    #[test]
    fn covers_runc_feature_list() {
        let runc = [
            "acl",
            "async",
            "atime",
            "bind",
            "defaults",
            "dev",
            "diratime",
            "dirsync",
            "exec",
            "idmap",
            "iversion",
            "lazytime",
            "loud",
            "mand",
            "noacl",
            "noatime",
            "nodev",
            "nodiratime",
            "noexec",
            "noiversion",
            "nolazytime",
            "nomand",
            "norelatime",
            "nostrictatime",
            "nosuid",
            "nosymfollow",
            "private",
            "ratime",
            "rbind",
            "rdev",
            "rdiratime",
            "relatime",
            "remount",
            "rexec",
            "ridmap",
            "rnoatime",
            "rnodev",
            "rnodiratime",
            "rnoexec",
            "rnorelatime",
            "rnostrictatime",
            "rnosuid",
            "rnosymfollow",
            "ro",
            "rprivate",
            "rrelatime",
            "rro",
            "rrw",
            "rshared",
            "rslave",
            "rstrictatime",
            "rsuid",
            "rsymfollow",
            "runbindable",
            "rw",
            "shared",
            "silent",
            "slave",
            "strictatime",
            "suid",
            "symfollow",
            "sync",
            "tmpcopyup",
            "unbindable",
        ];
        assert_eq!(known_options(), runc.to_vec());
        for o in runc {
            assert!(p(&[o]).data.is_empty(), "{o} fell into the data string");
        }
    }
}
