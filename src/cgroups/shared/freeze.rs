//! The cgroup2 freezer: cgroup.freeze, with the outcome read back from cgroup.events (the v2
//! manager, and a v1 manager on a hybrid host).
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::cgroups::fs;

const TIMEOUT: Duration = Duration::from_secs(5);

fn set_state(dir: &Path, frozen: bool) -> Result<()> {
    fs::write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    if fs::wait_until(TIMEOUT, || Ok(is_frozen(dir)? == frozen))? {
        return Ok(());
    }
    if frozen {
        fs::write(dir, "cgroup.freeze", "0")?;
    }
    bail!(
        "{}: cgroup.events does not report frozen={} {}s after writing cgroup.freeze",
        dir.display(),
        u8::from(frozen),
        TIMEOUT.as_secs()
    )
}

pub fn freeze(dir: &Path) -> Result<()> {
    set_state(dir, true)
}

pub fn thaw(dir: &Path) -> Result<()> {
    set_state(dir, false)
}

pub fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(fs::flat_keyed_value(dir, "cgroup.events", "frozen")? == Some(1))
}
