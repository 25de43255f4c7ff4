//! Hardlinks to files of lower layers, in the layer store.
//!
//! layer.md "Hardlinks": a hardlink's target is a path in the filesystem the layers build, so a
//! valid layer may link to a file that a lower layer added. A store layer is unpacked alone
//! (its own directory, in parallel with the others), so the target is not there; the applier
//! records the link ([`LowerLink`]) and, once every layer below is unpacked, [`resolve`]
//! looks the target up through the layers as overlayfs would (whiteouts, opaque directories,
//! an opaque layer root, symlinks in the directories on the way) and copies it up into the
//! layer at its own path, then links to the copy. The merged tree then shows what a flat
//! unpack shows: the same content, owner, mode, xattrs and times, and both names one inode.
//! This is what overlayfs does itself when a container links to a lower file, and what
//! containerd's applier does by unpacking onto a view of the lower layers.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timestamps};
use rustix::io::Errno;

use crate::fs::{join, os, Components};

/// A hardlink of a store layer whose target was not in the layer's own tree.
#[derive(Debug, Clone)]
pub(crate) struct LowerLink {
    /// The tar entry's name, for errors.
    pub(crate) entry: Vec<u8>,
    /// The link's path (cleaned).
    pub(crate) link: Components,
    /// The target's path (cleaned lexically; symlinks on the way are followed here).
    pub(crate) target: Components,
}

/// The layers of an overlay, top first: the layer being completed, then the ones below it.
pub(crate) struct Stack {
    layers: Vec<OwnedFd>,
    /// `trusted.overlay.` or `user.overlay.`.
    prefix: &'static str,
}

const DIR_PATH: OFlags = OFlags::PATH
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// The kernel's limit on symlinks followed in one lookup (`MAXSYMLINKS`).
const MAX_HOPS: usize = 40;

/// What one layer holds at a path.
enum Here {
    /// Nothing: look further down (unless something above hid the lower layers).
    Absent,
    /// A whiteout, or a non-directory on the way: the path does not exist below.
    Hidden,
    /// An entry of this type.
    Entry(FileType),
}

impl Stack {
    /// `layers` are the layers' root directories, top first.
    pub(crate) fn open(layers: &[std::path::PathBuf], prefix: &'static str) -> io::Result<Self> {
        let layers = layers
            .iter()
            .map(|p| Ok(rfs::open(p, DIR_PATH, Mode::empty())?))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Stack { layers, prefix })
    }

    fn opaque(&self, dir: BorrowedFd<'_>) -> io::Result<bool> {
        let key = format!("{}opaque", self.prefix);
        let mut v = [0u8; 4];
        let fd = rfs::openat(
            dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        match rfs::fgetxattr(&fd, key.as_str(), &mut v) {
            Ok(n) => Ok(&v[..n] == b"y"),
            Err(Errno::NODATA) | Err(Errno::NOTSUP) | Err(Errno::RANGE) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn is_whiteout(&self, dir: BorrowedFd<'_>, name: &[u8], st: &rfs::Stat) -> io::Result<bool> {
        Ok(match FileType::from_raw_mode(st.st_mode) {
            FileType::CharacterDevice => st.st_rdev == 0,
            FileType::RegularFile if st.st_size == 0 => {
                let fd = rfs::openat(
                    dir,
                    os(name),
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let key = format!("{}whiteout", self.prefix);
                let mut v = [0u8; 4];
                match rfs::fgetxattr(&fd, key.as_str(), &mut v) {
                    Ok(_) => true,
                    Err(Errno::NODATA) | Err(Errno::NOTSUP) => false,
                    Err(e) => return Err(e.into()),
                }
            }
            _ => false,
        })
    }

    /// What layer `j` holds at `p`, and whether it hides the layers below for `p` (an opaque
    /// directory on the way, or an opaque root).
    fn here(&self, j: usize, p: &[Vec<u8>]) -> io::Result<(Here, bool)> {
        let mut dir = rfs::openat(&self.layers[j], ".", DIR_PATH, Mode::empty())?;
        let mut stops = self.opaque(dir.as_fd())?;
        for (k, c) in p.iter().enumerate() {
            let st = match rfs::statat(&dir, os(c), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => return Ok((Here::Absent, stops)),
                Err(e) => return Err(e.into()),
            };
            if self.is_whiteout(dir.as_fd(), c, &st)? {
                return Ok((Here::Hidden, true));
            }
            let ft = FileType::from_raw_mode(st.st_mode);
            if k + 1 == p.len() {
                return Ok((Here::Entry(ft), true));
            }
            if ft != FileType::Directory {
                // overlayfs: a non-directory hides the directories of the same name below it.
                return Ok((Here::Hidden, true));
            }
            dir = rfs::openat(&dir, os(c), DIR_PATH, Mode::empty())?;
            stops |= self.opaque(dir.as_fd())?;
        }
        Ok((Here::Entry(FileType::Directory), true))
    }

    /// The top-most layer holding `p` in the merged view, and the type there.
    fn find(&self, p: &[Vec<u8>]) -> io::Result<Option<(usize, FileType)>> {
        for j in 0..self.layers.len() {
            match self.here(j, p)? {
                (Here::Entry(ft), _) => return Ok(Some((j, ft))),
                (Here::Hidden, _) => return Ok(None),
                (Here::Absent, true) => return Ok(None),
                (Here::Absent, false) => {}
            }
        }
        Ok(None)
    }

    /// The parent directory of `p` in layer `j` (`O_PATH`).
    fn parent_in(&self, j: usize, p: &[Vec<u8>]) -> io::Result<OwnedFd> {
        let mut dir = rfs::openat(&self.layers[j], ".", DIR_PATH, Mode::empty())?;
        for c in &p[..p.len().saturating_sub(1)] {
            dir = rfs::openat(&dir, os(c), DIR_PATH, Mode::empty())?;
        }
        Ok(dir)
    }

    /// Resolves `target` in the merged view, following symlinks in the directories on the
    /// way (never the last component, as `linkat` does not), never above the root. Returns the
    /// path of the entry (without symlinks) and the layer holding it.
    fn resolve(&self, target: &[Vec<u8>]) -> io::Result<(Components, usize)> {
        let mut todo: std::collections::VecDeque<Vec<u8>> = target.iter().cloned().collect();
        let mut done: Components = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop_front() {
            match c.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            let mut p = done.clone();
            p.push(c);
            let Some((j, ft)) = self.find(&p)? else {
                return Err(Errno::NOENT.into());
            };
            if todo.is_empty() {
                return Ok((p, j));
            }
            match ft {
                FileType::Directory => done = p,
                FileType::Symlink => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(Errno::LOOP.into());
                    }
                    let dir = self.parent_in(j, &p)?;
                    let base = p.last().cloned().unwrap_or_default();
                    let link = rfs::readlinkat(&dir, os(&base), Vec::new())?.into_bytes();
                    if link.starts_with(b"/") {
                        done.clear();
                    }
                    for part in link.split(|&b| b == b'/').rev() {
                        todo.push_front(part.to_vec());
                    }
                }
                _ => return Err(Errno::NOTDIR.into()),
            }
        }
        // The target named a directory (`a/..`, a symlink to `/`): not linkable.
        Err(Errno::ISDIR.into())
    }
}

/// Completes the deferred links of the layer on top of `stack` (layer 0), in archive order.
///
/// A link whose own path was written again later in the layer is skipped (the later entry
/// won). The target found in the layer itself (a file an earlier link copied up, or one the
/// layer has behind a symlink of a lower layer) is linked to directly. One order differs from
/// a flat unpack: a layer that links to a lower file and then replaces that file later in the
/// same archive gets the link to its new file (flat: to the old one); no tool writes layers
/// that way, since a layer's tar is a diff of one final tree.
pub(crate) fn resolve(
    stack: &Stack,
    links: &[LowerLink],
) -> Result<(), (Vec<u8>, String, io::Error)> {
    for l in links {
        let fail = |op: &str, e: io::Error| {
            (
                l.entry.clone(),
                format!("{op} {:?}", String::from_utf8_lossy(&join(&l.target))),
                e,
            )
        };
        let Some((lbase, lparent)) = l.link.split_last() else {
            continue;
        };
        let ldir = stack
            .parent_in(0, &l.link)
            .map_err(|e| fail("open the parent of the link to", e))?;
        match rfs::statat(&ldir, os(lbase), AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => {}
            Ok(_) => continue,
            Err(e) => return Err(fail("stat the link to", e.into())),
        }
        let _ = lparent;
        let (path, j) = stack.resolve(&l.target).map_err(|e| fail("link to", e))?;
        if j != 0 {
            copy_up(stack, j, &path).map_err(|e| fail("copy up from a lower layer", e))?;
        }
        let tdir = stack.parent_in(0, &path).map_err(|e| fail("link to", e))?;
        let tbase = path.last().cloned().unwrap_or_default();
        let ltimes = times_of(ldir.as_fd())
            .map_err(|(_, _, e)| fail("stat the parent of the link to", e))?;
        rfs::linkat(&tdir, os(&tbase), &ldir, os(lbase), AtFlags::empty())
            .map_err(|e| fail("link to", e.into()))?;
        restore_times(ldir.as_fd(), ltimes)
            .map_err(|e| fail("utimens the parent of the link to", e))?;
    }
    Ok(())
}

type DirTimes = Timestamps;

fn times_of(dir: BorrowedFd<'_>) -> Result<DirTimes, (Vec<u8>, String, io::Error)> {
    let st = rfs::fstat(dir).map_err(|e| (Vec::new(), "stat".into(), e.into()))?;
    Ok(stat_times(&st))
}

/// Sets the times of the directory `dir` (an `O_PATH` descriptor) back.
fn restore_times(dir: BorrowedFd<'_>, t: DirTimes) -> io::Result<()> {
    let fd = rfs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rfs::futimens(&fd, &t)?;
    Ok(())
}

/// Copies the entry at `path` of layer `j` into layer 0 at the same path, making the
/// directories on the way as the merged view shows them (owner, mode, xattrs, times), so the
/// merged tree is unchanged by the copy.
fn copy_up(stack: &Stack, j: usize, path: &[Vec<u8>]) -> io::Result<()> {
    let mut top = rfs::openat(&stack.layers[0], ".", DIR_PATH, Mode::empty())?;
    for k in 0..path.len() - 1 {
        let c = &path[k];
        match rfs::statat(&top, os(c), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => {}
            Err(Errno::NOENT) => {
                let Some((src_layer, _)) = stack.find(&path[..=k])? else {
                    return Err(Errno::NOENT.into());
                };
                let sdir = stack.parent_in(src_layer, &path[..=k])?;
                let parent_times = times_of(top.as_fd()).map_err(|(_, _, e)| e)?;
                rfs::mkdirat(&top, os(c), Mode::from_raw_mode(0o700))?;
                let made = rfs::openat(
                    &top,
                    os(c),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let src = rfs::openat(
                    &sdir,
                    os(c),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                copy_meta(stack, src.as_fd(), made.as_fd())?;
                restore_times(top.as_fd(), parent_times)?;
            }
            Err(e) => return Err(e.into()),
        }
        top = rfs::openat(&top, os(c), DIR_PATH, Mode::empty())?;
    }
    let base = &path[path.len() - 1];
    let sdir = stack.parent_in(j, path)?;
    let st = rfs::statat(&sdir, os(base), AtFlags::SYMLINK_NOFOLLOW)?;
    let parent_times = times_of(top.as_fd()).map_err(|(_, _, e)| e)?;
    let ft = FileType::from_raw_mode(st.st_mode);
    match ft {
        FileType::RegularFile => {
            let src = rfs::openat(
                &sdir,
                os(base),
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let dst = rfs::openat(
                &top,
                os(base),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let (mut src, mut dst) = (File::from(src), File::from(dst));
            // copy_file_range where the filesystem has it (reflinks on XFS and btrfs).
            io::copy(&mut src, &mut dst)?;
            copy_meta(stack, src.as_fd(), dst.as_fd())?;
        }
        FileType::Symlink => {
            let target = rfs::readlinkat(&sdir, os(base), Vec::new())?;
            rfs::symlinkat(target.as_c_str(), &top, os(base))?;
            rfs::chownat(
                &top,
                os(base),
                Some(rfs::Uid::from_raw_unchecked(st.st_uid)),
                Some(rfs::Gid::from_raw_unchecked(st.st_gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
            copy_xattrs_at(stack, &sdir, &top, base)?;
            rfs::utimensat(&top, os(base), &stat_times(&st), AtFlags::SYMLINK_NOFOLLOW)?;
        }
        FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice => {
            rfs::mknodat(&top, os(base), ft, Mode::from_raw_mode(0o600), st.st_rdev)?;
            rfs::chownat(
                &top,
                os(base),
                Some(rfs::Uid::from_raw_unchecked(st.st_uid)),
                Some(rfs::Gid::from_raw_unchecked(st.st_gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
            rfs::chmodat(
                &top,
                os(base),
                Mode::from_raw_mode(st.st_mode & 0o7777),
                AtFlags::empty(),
            )?;
            copy_xattrs_at(stack, &sdir, &top, base)?;
            rfs::utimensat(&top, os(base), &stat_times(&st), AtFlags::SYMLINK_NOFOLLOW)?;
        }
        _ => return Err(Errno::PERM.into()),
    }
    restore_times(top.as_fd(), parent_times)
}

fn stat_times(st: &rfs::Stat) -> Timestamps {
    Timestamps {
        last_access: rfs::Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: rfs::Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// Owner, mode, xattrs (overlayfs's own excepted) and times of `src` onto `dst`, both open.
fn copy_meta(stack: &Stack, src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<()> {
    let st = rfs::fstat(src)?;
    if !rustix::process::geteuid().is_root() {
        // Rootless: the owner is the caller; `user.rootlesscontainers` travels with the xattrs.
    } else {
        rfs::fchown(
            dst,
            Some(rfs::Uid::from_raw_unchecked(st.st_uid)),
            Some(rfs::Gid::from_raw_unchecked(st.st_gid)),
        )?;
    }
    // chmod after chown, which clears setuid and setgid.
    rfs::fchmod(dst, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    for (k, v) in xattrs(src)? {
        if k.starts_with(stack.prefix.as_bytes()) {
            continue;
        }
        rfs::fsetxattr(dst, os(&k), &v, rfs::XattrFlags::empty())?;
    }
    rfs::futimens(dst, &stat_times(&st))?;
    Ok(())
}

fn copy_xattrs_at(stack: &Stack, sdir: &OwnedFd, ddir: &OwnedFd, base: &[u8]) -> io::Result<()> {
    let proc = |d: &OwnedFd| {
        let mut p = format!("/proc/self/fd/{}/", std::os::fd::AsRawFd::as_raw_fd(d)).into_bytes();
        p.extend_from_slice(base);
        std::path::PathBuf::from(os(&p))
    };
    let (sp, dp) = (proc(sdir), proc(ddir));
    let mut names = vec![0u8; 64 * 1024];
    let n = match rfs::llistxattr(&sp, &mut names) {
        Ok(n) => n,
        Err(Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for k in names[..n].split(|&b| b == 0).filter(|k| !k.is_empty()) {
        if k.starts_with(stack.prefix.as_bytes()) {
            continue;
        }
        let mut v = vec![0u8; 64 * 1024];
        let m = rfs::lgetxattr(&sp, os(k), &mut v)?;
        rfs::lsetxattr(&dp, os(k), &v[..m], rfs::XattrFlags::empty())?;
    }
    Ok(())
}

/// The xattrs of an open file.
fn xattrs(fd: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut names = vec![0u8; 64 * 1024];
    let n = match rfs::flistxattr(fd, &mut names) {
        Ok(n) => n,
        Err(Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for k in names[..n].split(|&b| b == 0).filter(|k| !k.is_empty()) {
        let mut v = vec![0u8; 64 * 1024];
        let m = rfs::fgetxattr(fd, os(k), &mut v)?;
        v.truncate(m);
        out.push((k.to_vec(), v));
    }
    Ok(out)
}
