//! `pause` and `resume`: freeze and thaw every process of the container.
use anyhow::{bail, Result};

use super::state::{Container, Status};

/// Freeze every process of a running container.
pub fn pause(c: &Container) -> Result<()> {
    match c.status() {
        Status::Running => c.cgroup()?.freeze(),
        s => bail!(
            "cannot pause container {:?}: it is {s}, not running",
            c.record.id
        ),
    }
}

/// Thaw a paused container.
pub fn resume(c: &Container) -> Result<()> {
    match c.status() {
        Status::Paused => c.cgroup()?.thaw(),
        s => bail!(
            "cannot resume container {:?}: it is {s}, not paused",
            c.record.id
        ),
    }
}
