//! Containers: every lifecycle operation, one file each, and the state on disk
//! (`<root>/<id>/state.json`, the per-container lock, the status derived from the init pid
//! and its start time). The mechanics of processes (clone, protocol, init sequence,
//! program setup) are in `process/`.
pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod exec;
pub mod kill;
pub mod pause;
pub mod process_io;
pub mod restore;
pub mod start;
pub mod state;
pub mod update;

pub use state::{Container, Status};
