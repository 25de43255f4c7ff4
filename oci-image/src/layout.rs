//! The image layout (image-layout.md) and its content store.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Descriptor, DescriptorBuilder, Digest, ImageConfiguration, ImageIndex, ImageIndexBuilder,
    ImageManifest, MediaType, OciLayout,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::digest::{check_registered, Hasher, VerifyingReader};
use crate::error::{Error, Result};
use crate::media_type::{self, Kind};

/// The `imageLayoutVersion` this crate reads and writes (image-layout.md, "oci-layout file").
pub const LAYOUT_VERSION: &str = "1.0.0";

/// The largest manifest or index read into memory. The distribution-spec asks registries to
/// accept manifests of at least 4 MiB; anything declared larger is refused before it is read.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// The largest image config read into memory (configs with long histories exceed 4 MiB).
pub const MAX_CONFIG_SIZE: u64 = 32 << 20;

/// An OCI image layout on disk: `oci-layout`, `index.json` and `blobs/<alg>/<encoded>`.
///
/// Every blob read through it is checked against its descriptor's size and digest; every blob
/// and `index.json` written through it is written to a temporary file and renamed into place.
///
/// ```
/// # fn main() -> Result<(), oci_image::Error> {
/// let dir = tempfile::tempdir().unwrap();
/// let layout = oci_image::Layout::create(dir.path())?;
/// let desc = layout.put_blob("text/plain".into(), b"hello")?;
/// assert_eq!(layout.read_blob(&desc, 1024)?, b"hello");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens an existing layout, checking `oci-layout` and its version and that `index.json`
    /// and `blobs/` are there.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let root = path.as_ref().to_path_buf();
        let meta = fs::metadata(&root).map_err(|e| Error::io(&root, e))?;
        if !meta.is_dir() {
            return Err(Error::NotALayout {
                path: root,
                reason: "not a directory".into(),
            });
        }
        let layout_file = root.join("oci-layout");
        let bytes = match fs::read(&layout_file) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotALayout {
                    path: root,
                    reason: "no oci-layout file".into(),
                })
            }
            Err(e) => return Err(Error::io(layout_file, e)),
        };
        let header: OciLayout = parse_json(&bytes, "oci-layout")?;
        if header.image_layout_version() != LAYOUT_VERSION {
            return Err(Error::LayoutVersion {
                path: layout_file,
                version: header.image_layout_version().clone(),
            });
        }
        for (name, want_dir) in [("index.json", false), ("blobs", true)] {
            match fs::symlink_metadata(root.join(name)) {
                Ok(m) if m.is_dir() == want_dir && !m.file_type().is_symlink() => {}
                Ok(_) => {
                    return Err(Error::NotALayout {
                        path: root,
                        reason: format!(
                            "{name} is not a {}",
                            if want_dir {
                                "directory"
                            } else {
                                "regular file"
                            }
                        ),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(Error::NotALayout {
                        path: root,
                        reason: format!("no {name}"),
                    })
                }
                Err(e) => return Err(Error::io(root.join(name), e)),
            }
        }
        Ok(Self { root })
    }

    /// Creates a layout at `path` (and the directory itself if needed), or opens the layout
    /// already there.
    ///
    /// Safe to race: concurrent creators (threads or processes) serialize on the layout lock,
    /// and `oci-layout` is written last, so that [`Layout::open`] never sees a layout without
    /// its `index.json`.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let root = path.as_ref().to_path_buf();
        if root.join("oci-layout").exists() {
            return Self::open(root);
        }
        fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        let layout = Self { root };
        let _lock = layout.lock()?;
        if layout.root.join("oci-layout").exists() {
            drop(_lock);
            return Self::open(&layout.root);
        }
        let blobs = layout.root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;
        if !layout.root.join("index.json").exists() {
            layout.write_index_locked(&empty_index())?;
        }
        let header = serde_json::json!({ "imageLayoutVersion": LAYOUT_VERSION });
        layout.write_atomic(Path::new("oci-layout"), header.to_string().as_bytes())?;
        Ok(layout)
    }

    /// The layout's directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Reads and parses `index.json`.
    pub fn index(&self) -> Result<ImageIndex> {
        let path = self.root.join("index.json");
        let mut f = open_regular(&path).map_err(|e| Error::io(&path, e))?;
        let len = f.metadata().map_err(|e| Error::io(&path, e))?.len();
        if len > MAX_MANIFEST_SIZE {
            return Err(Error::Invalid {
                what: path.display().to_string(),
                reason: format!("{len} bytes, more than the {MAX_MANIFEST_SIZE} byte limit"),
            });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        f.read_to_end(&mut bytes).map_err(|e| Error::io(&path, e))?;
        let index: ImageIndex = parse_json(&bytes, "index.json")?;
        if index.schema_version() != 2 {
            return Err(Error::Json {
                file: "index.json".into(),
                field: "schemaVersion".into(),
                message: format!("must be 2, found {}", index.schema_version()),
            });
        }
        Ok(index)
    }

    /// Replaces `index.json` atomically, under the layout lock.
    ///
    /// Prefer [`Layout::update_index`], which also keeps the updates of concurrent writers.
    pub fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let _lock = self.lock()?;
        self.write_index_locked(index)
    }

    /// [`Layout::write_index`] for a caller that holds the layout lock: every temporary file
    /// in the layout's root is written under it, so whoever holds it may remove the others.
    fn write_index_locked(&self, index: &ImageIndex) -> Result<()> {
        let bytes = serde_json::to_vec(index).map_err(|e| Error::Invalid {
            what: "index.json".into(),
            reason: e.to_string(),
        })?;
        self.write_atomic(Path::new("index.json"), &bytes)
    }

    /// Reads `index.json`, lets `f` change it, and writes it back, holding an exclusive lock on
    /// the layout directory so that concurrent writers (in this or another process) do not lose
    /// each other's updates.
    pub fn update_index<T>(&self, f: impl FnOnce(&mut ImageIndex) -> Result<T>) -> Result<T> {
        let _lock = self.lock()?;
        let mut index = self.index()?;
        let out = f(&mut index)?;
        self.write_index_locked(&index)?;
        Ok(out)
    }

    pub(crate) fn lock(&self) -> Result<File> {
        let dir = File::open(&self.root).map_err(|e| Error::io(&self.root, e))?;
        rustix::fs::flock(&dir, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(&self.root, e.into()))?;
        Ok(dir)
    }

    fn write_atomic(&self, rel: &Path, bytes: &[u8]) -> Result<()> {
        let dest = self.root.join(rel);
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.root)
            .map_err(|e| Error::io(&self.root, e))?;
        tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), e))?;
        set_mode_644(tmp.as_file()).map_err(|e| Error::io(tmp.path(), e))?;
        tmp.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
        Ok(())
    }

    /// Where the blob `digest` lives: `blobs/<alg>/<encoded>`.
    ///
    /// Only registered algorithms are accepted, so the path never leaves `blobs/`.
    pub fn blob_path(&self, digest: &Digest) -> Result<PathBuf> {
        check_registered(digest)?;
        Ok(self
            .root
            .join("blobs")
            .join(digest.algorithm().as_ref())
            .join(digest.digest()))
    }

    /// True if the store holds a blob named `digest` (its content is not checked).
    pub fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest)?;
        match fs::symlink_metadata(&path) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Opens the blob a descriptor names, for streaming.
    ///
    /// The size on disk is checked before any byte is read (so a descriptor that declares a
    /// huge size fails at once); the digest is checked as the reader reaches the end (see
    /// [`VerifyingReader`]). Symlinks in place of blobs are refused.
    pub fn open_blob(&self, desc: &Descriptor) -> Result<VerifyingReader<File>> {
        let digest = desc.digest();
        let path = self.blob_path(digest)?;
        let file = match open_regular(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::BlobNotFound {
                    digest: digest.clone(),
                    path,
                })
            }
            Err(e) if e.raw_os_error() == Some(libc_eloop()) => {
                return Err(Error::NotARegularFile {
                    digest: digest.clone(),
                    path,
                })
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
        if !meta.is_file() {
            return Err(Error::NotARegularFile {
                digest: digest.clone(),
                path,
            });
        }
        if meta.len() != desc.size() {
            return Err(Error::SizeMismatch {
                digest: digest.clone(),
                expected: desc.size(),
                actual: meta.len(),
                at_least: false,
            });
        }
        VerifyingReader::new(file, digest.clone(), desc.size())
    }

    /// Reads a whole blob into memory and verifies it before returning it. Blobs whose
    /// descriptor declares more than `limit` bytes are refused without being read.
    pub fn read_blob(&self, desc: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        self.read_blob_as(desc, limit, "a blob")
    }

    fn read_blob_as(&self, desc: &Descriptor, limit: u64, what: &'static str) -> Result<Vec<u8>> {
        if desc.size() > limit {
            return Err(Error::TooLarge {
                digest: desc.digest().clone(),
                size: desc.size(),
                limit,
                what,
            });
        }
        let path = self.blob_path(desc.digest())?;
        let mut r = self.open_blob(desc)?;
        let mut out = Vec::with_capacity(desc.size() as usize);
        r.read_to_end(&mut out).map_err(|e| Error::io(&path, e))?;
        Ok(out)
    }

    /// Reads, verifies and parses the JSON blob a descriptor names.
    pub fn read_json<T: DeserializeOwned>(&self, desc: &Descriptor, limit: u64) -> Result<T> {
        let bytes = self.read_blob_as(desc, limit, "a JSON document")?;
        parse_json(&bytes, &blob_file_name(desc.digest()))
    }

    /// Reads an image manifest (OCI or Docker schema 2), checking that its content agrees with
    /// the descriptor's media type and that `schemaVersion` is 2.
    pub fn read_manifest(&self, desc: &Descriptor) -> Result<ImageManifest> {
        check_kind(desc, Kind::Manifest, "an image manifest")?;
        let bytes = self.read_blob_as(desc, MAX_MANIFEST_SIZE, "an image manifest")?;
        parse_manifest(&bytes, desc)
    }

    /// Reads an image index (OCI or Docker manifest list), with the same checks as
    /// [`Layout::read_manifest`].
    pub fn read_index(&self, desc: &Descriptor) -> Result<ImageIndex> {
        check_kind(desc, Kind::Index, "an image index")?;
        let bytes = self.read_blob_as(desc, MAX_MANIFEST_SIZE, "an image index")?;
        parse_index(&bytes, desc)
    }

    /// Starts writing a blob of unknown digest; see [`BlobWriter`].
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let blobs = self.root.join("blobs");
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&blobs)
            .map_err(|e| Error::io(&blobs, e))?;
        Ok(BlobWriter {
            layout: self.clone(),
            tmp,
            hasher: Hasher::sha256(),
            size: 0,
        })
    }

    /// Writes `bytes` as a blob and returns its descriptor. Writing a blob the store already
    /// holds is a no-op.
    pub fn put_blob(&self, media_type: MediaType, bytes: &[u8]) -> Result<Descriptor> {
        let digest = crate::digest::sha256_digest(bytes);
        if self.has_blob(&digest)? && self.blob_len(&digest)? == bytes.len() as u64 {
            return descriptor(media_type, digest, bytes.len() as u64);
        }
        let mut w = self.blob_writer()?;
        w.write_all(bytes)
            .map_err(|e| Error::io(self.root.join("blobs"), e))?;
        let (digest, size) = w.commit(None)?;
        descriptor(media_type, digest, size)
    }

    /// Serializes `value` as JSON and writes it as a blob.
    pub fn put_json<T: Serialize>(&self, media_type: MediaType, value: &T) -> Result<Descriptor> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Invalid {
            what: media_type.to_string(),
            reason: e.to_string(),
        })?;
        self.put_blob(media_type, &bytes)
    }

    fn blob_len(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest)?;
        fs::symlink_metadata(&path)
            .map(|m| m.len())
            .map_err(|e| Error::io(path, e))
    }
}

/// Streams a new blob into the store: bytes go to a temporary file under `blobs/` while they
/// are hashed, and [`BlobWriter::commit`] renames the file into place under its digest. A
/// writer dropped without commit leaves nothing behind.
#[derive(Debug)]
pub struct BlobWriter {
    layout: Layout,
    tmp: tempfile::NamedTempFile,
    hasher: Hasher,
    size: u64,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tmp.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Finishes the blob: syncs it, checks it against `expected` if given (a pull knows the
    /// digest in advance), and renames it into place. Returns the digest and size.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        self.tmp
            .flush()
            .map_err(|e| Error::io(self.tmp.path(), e))?;
        let digest = self.hasher.finish();
        if let Some(expected) = expected {
            if *expected != digest {
                return Err(Error::DigestMismatch {
                    expected: expected.clone(),
                    actual: digest.to_string(),
                });
            }
        }
        let tmp_path = self.tmp.path().to_path_buf();
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| Error::io(&tmp_path, e))?;
        set_mode_644(self.tmp.as_file()).map_err(|e| Error::io(&tmp_path, e))?;
        let dest = self.layout.blob_path(&digest)?;
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        self.tmp
            .persist(&dest)
            .map_err(|e| Error::io(&dest, e.error))?;
        Ok((digest, self.size))
    }
}

impl Layout {
    /// Opens (or starts) the resumable download of the blob `digest`: see [`PartialBlob`].
    ///
    /// The bytes kept from an earlier, interrupted attempt are hashed again, so that the
    /// download can continue at [`PartialBlob::offset`] and still be verified as a whole.
    /// Blocks while another writer (a thread or another process) holds the same blob.
    ///
    /// ```
    /// # fn main() -> Result<(), oci_image::Error> {
    /// use std::io::Write;
    /// let dir = tempfile::tempdir().unwrap();
    /// let layout = oci_image::Layout::create(dir.path())?;
    /// let digest = oci_image::sha256_digest(b"hello world");
    ///
    /// let mut p = layout.partial_blob(&digest)?;
    /// p.write_all(b"hello ").unwrap();
    /// drop(p); // interrupted: the six bytes stay
    ///
    /// let mut p = layout.partial_blob(&digest)?;
    /// assert_eq!(p.offset(), 6);
    /// p.write_all(b"world").unwrap();
    /// assert_eq!(p.commit()?, 11);
    /// assert!(layout.has_blob(&digest)?);
    /// # Ok(()) }
    /// ```
    pub fn partial_blob(&self, digest: &Digest) -> Result<PartialBlob> {
        use std::os::unix::fs::MetadataExt;
        check_registered(digest)?;
        let blobs = self.root.join("blobs");
        // `.tmp-` so that gc removes partial downloads abandoned for more than an hour.
        let path = blobs.join(format!(
            ".tmp-partial-{}-{}",
            digest.algorithm(),
            digest.digest()
        ));
        let file = loop {
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .mode(0o644)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
                .map_err(|e| Error::io(&path, e.into()))?;
            // The writer that held the lock may have committed (renamed) the file we opened:
            // only the file still at `path` is ours to continue.
            let held = file.metadata().map_err(|e| Error::io(&path, e))?;
            match fs::symlink_metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => break file,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&path, e)),
            }
        };
        let mut hasher = Hasher::new(digest.algorithm())?;
        let mut size = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        let mut reader = &file;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(&path, e)),
            };
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok(PartialBlob {
            layout: self.clone(),
            digest: digest.clone(),
            path,
            file,
            hasher,
            size,
        })
    }
}

/// A blob being downloaded in a way that survives interruption: the bytes go to
/// `blobs/.tmp-partial-<alg>-<encoded>`, which stays when the writer is dropped, so that the
/// next [`Layout::partial_blob`] for the same digest continues where this one stopped (a
/// registry pull asks for the rest with an HTTP `Range`). [`PartialBlob::commit`] verifies
/// the whole content against the digest and renames it into place.
///
/// The file is locked while the writer lives, so concurrent pulls of the same blob take turns
/// rather than interleave their bytes. Stale partial files are removed by [`Layout::gc`]
/// after an hour, or at once by [`Layout::gc_with`] with [`crate::GcOptions::partials`]
/// (never while a writer holds one).
///
/// ```
/// # fn main() -> Result<(), oci_image::Error> {
/// use std::io::Write;
/// let dir = tempfile::tempdir().unwrap();
/// let layout = oci_image::Layout::create(dir.path())?;
/// let mut p = layout.partial_blob(&oci_image::sha256_digest(b"abc"))?;
/// p.write_all(b"abd").unwrap();
/// assert!(matches!(p.commit(), Err(oci_image::Error::DigestMismatch { .. })));
/// // A mismatching download is discarded, not resumed.
/// assert_eq!(layout.partial_blob(&oci_image::sha256_digest(b"abc"))?.offset(), 0);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PartialBlob {
    layout: Layout,
    digest: Digest,
    path: PathBuf,
    file: File,
    hasher: Hasher,
    size: u64,
}

impl Write for PartialBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl PartialBlob {
    /// The digest the content must have.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Bytes held so far: where the download continues.
    pub fn offset(&self) -> u64 {
        self.size
    }

    /// The partial file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Drops the bytes held so far and starts again from zero (for a server that does not
    /// honour `Range`, or held bytes that turned out wrong).
    pub fn reset(&mut self) -> Result<()> {
        self.file.set_len(0).map_err(|e| Error::io(&self.path, e))?;
        self.hasher = Hasher::new(self.digest.algorithm())?;
        self.size = 0;
        Ok(())
    }

    /// Removes the partial file.
    pub fn discard(self) -> Result<()> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }

    /// Checks the content against the digest, syncs it and renames it into
    /// `blobs/<alg>/<encoded>`; returns its size. On a digest mismatch the partial file is
    /// removed (its bytes cannot be trusted for a later resume) and
    /// [`Error::DigestMismatch`] is returned.
    pub fn commit(self) -> Result<u64> {
        let actual = self.hasher.clone().finish();
        if actual != self.digest {
            let expected = self.digest.clone();
            self.discard()?;
            return Err(Error::DigestMismatch {
                expected,
                actual: actual.to_string(),
            });
        }
        self.file.sync_all().map_err(|e| Error::io(&self.path, e))?;
        set_mode_644(&self.file).map_err(|e| Error::io(&self.path, e))?;
        let dest = self.layout.blob_path(&self.digest)?;
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        fs::rename(&self.path, &dest).map_err(|e| Error::io(&dest, e))?;
        Ok(self.size)
    }
}

fn descriptor(media_type: MediaType, digest: Digest, size: u64) -> Result<Descriptor> {
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(digest)
        .size(size)
        .build()
        .map_err(|e| Error::Invalid {
            what: "descriptor".into(),
            reason: e.to_string(),
        })
}

pub(crate) fn empty_index() -> ImageIndex {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::<Descriptor>::new())
        .build()
        .unwrap_or_else(|_| unreachable!("all required fields are set"))
}

/// `blobs/<alg>/<encoded>`, as errors name a blob.
pub(crate) fn blob_file_name(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.digest())
}

fn libc_eloop() -> i32 {
    rustix::io::Errno::LOOP.raw_os_error()
}

/// Opens a file for reading without following a symlink in its last component.
fn open_regular(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(
            rustix::fs::OFlags::NOFOLLOW.bits() as i32 | rustix::fs::OFlags::CLOEXEC.bits() as i32,
        )
        .open(path)
}

fn set_mode_644(f: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(fs::Permissions::from_mode(0o644))
}

/// Parses JSON, naming the file and the JSON path of the field on error.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8], file: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(de).map_err(|e| Error::Json {
        file: file.to_string(),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    Ok(value)
}

/// Parses an image manifest (OCI or Docker schema 2) from bytes already verified against
/// `desc`: the descriptor's media type must be a manifest type, the content's `mediaType` (if
/// any) must agree with it, the content must not have the shape of an index, and
/// `schemaVersion` must be 2. Errors name the blob and the JSON field.
pub fn parse_manifest(bytes: &[u8], desc: &Descriptor) -> Result<ImageManifest> {
    check_kind(desc, Kind::Manifest, "an image manifest")?;
    check_document_shape(bytes, desc, Kind::Manifest)?;
    parse_json(bytes, &blob_file_name(desc.digest()))
}

/// Parses an image index (OCI or Docker manifest list) with the checks of [`parse_manifest`].
pub fn parse_index(bytes: &[u8], desc: &Descriptor) -> Result<ImageIndex> {
    check_kind(desc, Kind::Index, "an image index")?;
    check_document_shape(bytes, desc, Kind::Index)?;
    parse_json(bytes, &blob_file_name(desc.digest()))
}

/// Parses an image config (config.md), naming the blob and JSON field on error.
pub fn parse_config(bytes: &[u8], desc: &Descriptor) -> Result<ImageConfiguration> {
    parse_json(bytes, &blob_file_name(desc.digest()))
}

fn check_kind(desc: &Descriptor, want: Kind, what: &'static str) -> Result<()> {
    let mt = desc.media_type().to_string();
    match media_type::kind_of(&mt) {
        k if k == want => Ok(()),
        Kind::Schema1 => Err(Error::Schema1 {
            digest: desc.digest().clone(),
            media_type: mt,
        }),
        _ => Err(Error::UnexpectedMediaType {
            digest: desc.digest().clone(),
            media_type: mt,
            expected: what,
        }),
    }
}

/// The fields that tell a manifest from an index, whatever the descriptor claims.
#[derive(serde::Deserialize)]
struct Shape {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<serde_json::Value>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
    config: Option<serde::de::IgnoredAny>,
    layers: Option<serde::de::IgnoredAny>,
    #[serde(rename = "fsLayers")]
    fs_layers: Option<serde::de::IgnoredAny>,
}

/// manifest.md and image-index.md: the `mediaType` property, when present, must agree with the
/// descriptor; and a document that has the shape of the other kind is refused even without it
/// (a descriptor whose media type lies must not make an index be read as a manifest).
fn check_document_shape(bytes: &[u8], desc: &Descriptor, want: Kind) -> Result<()> {
    let file = blob_file_name(desc.digest());
    let shape: Shape = parse_json(bytes, &file)?;
    let declared = desc.media_type().to_string();
    let mismatch = |content: String| Error::MediaTypeMismatch {
        digest: desc.digest().clone(),
        descriptor: declared.clone(),
        content,
    };
    if shape.fs_layers.is_some() {
        return Err(Error::Schema1 {
            digest: desc.digest().clone(),
            media_type: shape.media_type.unwrap_or_else(|| "(none)".into()),
        });
    }
    if let Some(mt) = &shape.media_type {
        if *mt != declared {
            return Err(mismatch(mt.clone()));
        }
    }
    let looks_like = match (
        shape.manifests.is_some(),
        shape.config.is_some() || shape.layers.is_some(),
    ) {
        (true, false) => Some(Kind::Index),
        (false, true) => Some(Kind::Manifest),
        _ => None,
    };
    match (want, looks_like) {
        (Kind::Manifest, Some(Kind::Index)) => {
            return Err(mismatch("an image index (it has \"manifests\")".into()))
        }
        (Kind::Index, Some(Kind::Manifest)) => {
            return Err(mismatch(
                "an image manifest (it has \"config\"/\"layers\")".into(),
            ))
        }
        _ => {}
    }
    match shape.schema_version {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(2) => Ok(()),
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(1) => Err(Error::Schema1 {
            digest: desc.digest().clone(),
            media_type: declared,
        }),
        Some(other) => Err(Error::Json {
            file,
            field: "schemaVersion".into(),
            message: format!("must be 2, found {other}"),
        }),
        None => Err(Error::Json {
            file,
            field: "schemaVersion".into(),
            message: "missing (it must be 2)".into(),
        }),
    }
}
