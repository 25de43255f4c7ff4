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
/// `flags` may add `CLONE_PARENT`. Usable in the child (no allocation).
pub(crate) fn clone_process(
    flags: u64,
    cgroup: c_int,
    want_pidfd: bool,
    legacy: bool,
) -> Result<Cloned, i32> {
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
    // SAFETY: as above, with clone(2).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as u64,
            0usize,
            0usize,
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
pub(crate) fn fork_sibling(sock: c_int, legacy: bool) -> CResult<bool> {
    let c = clone_process(libc::CLONE_PARENT as u64, -1, true, legacy)
        .map_err(|e| sys::fail(Step::CloneInit, 0, e))?;
    if c.pid == 0 {
        return Ok(true);
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
    sys::close_others(&p.keep_fds)?;
    join_cgroups(&p.cgroups.procs, p.cgroups.into.filter(|_| in_cgroup))?;
    namespaces::enter(&p.ns, || {
        sync::send(p.sock, Msg::NeedIdMap).map_err(|e| sys::fail(Step::Sync, 0, e))?;
        sync::expect(p.sock, Msg::Continue, Step::IdMapWait)?;
        sys::check(sys::setresgid(0), Step::SetIdsRoot, 0)?;
        sys::check(sys::setresuid(0), Step::SetIdsRoot, 0)?;
        Ok(())
    })?;
    if fork_sibling(p.sock, p.legacy_clone)? {
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
        let c = clone_process(0, cgroup, true, legacy).unwrap();
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
        let tester = clone_process(0, -1, false, true).unwrap();
        if tester.pid == 0 {
            // SAFETY: raw syscalls on memory prepared before the fork; the child never
            // returns into the test harness.
            unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let f = &fprog as *const SockFprog;
                if libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, f) != 0 {
                    libc::_exit(2);
                }
                let code = match clone_process(0, -1, true, false) {
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
