//! The tar and whiteout applier: any layer applies or fails, never panics, and nothing is
//! ever written outside the rootfs (the sandbox directory holds only `rootfs` afterwards).
#![no_main]
use std::sync::atomic::{AtomicU64, Ordering};

use berth::image::apply::{Applier, ApplyOptions};
use libfuzzer_sys::fuzz_target;

static N: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let sandbox = std::env::temp_dir().join(format!(
        "harden-fuzz-tar-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let rootfs = sandbox.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let root: std::os::fd::OwnedFd = std::fs::File::open(&rootfs).unwrap().into();
    // Two layers: the input, then the input again (whiteouts and replacements over it).
    let mut a = Applier::new(root, ApplyOptions::default());
    if a.apply_layer(data).is_ok() {
        let _ = a.apply_layer(data);
    }
    let _ = a.finish();
    drop(a);
    let names: Vec<_> = std::fs::read_dir(&sandbox)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["rootfs"], "written outside the rootfs");
    let _ = std::process::Command::new("chmod")
        .args(["-R", "u+rwx"])
        .arg(&sandbox)
        .status();
    std::fs::remove_dir_all(&sandbox).unwrap();
});
