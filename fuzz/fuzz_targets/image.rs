//! The image index / manifest / config parsers. The input is split at NUL bytes into
//! index.json, a manifest and a config; `@M` and `@C` in the text are replaced by the
//! digests of the manifest and config blobs, so the fuzzer reaches past the digest checks.
//! The same input is also read as a docker-archive manifest.json.
#![no_main]
use std::sync::atomic::{AtomicU64, Ordering};

use berth::image::source::{resolve, Platform, Reference};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

static N: AtomicU64 = AtomicU64::new(0);

fn sha(b: &[u8]) -> String {
    let d = Sha256::digest(b);
    format!("sha256:{}", d.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

fn blob(dir: &std::path::Path, data: &[u8]) -> String {
    let d = sha(data);
    std::fs::write(dir.join("blobs/sha256").join(&d[7..]), data).unwrap();
    d
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let (index, manifest, config) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let dir = std::env::temp_dir().join(format!(
        "harden-fuzz-image-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let c = blob(&dir, config);
    let manifest = String::from_utf8_lossy(manifest).replace("@C", &c);
    let m = blob(&dir, manifest.as_bytes());
    let index = String::from_utf8_lossy(index).replace("@M", &m).replace("@C", &c);
    std::fs::write(dir.join("index.json"), &index).unwrap();
    let host = Platform::host();
    for r in [Reference::None, Reference::Tag("latest".into())] {
        let _ = resolve(&dir, &r, &host, false);
        let _ = resolve(&dir, &r, &host, true);
    }
    // The same text as a docker-archive.
    std::fs::remove_file(dir.join("index.json")).unwrap();
    std::fs::write(dir.join("manifest.json"), &index).unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
    let _ = resolve(&dir, &Reference::None, &host, false);
    std::fs::remove_dir_all(&dir).unwrap();
});
