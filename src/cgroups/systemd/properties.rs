//! Unit properties for the systemd driver: the resources systemd manages itself (as runc maps
//! them), and `org.systemd.property.NAME` annotations (values in GVariant text form, as runc
//! reads them). Pure functions; `dbus.rs` turns [`Prop`] into D-Bus variants.
use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxCpu, LinuxResources};

use crate::cgroups::devices::{self, DevType, DeviceState};
use crate::cgroups::v2;

/// A property value, with the D-Bus type systemd expects for it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Prop {
    Bool(bool),
    Byte(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    /// `ay` (AllowedCPUs, AllowedMemoryNodes: a bitmask, lowest CPU in the first byte's low bit).
    Bytes(Vec<u8>),
    /// `au` (PIDs).
    U32s(Vec<u32>),
    U64s(Vec<u64>),
    I32s(Vec<i32>),
    I64s(Vec<i64>),
    /// `as`.
    Strs(Vec<String>),
    /// `a(ss)` (DeviceAllow: path or `char-NAME`, access letters).
    DeviceAllow(Vec<(String, String)>),
}

/// Named properties, in the order systemd applies them (a later one wins).
pub type Props = Vec<(String, Prop)>;

/// systemd's `infinity` for limits.
const INFINITY: u64 = u64::MAX;

/// The properties for `r` on a host with cgroup v2 (`v2`) or v1, as runc sets them. What
/// systemd does not manage is left to the cgroupfs writers, which run afterwards.
/// `proc_devices` is the text of /proc/devices (device majors by name).
pub fn resource_props(r: &LinuxResources, v2: bool, proc_devices: &str) -> Result<Props> {
    let mut p = Props::new();
    let mut push = |name: &str, v: Prop| p.push((name.to_string(), v));
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit() {
            let v = limit(l, "limit")?;
            push(if v2 { "MemoryMax" } else { "MemoryLimit" }, Prop::U64(v));
        }
        if v2 {
            if let Some(l) = m.reservation() {
                push("MemoryLow", Prop::U64(limit(l, "reservation")?));
            }
            if let Some(s) = v2::memory::swap_value(m.swap(), m.limit())? {
                let v = if s == "max" {
                    INFINITY
                } else {
                    s.parse().context("memory.swap.max")?
                };
                push("MemorySwapMax", Prop::U64(v));
            }
        }
    }
    if let Some(c) = r.cpu() {
        cpu_props(c, v2, &mut push)?;
    }
    if let Some(pids) = r.pids() {
        match pids.limit() {
            l if l > 0 => push("TasksMax", Prop::U64(l as u64)),
            -1 | 0 => push("TasksMax", Prop::U64(INFINITY)),
            l => bail!("linux.resources.pids.limit: invalid value {l}"),
        }
    }
    if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()) {
        if v2 {
            push("IOWeight", Prop::U64(v2::io::blkio_weight_to_io_weight(w)));
        } else {
            push("BlockIOWeight", Prop::U64(u64::from(w)));
        }
    }
    if v2 {
        unified_props(r.unified().as_ref(), &mut push)?;
    }
    let rules = devices::effective_rules(r.devices().as_deref())?;
    let (policy, allow) = device_props(&DeviceState::from_rules(&rules), proc_devices);
    push("DevicePolicy", Prop::Str(policy.to_string()));
    // A non-empty DeviceAllow adds to the unit's list, an empty one resets it: reset first,
    // so an update can take access away (as runc does).
    push("DeviceAllow", Prop::DeviceAllow(Vec::new()));
    push("DeviceAllow", Prop::DeviceAllow(allow));
    Ok(p)
}

/// A memory byte limit: -1 is infinity.
fn limit(v: i64, field: &str) -> Result<u64> {
    match v {
        -1 => Ok(INFINITY),
        v if v < 0 => bail!("linux.resources.memory.{field}: invalid value {v}"),
        v => Ok(v as u64),
    }
}

fn cpu_props(c: &LinuxCpu, v2: bool, push: &mut impl FnMut(&str, Prop)) -> Result<()> {
    if let Some(s) = c.shares().filter(|&s| s > 0) {
        if v2 {
            push("CPUWeight", Prop::U64(v2::cpu::shares_to_weight(s)));
        } else {
            push("CPUShares", Prop::U64(s));
        }
    }
    let (quota, period) = (c.quota().unwrap_or(0), c.period().unwrap_or(0));
    if period != 0 {
        push("CPUQuotaPeriodUSec", Prop::U64(period));
    }
    if quota != 0 || period != 0 {
        push(
            "CPUQuotaPerSecUSec",
            Prop::U64(quota_per_sec(quota, period)),
        );
    }
    if v2 {
        // systemd sets cpuset only on the unified hierarchy; on v1 the cgroupfs writer does.
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            push("AllowedCPUs", Prop::Bytes(bitmask(cpus, "cpu.cpus")?));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            push(
                "AllowedMemoryNodes",
                Prop::Bytes(bitmask(mems, "cpu.mems")?),
            );
        }
    }
    Ok(())
}

/// CPUQuotaPerSecUSec from a quota and period (µs), as runc computes it: systemd keeps the
/// quota as a whole percentage of a CPU, so round up to 10 ms per second, or the cgroup gets
/// less than asked. No quota (or a negative one) is infinity.
pub fn quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota <= 0 {
        return INFINITY;
    }
    let period = if period == 0 { 100_000 } else { period };
    let per_sec = (quota as u64).saturating_mul(1_000_000) / period;
    per_sec.div_ceil(10_000) * 10_000
}

/// A cpuset list (`0-2,7`) as systemd's bitmask bytes.
pub fn bitmask(list: &str, field: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .with_context(|| format!("linux.resources.{field}: invalid list {list:?}"))
        };
        let (a, b) = (parse(a)?, parse(b)?);
        if a > b || b >= 8192 {
            bail!("linux.resources.{field}: invalid range {part:?}");
        }
        for i in a..=b {
            if out.len() <= i / 8 {
                out.resize(i / 8 + 1, 0);
            }
            out[i / 8] |= 1 << (i % 8);
        }
    }
    Ok(out)
}

/// `linux.resources.unified` keys systemd has a property for (v2); the cgroupfs writer writes
/// every key afterwards anyway.
fn unified_props(
    unified: Option<&HashMap<String, String>>,
    push: &mut impl FnMut(&str, Prop),
) -> Result<()> {
    let Some(u) = unified else { return Ok(()) };
    let mut keys: Vec<&String> = u.keys().collect();
    keys.sort();
    for k in keys {
        let v = u[k].trim();
        let bytes = || -> Result<u64> {
            if v == "max" {
                Ok(INFINITY)
            } else {
                v.parse()
                    .with_context(|| format!("linux.resources.unified.{k}: invalid value {v:?}"))
            }
        };
        match k.as_str() {
            "memory.high" => push("MemoryHigh", Prop::U64(bytes()?)),
            "memory.low" => push("MemoryLow", Prop::U64(bytes()?)),
            "memory.min" => push("MemoryMin", Prop::U64(bytes()?)),
            "memory.max" => push("MemoryMax", Prop::U64(bytes()?)),
            "memory.swap.max" => push("MemorySwapMax", Prop::U64(bytes()?)),
            "pids.max" => push("TasksMax", Prop::U64(bytes()?)),
            "cpu.weight" => push("CPUWeight", Prop::U64(bytes()?)),
            "io.weight" if !v.contains(' ') => push("IOWeight", Prop::U64(bytes()?)),
            _ => {}
        }
    }
    Ok(())
}

/// DevicePolicy and DeviceAllow for the evaluated device rules. An allowlist becomes
/// `strict` plus one entry per exception (`/dev/char/M:m`, `char-NAME` for a whole major,
/// `char-*` for every device); a denylist (default allow) cannot be said to systemd and
/// becomes `auto` with no entries. Either way the cgroupfs writer then installs the exact
/// rules, so systemd's set only has to be no narrower than ours; an exception systemd cannot
/// name (a wildcard major with one minor, a major missing from /proc/devices) is left out.
pub fn device_props(st: &DeviceState, proc_devices: &str) -> (&'static str, Vec<(String, String)>) {
    if st.default_allow {
        return ("auto", Vec::new());
    }
    let mut allow = Vec::new();
    for e in &st.exceptions {
        let kind = match e.typ {
            DevType::Char => "char",
            DevType::Block => "block",
            DevType::All => continue,
        };
        let name = match (e.major, e.minor) {
            (Some(ma), Some(mi)) => format!("/dev/{kind}/{ma}:{mi}"),
            (None, None) => format!("{kind}-*"),
            (Some(ma), None) => match major_name(proc_devices, kind, ma) {
                Some(n) => format!("{kind}-{n}"),
                None => {
                    tracing::debug!("systemd: no name for {kind} major {ma} in /proc/devices");
                    continue;
                }
            },
            (None, Some(_)) => continue,
        };
        allow.push((name, e.access.to_string()));
    }
    ("strict", allow)
}

/// The driver name of a device major in /proc/devices, in its "Character devices:" or
/// "Block devices:" section.
fn major_name(proc_devices: &str, kind: &str, major: u32) -> Option<String> {
    let header = if kind == "char" {
        "Character devices:"
    } else {
        "Block devices:"
    };
    let mut in_section = false;
    for line in proc_devices.lines() {
        if line.ends_with(':') {
            in_section = line.trim() == header;
            continue;
        }
        if !in_section {
            continue;
        }
        let mut parts = line.split_whitespace();
        if let (Some(n), Some(name)) = (parts.next(), parts.next()) {
            if n.parse::<u32>().ok() == Some(major) {
                return Some(name.to_string());
            }
        }
    }
    None
}

/// The unit properties in `org.systemd.property.NAME` annotations. NAME is letters only; a
/// name ending in `Sec` (after a lower-case letter) is converted to the `USec` property with the
/// value in microseconds, as runc does (`TimeoutStopSec=uint64 5` → `TimeoutStopUSec=5000000`).
pub fn annotation_props(annotations: &HashMap<String, String>) -> Result<Props> {
    const PREFIX: &str = "org.systemd.property.";
    let mut keys: Vec<&String> = annotations
        .keys()
        .filter(|k| k.starts_with(PREFIX))
        .collect();
    keys.sort();
    let mut out = Props::new();
    for key in keys {
        let name = &key[PREFIX.len()..];
        if name.len() < 3 || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
            bail!("annotation {key}: the property name must be at least 3 ASCII letters");
        }
        let text = &annotations[key];
        let mut value =
            parse_gvariant(text).with_context(|| format!("annotation {key}={text:?}"))?;
        let mut name = name.to_string();
        if let Some(stem) = name.strip_suffix("Sec") {
            if stem.ends_with(|c: char| c.is_ascii_lowercase()) {
                value = sec_to_usec(value).with_context(|| format!("annotation {key}={text:?}"))?;
                name = format!("{stem}USec");
            }
        }
        out.push((name, value));
    }
    Ok(out)
}

fn sec_to_usec(v: Prop) -> Result<Prop> {
    const M: u64 = 1_000_000;
    let neg = || anyhow::anyhow!("a time in seconds must not be negative");
    Ok(Prop::U64(match v {
        Prop::Byte(n) => u64::from(n) * M,
        Prop::U16(n) => u64::from(n) * M,
        Prop::U32(n) => u64::from(n) * M,
        Prop::U64(n) => n.checked_mul(M).context("too large")?,
        Prop::I16(n) => u64::try_from(n).map_err(|_| neg())? * M,
        Prop::I32(n) => u64::try_from(n).map_err(|_| neg())? * M,
        Prop::I64(n) => u64::try_from(n)
            .map_err(|_| neg())?
            .checked_mul(M)
            .context("too large")?,
        Prop::F64(f) if f >= 0.0 => (f * M as f64) as u64,
        Prop::F64(_) => return Err(neg()),
        other => bail!("a time in seconds must be a number, not {other:?}"),
    }))
}

/// Parses GVariant text (what `dbus.ParseVariant` reads for runc): `true`/`false`, numbers
/// (bare integers are int32, with a point or exponent double; a type prefix such as `uint64 5`
/// or `int64 -1` picks the type), strings in single or double quotes, and arrays of those
/// (`['a', 'b']`, `[uint64 1, 2]`, `@as []`).
pub fn parse_gvariant(text: &str) -> Result<Prop> {
    let mut p = Parser {
        s: text.trim(),
        pos: 0,
    };
    let v = p.value(None)?;
    p.skip_ws();
    if p.pos != p.s.len() {
        bail!("unexpected text after the value: {:?}", &p.s[p.pos..]);
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

/// Scalar types a value (or an array's elements) can have.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    Bool,
    Byte,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F64,
    Str,
}

impl Ty {
    fn from_prefix(w: &str) -> Option<Ty> {
        Some(match w {
            "boolean" => Ty::Bool,
            "byte" => Ty::Byte,
            "int16" => Ty::I16,
            "uint16" => Ty::U16,
            "int32" => Ty::I32,
            "uint32" => Ty::U32,
            "int64" => Ty::I64,
            "uint64" => Ty::U64,
            "double" => Ty::F64,
            "string" => Ty::Str,
            _ => return None,
        })
    }

    fn from_signature(c: char) -> Option<Ty> {
        Some(match c {
            'b' => Ty::Bool,
            'y' => Ty::Byte,
            'n' => Ty::I16,
            'q' => Ty::U16,
            'i' => Ty::I32,
            'u' => Ty::U32,
            'x' => Ty::I64,
            't' => Ty::U64,
            'd' => Ty::F64,
            's' => Ty::Str,
            _ => return None,
        })
    }
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn skip_ws(&mut self) {
        while self.rest().starts_with(char::is_whitespace) {
            self.pos += self.rest().chars().next().map_or(1, char::len_utf8);
        }
    }

    fn word(&self) -> &str {
        let r = self.rest();
        let end = r
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(r.len());
        &r[..end]
    }

    /// One value; `want` is the type an enclosing array or prefix fixed.
    fn value(&mut self, want: Option<Ty>) -> Result<Prop> {
        self.skip_ws();
        let w = self.word().to_string();
        if let Some(t) = Ty::from_prefix(&w) {
            self.pos += w.len();
            return self.value(Some(t));
        }
        if let Some(sig) = self.rest().strip_prefix('@') {
            // A typed empty or non-empty array: @as [...], @at [...]
            let sig: String = sig.chars().take_while(|c| !c.is_whitespace()).collect();
            let elem = sig
                .strip_prefix('a')
                .and_then(|e| {
                    let mut cs = e.chars();
                    cs.next().filter(|_| cs.next().is_none())
                })
                .and_then(Ty::from_signature)
                .with_context(|| format!("unsupported type annotation @{sig}"))?;
            self.pos += 1 + sig.len();
            self.skip_ws();
            return self.array(Some(elem));
        }
        match self.rest().chars().next() {
            Some('[') => self.array(want),
            Some(q @ ('\'' | '"')) => {
                let s = self.string(q)?;
                match want {
                    None | Some(Ty::Str) => Ok(Prop::Str(s)),
                    Some(t) => bail!("a string where {t:?} was expected"),
                }
            }
            Some(_) if w == "true" || w == "false" => {
                self.pos += w.len();
                match want {
                    None | Some(Ty::Bool) => Ok(Prop::Bool(w == "true")),
                    Some(t) => bail!("a boolean where {t:?} was expected"),
                }
            }
            Some(_) => self.number(want),
            None => bail!("missing value"),
        }
    }

    fn string(&mut self, quote: char) -> Result<String> {
        let mut out = String::new();
        let mut chars = self.rest()[1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, c)) => out.push(c),
                    None => break,
                },
                c if c == quote => {
                    self.pos += 1 + i + 1;
                    return Ok(out);
                }
                c => out.push(c),
            }
        }
        bail!("unterminated string")
    }

    fn number(&mut self, want: Option<Ty>) -> Result<Prop> {
        let s = self.s;
        let r = &s[self.pos..];
        let end = r
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.')))
            .unwrap_or(r.len());
        let tok = &r[..end];
        if tok.is_empty() {
            bail!("unexpected {:?}", r);
        }
        self.pos += end;
        let float = tok.contains(['.', 'e', 'E']) && !tok.starts_with("0x");
        let ty = want.unwrap_or(if float { Ty::F64 } else { Ty::I32 });
        let bad = || format!("invalid {ty:?} {tok:?}");
        let int = |t: &str| -> Result<i128> {
            let (neg, digits) = t.strip_prefix('-').map_or((false, t), |d| (true, d));
            let v = match digits.strip_prefix("0x") {
                Some(h) => i128::from_str_radix(h, 16),
                None => digits.parse::<i128>(),
            }
            .with_context(bad)?;
            Ok(if neg { -v } else { v })
        };
        Ok(match ty {
            Ty::F64 => Prop::F64(tok.parse().with_context(bad)?),
            Ty::Byte => Prop::Byte(u8::try_from(int(tok)?).ok().with_context(bad)?),
            Ty::I16 => Prop::I16(i16::try_from(int(tok)?).ok().with_context(bad)?),
            Ty::U16 => Prop::U16(u16::try_from(int(tok)?).ok().with_context(bad)?),
            Ty::I32 => Prop::I32(i32::try_from(int(tok)?).ok().with_context(bad)?),
            Ty::U32 => Prop::U32(u32::try_from(int(tok)?).ok().with_context(bad)?),
            Ty::I64 => Prop::I64(i64::try_from(int(tok)?).ok().with_context(bad)?),
            Ty::U64 => Prop::U64(u64::try_from(int(tok)?).ok().with_context(bad)?),
            Ty::Bool | Ty::Str => bail!("a number where {ty:?} was expected"),
        })
    }

    /// `[v, v, ...]`: every element has the type of the first (or of `want`).
    fn array(&mut self, want: Option<Ty>) -> Result<Prop> {
        if !self.rest().starts_with('[') {
            bail!("expected '['");
        }
        self.pos += 1;
        let mut items = Vec::new();
        let mut ty = want;
        loop {
            self.skip_ws();
            if self.rest().starts_with(']') {
                self.pos += 1;
                break;
            }
            if !items.is_empty() {
                if !self.rest().starts_with(',') {
                    bail!("expected ',' or ']' in an array");
                }
                self.pos += 1;
            }
            let v = self.value(ty)?;
            ty = Some(match &v {
                Prop::Bool(_) => Ty::Bool,
                Prop::Byte(_) => Ty::Byte,
                Prop::I16(_) => Ty::I16,
                Prop::U16(_) => Ty::U16,
                Prop::I32(_) => Ty::I32,
                Prop::U32(_) => Ty::U32,
                Prop::I64(_) => Ty::I64,
                Prop::U64(_) => Ty::U64,
                Prop::F64(_) => Ty::F64,
                Prop::Str(_) => Ty::Str,
                _ => bail!("nested arrays are not supported"),
            });
            items.push(v);
        }
        macro_rules! collect {
            ($variant:ident, $inner:ident) => {
                Prop::$variant(
                    items
                        .into_iter()
                        .map(|v| match v {
                            Prop::$inner(x) => x,
                            _ => unreachable!("array elements share one type"),
                        })
                        .collect(),
                )
            };
        }
        Ok(match ty {
            None | Some(Ty::Str) => collect!(Strs, Str),
            Some(Ty::Byte) => collect!(Bytes, Byte),
            Some(Ty::U32) => collect!(U32s, U32),
            Some(Ty::U64) => collect!(U64s, U64),
            Some(Ty::I32) => collect!(I32s, I32),
            Some(Ty::I64) => collect!(I64s, I64),
            Some(t) => bail!("arrays of {t:?} are not supported"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    fn get<'a>(p: &'a Props, name: &str) -> Option<&'a Prop> {
        p.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    const PROC_DEVICES: &str =
        "Character devices:\n  1 mem\n  5 /dev/tty\n136 pts\n\nBlock devices:\n  8 sd\n";

    #[test]
    fn v2_resources() {
        let r = res(json!({
            "memory": {"limit": 1048576, "reservation": 524288, "swap": 2097152},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1,3", "mems": "0"},
            "pids": {"limit": 42},
            "blockIO": {"weight": 500},
            "unified": {"memory.high": "900000"}
        }));
        let p = resource_props(&r, true, PROC_DEVICES).unwrap();
        assert_eq!(get(&p, "MemoryMax"), Some(&Prop::U64(1048576)));
        assert_eq!(get(&p, "MemoryLow"), Some(&Prop::U64(524288)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Prop::U64(1048576)));
        assert_eq!(get(&p, "MemoryHigh"), Some(&Prop::U64(900000)));
        assert_eq!(get(&p, "CPUWeight"), Some(&Prop::U64(100)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Prop::U64(500000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Prop::U64(100000)));
        assert_eq!(get(&p, "AllowedCPUs"), Some(&Prop::Bytes(vec![0b1011])));
        assert_eq!(get(&p, "AllowedMemoryNodes"), Some(&Prop::Bytes(vec![1])));
        assert_eq!(get(&p, "TasksMax"), Some(&Prop::U64(42)));
        assert_eq!(get(&p, "IOWeight"), Some(&Prop::U64(4950)));
        assert_eq!(get(&p, "DevicePolicy"), Some(&Prop::Str("strict".into())));
        let Some(Prop::DeviceAllow(allow)) = get(&p, "DeviceAllow") else {
            panic!("no DeviceAllow")
        };
        assert!(allow.contains(&("/dev/char/1:3".into(), "rwm".into())));
        assert!(allow.contains(&("char-pts".into(), "rwm".into())));
        assert!(allow.contains(&("char-*".into(), "m".into())));
        assert!(allow.contains(&("block-*".into(), "m".into())));
    }

    #[test]
    fn v1_resources() {
        let r = res(json!({
            "memory": {"limit": -1},
            "cpu": {"shares": 512, "quota": 12345, "cpus": "0"},
            "blockIO": {"weight": 300}
        }));
        let p = resource_props(&r, false, PROC_DEVICES).unwrap();
        assert_eq!(get(&p, "MemoryLimit"), Some(&Prop::U64(u64::MAX)));
        assert_eq!(get(&p, "CPUShares"), Some(&Prop::U64(512)));
        // 12345/100000 of a CPU, rounded up to whole percents.
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Prop::U64(130000)));
        assert_eq!(get(&p, "BlockIOWeight"), Some(&Prop::U64(300)));
        assert_eq!(get(&p, "AllowedCPUs"), None);
        assert_eq!(get(&p, "MemoryMax"), None);
    }

    #[test]
    fn unlimited_values() {
        let r = res(json!({"pids": {"limit": -1}, "cpu": {"quota": -1, "period": 100000}}));
        let p = resource_props(&r, true, "").unwrap();
        assert_eq!(get(&p, "TasksMax"), Some(&Prop::U64(u64::MAX)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Prop::U64(u64::MAX)));
        assert!(resource_props(&res(json!({"memory": {"limit": -5}})), true, "").is_err());
        assert!(bitmask("3-1", "cpu.cpus").is_err());
        assert!(bitmask("x", "cpu.cpus").is_err());
        assert_eq!(bitmask("9", "cpu.cpus").unwrap(), vec![0, 2]);
    }

    #[test]
    fn a_denylist_leaves_devices_to_the_cgroupfs_writer() {
        let r = res(json!({"devices": [
            {"allow": true, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}
        ]}));
        let p = resource_props(&r, true, PROC_DEVICES).unwrap();
        assert_eq!(get(&p, "DevicePolicy"), Some(&Prop::Str("auto".into())));
        assert_eq!(get(&p, "DeviceAllow"), Some(&Prop::DeviceAllow(vec![])));
    }

    #[test]
    fn annotations() {
        let a: HashMap<String, String> = [
            ("org.systemd.property.TimeoutStopSec", "uint64 5"),
            ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
            ("org.systemd.property.CPUQuotaPerSecUSec", "uint64 20000"),
            ("org.systemd.property.Wants", "['a.service', \"b.service\"]"),
            ("org.systemd.property.RuntimeMaxSec", "1.5"),
            ("other.annotation", "ignored"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p = annotation_props(&a).unwrap();
        assert_eq!(get(&p, "TimeoutStopUSec"), Some(&Prop::U64(5_000_000)));
        assert_eq!(
            get(&p, "CollectMode"),
            Some(&Prop::Str("inactive-or-failed".into()))
        );
        // "USec" already: kept as is.
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Prop::U64(20000)));
        assert_eq!(
            get(&p, "Wants"),
            Some(&Prop::Strs(vec!["a.service".into(), "b.service".into()]))
        );
        assert_eq!(get(&p, "RuntimeMaxUSec"), Some(&Prop::U64(1_500_000)));
        assert_eq!(p.len(), 5);
        let bad = |k: &str, v: &str| {
            let a: HashMap<String, String> = [(k.to_string(), v.to_string())].into();
            annotation_props(&a).unwrap_err().to_string()
        };
        assert!(bad("org.systemd.property.Bad-Name", "1").contains("ASCII letters"));
        assert!(bad("org.systemd.property.Description", "'open").contains("Description"));
        assert!(bad("org.systemd.property.TimeoutStopSec", "'x'").contains("TimeoutStopSec"));
    }

    #[test]
    fn gvariant_text() {
        assert_eq!(parse_gvariant("true").unwrap(), Prop::Bool(true));
        assert_eq!(parse_gvariant("42").unwrap(), Prop::I32(42));
        assert_eq!(parse_gvariant("int64 -3").unwrap(), Prop::I64(-3));
        assert_eq!(parse_gvariant("uint32 0x10").unwrap(), Prop::U32(16));
        assert_eq!(parse_gvariant("2.5").unwrap(), Prop::F64(2.5));
        assert_eq!(
            parse_gvariant("'it\\'s'").unwrap(),
            Prop::Str("it's".into())
        );
        assert_eq!(parse_gvariant("@as []").unwrap(), Prop::Strs(vec![]));
        assert_eq!(
            parse_gvariant("[uint64 1, 2]").unwrap(),
            Prop::U64s(vec![1, 2])
        );
        assert!(parse_gvariant("uint64 -1").is_err());
        assert!(parse_gvariant("byte 300").is_err());
        assert!(parse_gvariant("[1, 'a']").is_err());
        assert!(parse_gvariant("1 2").is_err());
        assert!(parse_gvariant("").is_err());
    }
}
