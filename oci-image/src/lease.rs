//! Leases: content in flight that [`Layout::gc`] must not collect.
//!
//! A pull writes blobs first and tags last; between the two, nothing in `index.json` reaches
//! those blobs, and a concurrent `gc` (in this process or another) would take them. A lease,
//! as containerd's content store has, makes them roots of the collection until it ends.
//!
//! On disk a lease is a file under `.leases/` in the layout, one digest per line, held with an
//! exclusive `flock(2)` for as long as its [`Lease`] lives. The lock is what makes the lease
//! live: a writer killed with SIGKILL loses it with its file descriptors, and the next `gc` or
//! lease creation removes the file. Three rules make this race-free, all under the layout lock
//! that `gc` holds for its whole run:
//! - a lease is created and locked under the layout lock, so `gc` never sees an unlocked live
//!   lease;
//! - [`Lease::add`] appends under the layout lock, so a digest is either seen by a running `gc`
//!   or added after it ended; a writer adds a digest before it looks for the blob, so what it
//!   finds present stays present;
//! - the lease is dropped only after the tag is written (under the same lock), so the content
//!   is reachable from `index.json` before it stops being leased.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use oci_spec::image::Digest;

use crate::error::{Error, Result};
use crate::layout::Layout;

/// The directory of lease files inside a layout.
pub(crate) const LEASES_DIR: &str = ".leases";

/// Content protected from [`Layout::gc`] while this value lives (see [`Layout::lease`]).
///
/// ```
/// # fn main() -> Result<(), oci_image::Error> {
/// let dir = tempfile::tempdir().unwrap();
/// let layout = oci_image::Layout::create(dir.path())?;
/// let lease = layout.lease()?;
/// let desc = layout.put_blob("text/plain".into(), b"in flight")?;
/// lease.add([desc.digest()])?;
/// assert!(layout.gc()?.removed.is_empty()); // untagged, but leased
/// drop(lease);
/// assert_eq!(layout.gc()?.removed, vec![desc.digest().clone()]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Lease {
    layout: Layout,
    path: PathBuf,
    file: File,
}

impl Layout {
    /// Starts a lease: the blobs [`Lease::add`] names are not collected by [`Layout::gc`]
    /// (in this process or any other) until the lease is dropped. Also removes the leases of
    /// writers that died.
    pub fn lease(&self) -> Result<Lease> {
        let dir = self.path().join(LEASES_DIR);
        let _lock = self.lock()?;
        self.sweep_locked()?;
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let tmp = tempfile::Builder::new()
            .prefix("lease-")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))?;
        let (file, path) = tmp.keep().map_err(|e| Error::io(&dir, e.error))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(&path, e.into()))?;
        Ok(Lease {
            layout: self.clone(),
            path,
            file,
        })
    }

    /// The digests named by live leases; removes the files of dead ones. The caller holds the
    /// layout lock.
    pub(crate) fn leased_locked(&self) -> Result<HashSet<Digest>> {
        let dir = self.path().join(LEASES_DIR);
        let mut out = HashSet::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let path = entry.path();
            let file = match OpenOptions::new()
                .read(true)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(path, e)),
            };
            if !file.metadata().is_ok_and(|m| m.is_file()) {
                continue;
            }
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                // Nobody holds it: its writer is gone.
                Ok(()) => remove_if_exists(&path)?,
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    let mut text = String::new();
                    (&file)
                        .read_to_string(&mut text)
                        .map_err(|e| Error::io(&path, e))?;
                    out.extend(
                        text.lines()
                            .filter_map(|l| crate::digest::parse_digest(l.trim()).ok()),
                    );
                }
                Err(e) => return Err(Error::io(path, e.into())),
            }
        }
        Ok(out)
    }

    /// Removes what dead writers left that only a holder of the layout lock writes: leases
    /// nobody holds, and `index.json` temporaries in the layout's root. Returns how many
    /// temporaries were removed. The caller holds the layout lock.
    pub(crate) fn sweep_locked(&self) -> Result<usize> {
        self.leased_locked()?;
        let mut removed = 0;
        let root = self.path();
        for entry in fs::read_dir(root).map_err(|e| Error::io(root, e))? {
            let entry = entry.map_err(|e| Error::io(root, e))?;
            if entry.file_name().to_string_lossy().starts_with(".tmp-")
                && entry.file_type().is_ok_and(|t| t.is_file())
            {
                remove_if_exists(&entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

impl Lease {
    /// Protects `digests` (blobs written or about to be written) until the lease ends. Add a
    /// digest before checking whether its blob is present: then a blob found present stays.
    pub fn add<'a>(&self, digests: impl IntoIterator<Item = &'a Digest>) -> Result<()> {
        let mut text = String::new();
        for d in digests {
            text.push_str(d.as_ref());
            text.push('\n');
        }
        if text.is_empty() {
            return Ok(());
        }
        let _lock = self.layout.lock()?;
        (&self.file)
            .write_all(text.as_bytes())
            .map_err(|e| Error::io(&self.path, e))
    }

    /// The lease file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}
