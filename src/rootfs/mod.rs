//! The container's root filesystem: mounts, /dev, pivot_root, masked and readonly paths,
//! sysctl. Everything here runs in the container's init process (the child of `clone`),
//! inside its new mount namespace, before it execs the user process.
//!
//! Call order from `process::init`:
//! 1. `prepare(&cfg)`: make the mount tree private/slave, bind the rootfs onto itself, do
//!    every `mounts[]` entry, create /dev nodes and links.
//! 2. (createContainer hooks run here, before pivot_root, as the runtime spec says)
//! 3. `pivot(&cfg)`: pivot_root (or chroot-move with `--no-pivot`), chdir "/".
//! 4. `finish(&cfg)`: sysctl, readonly root, readonlyPaths, maskedPaths, rootfsPropagation.
use std::path::PathBuf;

use oci_spec::runtime::Spec;

/// What the rootfs code needs to know, resolved by the create path.
pub struct RootfsConfig<'a> {
    pub spec: &'a Spec,
    /// Absolute host path of the rootfs (root.path resolved against the bundle).
    pub rootfs: PathBuf,
    /// The bundle directory (absolute); relative mount sources are resolved against it.
    pub bundle: PathBuf,
    /// `--no-pivot` was given.
    pub no_pivot: bool,
    /// The container has a new user namespace (devices are bind-mounted, not mknod'ed).
    pub new_userns: bool,
    /// The container has a new cgroup namespace.
    pub new_cgroupns: bool,
}
