//! Control groups: one `Manager` trait over cgroup v1 (a hierarchy per controller) and
//! cgroup v2 (the unified tree).
//!
//! Contract used by the create path (`process::create`):
//! 1. `cgroups::new_manager(&CgroupConfig)` picks v1 or v2 from the host (see `detect`) and
//!    resolves `linux.cgroupsPath` (absolute: under each hierarchy's root; relative: under the
//!    runtime's own cgroup; none: `/berth/<id>`). It has no side effect.
//! 2. `create()` makes the directories (idempotent). `apply(pid)` moves a process in.
//!    `set(&resources)` writes the limits. `destroy()` removes every directory it made,
//!    killing nothing (the caller kills first). Each error names the file and the value.
//! 3. `clone_into_fd()` gives an O_PATH/O_DIRECTORY fd for `CLONE_INTO_CGROUP` on v2.
use std::path::PathBuf;

pub mod v1;
pub mod v2;

pub use oci_spec::runtime::LinuxResources;

/// What the create path knows about the cgroup it wants.
#[derive(Debug, Clone)]
pub struct CgroupConfig {
    /// `linux.cgroupsPath` as written in config.json.
    pub cgroups_path: Option<PathBuf>,
    /// The container id (used for the default path).
    pub id: String,
    /// `--systemd-cgroup` was given.
    pub systemd: bool,
    /// The runtime runs rootless (errors creating cgroups become warnings).
    pub rootless: bool,
}
