//! `Config.User` resolution against the container's own `/etc/passwd` and `/etc/group`
//! (image-spec conversion.md, "Config.User").
//!
//! The files are opened with `openat2(RESOLVE_IN_ROOT)`, so a hostile image whose
//! `/etc/passwd` is a symlink to `/etc/shadow` of the host, or whose `/etc` is `../../..`,
//! reads its own files or nothing, never the host's.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::error::{Error, Result};

/// The largest passwd or group file read (a bound on hostile images).
const MAX_DB_SIZE: u64 = 16 << 20;

/// A resolved user: what goes into `process.user`, plus the home directory for `HOME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    /// `process.user.uid`.
    pub uid: u32,
    /// `process.user.gid`.
    pub gid: u32,
    /// `process.user.additionalGids`; `None` when the spec says not to set them (numeric user
    /// or explicit group).
    pub additional_gids: Option<Vec<u32>>,
    /// The user's home directory, `/` if unknown.
    pub home: String,
}

#[derive(Debug, Clone)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

#[derive(Debug, Clone)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Reads `rel` (relative to the rootfs, e.g. `etc/passwd`) with every path component resolved
/// inside `rootfs`. A missing file, or anything but a regular file, is `Ok(None)`: the path
/// is opened `O_PATH` and checked before it is opened for reading, so a FIFO never blocks
/// the caller and a device node of a hostile image (or of a running container) is never
/// opened by the runtime.
pub fn read_in_root(rootfs: &Path, rel: &str, limit: u64) -> Result<Option<Vec<u8>>> {
    let root = File::open(rootfs).map_err(|e| Error::io(rootfs, e))?;
    let open = || {
        rustix::fs::openat2(
            &root,
            rel,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV,
        )
    };
    // openat2(2) returns EAGAIN when a rename or mount anywhere on the system raced a `..`
    // step of the resolution (as in the `../../etc/passwd` symlink of a hostile image).
    // Under constant mount churn (a host starting containers) fast retries can all lose, so
    // later ones wait a little: about a second in all before giving up.
    let mut result = open();
    for tries in 0..1100 {
        if !matches!(
            result,
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR)
        ) {
            break;
        }
        if tries < 100 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        result = open();
    }
    let fd = match result {
        Ok(fd) => fd,
        // A symlink loop (ELOOP) or a crossing to another mount (EXDEV) cannot name a file
        // inside the root: the file is not there.
        Err(
            rustix::io::Errno::NOENT
            | rustix::io::Errno::NOTDIR
            | rustix::io::Errno::LOOP
            | rustix::io::Errno::XDEV,
        ) => return Ok(None),
        Err(e) => return Err(Error::io(rootfs.join(rel), e.into())),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| Error::io(rootfs.join(rel), e.into()))?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
        return Ok(None);
    }
    // Reopened through the O_PATH fd: the same inode, whatever the path now names.
    let mut f = rustix::fs::open(
        format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map(File::from)
    .map_err(|e| Error::io(rootfs.join(rel), e.into()))?;
    let mut buf = Vec::new();
    (&mut f)
        .take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(rootfs.join(rel), e))?;
    if buf.len() as u64 > limit {
        return Err(Error::io(
            rootfs.join(rel),
            std::io::Error::other(format!("larger than {limit} bytes")),
        ));
    }
    Ok(Some(buf))
}

fn parse_passwd(data: &str) -> Vec<PasswdEntry> {
    data.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f.get(5).copied().unwrap_or("").to_string(),
            })
        })
        .collect()
}

fn parse_group(data: &str) -> Vec<GroupEntry> {
    data.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn numeric(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Resolves a `Config.User` value (`user`, `uid`, `user:group`, `uid:gid`, `user:gid`,
/// `uid:group`) against the rootfs. An empty spec is root.
///
/// Rules (conversion.md): numeric values are copied verbatim; names are looked up and an
/// unknown name is an error; additional gids are the groups listing the user as a member, and
/// are left unset for a numeric user or an explicit group.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ExecUser> {
    let err = |message: String| Error::User {
        spec: spec.to_string(),
        message,
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() && group.is_some() {
        return Err(err("empty user name".into()));
    }
    let read = |rel: &str| -> Result<String> {
        Ok(read_in_root(rootfs, rel, MAX_DB_SIZE)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default())
    };
    let passwd = parse_passwd(&read("etc/passwd")?);
    let user = if user.is_empty() { "0" } else { user };

    let (uid, mut gid, home, name, by_name) = match numeric(user) {
        Some(uid) => match passwd.iter().find(|e| e.uid == uid) {
            Some(e) => (uid, e.gid, e.home.clone(), Some(e.name.clone()), false),
            None => (uid, 0, "/".to_string(), None, false),
        },
        None => match passwd.iter().find(|e| e.name == user) {
            Some(e) => (e.uid, e.gid, e.home.clone(), Some(e.name.clone()), true),
            None => {
                return Err(err(format!(
                    "no user named {user:?} in the container's /etc/passwd"
                )))
            }
        },
    };

    let mut groups: Option<Vec<GroupEntry>> = None;
    let mut load_groups = || -> Result<Vec<GroupEntry>> {
        if groups.is_none() {
            groups = Some(parse_group(&read("etc/group")?));
        }
        Ok(groups.clone().unwrap_or_default())
    };

    match group {
        Some("") => return Err(err("empty group name".into())),
        Some(g) => {
            gid = match numeric(g) {
                Some(n) => n,
                None => match load_groups()?.iter().find(|e| e.name == g) {
                    Some(e) => e.gid,
                    None => {
                        return Err(err(format!(
                            "no group named {g:?} in the container's /etc/group"
                        )))
                    }
                },
            };
        }
        None => {}
    }

    let additional_gids = match (group, by_name, &name) {
        (None, true, Some(name)) => {
            let mut gids: Vec<u32> = load_groups()?
                .iter()
                .filter(|g| g.members.iter().any(|m| m == name))
                .map(|g| g.gid)
                .filter(|g| *g != gid)
                .collect();
            gids.sort_unstable();
            gids.dedup();
            Some(gids)
        }
        _ => None,
    };
    Ok(ExecUser {
        uid,
        gid,
        additional_gids,
        home: if home.is_empty() { "/".into() } else { home },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n\
             # comment\n\
             app:x:1000:1000:App:/home/app:/bin/sh\n\
             broken line\n\
             nobody:x:65534:65534::/nonexistent:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\naudio:x:29:app\nstaff:x:50:\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn names_numbers_and_groups() {
        let r = rootfs();
        let u = resolve_user(r.path(), "app").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, Some(vec![10, 29]));
        assert_eq!(u.home, "/home/app");
        let u = resolve_user(r.path(), "1000").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (1000, 1000, None));
        let u = resolve_user(r.path(), "4242").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        let u = resolve_user(r.path(), "app:staff").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (1000, 50, None));
        let u = resolve_user(r.path(), "4242:4343").unwrap();
        assert_eq!((u.uid, u.gid), (4242, 4343));
        let u = resolve_user(r.path(), "").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
    }

    #[test]
    fn unknown_names_are_errors() {
        let r = rootfs();
        for bad in ["ghost", "app:ghosts", ":0", "app:", "0:"] {
            assert!(resolve_user(r.path(), bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_files_are_never_read_through_symlinks() {
        // A "host" directory with a passwd naming a user the image does not have.
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("passwd"), "hostuser:x:7:7::/:/bin/sh\n").unwrap();
        let r = tempfile::tempdir().unwrap();
        // /etc -> an absolute host path: resolved inside the root, where it does not exist.
        std::os::unix::fs::symlink(host.path(), r.path().join("etc")).unwrap();
        let e = resolve_user(r.path(), "hostuser").unwrap_err();
        assert!(e.to_string().contains("no user named"), "{e}");
        // /etc -> ../../.. + host path: `..` stops at the root.
        let r1 = tempfile::tempdir().unwrap();
        let up = format!("../../../../../..{}", host.path().display());
        std::os::unix::fs::symlink(up, r1.path().join("etc")).unwrap();
        assert!(resolve_user(r1.path(), "hostuser").is_err());
        let r2 = tempfile::tempdir().unwrap();
        std::fs::create_dir(r2.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/passwd", r2.path().join("etc/passwd"))
            .unwrap();
        assert!(resolve_user(r2.path(), "root").is_err());
        // Numeric users still work without any database.
        assert_eq!(resolve_user(r2.path(), "0").unwrap().uid, 0);
    }

    #[test]
    fn a_fifo_or_device_as_passwd_is_never_opened() {
        use std::os::unix::fs::FileTypeExt;
        // A FIFO would block an open for reading forever; a device node could be anything.
        let r = tempfile::tempdir().unwrap();
        std::fs::create_dir(r.path().join("etc")).unwrap();
        let passwd = r.path().join("etc/passwd");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &passwd,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert!(std::fs::metadata(&passwd).unwrap().file_type().is_fifo());
        let u = resolve_user(r.path(), "1000").unwrap();
        assert_eq!((u.uid, u.home.as_str()), (1000, "/"));
        assert!(resolve_user(r.path(), "nobody").is_err());
        std::fs::remove_file(&passwd).unwrap();
        // /dev/zero's numbers: read, it would never end.
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &passwd,
            rustix::fs::FileType::CharacterDevice,
            Mode::from_raw_mode(0o644),
            rustix::fs::makedev(1, 5),
        )
        .unwrap();
        assert_eq!(resolve_user(r.path(), "0").unwrap().home, "/");
    }
}
