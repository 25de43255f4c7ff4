//! Helpers shared by the integration tests: building layers (including hostile ones the `tar`
//! crate's safe setters refuse to write), images in a layout, and snapshots of trees.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use oci_image::spec::image::*;
use oci_image::{Image, Layout};
use sha2::Digest as _;

pub const MTIME: u64 = 1_600_000_000;

/// A tar layer under construction. Names and link names are written raw into the header, so
/// tests can write `..`, absolute paths and other things a well-behaved writer refuses.
pub struct Tar {
    b: tar::Builder<Vec<u8>>,
}

impl Default for Tar {
    fn default() -> Self {
        Self::new()
    }
}

fn put(dst: &mut [u8], v: &[u8]) {
    assert!(v.len() <= dst.len(), "name too long for a raw header");
    dst.fill(0);
    dst[..v.len()].copy_from_slice(v);
}

impl Tar {
    pub fn new() -> Self {
        Tar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, path: &str, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        put(&mut h.as_old_mut().name, path.as_bytes());
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(size);
        h
    }

    fn append(&mut self, mut h: tar::Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    fn pax(&mut self, records: &[(&str, &[u8])]) {
        if !records.is_empty() {
            self.b
                .append_pax_extensions(records.iter().copied())
                .unwrap();
        }
    }

    pub fn file(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
        let h = Self::header(tar::EntryType::Regular, path, mode, data.len() as u64);
        self.append(h, data)
    }

    pub fn file_owned(
        &mut self,
        path: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Regular, path, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.append(h, data)
    }

    /// A regular file with xattrs, as PAX `SCHILY.xattr.*` records.
    pub fn file_x(
        &mut self,
        path: &str,
        data: &[u8],
        mode: u32,
        xattrs: &[(&str, &[u8])],
    ) -> &mut Self {
        let keys: Vec<String> = xattrs
            .iter()
            .map(|(k, _)| format!("SCHILY.xattr.{k}"))
            .collect();
        let recs: Vec<(&str, &[u8])> = keys
            .iter()
            .map(|k| k.as_str())
            .zip(xattrs.iter().map(|(_, v)| *v))
            .collect();
        self.pax(&recs);
        self.file(path, data, mode)
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let h = Self::header(tar::EntryType::Directory, path, mode, 0);
        self.append(h, &[])
    }

    pub fn dir_owned(&mut self, path: &str, mode: u32, uid: u64, gid: u64) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Directory, path, mode, 0);
        h.set_uid(uid);
        h.set_gid(gid);
        self.append(h, &[])
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Symlink, path, 0o777, 0);
        put(&mut h.as_old_mut().linkname, target.as_bytes());
        self.append(h, &[])
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Link, path, 0o644, 0);
        put(&mut h.as_old_mut().linkname, target.as_bytes());
        self.append(h, &[])
    }

    pub fn fifo(&mut self, path: &str, mode: u32) -> &mut Self {
        let h = Self::header(tar::EntryType::Fifo, path, mode, 0);
        self.append(h, &[])
    }

    pub fn chardev(&mut self, path: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Char, path, 0o666, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.append(h, &[])
    }

    pub fn blockdev(&mut self, path: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Block, path, 0o660, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.append(h, &[])
    }

    pub fn whiteout(&mut self, path: &str) -> &mut Self {
        self.file(path, &[], 0o644)
    }

    /// A file whose name only fits a GNU long-name entry.
    pub fn long_gnu(&mut self, path: &str, data: &[u8]) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(data.len() as u64);
        self.b.append_data(&mut h, path, data).unwrap();
        self
    }

    /// A file named by a PAX `path` record.
    pub fn long_pax(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.pax(&[("path", path.as_bytes()), ("mtime", b"1600000000.5")]);
        self.file("placeholder", data, 0o644)
    }

    pub fn bytes(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

pub fn compress(tar: &[u8], c: Comp) -> Vec<u8> {
    match c {
        Comp::None => tar.to_vec(),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        Comp::Zstd => zstd::encode_all(tar, 3).unwrap(),
    }
}

pub fn media_type(c: Comp) -> MediaType {
    match c {
        Comp::None => MediaType::ImageLayer,
        Comp::Gzip => MediaType::ImageLayerGzip,
        Comp::Zstd => MediaType::ImageLayerZstd,
    }
}

/// Writes an image of `layers` (uncompressed tars) into a new layout at `dir`, tagged `latest`.
pub fn image(dir: &Path, layers: &[Vec<u8>], c: Comp) -> (Layout, Image) {
    let with: Vec<(Vec<u8>, Comp)> = layers.iter().map(|l| (l.clone(), c)).collect();
    image_mixed(dir, &with)
}

pub fn image_mixed(dir: &Path, layers: &[(Vec<u8>, Comp)]) -> (Layout, Image) {
    let layout = Layout::create(dir).unwrap();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for (tar, c) in layers {
        let blob = compress(tar, *c);
        descs.push(layout.put_blob(media_type(*c), &blob).unwrap());
        diff_ids.push(oci_image::sha256_digest(tar).to_string());
    }
    let config = ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(diff_ids)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let config = layout.put_json(MediaType::ImageConfig, &config).unwrap();
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(descs)
        .build()
        .unwrap();
    let d = layout.put_manifest(&manifest).unwrap();
    layout.tag("latest", &d).unwrap();
    let image = layout.resolve("latest", None).unwrap();
    (layout, image)
}

/// What a test compares about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub target: Option<String>,
    pub sha256: Option<String>,
    pub rdev: u64,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// For non-directories with several links: the smallest path of the hardlink group.
    pub link_group: Option<String>,
    pub mtime: Option<i64>,
}

pub fn xattrs(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 65536];
    let Ok(n) = rustix::fs::llistxattr(p, &mut names[..]) else {
        return out;
    };
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let key = String::from_utf8_lossy(name).into_owned();
        let mut v = vec![0u8; 65536];
        if let Ok(m) = rustix::fs::lgetxattr(p, name, &mut v[..]) {
            out.insert(key, v[..m].to_vec());
        }
    }
    out
}

/// Every path below `root` (not following symlinks), with what the tests compare.
/// Directory mtimes are left out (a later layer adding a child changes them in every tool).
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let kind = if ft.is_dir() {
                'd'
            } else if ft.is_symlink() {
                'l'
            } else if ft.is_file() {
                'f'
            } else if ft.is_fifo() {
                'p'
            } else if ft.is_char_device() {
                'c'
            } else if ft.is_block_device() {
                'b'
            } else {
                's'
            };
            let sha256 = ft
                .is_file()
                .then(|| hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap())));
            let target = ft.is_symlink().then(|| {
                std::fs::read_link(&p)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            });
            let link_group = (!ft.is_dir() && m.nlink() > 1).then(|| {
                inodes
                    .entry((m.dev(), m.ino()))
                    .or_insert_with(|| rel.clone())
                    .clone()
            });
            out.insert(
                rel,
                Node {
                    kind,
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                    target,
                    sha256,
                    rdev: if ft.is_char_device() || ft.is_block_device() {
                        m.rdev()
                    } else {
                        0
                    },
                    xattrs: xattrs(&p),
                    link_group,
                    mtime: (!ft.is_dir()).then(|| m.mtime()),
                },
            );
            if ft.is_dir() {
                stack.push(p);
            }
        }
    }
    // Hardlink groups are named after their first path in sorted order, whatever the walk order.
    let mut first: BTreeMap<String, String> = BTreeMap::new();
    for (path, n) in &out {
        if let Some(g) = &n.link_group {
            first.entry(g.clone()).or_insert_with(|| path.clone());
        }
    }
    for n in out.values_mut() {
        if let Some(g) = &n.link_group {
            n.link_group = Some(first[g].clone());
        }
    }
    out
}

/// A directory outside the unpack target holding files an attack would like to change.
pub struct Host {
    pub dir: tempfile::TempDir,
    before: BTreeMap<String, Node>,
    dirs_before: Vec<(String, u32, u32, i64, i64)>,
}

/// Mode, owner and times of the directories below and including `root` (the snapshot leaves
/// directory times out; an attack on the host must not change them either).
fn dir_attrs(root: &Path) -> Vec<(String, u32, u32, i64, i64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let m = std::fs::symlink_metadata(&d).unwrap();
        out.push((
            d.to_string_lossy().into_owned(),
            m.mode(),
            m.uid(),
            m.mtime(),
            m.mtime_nsec(),
        ));
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

impl Host {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::create_dir(p.join("etc")).unwrap();
        std::fs::write(p.join("etc/shadow"), b"secret\n").unwrap();
        let before = snapshot(p);
        let dirs_before = dir_attrs(p);
        Host {
            dir,
            before,
            dirs_before,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The host directory's absolute path, as a string for symlink targets.
    pub fn s(&self) -> String {
        self.dir.path().to_string_lossy().into_owned()
    }

    pub fn assert_untouched(&self) {
        assert_eq!(
            snapshot(self.dir.path()),
            self.before,
            "the host directory changed"
        );
    }
}

impl Default for Host {
    fn default() -> Self {
        Self::new()
    }
}

/// A temp directory holding a layout (`layout/`) and targets, all removed on drop.
pub fn workdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}
