//! Device nodes: config-linux.md "Devices" and "Default Devices", and the /dev symlinks of
//! runtime-spec's "Default Filesystems" companions (`/dev/fd`, `/dev/std*`, `/dev/ptmx`).
//!
//! Nodes are made with mknodat(2) in a directory resolved inside the rootfs (a rootfs whose
//! `/dev` is a symlink gets its nodes wherever that symlink leads *inside* the rootfs). In a
//! new user namespace mknod is not allowed, so the host's node is bind-mounted onto an empty
//! file instead, as runc does.

use crate::error::{Error, Result};
use crate::mounts::{self, Create, Dest};
use crate::sys::{self, CResult, FdPath, Step};
use libc::c_int;
use oci_spec::runtime::{Linux, LinuxDeviceType};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[derive(Debug)]
pub(crate) struct Node {
    pub dest: Dest,
    /// Directory part of `dest`, created if missing.
    parent: Option<Dest>,
    mode: u32,
    rdev: libc::dev_t,
    uid: u32,
    gid: u32,
    /// The host path bind-mounted in a user namespace.
    host: CString,
}

#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub nodes: Vec<Node>,
    symlinks: Vec<(CString, Node)>,
    bind: bool,
}

// config-linux.md "Default Devices".
const DEFAULTS: &[(&str, u32, u32)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];
const SYMLINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
];

fn node(path: &Path, mode: u32, major: i64, minor: i64, uid: u32, gid: u32) -> Result<Node> {
    let dest = Dest::new(path, "linux.devices[].path")?;
    let parent = path
        .parent()
        .filter(|p| *p != Path::new("/"))
        .map(|p| Dest::new(p, "linux.devices[].path"))
        .transpose()?;
    let (major, minor) = (
        u32::try_from(major)
            .map_err(|_| Error::invalid("linux.devices[].major", "out of range"))?,
        u32::try_from(minor)
            .map_err(|_| Error::invalid("linux.devices[].minor", "out of range"))?,
    );
    Ok(Node {
        dest,
        parent,
        mode,
        rdev: libc::makedev(major, minor),
        uid,
        gid,
        host: CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Error::invalid("linux.devices[].path", "NUL byte"))?,
    })
}

pub(crate) fn plan(linux: &Linux, new_user: bool, skip_defaults: bool) -> Result<Plan> {
    let mut plan = Plan {
        bind: new_user,
        ..Plan::default()
    };
    let config = linux.devices().as_deref().unwrap_or_default();
    if !skip_defaults {
        for (path, major, minor) in DEFAULTS {
            // A device of the config at the same path overrides the default.
            if !config.iter().any(|d| d.path() == Path::new(path)) {
                plan.nodes.push(node(
                    Path::new(path),
                    libc::S_IFCHR | 0o666,
                    *major as i64,
                    *minor as i64,
                    0,
                    0,
                )?);
            }
        }
        for (target, link) in SYMLINKS {
            let target =
                CString::new(*target).map_err(|_| Error::invalid("linux.devices", "NUL"))?;
            plan.symlinks
                .push((target, node(Path::new(link), 0, 0, 0, 0, 0)?));
        }
    }
    for d in config {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::invalid(
                    "linux.devices[].type",
                    "\"a\" is only valid in cgroup device rules",
                ))
            }
        };
        if new_user && kind == libc::S_IFIFO {
            return Err(Error::Unsupported {
                field: "linux.devices[].type (fifo in a user namespace)",
            });
        }
        let perm = d.file_mode().unwrap_or(0o666) & 0o7777;
        plan.nodes.push(node(
            d.path(),
            kind | perm,
            d.major(),
            d.minor(),
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        )?);
    }
    Ok(plan)
}

fn parent_fd(rootfd: c_int, n: &Node, step: Step, i: usize) -> CResult<c_int> {
    match &n.parent {
        Some(p) => mounts::resolve(rootfd, p, Create::Dir, step, i),
        // SAFETY: dup of an fd we own.
        None => sys::check(
            unsafe { libc::fcntl(rootfd, libc::F_DUPFD_CLOEXEC, 0) } as i64,
            step,
            i,
        )
        .map(|fd| fd as c_int),
    }
}

/// Child: creates the nodes and symlinks.
pub(crate) fn create(plan: &Plan, rootfd: c_int) -> CResult {
    for (i, n) in plan.nodes.iter().enumerate() {
        let dir = parent_fd(rootfd, n, Step::Device, i)?;
        let (_, name) = n.dest.split_last();
        let r = (|| {
            if plan.bind {
                // SAFETY: *at syscalls on an fd we own, names prepared before fork.
                let f = unsafe {
                    libc::openat(
                        dir,
                        name.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                        0o000,
                    )
                };
                if f < 0 {
                    return Err(sys::errno());
                }
                sys::close(f);
                let fd = sys::openat2(
                    dir,
                    name,
                    libc::O_PATH | libc::O_NOFOLLOW,
                    0,
                    sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
                )?;
                let r = sys::mount(
                    n.host.as_ptr(),
                    FdPath::new(fd).as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                );
                sys::close(fd);
                return r;
            }
            // SAFETY: as above.
            unsafe {
                if libc::unlinkat(dir, name.as_ptr(), 0) < 0 && sys::errno() != libc::ENOENT {
                    return Err(sys::errno());
                }
                if libc::mknodat(dir, name.as_ptr(), n.mode, n.rdev) < 0 {
                    return Err(sys::errno());
                }
                // mknod's mode is filtered by the umask; the config's fileMode is exact.
                if libc::fchmodat(dir, name.as_ptr(), n.mode & 0o7777, 0) < 0 {
                    return Err(sys::errno());
                }
                if libc::fchownat(dir, name.as_ptr(), n.uid, n.gid, libc::AT_SYMLINK_NOFOLLOW) < 0 {
                    return Err(sys::errno());
                }
            }
            Ok(())
        })();
        sys::close(dir);
        r.map_err(|e| sys::fail(Step::Device, i, e))?;
    }
    for (i, (target, n)) in plan.symlinks.iter().enumerate() {
        let dir = parent_fd(rootfd, n, Step::DeviceSymlink, i)?;
        let (_, name) = n.dest.split_last();
        // SAFETY: as above.
        let r = unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) };
        let e = sys::errno();
        sys::close(dir);
        if r < 0 && e != libc::EEXIST {
            return Err(sys::fail(Step::DeviceSymlink, i, e));
        }
    }
    Ok(())
}
