//! Filesystem set-up: rootfs propagation and bind, the config's mounts, sysctls, masked and
//! read-only paths, pivot_root and the read-only root.
//!
//! Every path inside the rootfs is resolved by the kernel with openat2(2) `RESOLVE_IN_ROOT`
//! from an fd of the rootfs, at the moment it is used, and the mount is made onto
//! `/proc/self/fd/N` of the fd that resolution returned: a symlink swapped in between
//! resolution and mount is never followed (CVE-2021-30465), and a symlink inside the rootfs
//! (absolute or `../..`) stays inside it (DESIGN.md "Invariants").

use crate::cgroups;
use crate::error::{Error, Result};
use crate::sys::{
    self, CResult, FdPath, Step, RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS,
    RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV,
};
use libc::{c_int, c_ulong};
use oci_spec::runtime::{Linux, LinuxNamespaceType, Spec};
use std::ffi::CString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const IN_ROOT: u64 = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

/// A path inside the container, split so that the child can create it component by component.
#[derive(Debug)]
pub(crate) struct Dest {
    /// `a`, `a/b`, `a/b/c`: each prefix, relative to the rootfs.
    prefixes: Vec<CString>,
    /// `a`, `b`, `c`.
    names: Vec<CString>,
    /// The path as the config spelled it, for errors.
    pub display: String,
}

impl Dest {
    /// `field` names the config field, for errors. The path must be absolute and not `/`.
    pub(crate) fn new(path: &Path, field: &'static str) -> Result<Dest> {
        if !path.is_absolute() {
            return Err(Error::invalid(
                field,
                format!("{} is not an absolute path", path.display()),
            ));
        }
        let mut prefixes = Vec::new();
        let mut names = Vec::new();
        let mut acc = Vec::<u8>::new();
        for c in path.components() {
            let name = match c {
                Component::RootDir | Component::CurDir => continue,
                Component::ParentDir => b"..".as_slice(),
                Component::Normal(n) => n.as_bytes(),
                Component::Prefix(_) => continue,
            };
            if !acc.is_empty() {
                acc.push(b'/');
            }
            acc.extend_from_slice(name);
            let nul = |_| Error::invalid(field, "NUL byte in path");
            prefixes.push(CString::new(acc.clone()).map_err(nul)?);
            names.push(CString::new(name).map_err(nul)?);
        }
        if prefixes.is_empty() {
            return Err(Error::invalid(
                field,
                "the container's root itself cannot be a destination",
            ));
        }
        Ok(Dest {
            prefixes,
            names,
            display: path.display().to_string(),
        })
    }

    /// The parent directory and the last name, for nodes created with `*at` calls.
    pub(crate) fn split_last(&self) -> (Option<&std::ffi::CStr>, &std::ffi::CStr) {
        let n = self.names.len();
        let parent = if n > 1 {
            Some(self.prefixes[n - 2].as_c_str())
        } else {
            None
        };
        (parent, self.names[n - 1].as_c_str())
    }

    fn full(&self) -> &std::ffi::CStr {
        &self.prefixes[self.prefixes.len() - 1]
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Create {
    No,
    Dir,
    File,
}

/// Child: resolves `prefix` (a relative path) inside the rootfs.
pub(crate) fn open_in_root(
    rootfd: c_int,
    path: &std::ffi::CStr,
    flags: c_int,
) -> Result<c_int, i32> {
    sys::openat2(rootfd, path, flags | libc::O_PATH, 0, IN_ROOT)
}

/// Child: resolves `dest` inside the rootfs, creating missing components (directories, or a
/// file for the last one), and returns an `O_PATH` fd of it. Each component is looked up again
/// with `RESOLVE_IN_ROOT` after it is created, so a component that is (or becomes) a symlink
/// can only lead to another place inside the rootfs.
pub(crate) fn resolve(
    rootfd: c_int,
    dest: &Dest,
    create: Create,
    step: Step,
    index: usize,
) -> CResult<c_int> {
    match open_in_root(rootfd, dest.full(), 0) {
        Ok(fd) => return Ok(fd),
        Err(libc::ENOENT) if create != Create::No => {}
        Err(e) => return Err(sys::fail(step, index, e)),
    }
    let n = dest.prefixes.len();
    let mut held: c_int = -1;
    for i in 0..n {
        let parent = if held >= 0 { held } else { rootfd };
        let fd = match open_in_root(rootfd, &dest.prefixes[i], 0) {
            Ok(fd) => fd,
            Err(libc::ENOENT) => {
                let name = dest.names[i].as_ptr();
                // SAFETY: plain *at syscalls with NUL-terminated names prepared before fork.
                let r = unsafe {
                    if i == n - 1 && create == Create::File {
                        let f = libc::openat(
                            parent,
                            name,
                            libc::O_CREAT
                                | libc::O_EXCL
                                | libc::O_WRONLY
                                | libc::O_CLOEXEC
                                | libc::O_NOFOLLOW,
                            0o644,
                        );
                        if f >= 0 {
                            libc::close(f);
                        }
                        f
                    } else {
                        libc::mkdirat(parent, name, 0o755)
                    }
                };
                if r < 0 && sys::errno() != libc::EEXIST {
                    let e = sys::errno();
                    if held >= 0 {
                        sys::close(held);
                    }
                    return Err(sys::fail(step, index, e));
                }
                match open_in_root(rootfd, &dest.prefixes[i], 0) {
                    Ok(fd) => fd,
                    Err(e) => {
                        if held >= 0 {
                            sys::close(held);
                        }
                        return Err(sys::fail(step, index, e));
                    }
                }
            }
            Err(e) => {
                if held >= 0 {
                    sys::close(held);
                }
                return Err(sys::fail(step, index, e));
            }
        };
        if held >= 0 {
            sys::close(held);
        }
        held = fd;
    }
    Ok(held)
}

/// One entry of `mounts`, ready for the child.
#[derive(Debug)]
pub(crate) struct MountPlan {
    pub dest: Dest,
    is_file: bool,
    bind: bool,
    source: CString,
    fstype: CString,
    /// `MS_*` flags given to the mount call (for a bind: `MS_BIND` and maybe `MS_REC`).
    flags: c_ulong,
    /// For a bind with flags: the flags of the `MS_REMOUNT | MS_BIND` that applies them.
    remount: Option<c_ulong>,
    data: CString,
    propagation: Vec<c_ulong>,
    /// Not a mount: a symlink at `dest` to this target, made in this parent directory.
    symlink: Option<(CString, Dest)>,
    /// Not a mount: `mount(MS_REMOUNT | flags)` of what is mounted at `dest`.
    remount_only: bool,
    /// A sysfs mount: if the kernel refuses it (EPERM, or EBUSY: a user namespace without a
    /// network namespace of its own, such as a rootless container's), the host's `/sys` is
    /// bound recursively instead, with the mount's flags, as runc does.
    sysfs_fallback: bool,
}

/// Everything of the filesystem set-up, ready for the child.
#[derive(Debug)]
pub(crate) struct Plan {
    rootfs: CString,
    root_propagation: c_ulong,
    /// For a shared rootfs propagation: the flags applied to the new root after pivot_root
    /// (shared, or recursively shared), and the mount point that holds the rootfs, made
    /// private first (pivot_root(2) refuses a shared parent, and a bind under a shared
    /// parent would propagate to the host).
    shared_root: Option<(c_ulong, CString)>,
    pub mounts: Vec<MountPlan>,
    pub sysctls: Vec<(String, CString, CString)>,
    pub masked: Vec<Dest>,
    pub readonly: Vec<Dest>,
    readonly_root: bool,
    /// Whether /dev is a bind mount (then no default devices are created, as runc does).
    pub dev_is_bind: bool,
    /// MS_MOVE the rootfs onto / and chroot instead of pivot_root (runc's `--no-pivot`).
    pub no_pivot: bool,
    /// The host-side tmpfs of `tmpcopyup` mounts; unmounted when the plan is dropped (after
    /// the container has bound them, or on failure).
    pub _copy_ups: Vec<CopyUp>,
}

/// A `tmpcopyup` tmpfs (runc's extension, podman's `--read-only` mounts): a tmpfs mounted
/// privately on the host, filled with what the image has at the destination, then bound into
/// the container like any bind mount. Once the container holds its bind, the host side is
/// detached; the tmpfs lives as long as the container's mount.
#[derive(Debug)]
pub(crate) struct CopyUp {
    dir: std::path::PathBuf,
}

impl Drop for CopyUp {
    fn drop(&mut self) {
        if let Ok(c) = CString::new(self.dir.as_os_str().as_bytes()) {
            // SAFETY: umount2(2) of our own mount point.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Mounts the tmpfs of a `tmpcopyup` mount on the host and copies `rootfs`/`dest` into it.
fn copy_up(rootfs: &Path, dest: &Path, flags: c_ulong, data: &str) -> Result<CopyUp> {
    let dir = std::env::temp_dir().join(format!(
        "oci-sandbox-tmpcopyup-{}-{}",
        std::process::id(),
        COPY_UPS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    std::fs::create_dir(&dir).map_err(Error::sys("mkdir", dir.clone()))?;
    let up = CopyUp { dir };
    let target = cstr(up.dir.as_os_str().as_bytes(), "mounts[].destination")?;
    let data_c = cstr(data, "mounts[].options")?;
    // SAFETY: mount(2) with valid C strings; then make it private so that nothing propagates
    // between the host and the container through it.
    unsafe {
        let fstype = c"tmpfs";
        if libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data_c.as_ptr().cast(),
        ) < 0
        {
            return Err(Error::last_os("mount", Some(up.dir.clone())));
        }
        if libc::mount(
            std::ptr::null(),
            target.as_ptr(),
            std::ptr::null(),
            libc::MS_PRIVATE,
            std::ptr::null(),
        ) < 0
        {
            return Err(Error::last_os("mount", Some(up.dir.clone())));
        }
    }
    // The source, resolved inside the rootfs (a symlinked destination cannot make us copy a
    // host directory); a destination the image does not have leaves the tmpfs empty.
    let root = std::fs::File::open(rootfs).map_err(Error::sys("open", rootfs.to_path_buf()))?;
    let rel = dest.strip_prefix("/").unwrap_or(dest);
    let rel_c = cstr(rel.as_os_str().as_bytes(), "mounts[].destination")?;
    let Ok(fd) = sys::openat2(
        std::os::fd::AsRawFd::as_raw_fd(&root),
        &rel_c,
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        IN_ROOT,
    ) else {
        return Ok(up);
    };
    // SAFETY: a fresh fd we own.
    let src: std::os::fd::OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
    copy_tree(&src, &up.dir, 0)?;
    copy_owner_mode(&src, &up.dir)?;
    Ok(up)
}

static COPY_UPS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn copy_owner_mode(src: &std::os::fd::OwnedFd, dst: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::File::from(src.try_clone().map_err(Error::sys("dup", None))?)
        .metadata()
        .map_err(Error::sys("fstat", dst.to_path_buf()))?;
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))
        .map_err(Error::sys("chown", dst.to_path_buf()))?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(Error::sys("chmod", dst.to_path_buf()))
}

/// Copies the directory open at `src` into `dst` (a directory on our tmpfs): every entry is
/// opened relative to its parent's fd without following symlinks, so the walk stays inside
/// the image's tree.
fn copy_tree(src: &std::os::fd::OwnedFd, dst: &Path, depth: usize) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if depth > 128 {
        return Err(Error::invalid(
            "mounts[].options (tmpcopyup)",
            "directory tree deeper than 128",
        ));
    }
    let fd = std::os::fd::AsRawFd::as_raw_fd(src);
    let list = format!("/proc/self/fd/{fd}");
    for entry in std::fs::read_dir(&list).map_err(Error::sys("readdir", dst.to_path_buf()))? {
        let entry = entry.map_err(Error::sys("readdir", dst.to_path_buf()))?;
        let name = entry.file_name();
        let name_c = cstr(name.as_bytes(), "mounts[].destination")?;
        let target = dst.join(&name);
        // SAFETY: libc::stat is plain data; all zeroes is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstatat(2) relative to our dir fd, not following a symlink.
        if unsafe { libc::fstatat(fd, name_c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } < 0 {
            continue;
        }
        let mode = st.st_mode & libc::S_IFMT;
        let open = |flags: c_int| -> Result<std::os::fd::OwnedFd> {
            // SAFETY: openat(2) relative to our dir fd.
            let f = unsafe {
                libc::openat(
                    fd,
                    name_c.as_ptr(),
                    flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            };
            if f < 0 {
                return Err(Error::last_os("openat", Some(target.clone())));
            }
            // SAFETY: a fresh fd we own.
            Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(f) })
        };
        match mode {
            libc::S_IFDIR => {
                std::fs::create_dir(&target).map_err(Error::sys("mkdir", target.clone()))?;
                let sub = open(libc::O_RDONLY | libc::O_DIRECTORY)?;
                copy_tree(&sub, &target, depth + 1)?;
                copy_owner_mode(&sub, &target)?;
            }
            libc::S_IFREG => {
                let mut from = std::fs::File::from(open(libc::O_RDONLY)?);
                let mut to = std::fs::File::create_new(&target)
                    .map_err(Error::sys("create", target.clone()))?;
                std::io::copy(&mut from, &mut to).map_err(Error::sys("copy", target.clone()))?;
                let meta = from
                    .metadata()
                    .map_err(Error::sys("fstat", target.clone()))?;
                std::os::unix::fs::fchown(&to, Some(meta.uid()), Some(meta.gid()))
                    .map_err(Error::sys("chown", target.clone()))?;
                to.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
                    .map_err(Error::sys("chmod", target.clone()))?;
            }
            libc::S_IFLNK => {
                let mut buf = [0u8; 4096];
                // SAFETY: readlinkat(2) into our buffer.
                let n = unsafe {
                    libc::readlinkat(fd, name_c.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
                };
                if n < 0 {
                    return Err(Error::last_os("readlinkat", Some(target.clone())));
                }
                let link = std::ffi::OsStr::from_bytes(&buf[..n as usize]);
                std::os::unix::fs::symlink(link, &target)
                    .map_err(Error::sys("symlink", target.clone()))?;
                std::os::unix::fs::lchown(&target, Some(st.st_uid), Some(st.st_gid))
                    .map_err(Error::sys("chown", target.clone()))?;
            }
            // Sockets are not copied; fifos and device nodes are recreated.
            libc::S_IFSOCK => {}
            _ => {
                let t = cstr(target.as_os_str().as_bytes(), "mounts[].destination")?;
                // SAFETY: mknod(2) with a valid path.
                if unsafe { libc::mknod(t.as_ptr(), st.st_mode, st.st_rdev) } < 0 {
                    return Err(Error::last_os("mknod", Some(target.clone())));
                }
                std::os::unix::fs::lchown(&target, Some(st.st_uid), Some(st.st_gid))
                    .map_err(Error::sys("chown", target.clone()))?;
            }
        }
    }
    Ok(())
}

struct Flag {
    name: &'static str,
    clear: bool,
    flag: c_ulong,
}

// config.md "Linux mount options": the mount(8) option names and their MS_* flags.
const FLAGS: &[Flag] = &[
    Flag {
        name: "acl",
        clear: false,
        flag: libc::MS_POSIXACL,
    },
    Flag {
        name: "noacl",
        clear: true,
        flag: libc::MS_POSIXACL,
    },
    Flag {
        name: "iversion",
        clear: false,
        flag: libc::MS_I_VERSION,
    },
    Flag {
        name: "noiversion",
        clear: true,
        flag: libc::MS_I_VERSION,
    },
    Flag {
        name: "silent",
        clear: false,
        flag: libc::MS_SILENT,
    },
    Flag {
        name: "loud",
        clear: true,
        flag: libc::MS_SILENT,
    },
    Flag {
        name: "symfollow",
        clear: true,
        flag: libc::MS_NOSYMFOLLOW,
    },
    Flag {
        name: "async",
        clear: true,
        flag: libc::MS_SYNCHRONOUS,
    },
    Flag {
        name: "atime",
        clear: true,
        flag: libc::MS_NOATIME,
    },
    Flag {
        name: "defaults",
        clear: false,
        flag: 0,
    },
    Flag {
        name: "dev",
        clear: true,
        flag: libc::MS_NODEV,
    },
    Flag {
        name: "diratime",
        clear: true,
        flag: libc::MS_NODIRATIME,
    },
    Flag {
        name: "dirsync",
        clear: false,
        flag: libc::MS_DIRSYNC,
    },
    Flag {
        name: "exec",
        clear: true,
        flag: libc::MS_NOEXEC,
    },
    Flag {
        name: "lazytime",
        clear: false,
        flag: libc::MS_LAZYTIME,
    },
    Flag {
        name: "mand",
        clear: false,
        flag: libc::MS_MANDLOCK,
    },
    Flag {
        name: "noatime",
        clear: false,
        flag: libc::MS_NOATIME,
    },
    Flag {
        name: "nodev",
        clear: false,
        flag: libc::MS_NODEV,
    },
    Flag {
        name: "nodiratime",
        clear: false,
        flag: libc::MS_NODIRATIME,
    },
    Flag {
        name: "noexec",
        clear: false,
        flag: libc::MS_NOEXEC,
    },
    Flag {
        name: "nolazytime",
        clear: true,
        flag: libc::MS_LAZYTIME,
    },
    Flag {
        name: "nomand",
        clear: true,
        flag: libc::MS_MANDLOCK,
    },
    Flag {
        name: "norelatime",
        clear: true,
        flag: libc::MS_RELATIME,
    },
    Flag {
        name: "nostrictatime",
        clear: true,
        flag: libc::MS_STRICTATIME,
    },
    Flag {
        name: "nosuid",
        clear: false,
        flag: libc::MS_NOSUID,
    },
    Flag {
        name: "nosymfollow",
        clear: false,
        flag: libc::MS_NOSYMFOLLOW,
    },
    Flag {
        name: "relatime",
        clear: false,
        flag: libc::MS_RELATIME,
    },
    Flag {
        name: "ro",
        clear: false,
        flag: libc::MS_RDONLY,
    },
    Flag {
        name: "rw",
        clear: true,
        flag: libc::MS_RDONLY,
    },
    Flag {
        name: "strictatime",
        clear: false,
        flag: libc::MS_STRICTATIME,
    },
    Flag {
        name: "suid",
        clear: true,
        flag: libc::MS_NOSUID,
    },
    Flag {
        name: "sync",
        clear: false,
        flag: libc::MS_SYNCHRONOUS,
    },
];

fn propagation(name: &str) -> Option<c_ulong> {
    Some(match name {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

fn cstr(s: impl Into<Vec<u8>>, field: &'static str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(field, "NUL byte"))
}

/// What a `cgroup` mount needs to know about the container.
struct CgroupCtx<'a> {
    /// The container has a cgroup namespace of its own (or joins one).
    cgroupns: bool,
    /// `linux.cgroupsPath`; without it the container stays in the runtime's cgroups.
    path: Option<&'a Path>,
}

fn mount_plan(
    m: &oci_spec::runtime::Mount,
    bundle: Option<&Path>,
    cg: &CgroupCtx,
    rootfs: &Path,
    copy_ups: &mut Vec<CopyUp>,
) -> Result<Vec<MountPlan>> {
    if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        return Err(Error::Unsupported {
            field: "mounts[].uidMappings",
        });
    }
    let dest = Dest::new(m.destination(), "mounts[].destination")?;
    let typ = m.typ().clone().unwrap_or_default();
    if typ == "proc" {
        // CVE-2019-19921 (runc's hardening): a procfs mounted through a symlink the image put
        // at the destination lands wherever the image chose (over a tmpfs it controls, so
        // that later /proc writes go to fake files). Refused, as runc does.
        let at = rootfs.join(m.destination().strip_prefix("/").unwrap_or(m.destination()));
        if std::fs::symlink_metadata(&at).is_ok_and(|md| md.file_type().is_symlink()) {
            return Err(Error::invalid(
                "mounts[].destination",
                format!(
                    "the proc mount's destination {} is a symlink in the rootfs",
                    m.destination().display()
                ),
            ));
        }
    }
    let mut flags: c_ulong = 0;
    let mut bind = typ == "bind";
    let mut recursive = false;
    let mut props = Vec::new();
    let mut data = Vec::new();
    let mut tmpcopyup = false;
    for opt in m.options().as_deref().unwrap_or_default() {
        match opt.as_str() {
            "bind" => bind = true,
            "rbind" => {
                bind = true;
                recursive = true;
            }
            "idmap" | "ridmap" => {
                return Err(Error::Unsupported {
                    field: "mounts[].options (idmap)",
                })
            }
            "remount" => {
                return Err(Error::Unsupported {
                    field: "mounts[].options (remount)",
                })
            }
            "tmpcopyup" => tmpcopyup = true,
            o => {
                if let Some(p) = propagation(o) {
                    props.push(p);
                } else if let Some(f) = FLAGS.iter().find(|f| f.name == o) {
                    if f.clear {
                        flags &= !f.flag;
                    } else {
                        flags |= f.flag;
                    }
                } else if o.starts_with('r') && FLAGS.iter().any(|f| f.name == &o[1..]) {
                    // Recursive mount attributes (rro, rnosuid...) need mount_setattr(2).
                    return Err(Error::Unsupported {
                        field: "mounts[].options (recursive attribute)",
                    });
                } else {
                    data.push(o.to_string());
                }
            }
        }
    }
    if typ == "cgroup" {
        if bind || !data.is_empty() {
            return Err(Error::invalid(
                "mounts[].options",
                format!("{} is not a cgroup mount option", data.join(",")),
            ));
        }
        return cgroup_mounts(m.destination(), flags, props, cg);
    }
    if tmpcopyup {
        if typ != "tmpfs" || bind {
            return Err(Error::invalid(
                "mounts[].options",
                "tmpcopyup is for tmpfs mounts",
            ));
        }
        // The host-side tmpfs gets the data options (size, mode) and the flags; the bind into
        // the container gets the flags again (a bind does not inherit them).
        let up = copy_up(
            rootfs,
            m.destination(),
            flags & !libc::MS_RDONLY,
            &data.join(","),
        )?;
        let mut plan = bind_mount(m.destination(), &up.dir, flags)?;
        plan.propagation = props;
        copy_ups.push(up);
        return Ok(vec![plan]);
    }
    let (source, is_file) = if bind {
        let src = m
            .source()
            .as_ref()
            .ok_or_else(|| Error::invalid("mounts[].source", "a bind mount needs a source"))?;
        let src = if src.is_absolute() {
            src.clone()
        } else {
            // config.md "Mounts": a relative bind source is relative to the bundle.
            bundle
                .ok_or_else(|| {
                    Error::invalid(
                        "mounts[].source",
                        format!(
                            "relative source {} but no bundle directory given",
                            src.display()
                        ),
                    )
                })?
                .join(src)
        };
        let meta = std::fs::metadata(&src).map_err(Error::sys("stat", src.clone()))?;
        (
            cstr(src.as_os_str().as_bytes(), "mounts[].source")?,
            !meta.is_dir(),
        )
    } else {
        let src = m
            .source()
            .as_ref()
            .map(|s| s.as_os_str().as_bytes().to_vec())
            .unwrap_or_else(|| typ.clone().into_bytes());
        (cstr(src, "mounts[].source")?, false)
    };
    if !bind && typ.is_empty() {
        return Err(Error::invalid(
            "mounts[].type",
            format!(
                "mount at {} has neither a type nor a bind option",
                dest.display
            ),
        ));
    }
    let (mount_flags, remount) = if bind {
        let base = libc::MS_BIND | if recursive { libc::MS_REC } else { 0 };
        (
            base,
            if flags != 0 {
                Some(libc::MS_REMOUNT | libc::MS_BIND | flags)
            } else {
                None
            },
        )
    } else {
        (flags, None)
    };
    let sysfs_fallback = !bind && typ == "sysfs";
    Ok(vec![MountPlan {
        dest,
        is_file,
        bind,
        source,
        fstype: cstr(typ, "mounts[].type")?,
        flags: mount_flags,
        remount,
        data: cstr(data.join(","), "mounts[].options")?,
        propagation: props,
        symlink: None,
        remount_only: false,
        sysfs_fallback,
    }])
}

/// A plain (non-bind) mount of `fstype` at `dest`.
fn fs_mount(
    dest: &Path,
    source: &str,
    fstype: &str,
    flags: c_ulong,
    data: &str,
) -> Result<MountPlan> {
    Ok(MountPlan {
        dest: Dest::new(dest, "mounts[].destination")?,
        is_file: false,
        bind: false,
        source: cstr(source, "mounts[].source")?,
        fstype: cstr(fstype, "mounts[].type")?,
        flags,
        remount: None,
        data: cstr(data, "mounts[].options")?,
        propagation: Vec::new(),
        symlink: None,
        remount_only: false,
        sysfs_fallback: false,
    })
}

/// A recursive bind of the host directory `source` at `dest`, remounted with `flags`.
fn bind_mount(dest: &Path, source: &Path, flags: c_ulong) -> Result<MountPlan> {
    let mut m = fs_mount(dest, "", "", libc::MS_BIND | libc::MS_REC, "")?;
    m.bind = true;
    m.source = cstr(source.as_os_str().as_bytes(), "mounts[].source")?;
    m.remount = (flags != 0).then_some(libc::MS_REMOUNT | libc::MS_BIND | flags);
    Ok(m)
}

/// A mount of type `cgroup` (config.md "Mounts"; runc's default config mounts it at
/// /sys/fs/cgroup), done as runc does. On a pure v2 host: cgroup2 with a cgroup namespace, or
/// a bind of the container's cgroup. On a v1 (or hybrid) host: a tmpfs at the destination and,
/// for each hierarchy (the cgroup2 `unified` one included), a directory named as on the host
/// with that hierarchy mounted in it (with a cgroup namespace the kernel roots it at the
/// container's cgroup) or the container's cgroup of it bound there; co-mounted controllers
/// (`cpu,cpuacct`) get a symlink per name; `ro` makes the tmpfs read-only last.
fn cgroup_mounts(
    dest: &Path,
    flags: c_ulong,
    props: Vec<c_ulong>,
    cg: &CgroupCtx,
) -> Result<Vec<MountPlan>> {
    let (hierarchies, v2) = cgroups::layout()?;
    let host_dir = |h: &cgroups::Hierarchy| -> Result<std::path::PathBuf> {
        let ctrls = h.controllers.as_deref();
        match cg.path {
            Some(p) => cgroups::resolve(&h.mount, ctrls, p),
            None => {
                let own = cgroups::own_cgroup(ctrls)?;
                Ok(h.mount.join(own.strip_prefix("/").unwrap_or(&own)))
            }
        }
    };
    let one = |at: &Path, h: &cgroups::Hierarchy| -> Result<MountPlan> {
        if cg.cgroupns {
            match &h.controllers {
                Some(c) => fs_mount(at, "cgroup", "cgroup", flags, &c.join(",")),
                None => fs_mount(at, "cgroup2", "cgroup2", flags, ""),
            }
        } else {
            bind_mount(at, &host_dir(h)?, flags)
        }
    };
    if v2 {
        let h = hierarchies
            .iter()
            .find(|h| h.controllers.is_none())
            .ok_or_else(|| Error::invalid("mounts[].type", "the host mounts no cgroup2"))?;
        let mut m = one(dest, h)?;
        m.propagation = props;
        return Ok(vec![m]);
    }
    let mut tmpfs = fs_mount(dest, "tmpfs", "tmpfs", flags & !libc::MS_RDONLY, "mode=755")?;
    tmpfs.propagation = props;
    let mut out = vec![tmpfs];
    let mut seen = Vec::new();
    for h in &hierarchies {
        let Some(name) = h.mount.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        // The same hierarchy mounted twice on the host appears once.
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        out.push(one(&dest.join(name), h)?);
        if h.controllers.is_some() && name.contains(',') {
            for link in name.split(',') {
                let mut m = fs_mount(&dest.join(link), "", "", 0, "")?;
                m.symlink = Some((
                    cstr(name, "mounts[].destination")?,
                    Dest::new(dest, "mounts[].destination")?,
                ));
                out.push(m);
            }
        }
    }
    if flags & libc::MS_RDONLY != 0 {
        let mut m = fs_mount(dest, "", "", libc::MS_REMOUNT | flags, "")?;
        m.remount_only = true;
        out.push(m);
    }
    Ok(out)
}

/// The namespace that isolates sysctl `key` (config-linux.md "Sysctl": the runtime applies
/// them to the container), or `None` for a host-wide one, which a container must never set:
/// the IPC ones (`kernel.msg*`, `kernel.sem`, `kernel.shm*`, `fs.mqueue.*`), `net.*`, and
/// `kernel.hostname` / `kernel.domainname` (UTS), as runc's list. A config may set one only
/// when that namespace is the container's own: new, or joined by a path that is not the
/// runtime's own namespace ([`crate::Sandbox::create`] compares them).
pub fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return Some(LinuxNamespaceType::Ipc);
    }
    if key.starts_with("net.") {
        return Some(LinuxNamespaceType::Network);
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return Some(LinuxNamespaceType::Uts);
    }
    None
}

pub(crate) fn plan(
    spec: &Spec,
    linux: &Linux,
    ns: &crate::namespaces::Plan,
    rootfs: &Path,
    bundle: Option<&Path>,
    cgroup_path: Option<&Path>,
) -> Result<Plan> {
    if linux.mount_label().is_some() {
        return Err(Error::Unsupported {
            field: "linux.mountLabel",
        });
    }
    let mut shared_root = None;
    // config-linux.md "Rootfs Mount Propagation" (runc also takes the recursive forms).
    let root_propagation = match linux.rootfs_propagation().as_deref() {
        // runc's default: see mount events of the host, never send ours back.
        None | Some("") => libc::MS_SLAVE | libc::MS_REC,
        Some("slave") | Some("rslave") => libc::MS_SLAVE | libc::MS_REC,
        Some("private") | Some("rprivate") => libc::MS_PRIVATE | libc::MS_REC,
        Some("unbindable") | Some("runbindable") => libc::MS_UNBINDABLE | libc::MS_REC,
        // Kubernetes' Bidirectional mount propagation: the host's shared mounts stay peers of
        // ours (as the new mount namespace copied them), so mounts made in the container
        // under a shared bind reach the host.
        Some(v @ ("shared" | "rshared")) => {
            let rec = if v == "rshared" { libc::MS_REC } else { 0 };
            let parent = mount_point_of(rootfs)?;
            shared_root = Some((
                libc::MS_SHARED | rec,
                cstr(parent.as_os_str().as_bytes(), "root.path")?,
            ));
            0
        }
        Some(other) => {
            return Err(Error::invalid(
                "linux.rootfsPropagation",
                format!("unknown value {other:?}"),
            ))
        }
    };
    let cg = CgroupCtx {
        cgroupns: linux
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == LinuxNamespaceType::Cgroup),
        path: cgroup_path,
    };
    let mut mounts = Vec::new();
    let mut copy_ups = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        mounts.extend(mount_plan(m, bundle, &cg, rootfs, &mut copy_ups)?);
    }
    let dev_is_bind = mounts
        .iter()
        .any(|m| m.bind && m.dest.display.trim_end_matches('/') == "/dev");
    let mut sysctls = Vec::new();
    let mut keys: Vec<_> = linux.sysctl().iter().flatten().collect();
    keys.sort();
    for (key, value) in keys {
        if key.is_empty() || key.split(['.', '/']).any(|c| c.is_empty() || c == "..") {
            return Err(Error::invalid("linux.sysctl", format!("bad key {key:?}")));
        }
        let Some(typ) = sysctl_namespace(key) else {
            return Err(Error::invalid(
                "linux.sysctl",
                format!("{key} is not namespaced: setting it would change the host"),
            ));
        };
        if let Some(why) = ns.runtimes_own(crate::namespaces::flag(typ)) {
            return Err(Error::invalid(
                "linux.sysctl",
                format!("{key} would change the host's value: {why}"),
            ));
        }
        let rel = format!("sys/{}", key.replace('.', "/"));
        sysctls.push((
            key.clone(),
            cstr(rel, "linux.sysctl")?,
            cstr(value.as_bytes(), "linux.sysctl")?,
        ));
    }
    let paths = |v: &Option<Vec<String>>, field| {
        v.iter()
            .flatten()
            .map(|p| Dest::new(Path::new(p), field))
            .collect::<Result<Vec<_>>>()
    };
    Ok(Plan {
        rootfs: cstr(rootfs.as_os_str().as_bytes(), "root.path")?,
        root_propagation,
        shared_root,
        mounts,
        sysctls,
        masked: paths(linux.masked_paths(), "linux.maskedPaths")?,
        readonly: paths(linux.readonly_paths(), "linux.readonlyPaths")?,
        readonly_root: spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false),
        dev_is_bind,
        no_pivot: false,
        _copy_ups: copy_ups,
    })
}

const NULL: *const libc::c_char = std::ptr::null();

/// Child: makes the rootfs a mount point of its own and returns an `O_PATH` fd of it.
pub(crate) fn prepare_rootfs(plan: &Plan) -> CResult<c_int> {
    // config-linux.md "Rootfs Mount Propagation".
    if let Some((_, parent)) = &plan.shared_root {
        // Shared: the namespace's mounts keep their peers; only the mount holding the rootfs
        // and the root mount become private, as pivot_root(2) needs.
        for (i, at) in [parent.as_c_str(), c"/"].into_iter().enumerate() {
            sys::mount(NULL, at.as_ptr(), NULL, libc::MS_PRIVATE, NULL)
                .map_err(|e| sys::fail(Step::RootPropagation, i + 1, e))?;
        }
    } else {
        sys::mount(NULL, c"/".as_ptr(), NULL, plan.root_propagation, NULL)
            .map_err(|e| sys::fail(Step::RootPropagation, 0, e))?;
    }
    // pivot_root(2) needs the new root to be a mount point.
    sys::mount(
        plan.rootfs.as_ptr(),
        plan.rootfs.as_ptr(),
        NULL,
        libc::MS_BIND | libc::MS_REC,
        NULL,
    )
    .map_err(|e| sys::fail(Step::RootfsBind, 0, e))?;
    sys::openat2(
        libc::AT_FDCWD,
        &plan.rootfs,
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        0,
    )
    .map_err(|e| sys::fail(Step::OpenRootfs, 0, e))
}

/// Remounts a bind mount with `flags`, retrying with the flags the kernel has locked on it
/// (nosuid, nodev, noexec... of a mount made in a less privileged user namespace: mount(2)
/// EPERM) when plain flags are refused.
fn remount(fd: c_int, flags: c_ulong) -> Result<(), i32> {
    remount_at(FdPath::new(fd).as_ptr(), fd, flags)
}

fn remount_at(target: *const libc::c_char, fd: c_int, flags: c_ulong) -> Result<(), i32> {
    match sys::mount(NULL, target, NULL, flags, NULL) {
        // In a user namespace the flags of a mount made outside are locked: keep them.
        Err(libc::EPERM) => sys::mount(NULL, target, NULL, flags | mount_flags(fd)?, NULL),
        r => r,
    }
}

/// The `MS_*` flags the mount holding `fd` has now (fstatvfs(3)).
fn mount_flags(fd: c_int) -> Result<c_ulong, i32> {
    // SAFETY: plain data filled by the kernel.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    if unsafe { libc::fstatvfs(fd, &mut st) } < 0 {
        return Err(sys::errno());
    }
    let mut flags = 0;
    for (st_flag, ms) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            flags |= ms;
        }
    }
    // statvfs has no flag for strictatime: it is the absence of the other two (a remount
    // without any atime flag would get relatime, refused where the atime flags are locked).
    if st.f_flag & (libc::ST_NOATIME | libc::ST_RELATIME) == 0 {
        flags |= libc::MS_STRICTATIME;
    }
    Ok(flags)
}

/// Child: the config's mounts, in order (config.md "Mounts": in the listed order).
pub(crate) fn mount_all(plan: &Plan, rootfd: c_int) -> CResult {
    for (i, m) in plan.mounts.iter().enumerate() {
        if let Some((target, parent)) = &m.symlink {
            let dir = resolve(rootfd, parent, Create::Dir, Step::MountDest, i)?;
            let (_, name) = m.dest.split_last();
            // SAFETY: symlinkat(2) with NUL-terminated strings prepared before fork.
            let r = unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) };
            let e = sys::errno();
            sys::close(dir);
            if r < 0 && e != libc::EEXIST {
                return Err(sys::fail(Step::Mount, i, e));
            }
            continue;
        }
        if m.remount_only {
            let fd = resolve(rootfd, &m.dest, Create::No, Step::MountDest, i)?;
            let r = remount(fd, m.flags);
            sys::close(fd);
            r.map_err(|e| sys::fail(Step::MountRemount, i, e))?;
            continue;
        }
        let create = if m.is_file { Create::File } else { Create::Dir };
        let fd = resolve(rootfd, &m.dest, create, Step::MountDest, i)?;
        let target = FdPath::new(fd);
        let fstype = if m.bind { NULL } else { m.fstype.as_ptr() };
        let data = if m.data.is_empty() {
            NULL
        } else {
            m.data.as_ptr()
        };
        let mut r = sys::mount(m.source.as_ptr(), target.as_ptr(), fstype, m.flags, data);
        let mut remount_flags = m.remount;
        if m.sysfs_fallback && matches!(r, Err(libc::EPERM) | Err(libc::EBUSY)) {
            r = sys::mount(
                c"/sys".as_ptr(),
                target.as_ptr(),
                NULL,
                libc::MS_BIND | libc::MS_REC,
                NULL,
            );
            remount_flags = (m.flags != 0).then_some(libc::MS_REMOUNT | libc::MS_BIND | m.flags);
        }
        sys::close(fd);
        r.map_err(|e| sys::fail(Step::Mount, i, e))?;
        if remount_flags.is_none() && m.propagation.is_empty() {
            continue;
        }
        // Reopen: the new fd names the root of the mount just made, not the directory under it.
        let fd = resolve(rootfd, &m.dest, Create::No, Step::MountDest, i)?;
        let result = (|| {
            if let Some(flags) = remount_flags {
                remount(fd, flags).map_err(|e| sys::fail(Step::MountRemount, i, e))?;
            }
            let target = FdPath::new(fd);
            for p in &m.propagation {
                sys::mount(NULL, target.as_ptr(), NULL, *p, NULL)
                    .map_err(|e| sys::fail(Step::MountPropagation, i, e))?;
            }
            Ok(())
        })();
        sys::close(fd);
        result?;
    }
    Ok(())
}

/// Child: sysctls, written through the container's own procfs at `<rootfs>/proc`, checked to
/// be a real procfs (an attacker's rootfs could put a symlink or a plain directory there).
pub(crate) fn write_sysctls(plan: &Plan, rootfd: c_int) -> CResult {
    if plan.sysctls.is_empty() {
        return Ok(());
    }
    let proc = open_in_root(rootfd, c"proc", libc::O_DIRECTORY)
        .map_err(|e| sys::fail(Step::Sysctl, 0, e))?;
    let result = (|| {
        if sys::fs_magic(proc) != Ok(PROC_SUPER_MAGIC) {
            return Err(sys::fail(Step::Sysctl, 0, libc::EXDEV));
        }
        for (i, (_, rel, value)) in plan.sysctls.iter().enumerate() {
            let fd = sys::openat2(
                proc,
                rel,
                libc::O_WRONLY,
                0,
                RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV,
            )
            .map_err(|e| sys::fail(Step::Sysctl, i, e))?;
            let r = sys::write_all(fd, value.as_bytes());
            sys::close(fd);
            r.map_err(|e| sys::fail(Step::Sysctl, i, e))?;
        }
        Ok(())
    })();
    sys::close(proc);
    result
}

/// Child: config-linux.md "Masked Paths" (a missing path is left alone, as runc does) and
/// "Readonly Paths".
pub(crate) fn mask_and_protect(plan: &Plan, rootfd: c_int) -> CResult {
    // The host's /dev/null as seen in the container's (copied) mount namespace: a bind source
    // must be in the caller's mount namespace, so an fd opened by the parent would not do.
    let null_fd = sys::openat2(libc::AT_FDCWD, c"/dev/null", libc::O_PATH, 0, 0)
        .map_err(|e| sys::fail(Step::MaskedPath, 0, e))?;
    let r = mask_with(plan, rootfd, null_fd);
    sys::close(null_fd);
    r
}

fn mask_with(plan: &Plan, rootfd: c_int, null_fd: c_int) -> CResult {
    let null = FdPath::new(null_fd);
    for (i, dest) in plan.masked.iter().enumerate() {
        let fd = match resolve(rootfd, dest, Create::No, Step::MaskedPath, i) {
            Ok(fd) => fd,
            Err(e) if e.errno == libc::ENOENT => continue,
            Err(e) => return Err(e),
        };
        let target = FdPath::new(fd);
        let r = match sys::fstat_mode(fd) {
            Ok(mode) if mode & libc::S_IFMT == libc::S_IFDIR => sys::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_RDONLY,
                NULL,
            )
            .map(|()| false),
            // The host's /dev/null, not the container's: a rootfs can make its own /dev/null
            // a symlink to anything (CVE-2025-31133). nosuid as runc's (from its /dev tmpfs).
            Ok(_) => {
                sys::mount(null.as_ptr(), target.as_ptr(), NULL, libc::MS_BIND, NULL).map(|()| true)
            }
            Err(e) => Err(e),
        };
        sys::close(fd);
        if r.map_err(|e| sys::fail(Step::MaskedPath, i, e))? {
            // The fd names the file under the new mount: resolve again to reach the mount,
            // check it is /dev/null (a path swapped meanwhile could name another mount), and
            // only add nosuid to the flags it has.
            let fd = resolve(rootfd, dest, Create::No, Step::MaskedPath, i)?;
            let r = sys::fstat(fd).and_then(|st| {
                let null =
                    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == libc::makedev(1, 3);
                if !null {
                    return Err(libc::EXDEV);
                }
                let now = mount_flags(fd)?;
                remount(fd, now | libc::MS_REMOUNT | libc::MS_BIND | libc::MS_NOSUID)
            });
            sys::close(fd);
            r.map_err(|e| sys::fail(Step::MaskedPath, i, e))?;
        }
    }
    for (i, dest) in plan.readonly.iter().enumerate() {
        let fd = match resolve(rootfd, dest, Create::No, Step::ReadonlyPath, i) {
            Ok(fd) => fd,
            Err(e) if e.errno == libc::ENOENT => continue,
            Err(e) => return Err(e),
        };
        let target = FdPath::new(fd);
        let r = sys::mount(
            target.as_ptr(),
            target.as_ptr(),
            NULL,
            libc::MS_BIND | libc::MS_REC,
            NULL,
        );
        sys::close(fd);
        r.map_err(|e| sys::fail(Step::ReadonlyPath, i, e))?;
        // Read-only on top of the flags the path had (a /proc mounted nosuid,nodev,noexec
        // stays so under /proc/sys), as runc's readonlyPath does.
        let fd = resolve(rootfd, dest, Create::No, Step::ReadonlyPath, i)?;
        let r = mount_flags(fd)
            .and_then(|now| remount(fd, now | libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY));
        sys::close(fd);
        r.map_err(|e| sys::fail(Step::ReadonlyPath, i, e))?;
    }
    Ok(())
}

/// Child: pivot_root(2) into the rootfs and detach the old root, as runc does: with
/// `pivot_root(".", ".")` the old root is stacked under the new one and unmounted lazily,
/// which needs no directory for it inside the rootfs.
pub(crate) fn pivot(plan: &Plan, rootfd: c_int) -> CResult {
    let e = |errno| sys::fail(Step::PivotRoot, 0, errno);
    if plan.no_pivot {
        // runc's msMoveRoot: for a rootfs where pivot_root(2) fails (an initramfs root).
        // The host's mounts stay in the namespace under the chroot, so a process with
        // CAP_SYS_CHROOT could reach them: the caller asked for it knowingly.
        // SAFETY: plain syscalls on an fd we own and static strings.
        unsafe {
            if libc::fchdir(rootfd) < 0 {
                return Err(e(sys::errno()));
            }
        }
        sys::mount(c".".as_ptr(), c"/".as_ptr(), NULL, libc::MS_MOVE, NULL).map_err(e)?;
        // SAFETY: as above.
        unsafe {
            if libc::chroot(c".".as_ptr()) < 0 || libc::chdir(c"/".as_ptr()) < 0 {
                return Err(e(sys::errno()));
            }
        }
        return Ok(());
    }
    let old = sys::openat2(
        libc::AT_FDCWD,
        c"/",
        libc::O_DIRECTORY | libc::O_RDONLY,
        0,
        0,
    )
    .map_err(e)?;
    let result = (|| {
        // SAFETY: plain syscalls on fds we own and static strings.
        unsafe {
            if libc::fchdir(rootfd) < 0 {
                return Err(e(sys::errno()));
            }
            if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) < 0 {
                return Err(e(sys::errno()));
            }
            if libc::fchdir(old) < 0 {
                return Err(e(sys::errno()));
            }
        }
        // The old root must not propagate its unmount to the host.
        sys::mount(
            NULL,
            c".".as_ptr(),
            NULL,
            libc::MS_SLAVE | libc::MS_REC,
            NULL,
        )
        .map_err(e)?;
        // SAFETY: plain syscalls.
        unsafe {
            if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) < 0 {
                return Err(e(sys::errno()));
            }
            if libc::chdir(c"/".as_ptr()) < 0 {
                return Err(e(sys::errno()));
            }
        }
        Ok(())
    })();
    sys::close(old);
    result?;
    if let Some((flags, _)) = plan.shared_root {
        sys::mount(NULL, c"/".as_ptr(), NULL, flags, NULL)
            .map_err(|e| sys::fail(Step::RootPropagation, 3, e))?;
    }
    Ok(())
}

impl Plan {
    /// Whether the rootfs propagation is shared.
    pub(crate) fn shared_root(&self) -> bool {
        self.shared_root.is_some()
    }
}

/// The `mounts[].options` this crate recognizes (runtime-spec features.md `mountOptions`):
/// the flags, the propagation types, `bind`, `rbind` and `tmpcopyup`. Anything else is passed
/// to the filesystem as data; the recursive attributes (`rro`...), `idmap` and `remount` are
/// refused.
pub fn mount_options() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = FLAGS.iter().map(|f| f.name).collect();
    v.extend([
        "bind",
        "rbind",
        "tmpcopyup",
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
    ]);
    v.sort_unstable();
    v.dedup();
    v
}

/// The mount point of the mount that holds `path` (the longest mount point of
/// /proc/self/mountinfo that is `path` or one of its ancestors): runc's
/// rootfsParentMountPrivate looks for the same.
fn mount_point_of(path: &Path) -> Result<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(Error::sys("read", PathBuf::from("/proc/self/mountinfo")))?;
    let best = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| path.starts_with(m))
        .max_by_key(|m| m.as_os_str().len());
    Ok(best.unwrap_or_else(|| PathBuf::from("/")))
}

/// mountinfo's octal escapes (`\040` for a space, `\134` for a backslash).
fn unescape_mountinfo(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) if b[i] == b'\\' => {
                out.push(
                    d.iter()
                        .fold(0u8, |n, c| n.wrapping_mul(8).wrapping_add(c - b'0')),
                );
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Child, after pivot_root (and after /dev/console is in place): config.md "Root" readonly.
pub(crate) fn readonly_root(plan: &Plan) -> CResult {
    if plan.readonly_root {
        let root = sys::openat2(libc::AT_FDCWD, c"/", libc::O_PATH | libc::O_DIRECTORY, 0, 0)
            .map_err(|e| sys::fail(Step::ReadonlyRoot, 0, e))?;
        let r = remount_at(
            c"/".as_ptr(),
            root,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
        );
        sys::close(root);
        r.map_err(|e| sys::fail(Step::ReadonlyRoot, 0, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded_and_odd_ones_kept() {
        assert_eq!(unescape_mountinfo("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape_mountinfo("/x\\134y"), PathBuf::from("/x\\y"));
        // Not an escape the kernel makes: no panic, bytes kept or wrapped, never out of range.
        assert_eq!(unescape_mountinfo("/q\\9"), PathBuf::from("/q\\9"));
        let _ = unescape_mountinfo("/z\\777");
    }

    #[test]
    fn the_mount_holding_a_path_is_the_longest_mount_point_above_it() {
        // / is always a mount point; /proc too on any Linux this runs on.
        assert_eq!(
            mount_point_of(Path::new("/proc/self")).unwrap(),
            PathBuf::from("/proc")
        );
        assert_eq!(mount_point_of(Path::new("/")).unwrap(), PathBuf::from("/"));
    }
}
