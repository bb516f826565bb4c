//! Small syscall wrappers: the only place `unsafe` lives. One file per area.
pub mod arena;
pub mod cgroups;
pub mod fd;
pub mod fdflags;
pub mod fdio;
pub mod mount;
pub mod net;
pub mod netlink;
pub mod process;
pub mod rlimit;
pub mod sched;
pub mod seccomp;
pub mod shared;
pub mod tty;
