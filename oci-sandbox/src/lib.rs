//! `oci-sandbox`: turn an OCI runtime-spec [`Spec`] and a rootfs into an isolated Linux
//! process, created (set up and stopped before the user's program) and then started.
//!
//! A container running `echo` on a busybox rootfs, its output captured (run by the tests, as
//! root; a real config needs at least `process` and `linux`, and `Spec::default()` is not one):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use oci_sandbox::{ExitStatus, Options, Sandbox, Stdio};
//! let dir = tempfile::tempdir()?;
//! let rootfs = dir.path().join("rootfs");
//! std::fs::create_dir_all(rootfs.join("bin"))?;
//! std::fs::create_dir_all(rootfs.join("proc"))?;
//! std::fs::copy("/bin/busybox", rootfs.join("bin/sh"))?;
//! let spec: oci_sandbox::Spec = serde_json::from_str(r#"{
//!     "ociVersion": "1.2.0",
//!     "process": {"args": ["sh", "-c", "echo hello from $(hostname)"], "cwd": "/",
//!                 "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]},
//!     "root": {"path": "rootfs"},
//!     "hostname": "sandbox",
//!     "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
//!     "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"},
//!                              {"type": "ipc"}, {"type": "network"}],
//!               "resources": {"memory": {"limit": 67108864}}}
//! }"#)?;
//! let mut container = Sandbox::create(&spec, &rootfs, Options::new().stdout(Stdio::piped()))?;
//! let stdout = container.take_stdout().unwrap();
//! container.start()?;
//! assert_eq!(std::io::read_to_string(stdout)?, "hello from sandbox\n");
//! assert_eq!(container.wait()?, ExitStatus::Exited(0));
//! container.delete()?; // and its cgroup, made for the memory limit
//! # Ok(()) }
//! ```
//!
//! A container's stdin, stdout and stderr are the caller's fds 0-2 unless [`Options::stdin`],
//! [`Options::stdout`] or [`Options::stderr`] choose otherwise ([`Stdio`]: null, an fd, a pipe).
//!
//! The sequence follows runtime.md "Lifecycle": [`Sandbox::create`] joins the cgroup, sets up
//! namespaces, mounts, devices, sysctls, masked and read-only paths, pivot_root, hostname,
//! rlimits, cwd, user, capabilities and (without `noNewPrivileges`) seccomp, then leaves the
//! process waiting; [`Container::start`] runs the startContainer hook and releases it to
//! execve the user's program. The caller's hooks (createRuntime, createContainer,
//! startContainer) are called at their points with the container's pid; `spec.hooks` itself is
//! never executed by this crate (oci-runtime runs the OCI hooks through these callbacks).
//!
//! Everything in the config that this crate does not implement is refused with
//! [`Error::Unsupported`]: the list is in the crate README.
//!
//! There is no re-exec of a binary: the set-up runs in forked processes on memory prepared
//! before the fork, with raw syscalls only (no allocation, no locks), so it is safe from a
//! multithreaded caller. Those processes are images of the caller's binary until the user's
//! program runs: a program that creates or enters containers calls [`protect_exe`] first thing
//! in `main`, so that the binary they show as `/proc/PID/exe` cannot be overwritten from a
//! container (CVE-2019-5736).

mod caps;
pub mod cgroups;
mod console;
mod devices;
mod error;
mod exe;
mod exec;
mod lsm;
mod mounts;
mod namespaces;
mod process;
mod rlimits;
mod rootless;
pub mod seccomp;
mod spawn;
mod stdio;
mod sync;
mod sys;

pub use error::{Error, Result};
pub use exe::{protect_exe, ExeProtection};
pub use exec::{Exec, ExecOptions};
pub use mounts::{mount_options, sysctl_namespace};
pub use oci_spec::runtime::Spec;
pub use rootless::{in_user_namespace, is_rootless};
pub use stdio::Stdio;

use cgroups::Cgroup;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use sync::Msg;
use sys::Step;

/// A hook callback: given the container's pid (in the caller's pid namespace), it may enter
/// the container's namespaces through `/proc/PID/ns/*`. An `Err` aborts the lifecycle step.
pub type Hook = Box<dyn FnMut(i32) -> std::result::Result<(), String> + Send>;

/// Options of [`Sandbox::create`] beyond the config.
#[derive(Default)]
pub struct Options {
    preserve_fds: u32,
    bundle: Option<PathBuf>,
    create_runtime: Option<Hook>,
    create_container: Option<Hook>,
    start_container: Option<Hook>,
    exec_fifo: Option<PathBuf>,
    id: Option<String>,
    no_pivot: bool,
    no_new_keyring: bool,
    legacy_clone: bool,
    stdio: [Stdio; 3],
    die_after_fork: bool,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("preserve_fds", &self.preserve_fds)
            .field("bundle", &self.bundle)
            .field("exec_fifo", &self.exec_fifo)
            .field("no_pivot", &self.no_pivot)
            .field("stdio", &self.stdio)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// No preserved fds, no bundle directory, no hooks.
    pub fn new() -> Options {
        Options::default()
    }

    /// Passes fds 3 .. 3+n to the container (runc's `--preserve-fds`, for LISTEN_FDS); every
    /// other fd above 2 is closed before the user's program runs. They may be close-on-exec
    /// in the caller (so its other children do not get them): the flag is cleared in the
    /// container's process.
    pub fn preserve_fds(mut self, n: u32) -> Options {
        self.preserve_fds = n;
        self
    }

    /// The container's stdin (default: the caller's fd 0). See [`Stdio`]; with
    /// [`Stdio::Piped`], [`Container::take_stdin`] gives the writing end.
    pub fn stdin(mut self, s: Stdio) -> Options {
        self.stdio[0] = s;
        self
    }

    /// The container's stdout (default: the caller's fd 1); with [`Stdio::Piped`],
    /// [`Container::take_stdout`] gives the reading end.
    pub fn stdout(mut self, s: Stdio) -> Options {
        self.stdio[1] = s;
        self
    }

    /// The container's stderr (default: the caller's fd 2); with [`Stdio::Piped`],
    /// [`Container::take_stderr`] gives the reading end.
    pub fn stderr(mut self, s: Stdio) -> Options {
        self.stdio[2] = s;
        self
    }

    /// The bundle directory, against which relative bind-mount sources are resolved.
    pub fn bundle(mut self, dir: impl Into<PathBuf>) -> Options {
        self.bundle = Some(dir.into());
        self
    }

    /// Called after the environment is created, before pivot_root (config.md "CreateRuntime
    /// Hooks").
    pub fn on_create_runtime(
        mut self,
        f: impl FnMut(i32) -> std::result::Result<(), String> + Send + 'static,
    ) -> Options {
        self.create_runtime = Some(Box::new(f));
        self
    }

    /// Called right after createRuntime, before pivot_root (config.md "CreateContainer
    /// Hooks"); enter the container's mount namespace through `/proc/PID/ns/mnt`.
    pub fn on_create_container(
        mut self,
        f: impl FnMut(i32) -> std::result::Result<(), String> + Send + 'static,
    ) -> Options {
        self.create_container = Some(Box::new(f));
        self
    }

    /// Starts the container through a FIFO instead of the sync socket, so that another
    /// process can start it (runc's `exec.fifo`: `runc create` then `runc start`). The caller
    /// makes the FIFO first (mkfifo(3), mode 0622 as runc does: the container's user must be
    /// able to open it for writing). When set-up is done the container's init opens it for
    /// writing, which blocks until a reader opens it, writes one byte and runs the user's
    /// program. Starting is then: open the FIFO for reading and read that byte (or
    /// [`Container::start`]); the startContainer hook is the caller's to run in that mode.
    /// [`Container::detach`] lets the container outlive this process.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use oci_sandbox::{Options, Sandbox};
    /// # let spec = oci_spec::runtime::Spec::default();
    /// let fifo = std::ffi::CString::new("/run/demo/exec.fifo")?;
    /// // SAFETY: plain mkfifo(3) of a NUL-terminated path.
    /// assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o622) }, 0);
    /// let c = Sandbox::create(&spec, "rootfs".as_ref(),
    ///     Options::new().exec_fifo("/run/demo/exec.fifo"))?;
    /// let pid = c.detach(); // later, from any process: read one byte from the fifo
    /// # let _ = pid; Ok(()) }
    /// ```
    pub fn exec_fifo(mut self, path: impl Into<PathBuf>) -> Options {
        self.exec_fifo = Some(path.into());
        self
    }

    /// The container's id (runtime.md "State"), sent with the container process state to a
    /// seccomp agent (config-linux.md "Seccomp", `listenerPath`).
    pub fn id(mut self, id: impl Into<String>) -> Options {
        self.id = Some(id.into());
        self
    }

    /// Moves the rootfs onto `/` (MS_MOVE) and chroots into it instead of pivot_root (runc's
    /// `--no-pivot`), for a rootfs on a filesystem where pivot_root(2) fails, such as an
    /// initramfs. Less isolating: the host's mounts stay under the chroot.
    pub fn no_pivot(mut self, yes: bool) -> Options {
        self.no_pivot = yes;
        self
    }

    /// Keeps the caller's session keyring instead of giving the container a new anonymous
    /// one (runc's `--no-new-keyring`).
    pub fn no_new_keyring(mut self, yes: bool) -> Options {
        self.no_new_keyring = yes;
        self
    }

    /// Spawns with clone(2) instead of clone3(2) (no `CLONE_INTO_CGROUP`, no `CLONE_PIDFD`),
    /// as on kernels before 5.3; for the tests of that fallback.
    #[doc(hidden)]
    pub fn legacy_clone(mut self, yes: bool) -> Options {
        self.legacy_clone = yes;
        self
    }

    /// The set-up's first process kills itself (SIGKILL) right after forking the container's
    /// init, before telling the caller about it: for the tests of a set-up that dies, as
    /// under the OOM killer.
    #[doc(hidden)]
    pub fn die_after_fork(mut self, yes: bool) -> Options {
        self.die_after_fork = yes;
        self
    }

    /// Called by [`Container::start`] before the user's program runs (config.md
    /// "StartContainer Hooks").
    pub fn on_start_container(
        mut self,
        f: impl FnMut(i32) -> std::result::Result<(), String> + Send + 'static,
    ) -> Options {
        self.start_container = Some(Box::new(f));
        self
    }
}

/// How the container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// exit(2) with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Created,
    Running,
    Stopped(ExitStatus),
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Stopped(_) => "stopped",
        }
    }
}

/// Entry point: see [`Sandbox::create`].
#[derive(Debug)]
pub struct Sandbox;

/// A container made by [`Sandbox::create`]. Dropping it kills whatever still runs in it and
/// removes its cgroup; [`Container::delete`] does the same and reports errors.
pub struct Container {
    pid: i32,
    pidfd: Option<OwnedFd>,
    sock: Option<OwnedFd>,
    cgroup: Option<Cgroup>,
    state: State,
    start_container: Option<Hook>,
    exec_fifo: Option<PathBuf>,
    console: Option<OwnedFd>,
    pipes: [Option<std::fs::File>; 3],
    /// The user's program, for the errors of its execve at `start`.
    program: process::Program,
    /// The init was told it may outlive this process (exec-fifo mode).
    released: bool,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("pid", &self.pid)
            .field("state", &self.state)
            .field("cgroup", &self.cgroup)
            .finish_non_exhaustive()
    }
}

fn refuse(cond: bool, field: &'static str) -> Result<()> {
    if cond {
        Err(Error::Unsupported { field })
    } else {
        Ok(())
    }
}

fn child_detail(p: &spawn::ChildPlan, e: &sys::ChildError) -> String {
    let i = e.index as usize;
    match e.step {
        Step::MountDest | Step::Mount | Step::MountRemount | Step::MountPropagation => p
            .mounts
            .mounts
            .get(i)
            .map(|m| m.dest.display.clone())
            .unwrap_or_default(),
        Step::Device => p
            .devices
            .nodes
            .get(i)
            .map(|n| n.dest.display.clone())
            .unwrap_or_default(),
        Step::Sysctl => p
            .mounts
            .sysctls
            .get(i)
            .map(|s| s.0.clone())
            .unwrap_or_default(),
        Step::MaskedPath => p
            .mounts
            .masked
            .get(i)
            .map(|d| d.display.clone())
            .unwrap_or_default(),
        Step::ReadonlyPath => p
            .mounts
            .readonly
            .get(i)
            .map(|d| d.display.clone())
            .unwrap_or_default(),
        Step::Chdir
        | Step::CwdOutsideRoot
        | Step::LookupExecutable
        | Step::Exec
        | Step::Console => process_detail(&p.process, e),
        Step::Rlimit
        | Step::Seccomp
        | Step::CapBounding
        | Step::CapAmbient
        | Step::Setns
        | Step::CgroupJoin => format!("#{i}"),
        _ => String::new(),
    }
}

/// What a failed step of the process set-up (shared by create and exec) acted on.
fn process_detail(p: &process::Plan, e: &sys::ChildError) -> String {
    match e.step {
        Step::Chdir | Step::CwdOutsideRoot => p.cwd.to_string_lossy().into_owned(),
        Step::LookupExecutable | Step::Exec => p
            .candidates
            .get(e.index as usize)
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default(),
        Step::Console => console::STAGES
            .get(e.index as usize)
            .map(|s| s.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Kills and reaps what `create` started if it fails half-way: no process, cgroup or mount is
/// left behind (mounts live in the container's mount namespace and die with it).
struct Guard {
    pids: Vec<i32>,
    cgroup: Option<Cgroup>,
}

impl Guard {
    /// Stage 1 reported the process it forked (`pid`, with the pidfd clone3 gave it, if
    /// any): the guard now answers for that process, and stage 1, done, is reaped. Returns
    /// the process's pidfd (pidfd_open(2) where clone3 gave none).
    fn adopt(&mut self, stage1: i32, pid: i32, pidfd: Option<OwnedFd>) -> Result<Option<OwnedFd>> {
        self.pids.insert(0, pid);
        reap(stage1)?;
        self.pids.retain(|p| *p != stage1);
        Ok(pidfd.or_else(|| pidfd_open(pid)))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for &p in &self.pids {
            // SAFETY: kill and reap our own children.
            unsafe {
                libc::kill(p, libc::SIGKILL);
                libc::waitpid(p, std::ptr::null_mut(), 0);
            }
        }
        if let Some(mut c) = self.cgroup.take() {
            let _ = c.kill_all();
            let _ = c.remove_in_place();
        }
    }
}

/// The parent's side of the sync protocol while stage 1 may still die without a word.
struct Watch<'a> {
    /// A pidfd of stage 1 until it reported the process it forked.
    stage1: Option<OwnedFd>,
    slot: &'a spawn::PidSlot,
}

impl<'a> Watch<'a> {
    /// `pidfd` is the one clone3 gave for `stage1`, or -1.
    fn new(stage1: i32, pidfd: libc::c_int, slot: &'a spawn::PidSlot) -> Watch<'a> {
        let fd = if pidfd >= 0 {
            // SAFETY: clone3 gave us this fd.
            Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pidfd) })
        } else {
            pidfd_open(stage1)
        };
        Watch { stage1: fd, slot }
    }

    /// Stage 1 reported the pid of the process it forked: it may exit now.
    fn stage1_done(&mut self) {
        self.stage1 = None;
    }

    /// The next message, with its fd. `None` when the set-up processes are gone: the sync
    /// socket's end-of-file (or ECONNRESET: a peer died with messages unread), or stage 1
    /// exited without reporting the process it forked. That process (which holds the
    /// socket open, waiting) is then put in the guard, to be killed and reaped: its pid is
    /// in the slot the kernel wrote at the fork.
    fn recv(
        &mut self,
        sock: libc::c_int,
        guard: &mut Guard,
    ) -> Result<(Option<Msg>, Option<OwnedFd>)> {
        if let Some(p) = &self.stage1 {
            if !wait_readable(sock, p.as_raw_fd())? {
                if let Some(orphan) = self.slot.get() {
                    if !guard.pids.contains(&orphan) {
                        guard.pids.push(orphan);
                    }
                }
                return Ok((None, None));
            }
        }
        match sync::recv_with_fd(sock) {
            Ok(m) => Ok(m),
            Err(libc::ECONNRESET) => Ok((None, None)),
            Err(e) => Err(Error::Syscall {
                syscall: "recv",
                path: None,
                source: std::io::Error::from_raw_os_error(e),
            }),
        }
    }
}

/// Waits until `sock` is readable (true) or the process of `pidfd` has exited with nothing
/// left to read on `sock` (false): a message sent before the exit is queued before it, so
/// it is looked for once more after the exit is seen.
fn wait_readable(sock: libc::c_int, pidfd: libc::c_int) -> Result<bool> {
    let mut fds = [
        libc::pollfd {
            fd: sock,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: pidfd,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: a valid array of two pollfds.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 {
            if sys::errno() == libc::EINTR {
                continue;
            }
            return Err(Error::last_os("poll", None));
        }
        if fds[0].revents != 0 {
            return Ok(true);
        }
        if fds[1].revents != 0 {
            // SAFETY: a valid pollfd; zero timeout.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
            return Ok(r > 0 && fds[0].revents != 0);
        }
    }
}

/// A message the parent did not expect at this point of the sync protocol.
fn unexpected(m: Msg) -> Error {
    Error::Syscall {
        syscall: "recv",
        path: None,
        source: std::io::Error::other(format!("unexpected message {m:?}")),
    }
}

/// Opens the `cgroup.procs` files for writing before fork: the child joins by writing "0".
/// The directory of the one on a cgroup2 filesystem (by statfs) is opened too, for
/// `CLONE_INTO_CGROUP`.
fn open_procs(files: &[PathBuf]) -> Result<spawn::CgroupJoin> {
    const CGROUP2_SUPER_MAGIC: libc::c_long = 0x6367_7270;
    let mut join = spawn::CgroupJoin::default();
    for (i, f) in files.iter().enumerate() {
        let err = |source| Error::Cgroup {
            path: f.clone(),
            source,
        };
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(f)
            .map_err(err)?;
        if join.dir.is_none() {
            // SAFETY: fstatfs on an open fd into a zeroed struct.
            let mut st: libc::statfs = unsafe { std::mem::zeroed() };
            // SAFETY: fstatfs on an open fd into a valid struct.
            if unsafe { libc::fstatfs(procs.as_raw_fd(), &mut st) } == 0
                && st.f_type as libc::c_long == CGROUP2_SUPER_MAGIC
            {
                let dir = f.parent().unwrap_or(f);
                let d = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY)
                    .open(dir)
                    .map_err(err)?;
                join.into = Some(i);
                join.dir = Some(d.into());
            }
        }
        join.procs.push(procs.into());
    }
    Ok(join)
}

/// Checks that the fds to preserve (3 .. 3+n) are all open. [`Sandbox::create`] and
/// [`Sandbox::exec`] check it first: otherwise fds the set-up opens itself (cgroup.procs,
/// namespace files) could take those numbers and be passed to the container in their place.
/// A caller that opens files of its own before calling them (a state lock...) checks first
/// too.
pub fn check_preserve_fds(n: u32) -> Result<()> {
    for fd in 3..3i64.saturating_add(i64::from(n)).min(i64::from(i32::MAX)) {
        // SAFETY: F_GETFD only queries the fd table.
        if unsafe { libc::fcntl(fd as i32, libc::F_GETFD) } < 0 {
            return Err(Error::invalid(
                "preserve_fds",
                format!("fd {fd} is not open in the runtime"),
            ));
        }
    }
    Ok(())
}

/// Why the set-up processes went away without a word: the OOM killer when the cgroup
/// counted a kill, else unknown.
fn vanished(
    cgroup: Option<&Cgroup>,
    resources: Option<&oci_spec::runtime::LinuxResources>,
) -> Error {
    if cgroup.and_then(|c| c.oom_kill_count().ok()).unwrap_or(0) > 0 {
        let limit = resources
            .and_then(|r| r.memory().as_ref())
            .and_then(|m| m.limit())
            .map_or_else(|| "unset".to_string(), |l| l.to_string());
        return Error::OomKilled {
            stage: "create",
            limit,
        };
    }
    Error::ChildVanished { stage: "create" }
}

/// `/oci-sandbox/PID-N-T`: this process's pid, a counter and the time, so that no other
/// caller, nor a later process reusing the pid, picks the same path.
fn default_cgroups_path() -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    PathBuf::from(format!("/oci-sandbox/{}-{n}-{t:x}", std::process::id()))
}

/// Refuses a rootfs path with a symlink in it (runc's hardening after CVE-2019-19921: a
/// rootfs that is a symlink can be swapped under the runtime, between its checks and its
/// mounts).
fn refuse_symlinked_root(rootfs: &Path) -> Result<()> {
    let abs = if rootfs.is_absolute() {
        rootfs.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(Error::sys("getcwd", None))?
            .join(rootfs)
    };
    let mut at = PathBuf::new();
    for c in abs.components() {
        at.push(c);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::invalid(
                "root.path",
                format!(
                    "{} is a symlink ({} is one): give the real path",
                    rootfs.display(),
                    at.display()
                ),
            ));
        }
    }
    Ok(())
}

/// A pidfd of our own child `pid` (not yet reaped, so the pid is still that process), where
/// the kernel has pidfd_open(2) (5.3); clone3's `CLONE_PIDFD` gives one directly.
fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) returns a new close-on-exec fd we own, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a fresh fd.
    (fd >= 0).then(|| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) })
}

fn reap(pid: i32) -> Result<ExitStatus> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            if sys::errno() == libc::EINTR {
                continue;
            }
            return Err(Error::last_os("waitpid", None));
        }
        break;
    }
    Ok(if libc::WIFSIGNALED(status) {
        ExitStatus::Signaled(libc::WTERMSIG(status))
    } else {
        ExitStatus::Exited(libc::WEXITSTATUS(status))
    })
}

impl Sandbox {
    /// Creates the container of `spec` on `rootfs` (runtime.md "Create"): when this returns,
    /// the process exists in its namespaces and cgroup, its filesystem and credentials are set
    /// up, and it waits for [`Container::start`]. `spec.root.path` is ignored in favour of
    /// `rootfs`.
    pub fn create(spec: &Spec, rootfs: &Path, mut options: Options) -> Result<Container> {
        check_preserve_fds(options.preserve_fds)?;
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| Error::invalid("linux", "a Linux container needs the linux object"))?;
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::invalid("process", "missing"))?;
        refuse(linux.intel_rdt().is_some(), "linux.intelRdt")?;
        refuse(linux.net_devices().is_some(), "linux.netDevices")?;
        refuse(linux.memory_policy().is_some(), "linux.memoryPolicy")?;
        refuse(spec.solaris().is_some(), "solaris")?;
        refuse(spec.windows().is_some(), "windows")?;
        refuse(spec.vm().is_some(), "vm")?;
        refuse(spec.zos().is_some(), "zos")?;
        refuse(
            spec.uid_mappings().is_some() || spec.gid_mappings().is_some(),
            "uidMappings (top level)",
        )?;
        lsm::check(process)?;
        refuse_symlinked_root(rootfs)?;
        let rootfs = rootfs
            .canonicalize()
            .map_err(Error::sys("canonicalize", rootfs.to_path_buf()))?;
        let ns = namespaces::plan(linux)?;
        let name = |v: &Option<String>, field| -> Result<Option<CString>> {
            match v.as_deref().filter(|s| !s.is_empty()) {
                None => Ok(None),
                // config.md "Hostname": an error without a UTS namespace of the container's own.
                Some(_) if !ns.has_uts => Err(Error::invalid(field, "needs a uts namespace")),
                // Nor into a joined one that is the runtime's: that would rename the host.
                Some(_) if ns.runtimes_own(libc::CLONE_NEWUTS).is_some() => Err(Error::invalid(
                    field,
                    format!(
                        "would change the host's: {}",
                        ns.runtimes_own(libc::CLONE_NEWUTS).unwrap_or_default()
                    ),
                )),
                Some(s) => CString::new(s)
                    .map(Some)
                    .map_err(|_| Error::invalid(field, "NUL byte")),
            }
        };
        let hostname = name(spec.hostname(), "hostname")?;
        let domainname = name(spec.domainname(), "domainname")?;
        let mut guard = Guard {
            pids: Vec::new(),
            cgroup: None,
        };
        let rootless = rootless::is_rootless();
        let stripped;
        let resources = match linux.resources().as_ref() {
            // Device rules cannot be set without privileges over the host (v1's devices.allow
            // needs CAP_SYS_ADMIN there, v2's BPF program too): runc ignores them when
            // rootless, and a user namespace cannot make device nodes anyway.
            Some(r) if rootless && r.devices().is_some() => {
                let mut r = r.clone();
                r.set_devices(None);
                stripped = r;
                Some(&stripped)
            }
            r => r,
        };
        let limits = resources.is_some_and(|r| r != &Default::default());
        let mut cgroups = spawn::CgroupJoin::default();
        // config-linux.md "Control groups": without a cgroupsPath, "the behavior is
        // implementation-defined": resources without a path get a cgroup of their own, unique
        // to this call.
        let path = match linux.cgroups_path() {
            Some(p) => Some(p.clone()),
            None if limits => Some(default_cgroups_path()),
            None => None,
        };
        if let Some(path) = path {
            match Cgroup::create(&path, resources) {
                Ok(cg) => {
                    // In the guard first: a failure below removes it.
                    let cg = guard.cgroup.insert(cg);
                    cgroups = open_procs(&cg.procs_files())?;
                }
                // Rootless without a delegated cgroup (v1, or v2 without delegation): no
                // cgroup of its own when nothing needs one, as runc does; a clear error when
                // limits do.
                Err(e) if rootless && rootless::is_permission(&e) => {
                    if limits {
                        let (path, source) = match e {
                            Error::Cgroup { path, source } => (path, source),
                            other => (path.clone(), std::io::Error::other(other.to_string())),
                        };
                        return Err(Error::RootlessCgroup {
                            needed: rootless::delegation_needed(&path),
                            path,
                            source,
                        });
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let cgroup_path = guard.cgroup.as_ref().map(|c| c.path());
        let mut mounts = mounts::plan(
            spec,
            linux,
            &ns,
            &rootfs,
            options.bundle.as_deref(),
            cgroup_path.as_deref(),
        )?;
        mounts.no_pivot = options.no_pivot;
        // MS_MOVE of the rootfs is refused under a shared parent.
        refuse(
            options.no_pivot && mounts.shared_root(),
            "linux.rootfsPropagation (shared) with no-pivot",
        )?;
        // In a user namespace, new or the runtime's own (rootless, or an engine's user namespace
        // as podman's), mknod(2) of a device is refused: bind the host's nodes, as runc does.
        let devices = devices::plan(
            linux,
            ns.new_user() || rootless::in_user_namespace(),
            mounts.dev_is_bind,
        )?;
        let (seccomp, mut notifier) =
            seccomp::prepare(linux.seccomp().as_ref(), 3 + options.preserve_fds as i32)?;
        let mut process = process::plan(process, seccomp)?;
        process.new_keyring = !options.no_new_keyring;
        process.preserve_fds = options.preserve_fds;
        process.personality = linux
            .personality()
            .as_ref()
            .map(process::plan_personality)
            .transpose()?;

        let min_fd = 3 + options.preserve_fds as i32;
        let mut stdio = stdio::prepare(std::mem::take(&mut options.stdio), min_fd)?;
        if process.terminal && stdio.any() {
            return Err(Error::invalid(
                "process.terminal",
                "a container with a terminal has the pty as its stdio: leave stdin, stdout and stderr inherited",
            ));
        }
        let slot = spawn::PidSlot::new().map_err(Error::sys("mmap", None))?;
        let (parent_sock, child_sock) =
            sync::pair(min_fd).map_err(Error::sys("socketpair", None))?;
        let fifo = options
            .exec_fifo
            .as_deref()
            .map(|p| open_exec_fifo(p, min_fd))
            .transpose()?;
        let fifo_fd = fifo.as_ref().map_or(-1, |f| f.as_raw_fd());
        let mut keep_fds: Vec<i32> = (3..min_fd).collect();
        keep_fds.push(child_sock.as_raw_fd());
        keep_fds.extend(notifier.as_ref().map(|n| n.child_fd()));
        if fifo_fd >= 0 {
            keep_fds.push(fifo_fd);
        }
        let mut final_keep = keep_fds.clone();
        final_keep.sort_unstable();
        keep_fds.extend(ns.joins.iter().map(|(_, fd)| fd.as_raw_fd()));
        keep_fds.extend(cgroups.procs.iter().map(|fd| fd.as_raw_fd()));
        keep_fds.sort_unstable();
        let plan = spawn::ChildPlan {
            ns,
            mounts,
            devices,
            process,
            hostname,
            domainname,
            cgroups,
            legacy_clone: options.legacy_clone,
            sock: child_sock.as_raw_fd(),
            keep_fds,
            final_keep,
            exec_fifo: fifo_fd,
            // SAFETY: getpid cannot fail.
            runtime_pid: unsafe { libc::getpid() },
            init_slot: slot.addr(),
            stdio: stdio.raw(),
            die_after_fork: options.die_after_fork,
        };
        let cloned = spawn::clone_process(0, plan.cgroups.dir_fd(), true, plan.legacy_clone, 0)
            .map_err(|e| Error::Syscall {
                syscall: "clone",
                path: None,
                source: std::io::Error::from_raw_os_error(e),
            })?;
        let stage1 = cloned.pid;
        if stage1 == 0 {
            spawn::stage1(&plan, cloned.into_cgroup);
        }
        guard.pids.push(stage1);
        let mut watch = Watch::new(stage1, cloned.pidfd, &slot);
        drop(child_sock);
        stdio.child = Default::default();
        if let Some(n) = notifier.as_mut() {
            n.forked();
        }
        let sock = parent_sock.as_raw_fd();
        let mut init = None;
        let mut pidfd = None;
        let mut console = None;
        loop {
            let (msg, fd) = watch.recv(sock, &mut guard)?;
            let reply = |m| {
                sync::send(sock, m).map_err(|e| Error::Syscall {
                    syscall: "send",
                    path: None,
                    source: std::io::Error::from_raw_os_error(e),
                })
            };
            match msg {
                None => return Err(vanished(guard.cgroup.as_ref(), resources)),
                Some(Msg::NeedIdMap) => {
                    namespaces::write_id_maps(stage1, &plan.ns)?;
                    reply(Msg::Continue)?;
                }
                Some(Msg::InitPid(pid)) => {
                    init = Some(pid);
                    watch.stage1_done();
                    pidfd = guard.adopt(stage1, pid, fd)?;
                    // The init waits for this: its own messages must come after the pid.
                    reply(Msg::Continue)?;
                }
                Some(Msg::Hooks) => {
                    let pid = init.ok_or(Error::ChildVanished { stage: "create" })?;
                    for (hook, f) in [
                        ("createRuntime", &mut options.create_runtime),
                        ("createContainer", &mut options.create_container),
                    ] {
                        if let Some(f) = f {
                            f(pid).map_err(|reason| Error::Hook { hook, reason })?;
                        }
                    }
                    reply(Msg::Continue)?;
                }
                Some(Msg::Console) if fd.is_some() => console = fd,
                Some(Msg::Ready) => break,
                Some(Msg::Error(e)) => {
                    return Err(plan
                        .process
                        .program
                        .error(&e)
                        .unwrap_or_else(|| Error::Child {
                            step: e.step.name(),
                            detail: child_detail(&plan, &e),
                            source: std::io::Error::from_raw_os_error(e.errno),
                        }));
                }
                Some(other) => return Err(unexpected(other)),
            }
        }
        let pid = init.ok_or(Error::ChildVanished { stage: "create" })?;
        if let Some(n) = notifier.take() {
            n.forward(spec, options.id.as_deref(), options.bundle.as_deref(), pid)?;
        }
        if let Some(adj) = plan.process.oom_score_adj {
            let p = PathBuf::from(format!("/proc/{pid}/oom_score_adj"));
            std::fs::write(&p, adj.to_string()).map_err(Error::sys("write", p))?;
        }
        let cgroup = guard.cgroup.take();
        guard.pids.clear();
        Ok(Container {
            pid,
            pidfd,
            sock: Some(parent_sock),
            cgroup,
            state: State::Created,
            start_container: options.start_container.take(),
            exec_fifo: options.exec_fifo.take(),
            console,
            pipes: stdio.parent,
            program: plan.process.program.clone(),
            released: false,
        })
    }
}

/// An `O_PATH` fd of the exec fifo at an fd number of at least `min_fd` (above the preserved
/// fds), checked to be a FIFO.
fn open_exec_fifo(path: &Path, min_fd: i32) -> Result<OwnedFd> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
        .map_err(Error::sys("open exec fifo", path.to_path_buf()))?;
    let meta = f
        .metadata()
        .map_err(Error::sys("stat exec fifo", path.to_path_buf()))?;
    if !meta.file_type().is_fifo() {
        return Err(Error::Syscall {
            syscall: "open exec fifo",
            path: Some(path.to_path_buf()),
            source: std::io::Error::other("not a FIFO"),
        });
    }
    if f.as_raw_fd() >= min_fd {
        return Ok(OwnedFd::from(f));
    }
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd we own.
    let moved = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min_fd) };
    if moved < 0 {
        return Err(Error::last_os("fcntl", path.to_path_buf()));
    }
    // SAFETY: `moved` is a fresh fd.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(moved) })
}

/// Reads the exec fifo's byte, or the init's error (or end-of-file) on the sync socket.
fn read_exec_fifo(path: &Path, sock: i32, program: &process::Program) -> Result<()> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(Error::sys("open exec fifo", path.to_path_buf()))?;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sock,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: a valid array of two pollfds.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            if sys::errno() == libc::EINTR {
                continue;
            }
            return Err(Error::last_os("poll", path.to_path_buf()));
        }
        if fds[0].revents != 0 {
            let mut byte = [0u8; 1];
            match f.read(&mut byte) {
                Ok(1) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                // A writer came and went without its byte: only the init writes.
                Ok(_) => return Err(Error::ChildVanished { stage: "start" }),
                Err(e) => return Err(Error::sys("read exec fifo", path.to_path_buf())(e)),
            }
        }
        if fds[1].revents != 0 {
            return match sync::recv(sock) {
                Ok(Some(Msg::Error(e))) => Err(program.error(&e).unwrap_or_else(|| Error::Child {
                    step: e.step.name(),
                    detail: String::new(),
                    source: std::io::Error::from_raw_os_error(e.errno),
                })),
                _ => Err(Error::ChildVanished { stage: "start" }),
            };
        }
    }
}

impl Container {
    /// The container init's pid, in the caller's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// A pidfd of the container's init (pidfd_open(2)): to poll for its exit or signal it
    /// without pid reuse races once this handle is gone. `None` on kernels before 5.3.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|f| f.as_fd())
    }

    /// The container's cgroup: the config's `cgroupsPath`, or one made for `resources`
    /// without a path (`/oci-sandbox/...`); `None` with neither.
    pub fn cgroup(&self) -> Option<&Cgroup> {
        self.cgroup.as_ref()
    }

    /// Runs the user's program (runtime.md "Start"): the startContainer hook, then execve in
    /// the container. Returns once the program is executing; a failure of the final steps (no
    /// such program, seccomp install) is returned here.
    pub fn start(&mut self) -> Result<()> {
        if self.state != State::Created {
            return Err(Error::State {
                op: "start",
                state: self.state.name(),
            });
        }
        if let Some(f) = &mut self.start_container {
            f(self.pid).map_err(|reason| Error::Hook {
                hook: "startContainer",
                reason,
            })?;
        }
        let sock = self.sock.take().ok_or(Error::State {
            op: "start",
            state: "created",
        })?;
        if let Some(fifo) = self.exec_fifo.clone() {
            self.release_sock(&sock);
            // The init is blocked opening the fifo for writing: opening it for reading
            // releases it; its byte says it went past the open. Watched together with the
            // sync socket, so that an init that died meanwhile is an error, not a hang.
            if let Err(e) = read_exec_fifo(&fifo, sock.as_raw_fd(), &self.program) {
                if let Error::Child { .. } | Error::ChildVanished { .. } = e {
                    // SAFETY: plain kill(2) of our own, not yet reaped, child.
                    unsafe { libc::kill(self.pid, libc::SIGKILL) };
                    self.state = State::Stopped(reap(self.pid)?);
                }
                return Err(e);
            }
        } else {
            sync::send(sock.as_raw_fd(), Msg::Start).map_err(|e| Error::Syscall {
                syscall: "send",
                path: None,
                source: std::io::Error::from_raw_os_error(e),
            })?;
        }
        match sync::recv(sock.as_raw_fd()) {
            Ok(None) => {
                self.state = State::Running;
                Ok(())
            }
            Ok(Some(Msg::Error(e))) => {
                let status = reap(self.pid)?;
                self.state = State::Stopped(status);
                Err(self.program.error(&e).unwrap_or_else(|| Error::Child {
                    step: e.step.name(),
                    detail: String::new(),
                    source: std::io::Error::from_raw_os_error(e.errno),
                }))
            }
            Ok(Some(_)) | Err(_) => Err(Error::ChildVanished { stage: "start" }),
        }
    }

    /// Lets the container go on without this handle (runc's `create` exiting while the
    /// container waits on its exec fifo): nothing is killed, the cgroup stays, and the init,
    /// reparented when this process exits, keeps waiting for its start. Returns the init's
    /// pid; reaping it (while this process lives) and removing the cgroup become the
    /// caller's job.
    ///
    /// Until then, the processes [`Sandbox::create`] made die with the process that called it
    /// (a parent-death signal), so that a caller killed before it has recorded the container
    /// (written its state) leaves nothing running that nobody knows of: call `detach` once
    /// the container is recorded. With [`Options::exec_fifo`] this is what lets the init go on
    /// to wait on the fifo.
    pub fn detach(mut self) -> i32 {
        let pid = self.pid;
        self.release_init();
        self.pidfd = None;
        self.sock = None;
        self.start_container = None;
        self.exec_fifo = None;
        self.console = None;
        self.pipes = Default::default();
        // The cgroup handle only records which directories to remove: dropping it without
        // `remove` leaves them in place.
        self.cgroup = None;
        std::mem::forget(self);
        pid
    }

    /// In exec-fifo mode the init waits, after its set-up, for word that the container is
    /// recorded before it stops dying with its creator and opens the fifo: send it (once).
    fn release_init(&mut self) {
        if let Some(sock) = self.sock.take() {
            self.release_sock(&sock);
            self.sock = Some(sock);
        }
    }

    fn release_sock(&mut self, sock: &OwnedFd) {
        if self.exec_fifo.is_some() && !self.released {
            self.released = true;
            // An init that died meanwhile is found by start, or by the caller's state.
            if sync::send(sock.as_raw_fd(), Msg::Continue).is_ok() {
                // Its answer says the parent-death signal is off: only then may the calling
                // thread end (the signal follows the thread that forked, not the process).
                let _ = sync::recv(sock.as_raw_fd());
            }
        }
    }

    /// The writing end of the container's stdin, when it was [`Stdio::Piped`] (once).
    pub fn take_stdin(&mut self) -> Option<std::fs::File> {
        self.pipes[0].take()
    }

    /// The reading end of the container's stdout, when it was [`Stdio::Piped`] (once).
    /// Read it to its end while the container runs (a full pipe blocks the container); it
    /// ends when every process of the container holding the stdout has exited.
    pub fn take_stdout(&mut self) -> Option<std::fs::File> {
        self.pipes[1].take()
    }

    /// The reading end of the container's stderr, when it was [`Stdio::Piped`] (once).
    pub fn take_stderr(&mut self) -> Option<std::fs::File> {
        self.pipes[2].take()
    }

    /// The pty master of a container whose `process.terminal` is true (once: the caller
    /// sends it to runc's `--console-socket`, or proxies it). What the container writes to
    /// its stdout is read from it, what is written to it is the container's stdin.
    pub fn take_console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }

    /// Waits for the container's init to exit and returns how it ended.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        if let State::Stopped(s) = self.state {
            return Ok(s);
        }
        let s = reap(self.pid)?;
        self.state = State::Stopped(s);
        Ok(s)
    }

    /// Sends `signal` to the container's init (runtime.md "Kill").
    pub fn kill(&self, signal: i32) -> Result<()> {
        if let State::Stopped(_) = self.state {
            return Err(Error::State {
                op: "kill",
                state: "stopped",
            });
        }
        let r = match &self.pidfd {
            // SAFETY: pidfd_send_signal(2) on our pidfd, without siginfo.
            Some(fd) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    signal,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            },
            // SAFETY: plain kill(2) of our own, not yet reaped, child.
            None => libc::c_long::from(unsafe { libc::kill(self.pid, signal) }),
        };
        if r < 0 {
            return Err(Error::last_os("kill", None));
        }
        Ok(())
    }

    /// Deletes the container (runtime.md "Delete"): kills whatever still runs, reaps the init
    /// and removes the cgroup.
    pub fn delete(mut self) -> Result<()> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<()> {
        self.sock = None;
        if !matches!(self.state, State::Stopped(_)) {
            // SAFETY: plain kill(2) of our own child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let s = reap(self.pid)?;
            self.state = State::Stopped(s);
        }
        if let Some(cg) = &mut self.cgroup {
            cg.kill_all()?;
            cg.remove_in_place()?;
        }
        self.cgroup = None;
        Ok(())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}
