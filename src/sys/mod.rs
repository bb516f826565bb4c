//! Small syscall wrappers: the only place `unsafe` lives. One file per area.
pub mod cgroups;
