//! berth: an OCI low-level container runtime (runc-compatible) and an image unpacker.
pub mod cgroups;
pub mod cli;
pub mod container;
pub mod criu;
pub mod fault;
pub mod features;
pub mod hooks;
pub mod image;
pub mod log;
pub mod mountinfo;
pub mod process;
pub mod rootfs;
pub mod security;
pub mod spec;
pub mod sys;

/// berth's version (`berth --version`, `features`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit berth was built from (build.rs), or "unknown".
pub const COMMIT: &str = match option_env!("BERTH_COMMIT") {
    Some(c) => c,
    None => "unknown",
};
