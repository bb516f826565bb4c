// Records the git commit for `berth --version` (go-runc reads the `commit:` line), and links
// the berth binary static and not position-independent, its hot functions first.
fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BERTH_COMMIT={commit}");
    // Rebuild when HEAD moves: HEAD itself, and the branch file it points at.
    println!("cargo:rerun-if-changed=.git/HEAD");
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(r) = head.strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=.git/{}", r.trim());
        }
    }
    link_args();
}

/// The binary's link (not the tests', not the dependencies': they keep the flags of
/// .cargo/config.toml, so no dependency is rebuilt for this):
/// - `-static -no-pie` after rustc's `-static-pie` (with .cargo/config.toml's crt-static): a
///   static executable at a fixed address. The code stays position-independent (the linker
///   turns its GOT loads into direct addresses).
///   A static PIE relocates itself at every start: 12,710 relocations, a sixth of
///   `berth --version`'s instructions, and the 240 KB of .data.rel.ro they write become
///   private dirty pages of every process (README, Benchmarks: memory).
/// - link/hot.order (written by bench/order.sh): the functions the lifecycle commands run go
///   first in .text, so a command maps a few hundred KB of code, not most of its 4 MB.
///   Names the build does not have are skipped without a warning (the file lists the release
///   build's, and a debug build has other functions).
fn link_args() {
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux")
        || !features.split(',').any(|f| f == "crt-static")
    {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-static");
    println!("cargo:rustc-link-arg-bins=-no-pie");
    let order =
        std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("link/hot.order");
    println!("cargo:rerun-if-changed={}", order.display());
    if order.exists() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
