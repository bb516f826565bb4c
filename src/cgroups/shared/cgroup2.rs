//! The cgroup2 tree: its root, its controllers, enabling them down to a leaf. Used by the v2
//! manager and by a v1 manager on a hybrid host.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cgroups::fs;

/// The root of the cgroup2 tree holding `dir`: the topmost ancestor with `cgroup.controllers`.
pub fn tree_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .skip(1)
        .take_while(|a| a.join("cgroup.controllers").exists())
        .last()
        .map(Path::to_path_buf)
}

/// Controllers listed in `dir/cgroup.controllers`.
pub fn available_controllers(dir: &Path) -> Result<Vec<String>> {
    Ok(fs::read(dir, "cgroup.controllers")?
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// Enables `wanted` controllers in `cgroup.subtree_control` of every ancestor of `leaf`, from
/// the tree root down, so `leaf` gets their files.
pub fn enable_in_ancestors(leaf: &Path, wanted: &[&str]) -> Result<()> {
    let Some(root) = tree_root(leaf) else {
        bail!("{} is not inside a cgroup2 tree", leaf.display());
    };
    let rel = leaf.strip_prefix(&root).unwrap_or(leaf);
    let mut dir = root.clone();
    for comp in rel.components() {
        let enabled = fs::read(&dir, "cgroup.subtree_control")?;
        for c in wanted {
            if !enabled.split_whitespace().any(|e| e == *c) {
                fs::write(&dir, "cgroup.subtree_control", &format!("+{c}")).with_context(|| {
                    format!(
                        "enabling the {c} controller for children of {}",
                        dir.display()
                    )
                })?;
            }
        }
        dir.push(comp);
    }
    Ok(())
}
