//! `berth spec` output validates against the runtime-spec JSON schema (issue 7 item 22). The
//! schema ships as test data (integration/testdata/runtime-spec-schema) and Python's
//! jsonschema checks it, as the runtime-spec's own `validate` tool would.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/testdata/runtime-spec-schema")
}

/// Violations the schema finds in `config` (empty when valid).
fn violations(config: &Path) -> String {
    let out = Command::new("python3")
        .arg(schema_dir().join("validate.py"))
        .arg(config)
        .output()
        .expect("python3 with jsonschema is needed: apt-get install -y python3-jsonschema");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    match out.status.code() {
        Some(0) => String::new(),
        Some(1) => text,
        _ => panic!(
            "the validator failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[test]
fn spec_output_validates_against_the_runtime_spec_schema() {
    for args in [&[][..], &["--rootless"][..]] {
        let d = spec_dir(args);
        let v = violations(&d.path().join("config.json"));
        assert!(v.is_empty(), "berth spec {args:?}:\n{v}");
    }
}

/// The check has teeth: a config that breaks the schema is reported with its path.
#[test]
fn the_schema_check_catches_a_bad_config() {
    let d = spec_dir(&[]);
    let p = d.path().join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    v["process"]["rlimits"][0]["type"] = serde_json::json!("nofile");
    v["linux"]["namespaces"][0]["type"] = serde_json::json!("pids");
    v["process"].as_object_mut().unwrap().remove("cwd");
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    let found = violations(&p);
    for want in [
        ".process: 'cwd' is a required property",
        ".process.rlimits[0].type",
        ".linux.namespaces[0]",
    ] {
        assert!(found.contains(want), "{want} in:\n{found}");
    }
}
