//! Raw syscall helpers safe to call in the child between fork and exec.
//!
//! The child is forked from a possibly multithreaded process (cargo's test harness, a tokio
//! runtime...), so between fork and exec it must not allocate, take locks or unwind: every
//! helper here works on memory prepared before the fork and reports failure as a plain
//! [`ChildError`] (a step, an index into the plan, an errno) that the parent turns into
//! [`crate::Error::Child`].

use libc::{c_char, c_int, c_long, c_uint, c_ulong};
use std::ffi::CStr;

/// Declares [`Step`] once: its variants (numbered from 1, as they travel over the sync socket),
/// `from_u32` and `name`, so the three cannot drift apart.
macro_rules! steps {
    ($($step:ident => $name:literal,)*) => {
        /// What the child was doing when it failed; the parent maps it back to a name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u32)]
        pub(crate) enum Step {
            $($step,)*
        }

        impl Step {
            const ALL: &'static [Step] = &[$(Step::$step,)*];

            /// The step numbered `v` (as [`Step::to_u32`] numbers it).
            pub(crate) fn from_u32(v: u32) -> Option<Step> {
                Self::ALL.get(v.checked_sub(1)? as usize).copied()
            }

            /// The number sent over the sync socket: 1-based, so 0 never names a step.
            pub(crate) fn to_u32(self) -> u32 {
                self as u32 + 1
            }

            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(Step::$step => $name,)*
                }
            }
        }
    };
}

steps! {
    CgroupJoin => "join cgroup",
    Setns => "setns",
    Unshare => "unshare",
    TimeOffsets => "write timens_offsets",
    IdMapWait => "wait for uid/gid maps",
    SetIdsRoot => "become root in the user namespace",
    CloneInit => "clone container init",
    RootPropagation => "set rootfs propagation",
    RootfsBind => "bind-mount rootfs",
    OpenRootfs => "open rootfs",
    MountDest => "resolve mount destination",
    Mount => "mount",
    MountRemount => "remount",
    MountPropagation => "set mount propagation",
    Device => "create device",
    DeviceSymlink => "create /dev symlink",
    Sysctl => "write sysctl",
    MaskedPath => "mask path",
    ReadonlyPath => "make path read-only",
    PivotRoot => "pivot_root",
    ReadonlyRoot => "remount root read-only",
    Hostname => "sethostname",
    Domainname => "setdomainname",
    Rlimit => "setrlimit",
    Chdir => "chdir to process.cwd",
    CwdOutsideRoot => "check cwd is inside the root",
    CloseFds => "close inherited fds",
    Setgroups => "setgroups",
    Setgid => "setresgid",
    Setuid => "setresuid",
    CapBounding => "drop bounding capabilities",
    Capset => "capset",
    CapAmbient => "raise ambient capabilities",
    NoNewPrivs => "prctl(PR_SET_NO_NEW_PRIVS)",
    Seccomp => "seccomp(SECCOMP_SET_MODE_FILTER)",
    LookupExecutable => "find process.args[0] in the container",
    Exec => "execve",
    Sync => "sync with parent",
    Personality => "personality",
    IoPriority => "ioprio_set",
    ExecFifo => "open and write the exec fifo",
    Console => "set up the console (process.terminal)",
    Scheduler => "sched_setattr",
    Lsm => "write the LSM label to /proc/self/attr",
    Setsid => "setsid",
    PreserveFds => "pass the preserved fds (not open in the runtime?)",
    Stdio => "set up stdin, stdout and stderr",
    ParentDeath => "die with the runtime (PR_SET_PDEATHSIG)",
}

/// A failure in the child: which step, which element of that step's plan, which errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChildError {
    pub step: Step,
    pub index: u32,
    pub errno: i32,
}

pub(crate) type CResult<T = ()> = Result<T, ChildError>;

#[inline]
pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Turns a `-1` return into a [`ChildError`] for `step` and `index`.
#[inline]
pub(crate) fn check(ret: c_long, step: Step, index: usize) -> CResult<c_long> {
    if ret < 0 {
        Err(ChildError {
            step,
            index: index as u32,
            errno: errno(),
        })
    } else {
        Ok(ret)
    }
}

#[inline]
pub(crate) fn fail(step: Step, index: usize, errno: i32) -> ChildError {
    ChildError {
        step,
        index: index as u32,
        errno,
    }
}

/// `/proc/self/fd/N` in a stack buffer: mounting onto (or from) the magic link of an fd we
/// resolved ourselves defeats symlink swaps between resolution and mount (CVE-2021-30465).
pub(crate) struct FdPath {
    buf: [u8; 32],
}

impl FdPath {
    pub(crate) fn new(fd: c_int) -> FdPath {
        let mut buf = [0u8; 32];
        let prefix = b"/proc/self/fd/";
        buf[..prefix.len()].copy_from_slice(prefix);
        let mut digits = [0u8; 12];
        let mut n = fd.max(0) as u32;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            buf[prefix.len() + i] = digits[len - 1 - i];
        }
        FdPath { buf }
    }

    pub(crate) fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub(crate) const RESOLVE_NO_XDEV: u64 = 0x01;
pub(crate) const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub(crate) const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub(crate) const RESOLVE_BENEATH: u64 = 0x08;
pub(crate) const RESOLVE_IN_ROOT: u64 = 0x10;

/// openat2(2): the kernel resolves `path` under `dirfd` with the `resolve` restrictions.
/// Retried on `EAGAIN`, which the kernel returns with `RESOLVE_IN_ROOT`/`RESOLVE_BENEATH`
/// when a rename or mount anywhere on the system raced a `..` step (openat2(2) ERRORS).
pub(crate) fn openat2(
    dirfd: c_int,
    path: &CStr,
    flags: c_int,
    mode: u32,
    resolve: u64,
) -> Result<c_int, i32> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    let mut tries = 0;
    loop {
        // SAFETY: `how` and `path` are valid for the duration of the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if r >= 0 {
            return Ok(r as c_int);
        }
        match errno() {
            // Under constant mount churn fast retries can all lose: yield between them.
            libc::EAGAIN | libc::EINTR if tries < 1024 => {
                tries += 1;
                // SAFETY: plain syscall.
                unsafe { libc::sched_yield() };
            }
            e => return Err(e),
        }
    }
}

pub(crate) fn close(fd: c_int) {
    // SAFETY: closing an fd we own; errors are irrelevant here.
    unsafe { libc::close(fd) };
}

pub(crate) fn mount(
    src: *const c_char,
    target: *const c_char,
    fstype: *const c_char,
    flags: c_ulong,
    data: *const c_char,
) -> Result<(), i32> {
    // SAFETY: all pointers are null or NUL-terminated strings prepared before fork.
    let r = unsafe { libc::mount(src, target, fstype, flags, data.cast()) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

pub(crate) fn write_all(fd: c_int, mut data: &[u8]) -> Result<(), i32> {
    while !data.is_empty() {
        // SAFETY: `data` is a valid slice.
        let r = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if r < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Err(libc::EIO);
        }
        data = &data[r as usize..];
    }
    Ok(())
}

/// fstatfs(2) magic of an open file.
pub(crate) fn fs_magic(fd: c_int) -> Result<i64, i32> {
    // SAFETY: statfs is plain data; the kernel fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    if unsafe { libc::fstatfs(fd, &mut st) } < 0 {
        return Err(errno());
    }
    Ok(st.f_type as i64)
}

pub(crate) fn fstat_mode(fd: c_int) -> Result<u32, i32> {
    fstat(fd).map(|st| st.st_mode)
}

/// fstat(2) of an fd, `O_PATH` ones included.
pub(crate) fn fstat(fd: c_int) -> Result<libc::stat, i32> {
    // SAFETY: stat is plain data; the kernel fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer; AT_EMPTY_PATH stats the fd itself (works on O_PATH fds).
    let r = unsafe { libc::fstatat(fd, c"".as_ptr(), &mut st, libc::AT_EMPTY_PATH) };
    if r < 0 {
        return Err(errno());
    }
    Ok(st)
}

/// close_range(2).
pub(crate) fn close_range(first: c_uint, last: c_uint, flags: c_uint) -> Result<(), i32> {
    if first > last {
        return Ok(());
    }
    // SAFETY: plain syscall.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// setresuid(2) as a raw syscall. glibc's wrapper (like setresgid and setgroups) runs
/// `__nptl_setxid`, which signals every thread it believes exists and waits for each: in a
/// child forked with a raw clone from a multithreaded parent, glibc's thread list still holds
/// the parent's threads, and a thread caught being created or exiting at fork time makes it
/// wait forever. The child has one thread, so the per-thread syscall is the whole story.
pub(crate) fn setresuid(uid: u32) -> c_long {
    // SAFETY: plain syscall.
    unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }
}

/// setresgid(2) as a raw syscall: see [`setresuid`].
pub(crate) fn setresgid(gid: u32) -> c_long {
    // SAFETY: plain syscall.
    unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }
}

/// setgroups(2) as a raw syscall: see [`setresuid`].
pub(crate) fn setgroups(groups: &[libc::gid_t]) -> c_long {
    // SAFETY: a valid slice of gids.
    unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) }
}

/// Closes every fd above 2 that is not in `keep` (sorted), without allocating.
pub(crate) fn close_others(keep: &[c_int]) -> CResult {
    let mut next: u32 = 3;
    for &k in keep {
        let k = k as u32;
        if k >= next {
            if k > next {
                close_range(next, k - 1, 0).map_err(|e| fail(Step::CloseFds, 0, e))?;
            }
            next = k + 1;
        }
    }
    close_range(next, u32::MAX, 0).map_err(|e| fail(Step::CloseFds, 0, e))
}

/// Writes `oci-sandbox: <step> failed: errno N` to stderr, without allocating: once nobody
/// listens on the sync socket (a detached container started through its exec fifo), stderr
/// is the only place left to say why the container did not start.
pub(crate) fn report_stderr(e: ChildError) {
    let mut buf = [0u8; 160];
    let mut len = 0;
    let mut put = |b: &[u8]| {
        let n = b.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&b[..n]);
        len += n;
    };
    put(b"oci-sandbox: ");
    put(e.step.name().as_bytes());
    put(b" failed: errno ");
    let mut digits = [0u8; 12];
    put(decimal(e.errno.unsigned_abs(), &mut digits));
    put(b"\n");
    let _ = write_all(2, &buf[..len]);
}

/// `n` in decimal, in `out`, without allocating.
fn decimal(mut n: u32, out: &mut [u8; 12]) -> &[u8] {
    let mut d = 0;
    loop {
        out[out.len() - 1 - d] = b'0' + (n % 10) as u8;
        d += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &out[out.len() - d..]
}

/// `exec PATH: ERROR` on stderr, runc's report of an execve that failed after `start`, with
/// Go's (lower-case) text for the errors execve gives; nothing is allocated (after fork).
pub(crate) fn report_exec_stderr(path: &std::ffi::CStr, errno: c_int) {
    let text: &[u8] = match errno {
        libc::ENOENT => b"no such file or directory",
        libc::EACCES => b"permission denied",
        libc::ENOEXEC => b"exec format error",
        libc::ENOTDIR => b"not a directory",
        libc::ELOOP => b"too many levels of symbolic links",
        libc::E2BIG => b"argument list too long",
        libc::ETXTBSY => b"text file busy",
        libc::ENOMEM => b"cannot allocate memory",
        libc::EPERM => b"operation not permitted",
        libc::ENAMETOOLONG => b"file name too long",
        libc::EISDIR => b"is a directory",
        libc::ELIBBAD => b"accessing a corrupted shared library",
        _ => b"",
    };
    let mut buf = [0u8; 512];
    let mut len = 0;
    let mut put = |b: &[u8]| {
        let n = b.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&b[..n]);
        len += n;
    };
    put(b"exec ");
    put(path.to_bytes());
    put(b": ");
    if text.is_empty() {
        put(b"errno ");
        let mut digits = [0u8; 12];
        put(decimal(errno.unsigned_abs(), &mut digits));
    } else {
        put(text);
    }
    put(b"\n");
    let _ = write_all(2, &buf[..len]);
}

/// Leaves the child without running any Rust or libc exit handlers.
pub(crate) fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit never returns and runs no handlers.
    unsafe { libc::_exit(code) }
}

/// Makes the calling child the leader of a new session and process group, as runc's nsexec
/// does for every container process: signals a terminal sends to the runtime's foreground
/// process group (^C) then never reach the container, and a `process.terminal` pty can
/// become its controlling terminal.
pub(crate) fn new_session() -> CResult {
    // SAFETY: plain syscall.
    check(unsafe { libc::setsid() } as i64, Step::Setsid, 0).map(drop)
}

/// Until the runtime has recorded the container, a process it is setting up dies with it
/// (SIGKILL when `parent`, the runtime's pid, exits), so that a runtime killed half-way
/// leaves no live process that nothing knows of. After setting it, the parent is checked: a
/// runtime that died before is gone already (the process was reparented). In a new pid
/// namespace the parent is not visible (getppid is 0); there, and in any case, the sync
/// socket covers that window: every set-up process waits on it before going on, and it reads
/// end-of-file once the runtime is gone.
pub(crate) fn die_with_parent(parent: libc::pid_t) -> CResult {
    check(
        // SAFETY: plain prctl.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } as i64,
        Step::ParentDeath,
        0,
    )?;
    // SAFETY: getppid cannot fail.
    let now = unsafe { libc::getppid() };
    if now != 0 && now != parent {
        exit_now(1);
    }
    Ok(())
}

/// The runtime recorded the container (or it is starting): the process no longer dies with
/// it. The setting survives execve otherwise (prctl(2)), so it is cleared before the user's
/// program runs in every case.
pub(crate) fn outlive_parent() -> CResult {
    check(
        // SAFETY: plain prctl.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) } as i64,
        Step::ParentDeath,
        1,
    )
    .map(drop)
}
