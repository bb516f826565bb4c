//! The mechanics of the container's processes: the parent/child channel, the init
//! sequence, the program setup shared by the init and exec, namespaces, terminals and
//! foreground supervision. The lifecycle operations that drive them are in `container/`
//! (`container/create.rs` documents the protocol).
pub mod attrs;
pub mod channel;
pub mod child;
pub mod exec_child;
pub mod foreground;
pub mod idmap;
pub mod init;
pub mod namespaces;
pub mod netdev;
pub mod pidfd;
pub mod program;
pub mod progress;
pub mod tty;
