//! Process-level syscalls that nix does not wrap: clone3/clone with namespace flags in fork
//! mode, close_range, pidfd_open, keyctl, and the setns-for-pid dance.
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What `fork_with_flags` returned.
pub enum Forked {
    Parent(Pid),
    Child,
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Make forks copy this process's page-table entries for its code and read-only data, once:
/// the kernel copies them at fork only for a mapping with anonymous pages (`vma_needs_copy`),
/// and the code and read-only data of a binary have none, so the container init faulted in
/// again each 64 KB of code and data the parent had already mapped: 19 such faults of each
/// create, 17 of them on pages the parent had (bench/RESULTS.md, 2026-12-03). One byte of
/// each mapping is written back as it is through /proc/self/mem, which copies that page
/// (4 KB) and gives the mapping anonymous pages, as a debugger's breakpoint does, without
/// ever making it writable. The binary file is not written; the fd is closed at once.
/// Best effort: where /proc/self/mem refuses writes (`proc_mem.force_override=never`),
/// forks fault as before.
fn forks_copy_code_mappings() {
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::Relaxed) {
        return;
    }
    let Ok(mem) = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/mem")
    else {
        return;
    };
    for addr in [code_address(), RODATA.as_ptr() as usize] {
        // SAFETY: one byte of our own code or read-only data, mapped readable for the life
        // of the process.
        let b = unsafe { std::ptr::read_volatile(addr as *const u8) };
        let _ = mem.write_all_at(&[b], addr as u64);
    }
}

/// A byte in the read-only data mapping (immutable statics are placed in .rodata).
static RODATA: [u8; 1] = [0];

/// An address in the code mapping: this function's.
fn code_address() -> usize {
    code_address as *const () as usize
}

/// Fork (no shared memory, no new stack: the child continues here like `fork`) with the
/// given CLONE_NEW* flags, optionally straight into a cgroup v2 directory.
///
/// # Safety
/// The caller must be single-threaded. The child gets a copy of the address space with the
/// calling thread only, and glibc's fork handlers do not run: a lock (malloc's, stdio's) held
/// by another thread at the time of the copy would never be released in the child.
pub unsafe fn fork_with_flags(flags: libc::c_int, cgroup: Option<RawFd>) -> Result<Forked, Errno> {
    forks_copy_code_mappings();
    let mut args = CloneArgs {
        flags: flags as u32 as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 with no stack and no CLONE_VM behaves like fork: the child gets a copy
    // of the address space and returns 0 here. The caller is single-threaded (the contract
    // above), so no lock can be held by another thread at the time of the copy.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    let ret = if ret == -1 && Errno::last() == Errno::ENOSYS && cgroup.is_none() {
        // SAFETY: the legacy clone with a null stack is fork with flags, as above.
        unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        }
    } else {
        ret
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// `close_range(first, last, flags)`.
fn close_range(first: u32, last: u32, flags: libc::c_uint) -> Result<(), Errno> {
    // SAFETY: close_range takes plain integers and only closes or flags fds of ours.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    Errno::result(r).map(drop)
}

/// The fds open now, from /proc/self/fd (the listing's own fd included; it is closed again
/// by the time the list is returned).
fn open_fds() -> Result<Vec<RawFd>, Errno> {
    let dir = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    Ok(dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect())
}

/// Mark every fd from `first` upwards close-on-exec: with close_range, or, where an old
/// kernel or a seccomp profile refuses it, fd by fd from /proc/self/fd with fcntl (as runc's
/// CloseExecFrom does).
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    if close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC).is_ok() {
        return Ok(());
    }
    for fd in open_fds()? {
        if fd >= first as RawFd {
            // SAFETY: fcntl on an integer fd; an fd closed meanwhile gives EBADF.
            match Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }) {
                Ok(_) | Err(Errno::EBADF) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Close every fd from 3 upwards except those in `keep`: with close_range over the gaps,
/// or fd by fd from /proc/self/fd where close_range is refused. For a child right after the
/// fork, so it holds nothing of the runtime's (or its caller's) it was not given.
pub fn close_fds_except(keep: &[RawFd]) -> Result<(), Errno> {
    let mut keep: Vec<u32> = keep.iter().filter(|&&f| f > 2).map(|&f| f as u32).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from = 3u32;
    let mut ranged = true;
    for &k in keep.iter().chain(std::iter::once(&u32::MAX)) {
        if k > from && close_range(from, k - 1, 0).is_err() {
            ranged = false;
            break;
        }
        from = k.saturating_add(1);
    }
    if ranged {
        return Ok(());
    }
    for fd in open_fds()? {
        if fd > 2 && !keep.contains(&(fd as u32)) {
            // SAFETY: closing an fd number we hold; nothing of ours uses it afterwards (the
            // caller keeps what it needs in `keep`). EBADF: the listing's own, gone already.
            let _ = unsafe { libc::close(fd) };
        }
    }
    Ok(())
}

/// A pidfd for a process (to wait for it without racing pid reuse).
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes plain integers and returns a new fd we take ownership of.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    Errno::result(r).map(|fd| {
        // SAFETY: the kernel just returned this fd to us; nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
    })
}

/// Send a signal through a pidfd (no pid-reuse race).
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> Result<(), Errno> {
    // SAFETY: a valid pidfd, a signal number and no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

/// Join a new anonymous session keyring with this name (runc's `_ses.<id>`).
pub fn join_session_keyring(name: &str) -> Result<(), Errno> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    let name = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: keyctl reads the NUL-terminated name, which outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    Errno::result(r).map(drop)
}

/// What the Rust runtime's start-up did that berth relies on (main.rs skips it): SIGPIPE
/// ignored, so a write to a closed pipe or socket is an EPIPE error with context rather than
/// a silent death, and fds 0, 1 and 2 open (on /dev/null when the caller closed them), so no
/// file of ours lands on a stdio number.
///
/// Also: malloc keeps freed memory at the top of the heap (up to 8 MiB) and grows it
/// 256 KiB at a time. By default it gave back every 64 KiB freed, so a `run` made 16 brk
/// calls, and each page given back was faulted in again, zeroed, at the next allocation.
pub fn runtime_start() {
    // SAFETY: mallopt only sets malloc's parameters; no allocation has been made yet.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
        libc::mallopt(libc::M_TOP_PAD, 256 << 10);
    }
    // SAFETY: SIG_IGN installs no handler code.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigIgn,
        )
    };
    for fd in 0..3 {
        // SAFETY: F_GETFD only reads the fd's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 && Errno::last() == Errno::EBADF {
            // SAFETY: a NUL-terminated literal path. The new fd is the lowest free number,
            // `fd` itself, and stays open (without close-on-exec, as stdio is) for good.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}

/// Give SIGPIPE back its default action. berth ignores it (`runtime_start`), and an ignored
/// signal stays ignored across execve, so without this the container's program would
/// inherit it (runc's programs never do).
pub fn default_sigpipe() -> Result<(), Errno> {
    // SAFETY: SIG_DFL installs no handler, so no code of ours can run from a signal. The
    // callers reset it right before execve, or right before raising SIGPIPE to end berth.
    unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    }
    .map(drop)
}

/// End the process by SIGPIPE, as a write to a closed stdout pipe ends a Go program (runc).
pub fn die_of_sigpipe() -> ! {
    let _ = default_sigpipe();
    // SAFETY: raise sends SIGPIPE to this thread; with its default action back, the whole
    // process ends there and no code of ours runs.
    unsafe { libc::raise(libc::SIGPIPE) };
    exit_now(141)
}

/// Exit at once, without running atexit handlers or destructors (for a forked child).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no memory of ours.
    unsafe { libc::_exit(code) }
}

/// setdomainname(2) (per uts namespace).
pub fn setdomainname(name: &str) -> Result<(), Errno> {
    // SAFETY: the kernel reads exactly len bytes from the valid buffer.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(r).map(drop)
}

/// The uid that owns the user namespace open at `fd` (ioctl NS_GET_OWNER_UID).
pub fn ns_owner_uid(fd: RawFd) -> Result<u32, Errno> {
    // NS_GET_OWNER_UID = _IO(0xb7, 0x4), from linux/nsfs.h.
    const NS_GET_OWNER_UID: libc::c_ulong = 0xb704;
    let mut uid: libc::uid_t = 0;
    // SAFETY: the ioctl writes one uid_t into a valid pointer we own; a non-namespace fd
    // gets an error, never a write.
    Errno::result(unsafe { libc::ioctl(fd, NS_GET_OWNER_UID, &mut uid as *mut libc::uid_t) })?;
    Ok(uid)
}

#[cfg(test)]
mod tests {
    /// The anonymous memory of the mapping that holds `addr`, from /proc/self/smaps.
    fn anonymous_kb(addr: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            let first = line.split(' ').next().unwrap_or("");
            if let Some((lo, hi)) = first.split_once('-') {
                if let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                {
                    inside = (lo..hi).contains(&addr);
                    continue;
                }
            }
            if let Some(kb) = line.strip_prefix("Anonymous:").filter(|_| inside) {
                return kb.trim().trim_end_matches(" kB").parse().unwrap();
            }
        }
        panic!("no mapping holds {addr:#x}");
    }

    /// The kernel copies a mapping's page-table entries at fork only when it has anonymous
    /// pages: the code and read-only data mappings must have one afterwards, and the code's
    /// bytes must be unchanged.
    #[test]
    fn the_code_mapping_gets_an_anonymous_page_and_keeps_its_bytes() {
        let code = super::code_address();
        // SAFETY: reading 64 bytes of our own code.
        let before = unsafe { std::slice::from_raw_parts(code as *const u8, 64) }.to_vec();
        super::forks_copy_code_mappings();
        assert!(
            anonymous_kb(code) >= 4,
            "the code mapping has no anonymous page"
        );
        assert!(
            anonymous_kb(super::RODATA.as_ptr() as usize) >= 4,
            "the read-only data mapping has no anonymous page"
        );
        // SAFETY: as above.
        let after = unsafe { std::slice::from_raw_parts(code as *const u8, 64) };
        assert_eq!(before, after);
    }
}
