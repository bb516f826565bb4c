//! The state directory of one container and what it records.
//!
//! Layout: `<root>/<id>/state.json` (written atomically: temp file + rename),
//! `<root>/<id>/config.json` (the validated spec, snapshotted at create: later commands
//! read it, never the bundle, so a bundle edited or removed after create changes nothing),
//! `<root>/<id>/exec.fifo` (exists while the container is `created`), and an flock on the
//! directory itself that serializes every command on one id.
//!
//! `<root>/.spare~N` (N < [`SPARES`]): directories a delete left for the next create, which
//! renames one to `<root>/<id>` rather than making a new one. Where the state root is on a
//! disk filesystem mounted with `discard` and without a journal (as / and /run are on this
//! project's machines), freeing a directory's block waits for a synchronous discard: 0.27 ms
//! of each `run` (bench/RESULTS.md). The names are never container ids (`~` is not allowed
//! in one), `ls` hides them, and `list` skips them (they hold no state.json).
//!
//! A spare keeps the inodes of the files every create makes again, under names that no
//! command reads ([`KEPT`]): state.json, config.json and cgroup.json as the temporary names
//! [`Staged`] writes through, and the exec fifo as `.exec.fifo`. On ext4 a new inode is a
//! search of the group's bitmap that skips every inode freed in the last minute or so
//! (`recently_deleted`, which reads each one's dtime): with containers coming and going, a
//! fifth of each `openat` that created a file, and 0.4 ms of a `run` on ext4 against a tmpfs
//! root (bench/RESULTS.md, 2026-12-04). The rest of a spare is emptied.
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use oci_spec::runtime::{Hooks, LinuxNamespace, LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};

/// runc's status words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// What `state.json` holds. The first fields are the OCI state; the rest is berth's own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, UTC (runc's `created`).
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// Start time of the init (field 22 of /proc/PID/stat), so a recycled pid is not taken
    /// for our init.
    pub init_start_time: u64,
    /// The cgroup manager's resolved paths (see cgroups::Manager::state).
    pub cgroup: crate::cgroups::CgroupState,
    /// linux.resources as applied (create, then each `update`).
    #[serde(default)]
    pub resources: Option<oci_spec::runtime::LinuxResources>,
    pub rootless: bool,
}

/// The state as runc's `state` and `list --format json` print it: runc's fields, in its
/// order (annotations, when there are any, come before the owner).
#[derive(Debug, Clone, Serialize)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub owner: String,
}

/// A time as Go formats `time.RFC3339Nano` in UTC (runc's `created`): the fraction loses its
/// trailing zeros, and goes away when it is zero.
pub fn rfc3339_nano(t: chrono::DateTime<chrono::Utc>) -> String {
    let whole = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = format!("{:09}", t.timestamp_subsec_nanos());
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{whole}Z")
    } else {
        format!("{whole}.{frac}Z")
    }
}

/// JSON as Go's encoder writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped. They occur only
/// inside strings, so the replacement is safe on serialized text.
pub fn go_json_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// One container's state directory, locked for the lifetime of this value.
pub struct Container {
    pub dir: PathBuf,
    pub record: Record,
    /// The config snapshot, read on first use.
    config: std::cell::OnceCell<Spec>,
    /// Only its hooks and namespaces, when that is all a command needs (start, delete, kill).
    light: std::cell::OnceCell<Result<Light, String>>,
    _lock: Lock,
}

/// A container's pid namespace (linux.namespaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidNamespace {
    /// None in the config: the host's (or the runtime's) pid namespace.
    Host,
    /// Made at create: the kernel ends every other process in it when the init dies.
    Own,
    /// Joined by path: the init is not that namespace's init.
    Joined,
}

impl PidNamespace {
    /// The pid namespace linux.namespaces gives.
    fn of(namespaces: Option<&[LinuxNamespace]>) -> PidNamespace {
        match namespaces
            .unwrap_or_default()
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Pid)
        {
            None => PidNamespace::Host,
            Some(n) if n.path().is_some() => PidNamespace::Joined,
            Some(_) => PidNamespace::Own,
        }
    }
}

/// What start, delete and kill read of the config snapshot; serde skips the rest.
#[derive(Deserialize)]
struct Light {
    #[serde(default)]
    hooks: Option<Hooks>,
    #[serde(default)]
    linux: Option<LightLinux>,
}

#[derive(Deserialize)]
struct LightLinux {
    #[serde(default)]
    namespaces: Option<Vec<LinuxNamespace>>,
}

/// The config snapshot's name in the state directory.
const CONFIG: &str = "config.json";
const STATE: &str = "state.json";
const FIFO: &str = "exec.fifo";
const KEPT_FIFO: &str = ".exec.fifo";

/// What a spare directory keeps of the container it held: (the name while the container
/// lives, the name in the spare, whether it is the fifo rather than a regular file). The
/// spare names of the files are those [`Staged`] writes them through, so the next create's
/// writes reuse those inodes; `take_kept_fifo` moves the fifo back. (An orphan's removal
/// reads only `cgroup.json`, never what a spare kept of an earlier one.)
const KEPT: [(&str, &str, bool); 4] = [
    (FIFO, KEPT_FIFO, true),
    (STATE, ".state.json.tmp", false),
    (CONFIG, ".config.json.tmp", false),
    (ORPHAN_CGROUP, ".cgroup.json.tmp", false),
];

/// Check a container id: non-empty, no `/`, not `.` or `..`, printable.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+' | ':' | '@'));
    if !ok {
        bail!("invalid container id {id:?}: use letters, digits and _ - . + : @ (no '/')");
    }
    Ok(())
}

/// The lock: an flock on the directory, released when dropped.
pub type Lock = Flock<File>;

/// How long a command waits for another one holding a container's lock (a create running
/// its hooks, say) before it gives up.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

fn lock_dir(dir: &Path) -> Result<Lock> {
    lock_polling(dir, std::time::Duration::from_millis(5))
}

/// The state root's own lock, held by a create only from its mkdir to the lock of the new
/// directory, and by the removal of an orphan: a directory without state.json that is not
/// locked under it is one a killed create left.
fn lock_root(root: &Path) -> Result<Lock> {
    lock_polling(root, std::time::Duration::from_micros(200))
}

fn lock_polling(dir: &Path, poll: std::time::Duration) -> Result<Lock> {
    let mut f = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(l) => return Ok(l),
            Err((back, Errno::EWOULDBLOCK)) if std::time::Instant::now() < deadline => {
                f = back;
                std::thread::sleep(poll);
            }
            Err((_, Errno::EWOULDBLOCK)) => bail!(
                "{} is locked by another berth command for more than {} s",
                dir.display(),
                LOCK_WAIT.as_secs()
            ),
            Err((_, e)) => return Err(e).with_context(|| format!("locking {}", dir.display())),
        }
    }
}

/// Create `<root>/<id>` (0700) and lock it; a duplicate id is refused. What a killed
/// create of the same id left (a directory without state.json, not locked) is removed
/// first, cgroup included.
pub fn create_dir(root: &Path, id: &str) -> Result<(PathBuf, Lock)> {
    check_id(id)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(root)
        .with_context(|| format!("creating state root {}", root.display()))?;
    let dir = root.join(id);
    let _root = lock_root(root)?;
    if let Some(lock) = take_spare(root, &dir) {
        return Ok((dir, lock));
    }
    let mkdir = || std::fs::DirBuilder::new().mode(0o700).create(&dir);
    match mkdir() {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if !remove_if_orphan(&dir)? {
                bail!("container {id:?} already exists (in {})", root.display())
            }
            tracing::debug!("removed what a killed create of {id:?} left");
            mkdir().with_context(|| format!("creating {}", dir.display()))?;
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let lock = lock_dir(&dir)?;
    Ok((dir, lock))
}

/// How many empty state directories a root keeps for later creates.
pub const SPARES: usize = 4;

/// Spare slot `k` is `<root>/.spare~k`.
const SPARE_PREFIX: &str = ".spare~";

fn spare(root: &Path, k: usize) -> PathBuf {
    root.join(format!("{SPARE_PREFIX}{k}"))
}

/// Whether a name under a state root is a spare directory rather than a container.
pub fn is_spare(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| {
        n.strip_prefix(SPARE_PREFIX)
            .and_then(|k| k.parse::<usize>().ok())
            .is_some_and(|k| k < SPARES)
    })
}

/// The entry of [`KEPT`] that a directory entry is, by its name while the container lives
/// or in a spare, and of the type that entry keeps (a fifo, or a regular file).
fn kept_entry(e: &std::fs::DirEntry) -> Option<&'static (&'static str, &'static str, bool)> {
    let (name, ft) = (e.file_name(), e.file_type().ok()?);
    KEPT.iter().find(|&&(live, spare, fifo)| {
        (name == live || name == spare) && if fifo { ft.is_fifo() } else { ft.is_file() }
    })
}

/// Whether `path` is a spare that holds nothing but what spares keep ([`KEPT`]).
pub fn is_bare_spare(path: &Path) -> bool {
    path.file_name().is_some_and(is_spare)
        && std::fs::read_dir(path).is_ok_and(|d| {
            d.flatten()
                .all(|e| kept_entry(&e).is_some_and(|&(_, spare, _)| e.file_name() == spare))
        })
}

/// Move a spare directory to `dir`, locked. A spare still locked (by the delete that left
/// it, until that process ends) or taken meanwhile by another create is passed over, and
/// none is moved onto a `dir` that exists (the caller then sees it there); `None` when
/// there is none to take.
fn take_spare(root: &Path, dir: &Path) -> Option<Lock> {
    (0..SPARES).find_map(|k| {
        let from = spare(root, k);
        let lock = Flock::lock(File::open(&from).ok()?, FlockArg::LockExclusiveNonblock).ok()?;
        rename_noreplace(&from, dir).then_some(lock)
    })
}

/// rename(2) that never replaces what is at `to`; whether it moved.
fn rename_noreplace(from: &Path, to: &Path) -> bool {
    use nix::fcntl::{renameat2, RenameFlags};
    renameat2(None, from, None, to, RenameFlags::RENAME_NOREPLACE).is_ok()
}

/// The cgroup a create made, recorded in its directory until state.json holds it.
const ORPHAN_CGROUP: &str = "cgroup.json";

/// Record the cgroup a create is about to make, then what it made (see [`remove_orphan`]).
pub fn write_orphan_cgroup(dir: &Path, cg: &crate::cgroups::CgroupState) -> Result<()> {
    // Atomic: a create killed while writing it leaves no half file.
    write_atomic(&dir.join(ORPHAN_CGROUP), &serde_json::to_vec(cg)?)
}

/// Remove `<root>/<id>` left without a state.json by a create that was killed, as runc
/// does; under the root's lock, so a create still running is never touched. Returns whether
/// there was such a directory.
pub fn remove_orphan(root: &Path, id: &str) -> Result<bool> {
    check_id(id)?;
    let dir = root.join(id);
    if !dir.is_dir() {
        return Ok(false);
    }
    let _root = lock_root(root)?;
    remove_if_orphan(&dir)
}

/// With the root locked: whether `dir` was an orphan (no state.json, and no create holds
/// its lock), and then remove it with the cgroup recorded in it and its network namespace
/// pin.
fn remove_if_orphan(dir: &Path) -> Result<bool> {
    let f = match File::open(dir) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("opening {}", dir.display())),
    };
    let _lock = match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((_, Errno::EWOULDBLOCK)) => return Ok(false), // a create is running
        Err((_, e)) => return Err(e).with_context(|| format!("locking {}", dir.display())),
    };
    if state_path(dir).exists() {
        return Ok(false);
    }
    let recorded = std::fs::read(dir.join(ORPHAN_CGROUP)).ok();
    let parsed = recorded.map(|t| serde_json::from_slice::<crate::cgroups::CgroupState>(&t));
    if let Some(Err(e)) = &parsed {
        // Written by an older berth without the atomic write, and cut: nothing to undo by it.
        tracing::warn!("ignoring {}: {e}", dir.join(ORPHAN_CGROUP).display());
    }
    if let Some(Ok(cg)) = parsed {
        let m = crate::cgroups::load_manager(&cg)?;
        if !m.pids().unwrap_or_default().is_empty() {
            let _ = m.thaw();
            m.kill_all(nix::sys::signal::Signal::SIGKILL)?;
        }
        m.destroy()?;
    }
    let pin = dir.join(crate::process::netdev::PIN);
    if pin.exists() {
        crate::process::netdev::unpin(&pin)?;
    }
    remove_state_dir(dir)?;
    Ok(true)
}

impl Container {
    /// Wrap a freshly created (and locked) directory.
    pub fn new(dir: PathBuf, lock: Lock, record: Record) -> Self {
        Container {
            dir,
            record,
            config: std::cell::OnceCell::new(),
            light: std::cell::OnceCell::new(),
            _lock: lock,
        }
    }

    /// Open and lock an existing container.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        check_id(id)?;
        let dir = root.join(id);
        let lock = match lock_dir(&dir) {
            Ok(l) => l,
            Err(_) if !dir.exists() => bail!("container {id:?} does not exist"),
            Err(e) => return Err(e),
        };
        let path = state_path(&dir);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("container {id:?} does not exist")
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let record =
            serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(Container {
            dir,
            record,
            config: std::cell::OnceCell::new(),
            light: std::cell::OnceCell::new(),
            _lock: lock,
        })
    }

    /// The config `save_config` snapshotted, for what this process reads of it later.
    pub fn set_config(&self, spec: Spec) {
        let _ = self.config.set(spec);
    }

    /// Unlock, keeping the config snapshot if it was read (it never changes): a command
    /// that loads the container again later hands it to `set_config` rather than read it.
    pub fn into_config(self) -> Option<Spec> {
        self.config.into_inner()
    }

    /// The config snapshot taken at create.
    pub fn config(&self) -> Result<&Spec> {
        if let Some(c) = self.config.get() {
            return Ok(c);
        }
        let spec = self.read_snapshot()?;
        Ok(self.config.get_or_init(|| spec))
    }

    /// The hooks of the config snapshot (none when it cannot be read: a warning). Unless the
    /// whole snapshot is loaded already, only `hooks` and `linux.namespaces` are parsed and
    /// the rest skipped: start and delete need nothing else, and parsing a whole Spec was 15%
    /// of their instructions (bench/callgrind.sh).
    pub fn hooks(&self) -> Option<&Hooks> {
        if let Some(c) = self.config.get() {
            return c.hooks().as_ref();
        }
        match self.light() {
            Ok(l) => l.hooks.as_ref(),
            Err(e) => {
                tracing::warn!("{e}: running no hooks");
                None
            }
        }
    }

    /// The container's pid namespace, from the config snapshot.
    pub fn pid_namespace(&self) -> Result<PidNamespace> {
        let namespaces = match self.config.get() {
            Some(c) => c.linux().as_ref().and_then(|l| l.namespaces().as_deref()),
            None => self
                .light()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .linux
                .as_ref()
                .and_then(|l| l.namespaces.as_deref()),
        };
        Ok(PidNamespace::of(namespaces))
    }

    fn light(&self) -> Result<&Light, &String> {
        self.light
            .get_or_init(|| self.read_snapshot::<Light>().map_err(|e| format!("{e:#}")))
            .as_ref()
    }

    fn read_snapshot<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let path = self.dir.join(CONFIG);
        let text = std::fs::read(&path)
            .with_context(|| format!("reading the config snapshot {}", path.display()))?;
        serde_json::from_slice(&text)
            .with_context(|| format!("parsing the config snapshot {}", path.display()))
    }

    /// Write state.json atomically.
    pub fn save(&self) -> Result<()> {
        write_atomic(&state_path(&self.dir), &serde_json::to_vec(&self.record)?)
    }

    /// The container's cgroup manager, rebuilt from the saved paths.
    pub fn cgroup(&self) -> Result<Box<dyn crate::cgroups::Manager>> {
        crate::cgroups::load_manager(&self.record.cgroup)
    }

    /// Every pid in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        self.cgroup()?.pids()
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.dir.join(FIFO)
    }

    /// After `start` read the init's byte: the fifo goes (a `created` container is one with
    /// an exec fifo), under the name a spare keeps it by.
    pub fn retire_fifo(&self) -> Result<()> {
        let path = self.fifo_path();
        let to = self.dir.join(KEPT_FIFO);
        std::fs::rename(&path, &to).with_context(|| format!("retiring {}", path.display()))
    }

    /// The status, derived from the kernel's view of the init process.
    pub fn status(&self) -> Status {
        if !init_alive(self.record.pid, self.record.init_start_time) {
            return Status::Stopped;
        }
        if self.fifo_path().exists() {
            Status::Created
        } else if self.cgroup().and_then(|m| m.is_frozen()).unwrap_or(false) {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// The OCI state document (what `berth state` prints), with runc's field order.
    pub fn oci_state(&self) -> OciState {
        let r = &self.record;
        let status = self.status();
        OciState {
            oci_version: r.oci_version.clone(),
            id: r.id.clone(),
            pid: if status == Status::Stopped { 0 } else { r.pid },
            status,
            bundle: r.bundle.clone(),
            rootfs: r.rootfs.clone(),
            created: r.created.clone(),
            annotations: r
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            owner: r.owner.clone(),
        }
    }

    /// The state document for a status the caller already knows (hooks at start and delete).
    pub fn state_doc(&self, status: Status) -> serde_json::Value {
        let r = &self.record;
        let pid = if status == Status::Stopped { 0 } else { r.pid };
        let mut v = serde_json::json!({
            "ociVersion": r.oci_version,
            "id": r.id,
            "pid": pid,
            "status": status.to_string(),
            "bundle": r.bundle,
            "rootfs": r.rootfs,
            "created": r.created,
            "owner": r.owner,
        });
        if !r.annotations.is_empty() {
            v["annotations"] = serde_json::json!(r.annotations);
        }
        v
    }

    /// Remove the state directory (`remove_state_dir`; the lock goes when this process ends).
    pub fn remove_dir(&self) -> Result<()> {
        remove_state_dir(&self.dir)
    }
}

/// `<dir>/state.json`: a container exists once it does.
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE)
}

/// Remove a state directory: what it holds, then the directory itself, which is kept as a
/// spare for the next create while its root has fewer than [`SPARES`]. A spare keeps the
/// files of [`KEPT`] under their spare names; everything else goes first, state.json's name
/// included, so a delete cut short leaves an orphan (no state.json), never a container.
pub fn remove_state_dir(dir: &Path) -> Result<()> {
    let mut kept = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        let path = e.path();
        if let Some(&(_, spare, _)) = kept_entry(&e) {
            let to = dir.join(spare);
            if path != to {
                std::fs::rename(&path, &to)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
            kept.push(to);
            continue;
        }
        let removed = if e.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("removing {}", path.display()))?;
    }
    let root = dir.parent().context("a state directory without a root")?;
    if (0..SPARES).any(|k| rename_noreplace(dir, &spare(root, k))) {
        return Ok(());
    }
    for path in kept {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => {}
        }
    }
    std::fs::remove_dir(dir).with_context(|| format!("removing {}", dir.display()))
}

/// The exec fifo a spare kept, moved back to `<dir>/exec.fifo` and opened `O_PATH`; `None`
/// when the directory holds none (a new one, or a spare of a container deleted after its
/// start had retired it) or what it holds is not our fifo of mode 0622, which is removed.
pub fn take_kept_fifo(dir: &Path) -> Option<OwnedFd> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let (from, path) = (dir.join(KEPT_FIFO), dir.join(FIFO));
    if !rename_noreplace(&from, &path) {
        return None;
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(&path)
        .ok();
    let ours = f.as_ref().and_then(|f| f.metadata().ok()).is_some_and(|m| {
        m.file_type().is_fifo()
            && m.mode() & 0o7777 == 0o622
            && m.uid() == nix::unistd::geteuid().as_raw()
    });
    if !ours {
        let _ = std::fs::remove_file(&path);
        return None;
    }
    f.map(OwnedFd::from)
}

/// Start time of a process (clock ticks since boot), `None` if it is gone.
pub fn start_time(pid: i32) -> Option<u64> {
    parse_start_time(&crate::sys::fdio::read_text(Path::new(&format!("/proc/{pid}/stat"))).ok()?)
}

/// The start time in `/proc/PID/stat` text; `None` for a zombie, a dead process or a line
/// that does not parse.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split(' ').collect();
    // fields[0] is field 3 (state); starttime is field 22.
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether the recorded init is still the same live process.
pub fn init_alive(pid: i32, started: u64) -> bool {
    pid > 0 && start_time(pid) == Some(started)
}

/// Snapshot the validated spec in a state directory (once, at create), before state.json
/// exists.
pub fn save_config(dir: &Path, spec: &Spec) -> Result<()> {
    write_atomic(&dir.join(CONFIG), &serde_json::to_vec(spec)?)
}

/// Write the pid file atomically, as engines poll for it.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    write_atomic(path, pid.to_string().as_bytes()).context("writing --pid-file")
}

/// Write `path` through a temp file in the same directory and a rename: readers see the
/// old content or the new, never a part.
fn write_atomic(path: &Path, body: &[u8]) -> Result<()> {
    Staged::write(path, body)?.commit()
}

/// A file written under a temporary name next to its own, which `commit` renames into
/// place: what readers see appears whole, and the rename is all that is left to do.
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
}

impl Staged {
    /// Writes the temporary file in place when it exists (a spare's, [`KEPT`]), with no
    /// `O_TRUNC`: on ext4 a truncation to zero makes the close start writeback
    /// (`auto_da_alloc`), and the blocks it allocates are discarded synchronously when they
    /// are freed. The length is set after the write.
    pub fn write(path: &Path, body: &[u8]) -> Result<Staged> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let tmp = dir.join(staged_name(name));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&tmp)?;
            f.write_all(body)?;
            f.set_len(body.len() as u64)
        };
        write().with_context(|| format!("writing {}", tmp.display()))?;
        Ok(Staged {
            tmp,
            path: path.to_path_buf(),
        })
    }

    pub fn commit(self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("renaming to {}", self.path.display()))
    }
}

/// The temporary name [`Staged`] writes `name` through.
fn staged_name(name: &str) -> String {
    format!(".{name}.tmp")
}

/// The container ids under a state root, sorted.
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
        Err(e) => {
            return Err(e).with_context(|| format!("reading the state root {}", root.display()))
        }
    };
    for e in entries {
        let e = e?;
        if state_path(&e.path()).exists() {
            ids.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spare_keeps_state_and_config_under_the_names_staged_writes_through() {
        for (name, kept, fifo) in KEPT {
            assert_eq!(fifo, name == FIFO);
            if !fifo {
                assert_eq!(staged_name(name), kept);
            }
        }
    }

    #[test]
    fn stat_start_time() {
        let line = "42 (a) b) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        assert_eq!(parse_start_time(line), Some(987654));
        assert_eq!(parse_start_time(&line.replace(" S ", " Z ")), None);
        // A line ending at the last `)` used to slice past its end and panic.
        assert_eq!(parse_start_time("1 (x)"), None);
        assert_eq!(parse_start_time(")"), None);
        assert_eq!(parse_start_time(""), None);
    }

    #[test]
    fn ids() {
        assert!(check_id("abc-1.2_x").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    /// The light reading of a snapshot as save_config writes it finds the hooks and the pid
    /// namespace the whole Spec has (delete skips its cgroup sweep on `Own` alone).
    #[test]
    fn light_snapshot_reads_hooks_and_the_pid_namespace() {
        let base = serde_json::to_value(Spec::default()).unwrap();
        let with = |pid: Option<serde_json::Value>| {
            let mut v = base.clone();
            let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "pid");
            ns.extend(pid);
            v["hooks"] = serde_json::json!({"poststop": [{"path": "/bin/true"}]});
            let spec: Spec = serde_json::from_value(v).unwrap();
            let light: Light = serde_json::from_slice(&serde_json::to_vec(&spec).unwrap()).unwrap();
            let ns = light.linux.as_ref().and_then(|l| l.namespaces.as_deref());
            assert_eq!(light.hooks, spec.hooks().clone());
            assert!(light.hooks.is_some());
            PidNamespace::of(ns)
        };
        assert_eq!(with(None), PidNamespace::Host);
        assert_eq!(
            with(Some(serde_json::json!({"type": "pid"}))),
            PidNamespace::Own
        );
        assert_eq!(
            with(Some(
                serde_json::json!({"type": "pid", "path": "/proc/1/ns/pid"})
            )),
            PidNamespace::Joined
        );
    }

    #[test]
    fn own_start_time_is_stable() {
        let me = std::process::id() as i32;
        let t = start_time(me).unwrap();
        assert!(init_alive(me, t));
        assert!(!init_alive(me, t + 1));
    }
}
