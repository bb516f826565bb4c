//! The layer pipeline: a decompressor thread reads each layer blob in order, checks its size
//! and digest, decompresses it (gzip, zstd or none, by media type or magic bytes), checks the
//! diff_id and the size bound, and hands fixed-size chunks to the applying thread over a small
//! bounded channel. The decompressor runs ahead into the next layer while the current one is
//! written, and memory stays bounded (a few chunks), whatever the layer size.
use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use anyhow::{anyhow, bail, Context, Result};

use super::digest::VerifyingReader;
use super::source::{Compression, Layer, Store};

const CHUNK: usize = 256 << 10;
const IN_FLIGHT: usize = 6;

/// Sizes of one layer once it was verified.
#[derive(Clone, Copy, Debug, Default)]
pub struct LayerStats {
    pub compressed: u64,
    pub uncompressed: u64,
}

enum Msg {
    Data(Vec<u8>),
    End(LayerStats),
    Failed(anyhow::Error),
}

#[allow(clippy::large_enum_variant)] // one per layer, never moved in a hot path
enum Decoder<R: BufRead> {
    Plain(R),
    Gzip(flate2::bufread::MultiGzDecoder<R>),
    Zstd(zstd::stream::read::Decoder<'static, R>),
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

impl<R: BufRead> Decoder<R> {
    fn new(mut r: R, c: Compression, what: &str) -> Result<Self> {
        let c = match c {
            Compression::Sniff => {
                let head = r.fill_buf().with_context(|| format!("reading {what}"))?;
                if head.starts_with(&[0x1f, 0x8b]) {
                    Compression::Gzip
                } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                    Compression::Zstd
                } else {
                    Compression::None
                }
            }
            c => c,
        };
        Ok(match c {
            Compression::Gzip => Decoder::Gzip(flate2::bufread::MultiGzDecoder::new(r)),
            Compression::Zstd => Decoder::Zstd(
                zstd::stream::read::Decoder::with_buffer(r)
                    .with_context(|| format!("starting zstd for {what}"))?,
            ),
            _ => Decoder::Plain(r),
        })
    }

    fn into_inner(self) -> R {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(r) => r.into_inner(),
            Decoder::Zstd(r) => r.finish(),
        }
    }
}

/// Start the decompressor thread for `layers` (in order). `limit` bounds each layer's
/// uncompressed size.
pub fn spawn(
    store: Store,
    layers: Vec<Layer>,
    limit: u64,
    progress: Option<indicatif::ProgressBar>,
) -> (LayerStream, JoinHandle<()>) {
    let (tx, rx) = sync_channel(IN_FLIGHT);
    let (pool_tx, pool_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
    let handle = std::thread::Builder::new()
        .name("berth-decompress".into())
        .spawn(move || {
            for (i, layer) in layers.iter().enumerate() {
                match produce(&store, layer, i, limit, progress.clone(), &tx, &pool_rx) {
                    Ok(Some(stats)) => {
                        if tx.send(Msg::End(stats)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Msg::Failed(e));
                        return;
                    }
                }
            }
        })
        .expect("spawning the decompressor thread");
    let stream = LayerStream {
        rx,
        pool: pool_tx,
        cur: Vec::new(),
        pos: 0,
        ended: false,
        stats: None,
        failed: None,
    };
    (stream, handle)
}

/// Stream one layer; Ok(None) when the consumer went away.
fn produce(
    store: &Store,
    layer: &Layer,
    index: usize,
    limit: u64,
    progress: Option<indicatif::ProgressBar>,
    tx: &SyncSender<Msg>,
    pool: &Receiver<Vec<u8>>,
) -> Result<Option<LayerStats>> {
    let name = layer
        .digest
        .as_ref()
        .map_or_else(|| layer.path.clone(), |d| d.to_string());
    let what = format!("layer {} ({name})", index + 1);
    let (raw, stored) = store
        .open(&layer.path)
        .with_context(|| format!("opening {what}"))?;
    if stored != layer.size {
        bail!(
            "{what}: blob is {stored} bytes but its descriptor says {}",
            layer.size
        );
    }
    let mut compressed = VerifyingReader::new(
        raw,
        format!("{what} blob"),
        layer.digest.clone(),
        Some(layer.size),
        u64::MAX,
    );
    if let Some(p) = progress {
        compressed = compressed.with_progress(p);
    }
    let decoder = Decoder::new(
        BufReader::with_capacity(CHUNK, compressed),
        layer.compression,
        &what,
    )?;
    let mut tar = VerifyingReader::new(
        decoder,
        format!("{what} uncompressed content (diff_id {})", layer.diff_id),
        Some(layer.diff_id.clone()),
        None,
        limit,
    );
    loop {
        let mut buf = pool
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        buf.resize(CHUNK, 0);
        let mut filled = 0;
        while filled < CHUNK {
            let n = tar
                .read(&mut buf[filled..])
                .map_err(|e| anyhow!(e))
                .with_context(|| format!("decompressing {what}"))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        let last = filled < CHUNK;
        if filled > 0 && tx.send(Msg::Data(buf)).is_err() {
            return Ok(None);
        }
        if last {
            break;
        }
    }
    let uncompressed = tar.count();
    // Read what follows the compressed stream so the blob's own size and digest get checked.
    let mut rest = tar.into_inner().into_inner();
    io::copy(&mut rest, &mut io::sink())
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("reading {what}"))?;
    let compressed = rest.into_inner().count();
    Ok(Some(LayerStats {
        compressed,
        uncompressed,
    }))
}

/// The applying side: reads one layer's tar at a time.
pub struct LayerStream {
    rx: Receiver<Msg>,
    pool: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    ended: bool,
    stats: Option<LayerStats>,
    failed: Option<anyhow::Error>,
}

impl Read for LayerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.cur.len() {
                let n = buf.len().min(self.cur.len() - self.pos);
                buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            if self.failed.is_some() {
                return Err(io::Error::other("the layer stream failed"));
            }
            match self.rx.recv() {
                Ok(Msg::Data(v)) => {
                    let old = std::mem::replace(&mut self.cur, v);
                    let _ = self.pool.try_send(old);
                    self.pos = 0;
                }
                Ok(Msg::End(s)) => {
                    self.ended = true;
                    self.stats = Some(s);
                }
                Ok(Msg::Failed(e)) => {
                    self.failed = Some(e);
                }
                Err(_) => return Err(io::Error::other("the decompressor thread ended early")),
            }
        }
    }
}

impl LayerStream {
    /// Drain the rest of the current layer and return its verified sizes, or the reason the
    /// layer was refused (digest, size, decompression). Then move on to the next layer.
    pub fn finish_layer(&mut self) -> Result<LayerStats> {
        let drained = io::copy(self, &mut io::sink());
        self.take_failure()?;
        drained.context("reading the layer stream")?;
        let stats = self
            .stats
            .take()
            .context("layer stream ended without a result")?;
        self.ended = false;
        Ok(stats)
    }

    /// If the decompressor reported an error, return it (it names the real cause).
    pub fn take_failure(&mut self) -> Result<()> {
        match self.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
