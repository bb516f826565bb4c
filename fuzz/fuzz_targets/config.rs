//! config.json loading and validation: any bytes give a spec or an error, never a panic;
//! a spec that validates also yields a namespace plan and a compiled seccomp program.
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
});
