//! Capabilities in all five sets (process.capabilities). An absent set means empty.
//! Order, as runc: bounding first (needs CAP_SETPCAP, before the uid change), then, after
//! the uid change with PR_SET_KEEPCAPS, effective/permitted/inheritable, then ambient.
use std::collections::HashSet;

use anyhow::{Context, Result};
use caps::{CapSet, Capability as Cap, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

/// Convert oci-spec capabilities to the caps crate's, by name. Unknown names were already
/// dropped (with a warning) by the spec pre-pass; a name this kernel's caps crate does not
/// know is skipped here with a warning too.
fn convert(set: Option<&Capabilities>) -> CapsHashSet {
    let mut out = HashSet::new();
    for c in set.into_iter().flatten() {
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string));
        match name.as_deref().map(str::parse::<Cap>) {
            Some(Ok(cap)) => {
                out.insert(cap);
            }
            _ => tracing::warn!("capability {name:?} is not known to this build; skipped"),
        }
    }
    out
}

/// The resolved sets.
pub struct CapSets {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

impl CapSets {
    pub fn from_spec(c: Option<&LinuxCapabilities>) -> CapSets {
        CapSets {
            bounding: convert(c.and_then(|c| c.bounding().as_ref())),
            effective: convert(c.and_then(|c| c.effective().as_ref())),
            permitted: convert(c.and_then(|c| c.permitted().as_ref())),
            inheritable: convert(c.and_then(|c| c.inheritable().as_ref())),
            ambient: convert(c.and_then(|c| c.ambient().as_ref())),
        }
    }

    /// Keep CAP_SYS_ADMIN effective and permitted through the identity change, for a
    /// seccomp filter loaded after it without no_new_privs. It does not outlive the execve
    /// that follows: the kernel computes the program's sets from the bounding, inheritable
    /// and ambient sets (and the file's), never from the permitted set before the exec.
    pub fn keep_sys_admin_until_exec(&mut self) {
        self.effective.insert(Cap::CAP_SYS_ADMIN);
        self.permitted.insert(Cap::CAP_SYS_ADMIN);
    }

    /// Drop every capability not listed from the bounding set.
    pub fn apply_bounding(&self) -> Result<()> {
        let supported = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
        for cap in supported {
            if !self.bounding.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap)
                    .with_context(|| format!("dropping {cap} from the bounding set"))?;
            }
        }
        Ok(())
    }

    /// Set effective, permitted, inheritable and ambient (after the uid change).
    pub fn apply_process_sets(&self) -> Result<()> {
        // Inheritable while permitted is still full, then effective (a subset of the old
        // permitted), then permitted (which must still hold effective).
        caps::set(None, CapSet::Inheritable, &self.inheritable)
            .context("setting the inheritable capabilities")?;
        caps::set(None, CapSet::Effective, &self.effective)
            .context("setting the effective capabilities")?;
        caps::set(None, CapSet::Permitted, &self.permitted)
            .context("setting the permitted capabilities")?;
        caps::clear(None, CapSet::Ambient).context("clearing the ambient capabilities")?;
        for cap in &self.ambient {
            // As runc: an ambient cap that cannot be raised (not both permitted and
            // inheritable) is a warning, in runc's words, and the container runs.
            let one = rustix::thread::CapabilitySet::from_bits_retain(1 << cap.index());
            if let Err(e) = rustix::thread::configure_capability_in_ambient_set(one, true) {
                tracing::warn!(
                    "can't raise ambient capability {cap}: {}",
                    crate::log::go_errno_text(e.raw_os_error())
                );
            }
        }
        Ok(())
    }
}
