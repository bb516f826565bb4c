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
///   first, so a command maps a few hundred KB of code, not most of its 4 MB of text.
///   Most of its Rust names have their hashes (which change with any dependency, feature or
///   toolchain) replaced by `*`, so they are section patterns for a linker script: every
///   function is in a section `.text.<mangled name>`, and the script puts those first, in
///   an output section `.text.hot` before `.text` (bench/order.sh says which names stay
///   exact). The other names (glibc's) have no hash and go to `--symbol-ordering-file`,
///   which puts them first in `.text`, right after.
///   Names the build does not have are skipped without a warning (a debug build has other
///   functions); `bash bench/order.sh --check` counts how many a binary has.
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
    let Ok(text) = std::fs::read_to_string(&order) else {
        return;
    };
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let (script, symbols) = (out.join("hot.ld"), out.join("hot.symbols"));
    let (ld, syms) = hot_layout(&text);
    std::fs::write(&script, ld).expect("writing hot.ld");
    std::fs::write(&symbols, syms).expect("writing hot.symbols");
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        symbols.display()
    );
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}

/// link/hot.order's lines as a linker script (the Rust ones, exact mangled names or patterns
/// with `*` for their hashes, as section names in the file's order: a section goes where the
/// first line that matches it says; with INSERT the linker keeps its default layout for
/// everything else) and a symbol ordering file (the others, glibc's).
fn hot_layout(order: &str) -> (String, String) {
    let mut ld = String::from("SECTIONS\n{\n  .text.hot : {\n");
    let mut syms = String::new();
    for name in order.lines().map(str::trim) {
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        if name.starts_with("_ZN") || name.starts_with("_R") {
            // LLVM puts a function it deems cold (`#[cold]`: RawVec's growth, Once::call) in
            // .text.unlikely.<name>.
            ld += &format!("    *(.text.{name} .text.unlikely.{name})\n");
        } else {
            syms += name;
            syms.push('\n');
        }
    }
    ld += "  }\n}\nINSERT BEFORE .text;\n";
    (ld, syms)
}
