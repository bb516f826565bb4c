//! `rdma` controller (same `rdma.max` syntax on v1 and v2).
use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use oci_spec::runtime::LinuxRdma;

use crate::cgroups::fs;

pub fn set(dir: &Path, rdma: &HashMap<String, LinuxRdma>) -> Result<()> {
    for line in crate::cgroups::rdma_lines(rdma) {
        fs::write(dir, "rdma.max", &line)?;
    }
    Ok(())
}
