//! v1 `blkio` controller: weight (CFQ `blkio.weight` or BFQ `blkio.bfq.weight`), per-device
//! weights and throttles; I/O statistics.
use std::path::Path;

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use crate::cgroups::fs;
use crate::cgroups::stats::{parse_blkio_v1, Blkio};

/// The first of `names` that exists in `dir`.
fn pick<'a>(dir: &Path, names: &[&'a str], field: &str) -> Result<&'a str> {
    match names.iter().find(|n| dir.join(n).exists()) {
        Some(n) => Ok(n),
        None => bail!(
            "linux.resources.blockIO.{field}: the kernel has none of {names:?} in {}",
            dir.display()
        ),
    }
}

/// `major:minor value` for throttle files (0 removes the limit, as the kernel reads it).
pub fn throttle_line(t: &LinuxThrottleDevice) -> String {
    format!("{}:{} {}", t.major(), t.minor(), t.rate())
}

pub fn set(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = b.weight() {
        let f = pick(dir, &["blkio.weight", "blkio.bfq.weight"], "weight")?;
        fs::write(dir, f, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight() {
        let f = pick(dir, &["blkio.leaf_weight"], "leafWeight")?;
        fs::write(dir, f, &w.to_string())?;
    }
    for d in b.weight_device().as_deref().unwrap_or_default() {
        if let Some(w) = d.weight() {
            let f = pick(
                dir,
                &["blkio.weight_device", "blkio.bfq.weight_device"],
                "weightDevice",
            )?;
            fs::write(dir, f, &format!("{}:{} {w}", d.major(), d.minor()))?;
        }
        if let Some(w) = d.leaf_weight() {
            let f = pick(
                dir,
                &["blkio.leaf_weight_device"],
                "weightDevice.leafWeight",
            )?;
            fs::write(dir, f, &format!("{}:{} {w}", d.major(), d.minor()))?;
        }
    }
    let throttles = [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
        ),
    ];
    for (list, file) in throttles {
        for t in list.as_deref().unwrap_or_default() {
            fs::write(dir, file, &throttle_line(t))?;
        }
    }
    Ok(())
}

/// Statistics: the CFQ files when present, else the BFQ ones, else the throttle ones (which
/// count I/O at the throttling layer).
pub fn stats(dir: &Path) -> Result<Blkio> {
    let pairs = [
        (
            "blkio.io_service_bytes_recursive",
            "blkio.io_serviced_recursive",
        ),
        (
            "blkio.bfq.io_service_bytes_recursive",
            "blkio.bfq.io_serviced_recursive",
        ),
        (
            "blkio.throttle.io_service_bytes_recursive",
            "blkio.throttle.io_serviced_recursive",
        ),
    ];
    for (bytes, ios) in pairs {
        if dir.join(bytes).exists() {
            return Ok(Blkio {
                io_service_bytes_recursive: parse_blkio_v1(&fs::read(dir, bytes)?),
                io_serviced_recursive: parse_blkio_v1(&fs::read(dir, ios)?),
            });
        }
    }
    Ok(Blkio::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxThrottleDeviceBuilder;

    #[test]
    fn throttle_syntax() {
        let t = LinuxThrottleDeviceBuilder::default()
            .major(8)
            .minor(0)
            .rate(1048576u64)
            .build()
            .unwrap();
        assert_eq!(throttle_line(&t), "8:0 1048576");
    }
}
