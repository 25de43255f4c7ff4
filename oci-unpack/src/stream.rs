//! From a layer blob to a verified tar stream.
//!
//! The blob is read, counted (for progress), decompressed as its descriptor's media type says
//! (image-spec layer.md "`+gzip` Media Types" and "`+zstd` Media Types"; the first bytes are
//! checked against it, and a mismatch is refused unless the unpacker is lenient, which then
//! follows the bytes, as for media types this crate does not know), and the uncompressed bytes
//! are hashed for the
//! diff_id (config.md, `rootfs.diff_ids`) on a producer thread, which hands chunks to the thread
//! that applies tar entries. This is what `tar -xzf` gets from running gzip as a separate
//! process: decompression and hashing overlap with file creation. The channel is bounded, so
//! memory stays at `CHUNK * DEPTH` whatever the layer size.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use oci_image::media_type::Compression;
use oci_image::Hasher;
use oci_spec::image::Digest;

const CHUNK: usize = 256 * 1024;
const DEPTH: usize = 16;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Detects the compression of a stream from its first bytes; anything else is taken as a tar.
pub(crate) fn detect(head: &[u8]) -> Compression {
    if head.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Why the producer stopped.
#[derive(Debug)]
pub(crate) enum ProducerError {
    /// Reading the blob failed: an I/O error or the verifying reader's size or digest check.
    Read(io::Error),
    /// The decoder refused the stream.
    Decompress(io::Error),
    /// The first bytes are not the compression the media type names.
    Mismatch {
        /// What the bytes look like.
        detected: Compression,
    },
}

/// Counts bytes read from the blob into a shared counter.
struct Counting<'a, R> {
    inner: R,
    counter: &'a AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Marks errors from the raw blob so they are not mistaken for decoder errors.
struct Tagged<R>(R);

#[derive(Debug)]
struct ReadFailed(io::Error);
impl std::fmt::Display for ReadFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::error::Error for ReadFailed {}

impl<R: Read> Read for Tagged<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), ReadFailed(e)))
    }
}

fn untag(e: io::Error) -> ProducerError {
    if e.get_ref().is_some_and(|i| i.is::<ReadFailed>()) {
        let kind = e.kind();
        match e.into_inner().map(|b| b.downcast::<ReadFailed>()) {
            Some(Ok(inner)) => ProducerError::Read(inner.0),
            _ => ProducerError::Read(io::Error::from(kind)),
        }
    } else {
        ProducerError::Decompress(e)
    }
}

/// Runs on the producer thread: reads the whole blob, sends the uncompressed bytes in chunks,
/// and returns the digest of the uncompressed stream (computed with the diff_id's algorithm).
///
/// The blob is read to its very end even after the decoder stops, so a verifying reader sees
/// EOF and checks the blob digest.
///
/// `expected` is the compression the descriptor's media type names (`None`: unknown, or a
/// lenient unpacker: follow the bytes).
///
/// `blob_digest` is the digest the blob reader verifies at its end: for an uncompressed layer
/// whose diff_id uses the same algorithm, the uncompressed stream is the blob, so its digest
/// is that one and the bytes are not hashed a second time.
pub(crate) fn produce<R: Read>(
    blob: R,
    blob_digest: &Digest,
    expected: Option<Compression>,
    diff_algorithm: Option<&oci_spec::image::DigestAlgorithm>,
    bytes_read: &AtomicU64,
    tx: SyncSender<Vec<u8>>,
    recycled: Receiver<Vec<u8>>,
) -> Result<Digest, ProducerError> {
    let algorithm = diff_algorithm.unwrap_or(&oci_spec::image::DigestAlgorithm::Sha256);
    let mut hasher = Hasher::new(algorithm).unwrap_or_else(|_| Hasher::sha256());
    let counted = Counting {
        inner: blob,
        counter: bytes_read,
    };
    let mut buffered = BufReader::with_capacity(CHUNK, Tagged(counted));
    let head = buffered.fill_buf().map_err(untag)?;
    let compression = detect(head);
    if let Some(expected) = expected {
        // image-spec layer.md: the media type says how the blob is compressed. An empty blob
        // has no magic to check; the tar reader refuses it.
        if compression != expected && !head.is_empty() {
            return Err(ProducerError::Mismatch {
                detected: compression,
            });
        }
    }
    let mut decoder: Box<dyn Read + '_> = match compression {
        // Multi-member: a gzip layer may be several concatenated members (pigz, appends).
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(&mut buffered)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(&mut buffered)
                .map_err(ProducerError::Decompress)?,
        ),
        Compression::None => Box::new(&mut buffered),
    };
    let same_as_blob = compression == Compression::None && blob_digest.algorithm() == algorithm;
    let mut receiver_gone = false;
    loop {
        // Chunks come back from the reader once consumed: no allocation or zeroing per chunk.
        let mut chunk = recycled.try_recv().unwrap_or_default();
        chunk.resize(CHUNK, 0);
        let mut filled = 0;
        while filled < CHUNK {
            match decoder.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(untag(e)),
            }
        }
        if filled == 0 {
            break;
        }
        chunk.truncate(filled);
        if !same_as_blob {
            hasher.update(&chunk);
        }
        if !receiver_gone && tx.send(chunk).is_err() {
            // The applier stopped on an error of its own, which is the one to report.
            receiver_gone = true;
            break;
        }
    }
    drop(tx);
    if receiver_gone {
        return Ok(hasher.finish());
    }
    drop(decoder);
    // Trailing bytes after the compressed stream still belong to the blob: read them so the
    // verifying reader reaches EOF.
    io::copy(&mut buffered, &mut io::sink()).map_err(untag)?;
    if same_as_blob {
        // The blob reader reached its end without an error: the blob, which is the stream,
        // has the blob digest.
        return Ok(blob_digest.clone());
    }
    Ok(hasher.finish())
}

/// The consumer side: a `Read` over the chunks the producer sends, handing each back once read.
pub(crate) struct ChunkReader {
    rx: Receiver<Vec<u8>>,
    recycle: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl ChunkReader {
    pub(crate) fn new(rx: Receiver<Vec<u8>>, recycle: SyncSender<Vec<u8>>) -> Self {
        Self {
            rx,
            recycle,
            cur: Vec::new(),
            pos: 0,
        }
    }

    /// Reads and discards whatever the producer still sends (tar padding after the end-of-archive
    /// blocks counts towards the diff_id).
    pub(crate) fn drain(&mut self) {
        while self.rx.recv().is_ok() {}
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(c) => {
                    let used = std::mem::replace(&mut self.cur, c);
                    // A full pool (or a finished producer) just drops the chunk.
                    let _ = self.recycle.try_send(used);
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The channel of chunks, and the one that returns them to the producer.
#[allow(clippy::type_complexity)]
pub(crate) fn channels() -> (
    (SyncSender<Vec<u8>>, Receiver<Vec<u8>>),
    (SyncSender<Vec<u8>>, Receiver<Vec<u8>>),
) {
    (sync_channel(DEPTH), sync_channel(DEPTH + 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn run(blob: Vec<u8>) -> (Vec<u8>, Result<Digest, ProducerError>) {
        let counter = AtomicU64::new(0);
        let ((tx, rx), (rtx, rrx)) = channels();
        let digest = oci_image::sha256_digest(&blob);
        std::thread::scope(|s| {
            let h = s.spawn(|| produce(&blob[..], &digest, None, None, &counter, tx, rrx));
            let mut out = Vec::new();
            ChunkReader::new(rx, rtx).read_to_end(&mut out).unwrap();
            (out, h.join().unwrap())
        })
    }

    #[test]
    fn multi_member_gzip_and_zstd_and_plain() {
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let mut gz = Vec::new();
        for part in data.chunks(300_000) {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            gz.extend(e.finish().unwrap());
        }
        let zst = zstd::encode_all(&data[..], 1).unwrap();
        let want = oci_image::sha256_digest(&data);
        for blob in [gz, zst, data.clone()] {
            let (out, d) = run(blob);
            assert_eq!(out, data);
            assert_eq!(d.unwrap(), want);
        }
    }

    #[test]
    fn corrupt_gzip_is_a_decompress_error() {
        let mut gz = Vec::new();
        let mut e = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
        e.write_all(&[7u8; 10_000]).unwrap();
        e.finish().unwrap();
        let n = gz.len();
        gz[n / 2] ^= 0xff;
        gz[n - 6] ^= 0xff;
        let (_, r) = run(gz);
        assert!(matches!(r, Err(ProducerError::Decompress(_))), "{r:?}");
    }
}
