//! Security settings applied by the container init just before exec: capabilities,
//! no_new_privs, seccomp and the AppArmor profile. (SELinux labels are rejected at validation.)
pub mod apparmor;
pub mod caps;
pub mod seccomp;
