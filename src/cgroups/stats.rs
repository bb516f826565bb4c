//! Resource usage, shaped like the `data` of runc's `events --stats` (the JSON containerd's
//! shim decodes): field names and `omitempty` behaviour follow runc's `types/events.go`.
use std::collections::BTreeMap;

use serde::Serialize;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    /// Keyed by page size as the kernel names it ("2MB", "1GB").
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// CPU time in nanoseconds.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct MemoryEntry {
    /// `u64::MAX` when unlimited, as runc reports it.
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat as read.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 when unlimited, as runc reports it.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Blkio {
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Parses v1 `blkio.*_recursive` lines: `8:0 Read 4096` (a final `Total N` line is skipped).
pub fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (ma, mi) = it.next()?.split_once(':')?;
            let op = it.next()?;
            let value = it.next()?.parse().ok()?;
            Some(BlkioEntry {
                major: ma.parse().ok()?,
                minor: mi.parse().ok()?,
                op: op.to_string(),
                value,
            })
        })
        .collect()
}

/// Parses v2 `io.stat` (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`) into runc's v1-shaped
/// entries: bytes → ioServiceBytesRecursive, ios → ioServicedRecursive, ops Read/Write.
pub fn parse_io_stat_v2(text: &str) -> Blkio {
    let mut out = Blkio::default();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((ma, mi)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut out.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut out.io_service_bytes_recursive, "Write"),
                "rios" => (&mut out.io_serviced_recursive, "Read"),
                "wios" => (&mut out.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_v1() {
        let e = parse_blkio_v1("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].major, e[0].minor, e[0].op.as_str(), e[0].value),
            (8, 0, "Read", 4096)
        );
    }

    #[test]
    fn io_stat_v2() {
        let b = parse_io_stat_v2("254:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(b.io_service_bytes_recursive.len(), 2);
        assert_eq!(b.io_service_bytes_recursive[1].value, 20);
        assert_eq!(b.io_serviced_recursive[0].op, "Read");
    }

    #[test]
    fn serialises_like_runc() {
        let mut s = Stats::default();
        s.memory.usage.limit = 5;
        s.hugetlb.insert("2MB".into(), Hugetlb::default());
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["memory"]["usage"]["limit"], 5);
        assert_eq!(v["memory"]["kernelTCP"]["failcnt"], 0);
        assert_eq!(v["hugetlb"]["2MB"]["failcnt"], 0);
        assert!(v["pids"].get("current").is_none());
    }
}
