//! How a process the runtime forks (the container init, an exec'd process) gets into its
//! cgroup without waiting for an RCU grace period.
//!
//! Moving a process by pid (writing it to `cgroup.procs`, either version) write-locks the
//! kernel's global `cgroup_threadgroup_rwsem`; when nobody took it in the last few
//! milliseconds, that waits for an RCU grace period first (6-10 ms on this host, HZ=250: most
//! of a `berth run`). Two ways need no such lock (kernel/cgroup/cgroup.c,
//! `cgroup_procs_write_start` and `cgroup_css_set_fork`):
//!
//! - cgroup2 (v2, or the cgroup2 tree of a hybrid host): `clone3(CLONE_INTO_CGROUP)`, which
//!   only read-locks it. (A thread write, `cgroup.threads`, would not do: it cannot move
//!   between domains.)
//! - v1: the process writes `0` (itself) to the hierarchy's `tasks` file: moving the one
//!   thread that is `current` takes no lock but cgroup_mutex. The parent opens each `tasks`
//!   file for writing before the fork; v1 checks the permission with the opener's
//!   credentials (`of->file->f_cred`, since the fix of CVE-2021-4197), so the child may write
//!   even from a new user namespace. The child does so first thing (once it has closed
//!   the fds it was not given, the runtime's lock among them), then closes these too. A fork is one thread, so the thread is the whole process.
//!
//! What cannot go these ways the parent still moves by pid after the fork, as
//! [`Entry::finish`] does, and a debug line says why: a directory whose `tasks` file we
//! could not open, CLONE_INTO_CGROUP where the caller cannot use it (a helper in a joined
//! user namespace clones the init; a frozen cgroup to join later), the systemd driver before
//! its unit exists.
use std::cell::Cell;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Manager;

/// What the caller of [`Manager::entry`] can use, and if not, why (for the debug line).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ways {
    /// Why the fork cannot use CLONE_INTO_CGROUP (`None`: it can).
    pub no_clone_into: Option<&'static str>,
    /// Why the child cannot join its v1 hierarchies itself (`None`: it can).
    pub no_self_join: Option<&'static str>,
}

/// A v1 hierarchy's `tasks` file, opened for writing by the parent, for the child to write
/// `0` to.
pub struct TasksFile {
    /// The hierarchy's controllers (`memory`, `cpu,cpuacct`, `name=systemd`), for errors.
    pub hierarchy: String,
    /// The cgroup directory.
    pub dir: PathBuf,
    /// Taken (and closed) by the child's write.
    file: Cell<Option<File>>,
    raw: RawFd,
}

impl TasksFile {
    /// The fd, for the child's list of fds to keep until it has written.
    pub fn raw_fd(&self) -> RawFd {
        self.raw
    }

    /// A `tasks` file the parent opened after the fork and sent over (see
    /// [`Entry::hand_over`]): `fd` came with the hierarchy's name and directory.
    pub fn received(hierarchy: String, dir: PathBuf, fd: OwnedFd) -> TasksFile {
        let file = File::from(fd);
        TasksFile {
            hierarchy,
            dir,
            raw: file.as_raw_fd(),
            file: Cell::new(Some(file)),
        }
    }
}

/// What the parent still does by pid after the fork.
enum Rest {
    Nothing,
    /// Write the pid to `cgroup.procs` in each.
    Dirs(Vec<PathBuf>),
    /// The manager's own `apply` (the systemd driver starts its unit with the pid).
    Apply,
}

impl Rest {
    /// Whether there is anything left to move by pid.
    fn is_some(&self) -> bool {
        !matches!(self, Rest::Nothing)
    }
}

/// How a process about to be forked enters its cgroup: made by [`Manager::entry`] before the
/// fork; the child joins through [`TasksFile`]s ([`join_self`]); the parent passes
/// [`Entry::into_fd`] to clone3, then keeps [`Entry::forked`].
pub struct Entry {
    into: Option<OwnedFd>,
    tasks: Vec<TasksFile>,
    rest: Rest,
}

impl Entry {
    /// Nothing to join (no cgroup).
    pub fn none() -> Entry {
        Entry {
            into: None,
            tasks: Vec::new(),
            rest: Rest::Nothing,
        }
    }

    /// Everything by the manager's `apply(pid)` after the fork.
    pub fn by_apply(m: &dyn Manager, why: &str) -> Entry {
        tracing::debug!(
            "cgroup {}: the parent moves the process in by pid ({why})",
            m.path()
        );
        Entry {
            rest: Rest::Apply,
            ..Entry::none()
        }
    }

    /// The entry into cgroup2 directory `dir`: CLONE_INTO_CGROUP, or by pid when `ways`
    /// forbids it or the directory cannot be opened.
    pub fn cgroup2(dir: &Path, ways: Ways) -> Entry {
        let mut e = Entry::none();
        e.add_cgroup2(dir, ways);
        e
    }

    /// Adds cgroup2 directory `dir` (see [`Entry::cgroup2`]).
    pub fn add_cgroup2(&mut self, dir: &Path, ways: Ways) {
        let opened = match ways.no_clone_into {
            Some(why) => Err(why.to_string()),
            None => open_dir(dir).map_err(|e| format!("opening it for CLONE_INTO_CGROUP: {e}")),
        };
        match opened {
            Ok(fd) => self.into = Some(fd),
            Err(why) => self.by_pid(dir, &why),
        }
    }

    /// Adds a v1 hierarchy's directory: the child joins through its `tasks` file, or the
    /// parent by pid when `ways` forbids it or the file cannot be opened.
    pub fn add_v1(&mut self, hierarchy: String, dir: &Path, ways: Ways) {
        let path = dir.join("tasks");
        let opened = match ways.no_self_join {
            Some(why) => Err(why.to_string()),
            None => std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
                .map_err(|e| format!("opening {}: {e}", path.display())),
        };
        match opened {
            Ok(file) => self.tasks.push(TasksFile {
                hierarchy,
                dir: dir.to_path_buf(),
                raw: file.as_raw_fd(),
                file: Cell::new(Some(file)),
            }),
            Err(why) => self.by_pid(dir, &why),
        }
    }

    fn by_pid(&mut self, dir: &Path, why: &str) {
        tracing::debug!(
            "cgroup {}: the parent moves the process in by pid ({why})",
            dir.display()
        );
        match &mut self.rest {
            Rest::Dirs(d) => d.push(dir.to_path_buf()),
            _ => self.rest = Rest::Dirs(vec![dir.to_path_buf()]),
        }
    }

    /// The fd for clone3's CLONE_INTO_CGROUP, if any.
    pub fn into_fd(&self) -> Option<RawFd> {
        self.into.as_ref().map(|f| f.as_raw_fd())
    }

    /// The `tasks` files the child writes to (in the child, right after the fork).
    pub fn tasks(&self) -> &[TasksFile] {
        &self.tasks
    }

    /// For a child forked before its cgroup was made: each `tasks` file's hierarchy and
    /// directory, and its fd, in the same order, to send to the child, which makes them
    /// [`TasksFile::received`]. (No cgroup2 directory can be entered this way: that takes
    /// the fork itself.)
    pub fn hand_over(&self) -> (Vec<(String, PathBuf)>, Vec<RawFd>) {
        self.tasks
            .iter()
            .map(|t| ((t.hierarchy.clone(), t.dir.clone()), t.raw))
            .unzip()
    }

    /// Whether the parent moves the child by pid after the fork (then it says
    /// `CgroupJoined` when done).
    pub fn parent_moves(&self) -> bool {
        self.rest.is_some()
    }

    /// In the parent, after the fork: closes the fds the child took over.
    pub fn forked(self) -> Forked {
        Forked { rest: self.rest }
    }
}

/// The parent's part of an [`Entry`] after the fork.
pub struct Forked {
    rest: Rest,
}

impl Forked {
    /// As [`Entry::parent_moves`].
    pub fn parent_moves(&self) -> bool {
        self.rest.is_some()
    }

    /// Moves `pid` by pid into what the child could not join itself.
    pub fn finish(&self, m: &dyn Manager, pid: i32) -> Result<()> {
        match &self.rest {
            Rest::Nothing => Ok(()),
            Rest::Dirs(dirs) => move_pid(dirs.iter().map(PathBuf::as_path), pid),
            Rest::Apply => m.apply(pid),
        }
    }
}

/// In the child, first thing after the fork: join each hierarchy by writing `0` to its
/// `tasks` file, and close it (one write each; the first failure names the hierarchy, the
/// directory and the errno). Its processes never hold these fds.
pub fn join_self(tasks: &[TasksFile]) -> Result<()> {
    for t in tasks {
        let file = t
            .file
            .take()
            .with_context(|| format!("the tasks file of {} was already used", t.dir.display()))?;
        (&file).write_all(b"0").with_context(|| {
            format!(
                "joining the cgroup {} (v1 hierarchy {}) through its tasks file",
                t.dir.display(),
                t.hierarchy
            )
        })?;
    }
    Ok(())
}

/// Writes `pid` to `cgroup.procs` in each directory (waits for a grace period when the
/// kernel's lock was idle: see the module's notes).
pub fn move_pid<'a>(dirs: impl IntoIterator<Item = &'a Path>, pid: i32) -> Result<()> {
    let pid_s = pid.to_string();
    for dir in dirs {
        super::fs::write(dir, "cgroup.procs", &pid_s)
            .with_context(|| format!("moving pid {pid} into cgroup {}", dir.display()))?;
    }
    Ok(())
}

/// An `O_PATH` fd on a cgroup2 directory, for CLONE_INTO_CGROUP.
pub fn open_dir(dir: &Path) -> std::io::Result<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map(OwnedFd::from)
}
