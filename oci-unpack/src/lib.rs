//! Apply OCI image layers to a filesystem, safely and fast.
//!
//! `oci-unpack` is the second step of the toolkit's flow: given an [`oci_image::Image`] resolved
//! from a layout, it turns the layers into the filesystem a container runs on, in one of two
//! forms:
//!
//! - **Flat** ([`Unpacker::unpack`]): every layer in order into one directory, whiteouts applied
//!   by deletion, the same tree `umoci unpack` produces.
//! - **Layer store** ([`LayerStore`]): each layer unpacked once into its own directory named by
//!   its chain ID (config.md, "Layer ChainID"), with whiteouts in overlayfs form, shared between
//!   images and reference-counted; [`LayerStore::mount`] stacks an image's layers with overlayfs
//!   under a fresh upper directory for one container, as containerd's overlay snapshotter does.
//!
//! ```no_run
//! # fn main() -> Result<(), oci_unpack::Error> {
//! use oci_image::Layout;
//! use oci_unpack::{LayerStore, Limits, Unpacker};
//!
//! let layout = Layout::open("/var/lib/images/debian")?;
//! let image = layout.resolve("bookworm", None)?;
//!
//! // A flat rootfs, with a cap on what a hostile image may write.
//! let unpacker = Unpacker::new().limits(Limits {
//!     max_bytes: Some(8 << 30),
//!     ..Limits::default()
//! });
//! unpacker.unpack(&layout, &image, "/run/bundle/rootfs")?;
//!
//! // Or shared layers and a copy-on-write mount per container.
//! let store = LayerStore::open("/var/lib/layers")?;
//! let chain = store.prepare(&unpacker, &layout, &image, "container-1")?;
//! let mount = store.mount(&chain, "/run/containers/container-1")?;
//! println!("rootfs at {}", mount.merged().display());
//! # Ok(()) }
//! ```
//!
//! A runnable version (it applies a layer built in memory):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use oci_image::spec::image::{DescriptorBuilder, MediaType};
//! use oci_unpack::Unpacker;
//!
//! let mut tar = tar::Builder::new(Vec::new());
//! let mut h = tar::Header::new_ustar();
//! h.set_path("hello.txt")?;
//! h.set_size(3);
//! h.set_mode(0o644);
//! h.set_uid(0);
//! h.set_gid(0);
//! h.set_mtime(1_700_000_000);
//! h.set_cksum();
//! tar.append(&h, &b"hi\n"[..])?;
//! let blob = tar.into_inner()?;
//!
//! let descriptor = DescriptorBuilder::default()
//!     .media_type(MediaType::ImageLayer)
//!     .digest(oci_image::sha256_digest(&blob))
//!     .size(blob.len() as u64)
//!     .build()?;
//! let root = tempfile::tempdir()?;
//! // A plain tar's diff_id is its own digest.
//! Unpacker::new().apply_layer(root.path(), &blob[..], &descriptor, Some(descriptor.digest()))?;
//! assert_eq!(std::fs::read(root.path().join("hello.txt"))?, b"hi\n");
//! # Ok(()) }
//! ```
//!
//! # Safety
//! Every path from a layer (entry names, hardlink targets, whiteouts) is resolved inside the
//! root with `openat2(RESOLVE_IN_ROOT)` and the last component is never followed (see the `fs`
//! module): symlinks planted by lower layers, absolute names, `..`, a symlink named `.`, a
//! hardlink to `/etc/shadow` all stay inside the root or are refused. Flat unpacks and store
//! layers are built in a private directory and renamed into place only once every digest has
//! verified, so a failing or interrupted unpack leaves nothing half-written. A layer may not set
//! overlayfs's own xattrs (`trusted.overlay.*`, `user.overlay.*`). The tar headers of one entry
//! (PAX records, GNU long names, which the `tar` crate buffers whole) are capped at 1 MiB, so a
//! header declaring a gigabyte fails with [`Error::LimitExceeded`] instead of being read into
//! memory.
//!
//! # Crashes and tampering
//! A process killed at any point of an unpack leaves at most a private `.oci-unpack-*`
//! directory (beside a flat target, or in the store's `tmp/`), locked by its writer with
//! `flock(2)` while it lives: the next flat unpack in that directory, [`LayerStore::open`] and
//! [`LayerStore::gc`] remove those no live writer holds. Each store layer records the digest
//! of its tree when it is unpacked; [`LayerStore::verify`] finds a layer changed since, and
//! [`LayerStore::repair`] unpacks it again from its blob.
//!
//! # Choices
//! - `tar` parses archives (PAX, GNU long names and sparse files included); `flate2` with the
//!   zlib-rs backend decodes gzip through its multi-member decoder; `zstd` binds the reference
//!   library; hashing is `oci-image`'s [`oci_image::Hasher`] (`sha2`, with the CPU's SHA
//!   extensions). Syscalls go through `rustix`, which has `openat2`, the `*at` family, xattrs
//!   and the new mount API without `unsafe` here.
//! - `openat2` rather than `pathrs`: `RESOLVE_IN_ROOT` is all the resolution needed, and a
//!   walk that keeps the last parent open makes a directory of small files cost one
//!   `openat2`, not one per file.
//! - Decompression and hashing run on their own thread, handing chunks to the thread that
//!   writes files through a bounded channel: the overlap `tar -xzf` gets from a gzip
//!   subprocess, with memory bounded by the channel (4 MiB) whatever the layer size.
//! - The `user.rootlesscontainers` value is two protobuf varints, encoded by hand rather than
//!   through a protobuf dependency.

#![warn(missing_docs)]

mod apply;
mod error;
mod fs;
mod lower;
mod store;
mod stream;
#[cfg(test)]
mod tests;
mod tree;

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use oci_image::media_type::Kind;
use oci_image::{Image, Layout, VerifyingReader};
use oci_spec::image::{Descriptor, Digest};
use oci_spec::runtime::LinuxIdMapping;

pub use error::{Error, Result};
pub use store::{
    chain_ids, LayerCheck, LayerState, LayerStore, OverlayMount, StoreGcReport, StoredLayer,
};

use apply::{Applier, Deferred, Form};
use fs::Root;

/// Caps on what one unpack may do, so a hostile image (a tar bomb, a million empty files, a
/// path thousands of directories deep) stops with [`Error::LimitExceeded`].
///
/// The caps count over one call: all layers of a flat unpack, all missing layers of a
/// [`LayerStore::prepare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of file content written (sparse holes count at their full size).
    pub max_bytes: Option<u64>,
    /// Tar entries read (whiteouts and directories included).
    pub max_entries: Option<u64>,
    /// Components in an entry's path or hardlink target, after cleaning. The default,
    /// [`Limits::DEFAULT_MAX_DEPTH`], is the most a path the kernel can name holds, so it
    /// refuses nothing a valid image can contain; set a lower cap against abuse.
    pub max_depth: Option<u64>,
}

impl Limits {
    /// The default [`Limits::max_depth`]: 2048 components, the most a path fits in the
    /// kernel's `PATH_MAX` (4096 bytes with its NUL: `a/a/…/a` with 2048 `a`s is 4095 bytes).
    /// An entry deeper than that could not be created by any unpacker (`openat2` fails with
    /// `ENAMETOOLONG`), so this cap only turns that failure into a clear [`Error::LimitExceeded`].
    /// The walks that remove or hash a tree hold a bounded number of descriptors, whatever
    /// its depth.
    pub const DEFAULT_MAX_DEPTH: u64 = 2048;
}

impl Default for Limits {
    /// No cap on bytes or entries; paths at most [`Limits::DEFAULT_MAX_DEPTH`] components deep.
    fn default() -> Self {
        Limits {
            max_bytes: None,
            max_entries: None,
            max_depth: Some(Self::DEFAULT_MAX_DEPTH),
        }
    }
}

/// Progress of an unpack, reported after every entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Bytes of layer blobs read so far (compressed, as stored).
    pub bytes_read: u64,
    /// Tar entries applied so far.
    pub entries: u64,
}

/// Per-call counters, shared by the threads of one call.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) bytes_read: AtomicU64,
    pub(crate) entries: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
}

/// How layers are applied: privileges, id mapping, limits and progress reporting.
///
/// ```
/// use oci_unpack::{Limits, Unpacker};
///
/// let unpacker = Unpacker::new()
///     .limits(Limits { max_entries: Some(1_000_000), ..Limits::default() })
///     .on_progress(|p| eprint!("\r{} entries, {} bytes read", p.entries, p.bytes_read));
/// ```
#[derive(Clone)]
pub struct Unpacker {
    pub(crate) rootless: bool,
    pub(crate) uid_map: Vec<LinuxIdMapping>,
    pub(crate) gid_map: Vec<LinuxIdMapping>,
    pub(crate) limits: Limits,
    pub(crate) lenient: bool,
    pub(crate) progress: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
}

impl std::fmt::Debug for Unpacker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unpacker")
            .field("rootless", &self.rootless)
            .field("uid_map", &self.uid_map)
            .field("gid_map", &self.gid_map)
            .field("limits", &self.limits)
            .field("lenient", &self.lenient)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Default for Unpacker {
    fn default() -> Self {
        Self::new()
    }
}

impl Unpacker {
    /// An unpacker with default [`Limits`], no id mapping, and rootless mode if the effective
    /// user is not root.
    pub fn new() -> Self {
        Unpacker {
            rootless: !rustix::process::geteuid().is_root(),
            uid_map: Vec::new(),
            gid_map: Vec::new(),
            limits: Limits::default(),
            lenient: false,
            progress: None,
        }
    }

    /// Rootless mode: no chown (a file's owner from the layer is kept in the
    /// `user.rootlesscontainers` xattr, as umoci does), no device nodes, and directories stay
    /// `u+rwx` until everything below them is in.
    pub fn rootless(mut self, rootless: bool) -> Self {
        self.rootless = rootless;
        self
    }

    /// Maps owners from the layer (container ids) to host ids, for a container with a user
    /// namespace (runtime-spec config-linux.md, "User namespace mappings"). An owner outside a
    /// non-empty map is an error. Empty maps (the default) keep owners as they are.
    pub fn id_mappings(
        mut self,
        uid_map: Vec<LinuxIdMapping>,
        gid_map: Vec<LinuxIdMapping>,
    ) -> Self {
        self.uid_map = uid_map;
        self.gid_map = gid_map;
        self
    }

    /// Sets the caps on what an unpack may write.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Lenient mode: a layer whose first bytes are another compression than its media type
    /// names (a gzip blob labelled `application/vnd.oci.image.layer.v1.tar`, as some registries
    /// serve) is decompressed as its bytes say. By default it is refused with
    /// [`Error::CompressionMismatch`]: image-spec layer.md makes the media type decide.
    pub fn lenient(mut self, lenient: bool) -> Self {
        self.lenient = lenient;
        self
    }

    /// Calls `f` after every entry with the running totals.
    pub fn on_progress(mut self, f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// Unpacks every layer of `image` in order into `target`, which must not exist or be an
    /// empty directory (image-spec layer.md, "Applying Changesets").
    ///
    /// The tree is built in a private directory next to `target` and renamed into place once
    /// every blob digest and diff_id has verified: on error `target` is left as it was.
    pub fn unpack(&self, layout: &Layout, image: &Image, target: impl AsRef<Path>) -> Result<()> {
        let target = target.as_ref();
        let replace_empty = match std::fs::symlink_metadata(target) {
            Ok(m) if m.is_dir() => {
                let mut it = std::fs::read_dir(target).map_err(|e| Error::io(target, e))?;
                if it.next().is_some() {
                    return Err(Error::TargetExists {
                        path: target.to_path_buf(),
                    });
                }
                true
            }
            Ok(_) => {
                return Err(Error::TargetExists {
                    path: target.to_path_buf(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::io(target, e)),
        };
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // What killed unpacks left here goes first.
        reclaim_private_dirs(parent)?;
        let private = PrivateDir::new(parent, self.rootless)?;
        let root = Root::open(private.path()).map_err(|e| Error::io(private.path(), e))?;
        let counters = Counters::default();
        let mut deferred = Deferred::default();
        for layer in &image.layers {
            let blob = layout.open_blob(&layer.descriptor)?;
            self.apply_verified(
                &root,
                blob,
                &layer.descriptor,
                Some(&layer.diff_id),
                Form::Flat,
                &counters,
                &mut deferred,
            )?;
        }
        apply::apply_deferred_modes(&root, deferred.modes)
            .map_err(|e| Error::io(private.path(), e))?;
        drop(root);
        if replace_empty {
            // rename(2) replaces an empty directory atomically.
            std::fs::remove_dir(target).map_err(|e| Error::io(target, e))?;
        }
        private.persist(target)
    }

    /// Applies one layer blob in place onto the directory `root` (flat form: whiteouts delete).
    ///
    /// The blob is checked against `descriptor` (size and digest) and, if given, its
    /// uncompressed stream against `diff_id`. Unlike [`Unpacker::unpack`], this writes into
    /// `root` as it goes: a layer that fails verification has already changed `root`, so use it
    /// on a directory you can throw away.
    pub fn apply_layer<R: Read + Send>(
        &self,
        root: impl AsRef<Path>,
        blob: R,
        descriptor: &Descriptor,
        diff_id: Option<&Digest>,
    ) -> Result<()> {
        let root_path = root.as_ref();
        let blob = VerifyingReader::new(blob, descriptor.digest().clone(), descriptor.size())?;
        let root = Root::open(root_path).map_err(|e| Error::io(root_path, e))?;
        let counters = Counters::default();
        let mut deferred = Deferred::default();
        self.apply_verified(
            &root,
            blob,
            descriptor,
            diff_id,
            Form::Flat,
            &counters,
            &mut deferred,
        )?;
        apply::apply_deferred_modes(&root, deferred.modes).map_err(|e| Error::io(root_path, e))
    }

    /// Applies a blob that verifies itself (a [`VerifyingReader`]): decompression and diff_id
    /// hashing on a producer thread, entries applied on this one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply_verified<R: Read + Send>(
        &self,
        root: &Root,
        blob: R,
        descriptor: &Descriptor,
        diff_id: Option<&Digest>,
        form: Form,
        counters: &Counters,
        deferred: &mut Deferred,
    ) -> Result<()> {
        let digest = descriptor.digest();
        let expected = match oci_image::media_type::kind(descriptor.media_type()) {
            // image-spec layer.md: the media type decides the compression; the bytes are
            // checked against it. Lenient unpackers follow the bytes.
            Kind::Layer { compression, .. } if !self.lenient => Some(compression),
            Kind::Layer { .. } => None,
            // Unknown types say nothing about compression: read by their magic bytes. What is
            // known to be something else is refused.
            Kind::Other => None,
            _ => {
                return Err(Error::NotALayer {
                    digest: digest.clone(),
                    media_type: descriptor.media_type().to_string(),
                })
            }
        };
        let ((tx, rx), (recycle_tx, recycle_rx)) = stream::channels();
        let (applied, produced) = std::thread::scope(|s| {
            let producer = s.spawn(|| {
                stream::produce(
                    blob,
                    digest,
                    expected,
                    diff_id.map(|d| d.algorithm()),
                    &counters.bytes_read,
                    tx,
                    recycle_rx,
                )
            });
            let mut reader = stream::ChunkReader::new(rx, recycle_tx);
            let applied = {
                let budget = std::cell::Cell::new(None);
                let mut archive = tar::Archive::new(apply::HeaderBudget::new(&mut reader, &budget));
                let mut applier = Applier::new(self, counters, root, form, digest, deferred);
                applier.apply_archive(&mut archive, &budget)
            };
            if applied.is_ok() {
                reader.drain();
            }
            drop(reader);
            let produced = match producer.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            (applied, produced)
        });
        // The producer's error is the cause when both failed (a truncated blob makes the tar
        // reader fail too).
        let actual = match produced {
            Err(stream::ProducerError::Read(e)) => {
                return Err(Error::Blob {
                    digest: digest.clone(),
                    source: Box::new(oci_image::Error::from_io(digest.to_string(), e)),
                })
            }
            Err(stream::ProducerError::Mismatch { detected }) => {
                return Err(Error::CompressionMismatch {
                    digest: digest.clone(),
                    media_type: descriptor.media_type().to_string(),
                    detected: compression_name(detected),
                })
            }
            Err(stream::ProducerError::Decompress(e)) => {
                return Err(Error::Decompress {
                    digest: digest.clone(),
                    source: e,
                })
            }
            Ok(d) => d,
        };
        applied?;
        if let Some(expected) = diff_id {
            if &actual != expected {
                return Err(Error::DiffIdMismatch {
                    digest: digest.clone(),
                    expected: Box::new(expected.clone()),
                    actual: Box::new(actual),
                });
            }
        }
        Ok(())
    }
}

fn compression_name(c: oci_image::media_type::Compression) -> &'static str {
    match c {
        oci_image::media_type::Compression::None => "an uncompressed tar",
        oci_image::media_type::Compression::Gzip => "gzip",
        oci_image::media_type::Compression::Zstd => "zstd",
    }
}

/// The prefix of the private directories unpacks build in (beside a flat target, in a layer
/// store's `tmp/`).
pub(crate) const PRIVATE_PREFIX: &str = ".oci-unpack-";

/// A directory this crate builds a tree in before it is renamed into place; removed on drop
/// unless persisted.
///
/// Its writer holds an exclusive `flock(2)` on it for as long as it lives, so
/// [`reclaim_private_dirs`] can tell a live one from one a killed process left (the kernel
/// drops the lock with the process). It is made while holding a shared lock on its parent
/// directory, which reclaimers take exclusively: none can see it between its `mkdir` and its
/// lock.
pub(crate) struct PrivateDir {
    path: Option<std::path::PathBuf>,
    force_perms: bool,
    _lock: std::os::fd::OwnedFd,
}

/// Opens `dir` for `flock(2)` (an `O_PATH` descriptor cannot be locked).
fn open_lockable(dir: &Path) -> std::io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    Ok(rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

impl PrivateDir {
    pub(crate) fn new(parent: &Path, force_perms: bool) -> Result<Self> {
        use rustix::fs::{flock, FlockOperation};
        let pfd = open_lockable(parent).map_err(|e| Error::io(parent, e))?;
        flock(&pfd, FlockOperation::LockShared).map_err(|e| Error::io(parent, e))?;
        let dir = tempfile::Builder::new()
            .prefix(PRIVATE_PREFIX)
            .tempdir_in(parent)
            .map_err(|e| Error::io(parent, e))?;
        let path = dir.keep();
        let lock = match open_lockable(&path).and_then(|fd| {
            flock(&fd, FlockOperation::LockExclusive)?;
            Ok(fd)
        }) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = std::fs::remove_dir(&path);
                return Err(Error::io(&path, e));
            }
        };
        drop(pfd);
        let me = PrivateDir {
            path: Some(path),
            force_perms,
            _lock: lock,
        };
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(me.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(me.path(), e))?;
        Ok(me)
    }

    pub(crate) fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Forgets the directory (it was renamed away).
    pub(crate) fn disarm(mut self) {
        self.path = None;
    }

    pub(crate) fn persist(mut self, to: &Path) -> Result<()> {
        let from = self.path.take().unwrap_or_default();
        match std::fs::rename(&from, to) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.path = Some(from);
                Err(Error::io(to, e))
            }
        }
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = fs::remove_tree(&p, self.force_perms);
        }
    }
}

/// Removes the private directories in `parent` that no live writer holds: what an unpack killed
/// with SIGKILL (or a crash, or a power cut) left behind. Returns how many were removed.
///
/// Safe against live writers: each holds an exclusive lock on its directory, which this only
/// removes once it took that lock itself; and it holds the parent's lock exclusively while it
/// looks, so no directory is between its creation and its lock. Called before every flat
/// unpack (in the target's parent) and by [`LayerStore::open`] and [`LayerStore::gc`].
pub(crate) fn reclaim_private_dirs(parent: &Path) -> Result<usize> {
    use rustix::fs::{flock, FlockOperation};
    let pfd = match open_lockable(parent) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(parent, e)),
    };
    flock(&pfd, FlockOperation::LockExclusive).map_err(|e| Error::io(parent, e))?;
    let force_perms = !rustix::process::geteuid().is_root();
    let mut removed = 0;
    for name in fs::list_dir(pfd.as_fd()).map_err(|e| Error::io(parent, e))? {
        if !name.starts_with(PRIVATE_PREFIX.as_bytes()) {
            continue;
        }
        let path = parent.join(fs::os(&name));
        let fd = match open_lockable(&path) {
            Ok(fd) => fd,
            // Gone meanwhile, or not a directory: not ours.
            Err(_) => continue,
        };
        match flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => continue,
            Err(e) => return Err(Error::io(&path, e)),
        }
        fs::remove_all_at(pfd.as_fd(), &name, force_perms).map_err(|e| Error::io(&path, e))?;
        removed += 1;
    }
    Ok(removed)
}
