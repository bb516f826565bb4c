//! The container's processes: the clone of the init, the parent/child protocol
//! (`create.rs` documents it), the init sequence, namespaces and terminals.
pub mod channel;
pub mod create;
pub mod exec;
pub mod foreground;
pub mod init;
pub mod namespaces;
pub mod program;
pub mod tty;
