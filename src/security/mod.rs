//! Security settings applied by the container init just before exec: capabilities,
//! no_new_privs and seccomp. (LSM labels are rejected at validation until implemented.)
pub mod caps;
pub mod seccomp;
