//! v1 `net_cls` controller: the class id of the container's packets.
use std::path::Path;

use anyhow::Result;

use crate::cgroups::fs;

pub fn set(dir: &Path, class_id: u32) -> Result<()> {
    fs::write(dir, "net_cls.classid", &class_id.to_string())
}
