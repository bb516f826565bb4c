//! `linux.resources.unified`: raw v2 key/values, written last so they override.
use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::cgroups::fs;

pub fn set(dir: &Path, kv: &HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<&String> = kv.keys().collect();
    keys.sort();
    for k in keys {
        fs::check_file_name(k).with_context(|| format!("linux.resources.unified key {k:?}"))?;
        if k.starts_with("cgroup.") && k != "cgroup.max.depth" && k != "cgroup.max.descendants" {
            bail!("linux.resources.unified: {k:?} cannot be set through unified");
        }
        if !dir.join(k).exists() {
            let ctrl = k.split('.').next().unwrap_or(k);
            bail!("linux.resources.unified: {k:?}: no such file in {} (is the {ctrl} controller enabled?)", dir.display());
        }
        fs::write(dir, k, &kv[k])?;
    }
    Ok(())
}
