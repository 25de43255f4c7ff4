//! CVE-2019-5736: the runtime's binary must not be reachable, writable, from a container.
//!
//! This crate sets containers up in processes forked from the caller, without re-executing
//! anything (see the crate docs): until a container's process execs the user's program, its
//! `/proc/PID/exe` is the caller's binary. So is that of a process entering a running container
//! (exec). `PR_SET_DUMPABLE=0` hides it from the container's processes, unless one of them
//! holds `CAP_SYS_PTRACE` (a common debugging setting): it can then open `/proc/PID/exe`, keep
//! the fd, and once the runtime has exited, reopen it for writing through `/proc/self/fd/N` and
//! overwrite the host's binary, which the host runs next as root.
//!
//! [`protect_exe`] closes that: it re-executes the binary once, from a copy that cannot be
//! written, so that every process forked afterwards has that copy as its `/proc/PID/exe`:
//! - a read-only detached bind mount of the binary (`open_tree(OPEN_TREE_CLONE)` +
//!   `mount_setattr(MOUNT_ATTR_RDONLY)`, as runc 1.2 started with): no copy, costs one
//!   execve; reopening it for writing gives `EROFS`, and the mount, attached to no mount
//!   namespace, cannot be made writable from a container;
//! - where the mount API is refused (no `CAP_SYS_ADMIN` over the mount namespace, as for a
//!   rootless runtime; a kernel before 5.12; a seccomp filter), a sealed memfd copy
//!   (`F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE`, as runc 1.1 and crun): writes to it
//!   fail with `EPERM`, and it is not the host's file anyway.

use crate::error::{Error, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Set in the environment of the re-executed binary (then removed from it): which protection
/// it was re-executed with. Never trusted alone: the binary checks its `/proc/self/exe`.
const MARKER: &str = "_OCI_SANDBOX_PROTECTED_EXE";

/// How [`protect_exe`] found or made the running binary unwritable from a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExeProtection {
    /// The binary already sat on a read-only mount: nothing was re-executed.
    ReadOnlyMount,
    /// Re-executed from a read-only detached bind mount of itself.
    ReadOnlyBind,
    /// Re-executed from a sealed memfd copy of itself (the mount API was refused).
    SealedCopy,
}

impl ExeProtection {
    /// A short name for logs: `read-only mount`, `read-only bind mount`, `sealed copy`.
    pub fn name(self) -> &'static str {
        match self {
            ExeProtection::ReadOnlyMount => "read-only mount",
            ExeProtection::ReadOnlyBind => "read-only bind mount",
            ExeProtection::SealedCopy => "sealed copy",
        }
    }
}

const SELF_EXE: &std::ffi::CStr = c"/proc/self/exe";

fn exe_err(syscall: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    Error::sys(syscall, PathBuf::from("/proc/self/exe"))
}

fn last(syscall: &'static str) -> Error {
    exe_err(syscall)(std::io::Error::last_os_error())
}

/// What protects `/proc/self/exe` now, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    ReadOnly,
    Sealed,
}

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

fn current() -> Result<Option<Found>> {
    // O_PATH: the binary may be execute-only; fstatfs works on an O_PATH fd.
    // SAFETY: open(2) of a NUL-terminated path; the fd is owned at once.
    let fd = unsafe { libc::open(SELF_EXE.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(last("open"));
    }
    // SAFETY: a fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero statvfs is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatvfs on an fd we own into that struct.
    if unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(last("fstatvfs"));
    }
    // ST_RDONLY is the mount's flag or the superblock's: either makes a reopen for writing
    // fail with EROFS.
    if st.f_flag & libc::ST_RDONLY != 0 {
        return Ok(Some(Found::ReadOnly));
    }
    // Seals live on the memfd's inode; F_GET_SEALS needs a real open (not O_PATH), and is
    // EINVAL on any other file.
    // SAFETY: as above.
    let fd = unsafe { libc::open(SELF_EXE.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        // Unreadable (execute-only) is not a memfd of ours: ours are readable.
        return Ok(None);
    }
    // SAFETY: a fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: fcntl on an fd we own.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    Ok((seals >= 0 && seals & SEALS == SEALS).then_some(Found::Sealed))
}

/// Makes the running binary unwritable from any container this process sets up or enters
/// (CVE-2019-5736): call it first thing in `main`, before any thread exists, in a program
/// that calls [`crate::Sandbox::create`] or [`crate::Sandbox::exec`].
///
/// Why: this crate sets containers up in forks of the calling process, without executing any
/// other binary, so until the user's program runs, the container's processes have the
/// caller's binary as their `/proc/PID/exe`. A process in the container with
/// `CAP_SYS_PTRACE` can open it there, and once the caller has exited, reopen it for writing
/// and replace the host's binary. After this call, the binary running is a read-only bind
/// mount of itself, or a sealed in-memory copy where the mount API is refused (see the
/// module source for the details), and that is what such a process would open.
///
/// The first call re-executes the program (same arguments, same environment, same open
/// fds; nothing before the call runs twice with a different effect only if it has no side
/// effect outside the process) and does not return; in the re-executed program it checks
/// that `/proc/self/exe` is indeed unwritable (the environment variable that marks the
/// re-execution is removed, and never trusted alone) and returns how. A binary that already
/// sits on a read-only mount is not re-executed. The cost is one execve (no copy) with the
/// bind mount; the memfd fallback copies the binary once per call.
///
/// ```no_run
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let how = oci_sandbox::protect_exe()?;
///     eprintln!("runtime binary protected by a {}", how.name());
///     // ... Sandbox::create / Sandbox::exec ...
///     Ok(())
/// }
/// ```
pub fn protect_exe() -> Result<ExeProtection> {
    let marker = std::env::var_os(MARKER);
    if marker.is_some() {
        // Not for the container's processes, nor for hooks this program runs.
        std::env::remove_var(MARKER);
    }
    match (current()?, marker.as_ref().and_then(|m| m.to_str())) {
        (Some(Found::ReadOnly), Some("bind")) => return Ok(ExeProtection::ReadOnlyBind),
        (Some(Found::ReadOnly), _) => return Ok(ExeProtection::ReadOnlyMount),
        (Some(Found::Sealed), _) => return Ok(ExeProtection::SealedCopy),
        (None, Some(_)) => {
            // Re-executed, yet writable: never loop, never go on unprotected.
            return Err(exe_err("protect")(std::io::Error::other(format!(
                "{MARKER} is set but the running binary is writable"
            ))));
        }
        (None, None) => {}
    }
    let (argv, envp) = exec_args()?;
    match read_only_bind() {
        Ok(fd) => reexec(&fd, &argv, &envp, "bind"),
        // EPERM (no CAP_SYS_ADMIN over this mount namespace), ENOSYS (before 5.2 for
        // open_tree, 5.12 for mount_setattr, or a seccomp filter), EINVAL...: copy instead.
        Err(_) => reexec(&sealed_copy()?, &argv, &envp, "memfd"),
    }
}

/// The argv and envp of the re-execution: this process's own, plus the marker.
fn exec_args() -> Result<(Vec<CString>, Vec<CString>)> {
    let nul = |s: &[u8]| {
        CString::new(s).map_err(|_| exe_err("protect")(std::io::Error::other("NUL byte in argv")))
    };
    let argv = std::env::args_os()
        .map(|a| nul(a.as_bytes()))
        .collect::<Result<Vec<_>>>()?;
    let envp = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            nul(kv.as_bytes())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((argv, envp))
}

/// A read-only detached bind mount of the binary, as an fd of its root (the file itself).
fn read_only_bind() -> std::result::Result<OwnedFd, i32> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    // SAFETY: open_tree(2) of a NUL-terminated path; the fd is owned at once.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            SELF_EXE.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(crate::sys::errno());
    }
    // SAFETY: a fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr(2) on our fd with an empty path and a struct that outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(crate::sys::errno());
    }
    Ok(fd)
}

/// A memfd holding a copy of the binary, sealed against any change.
fn sealed_copy() -> Result<OwnedFd> {
    // MFD_EXEC: where vm.memfd_noexec asks for it (6.3+), a memfd is not executable without it;
    // older kernels refuse the flag (EINVAL), and their memfds are executable.
    const MFD_EXEC: libc::c_uint = 0x10;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create(2) with a NUL-terminated name.
    let mut fd = unsafe { libc::memfd_create(c"oci-sandbox-exe".as_ptr(), flags | MFD_EXEC) };
    if fd < 0 && crate::sys::errno() == libc::EINVAL {
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(c"oci-sandbox-exe".as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(last("memfd_create"));
    }
    // SAFETY: a fresh fd.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let src = std::fs::File::open("/proc/self/exe").map_err(exe_err("open"))?;
    loop {
        // SAFETY: sendfile(2) between two fds we own, from the source's own offset.
        let n = unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                src.as_raw_fd(),
                std::ptr::null_mut(),
                1 << 30,
            )
        };
        match n {
            0 => break,
            n if n > 0 => {}
            _ if crate::sys::errno() == libc::EINTR => {}
            _ => return Err(last("sendfile")),
        }
    }
    // SAFETY: fcntl on an fd we own.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(last("fcntl(F_ADD_SEALS)"));
    }
    Ok(memfd)
}

/// execveat(fd, "", AT_EMPTY_PATH): returns only on failure.
fn reexec(fd: &OwnedFd, argv: &[CString], envp: &[CString], how: &str) -> Result<ExeProtection> {
    let marker = CString::new(format!("{MARKER}={how}"))
        .map_err(|_| exe_err("protect")(std::io::Error::other("NUL byte")))?;
    let mut argp: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argp.push(std::ptr::null());
    let mut envs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envs.push(marker.as_ptr());
    envs.push(std::ptr::null());
    // SAFETY: execveat(2) with NUL-terminated arrays of NUL-terminated strings that outlive
    // the call; on success this process image is replaced.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argp.as_ptr(),
            envs.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(last("execveat"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memfd copy is the binary, byte for byte, and refuses every kind of change.
    #[test]
    fn the_sealed_copy_is_whole_and_refuses_writes() {
        let fd = sealed_copy().unwrap();
        let mut copy = std::fs::File::from(fd);
        std::io::Seek::rewind(&mut copy).unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut copy, &mut bytes).unwrap();
        assert!(
            bytes == std::fs::read("/proc/self/exe").unwrap(),
            "not a whole copy"
        );
        // SAFETY: fcntl on an fd we own.
        let seals = unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(seals & SEALS, SEALS);
        // Through a reopen, as an attacker holding /proc/PID/exe would.
        let path = format!("/proc/self/fd/{}", copy.as_raw_fd());
        let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let e = std::io::Write::write_all(&mut w, b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        assert_eq!(w.set_len(1).unwrap_err().raw_os_error(), Some(libc::EPERM));
    }

    /// The bind mount is the binary itself, on a mount that refuses a reopen for writing.
    #[test]
    fn the_read_only_bind_refuses_a_reopen_for_writing() {
        let fd = read_only_bind().expect("root in the initial mount namespace");
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let e = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap_err();
        // ETXTBSY first while this very binary runs: the read-only mount is checked next.
        assert!(
            matches!(e.raw_os_error(), Some(libc::EROFS) | Some(libc::ETXTBSY)),
            "{e}"
        );
        // SAFETY: an all-zero statvfs is a valid value.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: fstatvfs on an fd we own into that struct.
        let r = unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) };
        assert_eq!(r, 0);
        assert_ne!(st.f_flag & libc::ST_RDONLY, 0);
        use std::os::unix::fs::MetadataExt;
        let a = std::fs::metadata(&path).unwrap();
        let b = std::fs::metadata("/proc/self/exe").unwrap();
        assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()));
    }
}
