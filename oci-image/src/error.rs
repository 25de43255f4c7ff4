//! The crate's error type.

use std::io;
use std::path::PathBuf;

use oci_spec::image::Digest;

/// Everything that can go wrong while reading, verifying, resolving or writing an image layout.
///
/// Each variant carries what failed and where: the path, the digest, the JSON field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{path}")]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The directory is not an OCI image layout (image-layout.md).
    #[error("{path}: not an OCI image layout: {reason}")]
    NotALayout {
        /// The layout directory.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },

    /// The `oci-layout` file names a version this crate does not read.
    #[error("{path}: unsupported imageLayoutVersion {version:?} (this crate reads 1.0.0)")]
    LayoutVersion {
        /// The `oci-layout` file.
        path: PathBuf,
        /// The version it declares.
        version: String,
    },

    /// A string is not a digest (descriptor.md, "Digests").
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest {
        /// The string as given.
        digest: String,
        /// Why it was refused.
        reason: String,
    },

    /// The digest uses an algorithm that is not registered by the image-spec.
    #[error(
        "unsupported digest algorithm {algorithm:?} in {digest}: only sha256 and sha512 are registered (descriptor.md)"
    )]
    UnsupportedAlgorithm {
        /// The digest.
        digest: String,
        /// Its algorithm.
        algorithm: String,
    },

    /// The blob is not in the content store.
    #[error("blob {digest} not found at {path}")]
    BlobNotFound {
        /// The digest looked for.
        digest: Digest,
        /// Where it should have been.
        path: PathBuf,
    },

    /// The blob in the store is not a regular file (a symlink, a directory, a device).
    #[error("blob {digest} at {path} is not a regular file")]
    NotARegularFile {
        /// The digest.
        digest: Digest,
        /// The path.
        path: PathBuf,
    },

    /// The blob is shorter or longer than its descriptor says.
    #[error("blob {digest}: size mismatch: descriptor says {expected} bytes, content has {actual}{}", if *.at_least { " or more" } else { "" })]
    SizeMismatch {
        /// The digest.
        digest: Digest,
        /// The size the descriptor declares.
        expected: u64,
        /// The size found.
        actual: u64,
        /// True when reading stopped as soon as the content ran past `expected`, so `actual` is
        /// a lower bound.
        at_least: bool,
    },

    /// The blob's content does not hash to its digest.
    #[error("blob {expected}: digest mismatch: content hashes to {actual}")]
    DigestMismatch {
        /// The digest the descriptor declares.
        expected: Digest,
        /// The digest of the content.
        actual: String,
    },

    /// A descriptor declares a size larger than this crate will read into memory for that kind
    /// of document.
    #[error("blob {digest}: declared size {size} exceeds the limit of {limit} bytes for {what}")]
    TooLarge {
        /// The digest.
        digest: Digest,
        /// The declared size.
        size: u64,
        /// The limit.
        limit: u64,
        /// What kind of document it was read as.
        what: &'static str,
    },

    /// A JSON document does not parse as the type it should be.
    #[error("{file}: {field}: {message}")]
    Json {
        /// The file (`index.json`, `blobs/sha256/…`).
        file: String,
        /// The JSON path of the field that failed (`manifests[0].digest`), or `.` for the
        /// document.
        field: String,
        /// What serde said.
        message: String,
    },

    /// The content does not agree with the media type its descriptor declares.
    #[error("{digest}: media type mismatch: descriptor says {descriptor}, content is {content}")]
    MediaTypeMismatch {
        /// The digest of the content.
        digest: Digest,
        /// The descriptor's media type.
        descriptor: String,
        /// What the content says or looks like.
        content: String,
    },

    /// A descriptor points at something of a kind that cannot be used where it was found.
    #[error("{digest}: unexpected media type {media_type} for {expected}")]
    UnexpectedMediaType {
        /// The digest.
        digest: Digest,
        /// The media type found.
        media_type: String,
        /// What was expected there.
        expected: &'static str,
    },

    /// Docker's schema 1 manifests are not supported (they are deprecated and unsigned).
    #[error("{digest}: Docker schema 1 manifests ({media_type}) are not supported")]
    Schema1 {
        /// The digest.
        digest: Digest,
        /// The media type.
        media_type: String,
    },

    /// No image in the layout answers to the name.
    #[error("reference {reference:?} not found in {layout}; tags there: {}", list_or_none(.available))]
    NotFound {
        /// What the user asked for.
        reference: String,
        /// The layout.
        layout: PathBuf,
        /// The tags the layout has.
        available: Vec<String>,
    },

    /// No manifest matches the wanted platform.
    #[error("no image for platform {wanted} in {within}; platforms there: {}", list_or_none(.available))]
    NoMatchingPlatform {
        /// The wanted platform.
        wanted: String,
        /// What was searched: the reference, or the digest of an index.
        within: String,
        /// The platforms it has.
        available: Vec<String>,
    },

    /// Image indexes nest deeper than the limit.
    #[error("{digest}: image indexes nest deeper than {limit} levels")]
    NestingTooDeep {
        /// The index at which the limit was reached.
        digest: Digest,
        /// The limit.
        limit: usize,
    },

    /// An image index references itself, directly or through other indexes.
    #[error("{digest}: cycle between image indexes: {}", .chain.join(" -> "))]
    IndexCycle {
        /// The index found twice.
        digest: Digest,
        /// The chain of digests that leads back to it.
        chain: Vec<String>,
    },

    /// The image config's `rootfs.diff_ids` do not pair with the manifest's layers.
    #[error("{config}: rootfs.diff_ids has {diff_ids} entries but the manifest {manifest} has {layers} layers")]
    LayerCountMismatch {
        /// The manifest.
        manifest: Digest,
        /// The config.
        config: Digest,
        /// Number of layers.
        layers: usize,
        /// Number of diff_ids.
        diff_ids: usize,
    },

    /// A tag name breaks the grammar of `org.opencontainers.image.ref.name`.
    #[error("invalid tag {name:?}: {reason}")]
    InvalidTag {
        /// The tag.
        name: String,
        /// Why.
        reason: String,
    },

    /// A manifest or index being written references a blob the store lacks.
    #[error("{parent} references blob {digest} ({field}) which is not in the layout")]
    MissingReference {
        /// The document being written.
        parent: String,
        /// The JSON field of the reference.
        field: String,
        /// The missing blob.
        digest: Digest,
    },

    /// A value is malformed in a way that has no more specific variant.
    #[error("{what}: {reason}")]
    Invalid {
        /// What was being checked.
        what: String,
        /// Why it failed.
        reason: String,
    },

    /// A string is not an image reference (`[registry/]repository[:tag][@digest]`); used by the
    /// `registry` feature.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// Why it was refused.
        reason: String,
    },

    /// A registry asked for credentials, or refused those it was given (HTTP 401).
    #[error("{url}: unauthorized (HTTP 401): {message}")]
    Unauthorized {
        /// The URL of the request (or of the token realm) that was refused.
        url: String,
        /// What the registry or token server said, and which credentials were tried.
        message: String,
    },

    /// A registry refused access to a repository with the credentials given (HTTP 403).
    #[error("{url}: access denied (HTTP 403): {message}")]
    Denied {
        /// The URL of the request.
        url: String,
        /// What the registry said.
        message: String,
    },

    /// A registry has no such manifest, blob or repository (HTTP 404).
    #[error("{what} not found in the registry ({url}, HTTP 404): {message}")]
    RegistryNotFound {
        /// What was looked for: `manifest <reference>` or `blob <digest>`.
        what: String,
        /// The URL of the request.
        url: String,
        /// What the registry said.
        message: String,
    },

    /// A registry answered a request with an unexpected status.
    #[error("{method} {url}: HTTP {status}: {message}")]
    RegistryStatus {
        /// The request's method.
        method: String,
        /// The URL of the request.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What the registry said.
        message: String,
    },

    /// A request to a registry did not finish within one of the client's deadlines.
    #[error("{url}: {what} of {} exceeded{}", fmt_duration(.limit), if .detail.is_empty() { String::new() } else { format!(" ({})", .detail) })]
    Timeout {
        /// The URL of the request.
        url: String,
        /// Which deadline: `connect timeout`, `read timeout`, `request timeout`, `deadline`.
        what: &'static str,
        /// Its value.
        limit: std::time::Duration,
        /// What was going on (bytes received so far), or empty.
        detail: String,
    },

    /// A registry redirected to, or named as an upload location, a URL this client does not
    /// follow (another scheme than http(s), or plain HTTP to a host that is not insecure).
    #[error("{url}: refused location {location:?}: {reason}")]
    BadLocation {
        /// The URL of the request that answered with it.
        url: String,
        /// The `Location` as sent.
        location: String,
        /// Why it is refused.
        reason: String,
    },

    /// A pulled image fails validation; nothing was tagged.
    #[error("{reference}: the image is not valid, not tagged: {}", list_or_none(.problems))]
    InvalidImage {
        /// The reference pulled.
        reference: String,
        /// The problems found (errors only).
        problems: Vec<String>,
    },

    /// A request to a registry failed below HTTP: DNS, connection, TLS, a broken transfer.
    #[error("{url}: {message}")]
    Transport {
        /// The URL of the request.
        url: String,
        /// What failed.
        message: String,
    },
}

/// The error and its causes on one line, `a: b: c`, for messages that are text (validation
/// problems): the Display of each error names only its own part.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        out.push_str(": ");
        out.push_str(&c.to_string());
        next = c.source();
    }
    out
}

/// A list for an error message: at most ten items, then how many more (a hostile index may
/// list thousands).
fn list_or_none(v: &[String]) -> String {
    const SHOWN: usize = 10;
    match v.len() {
        0 => "(none)".to_string(),
        n if n <= SHOWN => v.join(", "),
        n => format!("{} and {} more", v[..SHOWN].join(", "), n - SHOWN),
    }
}

fn fmt_duration(d: &std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        // A verifying reader reports digest and size problems as `io::Error`s that wrap an
        // `Error`: unwrap them, so that callers can match on the real cause.
        let source = if source.get_ref().is_some_and(|e| e.is::<Error>()) {
            let kind = source.kind();
            match source.into_inner().map(|b| b.downcast::<Error>()) {
                Some(Ok(inner)) => return *inner,
                Some(Err(other)) => io::Error::new(kind, other),
                None => io::Error::from(kind),
            }
        } else {
            source
        };
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Recovers an [`Error`] wrapped in an `io::Error` by a [`crate::VerifyingReader`], or wraps
    /// a plain I/O error with `path`.
    pub fn from_io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::io(path, source)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io { source, .. } => source,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
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
