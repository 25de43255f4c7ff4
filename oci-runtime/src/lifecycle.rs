//! The lifecycle of runtime.md: create, start, state, kill, delete, across processes, plus
//! run, exec, pause, resume, update, ps and stats.
//!
//! `create` and `start` run in different processes (as with runc): the container's init, once
//! set up, blocks opening `exec.fifo` in the container's state directory for writing; `start`
//! opens it for reading, which releases the init to exec the user's program. After `create`
//! returns, the init is no longer the runtime's child (an engine's shim or subreaper reaps
//! it), so the runtime tells that a container stopped from its pid and that pid's start time.

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_sandbox::cgroups::Cgroup;
use oci_sandbox::{Container, Options, Sandbox, Stdio};
use oci_spec::runtime::{ContainerState, Hook, LinuxResources, Process, Spec, State};

use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::hooks::{run_hooks, run_hooks_in_namespaces};
use crate::state::{now_rfc3339, proc_stat, ContainerLock, ContainerRecord, StateStore};

/// The fifo `start` opens to release a created container.
pub const EXEC_FIFO: &str = "exec.fifo";

/// `extra` key marking a paused (frozen) container.
const PAUSED: &str = "paused";

/// How long `start` waits for a created init to reach the fifo.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `delete` waits for a killed init to disappear.
const DELETE_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of [`Runtime::create`] and [`Runtime::run`] (runc's `create` flags, and the
/// container's stdio). Made with [`CreateOptions::new`] and its builder methods; fields may
/// be added.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct CreateOptions {
    /// The bundle directory.
    pub bundle: PathBuf,
    /// `--console-socket`: where to send the pty master when `process.terminal` is true.
    pub console_socket: Option<PathBuf>,
    /// `--pid-file`: where to write the init's pid.
    pub pid_file: Option<PathBuf>,
    /// `--preserve-fds`: fds 3..3+N passed to the container (after the `listen_fds` ones).
    pub preserve_fds: u32,
    /// Socket activation (sd_listen_fds(3)): the caller was given this many listening fds at
    /// 3..3+N (see [`listen_fds_from_env`]). They are passed to the container first, and
    /// `LISTEN_FDS=N` and `LISTEN_PID=1` are added to its environment, as runc does.
    pub listen_fds: u32,
    /// `--no-pivot`: use `MS_MOVE` + `chroot` instead of `pivot_root`.
    pub no_pivot: bool,
    /// `--no-new-keyring`: keep the caller's session keyring.
    pub no_new_keyring: bool,
    /// The container's stdin, stdout and stderr (default: the caller's 0, 1 and 2).
    /// [`Stdio::Piped`] is for [`Runtime::run`], whose [`Running`] hands out the caller's
    /// ends.
    pub stdio: [Stdio; 3],
}

impl CreateOptions {
    /// Options for the bundle in `dir`; everything else as runc's defaults.
    pub fn new(bundle: impl Into<PathBuf>) -> CreateOptions {
        CreateOptions {
            bundle: bundle.into(),
            ..CreateOptions::default()
        }
    }

    /// Sends the pty master to this unix socket when `process.terminal` is true.
    pub fn console_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.console_socket = Some(path.into());
        self
    }

    /// Writes the init's pid to this file.
    pub fn pid_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.pid_file = Some(path.into());
        self
    }

    /// Passes fds 3..3+n to the container.
    pub fn preserve_fds(mut self, n: u32) -> Self {
        self.preserve_fds = n;
        self
    }

    /// Passes n socket-activation fds (see the field).
    pub fn listen_fds(mut self, n: u32) -> Self {
        self.listen_fds = n;
        self
    }

    /// `MS_MOVE` + `chroot` instead of `pivot_root`.
    pub fn no_pivot(mut self, yes: bool) -> Self {
        self.no_pivot = yes;
        self
    }

    /// Keeps the caller's session keyring.
    pub fn no_new_keyring(mut self, yes: bool) -> Self {
        self.no_new_keyring = yes;
        self
    }

    /// The container's stdin.
    pub fn stdin(mut self, s: Stdio) -> Self {
        self.stdio[0] = s;
        self
    }

    /// The container's stdout.
    pub fn stdout(mut self, s: Stdio) -> Self {
        self.stdio[1] = s;
        self
    }

    /// The container's stderr.
    pub fn stderr(mut self, s: Stdio) -> Self {
        self.stdio[2] = s;
        self
    }
}

/// Options of [`Runtime::exec`] (runc's `exec` flags beyond the process itself, and the
/// process's stdio). Fields may be added: start from [`ExecOptions::new`].
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ExecOptions {
    /// `--console-socket`.
    pub console_socket: Option<PathBuf>,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// `--cgroup`: run the process in existing sub-cgroups of the container's cgroup, each
    /// value `PATH` (every controller) or `CONTROLLER[,CONTROLLER]:PATH`, as runc's.
    pub cgroup: Vec<String>,
    /// The process's stdin, stdout and stderr (default: the caller's); the caller's ends of
    /// [`Stdio::Piped`] ones come from [`Exec::take_stdout`] and the like.
    pub stdio: [Stdio; 3],
}

impl ExecOptions {
    /// No console socket, no pid file, no preserved fds, the container's own cgroup, the
    /// caller's stdio.
    pub fn new() -> ExecOptions {
        ExecOptions::default()
    }

    /// The process's stdin.
    pub fn stdin(mut self, s: Stdio) -> Self {
        self.stdio[0] = s;
        self
    }

    /// The process's stdout.
    pub fn stdout(mut self, s: Stdio) -> Self {
        self.stdio[1] = s;
        self
    }

    /// The process's stderr.
    pub fn stderr(mut self, s: Stdio) -> Self {
        self.stdio[2] = s;
        self
    }
}

/// Copies of the caller's stdio choices (options are borrowed: an fd is duplicated).
fn stdio_copies(s: &[Stdio; 3]) -> Result<[Stdio; 3]> {
    let c = |x: &Stdio| {
        x.try_clone()
            .map_err(|e| Error::io(PathBuf::from("stdio fd"), e))
    };
    Ok([c(&s[0])?, c(&s[1])?, c(&s[2])?])
}

/// The number of socket-activation fds systemd passed to this process (sd_listen_fds(3)):
/// `LISTEN_FDS` when `LISTEN_PID` is this process's pid, else 0.
pub fn listen_fds_from_env() -> u32 {
    let pid = std::env::var("LISTEN_PID").ok();
    if pid.and_then(|p| p.parse::<u32>().ok()) != Some(std::process::id()) {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// How a signal is delivered by [`Runtime::kill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillScope {
    /// To the container's init only.
    Init,
    /// To every process in the container's cgroup (`kill --all`).
    All,
}

/// A container created and started by [`Runtime::run`] in this process: its init is this
/// process's child, so its exit status can be collected.
#[derive(Debug)]
pub struct Running {
    id: String,
    container: Container,
    /// The pty master, when `process.terminal` is true and no console socket was given.
    pub console: Option<OwnedFd>,
}

impl Running {
    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The init's pid.
    pub fn pid(&self) -> i32 {
        self.container.pid()
    }

    /// Waits for the init to exit; returns its exit code the way a shell reports it (128 + N
    /// for death by signal N).
    pub fn wait(&mut self) -> Result<i32> {
        let status = self.container.wait().map_err(sandbox_error)?;
        Ok(match status {
            oci_sandbox::ExitStatus::Exited(c) => c,
            oci_sandbox::ExitStatus::Signaled(s) => 128 + s,
        })
    }

    /// The writing end of the container's stdin, when it was [`Stdio::Piped`] (once).
    pub fn take_stdin(&mut self) -> Option<std::fs::File> {
        self.container.take_stdin()
    }

    /// The reading end of the container's stdout, when it was [`Stdio::Piped`] (once).
    pub fn take_stdout(&mut self) -> Option<std::fs::File> {
        self.container.take_stdout()
    }

    /// The reading end of the container's stderr, when it was [`Stdio::Piped`] (once).
    pub fn take_stderr(&mut self) -> Option<std::fs::File> {
        self.container.take_stderr()
    }

    /// Gives up the handle without stopping the container (`run --detach`).
    pub fn detach(self) -> i32 {
        self.container.detach()
    }
}

/// An exec'd process.
#[derive(Debug)]
pub struct Exec {
    inner: oci_sandbox::Exec,
    /// The pty master, when the process has a terminal and no console socket was given.
    pub console: Option<OwnedFd>,
}

impl Exec {
    /// The process's pid.
    pub fn pid(&self) -> i32 {
        self.inner.pid()
    }

    /// The writing end of the process's stdin, when it was [`Stdio::Piped`] (once).
    pub fn take_stdin(&mut self) -> Option<std::fs::File> {
        self.inner.take_stdin()
    }

    /// The reading end of the process's stdout, when it was [`Stdio::Piped`] (once).
    pub fn take_stdout(&mut self) -> Option<std::fs::File> {
        self.inner.take_stdout()
    }

    /// The reading end of the process's stderr, when it was [`Stdio::Piped`] (once).
    pub fn take_stderr(&mut self) -> Option<std::fs::File> {
        self.inner.take_stderr()
    }

    /// Waits for it; the exit code as a shell reports it.
    pub fn wait(&mut self) -> Result<i32> {
        Ok(match self.inner.wait().map_err(sandbox_error)? {
            oci_sandbox::ExitStatus::Exited(c) => c,
            oci_sandbox::ExitStatus::Signaled(s) => 128 + s,
        })
    }
}

fn sandbox_error(e: oci_sandbox::Error) -> Error {
    Error::Sandbox(e)
}

/// The runtime: a state root and the operations of runtime.md on the containers in it.
#[derive(Debug, Clone)]
pub struct Runtime {
    store: StateStore,
}

impl Runtime {
    /// A runtime whose state lives under `root` (created 0700 if missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        Ok(Self {
            store: StateStore::new(root)?,
        })
    }

    /// The state store.
    pub fn store(&self) -> &StateStore {
        &self.store
    }

    /// The runtime-spec state of a container (runtime.md, "Query State"), with `status`
    /// `paused` for a frozen container, as runc reports it.
    pub fn state(&self, id: &str) -> Result<State> {
        Ok(self.store.load(id)?.oci_state())
    }

    /// The live status as runc names it: `created`, `running`, `paused` or `stopped`.
    pub fn status_name(record: &ContainerRecord) -> String {
        match record.status() {
            ContainerState::Running if record.extra.contains_key(PAUSED) => "paused".into(),
            s => s.to_string(),
        }
    }

    /// Every container's record, sorted by id.
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        self.store.list()
    }

    /// Loads a record and checks that the live status is one of `allowed`.
    fn expect(
        &self,
        id: &str,
        allowed: &[ContainerState],
        op: &'static str,
    ) -> Result<ContainerRecord> {
        let r = self.store.load(id)?;
        let status = r.status();
        if !allowed.contains(&status) {
            return Err(Error::WrongState {
                id: id.into(),
                status: Self::status_name(&r),
                operation: op,
            });
        }
        Ok(r)
    }

    /// `create` (runtime.md, "Create"): sets the container up from its bundle, runs the
    /// prestart, createRuntime and createContainer hooks, and leaves the init waiting for
    /// [`Runtime::start`]. On any failure nothing is left: no process, cgroup or state.
    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<ContainerRecord> {
        let (record, container, _lock) = self.create_inner(id, opts, true)?;
        let mut container = container;
        self.deliver_console(&mut container, opts.console_socket.as_deref(), true)?;
        container.detach();
        Ok(record)
    }

    fn create_inner(
        &self,
        id: &str,
        opts: &CreateOptions,
        fifo_mode: bool,
    ) -> Result<(ContainerRecord, Container, ContainerLock)> {
        // Before this process opens anything that could take one of their numbers.
        let passed = opts.listen_fds.saturating_add(opts.preserve_fds);
        oci_sandbox::check_preserve_fds(passed).map_err(sandbox_error)?;
        let bundle = Bundle::load(&opts.bundle)?;
        let lock = self.store.create(id)?;
        let dir = self.store.dir(id)?;
        let mut cleanup = DirCleanup(Some(self.store.clone()), id.to_string());
        let mut spec = bundle.spec.clone();
        if opts.listen_fds > 0 {
            if let Some(p) = spec.process_mut().as_mut() {
                let mut env = p.env().clone().unwrap_or_default();
                env.push(format!("LISTEN_FDS={}", opts.listen_fds));
                env.push("LISTEN_PID=1".into());
                p.set_env(Some(env));
            }
        }
        default_cgroups_path(&mut spec, self.store.root(), id);
        // Before any cgroup or process exists: what `delete --force` needs to undo a create
        // killed from here on.
        self.store.save_intent(
            id,
            &crate::state::Intent {
                cgroups_path: spec
                    .linux()
                    .as_ref()
                    .and_then(|l| l.cgroups_path().as_ref())
                    .map(|p| p.to_string_lossy().into_owned()),
                bundle: bundle.path.clone(),
            },
        )?;
        if spec
            .process()
            .as_ref()
            .is_some_and(|p| p.terminal().unwrap_or(false))
            && fifo_mode
            && opts.console_socket.is_none()
        {
            return Err(Error::ConsoleSocketRequired);
        }

        if fifo_mode && opts.stdio.iter().any(|s| matches!(s, Stdio::Piped)) {
            return Err(Error::Conversion {
                field: "stdio",
                message: "a piped stdio needs Runtime::run: Runtime::create returns no handle"
                    .into(),
            });
        }
        let [stdin, stdout, stderr] = stdio_copies(&opts.stdio)?;
        close_on_exec(passed);
        let mut options = Options::new()
            .bundle(bundle.path.clone())
            .preserve_fds(passed)
            .no_pivot(opts.no_pivot)
            .no_new_keyring(opts.no_new_keyring)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr);
        if fifo_mode {
            let fifo = dir.join(EXEC_FIFO);
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &fifo,
                rustix::fs::FileType::Fifo,
                // 0622 as runc: the container's user (any uid) must be able to open it for writing.
                rustix::fs::Mode::from_raw_mode(0o622),
                0,
            )
            .map_err(|e| Error::io(&fifo, e.into()))?;
            // mknod applies the umask: set the mode explicitly.
            rustix::fs::chmod(&fifo, rustix::fs::Mode::from_raw_mode(0o622))
                .map_err(|e| Error::io(&fifo, e.into()))?;
            options = options.exec_fifo(fifo);
        }
        let (hook_spec, hook_id, hook_bundle) = (spec.clone(), id.to_string(), bundle.path.clone());
        options = options.on_create_runtime(move |pid| {
            let state = creating_state(&hook_spec, &hook_id, &hook_bundle, pid);
            run_hooks("prestart", &hooks_of(&hook_spec, "prestart"), &state)
                .map_err(|e| e.to_string())?;
            run_hooks(
                "createRuntime",
                &hooks_of(&hook_spec, "createRuntime"),
                &state,
            )
            .map_err(|e| e.to_string())
        });
        let (hook_spec, hook_id, hook_bundle) = (spec.clone(), id.to_string(), bundle.path.clone());
        let hook_rootfs = bundle.rootfs.clone();
        options = options.on_create_container(move |pid| {
            let state = creating_state(&hook_spec, &hook_id, &hook_bundle, pid);
            // Before pivot_root: started in the rootfs, as runc does.
            run_hooks_in_namespaces(
                "createContainer",
                &hooks_of(&hook_spec, "createContainer"),
                &state,
                pid,
                Some(&hook_rootfs),
            )
            .map_err(|e| e.to_string())
        });
        // HOME is the process's, as runc sets it in its init: the recorded config (and so an
        // exec's environment) stays the bundle's.
        let mut run_spec = spec.clone();
        if let Some(p) = run_spec.process_mut().as_mut() {
            set_home(p, &bundle.rootfs);
        }
        let container =
            Sandbox::create(&run_spec, &bundle.rootfs, options).map_err(sandbox_error)?;
        let pid = container.pid();
        let cgroup_path = container
            .cgroup()
            .map(|c| c.path().to_string_lossy().into_owned());
        let mut record = ContainerRecord {
            id: id.to_string(),
            bundle: bundle.path.clone(),
            rootfs: bundle.rootfs.clone(),
            status: ContainerState::Created,
            pid: Some(pid),
            pid_start_time: proc_stat(pid).map(|(_, t)| t),
            created: now_rfc3339(),
            config: spec,
            cgroup_path,
            extra: Default::default(),
        };
        if let Some(sock) = &opts.console_socket {
            record
                .extra
                .insert("consoleSocket".into(), sock.display().to_string());
        }
        self.store.save(&record)?;
        if let Some(p) = &opts.pid_file {
            write_pid_file(p, pid)?;
        }
        cleanup.0 = None;
        Ok((record, container, lock))
    }

    fn deliver_console(
        &self,
        container: &mut Container,
        socket: Option<&Path>,
        required: bool,
    ) -> Result<Option<OwnedFd>> {
        let Some(master) = container.take_console() else {
            return Ok(None);
        };
        match socket {
            Some(path) => {
                send_console(path, &master)?;
                Ok(None)
            }
            None if required => Err(Error::ConsoleSocketRequired),
            None => Ok(Some(master)),
        }
    }

    /// `start` (runtime.md, "Start"): runs the startContainer hooks in the container's
    /// namespaces, releases the init to run the user's program, then runs the poststart hooks.
    /// A failing hook stops the container (runtime.md, "Lifecycle" steps 7 and 9).
    pub fn start(&self, id: &str) -> Result<()> {
        let _lock = self.store.lock(id)?;
        let mut record = self.expect(id, &[ContainerState::Created], "start")?;
        let pid = record.pid.unwrap_or(0);
        let fifo = self.store.dir(id)?.join(EXEC_FIFO);
        let state = record.oci_state();
        if let Err(e) = run_hooks_in_namespaces(
            "startContainer",
            &hooks_of(&record.config, "startContainer"),
            &state,
            pid,
            None,
        ) {
            let _ = self.kill_record(&record, libc::SIGKILL, KillScope::All);
            return Err(e);
        }
        release_fifo(&fifo, &record)?;
        let _ = fs::remove_file(&fifo);
        record.status = ContainerState::Running;
        self.store.save(&record)?;
        if let Err(e) = run_hooks(
            "poststart",
            &hooks_of(&record.config, "poststart"),
            &record.oci_state(),
        ) {
            let _ = self.kill_record(&record, libc::SIGKILL, KillScope::All);
            return Err(e);
        }
        Ok(())
    }

    /// `run`: create and start in this process. The init stays this process's child (wait
    /// for it with [`Running::wait`], then [`Runtime::delete`] it), unless detached.
    pub fn run(&self, id: &str, opts: &CreateOptions) -> Result<Running> {
        let (mut record, mut container, lock) = self.create_inner(id, opts, false)?;
        let console =
            match self.deliver_console(&mut container, opts.console_socket.as_deref(), false) {
                Ok(c) => c,
                Err(e) => {
                    drop(lock);
                    drop(container);
                    let _ = self.store.remove(id);
                    return Err(e);
                }
            };
        let pid = container.pid();
        let state = record.oci_state();
        let started = run_hooks_in_namespaces(
            "startContainer",
            &hooks_of(&record.config, "startContainer"),
            &state,
            pid,
            None,
        )
        .and_then(|()| container.start().map_err(sandbox_error));
        if let Err(e) = started {
            drop(lock);
            drop(container); // kills and removes the cgroup
            let _ = self.store.remove(id);
            return Err(e);
        }
        record.status = ContainerState::Running;
        self.store.save(&record)?;
        drop(lock);
        if let Err(e) = run_hooks(
            "poststart",
            &hooks_of(&record.config, "poststart"),
            &record.oci_state(),
        ) {
            drop(container);
            let _ = self.delete(id, true);
            return Err(e);
        }
        Ok(Running {
            id: id.to_string(),
            container,
            console,
        })
    }

    /// `kill` (runtime.md, "Kill"): sends `signal` to the init, or to every process of the
    /// container with [`KillScope::All`]. A container that is neither created nor running is
    /// an error ("Attempting to send a signal to a container that is neither `created` nor
    /// `running` MUST have no effect on the container and MUST generate an error"), worded
    /// [`Error::NotRunning`] as runc words it, since engines match that text.
    ///
    /// [`KillScope::All`] (runc's `kill --all`, not in the spec) on a stopped container signals
    /// whatever is left in its cgroup (processes that outlived the init when the pid namespace
    /// is shared) and succeeds when nothing is left, as runc does: containerd sends `kill --all
    /// ID 9` after every exit to reap such processes.
    pub fn kill(&self, id: &str, signal: i32, scope: KillScope) -> Result<()> {
        let record = self.store.load(id)?;
        match record.status() {
            ContainerState::Created | ContainerState::Running => {
                self.kill_record(&record, signal, scope)
            }
            ContainerState::Stopped if scope == KillScope::All => {
                if let Some(cg) = self.cgroup_of(&record)? {
                    signal_cgroup(&cg, signal)?;
                }
                Ok(())
            }
            _ => Err(Error::NotRunning { id: id.into() }),
        }
    }

    fn kill_record(&self, record: &ContainerRecord, signal: i32, scope: KillScope) -> Result<()> {
        if scope == KillScope::All {
            if let Some(cg) = self.cgroup_of(record)? {
                return signal_cgroup(&cg, signal);
            }
        }
        let pid = record.pid.ok_or_else(|| Error::NotRunning {
            id: record.id.clone(),
        })?;
        signal_init(record, pid, signal)
    }

    fn cgroup_of(&self, record: &ContainerRecord) -> Result<Option<Cgroup>> {
        match &record.cgroup_path {
            Some(p) => match Cgroup::open(Path::new(p)) {
                Ok(c) => Ok(Some(c)),
                Err(_) => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// `delete` (runtime.md, "Delete"): removes a stopped container: its cgroup, its state,
    /// then runs the poststop hooks (a failing one is a warning). A created container is
    /// killed first, as runc does; a running one only with `force`.
    ///
    /// With `force`, a container whose record is missing (a create killed half-way) or
    /// unreadable is removed from what `create` recorded first (its cgroup, by the config's
    /// path, and every process in it, then its state directory); what cannot be removed is
    /// an [`Error::Leftover`] naming it.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let lock = self.store.lock(id)?;
        let record = match self.store.load(id) {
            Ok(r) => r,
            Err(Error::NotFound { .. } | Error::Json { .. }) if force => {
                return self.remove_remains(id, lock);
            }
            Err(e) => return Err(e),
        };
        // An init that exits between the status check and the kill is what delete wants.
        let kill = |record: &ContainerRecord| match self.kill_record(
            record,
            libc::SIGKILL,
            KillScope::All,
        ) {
            Err(Error::NotRunning { .. }) => Ok(()),
            r => r,
        };
        match record.status() {
            ContainerState::Stopped => {}
            ContainerState::Created => kill(&record)?,
            _ if force => {
                if record.extra.contains_key(PAUSED) {
                    if let Some(cg) = self.cgroup_of(&record)? {
                        let _ = cg.thaw();
                    }
                }
                kill(&record)?
            }
            _ => {
                return Err(Error::WrongState {
                    id: id.into(),
                    status: Self::status_name(&record),
                    operation: "delete without force",
                })
            }
        }
        let deadline = Instant::now() + DELETE_TIMEOUT;
        while record.init_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if let Some(cg) = self.cgroup_of(&record)? {
            cg.kill_all().map_err(sandbox_error)?;
            cg.remove().map_err(sandbox_error)?;
        }
        let mut stopped = record.clone();
        stopped.status = ContainerState::Stopped;
        let state = stopped.oci_state();
        self.store.remove(id)?;
        drop(lock);
        if let Err(e) = run_hooks("poststop", &hooks_of(&record.config, "poststop"), &state) {
            // runtime.md "Lifecycle" step 13: a warning, the lifecycle goes on.
            eprintln!("warning: {e}");
        }
        Ok(())
    }

    /// Removes whatever a half-made or corrupt container `id` left, from its intent (or, for
    /// a corrupt record, the cgroup path still legible in it).
    fn remove_remains(&self, id: &str, lock: ContainerLock) -> Result<()> {
        let dir = self.store.dir(id)?;
        let cgroup = self
            .store
            .load_intent(id)
            .and_then(|i| i.cgroups_path)
            .or_else(|| {
                let v: serde_json::Value =
                    serde_json::from_slice(&fs::read(dir.join("state.json")).ok()?).ok()?;
                v.get("cgroupPath")?.as_str().map(String::from)
            });
        let mut remains = Vec::new();
        if let Some(path) = &cgroup {
            remains.extend(sweep_cgroup(Path::new(path)));
        }
        if let Err(e) = self.store.remove(id) {
            remains.push(format!("state directory {} ({e})", dir.display()));
        }
        drop(lock);
        if remains.is_empty() {
            Ok(())
        } else {
            Err(Error::Leftover {
                id: id.into(),
                remains,
            })
        }
    }

    /// `pause`: freezes every process of the container.
    pub fn pause(&self, id: &str) -> Result<()> {
        let _lock = self.store.lock(id)?;
        let mut record = self.expect(id, &[ContainerState::Running], "pause")?;
        let cg = self.cgroup_of(&record)?.ok_or_else(|| no_cgroup(id))?;
        cg.freeze().map_err(sandbox_error)?;
        record.extra.insert(PAUSED.into(), "true".into());
        self.store.save(&record)
    }

    /// `resume`: thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<()> {
        let _lock = self.store.lock(id)?;
        let mut record = self.expect(id, &[ContainerState::Running], "resume")?;
        if !record.extra.contains_key(PAUSED) {
            return Err(Error::WrongState {
                id: id.into(),
                status: "running".into(),
                operation: "resume",
            });
        }
        let cg = self.cgroup_of(&record)?.ok_or_else(|| no_cgroup(id))?;
        cg.thaw().map_err(sandbox_error)?;
        record.extra.remove(PAUSED);
        self.store.save(&record)
    }

    /// `update`: applies new resource limits to a created or running container and records
    /// them.
    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let _lock = self.store.lock(id)?;
        let mut record = self.expect(
            id,
            &[ContainerState::Created, ContainerState::Running],
            "update",
        )?;
        let cg = self.cgroup_of(&record)?.ok_or_else(|| no_cgroup(id))?;
        cg.update(resources).map_err(sandbox_error)?;
        if let Some(linux) = record.config.linux_mut() {
            linux.set_resources(Some(merge_resources(
                linux.resources().clone().unwrap_or_default(),
                resources,
            )));
        }
        self.store.save(&record)
    }

    /// `ps`: the pids of every process in the container.
    pub fn ps(&self, id: &str) -> Result<Vec<i32>> {
        let record = self.store.load(id)?;
        match self.cgroup_of(&record)? {
            Some(cg) => cg.procs().map_err(sandbox_error),
            None => Ok(record
                .pid
                .filter(|_| record.init_alive())
                .into_iter()
                .collect()),
        }
    }

    /// Resource usage of a container's cgroup (`events --stats`).
    pub fn stats(&self, id: &str) -> Result<oci_sandbox::cgroups::Stats> {
        let record = self.store.load(id)?;
        let cg = self.cgroup_of(&record)?.ok_or_else(|| no_cgroup(id))?;
        cg.stats().map_err(sandbox_error)
    }

    /// How many times the kernel's OOM killer has killed a process of the container.
    pub fn oom_kills(&self, id: &str) -> Result<u64> {
        let record = self.store.load(id)?;
        let cg = self.cgroup_of(&record)?.ok_or_else(|| no_cgroup(id))?;
        cg.oom_kill_count().map_err(sandbox_error)
    }

    /// `exec`: runs `process` in a running (or created) container, joining its namespaces
    /// and cgroup, with its seccomp profile.
    pub fn exec(&self, id: &str, process: &Process, opts: &ExecOptions) -> Result<Exec> {
        oci_sandbox::check_preserve_fds(opts.preserve_fds).map_err(sandbox_error)?;
        let record = self.expect(
            id,
            &[ContainerState::Created, ContainerState::Running],
            "exec",
        )?;
        if record.extra.contains_key(PAUSED) {
            return Err(Error::WrongState {
                id: id.into(),
                status: "paused".into(),
                operation: "exec",
            });
        }
        let pid = record.pid.unwrap_or(0);
        let cg = self.cgroup_of(&record)?;
        let seccomp = record
            .config
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().clone());
        let personality = record
            .config
            .linux()
            .as_ref()
            .and_then(|l| l.personality().clone());
        close_on_exec(opts.preserve_fds);
        let [stdin, stdout, stderr] = stdio_copies(&opts.stdio)?;
        let mut o = oci_sandbox::ExecOptions::new()
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .preserve_fds(opts.preserve_fds)
            .seccomp(seccomp.as_ref())
            .personality(personality.as_ref());
        if let Some(cg) = &cg {
            o = if opts.cgroup.is_empty() {
                o.cgroup(cg)
            } else {
                let sub: Vec<(Vec<String>, PathBuf)> = opts
                    .cgroup
                    .iter()
                    .map(|v| match v.split_once(':') {
                        Some((c, p)) => (
                            c.split(',')
                                .filter(|c| !c.is_empty())
                                .map(String::from)
                                .collect(),
                            PathBuf::from(p),
                        ),
                        None => (Vec::new(), PathBuf::from(v)),
                    })
                    .collect();
                o.sub_cgroup(cg, &sub).map_err(sandbox_error)?
            };
        } else if !opts.cgroup.is_empty() {
            return Err(no_cgroup(id));
        }
        let mut process = process.clone();
        set_home(&mut process, Path::new(&format!("/proc/{pid}/root")));
        let mut inner = Sandbox::exec(pid, &process, o).map_err(sandbox_error)?;
        let console = match inner.take_console() {
            Some(m) => match &opts.console_socket {
                Some(sock) => {
                    send_console(sock, &m)?;
                    None
                }
                None => Some(m),
            },
            None => None,
        };
        if let Some(p) = &opts.pid_file {
            write_pid_file(p, inner.pid())?;
        }
        Ok(Exec { inner, console })
    }
}

/// Marks fds 3 .. 3+n close-on-exec in this process: they go to the container (whose process
/// clears the flag), never to the hooks or other programs this process runs. runc does the
/// same for socket-activation fds.
fn close_on_exec(n: u32) {
    for fd in 3..3u32.saturating_add(n) {
        // SAFETY: F_SETFD on a number the caller declared as an open fd to pass
        // (check_preserve_fds made sure of it); stop at the first that is not.
        if unsafe { libc::fcntl(fd as i32, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
            break;
        }
    }
}

/// `HOME` for a process whose env has none, as runc sets it: the user's home directory in
/// the container's `/etc/passwd` (read inside `rootfs`), else `/`.
fn set_home(process: &mut Process, rootfs: &Path) {
    let mut env = process.env().clone().unwrap_or_default();
    // An empty HOME counts as none (runc: `os.Getenv("HOME") == ""`).
    if env
        .iter()
        .any(|e| e.starts_with("HOME=") && e.len() > "HOME=".len())
    {
        return;
    }
    env.retain(|e| !e.starts_with("HOME="));
    let uid = process.user().uid();
    let home =
        crate::resolve_user(rootfs, &uid.to_string()).map_or_else(|_| "/".into(), |u| u.home);
    env.push(format!("HOME={home}"));
    process.set_env(Some(env));
}

fn no_cgroup(id: &str) -> Error {
    Error::WrongState {
        id: id.into(),
        status: "without a cgroup".into(),
        operation: "use cgroups",
    }
}

/// Fields set in `update` replace the recorded ones; unset fields keep them, and so do
/// zeros that mean "not set" ([`oci_sandbox::cgroups::without_unset`]) and the device rules,
/// which `update` does not change. Lists (per-device settings, hugepage limits) given replace
/// the recorded list; `unified` keys are added to the recorded ones.
fn merge_resources(mut base: LinuxResources, new: &LinuxResources) -> LinuxResources {
    let new = oci_sandbox::cgroups::without_unset(new);
    if let Some(n) = new.memory() {
        let o = base.memory().unwrap_or_default();
        let mut m = o;
        m.set_limit(n.limit().or(o.limit()))
            .set_reservation(n.reservation().or(o.reservation()))
            .set_swap(n.swap().or(o.swap()))
            .set_swappiness(n.swappiness().or(o.swappiness()))
            .set_disable_oom_killer(n.disable_oom_killer().or(o.disable_oom_killer()))
            .set_use_hierarchy(n.use_hierarchy().or(o.use_hierarchy()));
        base.set_memory(Some(m));
    }
    if let Some(n) = new.cpu() {
        let o = base.cpu().clone().unwrap_or_default();
        let mut c = o.clone();
        c.set_shares(n.shares().or(o.shares()))
            .set_quota(n.quota().or(o.quota()))
            .set_period(n.period().or(o.period()))
            .set_burst(n.burst().or(o.burst()))
            .set_idle(n.idle().or(o.idle()))
            .set_realtime_runtime(n.realtime_runtime().or(o.realtime_runtime()))
            .set_realtime_period(n.realtime_period().or(o.realtime_period()))
            .set_cpus(n.cpus().clone().or(o.cpus().clone()))
            .set_mems(n.mems().clone().or(o.mems().clone()));
        base.set_cpu(Some(c));
    }
    if new.pids().is_some() {
        base.set_pids(*new.pids());
    }
    if let Some(n) = new.block_io() {
        let o = base.block_io().clone().unwrap_or_default();
        let mut b = o.clone();
        b.set_weight(n.weight().or(o.weight()))
            .set_leaf_weight(n.leaf_weight().or(o.leaf_weight()))
            .set_weight_device(n.weight_device().clone().or(o.weight_device().clone()))
            .set_throttle_read_bps_device(
                n.throttle_read_bps_device()
                    .clone()
                    .or(o.throttle_read_bps_device().clone()),
            )
            .set_throttle_write_bps_device(
                n.throttle_write_bps_device()
                    .clone()
                    .or(o.throttle_write_bps_device().clone()),
            )
            .set_throttle_read_iops_device(
                n.throttle_read_iops_device()
                    .clone()
                    .or(o.throttle_read_iops_device().clone()),
            )
            .set_throttle_write_iops_device(
                n.throttle_write_iops_device()
                    .clone()
                    .or(o.throttle_write_iops_device().clone()),
            );
        base.set_block_io(Some(b));
    }
    if let Some(n) = new.network() {
        let o = base.network().clone().unwrap_or_default();
        let mut net = o.clone();
        net.set_class_id(n.class_id().or(o.class_id()))
            .set_priorities(n.priorities().clone().or(o.priorities().clone()));
        base.set_network(Some(net));
    }
    if new
        .hugepage_limits()
        .as_ref()
        .is_some_and(|h| !h.is_empty())
    {
        base.set_hugepage_limits(new.hugepage_limits().clone());
    }
    if let Some(u) = new.unified().as_ref().filter(|u| !u.is_empty()) {
        let mut all = base.unified().clone().unwrap_or_default();
        all.extend(u.iter().map(|(k, v)| (k.clone(), v.clone())));
        base.set_unified(Some(all));
    }
    base
}

/// Without a `cgroupsPath`, a container gets `/ocirun/<id>-<tag of the state root>`, so that
/// `kill --all`, `pause` and resource limits always have a cgroup to act on, and two runtimes
/// with different state roots never share one.
fn default_cgroups_path(spec: &mut Spec, root: &Path, id: &str) {
    if let Some(linux) = spec.linux_mut() {
        if linux.cgroups_path().is_none() {
            linux.set_cgroups_path(Some(PathBuf::from(format!(
                "/ocirun/{id}-{:08x}",
                root_tag(root)
            ))));
        }
    }
}

/// Sends `signal` to every process in `cg` (SIGKILL through the cgroup's kill loop, which
/// also catches processes forked meanwhile).
fn signal_cgroup(cg: &Cgroup, signal: i32) -> Result<()> {
    if signal == libc::SIGKILL {
        return cg.kill_all().map_err(sandbox_error);
    }
    for pid in cg.procs().map_err(sandbox_error)? {
        // A process may exit between the read and the kill.
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(pid, signal) };
    }
    Ok(())
}

/// 32 bits of FNV-1a over the state root's path, canonical where it resolves: two runtimes
/// with different roots on one host give the same id different cgroups.
fn root_tag(root: &Path) -> u32 {
    use std::os::unix::ffi::OsStrExt;
    let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in root.as_os_str().as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32
}

/// Sends `signal` to the init through a pidfd, after checking that the pid still belongs to
/// the container (its start time), so that a recycled pid is never signalled.
fn signal_init(record: &ContainerRecord, pid: i32, signal: i32) -> Result<()> {
    let not_running = || Error::NotRunning {
        id: record.id.clone(),
    };
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return Err(not_running());
    };
    let fd = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
        .map_err(|_| not_running())?;
    // The pidfd pins the process: if the start time still matches now, it is the container.
    if !record.init_alive() {
        return Err(not_running());
    }
    // SAFETY: pidfd_send_signal(2) with a valid pidfd and no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Err(not_running());
        }
        return Err(Error::io(format!("/proc/{pid}"), e));
    }
    Ok(())
}

/// Sends the pty master over the AF_UNIX socket at `path` (runc's `--console-socket`).
pub(crate) fn send_console(path: &Path, master: &OwnedFd) -> Result<()> {
    use std::os::unix::net::UnixStream;
    let stream = UnixStream::connect(path).map_err(|e| Error::io(path, e))?;
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = rustix::net::SendAncillaryBuffer::new(&mut space);
    let borrowed = [std::os::fd::AsFd::as_fd(master)];
    cmsg.push(rustix::net::SendAncillaryMessage::ScmRights(&borrowed));
    // runc sends the name of the pty as the payload ("/dev/ptmx" style); any byte works for
    // the receivers (conmon, containerd), which read the fd.
    let payload = b"/dev/ptmx";
    rustix::net::sendmsg(
        &stream,
        &[std::io::IoSlice::new(payload)],
        &mut cmsg,
        rustix::net::SendFlags::empty(),
    )
    .map_err(|e| Error::io(path, e.into()))?;
    Ok(())
}

/// The state hooks see during create: status `creating` and the init's pid.
pub(crate) fn creating_state(spec: &Spec, id: &str, bundle: &Path, pid: i32) -> State {
    let mut b = oci_spec::runtime::StateBuilder::default()
        .version(spec.version().clone())
        .id(id.to_string())
        .status(ContainerState::Creating)
        .pid(pid)
        .bundle(bundle.to_path_buf());
    if let Some(a) = spec.annotations().clone().filter(|a| !a.is_empty()) {
        b = b.annotations(a);
    }
    b.build()
        .unwrap_or_else(|_| unreachable!("all required fields are set"))
}

#[allow(deprecated)]
pub(crate) fn hooks_of(spec: &Spec, kind: &str) -> Vec<Hook> {
    let Some(h) = spec.hooks() else { return vec![] };
    match kind {
        "prestart" => h.prestart().clone(),
        "createRuntime" => h.create_runtime().clone(),
        "createContainer" => h.create_container().clone(),
        "startContainer" => h.start_container().clone(),
        "poststart" => h.poststart().clone(),
        "poststop" => h.poststop().clone(),
        _ => None,
    }
    .unwrap_or_default()
}

/// Writes `pid` to `path` atomically (a reader never sees a half-written pid file).
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, pid.to_string()).map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Opens the exec fifo without blocking and waits for the init to write its byte (or die).
fn release_fifo(fifo: &Path, record: &ContainerRecord) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(fifo)
        .map_err(|e| Error::io(fifo, e))?;
    let deadline = Instant::now() + START_TIMEOUT;
    let mut buf = [0u8; 1];
    loop {
        match f.read(&mut buf) {
            Ok(1) => return Ok(()),
            // EOF: the init closed its end without writing (it is failing); give it a moment
            // to exit rather than spin on a fifo that stays readable.
            Ok(_) => std::thread::sleep(Duration::from_millis(1)),
            // Nothing yet: sleep in poll(2) until the init writes, checking on it every 100 ms.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut pfd = libc::pollfd {
                    fd: std::os::fd::AsRawFd::as_raw_fd(&f),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: poll(2) on one valid pollfd.
                unsafe { libc::poll(&mut pfd, 1, 100) };
            }
            Err(e) => return Err(Error::io(fifo, e)),
        }
        if !record.init_alive() {
            // The init writes its byte before it execs the user's program, which may exit at
            // once: a byte that arrived meanwhile means the container did start.
            if let Ok(1) = f.read(&mut buf) {
                return Ok(());
            }
            return Err(Error::WrongState {
                id: record.id.clone(),
                status: "stopped".into(),
                operation: "start",
            });
        }
        if Instant::now() >= deadline {
            return Err(Error::io(
                fifo,
                std::io::Error::other("the container's init never reached its start point"),
            ));
        }
    }
}

/// Kills every process in the cgroup `path` (absolute, or relative to this process's own
/// cgroup, as config-linux.md "Cgroups Path") in every hierarchy, sub-cgroups first, and
/// removes its directories. Works on whatever part of it exists (a create killed while making
/// it). Returns what is left.
fn sweep_cgroup(path: &Path) -> Vec<String> {
    let mut remains = Vec::new();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let fstype = post.split(' ').next().unwrap_or("");
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let f: Vec<&str> = pre.split(' ').collect();
        let (Some(root), Some(mnt)) = (f.get(3), f.get(4)) else {
            continue;
        };
        if *root != "/" {
            continue;
        }
        let rel = match path.strip_prefix("/") {
            Ok(abs) => abs.to_path_buf(),
            Err(_) => {
                // The runtime's own cgroup in this hierarchy: the line of /proc/self/cgroup
                // whose controllers are this mount's options (cgroup2: "0::").
                let opts = post.split(' ').nth(2).unwrap_or("");
                let mine = own.lines().find_map(|l| {
                    let mut p = l.splitn(3, ':');
                    let (_, ctl, at) = (p.next()?, p.next()?, p.next()?);
                    let hit = if fstype == "cgroup2" {
                        ctl.is_empty()
                    } else {
                        !ctl.is_empty() && ctl.split(',').all(|c| opts.split(',').any(|o| o == c))
                    };
                    hit.then(|| at.trim_start_matches('/').to_string())
                });
                let Some(mine) = mine else { continue };
                Path::new(&mine).join(path)
            }
        };
        let dir = Path::new(mnt).join(rel);
        if dir.is_dir() {
            remove_cgroup_tree(&dir);
            if dir.exists() {
                remains.push(format!("cgroup {}", dir.display()));
            }
        }
    }
    remains.sort();
    remains.dedup();
    remains
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let deadline = Instant::now() + DELETE_TIMEOUT;
    loop {
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) with plain integers; a process that exited meanwhile is ESRCH.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // rmdir fails with EBUSY until the killed processes are gone.
        if fs::remove_dir(dir).is_ok() || !dir.exists() || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Removes a half-created container's state directory unless disarmed.
struct DirCleanup(Option<StateStore>, String);

impl Drop for DirCleanup {
    fn drop(&mut self) {
        if let Some(store) = self.0.take() {
            let _ = store.remove(&self.1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The init writes its byte and execs a program that exits at once: by the time `start`
    /// looks at it, it is gone, but the byte says it started (this failed under load).
    #[test]
    fn a_byte_from_an_init_that_already_exited_is_a_start() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join(EXEC_FIFO);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let record = ContainerRecord {
            id: "gone".into(),
            bundle: dir.path().into(),
            rootfs: dir.path().into(),
            status: ContainerState::Created,
            // No such process: the init is already gone when start checks on it.
            pid: Some(0x7fff_fff0),
            pid_start_time: Some(1),
            created: String::new(),
            config: Spec::default(),
            cgroup_path: None,
            extra: std::collections::HashMap::new(),
        };
        // A writer is there from the start (reads say "nothing yet", not end-of-file); the
        // byte comes while `release_fifo` waits in poll(2), after the init is gone.
        let holder = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        let mut w = holder.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            std::thread::sleep(Duration::from_millis(50));
            w.write_all(b"0").unwrap();
        });
        release_fifo(&fifo, &record).unwrap();
        writer.join().unwrap();
        // Without a byte, a dead init is a stopped container.
        let e = release_fifo(&fifo, &record).unwrap_err();
        assert!(e.to_string().contains("stopped"), "{e}");
        drop(holder);
    }
}
