//! v2 `io` controller: weights (io.bfq.weight when BFQ is present, else io.weight with the
//! v1 → v2 range conversion) and io.max throttles; statistics from io.stat.
use std::path::Path;

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use crate::cgroups::fs;
use crate::cgroups::stats::{parse_io_stat_v2, Blkio};

/// io.weight (1..10000) from a v1 blkio weight (10..1000), as runc converts it; 0 is unset.
pub fn blkio_weight_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

/// One io.max line: `MAJ:MIN key=value` (rate 0 removes the limit, as it does on v1).
pub fn max_line(t: &LinuxThrottleDevice, key: &str) -> String {
    let v = if t.rate() == 0 {
        "max".to_string()
    } else {
        t.rate().to_string()
    };
    format!("{}:{} {key}={v}", t.major(), t.minor())
}

pub fn set(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    if b.leaf_weight().is_some()
        || b.weight_device()
            .iter()
            .flatten()
            .any(|d| d.leaf_weight().is_some())
    {
        bail!("linux.resources.blockIO.leafWeight is not supported on cgroup v2");
    }
    let bfq = dir.join("io.bfq.weight").exists();
    let weight = |w: u16| {
        if bfq {
            u64::from(w)
        } else {
            blkio_weight_to_io_weight(w)
        }
    };
    let file = if bfq { "io.bfq.weight" } else { "io.weight" };
    if let Some(w) = b.weight() {
        fs::write(dir, file, &weight(w).to_string())?;
    }
    for d in b.weight_device().as_deref().unwrap_or_default() {
        if let Some(w) = d.weight() {
            fs::write(
                dir,
                file,
                &format!("{}:{} {}", d.major(), d.minor(), weight(w)),
            )?;
        }
    }
    let throttles = [
        (b.throttle_read_bps_device(), "rbps"),
        (b.throttle_write_bps_device(), "wbps"),
        (b.throttle_read_iops_device(), "riops"),
        (b.throttle_write_iops_device(), "wiops"),
    ];
    for (list, key) in throttles {
        for t in list.as_deref().unwrap_or_default() {
            fs::write(dir, "io.max", &max_line(t, key))?;
        }
    }
    Ok(())
}

pub fn stats(dir: &Path) -> Result<Blkio> {
    if !dir.join("io.stat").exists() {
        return Ok(Blkio::default());
    }
    Ok(parse_io_stat_v2(&fs::read(dir, "io.stat")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxThrottleDeviceBuilder;

    #[test]
    fn weights() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10000);
        assert_eq!(blkio_weight_to_io_weight(500), 1 + 490 * 9999 / 990);
    }

    #[test]
    fn io_max() {
        let t = |r: u64| {
            LinuxThrottleDeviceBuilder::default()
                .major(8)
                .minor(16)
                .rate(r)
                .build()
                .unwrap()
        };
        assert_eq!(max_line(&t(1024), "rbps"), "8:16 rbps=1024");
        assert_eq!(max_line(&t(0), "wiops"), "8:16 wiops=max");
    }
}
