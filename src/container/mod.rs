//! Containers on disk: `<root>/<id>/state.json`, the per-container lock, the status
//! derived from the init pid and its start time, and the lifecycle operations.
pub mod lifecycle;
pub mod state;

pub use state::{Container, Status};
