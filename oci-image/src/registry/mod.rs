//! Pulling images from registries into a [`Layout`] and pushing them back (the OCI
//! distribution-spec), behind the `registry` cargo feature.
//!
//! ```no_run
//! # fn main() -> Result<(), oci_image::Error> {
//! use oci_image::registry::{Client, PullOptions, PushOptions};
//! use oci_image::Layout;
//!
//! let client = Client::new();
//! let layout = Layout::create("/var/lib/images")?;
//! let pulled = client.pull(&"busybox:1.36".parse()?, &layout, &PullOptions::default())?;
//! println!("{} is {}", pulled.reference, pulled.descriptor.digest());
//!
//! // And back, to another registry.
//! let target = "localhost:5000/mirror/busybox:1.36".parse()?;
//! client.push(&layout, &pulled.reference.to_string(), &target, &PushOptions::default())?;
//! # Ok(()) }
//! ```
//!
//! # What it does
//! - References: `registry/name:tag`, `name@sha256:…`, Docker Hub's short names
//!   (`busybox` is `docker.io/library/busybox:latest`, served by `registry-1.docker.io`), and
//!   a configurable default registry ([`Reference`], [`ClientBuilder::default_registry`]).
//! - Manifests are negotiated with an `Accept` of the OCI and Docker schema 2 types (indexes
//!   and manifests), capped at [`crate::MAX_MANIFEST_SIZE`], verified against the digest the
//!   reference or the parent index names (or the registry's `Docker-Content-Digest`), and
//!   checked with the same rules as a layout's ([`crate::parse_manifest`]). An index is
//!   resolved to the best manifest for the platform with [`crate::PlatformSpec`]'s ranks, or
//!   pulled whole with [`PullOptions::all_platforms`].
//! - Blobs are downloaded by several threads straight into the content store, each hashed as
//!   it streams and never read past its descriptor's size (a registry's `Content-Length` is
//!   not trusted); blobs already in the store are skipped once their content verifies (a
//!   corrupt one is downloaded again); an interrupted download keeps its bytes
//!   ([`crate::PartialBlob`]) and the next attempt, in this process or a later one, asks for
//!   the rest with an HTTP `Range`.
//! - Nothing that is not whole is tagged: what a pull writes is held by a [`crate::Lease`]
//!   until the tag (so a concurrent `gc`, here or in another process, leaves it alone); a
//!   config whose descriptor declares more than [`crate::MAX_CONFIG_SIZE`] is refused before
//!   any download; configs are checked against their layers before the layers are fetched,
//!   and the image is validated as a whole ([`crate::Layout::validate_descriptor`]) before
//!   the tag. Platform selection fetches each index, manifest and config once and makes at
//!   most [`MAX_SELECTION_REQUESTS`] requests.
//! - Deadlines: connect, read (with a minimum blob transfer speed), per request, and
//!   optionally the whole operation ([`ClientBuilder::connect_timeout`],
//!   [`ClientBuilder::read_timeout`], [`ClientBuilder::request_timeout`],
//!   [`ClientBuilder::deadline`]); each ends in an [`Error::Timeout`] that names the URL and
//!   the deadline.
//! - Authentication: anonymous, Docker's bearer-token flow (a `WWW-Authenticate: Bearer`
//!   challenge, then a token from the realm, with basic credentials if there are some), and
//!   HTTP basic. Credentials come from [`ClientBuilder::credentials`] or the auth files
//!   podman and Docker use ([`default_auth_files`]). Plain HTTP is used only for localhost
//!   and the registries named with [`ClientBuilder::insecure_registry`]. Redirects are
//!   followed by hand: credentials and tokens go only to the exact origin (scheme, host,
//!   port) they were issued for, on redirects and upload locations alike, and a `Location`
//!   that is not http(s) is refused ([`Error::BadLocation`]).
//! - Transient failures (connection errors, 408, 429, 500, 502, 503, 504) are retried with
//!   exponential backoff; 401, 403 and 404 become [`Error::Unauthorized`], [`Error::Denied`]
//!   and [`Error::RegistryNotFound`], naming the URL; a blob whose bytes do not match its
//!   digest is [`Error::DigestMismatch`].
//! - Push: blobs first (a `HEAD` skips those the registry has, a cross-repository mount is
//!   tried when [`PushOptions::mount_from`] names a source, otherwise a monolithic
//!   `POST`+`PUT` or a chunked `PATCH` upload), then manifests by digest, then the index or
//!   manifest under the tag.
//!
//! # Why not `oci-client`
//! `oci-client` (the protocol crate of the `oras`/krustlet lineage) is well kept and was the
//! first candidate. It is async on tokio and reqwest, which would bring a runtime and some
//! hundred crates into a crate that is otherwise synchronous and small, and its blob API
//! writes to an `AsyncWrite` without a resume offset tied to our store. What this module
//! needs besides the protocol (resuming into [`crate::PartialBlob`], verification as bytes
//! land, the auth files, retries, platform choice with our ranks) would have been written
//! around it anyway. So this is a small synchronous client on [`ureq`] (rustls, no async
//! runtime), with `std` threads for concurrency; the distribution-spec sections each rule
//! comes from are cited in the code.
//!
//! # Not supported
//! Credential helpers (`credsStore`, `credHelpers`), OAuth2 refresh tokens
//! (`identitytoken`), resuming an interrupted push (an interrupted upload starts again),
//! the referrers API, and Docker schema 1 manifests.

mod auth;
mod pull;
mod push;
mod reference;
mod transport;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use oci_spec::image::{Descriptor, Digest};

pub use auth::{default_auth_files, find_credentials, Credentials};
pub use pull::MAX_SELECTION_REQUESTS;
pub use reference::{Reference, DOCKER_HUB, DOCKER_HUB_API};

use crate::error::{Error, Result};
use crate::platform::PlatformSpec;
#[allow(unused_imports)] // used by the rustdoc links above
use crate::Layout;
use transport::{Config, Transport};

/// A registry client: configuration, connection pools and cached tokens. Cheap to share
/// between threads (`&Client` is all that pulls and pushes need).
///
/// ```
/// let client = oci_image::registry::Client::builder()
///     .default_registry("registry.example.com")
///     .insecure_registry("build-cache:5000")
///     .concurrency(8)
///     .build();
/// let r = client.parse_reference("app:v1")?;
/// assert_eq!(r.to_string(), "registry.example.com/app:v1");
/// # Ok::<(), oci_image::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    transport: Arc<Transport>,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A client with the defaults: Docker Hub as the default registry, the usual auth files,
    /// four concurrent downloads, five retries.
    ///
    /// ```
    /// let client = oci_image::registry::Client::new();
    /// # let _ = client;
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for a client with other settings.
    ///
    /// ```
    /// let client = oci_image::registry::Client::builder().retries(0).build();
    /// # let _ = client;
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Parses a reference with this client's default registry.
    ///
    /// ```
    /// let c = oci_image::registry::Client::builder().default_registry("localhost:5000").build();
    /// assert_eq!(c.parse_reference("a/b")?.registry(), "localhost:5000");
    /// # Ok::<(), oci_image::Error>(())
    /// ```
    pub fn parse_reference(&self, s: &str) -> Result<Reference> {
        Reference::parse_with_default(s, &self.transport.config.default_registry)
    }
}

/// Settings for a [`Client`].
///
/// ```
/// use std::time::Duration;
/// use oci_image::registry::{Client, Credentials};
///
/// let client = Client::builder()
///     .credentials("registry.example.com", Credentials::new("ci", "token"))
///     .auth_files(vec!["/run/secrets/auth.json".into()])
///     .retries(3)
///     .backoff(Duration::from_millis(100))
///     .timeout(Duration::from_secs(60))
///     .build();
/// # let _ = client;
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    config: Config,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            config: Config {
                default_registry: DOCKER_HUB.to_string(),
                insecure: Vec::new(),
                auth_files: default_auth_files(|k| std::env::var(k).ok()),
                credentials: HashMap::new(),
                retries: 5,
                backoff: Duration::from_millis(250),
                max_backoff: Duration::from_secs(10),
                concurrency: 4,
                user_agent: format!("oci-image/{}", env!("CARGO_PKG_VERSION")),
                connect_timeout: Duration::from_secs(30),
                read_timeout: Duration::from_secs(30),
                request_timeout: Duration::from_secs(60),
                deadline: None,
                min_speed: 1024,
            },
        }
    }
}

impl ClientBuilder {
    /// The registry for references without one (`docker.io` by default).
    ///
    /// ```
    /// let c = oci_image::registry::Client::builder().default_registry("quay.io").build();
    /// assert_eq!(c.parse_reference("a/b")?.to_string(), "quay.io/a/b:latest");
    /// # Ok::<(), oci_image::Error>(())
    /// ```
    pub fn default_registry(mut self, registry: impl Into<String>) -> Self {
        self.config.default_registry = registry.into();
        self
    }

    /// Allows plain HTTP (and HTTPS without certificate verification) for `registry`
    /// (`host` or `host:port`), as Docker's `insecure-registries` does. Localhost is always
    /// allowed.
    ///
    /// ```
    /// let c = oci_image::registry::Client::builder().insecure_registry("10.0.0.5:5000").build();
    /// # let _ = c;
    /// ```
    pub fn insecure_registry(mut self, registry: impl Into<String>) -> Self {
        self.config.insecure.push(registry.into());
        self
    }

    /// Credentials for `registry` (as references name it: `docker.io`, `host:port`), used
    /// before any auth file.
    ///
    /// ```
    /// use oci_image::registry::{Client, Credentials};
    /// let c = Client::builder().credentials("docker.io", Credentials::new("me", "pat")).build();
    /// # let _ = c;
    /// ```
    pub fn credentials(mut self, registry: impl Into<String>, credentials: Credentials) -> Self {
        self.config.credentials.insert(registry.into(), credentials);
        self
    }

    /// The auth files to search for credentials, in order (by default
    /// [`default_auth_files`] of the process's environment).
    ///
    /// ```
    /// let c = oci_image::registry::Client::builder().auth_files(vec![]).build(); // anonymous
    /// # let _ = c;
    /// ```
    pub fn auth_files(mut self, files: Vec<PathBuf>) -> Self {
        self.config.auth_files = files;
        self
    }

    /// How many times a transiently failed request (or blob download, or upload) is tried
    /// again (5 by default).
    ///
    /// ```
    /// let c = oci_image::registry::Client::builder().retries(2).build();
    /// # let _ = c;
    /// ```
    pub fn retries(mut self, retries: u32) -> Self {
        self.config.retries = retries;
        self
    }

    /// The first retry's delay (250 ms by default); each next one doubles, up to 10 s.
    ///
    /// ```
    /// let c = oci_image::registry::Client::builder().backoff(std::time::Duration::from_millis(10)).build();
    /// # let _ = c;
    /// ```
    pub fn backoff(mut self, first: Duration) -> Self {
        self.config.backoff = first;
        self.config.max_backoff = self.config.max_backoff.max(first);
        self
    }

    /// How many blobs are transferred at once (4 by default, at least 1).
    ///
    /// ```
    /// let c = oci_image::registry::Client::builder().concurrency(1).build();
    /// # let _ = c;
    /// ```
    pub fn concurrency(mut self, n: usize) -> Self {
        self.config.concurrency = n.max(1);
        self
    }

    /// Sets both the [connect](ClientBuilder::connect_timeout) and the
    /// [read](ClientBuilder::read_timeout) timeouts.
    ///
    /// ```
    /// let c = oci_image::registry::Client::builder().timeout(std::time::Duration::from_secs(5)).build();
    /// # let _ = c;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self.config.read_timeout = timeout;
        self
    }

    /// How long connecting to a registry (DNS, TCP, TLS handshake) may take (30 s by default).
    ///
    /// ```
    /// let c = oci_image::registry::Client::builder()
    ///     .connect_timeout(std::time::Duration::from_secs(5))
    ///     .build();
    /// # let _ = c;
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// How long a transfer may wait for the next bytes (30 s by default). A blob transfer
    /// that receives less than [`ClientBuilder::min_speed`] over this long fails as well, so
    /// that a registry sending a byte a second cannot hold a pull. Such a failure is retried
    /// from where it stopped, like a cut connection.
    ///
    /// ```
    /// let c = oci_image::registry::Client::builder()
    ///     .read_timeout(std::time::Duration::from_secs(10))
    ///     .build();
    /// # let _ = c;
    /// ```
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.config.read_timeout = timeout;
        self
    }

    /// How long a whole request other than a blob transfer (a manifest, a token, an upload
    /// step) may take, from connecting to the last byte of the answer (60 s by default). Not
    /// retried: a registry that does not answer a manifest in this time is reported at once.
    ///
    /// ```
    /// let c = oci_image::registry::Client::builder()
    ///     .request_timeout(std::time::Duration::from_secs(20))
    ///     .build();
    /// # let _ = c;
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// A deadline for each whole pull or push, retries included (none by default: the other
    /// timeouts and the retry count bound it).
    ///
    /// ```
    /// let c = oci_image::registry::Client::builder()
    ///     .deadline(std::time::Duration::from_secs(600))
    ///     .build();
    /// # let _ = c;
    /// ```
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.config.deadline = Some(deadline);
        self
    }

    /// The slowest blob transfer accepted, in bytes per second, measured over each
    /// [`ClientBuilder::read_timeout`] (1024 by default; 0 accepts any speed).
    ///
    /// ```
    /// let c = oci_image::registry::Client::builder().min_speed(0).build();
    /// # let _ = c;
    /// ```
    pub fn min_speed(mut self, bytes_per_second: u64) -> Self {
        self.config.min_speed = bytes_per_second;
        self
    }

    /// The `User-Agent` header (`oci-image/<version>` by default).
    ///
    /// ```
    /// let c = oci_image::registry::Client::builder().user_agent("ocibox/0.1").build();
    /// # let _ = c;
    /// ```
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.config.user_agent = ua.into();
        self
    }

    /// Builds the client.
    ///
    /// ```
    /// let c = oci_image::registry::ClientBuilder::default().build();
    /// # let _ = c;
    /// ```
    pub fn build(self) -> Client {
        Client {
            transport: Arc::new(Transport::new(self.config)),
        }
    }
}

/// A progress event of a pull or push, for progress bars.
///
/// ```
/// use oci_image::registry::{Progress, PullOptions};
/// let opts = PullOptions::default().on_progress(|p: &Progress| {
///     if let Progress::BlobDone { digest, .. } = p {
///         eprintln!("{digest} done");
///     }
/// });
/// # let _ = opts;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Progress {
    /// A blob's transfer starts (or resumes at `offset`).
    BlobStarted {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// Bytes already held (a resumed download) or 0.
        offset: u64,
    },
    /// Bytes of a blob were transferred.
    BlobBytes {
        /// The blob.
        digest: Digest,
        /// How many bytes, since the last event.
        bytes: u64,
    },
    /// A blob is complete and verified (pull) or accepted (push).
    BlobDone {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// A blob needed no transfer: it is in the store (pull) or the registry (push).
    BlobSkipped {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// What to pull and how to name it in the layout.
///
/// ```
/// let opts = oci_image::registry::PullOptions::default()
///     .platform("linux/arm64".parse()?)
///     .tag("latest");
/// # let _ = opts;
/// # Ok::<(), oci_image::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct PullOptions {
    /// The platform to pick from an index (the host's when `None`).
    pub platform: Option<PlatformSpec>,
    /// Pull every manifest of an index (as `skopeo copy --all`), and tag the index.
    pub all_platforms: bool,
    /// The tag to write in the layout's `index.json`; `None` means the full reference
    /// (`docker.io/library/busybox:latest`) when it has a tag, and no tag for a reference by
    /// digest alone.
    pub tag: Option<String>,
    /// Called with progress events, from the downloading threads.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("platform", &self.platform)
            .field("all_platforms", &self.all_platforms)
            .field("tag", &self.tag)
            .field("progress", &self.progress.as_ref().map(|_| "<callback>"))
            .finish()
    }
}

impl PullOptions {
    /// Picks `platform` from an index.
    ///
    /// ```
    /// let o = oci_image::registry::PullOptions::default().platform("linux/amd64".parse()?);
    /// # let _ = o; Ok::<(), oci_image::Error>(())
    /// ```
    pub fn platform(mut self, platform: PlatformSpec) -> Self {
        self.platform = Some(platform);
        self
    }

    /// Pulls every platform of an index.
    ///
    /// ```
    /// let o = oci_image::registry::PullOptions::default().all_platforms(true);
    /// # let _ = o;
    /// ```
    pub fn all_platforms(mut self, all: bool) -> Self {
        self.all_platforms = all;
        self
    }

    /// Tags the pulled image `tag` in the layout.
    ///
    /// ```
    /// let o = oci_image::registry::PullOptions::default().tag("v1");
    /// # let _ = o;
    /// ```
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Reports progress to `f`.
    ///
    /// ```
    /// let o = oci_image::registry::PullOptions::default().on_progress(|p| eprintln!("{p:?}"));
    /// # let _ = o;
    /// ```
    pub fn on_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference pulled.
    pub reference: Reference,
    /// What the reference names in the registry: an index or a manifest.
    pub descriptor: Descriptor,
    /// The descriptor written to the layout's `index.json`: the chosen manifest (with its
    /// platform when it came from an index), or the index with
    /// [`PullOptions::all_platforms`].
    pub stored: Descriptor,
    /// The image manifests pulled (one, or every one of an index).
    pub manifests: Vec<Descriptor>,
    /// The tag written, if any.
    pub tag: Option<String>,
    /// Blobs downloaded (wholly or in part).
    pub blobs_downloaded: usize,
    /// Blobs that were already in the store.
    pub blobs_present: usize,
    /// Bytes received for blobs.
    pub bytes_downloaded: u64,
    /// Bytes of interrupted downloads that were kept and not fetched again.
    pub bytes_resumed: u64,
}

/// How to push.
///
/// ```
/// let o = oci_image::registry::PushOptions::default()
///     .mount_from("library/base")
///     .chunk_size(8 << 20);
/// # let _ = o;
/// ```
#[derive(Clone, Default)]
pub struct PushOptions {
    /// A repository of the same registry that may hold the blobs: each missing blob is
    /// mounted from it (distribution-spec "Mounting a blob from another repository") before
    /// an upload is tried.
    pub mount_from: Option<String>,
    /// Upload blobs in chunks of this many bytes (`PATCH`), instead of one `PUT`.
    pub chunk_size: Option<u64>,
    /// Called with progress events, from the uploading threads.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for PushOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushOptions")
            .field("mount_from", &self.mount_from)
            .field("chunk_size", &self.chunk_size)
            .field("progress", &self.progress.as_ref().map(|_| "<callback>"))
            .finish()
    }
}

impl PushOptions {
    /// Mounts missing blobs from `repository` of the same registry when it has them.
    ///
    /// ```
    /// let o = oci_image::registry::PushOptions::default().mount_from("team/base");
    /// # let _ = o;
    /// ```
    pub fn mount_from(mut self, repository: impl Into<String>) -> Self {
        self.mount_from = Some(repository.into());
        self
    }

    /// Uploads in chunks of `bytes`.
    ///
    /// ```
    /// let o = oci_image::registry::PushOptions::default().chunk_size(1 << 20);
    /// # let _ = o;
    /// ```
    pub fn chunk_size(mut self, bytes: u64) -> Self {
        self.chunk_size = Some(bytes.max(1));
        self
    }

    /// Reports progress to `f`.
    ///
    /// ```
    /// let o = oci_image::registry::PushOptions::default().on_progress(|p| eprintln!("{p:?}"));
    /// # let _ = o;
    /// ```
    pub fn on_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The reference pushed to.
    pub reference: Reference,
    /// The descriptor of what was pushed (a manifest or an index); its digest is what the
    /// registry serves for the reference.
    pub descriptor: Descriptor,
    /// Blobs uploaded.
    pub blobs_uploaded: usize,
    /// Blobs mounted from [`PushOptions::mount_from`].
    pub blobs_mounted: usize,
    /// Blobs the registry already had.
    pub blobs_present: usize,
    /// Manifests and indexes pushed.
    pub manifests_pushed: usize,
}

/// Runs `f` on each item with up to `n` threads; stops taking new items after the first
/// error, which is returned.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    n: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..n.min(items.len()).max(1) {
            s.spawn(|| loop {
                if failed.load(Ordering::SeqCst) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { return };
                match f(item) {
                    Ok(r) => {
                        results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
                    }
                    Err(e) => {
                        failed.store(true, Ordering::SeqCst);
                        first_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect())
}
