//! Loading `config.json`: a lenient pre-pass over the raw JSON (as runc: unknown capability
//! names are warnings, unknown fields are ignored), then typed parsing with oci-spec where a
//! type error names the JSON path, then validation (`validate`) before any side effect.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Capability, Spec};
use serde::Deserialize;
use serde_json::Value;

pub mod attrs;
pub mod netdev;
pub mod template;
pub mod validate;

/// The runtime-spec version berth writes and implements.
pub const OCI_VERSION: &str = "1.2.1";

/// A loaded, validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute, canonical bundle directory.
    pub dir: PathBuf,
    pub spec: Spec,
    /// Absolute host path of the rootfs.
    pub rootfs: PathBuf,
}

/// The largest JSON document berth reads from a caller (config.json, `exec --process`,
/// `update -r`): 10 MiB, far above what any engine writes.
pub const MAX_JSON_BYTES: u64 = 10 << 20;
/// The most `mounts[]` entries a config may list (the kernel's default `fs.mount-max` is
/// 100,000 for the whole namespace).
pub const MAX_MOUNTS: usize = 10_000;

/// Read a JSON document the caller gave, refusing one over [`MAX_JSON_BYTES`].
pub fn read_json_file(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut text = Vec::new();
    f.take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    if text.len() as u64 > MAX_JSON_BYTES {
        bail!(
            "{} is larger than {} MiB",
            path.display(),
            MAX_JSON_BYTES >> 20
        );
    }
    Ok(text)
}

/// Load `<bundle>/config.json`, resolve the rootfs and validate the spec (`validate`). What
/// needs the mount tables or the host (`rootfs::validate`, AppArmor) create checks next.
pub fn load_bundle(bundle: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(bundle)
        .with_context(|| format!("bundle directory {}", bundle.display()))?;
    let path = dir.join("config.json");
    let text = read_json_file(&path)?;
    let spec = parse_config(&text).with_context(|| format!("parsing {}", path.display()))?;
    let root = spec
        .root()
        .as_ref()
        .context("config.json: root: missing (root.path names the rootfs)")?;
    let rootfs = dir.join(root.path());
    let rootfs = std::fs::canonicalize(&rootfs)
        .with_context(|| format!("root.path: rootfs {}", rootfs.display()))?;
    if !rootfs.is_dir() {
        bail!("root.path: {} is not a directory", rootfs.display());
    }
    validate::validate(&spec).context("config.json")?;
    Ok(Bundle { dir, spec, rootfs })
}

/// Parse config.json bytes: lenient pre-pass, then typed parse with JSON-path errors.
pub fn parse_config(text: &[u8]) -> Result<Spec> {
    let mut raw: Value = serde_json::from_slice(text).context("invalid JSON")?;
    lenient_prepass(&mut raw)?;
    let spec: Spec = from_value_with_path(&raw)?;
    if let Ok(typed) = serde_json::to_value(&spec) {
        for path in unknown_fields(&raw, &typed) {
            tracing::warn!("config.json: ignoring unknown field {path}");
        }
    }
    Ok(spec)
}

/// JSON paths present (and not null) in `raw` but absent after a typed round trip: the
/// fields berth does not know. runc ignores them silently; we say so.
fn unknown_fields(raw: &Value, typed: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_unknown(raw, typed, &mut Vec::new(), &mut out);
    out
}

/// One step of a JSON path, borrowed from the document: a path string is only made for
/// what is reported (the walk visits every node of every config).
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn walk_unknown<'a>(raw: &'a Value, typed: &Value, at: &mut Vec<Seg<'a>>, out: &mut Vec<String>) {
    match (raw, typed) {
        (Value::Object(r), Value::Object(t)) => {
            for (k, v) in r.iter().filter(|(_, v)| !v.is_null()) {
                at.push(Seg::Key(k));
                match t.get(k) {
                    Some(tv) => walk_unknown(v, tv, at, out),
                    None => out.push(path_string(at)),
                }
                at.pop();
            }
        }
        (Value::Array(r), Value::Array(t)) => {
            for (i, (a, b)) in r.iter().zip(t).enumerate() {
                at.push(Seg::Index(i));
                walk_unknown(a, b, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn path_string(at: &[Seg]) -> String {
    let mut s = String::new();
    for seg in at {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => {
                use std::fmt::Write as _;
                let _ = write!(s, "[{i}]");
            }
        }
    }
    s
}

/// Deserialize with errors that name the JSON path of the bad value. It borrows the
/// document: the caller may still need it, and a clone of a whole config is not free.
pub fn from_value_with_path<T: serde::de::DeserializeOwned>(raw: &Value) -> Result<T> {
    serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        anyhow::anyhow!("{}: {}", path, e.into_inner())
    })
}

/// Drop what runc tolerates with a warning, so the typed parser does not reject it.
fn lenient_prepass(raw: &mut Value) -> Result<()> {
    if !raw.is_object() {
        bail!("the top level must be a JSON object");
    }
    if let Some(p) = raw.get_mut("process") {
        drop_unknown_caps(p);
        sched_flag_names(p);
    }
    Ok(())
}

/// Parse a process JSON (`exec --process`), with the same leniency as config.json.
pub fn parse_process(text: &[u8]) -> Result<oci_spec::runtime::Process> {
    let mut raw: Value = serde_json::from_slice(text).context("invalid JSON")?;
    if !raw.is_object() {
        bail!("the top level must be a JSON object");
    }
    drop_unknown_caps(&mut raw);
    sched_flag_names(&mut raw);
    from_value_with_path(&raw)
}

/// oci-spec 0.10 spells two of the runtime-spec's `process.scheduler.flags` its own way
/// (`SCHED_RESET_ON_FORK`, `SCHED_FLAG_D_L_OVERRUN`); the spec's names are mapped to them.
fn sched_flag_names(process: &mut Value) {
    let Some(flags) = process
        .pointer_mut("/scheduler/flags")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for f in flags.iter_mut() {
        let renamed = match f.as_str() {
            Some("SCHED_FLAG_RESET_ON_FORK") => "SCHED_RESET_ON_FORK",
            Some("SCHED_FLAG_DL_OVERRUN") => "SCHED_FLAG_D_L_OVERRUN",
            _ => continue,
        };
        *f = Value::from(renamed);
    }
}

/// Unknown capability names are dropped with one warning, in runc's words and form (the
/// names sorted, once each, in Go's `[A B]` list form).
fn drop_unknown_caps(process: &mut Value) {
    let Some(caps) = process
        .get_mut("capabilities")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let mut unknown = std::collections::BTreeSet::new();
    for list in caps.values_mut() {
        let Some(list) = list.as_array_mut() else {
            continue;
        };
        list.retain(|c| {
            let known = Capability::deserialize(c).is_ok();
            if !known {
                unknown.insert(c.as_str().map_or_else(|| c.to_string(), str::to_string));
            }
            known
        });
    }
    if !unknown.is_empty() {
        let names: Vec<String> = unknown.into_iter().collect();
        tracing::warn!(
            "ignoring unknown or unavailable capabilities: [{}]",
            names.join(" ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_capability_is_dropped() {
        let cfg = br#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},
            "capabilities":{"bounding":["CAP_KILL","CAP_NOPE"]}}}"#;
        let spec = parse_config(cfg).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
    }

    #[test]
    fn type_error_names_json_path() {
        let cfg = br#"{"ociVersion":"1.0.2","linux":{"resources":{"memory":{"limit":"x"}}}}"#;
        let err = format!("{:#}", parse_config(cfg).unwrap_err());
        assert!(err.contains("linux.resources.memory.limit"), "{err}");
    }

    #[test]
    fn unknown_fields_are_found() {
        let cfg = br#"{"ociVersion":"1.0.2","bogus":1,"process":{"cwd":"/","user":{"uid":0,"gid":0},"nope":true},
            "linux":{"namespaces":[{"type":"pid","extra":1}]}}"#;
        let mut raw: Value = serde_json::from_slice(cfg).unwrap();
        lenient_prepass(&mut raw).unwrap();
        let spec: Spec = from_value_with_path(&raw).unwrap();
        let typed = serde_json::to_value(&spec).unwrap();
        let mut got = unknown_fields(&raw, &typed);
        got.sort();
        assert_eq!(got, ["bogus", "linux.namespaces[0].extra", "process.nope"]);
    }

    #[test]
    fn engine_configs_have_no_unknown_fields() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/engine-configs");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".config.json") {
                continue;
            }
            let mut raw: Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
            lenient_prepass(&mut raw).unwrap();
            let spec: Spec = from_value_with_path(&raw).unwrap();
            let typed = serde_json::to_value(&spec).unwrap();
            assert_eq!(unknown_fields(&raw, &typed), Vec::<String>::new(), "{name}");
        }
    }

    #[test]
    fn invalid_json_is_reported() {
        let err = format!("{:#}", parse_config(b"{nope").unwrap_err());
        assert!(err.contains("invalid JSON"), "{err}");
    }
}
