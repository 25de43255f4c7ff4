//! The digest of an unpacked tree, recorded for each store layer when it is unpacked and
//! compared by [`crate::LayerStore::verify`]: a change under `layers/…/diff` (an edit, a
//! deleted file, a flipped bit, a chmod) shows as a different digest.
//!
//! What is hashed, entry by entry in sorted pre-order: the path, the type, the mode, owner,
//! size, device number, symlink target, every xattr (overlayfs's whiteout and opaque marks
//! included), the SHA-256 of a regular file's content, the first path of a hardlink group, and
//! the modification time of everything but directories (a directory's time is the unpack's
//! when the layer does not list it, so it would differ between two unpacks of one layer).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use oci_image::Hasher;
use oci_spec::image::Digest;
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};

use crate::fs::{identity, list_dir, open_dir_at, os};

/// The digest of the tree at `root` (a directory, not followed if a symlink).
///
/// The walk holds two directory descriptors whatever the depth (down by name, up by `..`
/// checked by device and inode), as [`crate::fs::remove_all_at`] does.
pub(crate) fn tree_digest(root: &Path) -> io::Result<Digest> {
    let mut h = Hasher::sha256();
    let mut groups: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut cur = rfs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rfs::fstat(&cur)?;
    record(&mut h, b"", &st, cur.as_fd(), None, &mut groups, &mut buf)?;
    // Per level: the path of the directory, its parent's identity, the names left (sorted,
    // the next one last).
    let mut levels: Vec<crate::fs::Level> = vec![(Vec::new(), (0, 0), sorted(cur.as_fd())?)];
    while let Some(level) = levels.last_mut() {
        let Some(name) = level.2.pop() else {
            let (_, parent, _) = levels.pop().expect("non-empty");
            if levels.is_empty() {
                break;
            }
            let up = open_dir_at(&cur, "..")?;
            if identity(up.as_fd())? != parent {
                return Err(io::Error::other(
                    "a directory moved while the tree was hashed",
                ));
            }
            cur = up;
            continue;
        };
        let mut path = level.0.clone();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&name);
        let st = rfs::statat(&cur, os(&name), AtFlags::SYMLINK_NOFOLLOW)?;
        record(
            &mut h,
            &path,
            &st,
            cur.as_fd(),
            Some(&name),
            &mut groups,
            &mut buf,
        )?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let sub = open_dir_at(&cur, os(&name))?;
            let names = sorted(sub.as_fd())?;
            let parent = identity(cur.as_fd())?;
            levels.push((path, parent, names));
            cur = sub;
        }
    }
    Ok(h.finish())
}

fn sorted(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut names = list_dir(dir)?;
    names.sort_unstable_by(|a, b| b.cmp(a));
    Ok(names)
}

/// Hashes one entry: `name` in `dir`, or `dir` itself when `name` is `None`.
fn record(
    h: &mut Hasher,
    path: &[u8],
    st: &rfs::Stat,
    dir: BorrowedFd<'_>,
    name: Option<&[u8]>,
    groups: &mut HashMap<(u64, u64), Vec<u8>>,
    buf: &mut [u8],
) -> io::Result<()> {
    let ft = FileType::from_raw_mode(st.st_mode);
    let kind = match ft {
        FileType::Directory => 'd',
        FileType::RegularFile => 'f',
        FileType::Symlink => 'l',
        FileType::CharacterDevice => 'c',
        FileType::BlockDevice => 'b',
        FileType::Fifo => 'p',
        _ => 's',
    };
    let mut line = Vec::with_capacity(path.len() + 128);
    line.extend_from_slice(path);
    line.extend_from_slice(
        format!(
            "\0{kind}\0{:o}\0{}\0{}\0{}\0{}\0",
            st.st_mode & 0o7777,
            st.st_uid,
            st.st_gid,
            if ft == FileType::Directory {
                0
            } else {
                st.st_size
            },
            if matches!(ft, FileType::CharacterDevice | FileType::BlockDevice) {
                st.st_rdev
            } else {
                0
            },
        )
        .as_bytes(),
    );
    if ft != FileType::Directory {
        line.extend_from_slice(format!("{}.{}\0", st.st_mtime, st.st_mtime_nsec).as_bytes());
        if st.st_nlink > 1 {
            let first = groups
                .entry((st.st_dev, st.st_ino))
                .or_insert_with(|| path.to_vec());
            line.extend_from_slice(first);
        }
        line.push(0);
    }
    let xpath = match name {
        Some(n) => {
            let mut p =
                format!("/proc/self/fd/{}/", std::os::fd::AsRawFd::as_raw_fd(&dir)).into_bytes();
            p.extend_from_slice(n);
            std::path::PathBuf::from(os(&p))
        }
        None => std::path::PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&dir)
        )),
    };
    let mut names = vec![0u8; 64 * 1024];
    let n = match rfs::llistxattr(&xpath, &mut names) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => 0,
        Err(e) => return Err(e.into()),
    };
    let mut keys: Vec<&[u8]> = names[..n]
        .split(|&b| b == 0)
        .filter(|k| !k.is_empty())
        .collect();
    keys.sort_unstable();
    let mut v = vec![0u8; 64 * 1024];
    for k in keys {
        let m = rfs::lgetxattr(&xpath, os(k), &mut v)?;
        line.extend_from_slice(k);
        line.push(b'=');
        line.extend_from_slice(hex(&v[..m]).as_bytes());
        line.push(0);
    }
    match ft {
        FileType::Symlink => {
            if let Some(n) = name {
                line.extend_from_slice(rfs::readlinkat(dir, os(n), Vec::new())?.as_bytes());
            }
        }
        FileType::RegularFile => {
            if let Some(n) = name {
                let fd: OwnedFd = rfs::openat(
                    dir,
                    os(n),
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let mut f = File::from(fd);
                let mut content = Hasher::sha256();
                loop {
                    match f.read(buf) {
                        Ok(0) => break,
                        Ok(k) => content.update(&buf[..k]),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                line.extend_from_slice(content.finish().to_string().as_bytes());
            }
        }
        _ => {}
    }
    line.push(b'\n');
    // The length first: no two different entries hash alike by running into each other.
    h.update(&(line.len() as u64).to_le_bytes());
    h.update(&line);
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_shows() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path().join("r");
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        std::fs::write(r.join("a/b/f"), b"x").unwrap();
        std::fs::write(r.join("g"), b"y").unwrap();
        let base = tree_digest(&r).unwrap();
        assert_eq!(tree_digest(&r).unwrap(), base);
        std::fs::write(r.join("a/b/f"), b"z").unwrap();
        let t = std::fs::File::open(r.join("g"))
            .unwrap()
            .metadata()
            .unwrap()
            .modified()
            .unwrap();
        std::fs::File::options()
            .write(true)
            .open(r.join("a/b/f"))
            .unwrap()
            .set_modified(t)
            .unwrap();
        let edited = tree_digest(&r).unwrap();
        assert_ne!(edited, base);
        std::fs::hard_link(r.join("g"), r.join("h")).unwrap();
        assert_ne!(tree_digest(&r).unwrap(), edited);
    }
}
