//! config.json loading and validation: any bytes give a spec or an error, never a panic;
//! a spec that validates also yields a namespace plan and a compiled seccomp program; where
//! the exact parse takes a document, the lenient parse gives the same spec.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = berth::spec::parse_config(data) {
        if berth::spec::validate::validate(&spec).is_ok() {
            let _ = berth::process::namespaces::Plan::from_spec(&spec);
            if let Some(sc) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
                let _ = berth::security::seccomp::compile(sc);
            }
        }
    }
    let _ = berth::spec::parse_process(data);
    if let (Some(exact), lenient) = berth::spec::both_ways(data) {
        assert_eq!(
            Some(&exact),
            lenient.as_ref().ok(),
            "the two parses disagree"
        );
    }
});
