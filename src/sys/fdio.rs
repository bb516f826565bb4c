//! read/write on raw fds we borrow (stdio, a pty master).
use nix::errno::Errno;

pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: buf is valid for buf.len() bytes of writes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        match Errno::result(n) {
            Err(Errno::EINTR) => continue,
            r => return r.map(|n| n as usize),
        }
    }
}

pub fn write_all(fd: i32, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        // SAFETY: buf is valid for buf.len() bytes of reads.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        match Errno::result(n) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(n) => buf = &buf[n as usize..],
        }
    }
    Ok(())
}

/// Read a whole file of at most `limit` bytes (a longer one is cut at `limit + 1` bytes, so
/// the caller can tell). For /proc and cgroup files and small documents: no stat for a size
/// hint (they report 0), and reads of 4 KiB and up, where `std::fs::read` reads 32 bytes,
/// then 32, 64, ... and a seq_file is formatted again from its start on every read.
pub fn read_file(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let cap = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; cap.min(4096)];
    let mut len = 0;
    loop {
        if len == buf.len() {
            if len == cap {
                break;
            }
            buf.resize(len.saturating_mul(2).min(cap), 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// [`read_file`] of a text file of any length.
pub fn read_text(path: &std::path::Path) -> std::io::Result<String> {
    String::from_utf8(read_file(path, u64::MAX)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
