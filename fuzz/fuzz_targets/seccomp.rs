//! The seccomp compiler: a profile that compiles gives a program the kernel would load, and
//! for every syscall the profile names (and the edges) the interpreter's answer is the
//! decision table's.
#![no_main]
use berth::security::seccomp::{compile, interp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = serde_json::from_slice::<oci_spec::runtime::LinuxSeccomp>(data) else {
        return;
    };
    let Ok(p) = compile(&s) else { return };
    let table = interp::Decisions::new(&s).expect("the profile compiled");
    let argsets: [[u64; 6]; 4] = [[0; 6], [u64::MAX; 6], [1, 2, 3, 4, 5, 6], [0x1_0000_0008; 6]];
    for (arch, nr) in interp::interesting_numbers(&s) {
        for args in argsets {
            let got = interp::run(&p, arch, nr, args)
                .unwrap_or_else(|e| panic!("arch {arch:#x} nr {nr:#x}: {e}"));
            let want = table.decide(arch, nr, args);
            assert_eq!(got, want, "arch {arch:#x} nr {nr:#x} args {args:x?}");
        }
    }
});
