//! The binary itself: the default build (`.cargo/config.toml`) is static, so berth starts
//! without the dynamic loader and runs on a host whatever its shared libraries.

use std::process::Command;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

#[test]
fn berth_needs_no_shared_library() {
    let out = Command::new("ldd")
        .arg(BERTH)
        .output()
        .expect("ldd is needed (libc-bin)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // glibc's ldd: "statically linked" for a static PIE, "not a dynamic executable" otherwise;
    // a dynamic binary lists its libraries as "name => path".
    assert!(
        text.contains("statically linked") || text.contains("not a dynamic executable"),
        "ldd {BERTH}: {text}"
    );
    assert!(!text.contains("=>"), "ldd {BERTH}: {text}");
}

/// build.rs links berth at a fixed address (`-no-pie`): a static PIE relocates itself at every
/// start (12,700 relocations here, a sixth of `berth --version`'s instructions, and 240 KB of
/// pages written). The ELF type says which: ET_EXEC (2) here, ET_DYN (3) for a PIE.
#[test]
fn berth_is_linked_at_a_fixed_address() {
    use std::io::Read;
    let mut head = [0u8; 18];
    std::fs::File::open(BERTH)
        .and_then(|mut f| f.read_exact(&mut head))
        .expect("reading the berth binary's ELF header");
    let e_type = u16::from_le_bytes([head[16], head[17]]);
    assert_eq!(e_type, 2, "{BERTH}: ELF type {e_type}, not ET_EXEC");
}
