//! Security settings applied by the container init just before exec: capabilities and
//! no_new_privs. (seccomp and LSM labels are rejected at validation until implemented.)
pub mod caps;
