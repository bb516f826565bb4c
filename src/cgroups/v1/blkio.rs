//! v1 `blkio` controller: weight (CFQ `blkio.weight` or BFQ `blkio.bfq.weight`), per-device
//! weights and throttles; I/O statistics.
use std::path::Path;

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use crate::cgroups::fs;
use crate::cgroups::stats::{parse_blkio_v1, Blkio, BlkioEntry};

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

/// Statistics as runc gathers them: the first group of files whose first file has entries
/// (BFQ with its debug files, BFQ, CFQ, the recursive throttle files, the plain throttle
/// files), each file of the group in turn until one is empty.
pub fn stats(dir: &Path) -> Result<Blkio> {
    type Field = fn(&mut Blkio) -> &mut Vec<BlkioEntry>;
    let bytes: Field = |b| &mut b.io_service_bytes_recursive;
    let ios: Field = |b| &mut b.io_serviced_recursive;
    let queued: Field = |b| &mut b.io_queued_recursive;
    let service_time: Field = |b| &mut b.io_service_time_recursive;
    let wait_time: Field = |b| &mut b.io_wait_time_recursive;
    let merged: Field = |b| &mut b.io_merged_recursive;
    let time: Field = |b| &mut b.io_time_recursive;
    let sectors: Field = |b| &mut b.sectors_recursive;
    let full = |prefix: &str| -> Vec<(String, Field)> {
        [
            ("sectors_recursive", sectors),
            ("io_service_time_recursive", service_time),
            ("io_wait_time_recursive", wait_time),
            ("io_merged_recursive", merged),
            ("io_queued_recursive", queued),
            ("time_recursive", time),
            ("io_serviced_recursive", ios),
            ("io_service_bytes_recursive", bytes),
        ]
        .into_iter()
        .map(|(f, field)| (format!("{prefix}{f}"), field))
        .collect()
    };
    let pair = |serviced: &str, service_bytes: &str| -> Vec<(String, Field)> {
        vec![
            (serviced.to_string(), ios),
            (service_bytes.to_string(), bytes),
        ]
    };
    let groups = [
        full("blkio.bfq."),
        pair(
            "blkio.bfq.io_serviced_recursive",
            "blkio.bfq.io_service_bytes_recursive",
        ),
        full("blkio."),
        pair(
            "blkio.throttle.io_serviced_recursive",
            "blkio.throttle.io_service_bytes_recursive",
        ),
        pair(
            "blkio.throttle.io_serviced",
            "blkio.throttle.io_service_bytes",
        ),
    ];
    // A missing file has no entries, as in runc.
    let entries = |file: &str| -> Result<Vec<BlkioEntry>> {
        if !dir.join(file).exists() {
            return Ok(Vec::new());
        }
        Ok(parse_blkio_v1(&fs::read(dir, file)?))
    };
    let mut out = Blkio::default();
    for group in groups {
        for (i, (file, field)) in group.iter().enumerate() {
            let e = entries(file)?;
            if e.is_empty() {
                if i == 0 {
                    break; // the next group
                }
                return Ok(out);
            }
            *field(&mut out) = e;
            if i + 1 == group.len() {
                return Ok(out);
            }
        }
    }
    Ok(out)
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
