//! v1 `freezer` controller.
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::cgroups::fs;

const TIMEOUT: Duration = Duration::from_secs(5);

fn state(dir: &Path) -> Result<String> {
    Ok(fs::read(dir, "freezer.state")?.trim().to_string())
}

fn set_state(dir: &Path, want: &str) -> Result<()> {
    fs::write(dir, "freezer.state", want)?;
    if fs::wait_until(TIMEOUT, || Ok(state(dir)? == want))? {
        return Ok(());
    }
    let now = state(dir)?;
    if want == "FROZEN" {
        // Do not leave the container half frozen.
        fs::write(dir, "freezer.state", "THAWED")?;
    }
    bail!(
        "{}: freezer.state is still {now} {}s after writing {want}",
        dir.display(),
        TIMEOUT.as_secs()
    )
}

pub fn freeze(dir: &Path) -> Result<()> {
    set_state(dir, "FROZEN")
}

pub fn thaw(dir: &Path) -> Result<()> {
    set_state(dir, "THAWED")
}

pub fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(state(dir)? == "FROZEN")
}
