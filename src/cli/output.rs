//! A command's output on stdout. A reader that has gone away (`berth state ID | head -c1`,
//! `berth list | grep -q x`) ends berth silently by SIGPIPE, as it ends runc: Go's runtime
//! dies of SIGPIPE on a broken fd 1 or 2. berth ignores SIGPIPE for its own sockets, so
//! `print!` would panic there instead.
use std::io::Write;

use anyhow::{Context, Result};

/// Write `text` to stdout and flush it.
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            crate::sys::process::die_of_sigpipe()
        }
        r => r.context("writing to stdout"),
    }
}

/// `print` with a newline after `text`.
pub fn println(text: &str) -> Result<()> {
    print(&format!("{text}\n"))
}
