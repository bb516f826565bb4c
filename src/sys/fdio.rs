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
    let f = std::fs::File::open(path)?;
    let most = limit.saturating_add(1);
    // read_to_end reads into the vector's spare capacity without zeroing it first.
    let mut buf = Vec::with_capacity(usize::try_from(most).map_or(4096, |m| m.min(4096)));
    f.take(most).read_to_end(&mut buf)?;
    // Most reads are a few bytes of a cgroup or /proc file: give the rest back.
    buf.shrink_to_fit();
    Ok(buf)
}

/// [`read_file`] of a text file of any length.
pub fn read_text(path: &std::path::Path) -> std::io::Result<String> {
    String::from_utf8(read_file(path, u64::MAX)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
