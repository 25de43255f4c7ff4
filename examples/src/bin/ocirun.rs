//! `ocirun`: an OCI runtime with runc's command line, so that podman, containerd and CRI-O can
//! use it in place of runc.
//!
//! The semantics are `oci-runtime`'s; this file only maps runc's flags onto them and reports
//! errors the way engines expect: on stderr, and in the `--log` file as runc's text or JSON
//! lines, with exit status 1 (255 for `exec`, as runc-exec(8) documents).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use oci_runtime::{CreateOptions, ExecOptions, KillScope, Runtime};
use oci_spec::runtime::{LinuxResources, Process};

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Parser)]
#[command(
    name = "ocirun",
    about = "Open Container Initiative runtime",
    disable_version_flag = true
)]
struct Cli {
    /// Root directory for storage of container state (default /run/ocirun, or
    /// $XDG_RUNTIME_DIR/ocirun when rootless).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Write runtime logs to this file (default: stderr).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Enable debug logging.
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd to manage cgroups (not supported: an error).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Path to criu (accepted for compatibility; checkpoint is not supported).
    #[arg(long, hide = true)]
    criu: Option<String>,
    /// Ignore cgroup permission errors (accepted for compatibility).
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Print the version.
    #[arg(short = 'v', long = "version")]
    version: bool,
    /// Print a shell completion script and exit (install: see `scripts/install`).
    #[arg(long = "generate-completion", hide = true, value_name = "SHELL")]
    generate_completion: Option<clap_complete::Shell>,
    /// Write the man pages into a directory and exit.
    #[arg(long = "generate-man", hide = true, value_name = "DIR")]
    generate_man: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Clone)]
struct CreateArgs {
    /// Path to the bundle directory.
    #[arg(short = 'b', long, default_value = ".")]
    bundle: PathBuf,
    /// AF_UNIX socket that receives the pty master when process.terminal is true.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// File to write the container's pid to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Do not use pivot_root (MS_MOVE and chroot instead).
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass N additional file descriptors (from 3) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// The container id.
    id: String,
}

impl CreateArgs {
    fn options(&self) -> CreateOptions {
        let mut o = CreateOptions::new(&self.bundle)
            .preserve_fds(self.preserve_fds)
            .listen_fds(oci_runtime::listen_fds_from_env())
            .no_pivot(self.no_pivot)
            .no_new_keyring(self.no_new_keyring);
        o.console_socket.clone_from(&self.console_socket);
        o.pid_file.clone_from(&self.pid_file);
        o
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create a container (it waits for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start {
        /// The container id.
        id: String,
    },
    /// Create and start a container, and wait for it unless detached.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Detach from the container's process.
        #[arg(short = 'd', long)]
        detach: bool,
        /// Do not delete the container after it exits.
        #[arg(long)]
        keep: bool,
        /// Accepted for compatibility.
        #[arg(long = "no-subreaper", hide = true)]
        no_subreaper: bool,
    },
    /// Print the state of a container as JSON.
    State {
        /// The container id.
        id: String,
    },
    /// Send a signal (name or number, default SIGTERM) to a container's init.
    Kill {
        /// Send the signal to every process of the container.
        #[arg(short = 'a', long)]
        all: bool,
        /// The container id.
        id: String,
        /// The signal.
        signal: Option<String>,
    },
    /// Delete a stopped container.
    Delete {
        /// Kill a running container first (SIGKILL).
        #[arg(short = 'f', long)]
        force: bool,
        /// The container id.
        id: String,
    },
    /// List containers.
    List {
        /// table or json.
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        /// Only the ids.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// List the processes of a container.
    Ps {
        /// table or json.
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        /// The container id.
        id: String,
        /// Options for ps (accepted; the table is built from /proc).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Run a process in a running container.
    Exec(Box<ExecArgs>),
    /// Freeze every process of a container.
    Pause {
        /// The container id.
        id: String,
    },
    /// Thaw a paused container.
    Resume {
        /// The container id.
        id: String,
    },
    /// Update a container's resource limits.
    Update(Box<UpdateArgs>),
    /// Print a container's resource usage and OOM events.
    Events {
        /// Print the stats once and exit.
        #[arg(long)]
        stats: bool,
        /// Interval between stats (e.g. 5s, 500ms).
        #[arg(long, default_value = "5s")]
        interval: String,
        /// The container id.
        id: String,
    },
    /// Print what this runtime and host support (runtime-spec features.md).
    Features,
    /// Write a default config.json.
    Spec {
        /// The bundle directory.
        #[arg(short = 'b', long, default_value = ".")]
        bundle: PathBuf,
        /// A config for a rootless container.
        #[arg(long)]
        rootless: bool,
    },
}

#[derive(Args)]
struct ExecArgs {
    /// Path to a process.json.
    #[arg(short = 'p', long)]
    process: Option<PathBuf>,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    tty: bool,
    /// Detach from the process.
    #[arg(short = 'd', long)]
    detach: bool,
    /// File to write the process's pid to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// AF_UNIX socket that receives the pty master.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Environment variables (KEY=VALUE).
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Working directory.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// `uid[:gid]`.
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Additional gids.
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Add a capability (e.g. CAP_NET_ADMIN) to the process.
    #[arg(short = 'c', long = "cap")]
    cap: Vec<String>,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Pass N additional file descriptors.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// SELinux label (refused when SELinux is not available).
    #[arg(long = "process-label")]
    process_label: Option<String>,
    /// AppArmor profile (refused when AppArmor is not available).
    #[arg(long)]
    apparmor: Option<String>,
    /// Run in an existing sub-cgroup of the container's: PATH, or CONTROLLER[,...]:PATH
    /// (repeatable).
    #[arg(long)]
    cgroup: Vec<String>,
    /// Allow exec in a paused container (accepted; refused anyway).
    #[arg(long = "ignore-paused", hide = true)]
    ignore_paused: bool,
    /// The container id.
    id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Args)]
struct UpdateArgs {
    /// A JSON file with the resources ('-' for stdin).
    #[arg(short = 'r', long)]
    resources: Option<String>,
    /// Block IO weight (10-1000).
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    /// CFS period (µs).
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    /// CFS quota (µs).
    #[arg(long = "cpu-quota")]
    cpu_quota: Option<i64>,
    /// CPU shares.
    #[arg(long = "cpu-share")]
    cpu_share: Option<u64>,
    /// Realtime period (µs).
    #[arg(long = "cpu-rt-period")]
    cpu_rt_period: Option<u64>,
    /// Realtime runtime (µs).
    #[arg(long = "cpu-rt-runtime")]
    cpu_rt_runtime: Option<i64>,
    /// CPUs to use.
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes to use.
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Memory limit (bytes).
    #[arg(long)]
    memory: Option<i64>,
    /// Memory reservation (bytes).
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<i64>,
    /// Memory + swap limit (bytes; -1 unlimited).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<i64>,
    /// Maximum number of pids.
    #[arg(long = "pids-limit")]
    pids_limit: Option<i64>,
    /// Accepted for compatibility (Intel RDT is not supported: an error if given).
    #[arg(long = "l3-cache-schema")]
    l3_cache_schema: Option<String>,
    /// Accepted for compatibility (Intel RDT is not supported: an error if given).
    #[arg(long = "mem-bw-schema")]
    mem_bw_schema: Option<String>,
    /// The container id.
    id: String,
}

/// Where and how errors are logged, as runc does it.
struct Logger {
    file: Option<PathBuf>,
    json: bool,
}

impl Logger {
    fn log(&self, level: &str, msg: &str) {
        let time = oci_runtime::now_rfc3339();
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time=\"{time}\" level={level} msg={msg:?}")
        };
        if let Some(path) = &self.file {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(f, "{line}");
            }
        }
    }
}

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    // SAFETY: restoring SIGPIPE's default before any thread exists, so a closed pipe ends the
    // output quietly.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let logger = Logger {
        file: cli.log.clone(),
        json: cli.log_format == "json",
    };
    if let Some(shell) = cli.generate_completion {
        clap_complete::generate(shell, &mut Cli::command(), "ocirun", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    if let Some(dir) = &cli.generate_man {
        return match examples::manpages::write(Cli::command(), dir) {
            Ok(pages) => {
                for p in pages {
                    println!("{}", p.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ocirun: {}: {e}", dir.display());
                ExitCode::from(1)
            }
        };
    }
    if cli.version {
        println!(
            "ocirun version {VERSION}\nspec: {}",
            oci_runtime::OCI_VERSION
        );
        return ExitCode::SUCCESS;
    }
    // CVE-2019-5736: the commands whose forks enter a container run from a binary that
    // cannot be written (re-executed once, before any thread exists).
    if let Some(Command::Create(_) | Command::Run { .. } | Command::Exec(_)) = &cli.command {
        match oci_sandbox::protect_exe() {
            Ok(how) if cli.debug => {
                logger.log("debug", &format!("runtime binary: {}", how.name()));
            }
            Ok(_) => {}
            Err(e) => return fail(&cli, &logger, &e),
        }
    }
    match run(&cli, &logger) {
        Ok(code) => code,
        Err(e) => fail(&cli, &logger, e.as_ref()),
    }
}

fn fail(cli: &Cli, logger: &Logger, e: &(dyn std::error::Error + 'static)) -> ExitCode {
    // One line, as runc logs it (engines read it back): each cause said once.
    let msg = examples::report::one_line(e);
    logger.log("error", &msg);
    eprintln!("ocirun: {msg}");
    // runc-exec(8): "Exits with a status of command (unless -d is used), or 255 if an
    // error occurred", so that a failed exec cannot pass for the command's own status.
    match cli.command {
        Some(Command::Exec(_)) => ExitCode::from(255),
        _ => ExitCode::from(1),
    }
}

fn run(cli: &Cli, logger: &Logger) -> AnyResult<ExitCode> {
    // runc refuses a log format it does not know, whatever the command.
    if !matches!(cli.log_format.as_str(), "text" | "json") {
        return Err(format!("invalid log-format: {}", cli.log_format).into());
    }
    if cli.systemd_cgroup {
        return Err(
            "--systemd-cgroup is not supported: use the cgroupfs manager (cgroupsPath as a path)"
                .into(),
        );
    }
    let Some(command) = &cli.command else {
        return Err("no command given; see --help".into());
    };
    let root = cli.root.clone().unwrap_or_else(oci_runtime::default_root);
    let rt = || Runtime::new(&root);
    if cli.debug {
        logger.log("debug", &format!("root {}", root.display()));
    }
    match command {
        Command::Create(a) => {
            rt()?.create(&a.id, &a.options())?;
        }
        Command::Start { id } => rt()?.start(id)?,
        Command::Run {
            create,
            detach,
            keep,
            no_subreaper: _,
        } => return run_container(&rt()?, create, *detach, *keep),
        Command::State { id } => {
            let rt = rt()?;
            let r = rt.store().load(id)?;
            println!("{}", serde_json::to_string_pretty(&state_json(&r))?);
        }
        Command::Kill { all, id, signal } => {
            let sig = examples::signals::parse(signal.as_deref().unwrap_or("SIGTERM"))?;
            let scope = if *all {
                KillScope::All
            } else {
                KillScope::Init
            };
            rt()?.kill(id, sig, scope)?;
        }
        Command::Delete { force, id } => {
            let rt = rt()?;
            match rt.delete(id, *force) {
                // runc: deleting what is already gone is an error, except with --force.
                Err(oci_runtime::Error::NotFound { .. }) if *force => {}
                other => other?,
            }
        }
        Command::List { format, quiet } => list(&rt()?, format, *quiet)?,
        Command::Ps {
            format,
            id,
            ps_args: _,
        } => ps(&rt()?, id, format)?,
        Command::Exec(a) => return exec(&rt()?, a),
        Command::Pause { id } => rt()?.pause(id)?,
        Command::Resume { id } => rt()?.resume(id)?,
        Command::Update(a) => update(&rt()?, a)?,
        Command::Events {
            stats,
            interval,
            id,
        } => events(&rt()?, id, *stats, interval)?,
        Command::Features => println!("{}", serde_json::to_string_pretty(&features())?),
        Command::Spec { bundle, rootless } => spec(bundle, *rootless)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// runc's `state` output: the runtime-spec state (runtime.md, "State") plus `rootfs`,
/// `created` and `owner`, in runc's field order; `pid` is 0 once there is no process.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct RuncState {
    #[serde(rename = "ociVersion")]
    oci_version: String,
    id: String,
    pid: i32,
    status: String,
    bundle: PathBuf,
    rootfs: PathBuf,
    created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    annotations: Option<std::collections::HashMap<String, String>>,
    owner: String,
}

fn state_json(r: &oci_runtime::ContainerRecord) -> RuncState {
    let state = r.oci_state();
    RuncState {
        oci_version: state.version().clone(),
        id: state.id().clone(),
        pid: state.pid().unwrap_or(0),
        status: Runtime::status_name(r),
        bundle: state.bundle().clone(),
        rootfs: r.rootfs.clone(),
        created: r.created.clone(),
        annotations: state.annotations().clone(),
        owner: String::new(),
    }
}

/// runc's `list` owner: the user owning the container's state directory (its name in the
/// host's /etc/passwd, else the uid).
fn owner(rt: &Runtime, id: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let Some(uid) = rt
        .store()
        .dir(id)
        .ok()
        .and_then(|d| std::fs::metadata(d).ok())
        .map(|m| m.uid())
    else {
        return String::new();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

fn list(rt: &Runtime, format: &str, quiet: bool) -> AnyResult<()> {
    // As runc: a container whose state cannot be read is a warning, the others are listed.
    let mut records = Vec::new();
    for (id, entry) in rt.store().scan()? {
        match entry {
            oci_runtime::Entry::Healthy(r) => records.push(*r),
            oci_runtime::Entry::Creating => {}
            oci_runtime::Entry::Incomplete => eprintln!(
                "ocirun: warning: container {id}: its create did not finish; `delete --force {id}` removes it"
            ),
            oci_runtime::Entry::Corrupt(e) => eprintln!(
                "ocirun: warning: container {id}: unreadable state ({e}); `delete --force {id}` removes it"
            ),
            _ => {}
        }
    }
    if quiet {
        for r in &records {
            println!("{}", r.id);
        }
        return Ok(());
    }
    match format {
        "json" => {
            let all: Vec<RuncState> = records
                .iter()
                .map(|r| RuncState {
                    owner: owner(rt, &r.id),
                    ..state_json(r)
                })
                .collect();
            println!("{}", serde_json::to_string(&all)?);
        }
        "table" => {
            println!(
                "{:<12}{:<10}{:<10}{:<40}{:<32}OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for r in &records {
                let pid = r.oci_state().pid().unwrap_or(0);
                println!(
                    "{:<12}{:<10}{:<10}{:<40}{:<32}{}",
                    r.id,
                    pid,
                    Runtime::status_name(r),
                    r.bundle.display(),
                    r.created,
                    owner(rt, &r.id),
                );
            }
        }
        other => return Err(format!("invalid format {other:?}: use table or json").into()),
    }
    Ok(())
}

fn ps(rt: &Runtime, id: &str, format: &str) -> AnyResult<()> {
    let pids = rt.ps(id)?;
    match format {
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => {
            println!("{:<8} {:<8} CMD", "PID", "PPID");
            for pid in pids {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|b| {
                        b.split(|c| *c == 0)
                            .filter(|s| !s.is_empty())
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| {
                        let rest = &s[s.rfind(')')? + 1..];
                        rest.split_whitespace().nth(1).map(str::to_string)
                    })
                    .unwrap_or_default();
                println!("{pid:<8} {ppid:<8} {cmd}");
            }
        }
        other => return Err(format!("invalid format {other:?}: use table or json").into()),
    }
    Ok(())
}

/// `run`: create + start here; in the foreground, forward signals, wait, delete, and exit
/// with the container's exit code.
fn run_container(rt: &Runtime, a: &CreateArgs, detach: bool, keep: bool) -> AnyResult<ExitCode> {
    let mut running = rt.run(&a.id, &a.options())?;
    if detach {
        if running.console.is_some() {
            let _ = rt.delete(&a.id, true);
            return Err(oci_runtime::Error::ConsoleSocketRequired.into());
        }
        running.detach();
        return Ok(ExitCode::SUCCESS);
    }
    let pid = running.pid();
    let console = running.console.take();
    let _tty = console.as_ref().map(examples::terminal::proxy);
    let signals = examples::terminal::forward_signals(
        pid,
        console.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
    );
    let code = running.wait();
    drop(signals);
    if !keep {
        rt.delete(&a.id, true)?;
    }
    let code = code?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

fn exec(rt: &Runtime, a: &ExecArgs) -> AnyResult<ExitCode> {
    let record = rt.store().load(&a.id)?;
    let mut process: Process = match &a.process {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let de = &mut serde_json::Deserializer::from_slice(&bytes);
            serde_path_to_error::deserialize(de)
                .map_err(|e| format!("{}: {}: {}", path.display(), e.path(), e.inner()))?
        }
        None => {
            if a.command.is_empty() {
                return Err("exec needs a command (or --process)".into());
            }
            let mut p = record.config.process().clone().unwrap_or_default();
            p.set_args(Some(a.command.clone()));
            p.set_terminal(Some(a.tty));
            p.set_console_size(None);
            p
        }
    };
    if !a.env.is_empty() {
        let mut env = process.env().clone().unwrap_or_default();
        for e in &a.env {
            let key = e.split('=').next().unwrap_or("");
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        process.set_env(Some(env));
    }
    if let Some(cwd) = &a.cwd {
        process.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u.parse::<u32>()?, g.parse::<u32>()?),
            None => (u.parse::<u32>()?, 0),
        };
        let mut user = process.user().clone();
        user.set_uid(uid);
        user.set_gid(gid);
        process.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = process.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        process.set_user(user);
    }
    if !a.cap.is_empty() {
        let mut caps = process.capabilities().clone().unwrap_or_default();
        for c in &a.cap {
            let name = if c.starts_with("CAP_") {
                c.clone()
            } else {
                format!("CAP_{c}")
            };
            let cap: oci_spec::runtime::Capability =
                serde_json::from_value(serde_json::Value::String(name.clone()))
                    .map_err(|_| format!("unknown capability {c:?}"))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
        }
        process.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    if let Some(l) = &a.process_label {
        process.set_selinux_label(Some(l.clone()));
    }
    if let Some(p) = &a.apparmor {
        process.set_apparmor_profile(Some(p.clone()));
    }
    let mut opts = ExecOptions::new();
    opts.console_socket.clone_from(&a.console_socket);
    opts.pid_file.clone_from(&a.pid_file);
    opts.preserve_fds = a.preserve_fds;
    opts.cgroup.clone_from(&a.cgroup);
    let mut e = rt.exec(&a.id, &process, &opts)?;
    if a.detach {
        if e.console.is_some() {
            return Err(oci_runtime::Error::ConsoleSocketRequired.into());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let console = e.console.take();
    let _tty = console.as_ref().map(examples::terminal::proxy);
    let _signals = examples::terminal::forward_signals(
        e.pid(),
        console.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
    );
    let code = e.wait()?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

fn update(rt: &Runtime, a: &UpdateArgs) -> AnyResult<()> {
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        return Err("Intel RDT is not supported by this runtime".into());
    }
    let resources: LinuxResources = match a.resources.as_deref() {
        Some(src) => {
            let bytes = if src == "-" {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)?;
                b
            } else {
                std::fs::read(src).map_err(|e| format!("{src}: {e}"))?
            };
            let de = &mut serde_json::Deserializer::from_slice(&bytes);
            serde_path_to_error::deserialize(de)
                .map_err(|e| format!("{src}: {}: {}", e.path(), e.inner()))?
        }
        None => {
            let mut v = serde_json::json!({});
            let mut set = |section: &str, key: &str, value: serde_json::Value| {
                v[section][key] = value;
            };
            if let Some(x) = a.memory {
                set("memory", "limit", x.into());
            }
            if let Some(x) = a.memory_reservation {
                set("memory", "reservation", x.into());
            }
            if let Some(x) = a.memory_swap {
                set("memory", "swap", x.into());
            }
            if let Some(x) = a.cpu_share {
                set("cpu", "shares", x.into());
            }
            if let Some(x) = a.cpu_quota {
                set("cpu", "quota", x.into());
            }
            if let Some(x) = a.cpu_period {
                set("cpu", "period", x.into());
            }
            if let Some(x) = a.cpu_rt_runtime {
                set("cpu", "realtimeRuntime", x.into());
            }
            if let Some(x) = a.cpu_rt_period {
                set("cpu", "realtimePeriod", x.into());
            }
            if let Some(x) = &a.cpuset_cpus {
                set("cpu", "cpus", x.clone().into());
            }
            if let Some(x) = &a.cpuset_mems {
                set("cpu", "mems", x.clone().into());
            }
            if let Some(x) = a.pids_limit {
                set("pids", "limit", x.into());
            }
            if let Some(x) = a.blkio_weight {
                set("blockIO", "weight", x.into());
            }
            serde_json::from_value(v)?
        }
    };
    rt.update(&a.id, &resources)?;
    Ok(())
}

fn parse_duration(s: &str) -> AnyResult<std::time::Duration> {
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num.parse().map_err(|_| format!("invalid interval {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        _ => return Err(format!("invalid interval {s:?}").into()),
    };
    if secs <= 0.0 {
        return Err(format!("invalid interval {s:?}").into());
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// runc's event stream: `{"type": "stats", "id": …, "data": {…}}` and `{"type": "oom", …}`.
fn events(rt: &Runtime, id: &str, once: bool, interval: &str) -> AnyResult<()> {
    let interval = parse_duration(interval)?;
    // runc: events for a container that does not exist is an error, not an empty stream.
    rt.store().load(id)?;
    let stats = |rt: &Runtime| -> AnyResult<serde_json::Value> {
        Ok(serde_json::json!({"type": "stats", "id": id, "data": rt.stats(id)?}))
    };
    if once {
        println!("{}", stats(rt)?);
        return Ok(());
    }
    let mut ooms = rt.oom_kills(id).unwrap_or(0);
    let mut last_stats = std::time::Instant::now() - interval;
    loop {
        let record = match rt.store().load(id) {
            Ok(r) => r,
            Err(oci_runtime::Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if record.status() == oci_spec::runtime::ContainerState::Stopped {
            return Ok(());
        }
        let now_ooms = rt.oom_kills(id).unwrap_or(ooms);
        if now_ooms > ooms {
            println!("{}", serde_json::json!({"type": "oom", "id": id}));
            ooms = now_ooms;
        }
        if last_stats.elapsed() >= interval {
            println!("{}", stats(rt)?);
            last_stats = std::time::Instant::now();
        }
        std::thread::sleep(std::time::Duration::from_millis(100).min(interval));
    }
}

/// runtime-spec features.md: what this runtime supports on this host.
fn features() -> serde_json::Value {
    let caps: Vec<String> = (0..=40)
        .filter_map(|n| {
            let names = [
                "CHOWN",
                "DAC_OVERRIDE",
                "DAC_READ_SEARCH",
                "FOWNER",
                "FSETID",
                "KILL",
                "SETGID",
                "SETUID",
                "SETPCAP",
                "LINUX_IMMUTABLE",
                "NET_BIND_SERVICE",
                "NET_BROADCAST",
                "NET_ADMIN",
                "NET_RAW",
                "IPC_LOCK",
                "IPC_OWNER",
                "SYS_MODULE",
                "SYS_RAWIO",
                "SYS_CHROOT",
                "SYS_PTRACE",
                "SYS_PACCT",
                "SYS_ADMIN",
                "SYS_BOOT",
                "SYS_NICE",
                "SYS_RESOURCE",
                "SYS_TIME",
                "SYS_TTY_CONFIG",
                "MKNOD",
                "LEASE",
                "AUDIT_WRITE",
                "AUDIT_CONTROL",
                "SETFCAP",
                "MAC_OVERRIDE",
                "MAC_ADMIN",
                "SYSLOG",
                "WAKE_ALARM",
                "BLOCK_SUSPEND",
                "AUDIT_READ",
                "PERFMON",
                "BPF",
                "CHECKPOINT_RESTORE",
            ];
            names.get(n).map(|c| format!("CAP_{c}"))
        })
        .collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": oci_runtime::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        // From the implementation, so that it cannot drift: what oci-sandbox recognizes.
        "mountOptions": oci_sandbox::mount_options(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                            "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                // Recognized: the native architecture (and on x86_64, x86 and x32) is filtered,
                // the others are accepted and never reported by this kernel.
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_MIPS",
                          "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
                          "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_PPC",
                          "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390",
                          "SCMP_ARCH_S390X", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": oci_sandbox::seccomp::KNOWN_FLAGS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
                "supportedFlags": oci_sandbox::seccomp::supported_flags()
            },
            // features-linux.md: whether the runtime supports them, whatever the host runs
            // (a label asked for on a host without the LSM is refused at create).
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            "intelRdt": {"enabled": false}
        },
        "annotations": {
            "org.opencontainers.runtime-spec.features.implementation": "ocirun",
            "org.opencontainers.runtime-spec.features.version": VERSION
        }
    })
}

/// `spec`: writes a default config.json (Docker's safe defaults, `sh` in a terminal, as
/// runc's `spec` does).
fn spec(bundle: &Path, rootless: bool) -> AnyResult<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(format!("File {} exists. Remove it first", path.display()).into());
    }
    let mut spec = oci_runtime::default_spec()?;
    if let Some(p) = spec.process_mut() {
        p.set_terminal(Some(true));
    }
    if rootless {
        to_rootless(&mut spec)?;
    }
    let bytes = serde_json::to_vec_pretty(&spec)?;
    std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

/// runc's rootless template (`runc spec --rootless`, libcontainer/specconv's ToRootless),
/// applied to the default config: no network namespace and a new user namespace mapping the
/// caller's effective uid and gid to root, `/sys` bound read-only from the host (sysfs needs a
/// network namespace of the container's own), no `uid=` or `gid=` mount options (those ids
/// are not mapped), and no resources (an unprivileged user has no cgroup to set them in).
fn to_rootless(spec: &mut oci_spec::runtime::Spec) -> AnyResult<()> {
    use oci_spec::runtime::{
        LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, MountBuilder,
    };
    // SAFETY: geteuid/getegid cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if let Some(linux) = spec.linux_mut() {
        let mut ns = linux.namespaces().clone().unwrap_or_default();
        ns.retain(|n| {
            !matches!(
                n.typ(),
                LinuxNamespaceType::Network | LinuxNamespaceType::User
            )
        });
        ns.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::User)
                .build()?,
        );
        linux.set_namespaces(Some(ns));
        let map = |host: u32| {
            LinuxIdMappingBuilder::default()
                .container_id(0u32)
                .host_id(host)
                .size(1u32)
                .build()
        };
        linux.set_uid_mappings(Some(vec![map(uid)?]));
        linux.set_gid_mappings(Some(vec![map(gid)?]));
        linux.set_resources(None);
    }
    let mut mounts = Vec::new();
    for mut m in spec.mounts().clone().unwrap_or_default() {
        if Path::new(m.destination())
            .components()
            .eq(Path::new("/sys").components())
        {
            mounts.push(
                MountBuilder::default()
                    .destination("/sys")
                    .typ("none")
                    .source("/sys")
                    .options(["rbind", "nosuid", "noexec", "nodev", "ro"].map(String::from))
                    .build()?,
            );
            continue;
        }
        if let Some(opts) = m.options().clone() {
            m.set_options(Some(
                opts.into_iter()
                    .filter(|o| !o.starts_with("gid=") && !o.starts_with("uid="))
                    .collect(),
            ));
        }
        mounts.push(m);
    }
    spec.set_mounts(Some(mounts));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap().as_secs(), 5);
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert!(parse_duration("x").is_err());
    }
}
