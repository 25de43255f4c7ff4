//! The user's process: config.md "Process" (args, env, cwd, user, umask, capabilities,
//! noNewPrivileges, rlimits, scheduler, ioPriority), config-linux.md "Personality", and the
//! last steps before execve.

use crate::caps;
use crate::error::{Error, Result};
use crate::rlimits;
use crate::seccomp::Compiled;
use crate::sync::{self, Msg};
use crate::sys::{self, CResult, Step};
use libc::{c_char, c_int};
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Process, Scheduler,
};
use std::ffi::CString;
use std::sync::Arc;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug)]
pub(crate) struct Plan {
    /// Where `args[0]` may be, in `PATH` order, looked up inside the container after pivot_root.
    pub candidates: Vec<CString>,
    /// The same program named for errors.
    pub program: Program,
    /// An execve that fails once the program is found ends the process with status 1 and
    /// runc's `exec PATH: ERROR` on its stderr, as the program's own failure, rather than as
    /// an error of the set-up: runc exec's behaviour, which engines report as the command's
    /// exit status (a script whose interpreter is missing exits 1 under `docker exec`).
    pub execve_failure_exits: bool,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    _env: Vec<CString>,
    envp: Vec<*const c_char>,
    pub cwd: CString,
    uid: u32,
    gid: u32,
    /// Supplementary groups to set; `None` for a rootless container, which never calls
    /// setgroups(2) (see `rootless`).
    groups: Option<Vec<libc::gid_t>>,
    umask: Option<libc::mode_t>,
    no_new_privs: bool,
    pub caps: Option<caps::Plan>,
    pub rlimits: rlimits::Plan,
    pub seccomp: Option<Arc<Compiled>>,
    pub oom_score_adj: Option<i32>,
    /// `process.terminal`: a pty is made (see `console`).
    pub terminal: bool,
    pub console_size: Option<libc::winsize>,
    /// Join a new anonymous session keyring before exec (runc's default; `--no-new-keyring`
    /// turns it off), so the container cannot reach the runtime caller's keys.
    pub new_keyring: bool,
    /// fds 3 .. 3+N are passed to the user's program: their close-on-exec flag is cleared
    /// in the child, so that the caller may keep them close-on-exec (out of its own hooks
    /// and other children) and still pass them.
    pub preserve_fds: u32,
    /// The LSM label for the next execve: `/proc/self/attr/...` paths to try in order, and the
    /// bytes to write (config.md "process": apparmorProfile, selinuxLabel).
    pub lsm_exec: Option<crate::lsm::ExecLabel>,
    /// config-linux.md "Personality": the persona for personality(2).
    pub personality: Option<libc::c_ulong>,
    /// config.md "Process" `scheduler`: the argument of sched_setattr(2).
    scheduler: Option<SchedAttr>,
    /// config.md "Process" `ioPriority`: the argument of ioprio_set(2).
    io_priority: Option<libc::c_int>,
}

/// The user's program as errors name it: `args[0]` as given, whether it is looked up in
/// `PATH` (it has no slash), and the paths tried.
#[derive(Debug, Clone, Default)]
pub(crate) struct Program {
    pub arg0: String,
    pub searched: bool,
    pub candidates: Vec<String>,
}

impl Program {
    /// runc's words for a program that cannot be found ([`Error::Executable`]) or run
    /// ([`Error::Execve`]); `None` for the other steps.
    pub fn error(&self, e: &sys::ChildError) -> Option<Error> {
        let source = std::io::Error::from_raw_os_error(e.errno);
        match e.step {
            Step::LookupExecutable => Some(Error::Executable {
                name: self.arg0.clone(),
                searched: self.searched,
                source,
            }),
            Step::Exec => Some(Error::Execve {
                path: self
                    .candidates
                    .get(e.index as usize)
                    .cloned()
                    .unwrap_or_else(|| self.arg0.clone()),
                source,
            }),
            _ => None,
        }
    }
}

/// `struct sched_attr` of sched_setattr(2), `SCHED_ATTR_SIZE_VER0` (no utilization clamps).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
}

/// config.md "Process" `scheduler` → `sched_attr`. The policies and flags are the kernel's
/// (include/uapi/linux/sched.h). `SCHED_ISO` was never merged into Linux, and the
/// utilization-clamp flags need `sched_util_min`/`max` values the config does not carry: both
/// are refused. Ranges are checked as runc's validator does; the deadline triple is left to
/// the kernel (EINVAL from the child's `sched_setattr` step).
fn plan_scheduler(s: &Scheduler) -> Result<SchedAttr> {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => {
            return Err(Error::Unsupported {
                field: "process.scheduler.policy SCHED_ISO (not in Linux)",
            })
        }
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().as_deref().unwrap_or_default() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin
            | LinuxSchedulerFlag::SchedFlagUtilClampMax => {
                return Err(Error::Unsupported {
                    field: "process.scheduler.flags SCHED_FLAG_UTIL_CLAMP_* (no clamp values in the config)",
                })
            }
        };
    }
    // config.md: nice, priority, runtime, deadline and period default to 0.
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(Error::invalid(
            "process.scheduler.nice",
            format!("{nice} is outside -20..19"),
        ));
    }
    let priority = s.priority().unwrap_or(0);
    let realtime = matches!(policy, 1 | 2);
    if realtime && !(1..=99).contains(&priority) {
        return Err(Error::invalid(
            "process.scheduler.priority",
            format!("{priority} is outside 1..99 for SCHED_FIFO/SCHED_RR"),
        ));
    }
    if !realtime && priority != 0 {
        return Err(Error::invalid(
            "process.scheduler.priority",
            "only SCHED_FIFO and SCHED_RR take a priority",
        ));
    }
    Ok(SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: policy,
        sched_flags: flags,
        sched_nice: nice,
        sched_priority: priority as u32,
        sched_runtime: s.runtime().unwrap_or(0),
        sched_deadline: s.deadline().unwrap_or(0),
        sched_period: s.period().unwrap_or(0),
    })
}

/// config.md "Process" `ioPriority` → the ioprio value of ioprio_set(2):
/// `class << IOPRIO_CLASS_SHIFT (13) | level`, classes RT 1, BE 2, IDLE 3
/// (include/uapi/linux/ioprio.h), level 0 (highest) to 7 (lowest).
fn plan_io_priority(p: &LinuxIOPriority) -> Result<libc::c_int> {
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let level = p.priority();
    if !(0..=7).contains(&level) {
        return Err(Error::invalid(
            "process.ioPriority.priority",
            format!("{level} is outside 0..7"),
        ));
    }
    Ok((class << 13) | level as libc::c_int)
}

/// config-linux.md "Personality" → the persona of personality(2): `PER_LINUX` (0) or
/// `PER_LINUX32` (8). "Currently no flag values are supported": any flag is refused.
pub(crate) fn plan_personality(p: &LinuxPersonality) -> Result<libc::c_ulong> {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(Error::Unsupported {
            field: "linux.personality.flags",
        });
    }
    Ok(match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    })
}

fn cstr(s: &str, field: &'static str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(field, "NUL byte"))
}

fn ptrs(v: &[CString]) -> Vec<*const c_char> {
    v.iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

pub(crate) fn plan(p: &Process, seccomp: Option<Arc<Compiled>>) -> Result<Plan> {
    let terminal = p.terminal().unwrap_or(false);
    // config.md "Process": consoleSize is ignored without a terminal.
    let console_size = p
        .console_size()
        .filter(|_| terminal)
        .map(|b| libc::winsize {
            ws_row: u16::try_from(b.height()).unwrap_or(u16::MAX),
            ws_col: u16::try_from(b.width()).unwrap_or(u16::MAX),
            ws_xpixel: 0,
            ws_ypixel: 0,
        });
    let scheduler = p.scheduler().as_ref().map(plan_scheduler).transpose()?;
    let io_priority = p.io_priority().as_ref().map(plan_io_priority).transpose()?;
    if p.exec_cpu_affinity().is_some() {
        return Err(Error::Unsupported {
            field: "process.execCPUAffinity",
        });
    }
    if p.command_line().is_some() {
        return Err(Error::invalid("process.commandLine", "Windows only"));
    }
    if p.user().username().is_some() {
        return Err(Error::invalid("process.user.username", "Windows only"));
    }
    let args = p.args().as_deref().unwrap_or_default();
    let Some(arg0) = args.first().filter(|a| !a.is_empty()) else {
        return Err(Error::invalid(
            "process.args",
            "at least one argument is required",
        ));
    };
    // config.md "Process": cwd MUST be an absolute path.
    if !p.cwd().is_absolute() {
        return Err(Error::invalid(
            "process.cwd",
            format!("{} is not absolute", p.cwd().display()),
        ));
    }
    // (uid_t)-1 and (gid_t)-1 are not ids: setresuid(2) and setresgid(2) read them as "leave
    // unchanged", which would leave the process root.
    let u = p.user();
    let ids = [("process.user.uid", u.uid()), ("process.user.gid", u.gid())]
        .into_iter()
        .chain(
            u.additional_gids()
                .iter()
                .flatten()
                .map(|g| ("process.user.additionalGids", *g)),
        );
    for (field, id) in ids {
        if id == u32::MAX {
            return Err(Error::invalid(
                field,
                "4294967295 ((uid_t)-1) is not a valid id",
            ));
        }
    }
    let env: Vec<String> = p.env().clone().unwrap_or_default();
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    // config.md "Process" args: "same semantics as IEEE Std 1003.1-2008 execvp's file": a name
    // without a slash is searched in the container's PATH.
    let candidates = if arg0.contains('/') {
        vec![cstr(arg0, "process.args")?]
    } else {
        path_var
            .split(':')
            .map(|d| if d.is_empty() { "." } else { d })
            .map(|d| {
                cstr(
                    &format!("{}/{}", d.trim_end_matches('/'), arg0),
                    "process.args",
                )
            })
            .collect::<Result<_>>()?
    };
    let argv: Vec<CString> = args
        .iter()
        .map(|a| cstr(a, "process.args"))
        .collect::<Result<_>>()?;
    let envc: Vec<CString> = env
        .iter()
        .map(|e| cstr(e, "process.env"))
        .collect::<Result<_>>()?;
    let cwd = CString::new(p.cwd().as_os_str().as_encoded_bytes())
        .map_err(|_| Error::invalid("process.cwd", "NUL byte"))?;
    // SAFETY: geteuid cannot fail.
    let groups = if unsafe { libc::geteuid() } != 0 {
        // As runc: setgroups(2) is denied in a user namespace whose gid map an unprivileged
        // process wrote, and a rootless container has no groups to give but its own.
        if p.user()
            .additional_gids()
            .as_ref()
            .is_some_and(|g| !g.is_empty())
        {
            return Err(Error::invalid(
                "process.user.additionalGids",
                "a rootless container cannot set additional groups",
            ));
        }
        None
    } else {
        Some(p.user().additional_gids().clone().unwrap_or_default())
    };
    let program = Program {
        arg0: arg0.to_string(),
        searched: !arg0.contains('/'),
        candidates: candidates
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect(),
    };
    Ok(Plan {
        candidates,
        program,
        execve_failure_exits: false,
        argv_ptrs: ptrs(&argv),
        _argv: argv,
        envp: ptrs(&envc),
        _env: envc,
        cwd,
        uid: p.user().uid(),
        gid: p.user().gid(),
        groups,
        umask: p.user().umask(),
        no_new_privs: p.no_new_privileges().unwrap_or(false),
        caps: caps::plan(p.capabilities().as_ref())?,
        rlimits: rlimits::plan(p.rlimits().as_deref().unwrap_or_default())?,
        seccomp,
        oom_score_adj: p.oom_score_adj(),
        terminal,
        console_size,
        new_keyring: true,
        preserve_fds: 0,
        lsm_exec: crate::lsm::exec_label(p)?,
        personality: None,
        scheduler,
        io_priority,
    })
}

/// Child, after pivot_root: everything about the process, then wait for start, then exec.
/// `keep` (sorted) are the fds that survive until execve: the preserved ones, the sync socket
/// and the exec fifo (`-1` when the start comes through the sync socket). Returns only on
/// failure.
pub(crate) fn finish(p: &Plan, sock: c_int, keep: &[c_int], fifo: c_int) -> ChildErrorNever {
    match finish_inner(p, sock, keep, fifo) {
        Ok(never) => match never {},
        Err(e) => ChildErrorNever(e),
    }
}

pub(crate) struct ChildErrorNever(pub sys::ChildError);

enum Never {}

fn finish_inner(p: &Plan, sock: c_int, keep: &[c_int], fifo: c_int) -> CResult<Never> {
    rlimits::apply(&p.rlimits)?;
    if let Some(l) = &p.lsm_exec {
        // Written while still root, before seccomp and the capability drop, as runc does; the
        // kernel applies it at the execve of the user's program.
        crate::lsm::apply(l)?;
    }
    if p.new_keyring {
        // KEYCTL_JOIN_SESSION_KEYRING with no name: a fresh anonymous session keyring. A
        // kernel without keyrings (ENOSYS) or a seccomp profile refusing keyctl leaves the
        // inherited one, as runc does.
        // SAFETY: keyctl(2) with a NULL name.
        unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                1 as libc::c_long,
                std::ptr::null::<libc::c_char>(),
            )
        };
    }
    // runc applies these in the init before finalizeNamespace: while the process is still
    // root with all its capabilities (SCHED_FIFO/RR and IOPRIO_CLASS_RT need CAP_SYS_NICE or
    // CAP_SYS_ADMIN), after its other settings; they survive execve.
    if let Some(persona) = p.personality {
        sys::check(
            // SAFETY: personality(2) takes a plain value.
            unsafe { libc::syscall(libc::SYS_personality, persona) },
            Step::Personality,
            0,
        )?;
    }
    if let Some(attr) = &p.scheduler {
        sys::check(
            // SAFETY: sched_setattr(2) on ourselves (pid 0) with a sched_attr prepared before fork.
            unsafe {
                libc::syscall(
                    libc::SYS_sched_setattr,
                    0 as libc::pid_t,
                    attr as *const SchedAttr,
                    0 as libc::c_uint,
                )
            },
            Step::Scheduler,
            0,
        )?;
    }
    if let Some(prio) = p.io_priority {
        // config.md: the ioPriority applies to all the container's processes: set on the init
        // (IOPRIO_WHO_PROCESS 1, pid 0), it is inherited by every process it forks.
        sys::check(
            // SAFETY: ioprio_set(2) with plain values.
            unsafe { libc::syscall(libc::SYS_ioprio_set, 1 as libc::c_int, 0, prio) },
            Step::IoPriority,
            0,
        )?;
    }
    // CVE-2024-21626: close every inherited fd but 0-2, the preserved ones, the sync socket
    // and the exec fifo *before* chdir, so that a cwd like /proc/self/fd/N cannot reach a host
    // directory (the fifo's fd is no directory: chdir through it fails).
    sys::close_others(keep)?;
    for fd in 3..3 + p.preserve_fds as c_int {
        sys::check(
            // SAFETY: fcntl(2) on an fd the caller passes; F_SETFD 0 clears FD_CLOEXEC.
            unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } as i64,
            Step::PreserveFds,
            fd as usize,
        )?;
    }
    // SAFETY: plain syscalls with buffers we own.
    unsafe {
        sys::check(libc::chdir(p.cwd.as_ptr()) as i64, Step::Chdir, 0)?;
        // getcwd(2) prefixes "(unreachable)" when the cwd is outside the process's root.
        let mut buf = [0u8; 4096];
        let n = libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len());
        if n <= 0 || buf[0] != b'/' {
            return Err(sys::fail(Step::CwdOutsideRoot, 0, libc::EXDEV));
        }
        if let Some(m) = p.umask {
            libc::umask(m as libc::mode_t);
        }
    }
    if let Some(c) = &p.caps {
        caps::drop_bounding(c)?;
    }
    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN in the effective set, which
    // the uid change and capset below take away: so it goes in here, while the process is
    // still root with its capabilities, as runc does (standard_init_linux.go installs it before
    // finalizeNamespace). The profile must then allow the few syscalls between here and
    // execve (setgroups, setresuid, capset, prctl, stat, sendmsg, execve), as Docker's does.
    if let Some(s) = p.seccomp.as_ref().filter(|_| !p.no_new_privs) {
        crate::seccomp::install(s)?;
    }
    // SAFETY: plain syscalls.
    unsafe {
        // Keep the permitted set across the uid change; capset below sets the exact sets.
        sys::check(
            libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) as i64,
            Step::Setuid,
            0,
        )?;
        if let Some(groups) = &p.groups {
            sys::check(sys::setgroups(groups), Step::Setgroups, 0)?;
        }
        sys::check(sys::setresgid(p.gid), Step::Setgid, 0)?;
        sys::check(sys::setresuid(p.uid), Step::Setuid, 0)?;
        sys::check(
            libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) as i64,
            Step::Setuid,
            0,
        )?;
    }
    if let Some(c) = &p.caps {
        caps::apply(c)?;
    }
    // A NOTIFY filter goes in here, so that its listener reaches the runtime during create
    // (seccomp.rs, "NOTIFY"); no_new_privs is then set first.
    if let Some(s) = p
        .seccomp
        .as_ref()
        .filter(|s| p.no_new_privs && s.notifies())
    {
        crate::seccomp::set_no_new_privs()?;
        crate::seccomp::install(s)?;
    }
    let mut chosen = None;
    let mut last_err = libc::ENOENT;
    for (i, c) in p.candidates.iter().enumerate() {
        // SAFETY: plain syscalls with valid buffers.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: NUL-terminated path prepared before fork, st a valid out-pointer.
        if unsafe { libc::stat(c.as_ptr(), &mut st) } < 0 {
            // A path is reported with stat's error (ENOTDIR, ELOOP...); a PATH search only
            // as not found, as execvp and Go's LookPath do.
            if !p.program.searched {
                last_err = sys::errno();
            }
            continue;
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            last_err = libc::EACCES;
            continue;
        }
        // SAFETY: as above.
        if unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::X_OK, libc::AT_EACCESS) } < 0
        {
            last_err = sys::errno();
            continue;
        }
        chosen = Some(i);
        break;
    }
    let Some(chosen) = chosen else {
        return Err(sys::fail(Step::LookupExecutable, 0, last_err));
    };
    sync::send(sock, Msg::Ready).map_err(|e| sys::fail(Step::Sync, 0, e))?;
    if fifo >= 0 {
        // The runtime records the container, then says so (Container::detach or start): only
        // then may this process outlive it (issue 17: a create killed before its state is
        // durable must not leave an init nothing can see).
        sync::expect(sock, Msg::Continue, Step::Sync)?;
        sys::outlive_parent()?;
        sync::send(sock, Msg::Ready).map_err(|e| sys::fail(Step::Sync, 0, e))?;
        // runc's exec fifo (runtime.md "Start" across processes): the open for writing blocks
        // until a reader opens the fifo, which is the start signal. The parent may be gone by
        // now, so the sync socket is not read any more; failures from here on also go to
        // stderr.
        wait_exec_fifo(fifo).inspect_err(|e| sys::report_stderr(*e))?;
    } else {
        sync::expect(sock, Msg::Start, Step::Sync)?;
        sys::outlive_parent()?;
    }
    if p.no_new_privs {
        sys::check(
            // SAFETY: plain prctl.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } as i64,
            Step::NoNewPrivs,
            0,
        )
        .inspect_err(|e| report_if(fifo, *e))?;
        if let Some(s) = p.seccomp.as_ref().filter(|s| !s.notifies()) {
            crate::seccomp::install(s).inspect_err(|e| report_if(fifo, *e))?;
        }
    }
    // SAFETY: argv/envp are NUL-terminated arrays of C strings prepared before fork; the sync
    // socket is close-on-exec, so success is seen by the parent as EOF.
    unsafe {
        libc::execve(
            p.candidates[chosen].as_ptr(),
            p.argv_ptrs.as_ptr(),
            p.envp.as_ptr(),
        )
    };
    let e = sys::fail(Step::Exec, chosen, sys::errno());
    if fifo >= 0 || p.execve_failure_exits {
        // After `start` nobody reads the sync socket: the container's stderr gets runc's
        // words for it.
        sys::report_exec_stderr(&p.candidates[chosen], e.errno);
    }
    if p.execve_failure_exits {
        sys::exit_now(1);
    }
    Err(e)
}

fn report_if(fifo: c_int, e: sys::ChildError) {
    if fifo >= 0 {
        sys::report_stderr(e);
    }
}

/// Reopens the `O_PATH` fd of the fifo for writing through `/proc/self/fd/N` (this blocks
/// until a reader opens it), writes one byte, and closes both fds before execve, as runc does
/// (the O_PATH fd closed explicitly: CVE-2016-9962).
fn wait_exec_fifo(fifo: c_int) -> CResult {
    let path = sys::FdPath::new(fifo);
    let w = loop {
        // SAFETY: open(2) of a NUL-terminated path on the stack.
        let w = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
        if w >= 0 {
            break w;
        }
        let e = sys::errno();
        if e != libc::EINTR {
            return Err(sys::fail(Step::ExecFifo, 0, e));
        }
    };
    let r = sys::write_all(w, b"0");
    sys::close(w);
    sys::close(fifo);
    r.map_err(|e| sys::fail(Step::ExecFifo, 0, e))
}
