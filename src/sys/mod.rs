//! Small syscall wrappers: the only place `unsafe` lives. One file per area.
pub mod process;
pub mod fd;
pub mod rlimit;
pub mod fdflags;
pub mod fdio;
