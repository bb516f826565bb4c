//! setrlimit with the glibc resource type.
use nix::errno::Errno;

pub fn set(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> Result<(), Errno> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads one rlimit struct from a valid pointer.
    Errno::result(unsafe { libc::setrlimit(resource, &lim) }).map(drop)
}
