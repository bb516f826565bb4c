//! Loading `config.json`: a lenient pre-pass over the raw JSON (as runc: unknown capability
//! names are warnings, unknown fields are ignored), then typed parsing with oci-spec where a
//! type error names the JSON path, then validation (`validate`) before any side effect.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Capability, Spec};
use serde::Deserialize;
use serde_json::Value;

pub mod attrs;
pub mod lenient;
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
    let text = crate::sys::fdio::read_file(path, MAX_JSON_BYTES)
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

/// Parse config.json bytes: lenient pre-pass, then typed parse with JSON-path errors and
/// Go's key matching (`lenient`), then what runc makes of a few values (`normalize`).
pub fn parse_config(text: &[u8]) -> Result<Spec> {
    let mut spec = match exact(text) {
        Some(spec) => spec,
        None => leniently(text)?,
    };
    normalize(&mut spec);
    Ok(spec)
}

/// config.json the lenient way: the pre-pass over the raw JSON, then the typed parse.
fn leniently(text: &[u8]) -> Result<Spec> {
    let mut raw: Value = serde_json::from_slice(text).context("invalid JSON")?;
    lenient_prepass(&mut raw)?;
    from_value_with_path("config.json", &raw)
}

/// For the fuzzer (fuzz/fuzz_targets/config.rs), which checks that where the exact parse
/// takes a document, the lenient one gives the same spec: both results.
#[doc(hidden)]
pub fn both_ways(text: &[u8]) -> (Option<Spec>, Result<Spec>) {
    (exact(text), leniently(text))
}

/// The common case, parsed straight into the types without a `serde_json::Value` in
/// between (60% of the parse): a JSON object in which every key names its field exactly
/// (`serde_ignored` reports any other) and which the typed parse accepts as it is. What
/// the lenient way would change fails here instead: a missing or null `user` or `cwd` (both
/// required), an unknown capability or scheduler flag name (not in oci-spec's enums), a
/// null for a field that is not optional, the same field twice. None then: the caller
/// takes the lenient way, which also gives the errors. Where this succeeds, the lenient
/// way gives the same value (`exact_and_lenient_parses_agree`).
fn exact<T: serde::de::DeserializeOwned>(text: &[u8]) -> Option<T> {
    let first = text
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        return None;
    }
    let mut de = serde_json::Deserializer::from_slice(text);
    let mut all_known = true;
    let t = serde_ignored::deserialize(&mut de, |_| all_known = false).ok()?;
    de.end().ok()?;
    all_known.then_some(t)
}

/// Deserialize with errors that name the JSON path of the bad value, matching keys as runc's
/// Go decoder does. A key that names no field is ignored, as runc ignores it; it is logged at
/// debug level only (tools read a warning on stderr as a failure).
pub fn from_value_with_path<T: serde::de::DeserializeOwned>(what: &str, raw: &Value) -> Result<T> {
    let (t, unknown) = lenient::from_value(raw)?;
    for path in unknown {
        tracing::debug!("{what}: ignoring unknown field {path}");
    }
    Ok(t)
}

/// What runc makes of values the spec leaves open:
/// - an empty namespace `path` is no path (a new namespace);
/// - a relative `maskedPaths` or `readonlyPaths` entry is taken from the container's root,
///   as runc applies them after pivot_root with "/" as the working directory.
fn normalize(spec: &mut Spec) {
    let Some(linux) = spec.linux_mut().as_mut() else {
        return;
    };
    if let Some(namespaces) = linux.namespaces_mut().as_mut() {
        for ns in namespaces.iter_mut() {
            if ns.path().as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                ns.set_path(None);
            }
        }
    }
    let from_root = |paths: &mut Option<Vec<String>>| {
        for p in paths.iter_mut().flatten() {
            if !p.starts_with('/') {
                *p = format!("/{p}");
            }
        }
    };
    from_root(linux.masked_paths_mut());
    from_root(linux.readonly_paths_mut());
}

/// Drop what runc tolerates with a warning, so the typed parser does not reject it.
fn lenient_prepass(raw: &mut Value) -> Result<()> {
    if !raw.is_object() {
        bail!("the top level must be a JSON object");
    }
    if let Some(p) = lenient::member_mut(raw, "process").filter(|p| p.is_object()) {
        process_prepass(p);
    }
    Ok(())
}

/// The process object (config.json's or `exec --process`'s), before typed parsing.
fn process_prepass(p: &mut Value) {
    go_zero_values(p);
    drop_unknown_caps(p);
    sched_flag_names(p);
}

/// Go decodes a missing `user` as uid 0, gid 0 and a missing `cwd` as ""; oci-spec needs
/// both. They are given those values, so a process without a user runs as root, as under
/// runc, and a missing cwd gets runc's error (`validate_process`).
fn go_zero_values(p: &mut Value) {
    for (field, zero) in [("user", serde_json::json!({})), ("cwd", Value::from(""))] {
        if lenient::member_mut(p, field).is_none_or(|v| v.is_null()) {
            if let Some(obj) = p.as_object_mut() {
                obj.insert(field.to_string(), zero);
            }
        }
    }
}

/// Parse a process JSON (`exec --process`), with the same leniency as config.json.
pub fn parse_process(text: &[u8]) -> Result<oci_spec::runtime::Process> {
    match exact(text) {
        Some(p) => Ok(p),
        None => process_leniently(text),
    }
}

/// process.json the lenient way, as [`leniently`] for config.json.
fn process_leniently(text: &[u8]) -> Result<oci_spec::runtime::Process> {
    let mut raw: Value = serde_json::from_slice(text).context("invalid JSON")?;
    if !raw.is_object() {
        bail!("the top level must be a JSON object");
    }
    process_prepass(&mut raw);
    from_value_with_path("process", &raw)
}

/// oci-spec 0.10 spells two of the runtime-spec's `process.scheduler.flags` its own way
/// (`SCHED_RESET_ON_FORK`, `SCHED_FLAG_D_L_OVERRUN`); the spec's names are mapped to them.
fn sched_flag_names(process: &mut Value) {
    let Some(flags) = lenient::member_mut(process, "scheduler")
        .and_then(|s| lenient::member_mut(s, "flags"))
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
    let Some(caps) = lenient::member_mut(process, "capabilities").and_then(Value::as_object_mut)
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

    /// Unknown capabilities are dropped, also under a key spelled in another case.
    #[test]
    fn unknown_capability_is_dropped() {
        let plain = r#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},
            "capabilities":{"bounding":["CAP_KILL","CAP_NOPE"]}}}"#;
        let cased = plain
            .replace("\"process\"", "\"PROCESS\"")
            .replace("capabilities", "Capabilities");
        for cfg in [plain.to_string(), cased] {
            let spec = parse_config(cfg.as_bytes()).unwrap();
            let p = spec.process().as_ref().unwrap();
            let bounding = p.capabilities().as_ref().unwrap().bounding().as_ref();
            assert_eq!(bounding.unwrap().len(), 1, "{cfg}");
        }
    }

    #[test]
    fn type_error_names_json_path() {
        let cfg = br#"{"ociVersion":"1.0.2","linux":{"resources":{"memory":{"limit":"x"}}}}"#;
        let err = format!("{:#}", parse_config(cfg).unwrap_err());
        assert!(err.contains("linux.resources.memory.limit"), "{err}");
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
            let (_, unknown): (Spec, _) = lenient::from_value(&raw).unwrap();
            assert_eq!(unknown, Vec::<String>::new(), "{name}");
        }
    }

    #[test]
    fn empty_namespace_paths_and_relative_masks_as_runc() {
        let cfg = br#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid","path":""}],
            "maskedPaths":["proc/kcore","/proc/keys"],"readonlyPaths":["proc/sys"]}}"#;
        let spec = parse_config(cfg).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(linux.namespaces().as_ref().unwrap()[0].path(), &None);
        assert_eq!(
            linux.masked_paths().as_ref().unwrap(),
            &["/proc/kcore", "/proc/keys"]
        );
        assert_eq!(linux.readonly_paths().as_ref().unwrap(), &["/proc/sys"]);
    }

    /// Every config the exact parse accepts, the lenient one reads the same; what it does
    /// not accept goes the lenient way.
    #[test]
    fn exact_and_lenient_parses_agree() {
        let lenient = |text: &[u8]| -> Spec { leniently(text).unwrap() };
        let mut configs: Vec<Vec<u8>> = [(false, 0, 0, false), (true, 1000, 1000, true)]
            .iter()
            .map(|&(rootless, uid, gid, v2)| {
                let spec = template::default_spec_json(rootless, uid, gid, v2);
                serde_json::to_vec(&spec).unwrap()
            })
            .collect();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/engine-configs");
        let mut processes = 0;
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let text = std::fs::read(e.path()).unwrap();
            if name.ends_with(".config.json") {
                configs.push(text);
            } else if name.ends_with(".process.json") {
                let fast: oci_spec::runtime::Process =
                    exact(&text).expect("an engine's process.json parses the exact way");
                assert_eq!(fast, process_leniently(&text).unwrap(), "{name}");
                processes += 1;
            }
        }
        assert!(processes > 0, "no engine process.json files");
        assert!(configs.len() > 1, "no engine configs in {}", dir.display());
        for text in &configs {
            let fast: Spec = exact(text).expect("an engine's config parses the exact way");
            assert_eq!(fast, lenient(text));
        }
        let base = r#""ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0}"#;
        for (doc, why) in [
            (
                format!(r#"{{{base}}},"Linux":{{}}}}"#),
                "a key in another case",
            ),
            (
                format!(r#"{{{base}}},"unknown":1}}"#),
                "a key that names no field",
            ),
            (format!(r#"{{{base},"cwd":"/"}}}}"#), "a field twice"),
            (format!(r#"{{{base},"user":null}}}}"#), "a null user"),
            (
                format!(r#"{{{base},"capabilities":{{"bounding":["CAP_NOPE"]}}}}}}"#),
                "an unknown capability",
            ),
            (
                r#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0}}}"#.into(),
                "no cwd",
            ),
            (format!(r#"[{{{base}}}}}]"#), "not an object"),
        ] {
            assert!(exact::<Spec>(doc.as_bytes()).is_none(), "{why}: {doc}");
            assert!(
                parse_config(doc.as_bytes()).is_ok() || why == "not an object",
                "{why}"
            );
        }
    }

    #[test]
    fn invalid_json_is_reported() {
        let err = format!("{:#}", parse_config(b"{nope").unwrap_err());
        assert!(err.contains("invalid JSON"), "{err}");
    }
}
