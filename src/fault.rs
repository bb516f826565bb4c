//! Fault injection for `integration/faults.rs`: with `BERTH_FAULT=POINT` in its
//! environment, a build with debug assertions (the dev profile the tests run) dies at that
//! point. `create:*` points are in `berth create`, which SIGKILLs itself there; `init:*`
//! points are in the container init, which exits at once with status 137 and no word to
//! the parent (a namespace's pid 1 cannot SIGKILL itself: the kernel ignores it).
//!
//! Release builds have no such code: `point` is an empty inline function there, and the
//! environment is never read.

/// Die here if `BERTH_FAULT` names this point (debug builds only).
#[cfg(debug_assertions)]
pub fn point(name: &str) {
    static WANTED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if WANTED
        .get_or_init(|| std::env::var("BERTH_FAULT").ok())
        .as_deref()
        != Some(name)
    {
        return;
    }
    if name.starts_with("init:") {
        crate::sys::process::exit_now(137);
    }
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    std::process::abort();
}

/// Release builds: nothing.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn point(_name: &str) {}
