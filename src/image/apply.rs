//! Applying layer tarballs to a root directory, safely and with few syscalls.
//!
//! Every path is resolved through fds under the root: the parent directory of an entry is
//! opened with `openat2(RESOLVE_IN_ROOT)`, so symlinks met on the way (absolute or with `..`)
//! stay inside the root, and the final component is created with an `*at` call that never
//! follows it (`O_NOFOLLOW|O_EXCL`, `mkdirat`, `symlinkat`, `mknodat`, `linkat` without
//! `AT_SYMLINK_FOLLOW`). Ownership and modes are set on the fd we created or with
//! `AT_SYMLINK_NOFOLLOW`, never through a path that could be a link. Names that climb out with
//! `..` are refused before any resolution. The last parent fd is cached, so an entry usually
//! costs create + write + fchown + futimens + close.
//!
//! Two targets: a flattened rootfs (whiteouts delete from lower layers) or one overlayfs layer
//! directory (whiteouts become 0:0 char devices, opaque markers `trusted.overlay.opaque=y`).
//! Directory modes and mtimes are applied at the end (children first), so later entries and
//! layers can still write into read-only directories and don't bump the recorded mtimes.
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use anyhow::{bail, Context, Result};

use super::tarstream::{Entry, Kind, TarReader, Time};
use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid,
    XattrFlags,
};
use rustix::io::Errno;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
const ROOTLESS_XATTR: &str = "user.rootlesscontainers";
const OVERLAY_OPAQUE: &str = "trusted.overlay.opaque";
const OVERLAY_PREFIX: &str = "trusted.overlay.";
const COPY_BUF: usize = 256 << 10;

/// How entries are written.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApplyOptions {
    /// Unprivileged: ownership goes to `user.rootlesscontainers`, devices are skipped and
    /// privileged xattrs are dropped (with a warning), as umoci does.
    pub rootless: bool,
    /// Write an overlayfs layer directory instead of a flattened tree.
    pub overlay: bool,
}

/// Counters for the summary.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApplyStats {
    pub entries: u64,
    pub bytes: u64,
    pub skipped: u64,
}

/// What an entry is, whatever it was read from.
enum Body<'a> {
    /// `sparse`: the data segments `(offset, length)` of a file with holes; `data` holds their
    /// bytes one after another and `size` is the file's length.
    File {
        size: u64,
        data: &'a mut dyn Read,
        sparse: Option<Vec<(u64, u64)>>,
    },
    Dir,
    Symlink(Vec<u8>),
    Hardlink(PathBuf),
    Device(FileType, u32, u32),
    Fifo,
}

struct DirMeta {
    mode: u32,
    times: Timestamps,
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    times: Timestamps,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

impl Meta {
    /// A file's mode bits, owner and times, without xattrs (the caller reads those).
    fn of(m: &std::fs::Metadata) -> Meta {
        use std::os::unix::fs::MetadataExt;
        Meta {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            times: ts_of(m),
            xattrs: Vec::new(),
        }
    }
}

/// Applies layers to one root directory.
pub struct Applier {
    root: Rc<OwnedFd>,
    opts: ApplyOptions,
    cached: Option<(PathBuf, Rc<OwnedFd>)>,
    /// Overlay mode: the lower layers' directories, top first (for resolving names).
    lowers: Vec<OwnedFd>,
    dirs: HashMap<PathBuf, DirMeta>,
    buf: Vec<u8>,
    warned: HashSet<String>,
    pub stats: ApplyStats,
}

/// Lexically clean a tar name: drop `/`, `.` and empty parts, fold `..`, and refuse a name
/// that climbs above the root.
pub fn clean_path(raw: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if !out.pop() {
                    bail!("tar entry {raw:?} climbs out of the rootfs with '..'; refused");
                }
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Ok(out)
}

fn split(path: &Path) -> (&Path, &OsStr) {
    (
        path.parent().unwrap_or(Path::new("")),
        path.file_name().unwrap_or(OsStr::new("")),
    )
}

fn timespec(t: Time) -> Timespec {
    Timespec {
        tv_sec: t.sec,
        tv_nsec: t.nsec.into(),
    }
}

/// atime and mtime; an entry without an atime gets its mtime, as umoci and GNU tar set it.
fn ts(mtime: Time, atime: Option<Time>) -> Timestamps {
    Timestamps {
        last_access: timespec(atime.unwrap_or(mtime)),
        last_modification: timespec(mtime),
    }
}

/// The times of a file on disk (a cached layer, or a lower layer's file).
fn ts_of(m: &std::fs::Metadata) -> Timestamps {
    use std::os::unix::fs::MetadataExt;
    let t = |sec, nsec: i64| Time {
        sec,
        nsec: nsec as u32,
    };
    ts(
        t(m.mtime(), m.mtime_nsec()),
        Some(t(m.atime(), m.atime_nsec())),
    )
}

/// The `user.rootlesscontainers` payload (a protobuf `Resource{uint32 uid=1; uint32 gid=2}`).
pub fn rootless_payload(uid: u32, gid: u32) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u32) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut out = Vec::new();
    if uid != 0 {
        out.push(0x08);
        varint(&mut out, uid);
    }
    if gid != 0 {
        out.push(0x10);
        varint(&mut out, gid);
    }
    out
}

fn in_root() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

impl Applier {
    /// `root` is an fd on the (existing) target directory.
    pub fn new(root: OwnedFd, opts: ApplyOptions) -> Self {
        // Modes come from the layers; the umask must not trim them.
        rustix::process::umask(Mode::empty());
        Applier {
            root: Rc::new(root),
            opts,
            cached: None,
            lowers: Vec::new(),
            dirs: HashMap::new(),
            buf: vec![0; COPY_BUF],
            warned: HashSet::new(),
            stats: ApplyStats::default(),
        }
    }

    /// Overlay mode: the layers below this one, top first.
    pub fn with_lowers(mut self, lowers: Vec<OwnedFd>) -> Self {
        self.lowers = lowers;
        self
    }

    /// Apply one layer tar stream.
    pub fn apply_layer<R: Read>(&mut self, r: R) -> Result<()> {
        let mut ar = TarReader::new(r);
        let mut created: HashSet<PathBuf> = HashSet::new();
        while let Some(e) = ar.next_entry()? {
            let raw = PathBuf::from(OsString::from_vec(e.path.clone()));
            self.apply_entry(&mut ar, e, &raw, &mut created)
                .with_context(|| format!("tar entry {raw:?}"))?;
            self.stats.entries += 1;
        }
        Ok(())
    }

    fn warn_once(&mut self, key: &str, msg: String) {
        if self.warned.insert(key.to_string()) {
            tracing::warn!("{msg}");
            eprintln!("berth: warning: {msg}");
        }
    }

    fn apply_entry<R: Read>(
        &mut self,
        ar: &mut TarReader<R>,
        e: Entry,
        raw: &Path,
        created: &mut HashSet<PathBuf>,
    ) -> Result<()> {
        let path = clean_path(raw)?;
        if self.whiteout_name(&path, created)? {
            return Ok(());
        }
        let meta = self.meta_of(&e)?;
        let body = match e.kind {
            Kind::File => {
                let mut data = EntryData(ar);
                let body = Body::File {
                    size: e.size,
                    data: &mut data,
                    sparse: e.sparse,
                };
                return self.apply_item(&path, body, &meta, created);
            }
            Kind::Dir => Body::Dir,
            Kind::Symlink => Body::Symlink(e.link),
            Kind::Hardlink => {
                if e.link.is_empty() {
                    bail!("hardlink without a target");
                }
                Body::Hardlink(PathBuf::from(OsString::from_vec(e.link)))
            }
            Kind::Char => Body::Device(FileType::CharacterDevice, e.dev_major, e.dev_minor),
            Kind::Block => Body::Device(FileType::BlockDevice, e.dev_major, e.dev_minor),
            Kind::Fifo => Body::Fifo,
        };
        self.apply_item(&path, body, &meta, created)
    }

    fn meta_of(&mut self, e: &Entry) -> Result<Meta> {
        let mut xattrs = Vec::with_capacity(e.xattrs.len());
        for (k, v) in &e.xattrs {
            if self.opts.overlay && k.starts_with(OVERLAY_PREFIX.as_bytes()) {
                // They would change how overlayfs reads this layer (redirects, metacopy).
                self.stats.skipped += 1;
                self.warn_once(
                    OVERLAY_PREFIX,
                    format!("overlay: ignoring the layer's {OVERLAY_PREFIX}* xattrs, which overlayfs would interpret"),
                );
                continue;
            }
            xattrs.push((OsString::from_vec(k.clone()), v.clone()));
        }
        Ok(Meta {
            mode: e.mode,
            uid: u32::try_from(e.uid).context("entry uid")?,
            gid: u32::try_from(e.gid).context("entry gid")?,
            times: ts(e.mtime, e.atime),
            xattrs,
        })
    }

    /// Handle `.wh..wh..opq` and `.wh.NAME` names (opaque matched first, exactly); true when
    /// `path` was one.
    fn whiteout_name(&mut self, path: &Path, created: &HashSet<PathBuf>) -> Result<bool> {
        let (parent, name) = split(path);
        let name_bytes = name.as_bytes();
        if name_bytes == OPAQUE.as_bytes() {
            self.opaque(parent, created)?;
            return Ok(true);
        }
        let Some(target) = name_bytes.strip_prefix(WHITEOUT.as_bytes()) else {
            return Ok(false);
        };
        if target.is_empty() {
            bail!("a bare whiteout '.wh.' names nothing; refused");
        }
        if target == b"." || target == b".." || target.starts_with(WHITEOUT.as_bytes()) {
            bail!(
                "whiteout for {:?} is not allowed",
                OsStr::from_bytes(target)
            );
        }
        self.whiteout(parent, OsStr::from_bytes(target))?;
        Ok(true)
    }

    /// Create one (cleaned) entry.
    fn apply_item(
        &mut self,
        path: &Path,
        body: Body,
        meta: &Meta,
        created: &mut HashSet<PathBuf>,
    ) -> Result<()> {
        if path.as_os_str().is_empty() {
            if !matches!(body, Body::Dir) {
                bail!("the root of the layer must be a directory");
            }
            let root = self.root.clone();
            self.own_fd(&root, meta)?;
            self.dirs.insert(
                PathBuf::new(),
                DirMeta {
                    mode: meta.mode,
                    times: meta.times.clone(),
                },
            );
            return Ok(());
        }
        created.insert(path.to_path_buf());
        let (parent, name) = split(path);
        let pfd = self.parent(parent)?;
        match body {
            Body::File { size, data, sparse } => {
                self.file(&pfd, name, path, size, data, sparse, meta)
            }
            Body::Dir => self.dir(&pfd, name, path, meta),
            Body::Symlink(target) => {
                self.create(&pfd, name, path, true, |p, n| {
                    rfs::symlinkat(OsStr::from_bytes(&target), p, n)
                })
                .with_context(|| format!("creating symlink {path:?}"))?;
                self.finish_node(&pfd, name, path, meta)
            }
            Body::Hardlink(target) => self.hardlink(&pfd, name, path, &target),
            Body::Device(ft, major, minor) => {
                self.node(&pfd, name, path, ft, rfs::makedev(major, minor), meta)
            }
            Body::Fifo => self.node(&pfd, name, path, FileType::Fifo, 0, meta),
        }
    }

    /// Apply a layer stored as a directory in overlay form (the layer cache): the same entry
    /// logic as a tar, with 0:0 char devices read as whiteouts and `trusted.overlay.opaque`
    /// directories as opaque markers, and files sharing an inode as hardlinks.
    pub fn apply_dir_layer(&mut self, layer: &Path) -> Result<()> {
        let mut created = HashSet::new();
        let mut inodes = HashMap::new();
        self.walk_layer(layer, PathBuf::new(), &mut created, &mut inodes)
            .with_context(|| format!("copying cached layer {}", layer.display()))
    }

    fn walk_layer(
        &mut self,
        abs: &Path,
        rel: PathBuf,
        created: &mut HashSet<PathBuf>,
        inodes: &mut HashMap<u64, PathBuf>,
    ) -> Result<()> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let m =
            std::fs::symlink_metadata(abs).with_context(|| format!("stat {}", abs.display()))?;
        let ft = m.file_type();
        if ft.is_char_device() && m.rdev() == 0 {
            let (p, n) = split(&rel);
            self.stats.entries += 1;
            return self.whiteout(p, n);
        }
        let mut meta = Meta::of(&m);
        let mut opaque = false;
        for k in xattr::list(abs).with_context(|| format!("listing xattrs of {}", abs.display()))? {
            if k.as_bytes() == OVERLAY_OPAQUE.as_bytes() {
                opaque = xattr::get(abs, &k).ok().flatten().as_deref() == Some(b"y");
            } else if !k.as_bytes().starts_with(OVERLAY_PREFIX.as_bytes()) {
                if let Some(v) =
                    xattr::get(abs, &k).with_context(|| format!("reading xattr {k:?}"))?
                {
                    meta.xattrs.push((k, v));
                }
            }
        }
        self.stats.entries += 1;
        if ft.is_dir() {
            self.apply_item(&rel, Body::Dir, &meta, created)?;
            if opaque {
                self.opaque(&rel, created)?;
            }
            let mut names: Vec<OsString> = std::fs::read_dir(abs)
                .with_context(|| format!("listing {}", abs.display()))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<std::io::Result<_>>()?;
            names.sort();
            for n in names {
                self.walk_layer(&abs.join(&n), rel.join(&n), created, inodes)?;
            }
            return Ok(());
        }
        if ft.is_file() {
            if m.nlink() > 1 {
                if let Some(first) = inodes.get(&m.ino()) {
                    return self.apply_item(&rel, Body::Hardlink(first.clone()), &meta, created);
                }
                inodes.insert(m.ino(), rel.clone());
            }
            let f = File::open(abs).with_context(|| format!("opening {}", abs.display()))?;
            return self.file_from_disk(&rel, f, &m, &meta, created);
        }
        let body = if ft.is_symlink() {
            Body::Symlink(std::fs::read_link(abs)?.into_os_string().into_vec())
        } else if ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_char_device() {
                FileType::CharacterDevice
            } else {
                FileType::BlockDevice
            };
            Body::Device(kind, rfs::major(m.rdev()), rfs::minor(m.rdev()))
        } else if ft.is_fifo() {
            Body::Fifo
        } else {
            bail!("{}: sockets cannot be part of a layer", abs.display());
        };
        self.apply_item(&rel, body, &meta, created)
    }

    /// An fd on directory `rel` under the root (created, 0755 root-owned, when missing, as
    /// tar does for archives without directory entries).
    fn parent(&mut self, rel: &Path) -> Result<Rc<OwnedFd>> {
        if rel.as_os_str().is_empty() {
            return Ok(self.root.clone());
        }
        if let Some((p, fd)) = &self.cached {
            if p == rel {
                return Ok(fd.clone());
            }
        }
        let fd = match self.open_dir(rel) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                let real = self.mkdir_all(rel)?;
                self.open_dir(&real)
                    .with_context(|| format!("opening directory {rel:?}"))?
            }
            Err(Errno::NOTDIR) => bail!("{rel:?} is not a directory"),
            Err(e) => {
                return Err(e).with_context(|| format!("opening directory {rel:?} in the rootfs"))
            }
        };
        let fd = Rc::new(fd);
        self.cached = Some((rel.to_path_buf(), fd.clone()));
        Ok(fd)
    }

    fn open_dir(&self, rel: &Path) -> rustix::io::Result<OwnedFd> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        rfs::openat2(&*self.root, rel, flags, Mode::empty(), in_root())
    }

    /// Create the missing directories of `rel` the way the kernel would resolve it under the
    /// root: symlinks met on the way (also dangling or absolute ones, and in overlay mode those
    /// of lower layers) are followed inside the root, and a directory missing here but present
    /// in a lower layer is created with that directory's mode and owner.
    fn mkdir_all(&mut self, rel: &Path) -> Result<PathBuf> {
        let mut todo: Vec<OsString> = rel
            .components()
            .rev()
            .map(|c| c.as_os_str().to_os_string())
            .collect();
        let mut cur = PathBuf::new();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                cur.pop();
                continue;
            }
            if c == "." || c == "/" {
                continue;
            }
            let next = cur.join(&c);
            let st = match self.stat_strict(&self.root, &next) {
                Some(st) => Some(st),
                None => self
                    .lowers
                    .iter()
                    .find_map(|l| self.stat_strict(l, &next))
                    .filter(|st| {
                        // An overlay whiteout in a lower layer hides the name.
                        !(FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
                            && st.st_rdev == 0)
                    }),
            };
            match st.map(|st| (FileType::from_raw_mode(st.st_mode), st)) {
                Some((FileType::Directory, st)) => {
                    if self.stat_strict(&self.root, &next).is_none() {
                        // Present below only: mirror it here so the merged view keeps its attributes.
                        let pfd = self
                            .open_dir(&cur)
                            .with_context(|| format!("opening directory {cur:?}"))?;
                        rfs::mkdirat(
                            &pfd,
                            c.as_os_str(),
                            Mode::from_raw_mode(st.st_mode & 0o7777 | 0o700),
                        )
                        .with_context(|| format!("creating directory {next:?}"))?;
                        rfs::chownat(
                            &pfd,
                            c.as_os_str(),
                            Some(Uid::from_raw(st.st_uid)),
                            Some(Gid::from_raw(st.st_gid)),
                            AtFlags::SYMLINK_NOFOLLOW,
                        )
                        .with_context(|| format!("chown {next:?}"))?;
                        self.dirs.insert(
                            next.clone(),
                            DirMeta {
                                mode: st.st_mode & 0o7777,
                                times: ts(
                                    Time {
                                        sec: st.st_mtime,
                                        nsec: st.st_mtime_nsec as u32,
                                    },
                                    Some(Time {
                                        sec: st.st_atime,
                                        nsec: st.st_atime_nsec as u32,
                                    }),
                                ),
                            },
                        );
                    }
                    cur = next;
                }
                Some((FileType::Symlink, _)) => {
                    links += 1;
                    if links > 40 {
                        bail!("too many symlinks resolving {rel:?}");
                    }
                    let target = self.readlink_any(&next)?;
                    if target.is_absolute() {
                        cur = PathBuf::new();
                    }
                    todo.extend(
                        target
                            .components()
                            .rev()
                            .map(|c| c.as_os_str().to_os_string()),
                    );
                }
                Some(_) => bail!("{next:?} is not a directory (resolving {rel:?})"),
                None => {
                    let pfd = self
                        .open_dir(&cur)
                        .with_context(|| format!("opening directory {cur:?}"))?;
                    match rfs::mkdirat(&pfd, c.as_os_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => {
                            return Err(e).with_context(|| format!("creating directory {next:?}"))
                        }
                    }
                    cur = next;
                }
            }
        }
        Ok(cur)
    }

    /// lstat `rel` under `root` where no component may be a symlink (`rel` is already resolved).
    fn stat_strict(&self, root: &OwnedFd, rel: &Path) -> Option<rfs::Stat> {
        let fd = rfs::openat2(
            root,
            rel,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        );
        match fd {
            Ok(fd) => rfs::fstat(&fd).ok(),
            // ELOOP: the last component is a symlink; report it as one.
            Err(Errno::LOOP) => rfs::statat(root, rel, AtFlags::SYMLINK_NOFOLLOW).ok(),
            Err(_) => None,
        }
    }

    fn readlink_any(&self, rel: &Path) -> Result<PathBuf> {
        for r in std::iter::once(&*self.root).chain(self.lowers.iter()) {
            if let Ok(t) = rfs::readlinkat(r, rel, Vec::new()) {
                return Ok(PathBuf::from(OsStr::from_bytes(t.as_bytes())));
            }
        }
        bail!("reading symlink {rel:?}")
    }

    /// Run `make`; when the name exists, remove what is there (unless `replace_dirs` is false
    /// and it is a directory) and try once more.
    fn create(
        &mut self,
        pfd: &OwnedFd,
        name: &OsStr,
        path: &Path,
        replace_dirs: bool,
        make: impl Fn(&OwnedFd, &OsStr) -> rustix::io::Result<()>,
    ) -> Result<()> {
        match make(pfd, name) {
            Err(Errno::EXIST) => {
                let st = rfs::statat(pfd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .with_context(|| format!("stat {path:?}"))?;
                let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                if is_dir && !replace_dirs {
                    return Err(Errno::EXIST).with_context(|| format!("creating {path:?}"));
                }
                self.remove(pfd, name, path, is_dir)?;
                Ok(make(pfd, name)?)
            }
            r => Ok(r?),
        }
    }

    /// Remove `name` (recursively if a directory) and forget cached state below it.
    fn remove(&mut self, pfd: &OwnedFd, name: &OsStr, path: &Path, is_dir: bool) -> Result<()> {
        if is_dir {
            remove_tree(pfd, name).with_context(|| format!("removing directory {path:?}"))?;
            self.dirs.retain(|p, _| !p.starts_with(path));
        } else {
            rfs::unlinkat(pfd, name, AtFlags::empty())
                .with_context(|| format!("removing {path:?}"))?;
        }
        if self
            .cached
            .as_ref()
            .is_some_and(|(p, _)| p.starts_with(path))
        {
            self.cached = None;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn file(
        &mut self,
        pfd: &OwnedFd,
        name: &OsStr,
        path: &Path,
        size: u64,
        e: &mut dyn Read,
        sparse: Option<Vec<(u64, u64)>>,
        meta: &Meta,
    ) -> Result<()> {
        // chown (as root) and write (without CAP_FSETID) clear setuid/setgid: set them last.
        let fix_mode = meta.mode & 0o6000 != 0;
        let create_mode = Mode::from_raw_mode(if fix_mode { 0o600 } else { meta.mode });
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rfs::openat(pfd, name, flags, create_mode) {
            Err(Errno::EXIST) => {
                let st = rfs::statat(pfd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .with_context(|| format!("stat {path:?}"))?;
                self.remove(
                    pfd,
                    name,
                    path,
                    FileType::from_raw_mode(st.st_mode) == FileType::Directory,
                )?;
                rfs::openat(pfd, name, flags, create_mode)
            }
            r => r,
        }
        .with_context(|| format!("creating file {path:?}"))?;
        let mut f = File::from(fd);
        match sparse {
            None => self.copy_data(&mut f, e, size, path)?,
            Some(segments) => {
                // Only the data is written: the gaps stay holes.
                for (off, len) in segments {
                    rfs::seek(&f, rfs::SeekFrom::Start(off))
                        .with_context(|| format!("seeking in {path:?}"))?;
                    self.copy_data(&mut f, e, len, path)?;
                }
                f.set_len(size)
                    .with_context(|| format!("setting the length of {path:?}"))?;
            }
        }
        self.own_fd(f.as_fd(), meta)
            .with_context(|| format!("{path:?}"))?;
        if fix_mode {
            rfs::fchmod(&f, Mode::from_raw_mode(meta.mode))
                .with_context(|| format!("chmod {path:?}"))?;
        }
        self.xattrs_fd(f.as_fd(), path, &meta.xattrs)?;
        rfs::futimens(&f, &meta.times).with_context(|| format!("setting times of {path:?}"))?;
        Ok(())
    }

    /// Copy `len` bytes of `e` to `f` at its current offset.
    fn copy_data(&mut self, f: &mut File, e: &mut dyn Read, len: u64, path: &Path) -> Result<()> {
        let mut left = len;
        while left > 0 {
            let want = self
                .buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let mut filled = 0;
            while filled < want {
                let n = e
                    .read(&mut self.buf[filled..want])
                    .with_context(|| format!("reading data of {path:?}"))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                bail!("{path:?}: tar data ends {left} bytes early");
            }
            f.write_all(&self.buf[..filled])
                .with_context(|| format!("writing {path:?}"))?;
            left -= filled as u64;
            self.stats.bytes += filled as u64;
        }
        Ok(())
    }

    fn dir(&mut self, pfd: &OwnedFd, name: &OsStr, path: &Path, meta: &Meta) -> Result<()> {
        // Owner-writable until the end so later entries can be written below it.
        let mode = Mode::from_raw_mode((meta.mode | 0o700) & 0o1777);
        match rfs::mkdirat(pfd, name, mode) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                let st = rfs::statat(pfd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .with_context(|| format!("stat {path:?}"))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                    self.remove(pfd, name, path, false)?;
                    rfs::mkdirat(pfd, name, mode)
                        .with_context(|| format!("creating directory {path:?}"))?;
                }
            }
            Err(e) => return Err(e).with_context(|| format!("creating directory {path:?}")),
        }
        if self.opts.rootless || !meta.xattrs.is_empty() {
            let fd = rfs::openat(
                pfd,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .with_context(|| format!("opening directory {path:?}"))?;
            self.own_fd(fd.as_fd(), meta)?;
            self.xattrs_fd(fd.as_fd(), path, &meta.xattrs)?;
        } else {
            self.own_at(pfd, name, path, meta)?;
        }
        self.dirs.insert(
            path.to_path_buf(),
            DirMeta {
                mode: meta.mode,
                times: meta.times.clone(),
            },
        );
        Ok(())
    }

    fn node(
        &mut self,
        pfd: &OwnedFd,
        name: &OsStr,
        path: &Path,
        ft: FileType,
        dev: rfs::Dev,
        meta: &Meta,
    ) -> Result<()> {
        if ft != FileType::Fifo && self.opts.rootless {
            self.stats.skipped += 1;
            self.warn_once(
                "dev",
                format!(
                    "rootless: device nodes cannot be created; skipping {path:?} and any others"
                ),
            );
            return Ok(());
        }
        let mode = Mode::from_raw_mode(meta.mode & 0o777);
        self.create(pfd, name, path, true, |p, n| {
            rfs::mknodat(p, n, ft, mode, dev)
        })
        .with_context(|| format!("creating {ft:?} {path:?}"))?;
        if meta.mode & 0o7000 != 0 && !self.opts.rootless {
            // mknod ignores the special bits; set them through a path-free fd.
            let fd = rfs::openat(
                pfd,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
            rfs::chmod(proc.as_str(), Mode::from_raw_mode(meta.mode))
                .with_context(|| format!("chmod {path:?}"))?;
        }
        self.finish_node(pfd, name, path, meta)
    }

    /// Owner, xattrs and mtime for an entry we must not open (symlink, device, fifo).
    fn finish_node(&mut self, pfd: &OwnedFd, name: &OsStr, path: &Path, meta: &Meta) -> Result<()> {
        self.own_at(pfd, name, path, meta)?;
        if !meta.xattrs.is_empty() {
            let at = proc_path(pfd, name);
            for (k, v) in &meta.xattrs {
                self.set_xattr(path, k, v, |k, v| {
                    rfs::lsetxattr(at.as_os_str(), k, v, XattrFlags::empty())
                })?;
            }
        }
        rfs::utimensat(pfd, name, &meta.times, AtFlags::SYMLINK_NOFOLLOW)
            .with_context(|| format!("setting times of {path:?}"))?;
        Ok(())
    }

    fn hardlink(&mut self, pfd: &OwnedFd, name: &OsStr, path: &Path, target: &Path) -> Result<()> {
        let target = clean_path(target).context("hardlink target")?;
        let (tparent, tname) = split(&target);
        if tname.is_empty() {
            bail!("hardlink to the rootfs root; refused");
        }
        if self.opts.overlay && self.is_whiteout(tparent, tname) {
            bail!("hardlinking {path:?} to {target:?}: the target was deleted in this layer");
        }
        let linked = match self.open_dir(tparent) {
            Ok(tfd) => self.create(pfd, name, path, true, |p, n| {
                rfs::linkat(&tfd, tname, p, n, AtFlags::empty())
            }),
            Err(e) => Err(e.into()),
        };
        let not_there = || {
            format!("hardlinking {path:?} to {target:?}: the target is not present in the rootfs or cannot be linked")
        };
        match linked {
            Ok(()) => Ok(()),
            // Overlay mode, the target in a lower layer: copy it up into this layer once and
            // link to the copy, as overlayfs does when a link is made in a merged view. Both
            // names then share one inode, and later links to the target find it here.
            Err(e) => match self.open_in_lowers(&target)? {
                Some(src) => {
                    self.copy_up(&target, src)?;
                    let tfd = self.open_dir(tparent).with_context(not_there)?;
                    self.create(pfd, name, path, true, |p, n| {
                        rfs::linkat(&tfd, tname, p, n, AtFlags::empty())
                    })
                    .with_context(not_there)
                }
                None => Err(e).with_context(not_there),
            },
        }
    }

    /// Overlay mode: `parent/name` in this layer is a whiteout (a 0:0 char device).
    fn is_whiteout(&self, parent: &Path, name: &OsStr) -> bool {
        let Ok(pfd) = self.open_dir(parent) else {
            return false;
        };
        rfs::statat(&pfd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
            FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
        })
    }

    /// Overlay mode: the regular file `rel` of the topmost lower layer that has it.
    fn open_in_lowers(&self, rel: &Path) -> Result<Option<File>> {
        for l in &self.lowers {
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let Ok(fd) = rfs::openat2(l, rel, flags, Mode::empty(), in_root()) else {
                continue;
            };
            let st = rfs::fstat(&fd).with_context(|| format!("stat {rel:?} in a lower layer"))?;
            return Ok(
                (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
                    .then(|| File::from(fd)),
            );
        }
        Ok(None)
    }

    /// Copy a lower layer's file up to `path` in this layer, with its owner, mode, times and
    /// xattrs.
    fn copy_up(&mut self, path: &Path, src: File) -> Result<()> {
        use xattr::FileExt;
        let m = src
            .metadata()
            .with_context(|| format!("stat the hardlink target of {path:?}"))?;
        let mut meta = Meta::of(&m);
        for k in src.list_xattr().context("listing xattrs")? {
            if !k.as_bytes().starts_with(OVERLAY_PREFIX.as_bytes()) {
                if let Some(v) = src.get_xattr(&k).context("reading xattr")? {
                    meta.xattrs.push((k, v));
                }
            }
        }
        self.file_from_disk(path, src, &m, &meta, &mut HashSet::new())
            .with_context(|| format!("copying {path:?} up from a lower layer"))
    }

    /// A regular file copied from disk (a cached layer, a lower layer), its holes kept.
    fn file_from_disk(
        &mut self,
        rel: &Path,
        f: File,
        m: &std::fs::Metadata,
        meta: &Meta,
        created: &mut HashSet<PathBuf>,
    ) -> Result<()> {
        let segments = data_segments(&f, m).with_context(|| format!("{rel:?}"))?;
        let mut data = Segments {
            f,
            segs: segments.clone().unwrap_or_else(|| vec![(0, m.len())]),
            i: 0,
            done: 0,
        };
        let body = Body::File {
            size: m.len(),
            data: &mut data,
            sparse: segments,
        };
        self.apply_item(rel, body, meta, created)
    }

    fn whiteout(&mut self, parent: &Path, target: &OsStr) -> Result<()> {
        let path = parent.join(target);
        if self.opts.overlay {
            let pfd = self.parent(parent)?;
            return self
                .create(&pfd, target, &path, true, |p, n| {
                    rfs::mknodat(
                        p,
                        n,
                        FileType::CharacterDevice,
                        Mode::empty(),
                        rfs::makedev(0, 0),
                    )
                })
                .with_context(|| format!("creating the overlay whiteout for {path:?}"));
        }
        // Nothing to delete when the parent is missing (and it must not be created).
        let pfd = match self.open_dir(parent) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("whiteout: opening {parent:?}")),
        };
        match rfs::statat(&pfd, target, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("whiteout: stat {path:?}")),
            Ok(st) => {
                let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                self.remove(&pfd, target, &path, is_dir)
            }
        }
    }

    fn opaque(&mut self, dir: &Path, created: &HashSet<PathBuf>) -> Result<()> {
        if self.opts.overlay {
            let (p, n) = split(dir);
            let fd = if n.is_empty() {
                rfs::openat(
                    &*self.root,
                    ".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            } else {
                let pfd = self.parent(p)?;
                match rfs::mkdirat(&*pfd, n, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e).with_context(|| format!("creating directory {dir:?}")),
                }
                rfs::openat(
                    &*pfd,
                    n,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            }
            .with_context(|| format!("opening opaque directory {dir:?}"))?;
            return rfs::fsetxattr(&fd, OVERLAY_OPAQUE, b"y", XattrFlags::empty())
                .with_context(|| format!("marking {dir:?} opaque ({OVERLAY_OPAQUE})"));
        }
        let dfd = match rfs::openat2(
            &*self.root,
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            in_root(),
        ) {
            Err(Errno::NOENT) => return Ok(()),
            r => r.with_context(|| format!("opening opaque directory {dir:?}"))?,
        };
        let mut names = Vec::new();
        for ent in rfs::Dir::read_from(&dfd).with_context(|| format!("listing {dir:?}"))? {
            let ent = ent.with_context(|| format!("listing {dir:?}"))?;
            let n = OsStr::from_bytes(ent.file_name().to_bytes()).to_os_string();
            if n == "." || n == ".." || created.contains(&dir.join(&n)) {
                continue;
            }
            names.push((n, ent.file_type() == FileType::Directory));
        }
        for (n, is_dir) in names {
            self.remove(&dfd, &n, &dir.join(&n), is_dir)?;
        }
        Ok(())
    }

    fn own_fd(&mut self, fd: impl AsFd, meta: &Meta) -> Result<()> {
        if self.opts.rootless {
            if meta.uid != 0 || meta.gid != 0 {
                rfs::fsetxattr(
                    &fd,
                    ROOTLESS_XATTR,
                    &rootless_payload(meta.uid, meta.gid),
                    XattrFlags::empty(),
                )
                .context("recording ownership in user.rootlesscontainers")?;
            }
            return Ok(());
        }
        rfs::fchown(
            &fd,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )
        .context("chown")?;
        Ok(())
    }

    fn own_at(&mut self, pfd: &OwnedFd, name: &OsStr, path: &Path, meta: &Meta) -> Result<()> {
        if self.opts.rootless {
            if meta.uid != 0 || meta.gid != 0 {
                let at = proc_path(pfd, name);
                match rfs::lsetxattr(
                    at.as_os_str(),
                    ROOTLESS_XATTR,
                    &rootless_payload(meta.uid, meta.gid),
                    XattrFlags::empty(),
                ) {
                    // Symlinks cannot carry user.* xattrs; their owner does not matter.
                    Ok(()) | Err(Errno::PERM) => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("recording ownership of {path:?}"))
                    }
                }
            }
            return Ok(());
        }
        rfs::chownat(
            pfd,
            name,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .with_context(|| format!("chown {path:?}"))
    }

    fn xattrs_fd(
        &mut self,
        fd: impl AsFd,
        path: &Path,
        xattrs: &[(OsString, Vec<u8>)],
    ) -> Result<()> {
        for (k, v) in xattrs {
            self.set_xattr(path, k, v, |k, v| {
                rfs::fsetxattr(&fd, k, v, XattrFlags::empty())
            })?;
        }
        Ok(())
    }

    fn set_xattr(
        &mut self,
        path: &Path,
        k: &OsStr,
        v: &[u8],
        set: impl Fn(&OsStr, &[u8]) -> rustix::io::Result<()>,
    ) -> Result<()> {
        match set(k, v) {
            Ok(()) => Ok(()),
            // As containerd and umoci: a name the filesystem (or our privilege) refuses is a
            // warning, once per name, and the unpack goes on.
            Err(e @ (Errno::PERM | Errno::OPNOTSUPP)) => {
                self.stats.skipped += 1;
                let who = if self.opts.rootless { "rootless: " } else { "" };
                self.warn_once(
                    &k.to_string_lossy(),
                    format!("{who}ignoring xattr {k:?} on {path:?}, which the filesystem refuses ({e}); later entries with it are skipped too"),
                );
                Ok(())
            }
            Err(e) => Err(e).with_context(|| format!("setting xattr {k:?} on {path:?}")),
        }
    }

    /// Apply the recorded directory modes and mtimes, deepest first.
    pub fn finish(&mut self) -> Result<()> {
        let mut dirs: Vec<(PathBuf, DirMeta)> = self.dirs.drain().collect();
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (p, m) in dirs {
            let rel = if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p.as_path()
            };
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = match rfs::openat2(&*self.root, rel, flags, Mode::empty(), in_root()) {
                Ok(fd) => fd,
                // Removed or replaced by a later entry (possibly reached through a symlink).
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err(e).with_context(|| format!("opening directory {p:?}")),
            };
            rfs::fchmod(&fd, Mode::from_raw_mode(m.mode))
                .with_context(|| format!("chmod {p:?}"))?;
            rfs::futimens(&fd, &m.times).with_context(|| format!("setting times of {p:?}"))?;
        }
        self.cached = None;
        Ok(())
    }
}

fn proc_path(pfd: &OwnedFd, name: &OsStr) -> PathBuf {
    Path::new(&format!("/proc/self/fd/{}", pfd.as_raw_fd())).join(name)
}

/// Remove directory `name` under `pfd` and everything in it, without following links.
pub fn remove_tree(pfd: &OwnedFd, name: &OsStr) -> rustix::io::Result<()> {
    let fd = rfs::openat(
        pfd,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut subdirs = Vec::new();
    for ent in rfs::Dir::read_from(&fd)? {
        let ent = ent?;
        let n = OsStr::from_bytes(ent.file_name().to_bytes());
        if n == "." || n == ".." {
            continue;
        }
        let mut ft = ent.file_type();
        if ft == FileType::Unknown {
            ft = FileType::from_raw_mode(rfs::statat(&fd, n, AtFlags::SYMLINK_NOFOLLOW)?.st_mode);
        }
        if ft == FileType::Directory {
            subdirs.push(n.to_os_string());
        } else {
            rfs::unlinkat(&fd, n, AtFlags::empty())?;
        }
    }
    for d in subdirs {
        remove_tree(&fd, &d)?;
    }
    rfs::unlinkat(pfd, name, AtFlags::REMOVEDIR)
}

/// The data segments of a file on disk that has holes (fewer blocks than its length), read with
/// `SEEK_DATA`/`SEEK_HOLE`; None for a file without holes.
fn data_segments(f: &File, m: &std::fs::Metadata) -> Result<Option<Vec<(u64, u64)>>> {
    use std::os::unix::fs::MetadataExt;
    if m.blocks() * 512 >= m.len() {
        return Ok(None);
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < m.len() {
        let start = match rfs::seek(f, rfs::SeekFrom::Data(pos)) {
            Ok(p) => p,
            Err(Errno::NXIO) => break,
            Err(e) => return Err(e).context("SEEK_DATA"),
        };
        let end = rfs::seek(f, rfs::SeekFrom::Hole(start)).context("SEEK_HOLE")?;
        out.push((start, end - start));
        pos = end;
    }
    Ok(Some(out))
}

/// Reads the given segments of a file one after another.
struct Segments {
    f: File,
    segs: Vec<(u64, u64)>,
    i: usize,
    /// Bytes of segment `i` already read.
    done: u64,
}

impl Read for Segments {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        while let Some(&(off, len)) = self.segs.get(self.i) {
            if self.done == len {
                self.i += 1;
                self.done = 0;
                continue;
            }
            let want = buf
                .len()
                .min(usize::try_from(len - self.done).unwrap_or(usize::MAX));
            let n = self.f.read_at(&mut buf[..want], off + self.done)?;
            if n == 0 {
                return Err(std::io::Error::other("the file shrank while it was copied"));
            }
            self.done += n as u64;
            return Ok(n);
        }
        Ok(0)
    }
}

/// The current entry's data as a `Read`.
struct EntryData<'a, R: Read>(&'a mut TarReader<R>);

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0
            .data(buf)
            .map_err(|e| std::io::Error::other(format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(
            clean_path(Path::new("./a/b/../c")).unwrap(),
            PathBuf::from("a/c")
        );
        assert_eq!(
            clean_path(Path::new("/etc/passwd")).unwrap(),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(clean_path(Path::new("./")).unwrap(), PathBuf::new());
        assert!(clean_path(Path::new("../etc")).is_err());
        assert!(clean_path(Path::new("a/../../etc")).is_err());
    }

    fn layer(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o755);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            match data {
                Some(d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(d.len() as u64);
                    b.append_data(&mut h, name, d.as_bytes()).unwrap();
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, name, &[][..]).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    /// A flattening applier on `dir` (rootless when the tests do not run as root).
    fn flat_applier(dir: &Path) -> Applier {
        let root = rfs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        Applier::new(
            root,
            ApplyOptions {
                rootless: !rustix::process::geteuid().is_root(),
                overlay: false,
            },
        )
    }

    #[test]
    fn whiteouts_and_opaque_dirs_flattened() {
        let t = tempfile::tempdir().unwrap();
        let mut a = flat_applier(t.path());
        a.apply_layer(
            &layer(&[
                ("d/", None),
                ("d/old", Some("1")),
                ("d/sub/x", Some("2")),
                ("f", Some("3")),
            ])[..],
        )
        .unwrap();
        // Same-layer children survive the opaque marker, wherever it sits; a whiteout under a
        // missing parent creates nothing.
        a.apply_layer(
            &layer(&[
                ("d/new", Some("4")),
                ("d/.wh..wh..opq", Some("")),
                (".wh.f", Some("")),
                ("nope/.wh.x", Some("")),
            ])[..],
        )
        .unwrap();
        a.finish().unwrap();
        let names = |p: &str| {
            let mut v: Vec<String> = std::fs::read_dir(t.path().join(p))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names("d"), vec!["new"]);
        assert_eq!(names(""), vec!["d"]);
        assert_eq!(a.stats.entries, 8);
    }

    #[test]
    fn rootless_protobuf() {
        assert_eq!(rootless_payload(0, 0), Vec::<u8>::new());
        assert_eq!(rootless_payload(1000, 0), vec![0x08, 0xe8, 0x07]);
        assert_eq!(rootless_payload(0, 5), vec![0x10, 0x05]);
    }

    /// PAX mtime and atime with fractions land on files, directories (after their contents),
    /// symlinks and fifos to the nanosecond.
    #[test]
    fn pax_times_to_the_nanosecond() {
        use std::os::unix::fs::MetadataExt;
        let mut b = tar::Builder::new(Vec::new());
        let times = [
            ("mtime", &b"1600000000.123456789"[..]),
            ("atime", &b"1500000000.5"[..]),
        ];
        for (name, kind, data) in [
            ("d/", tar::EntryType::Directory, &b""[..]),
            ("d/f", tar::EntryType::Regular, &b"data"[..]),
            ("d/l", tar::EntryType::Symlink, &b""[..]),
            ("d/p", tar::EntryType::Fifo, &b""[..]),
        ] {
            b.append_pax_extensions(times).unwrap();
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(kind);
            h.set_mode(0o755);
            h.set_size(data.len() as u64);
            if kind == tar::EntryType::Symlink {
                h.set_link_name("f").unwrap();
            }
            b.append_data(&mut h, name, data).unwrap();
        }
        let t = tempfile::tempdir().unwrap();
        let mut a = flat_applier(t.path());
        a.apply_layer(&b.into_inner().unwrap()[..]).unwrap();
        a.finish().unwrap();
        for p in ["d", "d/f", "d/l", "d/p"] {
            let m = std::fs::symlink_metadata(t.path().join(p)).unwrap();
            assert_eq!(
                (m.mtime(), m.mtime_nsec()),
                (1_600_000_000, 123_456_789),
                "{p}"
            );
            assert_eq!(
                (m.atime(), m.atime_nsec()),
                (1_500_000_000, 500_000_000),
                "{p}"
            );
        }
    }
}
