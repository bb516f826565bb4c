//! Content digests: parsing `sha256:HEX`, and a reader that hashes and bounds what it streams
//! so a blob that is truncated, too long or altered fails with an error naming the blob.
use std::fmt;
use std::io::{self, Read};

use anyhow::{bail, Result};
use sha2::{Digest as _, Sha256};

/// A validated `sha256:<64 lower-case hex>` digest (the only algorithm images use in practice).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Digest(String);

impl Digest {
    /// Parse and validate; anything else (another algorithm, a path, upper case) is refused, so a
    /// digest can be used as a file name safely.
    pub fn parse(s: &str) -> Result<Digest> {
        let Some(hex) = s.strip_prefix("sha256:") else {
            bail!("digest {s:?}: only sha256 digests are supported");
        };
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            bail!("digest {s:?}: not 64 lower-case hex characters");
        }
        Ok(Digest(s.to_string()))
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn from_hasher(h: Sha256) -> Digest {
        let bytes = h.finalize();
        let mut s = String::with_capacity(71);
        s.push_str("sha256:");
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        Digest(s)
    }

    /// Digest of an in-memory byte string.
    pub fn of(data: &[u8]) -> Digest {
        let mut h = Sha256::new();
        h.update(data);
        Digest::from_hasher(h)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Check a whole in-memory blob against its descriptor.
pub fn verify_bytes(what: &str, data: &[u8], want: &Digest, size: Option<u64>) -> Result<()> {
    if let Some(size) = size {
        if data.len() as u64 != size {
            bail!(
                "{what} {want}: size is {} bytes, descriptor says {size}",
                data.len()
            );
        }
    }
    let got = Digest::of(data);
    if &got != want {
        bail!("{what}: digest mismatch: expected {want}, got {got}");
    }
    Ok(())
}

/// Wraps a reader: hashes every byte, refuses to read past `limit`, and on EOF checks the
/// expected size and digest. Errors surface as `io::Error`s carrying a clear message; EOF is
/// only reported once the content was verified.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    limit: u64,
    exact_size: Option<u64>,
    want: Option<Digest>,
    what: String,
    done: bool,
    progress: Option<indicatif::ProgressBar>,
}

impl<R: Read> VerifyingReader<R> {
    /// `what` names the blob in errors; `exact_size`, when known, must match; `limit` bounds the
    /// stream (a decompression bomb or endless blob fails at the bound).
    pub fn new(
        inner: R,
        what: String,
        want: Option<Digest>,
        exact_size: Option<u64>,
        limit: u64,
    ) -> Self {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
            read: 0,
            limit: exact_size.map_or(limit, |s| s.min(limit)),
            exact_size,
            want,
            what,
            done: false,
            progress: None,
        }
    }

    /// Advance `bar` by the bytes read.
    pub fn with_progress(mut self, bar: indicatif::ProgressBar) -> Self {
        self.progress = Some(bar);
        self
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.read
    }

    /// The digest of everything read (call after EOF).
    pub fn digest(&self) -> Digest {
        Digest::from_hasher(self.hasher.clone())
    }

    fn finish(&mut self) -> io::Result<()> {
        if let Some(size) = self.exact_size {
            if self.read != size {
                return Err(invalid(format!(
                    "{} is truncated: {} bytes of {size} expected",
                    self.what, self.read
                )));
            }
        }
        if let Some(want) = &self.want {
            let got = self.digest();
            if &got != want {
                return Err(invalid(format!(
                    "{}: digest mismatch: expected {want}, got {got}",
                    self.what
                )));
            }
        }
        self.done = true;
        Ok(())
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        // Ask for one byte past the bound so an over-long stream is noticed.
        let room = (self.limit - self.read).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.finish()?;
            return Ok(0);
        }
        self.read += n as u64;
        if self.read > self.limit {
            return Err(invalid(match self.exact_size {
                Some(s) if s <= self.limit => {
                    format!("{} is longer than its descriptor's {s} bytes", self.what)
                }
                _ => format!(
                    "{} exceeds the size bound of {} bytes",
                    self.what, self.limit
                ),
            }));
        }
        self.hasher.update(&buf[..n]);
        if let Some(p) = &self.progress {
            p.inc(n as u64);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain<R: Read>(mut r: R) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        r.read_to_end(&mut v)?;
        Ok(v)
    }

    #[test]
    fn parse_rejects_bad_digests() {
        assert!(Digest::parse("sha256:../../etc/passwd").is_err());
        assert!(Digest::parse("sha512:00").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        let d = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        assert_eq!(d.hex(), "a".repeat(64));
    }

    #[test]
    fn verifying_reader_checks_size_and_digest() {
        let data = b"hello world".to_vec();
        let d = Digest::of(&data);
        let ok = VerifyingReader::new(
            &data[..],
            "blob".into(),
            Some(d.clone()),
            Some(11),
            u64::MAX,
        );
        assert_eq!(drain(ok).unwrap(), data);
        let short = VerifyingReader::new(
            &data[..5],
            "blob".into(),
            Some(d.clone()),
            Some(11),
            u64::MAX,
        );
        assert!(drain(short).unwrap_err().to_string().contains("truncated"));
        let long =
            VerifyingReader::new(&data[..], "blob".into(), Some(d.clone()), Some(5), u64::MAX);
        assert!(drain(long).unwrap_err().to_string().contains("longer"));
        let wrong = VerifyingReader::new(
            &b"hello worlD"[..],
            "blob".into(),
            Some(d),
            Some(11),
            u64::MAX,
        );
        assert!(drain(wrong).unwrap_err().to_string().contains("mismatch"));
        let bomb = VerifyingReader::new(&[0u8; 100][..], "layer".into(), None, None, 10);
        assert!(drain(bomb).unwrap_err().to_string().contains("bound"));
    }
}
