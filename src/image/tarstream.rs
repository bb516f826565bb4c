//! A streaming reader for layer tarballs, as Go's `archive/tar` reads them.
//!
//! Layers are written by many tools (GNU tar, bsdtar, Python's tarfile, Go's archive/tar in
//! docker, containerd, buildah and umoci), and containerd and podman unpack them with Go's
//! reader. This reader accepts what that one accepts and gives each entry in full:
//! - the V7, ustar, GNU and PAX header formats, with octal or base-256 numbers, the ustar name
//!   prefix, GNU long names and link names (`L`, `K`) and PAX records (`path`, `linkpath`,
//!   `size`, `uid`, `gid`, `mtime`, `atime`, with fractional seconds);
//! - xattrs from `SCHILY.xattr.NAME` (raw) and `LIBARCHIVE.xattr.NAME` (URL-encoded name,
//!   base64 value);
//! - sparse files in every format: old GNU (`S` with extension blocks), PAX 0.0 (repeated
//!   `GNU.sparse.offset`/`numbytes`), 0.1 (`GNU.sparse.map`) and 1.0 (the map at the start of
//!   the data). The entry gives the data segments so the caller writes holes, not zeros;
//! - the end of the archive as Go finds it: two zero blocks, one zero block, or the end of the
//!   stream right after an entry's data, with or without its padding. A stream that ends inside
//!   a header or inside an entry's data is an error naming the entry.
//!
//! PAX global headers (`g`) are read and ignored, as containerd ignores them.
use std::io::{self, Read};

use anyhow::{bail, ensure, Context, Result};

const BLOCK: usize = 512;
/// Special entries (PAX records, long names, sparse maps) are held in memory: bound them as Go
/// does (1 MiB).
const MAX_SPECIAL: u64 = 1 << 20;
/// Go refuses sparse maps with more entries than fit a reasonable header.
const MAX_SPARSE: usize = 1 << 20;

/// A point in time, seconds and nanoseconds since the epoch (`nsec` in 0..1e9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Time {
    pub sec: i64,
    pub nsec: u32,
}

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
}

/// One entry, with every extension applied.
#[derive(Debug)]
pub struct Entry {
    pub path: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: Time,
    /// From PAX `atime` or the GNU header; the caller uses mtime when absent.
    pub atime: Option<Time>,
    pub link: Vec<u8>,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// Name and value, in archive order, one per name (the last record wins).
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// The file's length (for a sparse file, its real length, holes included).
    pub size: u64,
    /// For sparse files: the data segments `(offset, length)`, in order; their bytes follow
    /// one another in the entry's data.
    pub sparse: Option<Vec<(u64, u64)>>,
}

/// PAX records that apply to the next entry.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<Time>,
    atime: Option<Time>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    sparse: SparsePax,
}

#[derive(Default)]
struct SparsePax {
    major: Option<u64>,
    minor: Option<u64>,
    name: Option<Vec<u8>>,
    real_size: Option<u64>,
    /// 0.0 (offset/numbytes pairs) and 0.1 (`map`) both land here.
    map: Vec<u64>,
    has_map: bool,
}

/// Reads entries one after another; the data of the current entry is read with [`Self::data`].
pub struct TarReader<R: Read> {
    r: R,
    /// Data bytes of the current entry not read yet.
    left: u64,
    /// Padding after the current entry's data.
    pad: u64,
    /// Name of the current entry, for errors.
    current: Vec<u8>,
    ended: bool,
}

fn eof_in(what: &str, name: &[u8]) -> anyhow::Error {
    anyhow::anyhow!(
        "the layer tar ends in the middle of {what} of {:?} (a truncated archive)",
        String::from_utf8_lossy(name)
    )
}

/// Fill `buf`; the number read is short only at the end of the stream.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Skip `n` bytes; the number skipped is short only at the end of the stream.
fn skip<R: Read>(r: &mut R, n: u64) -> io::Result<u64> {
    io::copy(&mut r.take(n), &mut io::sink())
}

impl<R: Read> TarReader<R> {
    pub fn new(r: R) -> Self {
        TarReader {
            r,
            left: 0,
            pad: 0,
            current: Vec::new(),
            ended: false,
        }
    }

    /// Read data of the current entry; 0 at its end. A stream that ends early is an error.
    pub fn data(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = loop {
            match self.r.read(&mut buf[..want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r.context("reading the layer tar")?,
            }
        };
        if n == 0 {
            return Err(eof_in("the data", &self.current));
        }
        self.left -= n as u64;
        Ok(n)
    }

    /// Skip what is left of the current entry. Missing padding at the very end is accepted.
    fn skip_current(&mut self) -> Result<()> {
        if self.left > 0 {
            let n = skip(&mut self.r, self.left).context("reading the layer tar")?;
            if n < self.left {
                return Err(eof_in("the data", &self.current));
            }
            self.left = 0;
        }
        if self.pad > 0 {
            let n = skip(&mut self.r, self.pad).context("reading the layer tar")?;
            if n < self.pad {
                // Go's reader takes a stream cut right after the last entry's data.
                self.ended = true;
            }
            self.pad = 0;
        }
        Ok(())
    }

    /// Read a whole special entry (PAX records, long name, sparse map) of `size` bytes.
    fn special(&mut self, size: u64, what: &str) -> Result<Vec<u8>> {
        ensure!(
            size <= MAX_SPECIAL,
            "tar {what} header of {size} bytes is larger than {MAX_SPECIAL}; refused"
        );
        let mut buf = vec![0; size as usize];
        let n = read_full(&mut self.r, &mut buf).context("reading the layer tar")?;
        if n < buf.len() {
            return Err(eof_in(what, &self.current));
        }
        self.pad = pad_of(size);
        Ok(buf)
    }

    /// Read the next header block; None at the end of the archive.
    fn block(&mut self) -> Result<Option<[u8; BLOCK]>> {
        let mut b = [0u8; BLOCK];
        let n = read_full(&mut self.r, &mut b).context("reading the layer tar")?;
        if n == 0 {
            return Ok(None);
        }
        if n < BLOCK {
            return Err(eof_in("the header following", &self.current));
        }
        Ok(Some(b))
    }

    /// The next entry, or None at the end of the archive.
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        self.skip_current()?;
        let mut pax = Pax::default();
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            if self.ended {
                return Ok(None);
            }
            let Some(b) = self.block()? else {
                return Ok(None);
            };
            if b.iter().all(|&c| c == 0) {
                // One zero block, then a second one or the end of the stream.
                return match self.block()? {
                    Some(b2) if b2.iter().any(|&c| c != 0) => {
                        bail!("a tar header follows a single zero block; the archive is corrupt")
                    }
                    _ => {
                        self.ended = true;
                        Ok(None)
                    }
                };
            }
            let h = Header(&b);
            h.check_sum()?;
            let flag = b[156];
            let stored = h.num(124, 12).context("tar header size")?;
            self.current = h.name();
            match flag {
                b'x' => {
                    let data = self.special(stored, "PAX")?;
                    parse_pax(&data, &mut pax)?;
                    self.skip_current()?;
                    continue;
                }
                b'g' => {
                    // Global records: read and ignored, as containerd does.
                    self.special(stored, "PAX global")?;
                    self.skip_current()?;
                    continue;
                }
                b'L' | b'K' => {
                    let mut data = self.special(stored, "GNU long name")?;
                    while data.last() == Some(&0) {
                        data.pop();
                    }
                    if flag == b'L' {
                        long_name = Some(data);
                    } else {
                        long_link = Some(data);
                    }
                    self.skip_current()?;
                    continue;
                }
                _ => {}
            }
            let e = self.entry(h, flag, stored, pax, long_name, long_link)?;
            return Ok(Some(e));
        }
    }

    fn entry(
        &mut self,
        h: Header,
        flag: u8,
        stored: u64,
        pax: Pax,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
    ) -> Result<Entry> {
        let gnu = h.is_gnu();
        let mut path = pax.path.or(long_name).unwrap_or_else(|| h.name());
        let link = pax
            .linkpath
            .or(long_link)
            .unwrap_or_else(|| h.field(157, 100));
        let stored = pax.size.unwrap_or(stored);
        let name_is_dir = path.last() == Some(&b'/');
        let kind = match flag {
            b'0' | 0 | b'7' | b'S' if name_is_dir && flag != b'S' => Kind::Dir,
            b'0' | 0 | b'7' | b'S' => Kind::File,
            b'1' => Kind::Hardlink,
            b'2' => Kind::Symlink,
            b'3' => Kind::Char,
            b'4' => Kind::Block,
            b'5' | b'D' => Kind::Dir,
            b'6' => Kind::Fifo,
            b'V' => {
                // A volume label names no file: skip it like a special entry.
                self.left = stored;
                self.pad = pad_of(stored);
                self.skip_current()?;
                return match self.next_entry()? {
                    Some(e) => Ok(e),
                    None => bail!("the layer tar holds only a volume label"),
                };
            }
            other => bail!(
                "tar entry {:?}: unsupported entry type {:?}",
                String::from_utf8_lossy(&path),
                other as char
            ),
        };
        let mut mtime = Time {
            sec: h.signed(136, 12).context("tar header mtime")?,
            nsec: 0,
        };
        let mut atime = None;
        if gnu {
            let a = h.signed(345, 12).context("tar header atime")?;
            if a != 0 {
                atime = Some(Time { sec: a, nsec: 0 });
            }
        }
        if let Some(t) = pax.mtime {
            mtime = t;
        }
        if pax.atime.is_some() {
            atime = pax.atime;
        }
        let mut size = if matches!(kind, Kind::File) {
            stored
        } else {
            0
        };
        self.left = stored;
        self.pad = pad_of(stored);
        let mut sparse = None;
        if flag == b'S' {
            let (map, real) = self.old_gnu_sparse(&h)?;
            sparse = Some(map);
            size = real;
        } else if pax.sparse.has_map || pax.sparse.major.is_some() {
            if let Some(n) = pax.sparse.name.clone() {
                path = n;
            }
            let (map, real) = self.pax_sparse(&pax.sparse)?;
            sparse = Some(map);
            size = real;
        }
        if let Some(map) = &sparse {
            validate_sparse(map, size, self.left)
                .with_context(|| format!("tar entry {:?}", String::from_utf8_lossy(&path)))?;
        }
        self.current = path.clone();
        Ok(Entry {
            path,
            kind,
            mode: (h.num(100, 8).context("tar header mode")? & 0o7777) as u32,
            uid: pax
                .uid
                .map_or_else(|| h.num(108, 8), Ok)
                .context("tar header uid")?,
            gid: pax
                .gid
                .map_or_else(|| h.num(116, 8), Ok)
                .context("tar header gid")?,
            mtime,
            atime,
            link,
            dev_major: dev_num(&h, 329)?,
            dev_minor: dev_num(&h, 337)?,
            xattrs: pax.xattrs,
            size,
            sparse,
        })
    }

    /// The old GNU sparse map: four entries in the header, more in extension blocks.
    fn old_gnu_sparse(&mut self, h: &Header) -> Result<(Vec<(u64, u64)>, u64)> {
        let mut map = Vec::new();
        let mut push = |blk: &[u8], at: usize| -> Result<bool> {
            if blk[at] == 0 {
                return Ok(false);
            }
            let hh = Header(blk);
            map.push((hh.num(at, 12)?, hh.num(at + 12, 12)?));
            ensure!(map.len() <= MAX_SPARSE, "GNU sparse map too large");
            Ok(true)
        };
        for i in 0..4 {
            if !push(h.0, 386 + i * 24)? {
                break;
            }
        }
        let real = h.num(483, 12).context("GNU sparse real size")?;
        let mut extended = h.0[482] != 0;
        while extended {
            let Some(b) = self.block()? else {
                return Err(eof_in("the sparse map", &self.current));
            };
            for i in 0..21 {
                if !push(&b, i * 24)? {
                    break;
                }
            }
            extended = b[504] != 0;
        }
        Ok((map, real))
    }

    /// The PAX sparse formats: 0.0 and 0.1 carry the map in records, 1.0 at the start of data.
    fn pax_sparse(&mut self, s: &SparsePax) -> Result<(Vec<(u64, u64)>, u64)> {
        let real = s
            .real_size
            .context("PAX sparse entry without GNU.sparse.size or GNU.sparse.realsize")?;
        let flat = if s.major == Some(1) && s.minor == Some(0) {
            self.sparse_map_in_data()?
        } else if s.major.is_none() || s.major == Some(0) {
            s.map.clone()
        } else {
            bail!(
                "unsupported PAX sparse format {}.{}",
                s.major.unwrap_or(0),
                s.minor.unwrap_or(0)
            );
        };
        ensure!(
            flat.len() % 2 == 0,
            "PAX sparse map has an odd number of values"
        );
        Ok((flat.chunks(2).map(|c| (c[0], c[1])).collect(), real))
    }

    /// Sparse 1.0: decimal numbers, one per line (count, then offset/length pairs), padded to
    /// a block boundary, at the start of the entry's data.
    fn sparse_map_in_data(&mut self) -> Result<Vec<u64>> {
        let mut buf = Vec::new();
        let mut nums: Vec<u64> = Vec::new();
        let mut want: Option<usize> = None;
        let mut pos = 0;
        loop {
            if want.is_some_and(|w| nums.len() == 1 + 2 * w) {
                break;
            }
            while let Some(nl) = buf[pos..].iter().position(|&c| c == b'\n') {
                let s = std::str::from_utf8(&buf[pos..pos + nl]).ok();
                let n: u64 = s
                    .and_then(|s| s.parse().ok())
                    .context("malformed PAX 1.0 sparse map")?;
                pos += nl + 1;
                nums.push(n);
                if want.is_none() {
                    let w = usize::try_from(n).ok().filter(|&w| w <= MAX_SPARSE);
                    want = Some(w.context("PAX 1.0 sparse map too large")?);
                }
                if want.is_some_and(|w| nums.len() == 1 + 2 * w) {
                    break;
                }
            }
            if want.is_some_and(|w| nums.len() == 1 + 2 * w) {
                break;
            }
            let mut b = [0u8; BLOCK];
            ensure!(
                self.left >= BLOCK as u64,
                "PAX 1.0 sparse map runs past the entry's data"
            );
            let n = read_full(&mut self.r, &mut b).context("reading the layer tar")?;
            if n < BLOCK {
                return Err(eof_in("the sparse map", &self.current));
            }
            self.left -= BLOCK as u64;
            buf.extend_from_slice(&b);
            ensure!(
                buf.len() as u64 <= MAX_SPECIAL,
                "PAX 1.0 sparse map too large"
            );
        }
        Ok(nums.split_off(1))
    }
}

fn pad_of(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn dev_num(h: &Header, at: usize) -> Result<u32> {
    u32::try_from(h.num(at, 8).context("tar header device number")?)
        .context("tar header device number")
}

/// Segments in order, not overlapping, inside the file, and as much data as the entry holds.
fn validate_sparse(map: &[(u64, u64)], size: u64, stored: u64) -> Result<()> {
    let mut end = 0u64;
    let mut total = 0u64;
    for &(off, len) in map {
        ensure!(
            off >= end,
            "sparse map segments overlap or are out of order"
        );
        end = off.checked_add(len).context("sparse map overflows")?;
        ensure!(
            end <= size,
            "sparse map reaches past the file's size {size}"
        );
        total += len;
    }
    ensure!(
        total == stored,
        "sparse map describes {total} bytes of data but the entry holds {stored}"
    );
    Ok(())
}

struct Header<'a>(&'a [u8]);

impl Header<'_> {
    fn field(&self, at: usize, len: usize) -> Vec<u8> {
        let f = &self.0[at..at + len];
        let end = f.iter().position(|&c| c == 0).unwrap_or(len);
        f[..end].to_vec()
    }

    fn is_gnu(&self) -> bool {
        &self.0[257..265] == b"ustar  \0"
    }

    fn is_ustar(&self) -> bool {
        &self.0[257..263] == b"ustar\0"
    }

    fn name(&self) -> Vec<u8> {
        let name = self.field(0, 100);
        if self.is_ustar() {
            let prefix = self.field(345, 155);
            if !prefix.is_empty() {
                let mut p = prefix;
                p.push(b'/');
                p.extend_from_slice(&name);
                return p;
            }
        }
        name
    }

    /// A numeric field: octal text, or base-256 when the high bit of the first byte is set.
    fn signed(&self, at: usize, len: usize) -> Result<i64> {
        let f = &self.0[at..at + len];
        if f[0] & 0x80 != 0 {
            // Two's complement, big-endian, after the marker bit (Go's parseNumeric).
            let inv = if f[0] & 0x40 != 0 { 0xff } else { 0 };
            let mut x: u64 = 0;
            for (i, &c) in f.iter().enumerate() {
                let mut c = c ^ inv;
                if i == 0 {
                    c &= 0x7f;
                }
                ensure!(x >> 56 == 0, "base-256 number out of range");
                x = (x << 8) | u64::from(c);
            }
            ensure!(x >> 63 == 0, "base-256 number out of range");
            return Ok(if inv == 0xff { !(x as i64) } else { x as i64 });
        }
        let s: Vec<u8> = f
            .iter()
            .copied()
            .skip_while(|&c| c == b' ' || c == 0)
            .take_while(|&c| c != b' ' && c != 0)
            .collect();
        if s.is_empty() {
            return Ok(0);
        }
        let s = std::str::from_utf8(&s).ok();
        s.and_then(|s| i64::from_str_radix(s, 8).ok())
            .with_context(|| format!("invalid octal number {:?}", String::from_utf8_lossy(f)))
    }

    fn num(&self, at: usize, len: usize) -> Result<u64> {
        let v = self.signed(at, len)?;
        u64::try_from(v).context("negative number in a tar header")
    }

    /// The sum of the header's bytes with the checksum field as spaces, unsigned or signed.
    fn check_sum(&self) -> Result<()> {
        let want = self.num(148, 8).context("tar header checksum")?;
        let (mut u, mut s) = (0u64, 0i64);
        for (i, &c) in self.0.iter().enumerate() {
            let c = if (148..156).contains(&i) { b' ' } else { c };
            u += u64::from(c);
            s += i64::from(c as i8);
        }
        if want != u && want as i64 != s {
            bail!(
                "invalid tar header checksum (entry {:?}): not a tar stream, or a corrupt one",
                String::from_utf8_lossy(&self.name())
            );
        }
        Ok(())
    }
}

/// Parse PAX records (`LEN KEY=VALUE\n`) into `pax`.
fn parse_pax(mut data: &[u8], pax: &mut Pax) -> Result<()> {
    while !data.is_empty() {
        if data.iter().all(|&c| c == 0) {
            break;
        }
        let sp = data
            .iter()
            .position(|&c| c == b' ')
            .context("malformed PAX record: no length")?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .context("malformed PAX record length")?;
        ensure!(
            len > sp + 1 && len <= data.len() && data[len - 1] == b'\n',
            "malformed PAX record"
        );
        let rec = &data[sp + 1..len - 1];
        let eq = rec
            .iter()
            .position(|&c| c == b'=')
            .context("malformed PAX record: no '='")?;
        pax_record(&rec[..eq], &rec[eq + 1..], pax)?;
        data = &data[len..];
    }
    Ok(())
}

fn pax_record(key: &[u8], val: &[u8], pax: &mut Pax) -> Result<()> {
    let text = || std::str::from_utf8(val).ok().map(str::trim);
    let int = |what: &str| -> Result<u64> {
        text()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("PAX record {what}: invalid number"))
    };
    if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
        set_xattr(&mut pax.xattrs, name.to_vec(), val.to_vec());
        return Ok(());
    }
    if let Some(name) = key.strip_prefix(b"LIBARCHIVE.xattr.") {
        let name = url_decode(name).context("LIBARCHIVE.xattr name")?;
        let value = base64_decode(val).context("LIBARCHIVE.xattr value")?;
        set_xattr(&mut pax.xattrs, name, value);
        return Ok(());
    }
    match key {
        b"path" => pax.path = Some(val.to_vec()),
        b"linkpath" => pax.linkpath = Some(val.to_vec()),
        b"size" => pax.size = Some(int("size")?),
        b"uid" => pax.uid = Some(int("uid")?),
        b"gid" => pax.gid = Some(int("gid")?),
        b"mtime" => pax.mtime = Some(pax_time(val).context("PAX record mtime")?),
        b"atime" => pax.atime = Some(pax_time(val).context("PAX record atime")?),
        b"GNU.sparse.major" => pax.sparse.major = Some(int("GNU.sparse.major")?),
        b"GNU.sparse.minor" => pax.sparse.minor = Some(int("GNU.sparse.minor")?),
        b"GNU.sparse.name" => pax.sparse.name = Some(val.to_vec()),
        b"GNU.sparse.size" | b"GNU.sparse.realsize" => {
            pax.sparse.real_size = Some(int("GNU.sparse.size")?)
        }
        b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => {
            pax.sparse.map.push(int("GNU.sparse.offset")?);
            pax.sparse.has_map = true;
            ensure!(
                pax.sparse.map.len() <= 2 * MAX_SPARSE,
                "PAX sparse map too large"
            );
        }
        b"GNU.sparse.map" => {
            pax.sparse.has_map = true;
            pax.sparse.map.clear();
            let s = text().context("GNU.sparse.map is not text")?;
            if !s.is_empty() {
                for n in s.split(',') {
                    pax.sparse
                        .map
                        .push(n.trim().parse().context("GNU.sparse.map: invalid number")?);
                    ensure!(
                        pax.sparse.map.len() <= 2 * MAX_SPARSE,
                        "PAX sparse map too large"
                    );
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn set_xattr(list: &mut Vec<(Vec<u8>, Vec<u8>)>, name: Vec<u8>, value: Vec<u8>) {
    match list.iter_mut().find(|(n, _)| *n == name) {
        Some(e) => e.1 = value,
        None => list.push((name, value)),
    }
}

/// A PAX time: `[-]SECONDS[.FRACTION]`, the fraction cut to nanoseconds.
pub fn pax_time(val: &[u8]) -> Result<Time> {
    let s = std::str::from_utf8(val).context("not text")?.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    ensure!(
        !whole.is_empty() && whole.bytes().all(|c| c.is_ascii_digit()),
        "invalid time {s:?}"
    );
    ensure!(
        frac.bytes().all(|c| c.is_ascii_digit()),
        "invalid time {s:?}"
    );
    let sec: i64 = whole.parse().context("time out of range")?;
    let mut nsec: u32 = 0;
    for (i, c) in frac.bytes().take(9).enumerate() {
        nsec += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
    }
    Ok(if !neg {
        Time { sec, nsec }
    } else if nsec == 0 {
        Time { sec: -sec, nsec: 0 }
    } else {
        Time {
            sec: -sec - 1,
            nsec: 1_000_000_000 - nsec,
        }
    })
}

/// libarchive writes xattr names URL-encoded (`%XX`).
fn url_decode(s: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = s.get(i + 1..i + 3).context("truncated %-escape")?;
            let hex = std::str::from_utf8(hex).ok();
            out.push(
                hex.and_then(|h| u8::from_str_radix(h, 16).ok())
                    .context("invalid %-escape")?,
            );
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Standard base64, with or without `=` padding.
fn base64_decode(s: &[u8]) -> Result<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let s: Vec<u8> = s
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let body = s
        .strip_suffix(b"==")
        .or_else(|| s.strip_suffix(b"="))
        .unwrap_or(&s);
    ensure!(body.len() % 4 != 1, "invalid base64 length");
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = (acc << 6) | val(c).context("invalid base64 character")?;
        }
        acc <<= 6 * (4 - chunk.len() as u32);
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(data: &[u8]) -> Result<Vec<(Entry, Vec<u8>)>> {
        let mut r = TarReader::new(data);
        let mut out = Vec::new();
        while let Some(e) = r.next_entry()? {
            let mut body = Vec::new();
            let mut buf = [0u8; 100];
            loop {
                let n = r.data(&mut buf)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&buf[..n]);
            }
            out.push((e, body));
        }
        Ok(out)
    }

    fn gnu_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_mtime(1_700_000_000);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn pax_times() {
        assert_eq!(
            pax_time(b"1700000000.123456789").unwrap(),
            Time {
                sec: 1_700_000_000,
                nsec: 123_456_789
            }
        );
        assert_eq!(
            pax_time(b"5.5").unwrap(),
            Time {
                sec: 5,
                nsec: 500_000_000
            }
        );
        assert_eq!(pax_time(b"1.1234567891").unwrap().nsec, 123_456_789);
        assert_eq!(
            pax_time(b"-1.5").unwrap(),
            Time {
                sec: -2,
                nsec: 500_000_000
            }
        );
        assert_eq!(pax_time(b"-3").unwrap(), Time { sec: -3, nsec: 0 });
        assert!(pax_time(b"1.2.3").is_err());
        assert!(pax_time(b"").is_err());
    }

    #[test]
    fn base64_and_url() {
        assert_eq!(base64_decode(b"aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode(b"aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64_decode(b"AQAAAg").unwrap(), [1, 0, 0, 2]);
        assert!(base64_decode(b"a").is_err());
        assert_eq!(url_decode(b"user.a%3Db%25").unwrap(), b"user.a=b%");
    }

    #[test]
    fn end_of_archive_forms() {
        let full = gnu_tar(&[("a", b"hello"), ("b", b"world!")]);
        // Whole archive; one end block; no end blocks; no padding after the last data.
        let data_end = full.len() - 1024 - (512 - 6);
        for cut in [full.len(), full.len() - 512, full.len() - 1024, data_end] {
            let es = entries(&full[..cut]).unwrap();
            assert_eq!(es.len(), 2, "cut at {cut}");
            assert_eq!(es[1].1, b"world!");
        }
        // Cut inside the data, or inside a header: errors naming the entry.
        let err = entries(&full[..data_end - 2]).unwrap_err().to_string();
        assert!(err.contains("\"b\"") && err.contains("truncated"), "{err}");
        let err = entries(&full[..1024 + 100]).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn corrupt_header_is_refused() {
        let mut t = gnu_tar(&[("a", b"x")]);
        t[10] ^= 0x55;
        assert!(entries(&t).unwrap_err().to_string().contains("checksum"));
    }

    #[test]
    fn pax_records_apply_to_the_next_entry() {
        let recs = b"30 mtime=1700000000.000000007\n20 atime=1700000001\n27 SCHILY.xattr.user.k=raw\n34 LIBARCHIVE.xattr.user.b64=aGk=\n18 path=long/name\n";
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_size(recs.len() as u64);
        b.append_data(&mut h, "pax", &recs[..]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(2);
        h.set_mode(0o600);
        b.append_data(&mut h, "short", &b"hi"[..]).unwrap();
        let t = b.into_inner().unwrap();
        let es = entries(&t).unwrap();
        assert_eq!(es.len(), 1);
        let e = &es[0].0;
        assert_eq!(e.path, b"long/name");
        assert_eq!(
            e.mtime,
            Time {
                sec: 1_700_000_000,
                nsec: 7
            }
        );
        assert_eq!(
            e.atime,
            Some(Time {
                sec: 1_700_000_001,
                nsec: 0
            })
        );
        assert_eq!(
            e.xattrs,
            vec![
                (b"user.k".to_vec(), b"raw".to_vec()),
                (b"user.b64".to_vec(), b"hi".to_vec())
            ]
        );
    }

    #[test]
    fn base256_numbers() {
        let mut b = [0u8; 512];
        b[124] = 0x80;
        b[135] = 0x10;
        assert_eq!(Header(&b).num(124, 12).unwrap(), 16);
        let mut b = [0xffu8; 512];
        b[136] = 0xff;
        assert_eq!(Header(&b).signed(136, 12).unwrap(), -1);
    }

    #[test]
    fn sparse_maps_are_checked() {
        assert!(validate_sparse(&[(0, 4), (10, 2)], 12, 6).is_ok());
        assert!(validate_sparse(&[(10, 2), (0, 4)], 12, 6).is_err());
        assert!(validate_sparse(&[(0, 4), (10, 4)], 12, 8).is_err());
        assert!(validate_sparse(&[(0, 4)], 12, 5).is_err());
    }
}
