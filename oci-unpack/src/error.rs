//! The crate's error type.

use std::io;
use std::path::PathBuf;

use oci_spec::image::Digest;

/// Everything that can go wrong while unpacking a layer, building a layer store or mounting it.
///
/// Variants name the layer (by its blob digest), the tar entry and the path involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation outside any one tar entry failed (opening the target, creating the
    /// private directory, renaming it into place, reading the store).
    #[error("{path}")]
    Io {
        /// The path the operation was on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Reading the image layout failed (a missing blob, a bad descriptor).
    #[error(transparent)]
    Image(Box<oci_image::Error>),

    /// The descriptor's media type is not a layer (a manifest, a config, the empty descriptor).
    #[error("blob {digest}: media type {media_type:?} is not a layer (image-spec media-types.md)")]
    NotALayer {
        /// The blob's digest.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },

    /// The compressed blob is not what its descriptor says: wrong size or digest, or it could
    /// not be read.
    #[error("layer {digest}: blob verification failed")]
    Blob {
        /// The layer blob's digest (from its descriptor).
        digest: Digest,
        /// What failed, as reported by `oci-image`'s verifying reader.
        #[source]
        source: Box<oci_image::Error>,
    },

    /// The layer could not be decompressed (corrupt gzip or zstd stream).
    #[error("layer {digest}: decompression failed")]
    Decompress {
        /// The layer blob's digest.
        digest: Digest,
        /// The decoder's error.
        #[source]
        source: io::Error,
    },

    /// The blob's first bytes are another compression than its media type names (image-spec
    /// layer.md: the media type decides). [`crate::Unpacker::lenient`] accepts it.
    #[error("layer {digest}: media type {media_type:?} but the blob is {detected} (refused: the media type decides; use a lenient unpacker to follow the bytes)")]
    CompressionMismatch {
        /// The layer blob's digest.
        digest: Digest,
        /// The descriptor's media type.
        media_type: String,
        /// What the first bytes are: `gzip`, `zstd` or `an uncompressed tar`.
        detected: &'static str,
    },

    /// The uncompressed tar does not hash to the `diff_id` the image config lists for it
    /// (config.md, `rootfs.diff_ids`).
    #[error("layer {digest}: diff_id mismatch: the image config says {expected}, the uncompressed tar is {actual}")]
    DiffIdMismatch {
        /// The layer blob's digest.
        digest: Digest,
        /// The diff_id from the image config.
        expected: Box<Digest>,
        /// The digest of the uncompressed stream.
        actual: Box<Digest>,
    },

    /// The tar stream is malformed (a bad header, a checksum mismatch, a truncated entry).
    #[error("layer {digest}: malformed tar")]
    Tar {
        /// The layer blob's digest.
        digest: Digest,
        /// The tar reader's error.
        #[source]
        source: io::Error,
    },

    /// A tar entry is refused: a whiteout of `..`, a bare `.wh.`, a non-directory in place of
    /// the root, a hardlink to itself, an unknown entry type, an owner outside the id map.
    #[error("layer {digest}: entry {entry:?}: {reason}")]
    InvalidEntry {
        /// The layer blob's digest.
        digest: Digest,
        /// The entry's name as written in the tar.
        entry: String,
        /// Why it is refused.
        reason: String,
    },

    /// Applying a tar entry to the filesystem failed.
    #[error("layer {digest}: entry {entry:?}: {op}")]
    Apply {
        /// The layer blob's digest.
        digest: Digest,
        /// The entry's name as written in the tar.
        entry: String,
        /// The operation that failed (`mkdir`, `write`, `chown`, `setxattr user.foo`, ...).
        op: String,
        /// The system error.
        #[source]
        source: io::Error,
    },

    /// A limit set with [`crate::Limits`] was exceeded: the layer is treated as hostile.
    #[error("layer {digest}: limit exceeded: {limit} is capped at {max}")]
    LimitExceeded {
        /// The layer blob's digest.
        digest: Digest,
        /// Which limit (`max_bytes`, `max_entries`, `max_depth`, or the fixed cap of 1 MiB on
        /// the tar headers of one entry: PAX records and GNU long names are buffered whole).
        limit: &'static str,
        /// The cap.
        max: u64,
    },

    /// The flat target exists and is not an empty directory.
    #[error("{path}: target exists and is not an empty directory")]
    TargetExists {
        /// The target.
        path: PathBuf,
    },

    /// The image lists a different number of layers than diff_ids, or a layer store request
    /// is malformed (a bad owner name, an unknown chain ID).
    #[error("{what}: {reason}")]
    Invalid {
        /// What was refused.
        what: String,
        /// Why.
        reason: String,
    },

    /// Mounting or unmounting an overlay failed.
    #[error("overlay at {target}: {op}")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// The operation (`fsopen`, `fsconfig lowerdir+`, `move_mount`, `umount`, ...).
        op: String,
        /// The system error.
        #[source]
        source: io::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<oci_image::Error> for Error {
    fn from(e: oci_image::Error) -> Self {
        Error::Image(Box::new(e))
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: impl Into<io::Error>) -> Self {
        Error::Io {
            path: path.into(),
            source: source.into(),
        }
    }
}

#[cfg(test)]
mod display_tests {
    use super::*;

    /// Each error names its own part and leaves its cause to `source()`, so that a printer
    /// walking the chain says every OS error once.
    #[test]
    fn the_os_error_is_the_source_not_part_of_the_message() {
        let text = io::Error::from_raw_os_error(2).to_string();
        let e = Error::Io {
            path: "/x".into(),
            source: io::Error::from_raw_os_error(2),
        };
        assert_eq!(e.to_string(), "/x");
        assert_eq!(
            std::error::Error::source(&e).map(|s| s.to_string()),
            Some(text)
        );
    }
}
