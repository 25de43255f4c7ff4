//! Applying one layer's tar entries to a root directory (image-spec layer.md, "Applying
//! Changesets").
//!
//! Two forms of the result:
//! - [`Form::Flat`]: whiteouts delete what they hide from the lower layers already in the root,
//!   as `umoci unpack` does.
//! - [`Form::Overlay`]: the layer goes alone into an empty directory and whiteouts become what
//!   overlayfs reads (a 0/0 character device, the `overlay.opaque` xattr), as containerd's
//!   overlay snapshotter stores them; where mknod is refused, a whiteout is a regular file
//!   with the `overlay.whiteout` xattr (Linux 6.7).

use std::cell::Cell;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;

use oci_spec::image::Digest;
use oci_spec::runtime::LinuxIdMapping;
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use tar::EntryType;

use crate::fs::{clean, join, list_dir, open_dir_at, os, remove_all_at, type_at, Components, Root};
use crate::{Counters, Error, Progress, Result, Unpacker};

/// The form whiteouts take in the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// Whiteouts remove from the root.
    Flat,
    /// Whiteouts are recorded for overlayfs; `xattr_prefix` is `trusted.overlay.` as root,
    /// `user.overlay.` rootless (mounted with `userxattr`).
    Overlay { xattr_prefix: &'static str },
}

/// layer.md "Whiteouts": the prefix that marks a whiteout file.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// layer.md "Opaque Whiteout".
const OPAQUE: &[u8] = b".wh..wh..opq";
/// AUFS metadata names (`.wh..wh.plnk`, `.wh..wh.aufs`): Docker and containerd skip them.
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";
/// The xattr umoci and rootless tools keep a file's owner in when they cannot chown
/// (github.com/rootless-containers/proto).
pub(crate) const ROOTLESS_XATTR: &str = "user.rootlesscontainers";

/// A directory whose mode and times are set after its children (a child's creation would
/// change the directory's mtime; a mode without `u+wx` would stop the children being made).
struct PendingDir {
    path: Components,
    mode: u32,
    mtime: Option<Timespec>,
}

/// Directory modes that must wait until every layer is applied (rootless: a mode without
/// `u+rwx` would stop the unprivileged unpacker from entering it in the next layer).
pub(crate) type DeferredModes = Vec<(Components, u32)>;

/// What waits for the end of a layer, or of all layers.
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    /// Rootless flat unpacks: directory modes, set after every layer.
    pub(crate) modes: DeferredModes,
    /// Overlay form: hardlinks whose target is not in the layer's own tree, resolved through
    /// the layers below once they are all unpacked (see the `lower` module).
    pub(crate) links: Vec<crate::lower::LowerLink>,
}

/// The metadata of one entry, collected from the header and its PAX records.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(crate) struct Applier<'a> {
    unpacker: &'a Unpacker,
    counters: &'a Counters,
    root: &'a Root,
    form: Form,
    digest: &'a Digest,
    rootless: bool,
    /// Paths written by this layer and all their ancestors: what whiteouts of this same layer
    /// must not hide (layer.md: "Whiteout files MUST only apply to resources in lower/parent
    /// layers").
    keep: HashSet<Vec<u8>>,
    /// Overlay form: paths this layer whited out, so a directory later created there is made
    /// opaque (the lower one stays hidden).
    whited_out: HashSet<Vec<u8>>,
    dirs: Vec<PendingDir>,
    deferred: &'a mut Deferred,
    /// The last parent directory opened, valid until anything is removed.
    cache: Option<(Components, Rc<OwnedFd>)>,
    /// The group of the cached parent directory, once asked for.
    cache_gid: Option<u32>,
    /// This process's effective ids: a file it creates is already theirs.
    ids: (u32, u32),
    buf: Vec<u8>,
}

const COPY_BUF: usize = 128 * 1024;

impl<'a> Applier<'a> {
    pub(crate) fn new(
        unpacker: &'a Unpacker,
        counters: &'a Counters,
        root: &'a Root,
        form: Form,
        digest: &'a Digest,
        deferred: &'a mut Deferred,
    ) -> Self {
        Self {
            unpacker,
            counters,
            root,
            form,
            digest,
            rootless: unpacker.rootless,
            keep: HashSet::new(),
            whited_out: HashSet::new(),
            dirs: Vec::new(),
            deferred,
            cache: None,
            cache_gid: None,
            ids: (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            ),
            buf: vec![0; COPY_BUF],
        }
    }

    fn overlay(&self) -> bool {
        matches!(self.form, Form::Overlay { .. })
    }

    fn invalid(&self, entry: &[u8], reason: impl Into<String>) -> Error {
        Error::InvalidEntry {
            digest: self.digest.clone(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            reason: reason.into(),
        }
    }

    fn failed(&self, entry: &[u8], op: impl Into<String>, source: impl Into<io::Error>) -> Error {
        Error::Apply {
            digest: self.digest.clone(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            op: op.into(),
            source: source.into(),
        }
    }

    fn limit(&self, limit: &'static str, max: u64) -> Error {
        Error::LimitExceeded {
            digest: self.digest.clone(),
            limit,
            max,
        }
    }

    fn tar_error(&self, e: io::Error) -> Error {
        if e.get_ref().is_some_and(|i| i.is::<HeaderTooLarge>()) {
            return self.limit("tar header bytes of one entry", MAX_HEADER_BYTES);
        }
        Error::Tar {
            digest: self.digest.clone(),
            source: e,
        }
    }

    /// Applies every entry of the archive, then the pending directory metadata. `budget` is
    /// the [`HeaderBudget`] of the archive's reader.
    pub(crate) fn apply_archive<R: Read>(
        &mut self,
        archive: &mut tar::Archive<R>,
        budget: &Cell<Option<u64>>,
    ) -> Result<()> {
        let mut entries = archive.entries().map_err(|e| self.tar_error(e))?;
        loop {
            // Everything the tar reader reads while finding the next entry is headers: PAX
            // records and GNU long names, which it buffers whole, and sparse maps. (The data of
            // the previous entry was read to its end below, so none of it is skipped here.)
            budget.set(Some(MAX_HEADER_BYTES));
            let next = entries.next();
            budget.set(None);
            let Some(entry) = next else { break };
            let mut entry = entry.map_err(|e| self.tar_error(e))?;
            let n = self.counters.entries.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(max) = self.unpacker.limits.max_entries {
                if n > max {
                    return Err(self.limit("max_entries", max));
                }
            }
            self.apply_entry(&mut entry)?;
            // What the entry kind ignores (data on a directory or a link): read here, not
            // skipped under the header budget. (Not io::copy: it zeroes 8 KiB per call.)
            let mut buf = std::mem::take(&mut self.buf);
            let drained = loop {
                match entry.read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            self.buf = buf;
            drained.map_err(|e| self.tar_error(e))?;
            if let Some(cb) = &self.unpacker.progress {
                cb(Progress {
                    bytes_read: self.counters.bytes_read.load(Ordering::Relaxed),
                    entries: n,
                });
            }
        }
        self.finish_dirs()
    }

    fn check_depth(&self, name: &[u8], c: &Components) -> Result<()> {
        if let Some(max) = self.unpacker.limits.max_depth {
            if c.len() as u64 > max {
                let _ = name;
                return Err(self.limit("max_depth", max));
            }
        }
        Ok(())
    }

    /// Opens (creating missing directories) the parent directory `c`, through the cache.
    fn parent(&mut self, name: &[u8], c: &[Vec<u8>]) -> Result<Rc<OwnedFd>> {
        if let Some((p, fd)) = &self.cache {
            if p.as_slice() == c {
                return Ok(fd.clone());
            }
        }
        let fd = Rc::new(
            self.root
                .mkdir_all(c)
                .map_err(|e| self.failed(name, "open parent directory", e))?,
        );
        self.cache = Some((c.to_vec(), fd.clone()));
        self.cache_gid = None;
        Ok(fd)
    }

    fn remember(&mut self, c: &Components) {
        // The path and its ancestors; stop at the first ancestor already known.
        let key = join(c);
        let mut end = key.len();
        while !self.keep.contains(&key[..end]) {
            self.keep.insert(key[..end].to_vec());
            match key[..end].iter().rposition(|&b| b == b'/') {
                Some(i) => end = i,
                None => break,
            }
        }
    }

    fn apply_entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let name = entry.path_bytes().into_owned();
        let mut kind = entry.header().entry_type();
        match kind {
            // Handled by the tar crate (PAX, GNU long names) or carrying nothing to apply.
            EntryType::XGlobalHeader | EntryType::XHeader => return Ok(()),
            EntryType::GNULongName | EntryType::GNULongLink => return Ok(()),
            // Old (V7) archives mark directories by a trailing slash on a regular entry.
            EntryType::Regular if name.ends_with(b"/") => kind = EntryType::Directory,
            _ => {}
        }
        let c = clean(&name);
        self.check_depth(&name, &c)?;

        let Some((base, parent)) = c.split_last() else {
            // The root itself (`./`): only a directory may stand there.
            if kind == EntryType::Directory {
                let meta = self.meta(entry, &name)?;
                let root = self
                    .root
                    .resolve_dir(&[])
                    .map_err(|e| self.failed(&name, "open root", e))?;
                let fd = open_dir_at(&root, ".").map_err(|e| self.failed(&name, "open root", e))?;
                self.set_dir_meta(&name, fd.as_fd(), &meta)?;
                self.dirs.push(PendingDir {
                    path: Vec::new(),
                    mode: meta.mode,
                    mtime: Some(meta.mtime),
                });
                return Ok(());
            }
            return Err(self.invalid(&name, "a non-directory entry cannot replace the root"));
        };
        let base = base.clone();
        let parent: Components = parent.to_vec();

        // layer.md "Whiteouts".
        if base.starts_with(WHITEOUT_PREFIX) {
            if base == OPAQUE {
                return self.opaque(&name, &parent);
            }
            if base.starts_with(AUFS_META_PREFIX) {
                return Ok(());
            }
            let hidden = &base[WHITEOUT_PREFIX.len()..];
            // "A `.wh.` file, without a basename to delete, is invalid": and `.`/`..` would
            // name the parent or the grandparent, never a sibling.
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(self.invalid(
                    &name,
                    "whiteout names no sibling (bare `.wh.`, `.wh..` or `.wh...`)",
                ));
            }
            return self.whiteout(&name, &parent, hidden);
        }

        let mut path = parent.clone();
        path.push(base.clone());
        match kind {
            EntryType::Directory => self.directory(entry, &name, &parent, &base, path.clone())?,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular(entry, &name, &parent, &base, kind == EntryType::GNUSparse)?
            }
            EntryType::Symlink => self.symlink(entry, &name, &parent, &base)?,
            EntryType::Link => self.hardlink(entry, &name, &parent, &base, &path)?,
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                self.node(entry, &name, &parent, &base, kind)?
            }
            other => {
                return Err(self.invalid(
                    &name,
                    format!("unsupported entry type {:?}", other.as_byte() as char),
                ))
            }
        }
        self.remember(&path);
        Ok(())
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, name: &[u8]) -> Result<Meta> {
        let h = entry.header();
        let bad = |field: &str, e: io::Error| self.invalid(name, format!("bad {field}: {e}"));
        // An empty numeric field (all NUL or spaces) reads as 0, as Go's archive/tar (umoci,
        // Docker) and GNU tar read it; anything else that does not parse is an error.
        let num = |field: &str, raw: &[u8], v: io::Result<u64>| match v {
            Ok(v) => Ok(v),
            Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
            Err(e) => Err(bad(field, e)),
        };
        let old = h.as_old();
        let mode = num("mode", &old.mode, h.mode().map(u64::from))? as u32 & 0o7777;
        let mut uid = num("uid", &old.uid, h.uid())?;
        let mut gid = num("gid", &old.gid, h.gid())?;
        let mut mtime = Timespec {
            tv_sec: num("mtime", &old.mtime, h.mtime())?.min(i64::MAX as u64) as i64,
            tv_nsec: 0,
        };
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions().map_err(|e| bad("PAX header", e))? {
            for ext in pax {
                let ext = ext.map_err(|e| bad("PAX record", e))?;
                let key = ext.key_bytes();
                let value = ext.value_bytes();
                match key {
                    b"uid" => {
                        uid = parse_u64(value).ok_or_else(|| self.invalid(name, "bad PAX uid"))?
                    }
                    b"gid" => {
                        gid = parse_u64(value).ok_or_else(|| self.invalid(name, "bad PAX gid"))?
                    }
                    b"mtime" => {
                        mtime = parse_pax_time(value)
                            .ok_or_else(|| self.invalid(name, "bad PAX mtime"))?
                    }
                    // GNU tar's PAX sparse formats (0.0, 0.1, 1.0) keep the real name and the
                    // sparse map in GNU.sparse.* records and the map inside the data; the tar
                    // crate reads only GNU 'S' sparse entries, so such an entry would be written
                    // with the wrong name and content. Refused, never written wrong.
                    _ if key.starts_with(b"GNU.sparse.") => {
                        return Err(self.invalid(
                            name,
                            "PAX sparse file (GNU.sparse.* records) is not supported; GNU-format sparse entries are",
                        ));
                    }
                    _ => {
                        if let Some(x) = key.strip_prefix(b"SCHILY.xattr.") {
                            xattrs.push((x.to_vec(), value.to_vec()));
                        }
                    }
                }
            }
        }
        // -1 means "no change" to chown(2): an owner of 2^32-1 is refused, not silently skipped.
        let id = |v: u64, what: &str| -> Result<u32> {
            u32::try_from(v)
                .ok()
                .filter(|&v| v != u32::MAX)
                .ok_or_else(|| self.invalid(name, format!("{what} {v} is out of range")))
        };
        Ok(Meta {
            mode,
            uid: id(uid, "uid")?,
            gid: id(gid, "gid")?,
            mtime,
            xattrs,
        })
    }

    /// The host owner for a container owner, through the id maps.
    fn host_ids(&self, name: &[u8], meta: &Meta) -> Result<(u32, u32)> {
        let map = |id: u32, m: &[LinuxIdMapping], what: &str| -> Result<u32> {
            if m.is_empty() {
                return Ok(id);
            }
            for e in m {
                let (c, h, n) = (e.container_id(), e.host_id(), e.size());
                if id >= c && (id - c) < n {
                    return Ok(h + (id - c));
                }
            }
            Err(self.invalid(name, format!("{what} {id} is not in the {what} map")))
        };
        Ok((
            map(meta.uid, &self.unpacker.uid_map, "uid")?,
            map(meta.gid, &self.unpacker.gid_map, "gid")?,
        ))
    }

    /// True if a file just created in the cached parent directory already has the owner
    /// `meta` asks for, so no `chown` is needed: the ids are this process's, and the parent's
    /// group is its group too (a new file takes its parent's group when the parent is setgid
    /// or the filesystem is mounted `grpid`). One `chown` fewer per file of a root-owned image.
    fn owned_as_created(&mut self, name: &[u8], meta: &Meta) -> Result<bool> {
        if self.rootless || self.host_ids(name, meta)? != self.ids {
            return Ok(false);
        }
        let gid = match (self.cache_gid, &self.cache) {
            (Some(g), _) => g,
            (None, Some((_, fd))) => {
                let st = rfs::fstat(&**fd).map_err(|e| self.failed(name, "stat parent", e))?;
                self.cache_gid = Some(st.st_gid);
                st.st_gid
            }
            (None, None) => return Ok(false),
        };
        Ok(gid == self.ids.1)
    }

    /// Owner, xattrs: on an open fd (a regular file or a directory).
    fn set_owner_fd(&self, name: &[u8], fd: BorrowedFd<'_>, meta: &Meta) -> Result<()> {
        if self.rootless {
            if meta.uid != 0 || meta.gid != 0 {
                let v = rootless_value(meta.uid, meta.gid);
                match rfs::fsetxattr(fd, ROOTLESS_XATTR, &v, rfs::XattrFlags::empty()) {
                    Ok(()) | Err(Errno::PERM) | Err(Errno::NOTSUP) => {}
                    Err(e) => {
                        return Err(self.failed(name, format!("setxattr {ROOTLESS_XATTR}"), e))
                    }
                }
            }
            return Ok(());
        }
        let (uid, gid) = self.host_ids(name, meta)?;
        rfs::fchown(
            fd,
            Some(rfs::Uid::from_raw_unchecked(uid)),
            Some(rfs::Gid::from_raw_unchecked(gid)),
        )
        .map_err(|e| self.failed(name, "chown", e))
    }

    fn xattr_allowed(&self, key: &[u8]) -> bool {
        // A layer must not forge overlayfs's own metadata (opaque, redirect, metacopy, origin):
        // it would change what the mounted image shows. containerd drops these too.
        !(key.starts_with(b"trusted.overlay.") || key.starts_with(b"user.overlay."))
    }

    fn xattr_error(&self, name: &[u8], key: &[u8], e: Errno) -> Result<()> {
        // Rootless: trusted.* and security.capability need privileges we lack; umoci skips them
        // the same way.
        if self.rootless && matches!(e, Errno::PERM | Errno::NOTSUP | Errno::ACCESS) {
            return Ok(());
        }
        Err(self.failed(
            name,
            format!("setxattr {}", String::from_utf8_lossy(key)),
            e,
        ))
    }

    fn set_xattrs_fd(&self, name: &[u8], fd: BorrowedFd<'_>, meta: &Meta) -> Result<()> {
        for (k, v) in &meta.xattrs {
            if !self.xattr_allowed(k) {
                continue;
            }
            if let Err(e) = rfs::fsetxattr(fd, os(k), v, rfs::XattrFlags::empty()) {
                self.xattr_error(name, k, e)?;
            }
        }
        Ok(())
    }

    /// Owner and xattrs for a symlink or a device node, which cannot be opened for writing:
    /// by name in the parent's fd, never following the last component.
    fn set_meta_at(
        &self,
        name: &[u8],
        dir: BorrowedFd<'_>,
        base: &[u8],
        meta: &Meta,
        symlink: bool,
    ) -> Result<()> {
        if self.rootless {
            if !symlink && (meta.uid != 0 || meta.gid != 0) {
                let v = rootless_value(meta.uid, meta.gid);
                let p = proc_path(dir, base);
                match rfs::lsetxattr(&p, ROOTLESS_XATTR, &v, rfs::XattrFlags::empty()) {
                    Ok(()) | Err(Errno::PERM) | Err(Errno::NOTSUP) => {}
                    Err(e) => {
                        return Err(self.failed(name, format!("setxattr {ROOTLESS_XATTR}"), e))
                    }
                }
            }
        } else {
            let (uid, gid) = self.host_ids(name, meta)?;
            rfs::chownat(
                dir,
                os(base),
                Some(rfs::Uid::from_raw_unchecked(uid)),
                Some(rfs::Gid::from_raw_unchecked(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.failed(name, "chown", e))?;
        }
        if !meta.xattrs.is_empty() {
            // /proc/self/fd/N is the parent directory itself; `l*xattr` does not follow `base`.
            let p = proc_path(dir, base);
            for (k, v) in &meta.xattrs {
                if !self.xattr_allowed(k) {
                    continue;
                }
                if let Err(e) = rfs::lsetxattr(&p, os(k), v, rfs::XattrFlags::empty()) {
                    self.xattr_error(name, k, e)?;
                }
            }
        }
        Ok(())
    }

    fn set_dir_meta(&self, name: &[u8], fd: BorrowedFd<'_>, meta: &Meta) -> Result<()> {
        self.set_owner_fd(name, fd, meta)?;
        // chmod after chown: chown clears setuid/setgid.
        let mode = if self.rootless {
            meta.mode | 0o700
        } else {
            meta.mode
        };
        rfs::fchmod(fd, Mode::from_raw_mode(mode)).map_err(|e| self.failed(name, "chmod", e))?;
        self.set_xattrs_fd(name, fd, meta)
    }

    /// Removes whatever is at `base` unless it is a directory and `keep_dir` is set.
    /// Returns true if a directory was kept.
    fn clear_slot(
        &mut self,
        name: &[u8],
        parent: &[Vec<u8>],
        base: &[u8],
        keep_dir: bool,
    ) -> Result<bool> {
        let rootless = self.rootless;
        let dirfd = self.parent(name, parent)?;
        let dir = dirfd.as_fd();
        let existing = type_at(dir, base).map_err(|e| self.failed(name, "stat", e))?;
        match existing {
            None => Ok(false),
            Some(FileType::Directory) if keep_dir => Ok(true),
            Some(t) => {
                let r = remove_all_at(dir, base, rootless);
                if t == FileType::Directory {
                    // A removed directory may be the cached parent or one of its ancestors.
                    self.cache = None;
                }
                r.map_err(|e| self.failed(name, "remove existing", e))?;
                Ok(false)
            }
        }
    }

    /// Runs `make` (which creates `base` in the directory it is given) in the parent
    /// directory; if `base` exists, removes it and runs `make` again. Trying first saves a
    /// `stat` per entry: most entries do not replace anything.
    fn create<T>(
        &mut self,
        name: &[u8],
        parent: &[Vec<u8>],
        base: &[u8],
        op: &str,
        make: impl Fn(BorrowedFd<'_>) -> rustix::io::Result<T>,
    ) -> Result<(T, Rc<OwnedFd>)> {
        let dirfd = self.parent(name, parent)?;
        match make(dirfd.as_fd()) {
            Ok(t) => return Ok((t, dirfd)),
            Err(Errno::EXIST) => {}
            Err(e) => return Err(self.failed(name, op, e)),
        }
        drop(dirfd);
        self.clear_slot(name, parent, base, false)?;
        let dirfd = self.parent(name, parent)?;
        match make(dirfd.as_fd()) {
            Ok(t) => Ok((t, dirfd)),
            Err(e) => Err(self.failed(name, op, e)),
        }
    }

    fn directory<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &[u8],
        parent: &[Vec<u8>],
        base: &[u8],
        path: Components,
    ) -> Result<()> {
        let meta = self.meta(entry, name)?;
        // layer.md "Changeset over existing files": a directory over a directory keeps it and
        // takes the entry's attributes; anything else is removed first.
        let mut dirfd = self.parent(name, parent)?;
        match rfs::mkdirat(dirfd.as_fd(), os(base), Mode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                if !self.clear_slot(name, parent, base, true)? {
                    dirfd = self.parent(name, parent)?;
                    rfs::mkdirat(dirfd.as_fd(), os(base), Mode::from_raw_mode(0o700))
                        .map_err(|e| self.failed(name, "mkdir", e))?;
                }
            }
            Err(e) => return Err(self.failed(name, "mkdir", e)),
        }
        let dir = dirfd.as_fd();
        let fd = open_dir_at(dir, os(base)).map_err(|e| self.failed(name, "open directory", e))?;
        self.set_dir_meta(name, fd.as_fd(), &meta)?;
        if let Form::Overlay { xattr_prefix } = self.form {
            if self.whited_out.contains(&join(&path)) {
                self.set_opaque(name, fd.as_fd(), xattr_prefix)?;
            }
        }
        self.dirs.push(PendingDir {
            path,
            mode: meta.mode,
            mtime: Some(meta.mtime),
        });
        Ok(())
    }

    fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &[u8],
        parent: &[Vec<u8>],
        base: &[u8],
        sparse: bool,
    ) -> Result<()> {
        let meta = self.meta(entry, name)?;
        let (fd, _) = self.create(name, parent, base, "create", |dir| {
            rfs::openat(
                dir,
                os(base),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
        })?;
        let mut file = File::from(fd);
        let mut len: u64 = 0;
        let mut buf = std::mem::take(&mut self.buf);
        let copied = (|| -> Result<()> {
            loop {
                let n = match entry.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(Error::Tar {
                            digest: self.digest.clone(),
                            source: e,
                        })
                    }
                };
                let total = self
                    .counters
                    .bytes_written
                    .fetch_add(n as u64, Ordering::Relaxed)
                    + n as u64;
                if let Some(max) = self.unpacker.limits.max_bytes {
                    if total > max {
                        return Err(self.limit("max_bytes", max));
                    }
                }
                len += n as u64;
                // A GNU sparse entry's holes come back from the tar reader as zeros; leave them
                // as holes again.
                if sparse && buf[..n].iter().all(|&b| b == 0) {
                    file.seek(SeekFrom::Current(n as i64))
                        .map_err(|e| self.failed(name, "seek", e))?;
                } else {
                    file.write_all(&buf[..n])
                        .map_err(|e| self.failed(name, "write", e))?;
                }
            }
        })();
        self.buf = buf;
        copied?;
        if sparse {
            file.set_len(len)
                .map_err(|e| self.failed(name, "truncate", e))?;
        }
        // Order matters: chown clears setuid/setgid and security.capability, so chown, then
        // chmod, then xattrs, then times.
        if !self.owned_as_created(name, &meta)? {
            self.set_owner_fd(name, file.as_fd(), &meta)?;
        }
        rfs::fchmod(&file, Mode::from_raw_mode(meta.mode))
            .map_err(|e| self.failed(name, "chmod", e))?;
        self.set_xattrs_fd(name, file.as_fd(), &meta)?;
        rfs::futimens(&file, &times(meta.mtime)).map_err(|e| self.failed(name, "utimens", e))?;
        Ok(())
    }

    fn symlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &[u8],
        parent: &[Vec<u8>],
        base: &[u8],
    ) -> Result<()> {
        let meta = self.meta(entry, name)?;
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| self.invalid(name, "symlink without a target"))?
            .into_owned();
        // The target is stored as is: it is only ever followed through RESOLVE_IN_ROOT here, and
        // inside the container's own root later.
        let ((), dirfd) = self.create(name, parent, base, "symlink", |dir| {
            rfs::symlinkat(os(&target), dir, os(base))
        })?;
        let dir = dirfd.as_fd();
        self.set_meta_at(name, dir, base, &meta, true)?;
        rfs::utimensat(dir, os(base), &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.failed(name, "utimens", e))?;
        Ok(())
    }

    fn hardlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &[u8],
        parent: &[Vec<u8>],
        base: &[u8],
        path: &Components,
    ) -> Result<()> {
        let raw = entry
            .link_name_bytes()
            .ok_or_else(|| self.invalid(name, "hardlink without a target"))?
            .into_owned();
        // The target is a path in the archive's namespace, resolved inside the root like an
        // entry name: `../../etc/shadow` is `etc/shadow` of the root.
        let target = clean(&raw);
        self.check_depth(name, &target)?;
        let Some((tbase, tparent)) = target.split_last() else {
            return Err(self.invalid(name, "hardlink to the root directory"));
        };
        if &target == path {
            return Err(self.invalid(name, "hardlink to itself"));
        }
        let tdir = match self.root.resolve_dir(tparent) {
            Ok(fd) => Some(fd),
            Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) && self.overlay() => {
                None
            }
            Err(e) => {
                return Err(self.failed(
                    name,
                    format!("open hardlink target {:?}", String::from_utf8_lossy(&raw)),
                    e,
                ))
            }
        };
        // Flags 0: the target's last component is not followed, so a symlink pointing out of
        // the root is linked as the symlink it is.
        let op = format!("link to {:?}", String::from_utf8_lossy(&raw));
        let linked = match &tdir {
            Some(tdir) => self.create(name, parent, base, &op, |dir| {
                rfs::linkat(tdir, os(tbase), dir, os(base), AtFlags::empty())
            }),
            None => Err(self.failed(name, &op, Errno::NOENT)),
        };
        match linked {
            Ok(_) => Ok(()),
            // Overlay form: the layer is unpacked alone, and a valid image may link to a file
            // of a lower layer (layer.md "Hardlinks": the target is any file "in the
            // filesystem" the layers build). Resolved once the lower layers are all there.
            Err(Error::Apply { source, .. })
                if self.overlay() && source.raw_os_error() == Some(Errno::NOENT.raw_os_error()) =>
            {
                self.parent(name, parent)?;
                self.deferred.links.push(crate::lower::LowerLink {
                    entry: name.to_vec(),
                    link: path.clone(),
                    target,
                });
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn node<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &[u8],
        parent: &[Vec<u8>],
        base: &[u8],
        kind: EntryType,
    ) -> Result<()> {
        let meta = self.meta(entry, name)?;
        let (ft, dev) = match kind {
            EntryType::Fifo => (FileType::Fifo, 0),
            _ => {
                if self.rootless {
                    // An unprivileged user cannot mknod devices; umoci skips them the same way
                    // (the runtime bind-mounts the devices a container gets).
                    return Ok(());
                }
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let ft = if kind == EntryType::Char {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                (ft, rfs::makedev(major, minor))
            }
        };
        let ((), dirfd) = self.create(name, parent, base, "mknod", |dir| {
            rfs::mknodat(dir, os(base), ft, Mode::from_raw_mode(0o600), dev)
        })?;
        let dir = dirfd.as_fd();
        self.set_meta_at(name, dir, base, &meta, false)?;
        // The node was created just above in a directory only this unpack writes to, so
        // following `base` here reaches that node.
        rfs::chmodat(
            dir,
            os(base),
            Mode::from_raw_mode(meta.mode),
            AtFlags::empty(),
        )
        .map_err(|e| self.failed(name, "chmod", e))?;
        rfs::utimensat(dir, os(base), &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.failed(name, "utimens", e))?;
        Ok(())
    }

    /// `.wh.NAME` in `parent` (layer.md "Whiteouts").
    fn whiteout(&mut self, name: &[u8], parent: &[Vec<u8>], hidden: &[u8]) -> Result<()> {
        let mut path = parent.to_vec();
        path.push(hidden.to_vec());
        let key = join(&path);
        match self.form {
            Form::Flat => {
                // Nothing below a missing (or non-directory) parent to hide.
                let dir = match self.root.resolve_dir(parent) {
                    Ok(fd) => fd,
                    Err(e) if matches!(e.raw_os_error(), Some(x) if x == Errno::NOENT.raw_os_error() || x == Errno::NOTDIR.raw_os_error() || x == Errno::LOOP.raw_os_error()) => {
                        return Ok(())
                    }
                    Err(e) => return Err(self.failed(name, "open whiteout parent", e)),
                };
                self.cache = None;
                self.hide_lower(dir.as_fd(), key, hidden)
                    .map_err(|e| self.failed(name, "whiteout", e))
            }
            Form::Overlay { xattr_prefix } => {
                let dirfd = self.parent(name, parent)?;
                let dir = dirfd.as_fd();
                let existing = type_at(dir, hidden).map_err(|e| self.failed(name, "stat", e))?;
                if self.keep.contains(&key) {
                    // Written by this layer, which a whiteout of the same layer does not hide;
                    // what it must hide is the lower NAME: a file here already does, a
                    // directory must be made opaque.
                    if existing == Some(FileType::Directory) {
                        let fd = open_dir_at(dir, os(hidden))
                            .map_err(|e| self.failed(name, "open directory", e))?;
                        self.set_opaque(name, fd.as_fd(), xattr_prefix)?;
                    }
                    return Ok(());
                }
                if existing.is_some() {
                    self.clear_slot(name, parent, hidden, false)?;
                }
                let dirfd = self.parent(name, parent)?;
                let dir = dirfd.as_fd();
                self.whited_out.insert(key);
                let pfd =
                    open_dir_at(dir, ".").map_err(|e| self.failed(name, "open directory", e))?;
                let opaque = format!("{xattr_prefix}opaque");
                let mark = get_xattr(pfd.as_fd(), None, &opaque)
                    .map_err(|e| self.failed(name, format!("getxattr {opaque}"), e))?;
                if mark.as_deref() == Some(b"y") {
                    // overlayfs.rst: "An opaque directory should not contain any whiteouts":
                    // it hides what is below without them, and readdir of a directory no lower
                    // layer merges with lists them.
                    return Ok(());
                }
                // overlayfs.rst "whiteouts and opaque directories": a whiteout is a character
                // device with device number 0/0. Since Linux 5.8 an unprivileged user may make
                // that one device, so this is the form for rootless stores too; where mknod is
                // still refused (an older kernel, a seccomp profile) the xattr form follows.
                match mknod_whiteout(dir, hidden) {
                    Ok(()) => Ok(()),
                    Err(Errno::PERM) => {
                        self.xattr_whiteout(name, pfd.as_fd(), mark, hidden, xattr_prefix)
                    }
                    Err(e) => Err(self.failed(name, "mknod whiteout", e)),
                }
            }
        }
    }

    /// Flat form: removes `name` in `dir` except what this layer wrote there.
    ///
    /// Directories this layer wrote are walked by their path from the root, one at a time,
    /// so no descriptor is held per level of a deep tree.
    fn hide_lower(&mut self, dir: BorrowedFd<'_>, key: Vec<u8>, name: &[u8]) -> io::Result<()> {
        if !self.keep.contains(&key) {
            return remove_all_at(dir, name, self.rootless);
        }
        if type_at(dir, name)? != Some(FileType::Directory) {
            return Ok(());
        }
        let mut todo = vec![key];
        while let Some(key) = todo.pop() {
            let sub = self.root.resolve_dir(&clean(&key))?;
            let sub = open_dir_at(&sub, ".")?;
            for child in list_dir(sub.as_fd())? {
                let mut k = key.clone();
                k.push(b'/');
                k.extend_from_slice(&child);
                if !self.keep.contains(&k) {
                    remove_all_at(sub.as_fd(), &child, self.rootless)?;
                } else if type_at(sub.as_fd(), &child)? == Some(FileType::Directory) {
                    todo.push(k);
                }
            }
        }
        Ok(())
    }

    /// `.wh..wh..opq` in `parent` (layer.md "Opaque Whiteout"): applies to the lower children
    /// whatever its position in the archive.
    fn opaque(&mut self, name: &[u8], parent: &[Vec<u8>]) -> Result<()> {
        match self.form {
            Form::Flat => {
                let dir = match self.root.resolve_dir(parent) {
                    Ok(fd) => fd,
                    Err(e) if matches!(e.raw_os_error(), Some(x) if x == Errno::NOENT.raw_os_error()) => {
                        return Ok(())
                    }
                    Err(e) => return Err(self.failed(name, "open opaque directory", e)),
                };
                self.cache = None;
                let key = join(parent);
                let r = (|| -> io::Result<()> {
                    let d = open_dir_at(&dir, ".")?;
                    for child in list_dir(d.as_fd())? {
                        let mut k = key.clone();
                        if !k.is_empty() {
                            k.push(b'/');
                        }
                        k.extend_from_slice(&child);
                        self.hide_lower(d.as_fd(), k, &child)?;
                    }
                    Ok(())
                })();
                r.map_err(|e| self.failed(name, "opaque whiteout", e))?;
                self.remember(&parent.to_vec());
                Ok(())
            }
            Form::Overlay { xattr_prefix } => {
                let dirfd = self.parent(name, parent)?;
                let dir = dirfd.as_fd();
                let fd = open_dir_at(dir, ".")
                    .map_err(|e| self.failed(name, "open opaque directory", e))?;
                self.set_opaque(name, fd.as_fd(), xattr_prefix)?;
                self.remember(&parent.to_vec());
                Ok(())
            }
        }
    }

    /// overlayfs.rst (Linux 6.7): a whiteout may also be a zero-size regular file with the
    /// `overlay.whiteout` xattr, in a directory whose `overlay.opaque` xattr is `x` ("holds
    /// xattr whiteouts", which overlayfs reads only then, to keep readdir cheap; `y`, a truly
    /// opaque directory, hides the lower entries anyway and is kept). The kernel documentation
    /// earlier named that mark `overlay.whiteouts`; released kernels read `opaque=x`.
    fn xattr_whiteout(
        &self,
        name: &[u8],
        dir: BorrowedFd<'_>,
        mark: Option<Vec<u8>>,
        hidden: &[u8],
        prefix: &str,
    ) -> Result<()> {
        let opaque = format!("{prefix}opaque");
        let fd = rfs::openat(
            dir,
            os(hidden),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| self.failed(name, "create whiteout", e))?;
        let key = format!("{prefix}whiteout");
        rfs::fsetxattr(&fd, key.as_str(), b"y", rfs::XattrFlags::empty())
            .map_err(|e| self.failed(name, format!("setxattr {key}"), e))?;
        if mark.is_none() {
            rfs::fsetxattr(dir, opaque.as_str(), b"x", rfs::XattrFlags::empty())
                .map_err(|e| self.failed(name, format!("setxattr {opaque}"), e))?;
        }
        Ok(())
    }

    /// Makes the directory `fd` (open for reading) opaque. Whiteouts made in it earlier go
    /// (overlayfs.rst: "An opaque directory should not contain any whiteouts"): it hides what
    /// is below without them, and overlayfs lists them when no lower layer has the directory,
    /// or shows xattr whiteouts as empty files.
    fn set_opaque(&self, name: &[u8], fd: BorrowedFd<'_>, prefix: &str) -> Result<()> {
        let key = format!("{prefix}opaque");
        let whiteout = format!("{prefix}whiteout");
        let r = (|| -> io::Result<()> {
            for child in list_dir(fd)? {
                let st = match rfs::statat(fd, os(&child), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => st,
                    Err(Errno::NOENT) => continue,
                    Err(e) => return Err(e.into()),
                };
                let is_whiteout = match FileType::from_raw_mode(st.st_mode) {
                    FileType::CharacterDevice => st.st_rdev == 0,
                    FileType::RegularFile => {
                        st.st_size == 0 && get_xattr(fd, Some(&child), &whiteout)?.is_some()
                    }
                    _ => false,
                };
                if is_whiteout {
                    rfs::unlinkat(fd, os(&child), AtFlags::empty())?;
                }
            }
            Ok(())
        })();
        r.map_err(|e| self.failed(name, "remove whiteouts of an opaque directory", e))?;
        rfs::fsetxattr(fd, key.as_str(), b"y", rfs::XattrFlags::empty())
            .map_err(|e| self.failed(name, format!("setxattr {key}"), e))
    }

    /// Directory times (and rootless modes) once every entry is in: deepest first, so setting a
    /// child's time does not disturb its parent's.
    fn finish_dirs(&mut self) -> Result<()> {
        self.cache = None;
        let mut dirs = std::mem::take(&mut self.dirs);
        // A directory listed twice takes its last entry's attributes (and must not be opened
        // again after a mode-000 chmod).
        let mut seen = HashSet::new();
        dirs.reverse();
        dirs.retain(|d| seen.insert(d.path.clone()));
        dirs.sort_by_key(|d| std::cmp::Reverse(d.path.len()));
        for d in dirs {
            let name = join(&d.path);
            let fd = if let Some((base, parent)) = d.path.split_last() {
                let Ok(pfd) = self.root.resolve_dir(parent) else {
                    continue;
                };
                // A later entry may have replaced the directory: then there is nothing to set.
                match open_dir_at(&pfd, os(base)) {
                    Ok(fd) => fd,
                    Err(Errno::NOTDIR) | Err(Errno::LOOP) | Err(Errno::NOENT) => continue,
                    Err(e) => return Err(self.failed(&name, "open directory", e)),
                }
            } else {
                let root = self
                    .root
                    .resolve_dir(&[])
                    .map_err(|e| self.failed(b".", "open root", e))?;
                open_dir_at(&root, ".").map_err(|e| self.failed(b".", "open root", e))?
            };
            if let Some(t) = d.mtime {
                rfs::futimens(&fd, &times(t)).map_err(|e| self.failed(&name, "utimens", e))?;
            }
            if self.rootless {
                match self.form {
                    // Every directory, so a later layer's mode replaces an earlier one's.
                    Form::Flat => self.deferred.modes.push((d.path, d.mode)),
                    Form::Overlay { .. } if d.mode & 0o700 != 0o700 => {
                        rfs::fchmod(&fd, Mode::from_raw_mode(d.mode))
                            .map_err(|e| self.failed(&name, "chmod", e))?
                    }
                    Form::Overlay { .. } => {}
                }
            }
        }
        Ok(())
    }
}

/// The most the tar reader may read to find one entry: its headers, PAX extended header and
/// GNU long name and link. The `tar` crate reads a PAX or GNU long-name header whole into
/// memory, whatever size it declares; real ones hold a path (at most 4 KiB) and xattrs (64 KiB
/// at most each on Linux), so a megabyte is generous, and a 1 GiB PAX header stops after 1 MiB.
pub(crate) const MAX_HEADER_BYTES: u64 = 1 << 20;

/// The error a [`HeaderBudget`] reader returns when the budget is spent.
#[derive(Debug)]
struct HeaderTooLarge;

impl std::fmt::Display for HeaderTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tar headers of one entry over {MAX_HEADER_BYTES} bytes")
    }
}

impl std::error::Error for HeaderTooLarge {}

/// The archive's reader: while `left` is `Some`, reads count against it and fail once it is
/// spent. The applier sets it around the tar reader's search for the next entry, so what is
/// capped is exactly what the tar reader buffers, in step with its own parsing (a second parser
/// of the stream could be led out of step by a crafted PAX `size`).
pub(crate) struct HeaderBudget<'a, R> {
    inner: R,
    left: &'a Cell<Option<u64>>,
}

impl<'a, R> HeaderBudget<'a, R> {
    pub(crate) fn new(inner: R, left: &'a Cell<Option<u64>>) -> Self {
        Self { inner, left }
    }
}

impl<R: Read> Read for HeaderBudget<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(left) = self.left.get() else {
            return self.inner.read(buf);
        };
        if left == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, HeaderTooLarge));
        }
        let max = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left.set(Some(left - n as u64));
        Ok(n)
    }
}

/// Applies the modes deferred by rootless flat unpacks, deepest first.
pub(crate) fn apply_deferred_modes(root: &Root, mut deferred: DeferredModes) -> io::Result<()> {
    // The last layer's mode for a directory wins; each directory is opened once.
    let mut seen = HashSet::new();
    deferred.reverse();
    deferred.retain(|d| seen.insert(d.0.clone()));
    deferred.sort_by_key(|d| std::cmp::Reverse(d.0.len()));
    for (path, mode) in deferred {
        let Some((base, parent)) = path.split_last() else {
            let fd = root.resolve_dir(&[])?;
            let fd = open_dir_at(&fd, ".")?;
            rfs::fchmod(&fd, Mode::from_raw_mode(mode))?;
            continue;
        };
        let Ok(pfd) = root.resolve_dir(parent) else {
            continue;
        };
        match open_dir_at(&pfd, os(base)) {
            Ok(fd) => rfs::fchmod(&fd, Mode::from_raw_mode(mode))?,
            Err(Errno::NOTDIR) | Err(Errno::LOOP) | Err(Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The xattr `key` of the directory `dir` itself, or of `child` in it (not followed); `None`
/// if it is not set.
fn get_xattr(dir: BorrowedFd<'_>, child: Option<&[u8]>, key: &str) -> io::Result<Option<Vec<u8>>> {
    let mut v = [0u8; 64];
    let r = match child {
        None => rfs::fgetxattr(dir, key, &mut v),
        Some(c) => rfs::lgetxattr(proc_path(dir, c), key, &mut v),
    };
    match r {
        Ok(n) => Ok(Some(v[..n].to_vec())),
        Err(Errno::NODATA) => Ok(None),
        // Longer than any value this crate writes: set by someone else, but set.
        Err(Errno::RANGE) => Ok(Some(Vec::new())),
        Err(e) => Err(e.into()),
    }
}

/// `mknod NAME c 0 0` in `dir`.
fn mknod_whiteout(dir: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<()> {
    // Tests force the xattr form, which this kernel would not need, from a child process.
    #[cfg(test)]
    if std::env::var_os("OCI_UNPACK_TEST_XATTR_WHITEOUTS").is_some() {
        return Err(Errno::PERM);
    }
    rfs::mknodat(
        dir,
        os(name),
        FileType::CharacterDevice,
        Mode::empty(),
        rfs::makedev(0, 0),
    )
}

fn times(t: Timespec) -> Timestamps {
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn proc_path(dir: BorrowedFd<'_>, base: &[u8]) -> std::path::PathBuf {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(base);
    std::path::PathBuf::from(os(&p))
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// A PAX time: decimal seconds with an optional fraction (POSIX pax "Extended Header Keywords").
fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let (secs, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let tv_sec: i64 = secs.parse().ok()?;
    let mut nsec: i64 = 0;
    for (i, ch) in frac.chars().take(9).enumerate() {
        let d = ch.to_digit(10)? as i64;
        nsec += d * 10i64.pow(8 - i as u32);
    }
    if tv_sec < 0 && nsec > 0 {
        // -1.5 is 1.5 s before the epoch: -2 s + 0.5 s.
        return Some(Timespec {
            tv_sec: tv_sec - 1,
            tv_nsec: 1_000_000_000 - nsec,
        });
    }
    Some(Timespec {
        tv_sec,
        tv_nsec: nsec,
    })
}

/// The `user.rootlesscontainers` value: the protobuf message
/// `Resource { uint32 uid = 1; uint32 gid = 2; }` (github.com/rootless-containers/proto),
/// hand-encoded because two varint fields do not justify a protobuf dependency.
pub(crate) fn rootless_value(uid: u32, gid: u32) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u32) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut out = Vec::new();
    // proto3 omits fields at their default (0).
    if uid != 0 {
        out.push(0x08);
        varint(&mut out, uid);
    }
    if gid != 0 {
        out.push(0x10);
        varint(&mut out, gid);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        let t = parse_pax_time(b"1700000000.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 250_000_000));
        let t = parse_pax_time(b"-1.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 500_000_000));
        assert!(parse_pax_time(b"x").is_none());
        assert!(parse_pax_time(b"1.x").is_none());
    }

    #[test]
    fn rootless_protobuf() {
        assert_eq!(rootless_value(0, 0), Vec::<u8>::new());
        assert_eq!(rootless_value(1000, 0), vec![0x08, 0xe8, 0x07]);
        assert_eq!(rootless_value(0, 5), vec![0x10, 0x05]);
    }
}
