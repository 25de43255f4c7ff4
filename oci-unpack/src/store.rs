//! The layer store: each layer unpacked once, in overlayfs form, into a directory named by its
//! chain ID, shared between images, reference-counted by owner, and stacked with overlayfs for a
//! container.
//!
//! On disk:
//! ```text
//! <store>/lock                         flock(2) taken while refs change
//! <store>/layers/<chain hex>/diff/     the layer's files, whiteouts as overlayfs reads them
//! <store>/layers/<chain hex>/diff_id   the layer's diff_id
//! <store>/layers/<chain hex>/overlay_xattrs  `trusted` (unpacked as root) or `user` (rootless):
//!                                      where its opaque and whiteout xattrs are
//! <store>/layers/<chain hex>/refs/<owner>
//! <store>/owners/<owner>               the chain IDs an owner holds, one per line
//! <store>/mounts/<lease>               an overlay mounted from the store: its directory, then
//!                                      the chain IDs it stacks, one per line
//! <store>/tmp/                         private directories of unpacks in progress, each locked
//!                                      (flock) by its writer
//! ```
//! A layer is unpacked under `tmp/` and renamed into `layers/` only once it verified, so
//! `layers/` holds only complete layers. A layer stays while an owner references it or a
//! mount stacks it: [`LayerStore::release`] leaves a mounted layer in place, and the unmount
//! that ends its last use removes it. Owners and mounts are separate on purpose: an owner can
//! be a container or an image name, whichever policy the caller has for keeping layers.
//!
//! Crash safety: what a process killed at any instruction leaves is a private directory under
//! `tmp/` that no writer locks any more, or a mount record whose overlay is no longer mounted,
//! or a layer nobody references; [`LayerStore::open`] reclaims the first, [`LayerStore::gc`]
//! all three.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use oci_image::{Hasher, Image, Layout};
use oci_spec::image::Digest;
use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount, unmount,
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, UnmountFlags,
};

use crate::apply::{Deferred, Form};
use crate::fs::Root;
use crate::{Counters, Error, PrivateDir, Result, Unpacker};

/// The chain IDs of a stack of layers, base first (image-spec config.md, "Layer ChainID"):
/// `ChainID(L0) = DiffID(L0)` and `ChainID(L0|…|Ln) = sha256(ChainID(L0|…|Ln-1) + " " + DiffID(Ln))`.
///
/// ```
/// let a: oci_image::spec::image::Digest =
///     "sha256:a9561eb1b190625c9adb5a9513e72c4dedafc1cb2d4c5236c9a6957ec7dfd5a9".parse().unwrap();
/// let ids = oci_unpack::chain_ids(&[a.clone(), a.clone()]);
/// assert_eq!(ids[0], a);
/// assert_ne!(ids[1], a);
/// ```
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let mut h = Hasher::sha256();
                h.update(prev.to_string().as_bytes());
                h.update(b" ");
                h.update(d.to_string().as_bytes());
                h.finish()
            }
        };
        out.push(next);
    }
    out
}

/// A layer held by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLayer {
    /// The layer's chain ID.
    pub chain_id: Digest,
    /// The directory holding the layer's files (an overlayfs lower directory).
    pub path: PathBuf,
    /// The owners holding a reference to it, sorted.
    pub refs: Vec<String>,
}

/// A store of unpacked layers keyed by chain ID. See the module docs for the layout on disk.
#[derive(Debug, Clone)]
pub struct LayerStore {
    root: PathBuf,
}

/// A layer unpacked into a private directory, with its hardlinks to lower layers still to do.
struct Built {
    dir: PrivateDir,
    links: Vec<crate::lower::LowerLink>,
}

/// Completes a built layer's hardlinks to lower layers (`lowers`: the layers' `diff`
/// directories, this one first) and records its tree digest.
fn resolve_links(
    built: &Built,
    lowers: &[PathBuf],
    prefix: &'static str,
    digest: &Digest,
) -> Result<()> {
    let stack = crate::lower::Stack::open(lowers, prefix).map_err(|e| Error::io(&lowers[0], e))?;
    crate::lower::resolve(&stack, &built.links).map_err(|(entry, op, source)| Error::Apply {
        digest: digest.clone(),
        entry: String::from_utf8_lossy(&entry).into_owned(),
        op,
        source,
    })?;
    record_tree(built.dir.path())
}

/// Writes the digest of `layer_dir/diff` into `layer_dir/tree` (see the `tree` module).
fn record_tree(layer_dir: &Path) -> Result<()> {
    let diff = layer_dir.join("diff");
    let d = crate::tree::tree_digest(&diff).map_err(|e| Error::io(&diff, e))?;
    let p = layer_dir.join(TREE_FILE);
    std::fs::write(&p, format!("{d}\n")).map_err(|e| Error::io(&p, e))
}

/// The file in a layer's directory holding the digest of its tree at unpack time.
const TREE_FILE: &str = "tree";
/// The file naming the layer blob: media type, digest, size, one a line.
const BLOB_FILE: &str = "blob";
/// The file naming the chain ID of the layer below (empty for a base layer).
const PARENT_FILE: &str = "parent";

/// What [`LayerStore::verify`] found for one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerState {
    /// The tree hashes to the digest recorded when it was unpacked.
    Intact,
    /// The tree changed since it was unpacked.
    Modified {
        /// The digest recorded at unpack time.
        recorded: Digest,
        /// The digest of the tree now.
        actual: Digest,
    },
    /// The layer was unpacked by a version that recorded no digest: it cannot be checked.
    Unrecorded,
}

/// One layer checked by [`LayerStore::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerCheck {
    /// The layer's chain ID.
    pub chain_id: Digest,
    /// What was found.
    pub state: LayerState,
}

/// Holds the store's lock until dropped.
struct Lock(#[allow(dead_code)] File);

impl LayerStore {
    /// Opens the store at `path`, creating it if needed, and removes the private directories
    /// that killed unpacks left in `tmp/` (never one a live unpack holds).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let root = path.as_ref().to_path_buf();
        for d in ["layers", "owners", "mounts", "tmp"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
        crate::reclaim_private_dirs(&root.join("tmp"))?;
        Ok(LayerStore { root })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn lock(&self) -> Result<Lock> {
        let p = self.root.join("lock");
        let f = File::options()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| Error::io(&p, e))?;
        flock(f.as_fd(), FlockOperation::LockExclusive).map_err(|e| Error::io(&p, e))?;
        Ok(Lock(f))
    }

    fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        // Chain IDs are parsed digests: the encoded part is hex, safe as a file name.
        self.root
            .join("layers")
            .join(format!("{}-{}", chain_id.algorithm(), chain_id.digest()))
    }

    /// The directory holding the files of the layer `chain_id` (whether or not it exists).
    pub fn diff_path(&self, chain_id: &Digest) -> PathBuf {
        self.layer_dir(chain_id).join("diff")
    }

    /// True if the layer `chain_id` is in the store.
    pub fn contains(&self, chain_id: &Digest) -> bool {
        self.diff_path(chain_id).is_dir()
    }

    /// Makes every layer of `image` present (unpacking the missing ones, in parallel) and
    /// records `owner` as holding a reference to each. Returns the image's chain IDs, base first.
    ///
    /// `owner` names who uses the layers (a container, an image name): letters, digits, `.`,
    /// `_` and `-`, not starting with `.`. Calling it again for the same owner adds the image's
    /// layers to what the owner holds.
    pub fn prepare(
        &self,
        unpacker: &Unpacker,
        layout: &Layout,
        image: &Image,
        owner: &str,
    ) -> Result<Vec<Digest>> {
        check_owner(owner)?;
        let diff_ids: Vec<Digest> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
        let chain = chain_ids(&diff_ids);
        // Layers can be added concurrently by others: unpack what is missing without the
        // lock, then take it to publish and reference; retry if a layer vanished meanwhile.
        for _attempt in 0..3 {
            let missing: Vec<usize> = (0..chain.len())
                .filter(|&i| !self.contains(&chain[i]))
                .collect();
            let built = self.unpack_missing(unpacker, layout, image, &chain, &missing)?;
            let _lock = self.lock()?;
            for (i, dir) in built {
                let dest = self.layer_dir(&chain[i]);
                match std::fs::rename(dir.path(), &dest) {
                    Ok(()) => dir.disarm(),
                    // Someone else published it first: ours goes (dropped).
                    Err(e) if dest.is_dir() => drop(e),
                    Err(e) => return Err(Error::io(&dest, e)),
                }
            }
            if chain.iter().all(|c| self.contains(c)) {
                for c in &chain {
                    let refs = self.layer_dir(c).join("refs");
                    std::fs::create_dir_all(&refs).map_err(|e| Error::io(&refs, e))?;
                    let r = refs.join(owner);
                    File::create(&r).map_err(|e| Error::io(&r, e))?;
                }
                let mut held = self.owned(owner)?;
                for c in &chain {
                    if !held.contains(c) {
                        held.push(c.clone());
                    }
                }
                self.write_owned(owner, &held)?;
                return Ok(chain);
            }
        }
        Err(Error::Invalid {
            what: format!("layer store {}", self.root.display()),
            reason: "layers were removed while they were being prepared, three times".into(),
        })
    }

    fn unpack_missing(
        &self,
        unpacker: &Unpacker,
        layout: &Layout,
        image: &Image,
        chain: &[Digest],
        missing: &[usize],
    ) -> Result<Vec<(usize, PrivateDir)>> {
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let tmp = self.root.join("tmp");
        let counters = Counters::default();
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<(usize, Result<Built>)>> = Mutex::new(Vec::new());
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(missing.len());
        // Layers in overlayfs form are independent of each other: whiteouts are recorded, not
        // applied, so they unpack in parallel.
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = missing.get(k) else { break };
                    let parent = i.checked_sub(1).map(|p| &chain[p]);
                    let r = self.unpack_one(
                        unpacker,
                        layout,
                        &image.layers[i],
                        &chain[i],
                        parent,
                        &tmp,
                        &counters,
                    );
                    let failed = r.is_err();
                    if let Ok(mut v) = results.lock() {
                        v.push((i, r));
                    }
                    if failed {
                        // Stop the other workers early: nothing will be published.
                        next.store(missing.len(), Ordering::Relaxed);
                        break;
                    }
                });
            }
        });
        let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
        results.sort_by_key(|(i, _)| *i);
        let mut out = Vec::with_capacity(results.len());
        let mut first_err = None;
        for (i, r) in results {
            match r {
                Ok(d) => out.push((i, d)),
                Err(e) if first_err.is_none() => first_err = Some(e),
                Err(_) => {}
            }
        }
        if let Some(e) = first_err {
            // The built directories are dropped, and removed, with `out`.
            return Err(e);
        }
        // Hardlinks to files of lower layers, now that every layer below each is there.
        let prefix = if unpacker.rootless {
            "user.overlay."
        } else {
            "trusted.overlay."
        };
        for k in 0..out.len() {
            let (i, built) = &out[k];
            if built.links.is_empty() {
                continue;
            }
            let mut dirs = vec![built.dir.path().join("diff")];
            for below in (0..*i).rev() {
                dirs.push(match out.iter().find(|(j, _)| *j == below) {
                    Some((_, b)) => b.dir.path().join("diff"),
                    None => self.diff_path(&chain[below]),
                });
            }
            resolve_links(built, &dirs, prefix, image.layers[*i].descriptor.digest())?;
        }
        Ok(out.into_iter().map(|(i, b)| (i, b.dir)).collect())
    }

    #[allow(clippy::too_many_arguments)]
    fn unpack_one(
        &self,
        unpacker: &Unpacker,
        layout: &Layout,
        layer: &oci_image::Layer,
        chain_id: &Digest,
        parent: Option<&Digest>,
        tmp: &Path,
        counters: &Counters,
    ) -> Result<Built> {
        let dir = PrivateDir::new(tmp, unpacker.rootless)?;
        let diff = dir.path().join("diff");
        std::fs::create_dir(&diff).map_err(|e| Error::io(&diff, e))?;
        let root = Root::open(&diff).map_err(|e| Error::io(&diff, e))?;
        let form = Form::Overlay {
            xattr_prefix: if unpacker.rootless {
                "user.overlay."
            } else {
                "trusted.overlay."
            },
        };
        let blob = layout.open_blob(&layer.descriptor)?;
        let mut deferred = Deferred::default();
        unpacker.apply_verified(
            &root,
            blob,
            &layer.descriptor,
            Some(&layer.diff_id),
            form,
            counters,
            &mut deferred,
        )?;
        let d = &layer.descriptor;
        for (name, content) in [
            ("diff_id", layer.diff_id.to_string()),
            ("chain_id", chain_id.to_string()),
            (XATTRS_FILE, xattr_form(unpacker.rootless).to_string()),
            // What `repair` needs to unpack the layer again from a layout holding its blob.
            (
                BLOB_FILE,
                format!("{}\n{}\n{}\n", d.media_type(), d.digest(), d.size()),
            ),
            (
                PARENT_FILE,
                parent.map(|p| format!("{p}\n")).unwrap_or_default(),
            ),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, content).map_err(|e| Error::io(&p, e))?;
        }
        let refs = dir.path().join("refs");
        std::fs::create_dir(&refs).map_err(|e| Error::io(&refs, e))?;
        let built = Built {
            dir,
            links: deferred.links,
        };
        if built.links.is_empty() {
            record_tree(built.dir.path())?;
        }
        Ok(built)
    }

    fn owner_file(&self, owner: &str) -> PathBuf {
        self.root.join("owners").join(owner)
    }

    fn owned(&self, owner: &str) -> Result<Vec<Digest>> {
        let p = self.owner_file(owner);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&p, e)),
        };
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| Ok(oci_image::parse_digest(l)?))
            .collect()
    }

    fn write_owned(&self, owner: &str, held: &[Digest]) -> Result<()> {
        let p = self.owner_file(owner);
        let tmp = self.root.join("owners").join(format!(".{owner}.tmp"));
        let text: String = held.iter().map(|d| format!("{d}\n")).collect();
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &p).map_err(|e| Error::io(&p, e))
    }

    /// Drops every reference `owner` holds and removes the layers nobody references any more
    /// and no mounted overlay stacks (those go when their last overlay is unmounted with
    /// [`OverlayMount::unmount`] or [`LayerStore::unmount`]). Returns the chain IDs removed.
    pub fn release(&self, owner: &str) -> Result<Vec<Digest>> {
        check_owner(owner)?;
        let _lock = self.lock()?;
        let held = self.owned(owner)?;
        for c in &held {
            let r = self.layer_dir(c).join("refs").join(owner);
            match std::fs::remove_file(&r) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&r, e)),
            }
        }
        let removed = self.remove_unused(&held)?;
        let p = self.owner_file(owner);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&p, e)),
        }
        Ok(removed)
    }

    /// Removes those of `candidates` that no owner references and no live mount stacks. The
    /// caller holds the store lock.
    fn remove_unused(&self, candidates: &[Digest]) -> Result<Vec<Digest>> {
        let mounted = self.mounted_layers()?;
        let mut removed = Vec::new();
        for c in candidates {
            let dir = self.layer_dir(c);
            if mounted.contains(c) || !self.refs_of(c)?.is_empty() || !dir.exists() {
                continue;
            }
            // Out of `layers/` in one rename, then removed at leisure (a crash in between
            // leaves a private directory that the next open reclaims).
            let grave = PrivateDir::new(&self.root.join("tmp"), false)?;
            let dest = grave.path().join("layer");
            std::fs::rename(&dir, &dest).map_err(|e| Error::io(&dir, e))?;
            drop(grave);
            removed.push(c.clone());
        }
        Ok(removed)
    }

    /// The mount records in `mounts/`: (record path, its overlay, the chain IDs it stacks).
    fn leases(&self) -> Result<Vec<(PathBuf, MountLease)>> {
        let dir = self.root.join("mounts");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let p = e.path();
            let text = match std::fs::read_to_string(&p) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&p, e)),
            };
            out.push((p, MountLease::parse(&text)?));
        }
        Ok(out)
    }

    /// The chain IDs stacked by overlays that are still mounted.
    fn mounted_layers(&self) -> Result<std::collections::HashSet<Digest>> {
        let mut out = std::collections::HashSet::new();
        for (_, lease) in self.leases()? {
            if lease.is_mounted() {
                out.extend(lease.chain);
            }
        }
        Ok(out)
    }

    fn lease_path(&self, container_dir: &Path) -> PathBuf {
        let h = oci_image::sha256_digest(container_dir.as_os_str().as_encoded_bytes());
        self.root.join("mounts").join(&h.digest()[..32])
    }

    /// Unmounts the overlay [`LayerStore::mount`] made in `container_dir` (one kept with
    /// [`OverlayMount::keep`]), removes what the mount made there (`upper`, `work`, `merged`
    /// if it created it, and `container_dir` itself if it created it and it is now empty), and
    /// removes the layers that only this mount still used.
    ///
    /// An overlay that is not mounted any more (the machine restarted) is cleaned up the
    /// same way. Returns the chain IDs removed.
    pub fn unmount(&self, container_dir: impl AsRef<Path>) -> Result<Vec<Digest>> {
        let dir = absolute(container_dir.as_ref())?;
        let lease_path = self.lease_path(&dir);
        let lease = match std::fs::read_to_string(&lease_path) {
            Ok(t) => Some(MountLease::parse(&t)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&lease_path, e)),
        };
        let made = lease.as_ref().map(|l| l.made).unwrap_or_default();
        detach(&dir.join("merged"))?;
        clean_container_dir(&dir, made)?;
        let _lock = self.lock()?;
        match std::fs::remove_file(&lease_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&lease_path, e)),
        }
        self.remove_unused(&lease.map(|l| l.chain).unwrap_or_default())
    }

    /// Rehashes every layer's tree and compares it with the digest recorded when the layer
    /// was unpacked: an edit under `layers/…/diff` (content, a mode, an owner, an xattr, a file
    /// added or removed) shows as [`LayerState::Modified`]. [`LayerStore::repair`] restores
    /// such a layer from its blob.
    pub fn verify(&self) -> Result<Vec<LayerCheck>> {
        let mut out = Vec::new();
        for l in self.layers()? {
            out.push(LayerCheck {
                state: self.check_layer(&l.chain_id)?,
                chain_id: l.chain_id,
            });
        }
        Ok(out)
    }

    fn check_layer(&self, chain_id: &Digest) -> Result<LayerState> {
        let p = self.layer_dir(chain_id).join(TREE_FILE);
        let recorded = match std::fs::read_to_string(&p) {
            Ok(t) => oci_image::parse_digest(t.trim())?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LayerState::Unrecorded),
            Err(e) => return Err(Error::io(&p, e)),
        };
        let diff = self.diff_path(chain_id);
        let actual = crate::tree::tree_digest(&diff).map_err(|e| Error::io(&diff, e))?;
        Ok(if actual == recorded {
            LayerState::Intact
        } else {
            LayerState::Modified { recorded, actual }
        })
    }

    /// Unpacks the layer `chain_id` again from its blob in `layout` (the blob it was unpacked
    /// from, recorded then) and puts the fresh tree in place of the stored one, keeping its
    /// references. Refused while a mounted overlay stacks the layer (overlayfs forbids
    /// changing a lower directory under a mount): unmount first.
    pub fn repair(&self, unpacker: &Unpacker, layout: &Layout, chain_id: &Digest) -> Result<()> {
        self.refuse_mounted(chain_id)?;
        let dir = self.layer_dir(chain_id);
        let read = |name: &str| -> Result<String> {
            let p = dir.join(name);
            std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))
        };
        let blob = read(BLOB_FILE)?;
        let bad = || Error::Invalid {
            what: format!("layer {chain_id}"),
            reason: format!("malformed {BLOB_FILE} record: {blob:?}"),
        };
        let mut lines = blob.lines();
        let (media_type, digest, size) = (
            lines.next().ok_or_else(bad)?,
            lines.next().ok_or_else(bad)?,
            lines.next().ok_or_else(bad)?,
        );
        let descriptor = oci_spec::image::Descriptor::new(
            media_type.into(),
            size.parse().map_err(|_| bad())?,
            oci_image::parse_digest(digest)?,
        );
        let layer = oci_image::Layer {
            descriptor,
            diff_id: oci_image::parse_digest(read("diff_id")?.trim())?,
        };
        // The layers below, for hardlinks into them.
        let parent = match read(PARENT_FILE)?.trim() {
            "" => None,
            p => Some(oci_image::parse_digest(p)?),
        };
        let mut lowers = Vec::new();
        let mut below = parent.clone();
        while let Some(c) = below {
            lowers.push(self.diff_path(&c));
            let p = self.layer_dir(&c).join(PARENT_FILE);
            below = match std::fs::read_to_string(&p)
                .map_err(|e| Error::io(&p, e))?
                .trim()
            {
                "" => None,
                p => Some(oci_image::parse_digest(p)?),
            };
        }
        let built = self.unpack_one(
            unpacker,
            layout,
            &layer,
            chain_id,
            parent.as_ref(),
            &self.root.join("tmp"),
            &Counters::default(),
        )?;
        if !built.links.is_empty() {
            let mut dirs = vec![built.dir.path().join("diff")];
            dirs.extend(lowers);
            let prefix = if unpacker.rootless {
                "user.overlay."
            } else {
                "trusted.overlay."
            };
            resolve_links(&built, &dirs, prefix, layer.descriptor.digest())?;
        }
        let _lock = self.lock()?;
        self.refuse_mounted(chain_id)?;
        // The references move to the fresh tree; the old one leaves `layers/` in one rename.
        let (old_refs, new_refs) = (dir.join("refs"), built.dir.path().join("refs"));
        std::fs::remove_dir(&new_refs).map_err(|e| Error::io(&new_refs, e))?;
        std::fs::rename(&old_refs, &new_refs).map_err(|e| Error::io(&old_refs, e))?;
        let grave = PrivateDir::new(&self.root.join("tmp"), false)?;
        std::fs::rename(&dir, grave.path().join("layer")).map_err(|e| Error::io(&dir, e))?;
        std::fs::rename(built.dir.path(), &dir).map_err(|e| Error::io(&dir, e))?;
        built.dir.disarm();
        Ok(())
    }

    fn refuse_mounted(&self, chain_id: &Digest) -> Result<()> {
        if self.mounted_layers()?.contains(chain_id) {
            return Err(Error::Invalid {
                what: format!("layer {chain_id}"),
                reason: "a mounted overlay stacks it: unmount it before repairing".into(),
            });
        }
        Ok(())
    }

    /// Reclaims what killed or crashed processes left: private directories under `tmp/` no
    /// live writer locks, records of overlays that are no longer mounted, layers no owner
    /// references and no mount stacks, and stale temporary owner files.
    pub fn gc(&self) -> Result<StoreGcReport> {
        let mut report = StoreGcReport {
            temp_dirs_removed: crate::reclaim_private_dirs(&self.root.join("tmp"))?,
            ..Default::default()
        };
        let _lock = self.lock()?;
        for (p, lease) in self.leases()? {
            if !lease.is_mounted() {
                match std::fs::remove_file(&p) {
                    Ok(()) => report.stale_mounts_removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&p, e)),
                }
            }
        }
        for d in ["owners", "mounts"] {
            let dir = self.root.join(d);
            for e in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
                let e = e.map_err(|e| Error::io(&dir, e))?;
                let name = e.file_name();
                if name.to_string_lossy().starts_with('.') {
                    // A temporary of a write the lock serialises: no live writer now.
                    let p = e.path();
                    std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                }
            }
        }
        let all: Vec<Digest> = self.layers()?.into_iter().map(|l| l.chain_id).collect();
        report.layers_removed = self.remove_unused(&all)?;
        // Layers whose directory lost its metadata (a crash inside an older writer): not
        // listed by `layers()`, and never complete.
        let layers = self.root.join("layers");
        for e in std::fs::read_dir(&layers).map_err(|e| Error::io(&layers, e))? {
            let e = e.map_err(|e| Error::io(&layers, e))?;
            if !e.path().join("chain_id").exists() {
                let p = e.path();
                crate::fs::remove_tree(&p, false).map_err(|e| Error::io(&p, e))?;
                report.temp_dirs_removed += 1;
            }
        }
        Ok(report)
    }

    fn refs_of(&self, chain_id: &Digest) -> Result<Vec<String>> {
        let p = self.layer_dir(chain_id).join("refs");
        let mut refs = Vec::new();
        match std::fs::read_dir(&p) {
            Ok(it) => {
                for e in it {
                    let e = e.map_err(|e| Error::io(&p, e))?;
                    refs.push(e.file_name().to_string_lossy().into_owned());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&p, e)),
        }
        refs.sort();
        Ok(refs)
    }

    /// The layers in the store, with their references.
    pub fn layers(&self) -> Result<Vec<StoredLayer>> {
        let p = self.root.join("layers");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&p).map_err(|e| Error::io(&p, e))? {
            let e = e.map_err(|e| Error::io(&p, e))?;
            let cp = e.path().join("chain_id");
            let Ok(text) = std::fs::read_to_string(&cp) else {
                continue;
            };
            let chain_id = oci_image::parse_digest(text.trim())?;
            out.push(StoredLayer {
                refs: self.refs_of(&chain_id)?,
                path: self.diff_path(&chain_id),
                chain_id,
            });
        }
        out.sort_by_key(|a| a.chain_id.to_string());
        Ok(out)
    }

    /// Whether the overlay of `chain_ids` needs `userxattr`: the layers say which namespace
    /// their overlay xattrs are in, and one mount reads one namespace only.
    fn userxattr(&self, chain_ids: &[Digest], merged: &Path) -> Result<bool> {
        let mut forms = Vec::new();
        for c in chain_ids {
            let p = self.layer_dir(c).join(XATTRS_FILE);
            let form = match std::fs::read_to_string(&p) {
                Ok(t) => t.trim().to_string(),
                // Written by every unpack; a layer without it was unpacked as root.
                Err(e) if e.kind() == io::ErrorKind::NotFound => xattr_form(false).to_string(),
                Err(e) => return Err(Error::io(&p, e)),
            };
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
        match forms.as_slice() {
            [f] if f == xattr_form(true) => Ok(true),
            [f] if f == xattr_form(false) => Ok(false),
            _ => Err(Error::Invalid {
                what: format!("overlay at {}", merged.display()),
                reason: format!(
                    "the layers mix overlay xattr namespaces ({}): unpack them all as root or all rootless",
                    forms.join(", ")
                ),
            }),
        }
    }

    /// The lower directories of an overlay of `chain_ids`, top first, down to the first layer
    /// whose root directory is opaque.
    ///
    /// layer.md "Opaque Whiteout": `.wh..wh..opq` at a layer's root hides every lower entry,
    /// which is exactly what the layer's directory gets as `overlay.opaque`; but overlayfs
    /// ignores that xattr on the root of a lower layer (it merges the roots of all layers
    /// whatever they carry), so the layers below such a layer are not stacked at all.
    fn visible_lowers(&self, chain_ids: &[Digest], userxattr: bool) -> Result<Vec<PathBuf>> {
        let key = format!(
            "{}overlay.opaque",
            if userxattr { "user." } else { "trusted." }
        );
        let mut lowers = Vec::new();
        for c in chain_ids.iter().rev() {
            let diff = self.diff_path(c);
            let mut v = [0u8; 8];
            let opaque = match rustix::fs::getxattr(&diff, key.as_str(), &mut v) {
                Ok(n) => &v[..n] == b"y",
                Err(Errno::NODATA) | Err(Errno::NOTSUP) | Err(Errno::RANGE) => false,
                Err(e) => return Err(Error::io(&diff, e)),
            };
            lowers.push(diff);
            if opaque {
                break;
            }
        }
        Ok(lowers)
    }

    /// Mounts the overlay of the layers `chain_ids` (base first, as [`LayerStore::prepare`]
    /// returns them) for one container: `container_dir/upper` and `container_dir/work` are
    /// created fresh (they must not exist), and the merged tree appears at
    /// `container_dir/merged`.
    ///
    /// Uses the new mount API, adding lower directories one by one (`lowerdir+`, Linux 6.8),
    /// so neither the number of layers nor the store's path length hits the one-page limit of
    /// `mount(2)` options. On older kernels (Debian 12 runs 6.1) it falls back to `mount(2)`
    /// with `lowerdir=a:b:c`, naming the directories by short descriptor numbers so the options
    /// still fit in a page. Layers unpacked as root keep their overlay metadata in
    /// `trusted.overlay.*`; layers unpacked rootless in `user.overlay.*`, and their mount gets
    /// `userxattr` (made inside a user namespace that owns the mount, or by root). Layers of both
    /// kinds cannot be mixed in one mount.
    pub fn mount(
        &self,
        chain_ids: &[Digest],
        container_dir: impl AsRef<Path>,
    ) -> Result<OverlayMount> {
        let dir = container_dir.as_ref();
        if chain_ids.is_empty() {
            return Err(Error::Invalid {
                what: format!("overlay at {}", dir.display()),
                reason: "no layers to mount".into(),
            });
        }
        let dir = &absolute(dir)?;
        // Held until the overlay is mounted and recorded: `release` and `gc` (which take it)
        // see either no record and no mount, or both.
        let _lock = self.lock()?;
        for c in chain_ids {
            if !self.contains(c) {
                return Err(Error::Invalid {
                    what: format!("overlay at {}", dir.display()),
                    reason: format!("layer {c} is not in the store {}", self.root.display()),
                });
            }
        }
        let mut made = Made::default();
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            made.dir = true;
        }
        let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
        let lease_path = self.lease_path(dir);
        let lease = MountLease {
            dir: dir.clone(),
            made,
            chain: chain_ids.to_vec(),
        };
        let mut guard = MountGuard {
            dir: dir.clone(),
            lease: lease_path.clone(),
            made,
            armed: true,
        };
        for p in [&upper, &work] {
            std::fs::create_dir(p).map_err(|e| Error::io(p, e))?;
        }
        match std::fs::create_dir(&merged) {
            Ok(()) => guard.made.merged = true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(&merged, e)),
        }
        let lease = MountLease {
            made: guard.made,
            ..lease
        };
        let tmp = lease_path.with_file_name(format!(
            ".{}.tmp",
            lease_path.file_name().unwrap_or_default().to_string_lossy()
        ));
        std::fs::write(&tmp, lease.to_text()).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &lease_path).map_err(|e| Error::io(&lease_path, e))?;
        let fail = |op: &str, e: rustix::io::Errno| Error::Mount {
            target: merged.clone(),
            op: op.to_string(),
            source: e.into(),
        };
        let userxattr = self.userxattr(chain_ids, &merged)?;
        let lowers = self.visible_lowers(chain_ids, userxattr)?;
        match mount_lowerdir_plus(&lowers, &upper, &work, &merged, userxattr) {
            Ok(()) => {}
            // `lowerdir+` is Linux 6.8. Older kernels refuse it with EINVAL: 6.5 to 6.7 when
            // it is set, up to 6.4 (overlayfs still on legacy mount data) at create; before
            // 5.2 (or under a seccomp profile without the new mount API) fsopen is ENOSYS.
            // `fsconfig` also refuses (EINVAL) a value over 256 bytes: a store at a long path
            // takes this way on any kernel.
            Err((op, e)) if matches!(e, Errno::INVAL | Errno::NOSYS | Errno::PERM) => {
                mount_legacy(&lowers, &upper, &work, &merged, userxattr).map_err(|(op2, e2)| {
                    Error::Mount {
                        target: merged.clone(),
                        op: format!("{op2} (after {op} refused `lowerdir+`: {e})"),
                        source: e2.into(),
                    }
                })?;
            }
            Err((op, e)) => return Err(fail(op, e)),
        }
        guard.armed = false;
        Ok(OverlayMount {
            store: self.clone(),
            dir: dir.clone(),
            merged,
            upper,
            work,
            mounted: true,
        })
    }
}

/// What [`LayerStore::gc`] reclaimed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreGcReport {
    /// Private directories of killed unpacks (and half-removed layers) removed from `tmp/`.
    pub temp_dirs_removed: usize,
    /// Records of overlays that were no longer mounted.
    pub stale_mounts_removed: usize,
    /// Layers no owner referenced and no mount stacked.
    pub layers_removed: Vec<Digest>,
}

/// What a mount created, so its clean-up removes exactly that.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Made {
    /// The container directory itself.
    dir: bool,
    /// `merged` (it may be given).
    merged: bool,
}

/// A record in `mounts/`: one overlay mounted from the store.
#[derive(Debug)]
struct MountLease {
    dir: PathBuf,
    made: Made,
    chain: Vec<Digest>,
}

impl MountLease {
    fn to_text(&self) -> String {
        // The directory is hex-encoded: a path may hold any byte but NUL, newlines included.
        let mut t = format!(
            "{}\n{}{}\n",
            hex(self.dir.as_os_str().as_encoded_bytes()),
            if self.made.dir { "d" } else { "-" },
            if self.made.merged { "m" } else { "-" },
        );
        for c in &self.chain {
            t.push_str(&format!("{c}\n"));
        }
        t
    }

    fn parse(text: &str) -> Result<Self> {
        let bad = || Error::Invalid {
            what: "mount record".into(),
            reason: format!("malformed: {text:?}"),
        };
        let mut lines = text.lines();
        let dir = unhex(lines.next().ok_or_else(bad)?).ok_or_else(bad)?;
        let made = lines.next().ok_or_else(bad)?;
        let made = Made {
            dir: made.contains('d'),
            merged: made.contains('m'),
        };
        let chain = lines
            .filter(|l| !l.is_empty())
            .map(|l| Ok(oci_image::parse_digest(l)?))
            .collect::<Result<Vec<_>>>()?;
        use std::os::unix::ffi::OsStringExt;
        Ok(MountLease {
            dir: PathBuf::from(std::ffi::OsString::from_vec(dir)),
            made,
            chain,
        })
    }

    /// True if the overlay is still mounted on its `merged` directory (in this mount
    /// namespace: the store's mounts are made in the caller's).
    fn is_mounted(&self) -> bool {
        is_mount_root(&self.dir.join("merged"))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// True if `p` is the root of a mount (statx `STATX_ATTR_MOUNT_ROOT`, Linux 5.8).
fn is_mount_root(p: &Path) -> bool {
    use rustix::fs::{statx, AtFlags, StatxAttributes, StatxFlags};
    match statx(
        rustix::fs::CWD,
        p,
        AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT,
        StatxFlags::BASIC_STATS,
    ) {
        Ok(st) => st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT),
        Err(_) => false,
    }
}

/// `path` made absolute against the working directory (not canonicalised: the mount record
/// must name the directory the caller named, whatever symlinks lead there).
fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io(path, e))
}

/// Unmounts the overlay at `merged` if one is there (lazily if it is busy).
fn detach(merged: &Path) -> Result<()> {
    match unmount(merged, UnmountFlags::DETACH) {
        // Not mounted (EINVAL), or gone.
        Ok(()) | Err(Errno::INVAL) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(Error::Mount {
            target: merged.to_path_buf(),
            op: "umount".into(),
            source: e.into(),
        }),
    }
}

/// Removes what a mount made in `dir`: `upper` and `work` (with what the container wrote),
/// `merged` if the mount created it, and `dir` if the mount created it and it is now empty.
fn clean_container_dir(dir: &Path, made: Made) -> Result<()> {
    let force = !rustix::process::geteuid().is_root();
    for d in ["upper", "work"] {
        let p = dir.join(d);
        match crate::fs::remove_tree(&p, force) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&p, e)),
        }
    }
    let rm = |p: &Path| match std::fs::remove_dir(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        // Not empty (the caller put things there) or still a mount point: left.
        Err(e)
            if e.raw_os_error() == Some(Errno::NOTEMPTY.raw_os_error())
                || e.raw_os_error() == Some(Errno::BUSY.raw_os_error()) =>
        {
            Ok(())
        }
        Err(e) => Err(Error::io(p, e)),
    };
    if made.merged {
        rm(&dir.join("merged"))?;
    }
    if made.dir {
        rm(dir)?;
    }
    Ok(())
}

/// Undoes a half-made mount: the record and what was created for it.
struct MountGuard {
    dir: PathBuf,
    lease: PathBuf,
    made: Made,
    armed: bool,
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = detach(&self.dir.join("merged"));
            let _ = clean_container_dir(&self.dir, self.made);
            let _ = std::fs::remove_file(&self.lease);
        }
    }
}

/// A failed mount step: the operation and the error.
type MountFailure = (&'static str, Errno);

#[cfg(test)]
thread_local! {
    /// Tests force the pre-6.8 path with this (the kernel here has `lowerdir+`).
    pub(crate) static FORCE_LEGACY_MOUNT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The new mount API, one `lowerdir+` per layer (Linux 6.8): no limit on the number of layers;
/// each path is one `fsconfig` value, at most 256 bytes.
fn mount_lowerdir_plus(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    merged: &Path,
    userxattr: bool,
) -> Result<(), MountFailure> {
    #[cfg(test)]
    if FORCE_LEGACY_MOUNT.with(|f| f.get()) {
        return Err(("fsconfig lowerdir+ (forced by a test)", Errno::INVAL));
    }
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| ("fsopen", e))?;
    // overlayfs.rst "Multiple lower layers": the first lowerdir is the top-most.
    for l in lowers {
        fsconfig_set_string(&fs, "lowerdir+", l).map_err(|e| ("fsconfig lowerdir+", e))?;
    }
    fsconfig_set_string(&fs, "upperdir", upper).map_err(|e| ("fsconfig upperdir", e))?;
    fsconfig_set_string(&fs, "workdir", work).map_err(|e| ("fsconfig workdir", e))?;
    if userxattr {
        fsconfig_set_flag(&fs, "userxattr").map_err(|e| ("fsconfig userxattr", e))?;
    }
    fsconfig_create(&fs).map_err(|e| ("fsconfig create", e))?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| ("fsmount", e))?;
    move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        merged,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| ("move_mount", e))
}

/// The classic `mount(2)` with `lowerdir=a:b:c`, for kernels before 6.8.
///
/// All options travel in one string that the kernel caps at a page (4 KiB; `fsconfig` would
/// cap each value at 256 bytes, too small for a few layers, so this is `mount(2)`). Absolute
/// store paths (~100 bytes a layer) would overflow it at about 40 layers, and a path with
/// `:`, `,` or `\` would need overlayfs's escaping. So every directory is opened `O_PATH`
/// and named by its descriptor number, relative to `/proc/self/fd` as the working directory
/// of a helper thread that unshared its filesystem context (`unshare(CLONE_FS)`: the process's
/// own cwd is untouched, its descriptor table is shared): `lowerdir=12:11:10,upperdir=13,...`.
/// Digits need no escaping, and even overlayfs's maximum of 500 layers fits in the page. The
/// kernel resolves each name when it parses the options, so the descriptors may be closed
/// once `mount` returns. (The mount's options in /proc/self/mountinfo show those numbers.)
fn mount_legacy(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    merged: &Path,
    userxattr: bool,
) -> Result<(), MountFailure> {
    use rustix::fs::{open, Mode, OFlags};
    use std::os::fd::{AsRawFd, OwnedFd};
    let dir = |p: &Path| -> Result<OwnedFd, MountFailure> {
        open(
            p,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ("open layer directory", e))
    };
    let lower_fds = lowers
        .iter()
        .map(|l| dir(l))
        .collect::<Result<Vec<_>, _>>()?;
    let (upper_fd, work_fd, merged_fd) = (dir(upper)?, dir(work)?, dir(merged)?);
    let num = |fd: &OwnedFd| fd.as_raw_fd().to_string();
    let mut data = String::from("lowerdir=");
    data.push_str(&lower_fds.iter().map(num).collect::<Vec<_>>().join(":"));
    data.push_str(&format!(
        ",upperdir={},workdir={}",
        num(&upper_fd),
        num(&work_fd)
    ));
    if userxattr {
        data.push_str(",userxattr");
    }
    // mount(2) copies at most one page of options; 4 KiB is the smallest page on Linux.
    if data.len() >= 4096 {
        return Err(("mount(2) options longer than a page", Errno::TOOBIG));
    }
    let data = std::ffi::CString::new(data).map_err(|_| ("mount(2) options", Errno::INVAL))?;
    let target = num(&merged_fd);
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: only CLONE_FS is unshared (cwd, root, umask); the descriptor table stays
            // shared with every other thread.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) }
                .map_err(|e| ("unshare(CLONE_FS)", e))?;
            rustix::process::chdir("/proc/self/fd").map_err(|e| ("chdir /proc/self/fd", e))?;
            rustix::mount::mount(
                "overlay",
                target.as_str(),
                "overlay",
                rustix::mount::MountFlags::empty(),
                data.as_c_str(),
            )
            .map_err(|e| ("mount(2) lowerdir=", e))
        })
        .join()
        .unwrap_or(Err(("mount helper thread panicked", Errno::INVAL)))
    })
}

/// The file in a layer's directory naming the xattr namespace of its overlay metadata.
const XATTRS_FILE: &str = "overlay_xattrs";

/// `user` for layers unpacked rootless (`user.overlay.*`, mounted with `userxattr`), `trusted`
/// as root.
fn xattr_form(rootless: bool) -> &'static str {
    if rootless {
        "user"
    } else {
        "trusted"
    }
}

fn check_owner(owner: &str) -> Result<()> {
    let ok = !owner.is_empty()
        && owner.len() <= 128
        && !owner.starts_with('.')
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid {
            what: format!("owner {owner:?}"),
            reason: "an owner is 1 to 128 of [A-Za-z0-9._-], not starting with '.'".into(),
        })
    }
}

/// An overlay mounted for one container by [`LayerStore::mount`]. While it is mounted, the
/// layers it stacks stay in the store even if their owners release them. Unmounted and
/// cleaned up (as [`OverlayMount::unmount`] does) when dropped, unless
/// [`OverlayMount::keep`] is called.
#[derive(Debug)]
pub struct OverlayMount {
    store: LayerStore,
    dir: PathBuf,
    merged: PathBuf,
    upper: PathBuf,
    work: PathBuf,
    mounted: bool,
}

impl OverlayMount {
    /// The merged tree: the container's root filesystem.
    pub fn merged(&self) -> &Path {
        &self.merged
    }

    /// The upper directory, where the container's changes land.
    pub fn upper(&self) -> &Path {
        &self.upper
    }

    /// overlayfs's work directory.
    pub fn work(&self) -> &Path {
        &self.work
    }

    /// Unmounts now (a busy mount is detached lazily), removes what the mount made (`upper`
    /// and `work` with the container's changes, `merged` and the container directory if the
    /// mount created them) and the layers that only this mount still used
    /// ([`LayerStore::unmount`]). Returns the chain IDs removed.
    pub fn unmount(mut self) -> Result<Vec<Digest>> {
        self.mounted = false;
        self.store.unmount(&self.dir)
    }

    /// Leaves the overlay mounted after this value is gone (a runtime hands it to a container
    /// and calls [`LayerStore::unmount`] with the container directory later); returns the
    /// merged path.
    pub fn keep(mut self) -> PathBuf {
        self.mounted = false;
        self.merged.clone()
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = self.store.unmount(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_matches_the_spec_definition() {
        let a = oci_image::sha256_digest(b"a");
        let b = oci_image::sha256_digest(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(
            ids[1],
            oci_image::sha256_digest(format!("{a} {b}").as_bytes())
        );
    }

    #[test]
    fn owner_names() {
        assert!(check_owner("ctr-1_a.b").is_ok());
        for bad in ["", ".x", "a/b", "..", "a b"] {
            assert!(check_owner(bad).is_err(), "{bad}");
        }
    }
}
