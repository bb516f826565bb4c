//! Security settings applied by the container init just before exec: capabilities,
//! no_new_privs, seccomp and the AppArmor profile. (SELinux labels are rejected at validation.)
pub mod apparmor;
pub mod caps;
pub mod seccomp;

/// Whether the host runs SELinux (its filesystem is mounted). berth applies no SELinux
/// label; where SELinux runs, a label asked for is refused rather than left unapplied.
pub fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}
