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
