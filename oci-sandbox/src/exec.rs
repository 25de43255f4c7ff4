//! A new process in a running container (runc exec; runtime-spec leaves exec to runtimes, the
//! process object is config.md "Process").
//!
//! Same shape as the create: a stage-1 process joins the container's cgroup (first, while it
//! still has the host's credentials to write cgroup.procs), then every namespace of the
//! container's init that differs from the caller's (user first, so that the others are joined
//! with its capabilities; the mount namespace puts the process at the container's root), and
//! forks the process with `CLONE_PARENT`: the fork is what enters the pid (and time)
//! namespace, and the caller is its parent, so it can wait for it. That process then applies
//! `process` as the container's init does (`process::finish`: rlimits, fds closed before the
//! cwd is checked inside the root, umask, user, capabilities, seccomp, the program looked up in
//! the container's PATH) and execs.

use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::sync::{self, Msg};
use crate::sys::{self, CResult, Step};
use crate::{
    check_preserve_fds, console, lsm, open_procs, process, process_detail, reap, seccomp, spawn,
    stdio, unexpected, ExitStatus, Guard, Sandbox, Stdio, Watch,
};
use libc::c_int;
use oci_spec::runtime::{LinuxPersonality, LinuxSeccomp, Process};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Options of [`Sandbox::exec`] beyond the process.
#[derive(Debug, Default)]
pub struct ExecOptions {
    cgroup_procs: Vec<PathBuf>,
    seccomp: Option<LinuxSeccomp>,
    preserve_fds: u32,
    personality: Option<LinuxPersonality>,
    stdio: [Stdio; 3],
}

impl ExecOptions {
    /// Not in a cgroup of its own choosing, no seccomp filter, no preserved fds.
    pub fn new() -> ExecOptions {
        ExecOptions::default()
    }

    /// Joins the container's cgroup (runc exec puts the process in the container's cgroup).
    pub fn cgroup(mut self, cgroup: &Cgroup) -> ExecOptions {
        self.cgroup_procs = cgroup.procs_files();
        self
    }

    /// Joins an existing sub-cgroup of the container's cgroup instead (runc exec `--cgroup`):
    /// see [`Cgroup::sub_procs_files`].
    pub fn sub_cgroup(
        mut self,
        cgroup: &Cgroup,
        sub: &[(Vec<String>, PathBuf)],
    ) -> Result<ExecOptions> {
        self.cgroup_procs = cgroup.sub_procs_files(sub)?;
        Ok(self)
    }

    /// The container's `linux.seccomp`, installed in the process as in the container's init.
    pub fn seccomp(mut self, seccomp: Option<&LinuxSeccomp>) -> ExecOptions {
        self.seccomp = seccomp.cloned();
        self
    }

    /// The container's `linux.personality` (config-linux.md "Personality"), set in the process
    /// as in the container's init (runc exec does so too).
    pub fn personality(mut self, personality: Option<&LinuxPersonality>) -> ExecOptions {
        self.personality = personality.cloned();
        self
    }

    /// The process's stdin (default: the caller's fd 0); with [`Stdio::Piped`],
    /// [`Exec::take_stdin`] gives the writing end.
    pub fn stdin(mut self, s: Stdio) -> ExecOptions {
        self.stdio[0] = s;
        self
    }

    /// The process's stdout (default: the caller's fd 1); with [`Stdio::Piped`],
    /// [`Exec::take_stdout`] gives the reading end.
    pub fn stdout(mut self, s: Stdio) -> ExecOptions {
        self.stdio[1] = s;
        self
    }

    /// The process's stderr (default: the caller's fd 2); with [`Stdio::Piped`],
    /// [`Exec::take_stderr`] gives the reading end.
    pub fn stderr(mut self, s: Stdio) -> ExecOptions {
        self.stdio[2] = s;
        self
    }

    /// Passes fds 3 .. 3+n to the process (runc exec `--preserve-fds`).
    pub fn preserve_fds(mut self, n: u32) -> ExecOptions {
        self.preserve_fds = n;
        self
    }
}

/// A process started by [`Sandbox::exec`]. Dropping it neither kills nor reaps it (runc exec
/// `--detach`): call [`Exec::wait`] to collect its status.
#[derive(Debug)]
pub struct Exec {
    pid: i32,
    pidfd: Option<OwnedFd>,
    console: Option<OwnedFd>,
    status: Option<ExitStatus>,
    pipes: [Option<std::fs::File>; 3],
}

impl Exec {
    /// The process's pid, in the caller's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// A pidfd of the process, as [`crate::Container::pidfd`].
    pub fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.pidfd.as_ref().map(std::os::fd::AsFd::as_fd)
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let s = reap(self.pid)?;
        self.status = Some(s);
        Ok(s)
    }

    /// The writing end of the process's stdin, when it was [`Stdio::Piped`] (once).
    pub fn take_stdin(&mut self) -> Option<std::fs::File> {
        self.pipes[0].take()
    }

    /// The reading end of the process's stdout, when it was [`Stdio::Piped`] (once).
    pub fn take_stdout(&mut self) -> Option<std::fs::File> {
        self.pipes[1].take()
    }

    /// The reading end of the process's stderr, when it was [`Stdio::Piped`] (once).
    pub fn take_stderr(&mut self) -> Option<std::fs::File> {
        self.pipes[2].take()
    }

    /// The pty master when `process.terminal` is true (once), as [`crate::Container::take_console`].
    pub fn take_console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }
}

// The order in which namespaces are joined: user first (config-linux.md "Namespaces").
const NAMESPACES: &[(&str, c_int)] = &[
    ("user", libc::CLONE_NEWUSER),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("time", libc::CLONE_NEWTIME),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("mnt", libc::CLONE_NEWNS),
];

/// `/proc/PID/ns/*` that differ from the caller's (joining one's own user namespace is
/// EINVAL; the others are skipped for the same reason: there is nothing to join).
fn open_namespaces(pid: i32) -> Result<Vec<(c_int, OwnedFd)>> {
    let mut out = Vec::new();
    for (name, flag) in NAMESPACES {
        let path = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
        let theirs = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && *name == "time" => continue,
            Err(e) => return Err(Error::sys("open namespace", path)(e)),
        };
        let ours = PathBuf::from(format!("/proc/self/ns/{name}"));
        let a = theirs
            .metadata()
            .map_err(Error::sys("stat namespace", path.clone()))?;
        let b = std::fs::metadata(&ours).map_err(Error::sys("stat namespace", ours))?;
        if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
            out.push((*flag, OwnedFd::from(theirs)));
        }
    }
    Ok(out)
}

struct ExecPlan {
    joins: Vec<(c_int, OwnedFd)>,
    cgroups: spawn::CgroupJoin,
    process: process::Plan,
    sock: c_int,
    keep_fds: Vec<c_int>,
    final_keep: Vec<c_int>,
    init_slot: u64,
    stdio: [c_int; 3],
    runtime_pid: libc::pid_t,
}

fn stage1(p: &ExecPlan, in_cgroup: bool) -> ! {
    spawn::exit_with(p.sock, stage1_inner(p, in_cgroup))
}

fn stage1_inner(p: &ExecPlan, in_cgroup: bool) -> CResult {
    sys::die_with_parent(p.runtime_pid)?;
    spawn::apply_stdio(&p.stdio)?;
    sys::close_others(&p.keep_fds)?;
    spawn::join_cgroups(&p.cgroups.procs, p.cgroups.into.filter(|_| in_cgroup))?;
    crate::namespaces::join(&p.joins)?;
    if spawn::fork_sibling(p.sock, false, p.init_slot, false)? {
        let e = match child(p) {
            Ok(e) | Err(e) => e,
        };
        let _ = sync::send(p.sock, Msg::Error(e));
        sys::exit_now(1)
    }
    Ok(())
}

fn child(p: &ExecPlan) -> CResult<sys::ChildError> {
    sys::die_with_parent(p.runtime_pid)?;
    sync::expect(p.sock, Msg::Continue, Step::Sync)?;
    sys::new_session()?;
    if p.process.terminal {
        console::setup(p.process.console_size.as_ref(), p.sock, false)?;
    }
    Ok(process::finish(&p.process, p.sock, &p.final_keep, -1).0)
}

fn syscall_err(syscall: &'static str) -> impl Fn(i32) -> Error {
    move |e| Error::Syscall {
        syscall,
        path: None,
        source: std::io::Error::from_raw_os_error(e),
    }
}

fn child_error(p: &ExecPlan, e: sys::ChildError) -> Error {
    p.process.program.error(&e).unwrap_or_else(|| Error::Child {
        step: e.step.name(),
        detail: process_detail(&p.process, &e),
        source: std::io::Error::from_raw_os_error(e.errno),
    })
}

impl Sandbox {
    /// Runs `process` in the running container whose init is `pid` (runc exec): in all its
    /// namespaces and, with [`ExecOptions::cgroup`], its cgroup, with the process settings
    /// applied as for the init. Returns once the program is executing (a missing program, a
    /// cwd outside the container... are errors here); the caller is its parent. An execve
    /// that fails after the program was found (a script whose interpreter is missing) is the
    /// process's own failure, as with runc exec: it exits with status 1 after writing
    /// `exec PATH: ERROR` to its stderr.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), oci_sandbox::Error> {
    /// use oci_sandbox::{ExecOptions, Sandbox};
    /// # let container_pid = 1;
    /// let process: oci_spec::runtime::Process = serde_json::from_str(
    ///     r#"{"args": ["ps"], "cwd": "/", "user": {"uid": 0, "gid": 0}}"#).unwrap();
    /// let mut p = Sandbox::exec(container_pid, &process, ExecOptions::new())?;
    /// let status = p.wait()?;
    /// # let _ = status; Ok(()) }
    /// ```
    pub fn exec(pid: i32, process: &Process, mut options: ExecOptions) -> Result<Exec> {
        lsm::check(process)?;
        check_preserve_fds(options.preserve_fds)?;
        let min_fd = 3 + options.preserve_fds as i32;
        let (seccomp, notifier) = seccomp::prepare(options.seccomp.as_ref(), min_fd)?;
        if notifier.is_some() {
            return Err(Error::Unsupported {
                field: "linux.seccomp (SCMP_ACT_NOTIFY in an exec'd process)",
            });
        }
        let mut process = process::plan(process, seccomp)?;
        process.execve_failure_exits = true;
        process.preserve_fds = options.preserve_fds;
        process.personality = options
            .personality
            .as_ref()
            .map(process::plan_personality)
            .transpose()?;
        let mut stdio = stdio::prepare(std::mem::take(&mut options.stdio), min_fd)?;
        if process.terminal && stdio.any() {
            return Err(Error::invalid(
                "process.terminal",
                "a process with a terminal has the pty as its stdio: leave stdin, stdout and stderr inherited",
            ));
        }
        let slot = spawn::PidSlot::new().map_err(Error::sys("mmap", None))?;
        let joins = open_namespaces(pid)?;
        let cgroups = open_procs(&options.cgroup_procs)?;
        let (parent_sock, child_sock) =
            sync::pair(min_fd).map_err(Error::sys("socketpair", None))?;
        let mut final_keep: Vec<c_int> = (3..min_fd).collect();
        final_keep.push(child_sock.as_raw_fd());
        final_keep.sort_unstable();
        let mut keep_fds = final_keep.clone();
        keep_fds.extend(joins.iter().map(|(_, fd)| fd.as_raw_fd()));
        keep_fds.extend(cgroups.procs.iter().map(|fd| fd.as_raw_fd()));
        keep_fds.sort_unstable();
        let plan = ExecPlan {
            joins,
            cgroups,
            process,
            sock: child_sock.as_raw_fd(),
            keep_fds,
            final_keep,
            // SAFETY: getpid cannot fail.
            runtime_pid: unsafe { libc::getpid() },
            init_slot: slot.addr(),
            stdio: stdio.raw(),
        };
        let mut guard = Guard {
            pids: Vec::new(),
            cgroup: None,
        };
        let cloned = spawn::clone_process(0, plan.cgroups.dir_fd(), true, false, 0)
            .map_err(syscall_err("clone"))?;
        let s1 = cloned.pid;
        if s1 == 0 {
            stage1(&plan, cloned.into_cgroup);
        }
        guard.pids.push(s1);
        let mut watch = Watch::new(s1, cloned.pidfd, &slot);
        drop(child_sock);
        stdio.child = Default::default();
        let sock = parent_sock.as_raw_fd();
        let mut exec_pid = None;
        let mut pidfd = None;
        let mut console = None;
        loop {
            let (msg, fd) = watch.recv(sock, &mut guard)?;
            match msg {
                None => return Err(Error::ChildVanished { stage: "exec" }),
                Some(Msg::InitPid(p)) => {
                    exec_pid = Some(p);
                    watch.stage1_done();
                    pidfd = guard.adopt(s1, p, fd)?;
                    sync::send(sock, Msg::Continue).map_err(syscall_err("send"))?;
                }
                Some(Msg::Console) if fd.is_some() => console = fd,
                Some(Msg::Ready) => break,
                Some(Msg::Error(e)) => return Err(child_error(&plan, e)),
                Some(other) => return Err(unexpected(other)),
            }
        }
        let pid = exec_pid.ok_or(Error::ChildVanished { stage: "exec" })?;
        sync::send(sock, Msg::Start).map_err(syscall_err("send"))?;
        match sync::recv(sock) {
            // End-of-file: the sync socket closed on execve.
            Ok(None) => {}
            Ok(Some(Msg::Error(e))) => return Err(child_error(&plan, e)),
            Ok(Some(_)) | Err(_) => return Err(Error::ChildVanished { stage: "exec" }),
        }
        guard.pids.clear();
        Ok(Exec {
            pid,
            pidfd,
            console,
            status: None,
            pipes: stdio.parent,
        })
    }
}
