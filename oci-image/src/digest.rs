//! Digests: parsing with the registered algorithms, hashing, and a reader that verifies size and
//! digest while it streams.
//!
//! descriptor.md ("Digests", "Registered algorithms") registers `sha256` and `sha512`; every
//! other algorithm is refused here, which also keeps blob paths (`blobs/<alg>/<encoded>`) free of
//! anything but `[a-z0-9]` and lowercase hex.

use std::io::{self, Read};
use std::str::FromStr;

use oci_spec::image::{Digest, DigestAlgorithm};
use sha2::Digest as _;

use crate::error::{Error, Result};

/// Parses `s` as a digest whose algorithm is registered by the image-spec (sha256, sha512) and
/// whose encoded part has the length and alphabet the algorithm requires.
pub fn parse_digest(s: &str) -> Result<Digest> {
    let d = Digest::from_str(s).map_err(|e| Error::InvalidDigest {
        digest: s.to_string(),
        reason: e.to_string(),
    })?;
    check_registered(&d)?;
    Ok(d)
}

/// Refuses a digest whose algorithm is not registered (sha256, sha512).
///
/// `oci_spec`'s `Digest` accepts any algorithm that fits the grammar; this is the check that
/// must come before the digest names a file.
pub fn check_registered(d: &Digest) -> Result<()> {
    match d.algorithm() {
        DigestAlgorithm::Sha256 | DigestAlgorithm::Sha512 => Ok(()),
        other => Err(Error::UnsupportedAlgorithm {
            digest: d.to_string(),
            algorithm: other.to_string(),
        }),
    }
}

/// An incremental hash for one of the registered algorithms.
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256.
    Sha256(sha2::Sha256),
    /// SHA-512.
    Sha512(sha2::Sha512),
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Hasher::Sha256(_) => "Hasher(sha256)",
            Hasher::Sha512(_) => "Hasher(sha512)",
        })
    }
}

impl Hasher {
    /// A hasher for `algorithm`, or an error if it is not registered.
    pub fn new(algorithm: &DigestAlgorithm) -> Result<Self> {
        match algorithm {
            DigestAlgorithm::Sha256 => Ok(Self::sha256()),
            DigestAlgorithm::Sha512 => Ok(Hasher::Sha512(sha2::Sha512::new())),
            other => Err(Error::UnsupportedAlgorithm {
                digest: String::new(),
                algorithm: other.to_string(),
            }),
        }
    }

    /// A SHA-256 hasher, the algorithm used for everything this crate writes.
    pub fn sha256() -> Self {
        Hasher::Sha256(sha2::Sha256::new())
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed, as `alg:hex`.
    pub fn finish(self) -> Digest {
        let s = match self {
            Hasher::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Hasher::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        };
        // A freshly formatted digest of a registered algorithm always parses.
        Digest::from_str(&s).unwrap_or_else(|_| unreachable!("formatted digest {s} parses"))
    }
}

/// The sha256 digest of `data`.
pub fn sha256_digest(data: &[u8]) -> Digest {
    let mut h = Hasher::sha256();
    h.update(data);
    h.finish()
}

/// A reader that checks, while it streams, that the bytes are exactly `size` long and hash to
/// `digest`.
///
/// It never hands out more than `size` bytes. When the inner reader ends, the final `read`
/// returns `Ok(0)` only if the size and digest are right; otherwise it returns an `io::Error`
/// whose inner error is an [`Error::SizeMismatch`] or [`Error::DigestMismatch`] (recover it with
/// [`Error::from_io`]). A consumer must therefore read to the end (see
/// [`VerifyingReader::finish`]) before it treats the bytes as good: this is the same contract as
/// containerd's verified readers, and what lets a layer stream straight into an unpacker.
#[derive(Debug)]
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    digest: Digest,
    size: u64,
    read: u64,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Verified,
    Failed,
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps `inner`, expecting exactly `size` bytes that hash to `digest`.
    pub fn new(inner: R, digest: Digest, size: u64) -> Result<Self> {
        check_registered(&digest)?;
        let hasher = Hasher::new(digest.algorithm())?;
        Ok(Self {
            inner,
            hasher: Some(hasher),
            digest,
            size,
            read: 0,
            state: State::Reading,
        })
    }

    /// The digest this reader checks against.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Bytes handed out so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Reads and discards whatever is left, then reports whether the whole blob verified.
    ///
    /// Call it after a consumer (a tar reader, a decompressor) stops early: trailing bytes still
    /// count towards the digest.
    pub fn finish(mut self) -> Result<R> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match self.read(&mut buf) {
                Ok(0) => return Ok(self.inner),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("<stream>", e)),
            }
        }
    }

    fn fail(&mut self, e: Error) -> io::Error {
        self.state = State::Failed;
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.state {
            State::Verified => return Ok(0),
            State::Failed => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("blob {} already failed verification", self.digest),
                ))
            }
            State::Reading => {}
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let remaining = self.size - self.read;
        if remaining == 0 {
            // Everything expected has arrived: the inner reader must be at its end now.
            let mut probe = [0u8; 1];
            let n = loop {
                match self.inner.read(&mut probe) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if n != 0 {
                let e = Error::SizeMismatch {
                    digest: self.digest.clone(),
                    expected: self.size,
                    actual: self.size + 1,
                    at_least: true,
                };
                return Err(self.fail(e));
            }
            let actual = self.hasher.take().map(Hasher::finish);
            return match actual {
                Some(actual) if actual == self.digest => {
                    self.state = State::Verified;
                    Ok(0)
                }
                Some(actual) => {
                    let e = Error::DigestMismatch {
                        expected: self.digest.clone(),
                        actual: actual.to_string(),
                    };
                    Err(self.fail(e))
                }
                None => Ok(0),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            let e = Error::SizeMismatch {
                digest: self.digest.clone(),
                expected: self.size,
                actual: self.read,
                at_least: false,
            };
            return Err(self.fail(e));
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all<R: Read>(mut r: R) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        r.read_to_end(&mut v)?;
        Ok(v)
    }

    #[test]
    fn good_blob_verifies() {
        let data = b"hello world";
        let d = sha256_digest(data);
        let r = VerifyingReader::new(&data[..], d, data.len() as u64).unwrap();
        assert_eq!(read_all(r).unwrap(), data);
    }

    #[test]
    fn short_long_and_altered_blobs_fail() {
        let data = b"hello world";
        let d = sha256_digest(data);
        for (content, size) in [
            (&b"hello worl"[..], 11u64),
            (&b"hello world!"[..], 11),
            (&b"hello World"[..], 11),
        ] {
            let r = VerifyingReader::new(content, d.clone(), size).unwrap();
            let err = read_all(r).unwrap_err();
            let e = Error::from_io("x", err);
            assert!(
                matches!(e, Error::SizeMismatch { .. } | Error::DigestMismatch { .. }),
                "{e}"
            );
        }
    }

    #[test]
    fn long_blob_never_yields_extra_bytes() {
        let data = b"abc";
        let d = sha256_digest(data);
        let mut r = VerifyingReader::new(&b"abcdef"[..], d, 3).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(r.read(&mut buf).unwrap(), 3);
        let e = Error::from_io("x", r.read(&mut buf).unwrap_err());
        assert!(
            matches!(e, Error::SizeMismatch { at_least: true, .. }),
            "{e}"
        );
        // Poisoned from then on.
        assert!(r.read(&mut buf).is_err());
    }

    #[test]
    fn sha512_is_supported_and_sha384_is_not_registered() {
        let mut h = Hasher::new(&DigestAlgorithm::Sha512).unwrap();
        h.update(b"");
        assert!(h.finish().to_string().starts_with("sha512:cf83e135"));
        let d = format!("sha384:{}", "a".repeat(96));
        assert!(matches!(
            parse_digest(&d),
            Err(Error::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            parse_digest("sha256:../../etc/passwd"),
            Err(Error::InvalidDigest { .. })
        ));
    }

    proptest::proptest! {
        /// Whatever the content, declared size and read pattern, the reader succeeds exactly
        /// when the content is the blob, and never hands out more than the declared size.
        #[test]
        fn verifies_exactly_the_right_content(
            blob in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
            content in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
            declared_delta in -2i64..3,
            chunk in 1usize..64,
            use_blob in proptest::bool::ANY,
        ) {
            let content = if use_blob { blob.clone() } else { content };
            let size = (blob.len() as i64 + declared_delta).max(0) as u64;
            let mut r = VerifyingReader::new(&content[..], sha256_digest(&blob), size).unwrap();
            let mut out = Vec::new();
            let mut buf = vec![0u8; chunk];
            let result = loop {
                match r.read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) => break Err(e),
                }
            };
            proptest::prop_assert!(out.len() as u64 <= size);
            let good = content == blob && size == blob.len() as u64;
            proptest::prop_assert_eq!(result.is_ok(), good);
            if good {
                proptest::prop_assert_eq!(out, blob);
            }
        }
    }
}
