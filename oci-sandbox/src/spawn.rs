//! The spawn: stage-1 process (joins the cgroup, setns, unshare, waits for the id maps), which
//! clones the container init with `CLONE_PARENT` (so the runtime is its parent and can wait for
//! it) and exits. Two steps because a new or joined pid (and time) namespace only applies to
//! children of the process that entered it. Nothing is re-executed: both processes run code of
//! this crate on memory prepared before the fork, with raw syscalls only.

use crate::devices;
use crate::mounts;
use crate::namespaces;
use crate::process;
use crate::sync::{self, Msg};
use crate::sys::{self, CResult, Step};
use libc::c_int;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};

/// The cgroups a new process joins: `cgroup.procs` of each hierarchy opened for writing,
/// and the index of the cgroup2 one (if any), whose directory fd `dir` (kept by the parent)
/// lets clone3 create the process in it.
#[derive(Debug, Default)]
pub(crate) struct CgroupJoin {
    pub procs: Vec<OwnedFd>,
    pub into: Option<usize>,
    pub dir: Option<OwnedFd>,
}

impl CgroupJoin {
    /// The cgroup2 directory fd for `CLONE_INTO_CGROUP`, or -1.
    pub fn dir_fd(&self) -> c_int {
        self.dir.as_ref().map_or(-1, |d| d.as_raw_fd())
    }
}

#[derive(Debug)]
pub(crate) struct ChildPlan {
    pub ns: namespaces::Plan,
    pub mounts: mounts::Plan,
    pub devices: devices::Plan,
    pub process: process::Plan,
    pub hostname: Option<CString>,
    pub domainname: Option<CString>,
    pub cgroups: CgroupJoin,
    /// Use clone(2) even where clone3 is available (tests of the fallback).
    pub legacy_clone: bool,
    pub sock: c_int,
    /// Every fd the child needs (sorted): anything else inherited from the (multithreaded)
    /// parent, such as another container's sync socket, is closed first thing after fork.
    pub keep_fds: Vec<c_int>,
    /// The fds the user's program may inherit (0-2 aside): the preserved ones, plus the sync
    /// socket and the exec fifo, which are close-on-exec (sorted).
    pub final_keep: Vec<c_int>,
    /// An `O_PATH` fd of the exec fifo (runc's exec.fifo), opened by the parent in the host's
    /// mount namespace: once pivot_root is done the host path is out of reach, but the fd can
    /// be reopened through `/proc/self/fd/N`. `-1` without one.
    pub exec_fifo: c_int,
    /// The runtime's pid: the set-up processes die with it until the container is recorded.
    pub runtime_pid: libc::pid_t,
    /// Where the kernel writes the init's pid as stage 1 forks it ([`PidSlot::addr`]).
    pub init_slot: u64,
    /// The fds stage 1 puts at 0, 1 and 2 first thing (`-1`: keep the inherited one).
    pub stdio: [c_int; 3],
    /// Tests: stage 1 dies by SIGKILL right after forking the init, before reporting it.
    pub die_after_fork: bool,
}

/// A word of memory shared (`MAP_SHARED`) between the runtime and the set-up processes it
/// forks, into which the kernel itself writes the pid of the process stage 1 forks
/// (`CLONE_PARENT_SETTID`), in the runtime's pid namespace, before that process runs. So
/// when stage 1 dies before it could report that pid (the OOM killer, a SIGKILL), the
/// runtime still knows its orphaned child (a sibling of stage 1, so the runtime's own) and
/// can kill and reap it instead of waiting for ever on the sync socket the child holds.
#[derive(Debug)]
pub(crate) struct PidSlot(std::ptr::NonNull<libc::c_void>);

const SLOT_LEN: usize = 4096;

impl PidSlot {
    pub fn new() -> std::io::Result<PidSlot> {
        // SAFETY: a fresh anonymous shared mapping; checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SLOT_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        std::ptr::NonNull::new(p)
            .map(PidSlot)
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOMEM))
    }

    /// The address to give clone as `parent_tid`.
    pub fn addr(&self) -> u64 {
        self.0.as_ptr() as u64
    }

    /// The pid the kernel wrote, if stage 1 forked.
    pub fn get(&self) -> Option<i32> {
        // SAFETY: the mapping is page-aligned, lives as long as `self` and is zeroed at
        // creation; the kernel writes the word whole.
        let v = unsafe {
            (*self.0.as_ptr().cast::<std::sync::atomic::AtomicI32>()).load(Ordering::SeqCst)
        };
        (v > 0).then_some(v)
    }
}

impl Drop for PidSlot {
    fn drop(&mut self) {
        // SAFETY: our own mapping, not referenced after this.
        unsafe { libc::munmap(self.0.as_ptr(), SLOT_LEN) };
    }
}

/// Puts the caller's stdio choices at 0, 1 and 2 (dup2 clears close-on-exec on the copy).
/// The sources are at fd numbers above 2, made by the parent. Usable in the child.
pub(crate) fn apply_stdio(stdio: &[c_int; 3]) -> CResult {
    for (target, &src) in stdio.iter().enumerate() {
        if src >= 0 {
            let r =
                // SAFETY: dup2(2) of an fd the parent made onto 0-2.
                unsafe { libc::dup2(src, target as c_int) };
            sys::check(r as i64, Step::Stdio, target)?;
        }
    }
    Ok(())
}

/// What [`clone_process`] made.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cloned {
    /// The child's pid in the parent, 0 in the child.
    pub pid: libc::pid_t,
    /// In the parent, a pidfd of the child when one was asked for and the kernel gave it
    /// (`CLONE_PIDFD`), else -1. Close-on-exec; the caller owns it.
    pub pidfd: c_int,
    /// The child was born in the cgroup given (`CLONE_INTO_CGROUP`); otherwise it still has
    /// to join it by writing its `cgroup.procs`.
    pub into_cgroup: bool,
}

/// `struct clone_args` of clone3(2), as of Linux 5.7 (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_ARGS_SIZE_VER0`: the struct of Linux 5.3, without `set_tid` and `cgroup`.
const CLONE_ARGS_SIZE_VER0: usize = 64;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_PARENT_SETTID: u64 = 0x0010_0000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What this kernel was found to support, learnt on the first clone (before any fork, so
/// children inherit it): clone3 with `CLONE_INTO_CGROUP` (5.7), clone3 alone (5.3), neither.
static CLONE3: AtomicU8 = AtomicU8::new(CLONE3_FULL);
const CLONE3_FULL: u8 = 0;
const CLONE3_NO_CGROUP: u8 = 1;
const CLONE3_NONE: u8 = 2;

/// Forks like fork(2), without glibc's atfork handlers, with clone3(2) where the kernel has
/// it: `CLONE_INTO_CGROUP` when `cgroup` is the fd of a cgroup2 directory (the child is born
/// there: no window in the caller's cgroup, no `cgroup.procs` write), `CLONE_PIDFD` when
/// `want_pidfd`. Falls back to clone3 without the cgroup on kernels before 5.7 (E2BIG), or
/// when the kernel refuses it for this cgroup (joining through `cgroup.procs` then reports
/// the real reason), and to clone(2) before 5.3 (ENOSYS) or under a seccomp filter that
/// refuses clone3 (EPERM); `legacy` forces clone(2).
/// `flags` may add `CLONE_PARENT`. A non-zero `parent_tid` is where the kernel writes the
/// child's pid in the caller (`CLONE_PARENT_SETTID`; see [`PidSlot`]). Usable in the child
/// (no allocation).
pub(crate) fn clone_process(
    flags: u64,
    cgroup: c_int,
    want_pidfd: bool,
    legacy: bool,
    parent_tid: u64,
) -> Result<Cloned, i32> {
    let flags = if parent_tid != 0 {
        flags | CLONE_PARENT_SETTID
    } else {
        flags
    };
    let level = if legacy {
        CLONE3_NONE
    } else {
        CLONE3.load(Ordering::Relaxed)
    };
    let mut try_cgroup = cgroup >= 0 && level == CLONE3_FULL;
    // Each refusal below either returns, gives up the cgroup (once), or leaves for clone(2).
    let mut use_clone3 = level != CLONE3_NONE;
    while use_clone3 {
        let mut pidfd: c_int = -1;
        let mut args = CloneArgs {
            flags,
            // clone3 refuses an exit signal with CLONE_PARENT: the child gets the parent's
            // own (SIGCHLD, as the parent was cloned with it).
            exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 {
                0
            } else {
                libc::SIGCHLD as u64
            },
            parent_tid,
            ..CloneArgs::default()
        };
        if want_pidfd {
            args.flags |= CLONE_PIDFD;
            args.pidfd = &mut pidfd as *mut c_int as u64;
        }
        let size = if try_cgroup {
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = cgroup as u64;
            std::mem::size_of::<CloneArgs>()
        } else {
            CLONE_ARGS_SIZE_VER0
        };
        // SAFETY: clone3 with no stack behaves as fork: the child continues on a copy of
        // this stack. `args` and `pidfd` outlive the call. The child only runs
        // async-signal-safe code (see module docs).
        let r = unsafe { libc::syscall(libc::SYS_clone3, &mut args as *mut CloneArgs, size) };
        if r >= 0 {
            return Ok(born(r as libc::pid_t, pidfd, try_cgroup));
        }
        match sys::errno() {
            libc::ENOSYS => {
                CLONE3.store(CLONE3_NONE, Ordering::Relaxed);
                use_clone3 = false;
            }
            libc::E2BIG if try_cgroup => {
                CLONE3.store(CLONE3_NO_CGROUP, Ordering::Relaxed);
                try_cgroup = false;
            }
            // Any other refusal of the cgroup (EBUSY for the no-internal-process rule,
            // EOPNOTSUPP, ENODEV...): without it, the cgroup.procs write then reports the
            // reason with the cgroup's path.
            _ if try_cgroup => try_cgroup = false,
            // A seccomp filter of the caller's own container (Docker before 20.10.10, some
            // systemd SystemCallFilter sets) may answer clone3 with EPERM: no namespace
            // flags are asked for here, so EPERM can only be such a filter.
            libc::EPERM => {
                CLONE3.store(CLONE3_NONE, Ordering::Relaxed);
                use_clone3 = false;
            }
            e => return Err(e),
        }
    }
    // SAFETY: as above, with clone(2); `parent_tid` is its third argument on x86 and x86-64.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as u64,
            0usize,
            parent_tid as usize,
            0usize,
            0usize,
        )
    };
    if r < 0 {
        return Err(sys::errno());
    }
    Ok(born(r as libc::pid_t, -1, false))
}

fn born(pid: libc::pid_t, pidfd: c_int, into_cgroup: bool) -> Cloned {
    if pid == 0 {
        // CVE-2019-5736: until it execs the user's program, this process is an image of the
        // runtime's binary. Non-dumpable, its /proc/PID/exe, mem and fds cannot be opened by
        // processes of the container (that would need CAP_SYS_PTRACE in our user namespace);
        // execve makes the user's program dumpable again, as runc's nsexec does.
        // SAFETY: plain prctl.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    }
    Cloned {
        pid,
        pidfd: if pid == 0 { -1 } else { pidfd },
        into_cgroup,
    }
}

/// Stage 1 joins the cgroup: writing 0 to each `cgroup.procs` moves the writer, and what
/// it forks inherits the cgroups (a new cgroup namespace, unshared after, is rooted there).
/// `skip` is the one it was born in (`CLONE_INTO_CGROUP`).
pub(crate) fn join_cgroups(procs: &[OwnedFd], skip: Option<usize>) -> CResult {
    for (i, fd) in procs.iter().enumerate() {
        if Some(i) != skip {
            sys::write_all(fd.as_raw_fd(), b"0").map_err(|e| sys::fail(Step::CgroupJoin, i, e))?;
        }
    }
    Ok(())
}

/// Stage 1 forks the process (init, or exec'd process) as a sibling (`CLONE_PARENT`), so
/// that the runtime is its parent, and sends its pid, with a pidfd when the kernel gives one.
/// `slot` is the [`PidSlot`] address.
/// `die_silently` (tests only) makes stage 1 kill itself instead, as the OOM killer may.
pub(crate) fn fork_sibling(
    sock: c_int,
    legacy: bool,
    slot: u64,
    die_silently: bool,
) -> CResult<bool> {
    let c = clone_process(libc::CLONE_PARENT as u64, -1, true, legacy, slot)
        .map_err(|e| sys::fail(Step::CloneInit, 0, e))?;
    if c.pid == 0 {
        return Ok(true);
    }
    if die_silently {
        // SAFETY: kill(2) of this process.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    sync::send_fd(sock, Msg::InitPid(c.pid), c.pidfd).map_err(|e| sys::fail(Step::Sync, 0, e))?;
    Ok(false)
}

/// Stage 1 of a create; `in_cgroup` is whether it was born in the cgroup2 part.
pub(crate) fn stage1(p: &ChildPlan, in_cgroup: bool) -> ! {
    exit_with(p.sock, stage1_inner(p, in_cgroup))
}

/// Ends a stage-1 process: 0 on success, else its error sent to the runtime and 1.
pub(crate) fn exit_with(sock: c_int, r: CResult) -> ! {
    match r {
        Ok(()) => sys::exit_now(0),
        Err(e) => {
            let _ = sync::send(sock, Msg::Error(e));
            sys::exit_now(1)
        }
    }
}

fn stage1_inner(p: &ChildPlan, in_cgroup: bool) -> CResult {
    sys::die_with_parent(p.runtime_pid)?;
    apply_stdio(&p.stdio)?;
    sys::close_others(&p.keep_fds)?;
    join_cgroups(&p.cgroups.procs, p.cgroups.into.filter(|_| in_cgroup))?;
    namespaces::enter(&p.ns, || {
        // A rootless runtime writes the maps (and setgroups) of this process as its owner,
        // which a non-dumpable process's /proc files do not have (they belong to root until
        // the maps exist): dumpable for that moment only, as runc's nsexec does. Nothing
        // else is in this new user namespace yet.
        let rootless = p.ns.unprivileged;
        if rootless {
            // SAFETY: plain prctl.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
        }
        sync::send(p.sock, Msg::NeedIdMap).map_err(|e| sys::fail(Step::Sync, 0, e))?;
        sync::expect(p.sock, Msg::Continue, Step::IdMapWait)?;
        if rootless {
            // SAFETY: plain prctl.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        }
        sys::check(sys::setresgid(0), Step::SetIdsRoot, 0)?;
        sys::check(sys::setresuid(0), Step::SetIdsRoot, 0)?;
        Ok(())
    })?;
    if fork_sibling(p.sock, p.legacy_clone, p.init_slot, p.die_after_fork)? {
        init(p);
    }
    Ok(())
}

fn init(p: &ChildPlan) -> ! {
    let e = match init_inner(p) {
        Ok(e) => e,
        Err(e) => e,
    };
    let _ = sync::send(p.sock, Msg::Error(e));
    sys::exit_now(1)
}

fn init_inner(p: &ChildPlan) -> CResult<sys::ChildError> {
    // Forked by stage 1 with CLONE_PARENT: the runtime is its parent.
    sys::die_with_parent(p.runtime_pid)?;
    sync::expect(p.sock, Msg::Continue, Step::Sync)?;
    sys::new_session()?;
    let rootfd = mounts::prepare_rootfs(&p.mounts)?;
    mounts::mount_all(&p.mounts, rootfd)?;
    devices::create(&p.devices, rootfd)?;
    // runtime.md "Lifecycle" steps 3-4 (createRuntime, createContainer): after the environment
    // is created, before pivot_root.
    sync::send(p.sock, Msg::Hooks).map_err(|e| sys::fail(Step::Sync, 0, e))?;
    sync::expect(p.sock, Msg::Continue, Step::Sync)?;
    mounts::write_sysctls(&p.mounts, rootfd)?;
    mounts::mask_and_protect(&p.mounts, rootfd)?;
    mounts::pivot(&p.mounts, rootfd)?;
    sys::close(rootfd);
    if p.process.terminal {
        // Before the read-only root: /dev/console may need creating.
        crate::console::setup(p.process.console_size.as_ref(), p.sock, true)?;
    }
    mounts::readonly_root(&p.mounts)?;
    // SAFETY: plain syscalls with buffers prepared before fork.
    unsafe {
        if let Some(h) = &p.hostname {
            sys::check(
                libc::sethostname(h.as_ptr(), h.as_bytes().len()) as i64,
                Step::Hostname,
                0,
            )?;
        }
        if let Some(d) = &p.domainname {
            sys::check(
                libc::setdomainname(d.as_ptr(), d.as_bytes().len()) as i64,
                Step::Domainname,
                0,
            )?;
        }
    }
    Ok(process::finish(&p.process, p.sock, &p.final_keep, p.exec_fifo).0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    /// A fresh directory in this host's cgroup2 hierarchy (the `unified` mount of a hybrid
    /// host, or /sys/fs/cgroup itself), removed on drop.
    struct Cgroup2Dir(std::path::PathBuf);

    impl Cgroup2Dir {
        fn new(name: &str) -> Cgroup2Dir {
            let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
                .into_iter()
                .find(|p| {
                    // SAFETY: statfs into a zeroed struct with a NUL-terminated path.
                    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
                    let c = CString::new(*p).unwrap();
                    // SAFETY: NUL-terminated path, st a valid out-pointer.
                    let ok = unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0;
                    ok && st.f_type as libc::c_long == 0x6367_7270
                })
                .expect("a cgroup2 mount (this host has /sys/fs/cgroup/unified)");
            let dir = std::path::Path::new(root).join(format!("{name}-{}", std::process::id()));
            std::fs::create_dir(&dir).unwrap();
            Cgroup2Dir(dir)
        }
    }

    impl Drop for Cgroup2Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }

    /// Clones a child that only waits for a signal; returns what clone_process reported.
    fn paused_child(cgroup: c_int, legacy: bool) -> Cloned {
        let c = clone_process(0, cgroup, true, legacy, 0).unwrap();
        if c.pid == 0 {
            loop {
                // SAFETY: pause(2) only; the child never returns into the test harness.
                unsafe { libc::pause() };
            }
        }
        c
    }

    fn cgroup2_of(pid: i32) -> String {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(String::from))
            .unwrap()
    }

    fn kill_and_reap(c: Cloned) {
        if c.pidfd >= 0 {
            // SAFETY: we own the pidfd; pidfd_send_signal without siginfo.
            let pidfd = unsafe { OwnedFd::from_raw_fd(c.pidfd) };
            // SAFETY: pidfd is open; pidfd_send_signal with a null siginfo.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    libc::SIGKILL,
                    0usize,
                    0,
                )
            };
            assert_eq!(r, 0, "signal through the pidfd");
        } else {
            // SAFETY: our own child.
            unsafe { libc::kill(c.pid, libc::SIGKILL) };
        }
        let mut status = 0;
        // SAFETY: reaping our own child.
        assert_eq!(unsafe { libc::waitpid(c.pid, &mut status, 0) }, c.pid);
        assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
    }

    #[test]
    fn clone3_creates_the_child_in_the_cgroup_with_a_pidfd() {
        let cg = Cgroup2Dir::new("ocisb-clone3");
        let dir = std::fs::File::open(&cg.0).unwrap();
        let c = paused_child(dir.as_raw_fd(), false);
        assert!(c.into_cgroup, "CLONE_INTO_CGROUP on this kernel");
        assert!(c.pidfd >= 0, "CLONE_PIDFD on this kernel");
        let name = cg.0.file_name().unwrap().to_str().unwrap();
        assert_eq!(cgroup2_of(c.pid), format!("/{name}"));
        kill_and_reap(c);
    }

    /// Under a seccomp filter answering clone3 with EPERM (as older Docker profiles do), a
    /// spawn still works: through clone(2), without a pidfd.
    #[test]
    fn clone3_refused_by_a_seccomp_filter_falls_back_to_clone() {
        let profile: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        }))
        .unwrap();
        let program = crate::seccomp::compile(&profile).unwrap();
        #[repr(C)]
        struct SockFprog {
            len: u16,
            filter: *const crate::seccomp::SockFilter,
        }
        let fprog = SockFprog {
            len: program.instructions().len() as u16,
            filter: program.instructions().as_ptr(),
        };
        // The filter goes into a throwaway child (forked the old way), which then spawns.
        let tester = clone_process(0, -1, false, true, 0).unwrap();
        if tester.pid == 0 {
            // SAFETY: raw syscalls on memory prepared before the fork; the child never
            // returns into the test harness.
            unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let f = &fprog as *const SockFprog;
                if libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, f) != 0 {
                    libc::_exit(2);
                }
                let code = match clone_process(0, -1, true, false, 0) {
                    Ok(c) if c.pid == 0 => libc::_exit(0),
                    Ok(c) if c.pidfd == -1 => {
                        let mut status = 0;
                        libc::waitpid(c.pid, &mut status, 0);
                        if status == 0 {
                            0
                        } else {
                            3
                        }
                    }
                    Ok(_) => 4,
                    Err(_) => 5,
                };
                libc::_exit(code);
            }
        }
        let mut status = 0;
        assert_eq!(
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(tester.pid, &mut status, 0) },
            tester.pid
        );
        assert!(libc::WIFEXITED(status), "{status:#x}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "2: no filter, 4: clone3 ran, 5: no fallback"
        );
    }

    #[test]
    fn legacy_clone_leaves_the_cgroup_join_to_the_child() {
        let cg = Cgroup2Dir::new("ocisb-clone");
        let dir = std::fs::File::open(&cg.0).unwrap();
        let c = paused_child(dir.as_raw_fd(), true);
        assert!(!c.into_cgroup);
        assert_eq!(c.pidfd, -1);
        assert_eq!(cgroup2_of(c.pid), cgroup2_of(std::process::id() as i32));
        kill_and_reap(c);
    }
}
