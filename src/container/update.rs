//! `update`: change the resources of a created or running container.
use anyhow::{bail, Context, Result};

use super::state::{Container, Status};

/// Merge `patch` (a linux.resources JSON object) into the applied resources, write the
/// result to the cgroup, and record it. Unmentioned fields keep their values.
pub fn update(c: &mut Container, patch: serde_json::Value) -> Result<()> {
    if c.status() == Status::Stopped {
        bail!("cannot update container {:?}: it is stopped", c.record.id);
    }
    let mut merged = serde_json::to_value(&c.record.resources)?;
    if merged.is_null() {
        merged = serde_json::json!({});
    }
    merge(&mut merged, patch);
    let resources: oci_spec::runtime::LinuxResources =
        crate::spec::from_value_with_path("linux.resources", &merged).context("linux.resources")?;
    c.cgroup()?.set(&resources)?;
    c.record.resources = Some(resources);
    c.save()
}

/// JSON merge: objects merge key by key, anything else replaces.
pub fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_unmentioned_fields() {
        let mut base = serde_json::json!({"memory": {"limit": 1, "swap": 2}, "pids": {"limit": 5}});
        merge(
            &mut base,
            serde_json::json!({"memory": {"limit": 9}, "cpu": {"shares": 3}}),
        );
        assert_eq!(
            base,
            serde_json::json!({"memory": {"limit": 9, "swap": 2}, "pids": {"limit": 5}, "cpu": {"shares": 3}})
        );
    }
}
