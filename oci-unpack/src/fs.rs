//! Path resolution that cannot leave the root, and the fd-based primitives built on it.
//!
//! Every path taken from a layer is first cleaned lexically ([`clean`]: `.` and empty components
//! dropped, `..` clamped at the root, exactly as `filepath.Join("/", name)` does in umoci and
//! Docker), then its parent directory is opened with `openat2(RESOLVE_IN_ROOT)`: symlinks met on
//! the way, absolute or `..`, are resolved as if the root were `/`, which is how the container
//! will see them. The last component is never followed: it is created, replaced or removed with
//! `*at` calls on the parent's fd with `AT_SYMLINK_NOFOLLOW`/`O_NOFOLLOW`. No path is ever built
//! by joining strings and then opened from `/` (CVE-2018-15664, CVE-2019-14271 and umoci's
//! CVE-2018-1000820 were all that mistake).

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// A cleaned path inside the root: components without `/`, `.` or `..`.
pub(crate) type Components = Vec<Vec<u8>>;

/// Cleans a tar entry name: splits on `/`, drops empty and `.` components, and resolves `..`
/// lexically, never above the root. The result is empty for the root itself.
pub(crate) fn clean(name: &[u8]) -> Components {
    let mut out: Components = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c.to_vec()),
        }
    }
    out
}

/// Joins components with `/` (for use as an `openat2` path relative to the root fd, or as a key).
pub(crate) fn join(c: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::with_capacity(c.iter().map(|x| x.len() + 1).sum());
    for (i, x) in c.iter().enumerate() {
        if i > 0 {
            v.push(b'/');
        }
        v.extend_from_slice(x);
    }
    v
}

pub(crate) fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

/// An open root directory; everything below is reached through it.
#[derive(Debug)]
pub(crate) struct Root {
    fd: OwnedFd,
}

const DIR_PATH: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);

impl Root {
    /// Opens `path` (which must be a directory; a symlink in its place is refused).
    pub(crate) fn open(path: &Path) -> io::Result<Root> {
        let fd = rfs::open(path, DIR_PATH | OFlags::NOFOLLOW, Mode::empty())?;
        Ok(Root { fd })
    }

    /// Opens the directory at `c` inside the root (`O_PATH`), following symlinks as the
    /// container would, never out of the root.
    pub(crate) fn resolve_dir(&self, c: &[Vec<u8>]) -> io::Result<OwnedFd> {
        let p = if c.is_empty() { b".".to_vec() } else { join(c) };
        self.resolve(&p, DIR_PATH)
    }

    /// `openat2(root, p, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, retried on `EAGAIN`
    /// (the kernel returns it when a rename or mount elsewhere raced the `..` checks).
    pub(crate) fn resolve(&self, p: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
        let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        let mut tries = 0;
        loop {
            match rfs::openat2(&self.fd, os(p), flags, Mode::empty(), resolve) {
                // Under constant mount churn fast retries can all lose: yield between them.
                Err(Errno::AGAIN) | Err(Errno::INTR) if tries < 1024 => {
                    tries += 1;
                    std::thread::yield_now();
                }
                r => return r.map_err(io::Error::from),
            }
        }
    }

    /// Opens the directory at `c`, creating missing components (mode 0755) on the way.
    ///
    /// A component that exists but is not a directory (or is a dangling symlink) is an error:
    /// `ENOTDIR` or `ELOOP`.
    pub(crate) fn mkdir_all(&self, c: &[Vec<u8>]) -> io::Result<OwnedFd> {
        match self.resolve_dir(c) {
            Ok(fd) => Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc_enoent()) && !c.is_empty() => {
                let (name, parent) = c.split_last().expect("non-empty");
                let pfd = self.mkdir_all(parent)?;
                match rfs::mkdirat(&pfd, os(name), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                Ok(rfs::openat(
                    &pfd,
                    os(name),
                    DIR_PATH | OFlags::NOFOLLOW,
                    Mode::empty(),
                )?)
            }
            Err(e) => Err(e),
        }
    }
}

fn libc_enoent() -> i32 {
    Errno::NOENT.raw_os_error()
}

/// Opens directory `name` in `dir` for reading, refusing a symlink in its place.
pub(crate) fn open_dir_at<P: rustix::path::Arg>(
    dir: impl AsFd,
    name: P,
) -> rustix::io::Result<OwnedFd> {
    rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The type of `name` in `dir`, without following a symlink; `None` if it does not exist.
pub(crate) fn type_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<FileType>> {
    match rfs::statat(dir, os(name), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Removes `name` from `dir` whatever it is; a directory goes with everything below it. The
/// walk is fd-based and never follows a symlink (a symlink is removed, not its target).
///
/// It holds two descriptors whatever the depth (a tree 2048 levels deep must not need 2048
/// open files): it goes down by name and back up by `..`, checking that `..` is the directory
/// it came from (device and inode), and keeps only the names still to remove at each level.
///
/// `force_perms` gives a directory `u+rwx` before it is listed, for a non-root caller whose
/// image holds directories with mode 000.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8], force_perms: bool) -> io::Result<()> {
    if !unlink_or_dir(dir, name)? {
        return Ok(());
    }
    if force_perms {
        let _ = rfs::chmodat(dir, os(name), Mode::from_raw_mode(0o700), AtFlags::empty());
    }
    let mut cur = open_dir_at(dir, os(name))?;
    let mut levels: Vec<Level> = vec![(name.to_vec(), (0, 0), list_dir(cur.as_fd())?)];
    loop {
        let child = levels.last_mut().and_then(|l| l.2.pop());
        if let Some(child) = child {
            if !unlink_or_dir(cur.as_fd(), &child)? {
                continue;
            }
            if force_perms {
                let _ = rfs::chmodat(
                    &cur,
                    os(&child),
                    Mode::from_raw_mode(0o700),
                    AtFlags::empty(),
                );
            }
            let sub = open_dir_at(&cur, os(&child))?;
            let names = list_dir(sub.as_fd())?;
            levels.push((child, identity(cur.as_fd())?, names));
            cur = sub;
            continue;
        }
        // `cur` is empty now.
        let Some((done, parent_id, _)) = levels.pop() else {
            return Ok(());
        };
        if levels.is_empty() {
            drop(cur);
            return match rfs::unlinkat(dir, os(&done), AtFlags::REMOVEDIR) {
                Ok(()) | Err(Errno::NOENT) => Ok(()),
                Err(e) => Err(e.into()),
            };
        }
        let parent = open_dir_at(&cur, "..")?;
        if identity(parent.as_fd())? != parent_id {
            return Err(io::Error::other(
                "a directory was moved while its tree was being removed",
            ));
        }
        cur = parent;
        match rfs::unlinkat(&cur, os(&done), AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// One directory of [`remove_all_at`]'s walk: its name in its parent, the parent's identity,
/// the names left to remove in it.
pub(crate) type Level = (Vec<u8>, (u64, u64), Vec<Vec<u8>>);

/// Unlinks `name` in `dir` unless it is a directory: true if it is one (and still there).
fn unlink_or_dir(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<bool> {
    match rfs::unlinkat(dir, os(name), AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(false),
        // unlink(2) on a directory: EISDIR on Linux, EPERM by POSIX.
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    if type_at(dir, name)? != Some(FileType::Directory) {
        // EPERM on a non-directory is a real permission error: retry to report it.
        rfs::unlinkat(dir, os(name), AtFlags::empty())?;
        return Ok(false);
    }
    Ok(true)
}

/// A directory's device and inode.
pub(crate) fn identity(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let st = rfs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// The names in directory `dir` (which must be open for reading), without `.` and `..`.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    let mut d = rfs::Dir::read_from(dir)?;
    while let Some(ent) = d.read() {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    Ok(names)
}

/// Removes the directory tree at `path` (used for private directories this crate created).
pub(crate) fn remove_tree(path: &Path, force_perms: bool) -> io::Result<()> {
    let (parent, name) = match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => (p, n),
        _ => return Err(io::Error::from(io::ErrorKind::InvalidInput)),
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let pfd = rfs::open(parent, DIR_PATH, Mode::empty())?;
    remove_all_at(pfd.as_fd(), name.as_bytes(), force_perms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(c: &Components) -> String {
        String::from_utf8(join(c)).unwrap()
    }

    #[test]
    fn clean_clamps_at_root() {
        assert_eq!(s(&clean(b"../../etc/passwd")), "etc/passwd");
        assert_eq!(s(&clean(b"/abs/./x//y/")), "abs/x/y");
        assert_eq!(s(&clean(b"a/b/../../../c")), "c");
        assert!(clean(b"./").is_empty());
        assert!(clean(b"/").is_empty());
        assert!(clean(b"..").is_empty());
    }

    #[test]
    fn resolve_stays_in_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("dots")).unwrap();
        let r = Root::open(&root).unwrap();
        // Through either symlink, `tmp` is looked up in the root, where it does not exist.
        for link in ["up", "dots"] {
            let e = r
                .resolve_dir(&clean(format!("{link}/tmp").as_bytes()))
                .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc_enoent()), "{link}");
        }
        let fd = r.mkdir_all(&clean(b"up/made/here")).unwrap();
        drop(fd);
        assert!(root.join("made/here").is_dir());
    }

    #[test]
    fn remove_all_does_not_follow_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"x").unwrap();
        let victim = dir.path().join("victim");
        std::fs::create_dir_all(victim.join("sub")).unwrap();
        std::os::unix::fs::symlink(&outside, victim.join("sub/link")).unwrap();
        remove_tree(&victim, false).unwrap();
        assert!(!victim.exists());
        assert!(outside.join("keep").exists());
    }
}
