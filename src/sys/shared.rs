//! A small memory area shared between the runtime and the children it forks
//! (`MAP_SHARED | MAP_ANONYMOUS`, made before the fork): a child writes into it without a
//! system call, so it can still write after a seccomp filter that denies everything, and
//! the parent reads what was written after the child is gone. An execve drops the child's
//! mapping, so the program never sees it.
use std::sync::atomic::AtomicU8;

use anyhow::Result;

/// `len` zeroed shared bytes. The area is never unmapped: a runtime command makes one or
/// two, and its process ends soon.
pub fn shared_bytes(len: usize) -> Result<&'static [AtomicU8]> {
    // SAFETY: an anonymous mapping at an address the kernel picks: no existing memory is
    // affected. The result is checked before use.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED || p.is_null() {
        return Err(anyhow::Error::new(std::io::Error::last_os_error())
            .context("mmap of a shared anonymous area"));
    }
    // SAFETY: the mapping is `len` bytes, readable and writable, zeroed, and never
    // unmapped, so 'static holds; AtomicU8 has the size and alignment of u8 and every bit
    // pattern is valid; the other process's writes are atomic byte stores.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<AtomicU8>(), len) })
}
