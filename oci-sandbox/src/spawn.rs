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

#[derive(Debug)]
pub(crate) struct ChildPlan {
    pub ns: namespaces::Plan,
    pub mounts: mounts::Plan,
    pub devices: devices::Plan,
    pub process: process::Plan,
    pub hostname: Option<CString>,
    pub domainname: Option<CString>,
    pub cgroup_procs: Vec<OwnedFd>,
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

/// Forks like fork(2) but without glibc's atfork handlers; `flags` may add `CLONE_PARENT`.
pub(crate) fn raw_fork(flags: libc::c_ulong) -> Result<libc::pid_t, i32> {
    // SAFETY: clone with no new stack behaves as fork: the child continues on a copy of this
    // stack. The child only runs async-signal-safe code (see module docs).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if r < 0 {
        return Err(sys::errno());
    }
    if r == 0 {
        // CVE-2019-5736: until it execs the user's program, this process is an image of the
        // runtime's binary. Non-dumpable, its /proc/PID/exe, mem and fds cannot be opened by
        // processes of the container (that would need CAP_SYS_PTRACE in our user namespace);
        // execve makes the user's program dumpable again, as runc's nsexec does.
        // SAFETY: plain prctl.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    }
    Ok(r as libc::pid_t)
}

pub(crate) fn stage1(p: &ChildPlan) -> ! {
    match stage1_inner(p) {
        Ok(()) => sys::exit_now(0),
        Err(e) => {
            let _ = sync::send(p.sock, Msg::Error(e));
            sys::exit_now(1)
        }
    }
}

fn stage1_inner(p: &ChildPlan) -> CResult {
    sys::close_others(&p.keep_fds)?;
    for (i, fd) in p.cgroup_procs.iter().enumerate() {
        // Writing 0 to cgroup.procs moves the writer; the init inherits the cgroup, and a new
        // cgroup namespace (unshared below) is rooted at it.
        sys::write_all(fd.as_raw_fd(), b"0").map_err(|e| sys::fail(Step::CgroupJoin, i, e))?;
    }
    namespaces::enter(&p.ns)?;
    if p.ns.new_user() {
        sync::send(p.sock, Msg::NeedIdMap).map_err(|e| sys::fail(Step::Sync, 0, e))?;
        sync::expect(p.sock, Msg::Continue, Step::IdMapWait)?;
        sys::check(sys::setresgid(0), Step::SetIdsRoot, 0)?;
        sys::check(sys::setresuid(0), Step::SetIdsRoot, 0)?;
    }
    let pid = raw_fork(libc::CLONE_PARENT as libc::c_ulong)
        .map_err(|e| sys::fail(Step::CloneInit, 0, e))?;
    if pid == 0 {
        init(p);
    }
    sync::send(p.sock, Msg::InitPid(pid)).map_err(|e| sys::fail(Step::Sync, 0, e))
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
