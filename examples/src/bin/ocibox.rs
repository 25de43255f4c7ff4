//! `ocibox`: pull, unpack and run OCI images, and manage OCI image layouts.
//!
//! Images are named as skopeo's `oci:` transport names them: `DIR`, `DIR:TAG` or
//! `DIR@sha256:…`, or by a registry reference (`[REGISTRY/]NAME[:TAG][@DIGEST]`).
//!
//! Exit statuses are podman's: 125 when ocibox itself fails (bad usage included), 126 when the
//! container's command cannot be invoked, 127 when it is not found, the container's own status
//! otherwise (128+n when a signal ended it).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use oci_image::spec::image::Descriptor;
use oci_image::{Layout, PlatformSpec, Severity, ValidateOptions};

#[derive(Parser)]
#[command(
    name = "ocibox",
    version,
    about = "ocibox: pull, unpack and run OCI container images, and manage OCI image layouts",
    long_about = None,
    after_help = "Exit status: the container's (128+n when signal n ended it); 125 when ocibox \
                  fails, 126 when the command cannot be invoked, 127 when it is not found.\n\
                  See 'ocibox COMMAND --help' for a command's options."
)]
struct Cli {
    /// The store of images, layers and containers ($XDG_DATA_HOME/ocibox when not root).
    #[arg(long, global = true, value_name = "DIR", default_value_os_t = examples::container::Store::default_root())]
    root: PathBuf,
    /// Draw no progress bars (they are drawn only when stderr is a terminal).
    #[arg(short = 'q', long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

/// The subcommands of the top-level help, grouped. Every subcommand is in exactly one group
/// (a unit test checks it); their descriptions come from the clap definitions.
const GROUPS: &[(&str, &[&str])] = &[
    (
        "Containers",
        &["run", "ps", "exec", "logs", "stop", "kill", "rm"],
    ),
    (
        "Images (the store)",
        &["pull", "push", "images", "rmi", "check", "unpack", "bundle"],
    ),
    (
        "Layouts (DIR, DIR:TAG, DIR@DIGEST)",
        &[
            "demo",
            "inspect",
            "validate",
            "tags",
            "tag",
            "untag",
            "gc",
            "referrers",
        ],
    ),
    ("Setup", &["completion", "help"]),
];

/// ocibox's clap command, with the grouped subcommand list in its help.
fn cli() -> clap::Command {
    let cmd = Cli::command();
    let width = GROUPS
        .iter()
        .flat_map(|g| g.1.iter())
        .map(|n| n.len())
        .max()
        .unwrap_or(0);
    let mut groups = String::new();
    for (title, names) in GROUPS {
        groups.push_str(&format!("{title}:\n"));
        for name in *names {
            let about = cmd
                .find_subcommand(name)
                .and_then(|c| c.get_about())
                .map(|a| a.to_string())
                .unwrap_or_else(|| {
                    "Print this message or the help of the given subcommand(s)".into()
                });
            groups.push_str(&format!("  {name:<width$}  {about}\n"));
        }
        groups.push('\n');
    }
    cmd.help_template(format!(
        "{{about}}\n\n{{usage-heading}} {{usage}}\n\n{groups}Options:\n{{options}}{{after-help}}"
    ))
}

/// `--format`: podman's flag, for the commands that list or show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Columns or lines for people.
    #[default]
    Text,
    /// JSON, for programs.
    Json,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Keep stdin open (accepted; stdin is always passed through in the foreground).
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a terminal.
    #[arg(short = 't', long)]
    tty: bool,
    /// Run in the background and print the container id.
    #[arg(short = 'd', long)]
    detach: bool,
    /// The container's name (its id) [default: 32 random hex digits].
    #[arg(long)]
    name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to remove it) [default: the image's Env].
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Read environment variables from a file (one KEY=VALUE per line) [default: none].
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// Working directory inside the container [default: the image's WorkingDir, else /].
    #[arg(short = 'w', long, value_name = "DIR")]
    workdir: Option<String>,
    /// User (name, uid, name:group or uid:gid) [default: the image's User, else root].
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Override the image's entrypoint ("" clears it) [default: the image's Entrypoint].
    #[arg(long, value_name = "CMD")]
    entrypoint: Option<String>,
    /// The container's hostname [default: the first 12 characters of its id].
    #[arg(long)]
    hostname: Option<String>,
    /// Memory limit (bytes, or with a k, m or g suffix) [default: no limit].
    #[arg(short = 'm', long, value_name = "BYTES")]
    memory: Option<String>,
    /// Number of CPUs (e.g. 1.5) [default: no limit].
    #[arg(long)]
    cpus: Option<f64>,
    /// Maximum number of processes [default: no limit].
    #[arg(long = "pids-limit", value_name = "N")]
    pids_limit: Option<i64>,
    /// Mount the root filesystem read-only.
    #[arg(long = "read-only")]
    read_only: bool,
    /// Bind mount `HOST:CONTAINER[:ro]` [default: none].
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    volume: Vec<String>,
    /// Mount a tmpfs at `PATH[:OPTIONS]` [default: none].
    #[arg(long, value_name = "PATH[:OPTIONS]")]
    tmpfs: Vec<String>,
    /// none (a private network namespace) or host.
    #[arg(long, default_value = "none")]
    network: String,
    /// Add a capability [default: Docker's default set].
    #[arg(long = "cap-add", value_name = "CAP")]
    cap_add: Vec<String>,
    /// Drop a capability (ALL drops every one) [default: none dropped].
    #[arg(long = "cap-drop", value_name = "CAP")]
    cap_drop: Vec<String>,
    /// seccomp=FILE or seccomp=unconfined [default: Docker's default seccomp profile].
    #[arg(long = "security-opt", value_name = "OPT")]
    security_opt: Vec<String>,
    /// Platform to select from a multi-platform image (`os/arch[/variant]`) [default: the
    /// host's].
    #[arg(long)]
    platform: Option<String>,
    /// When to pull the image: missing, always or never.
    #[arg(long, default_value = "missing")]
    pull: String,
    /// The image: a registry reference, or DIR:TAG of a local image layout.
    image: String,
    /// The command (replaces the image's Cmd) [default: the image's Entrypoint and Cmd].
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Show an image of a layout: its manifest, config and layers.
    Inspect {
        /// `DIR`, `DIR:TAG` or `DIR@DIGEST`.
        image: String,
        /// Platform to select from an index (`os/arch[/variant]`) [default: the host's].
        #[arg(long)]
        platform: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// The same as --format json.
        #[arg(long, hide = true)]
        json: bool,
    },
    /// Check a whole layout against the image-spec (exit status 1 if it has errors).
    #[command(
        long_about = "Check a whole layout against the image-spec: every descriptor, blob, \
                      manifest, index and config reachable from index.json. Exits 1 if any \
                      error is found."
    )]
    Validate {
        /// The layout directory.
        layout: PathBuf,
        /// Check sizes only, without hashing every blob.
        #[arg(long)]
        no_verify_content: bool,
    },
    /// List the tags of a layout.
    Tags {
        /// The layout directory.
        layout: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Point a new tag at the image another reference names.
    Tag {
        /// `DIR:TAG` or `DIR@DIGEST` of an existing image.
        source: String,
        /// The new tag.
        tag: String,
    },
    /// Remove a tag from a layout (blobs stay until `gc`).
    Untag {
        /// `DIR:TAG`.
        image: String,
    },
    /// Remove the blobs of a layout that nothing in index.json reaches.
    Gc {
        /// The layout directory.
        layout: PathBuf,
        /// Also remove partial downloads kept for resume that no pull is writing (by default
        /// they stay for an hour).
        #[arg(long)]
        partials: bool,
    },
    /// List the manifests that refer to an image (signatures, SBOMs, attestations).
    Referrers {
        /// `DIR:TAG` or `DIR@DIGEST`.
        image: String,
        /// Only referrers of this artifact type [default: all].
        #[arg(long, value_name = "TYPE")]
        artifact_type: Option<String>,
    },
    /// Run a container from an image (pulled into the store if missing).
    Run(Box<RunArgs>),
    /// List containers.
    Ps {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Remove containers (running ones only with --force).
    Rm {
        /// Kill a running container first.
        #[arg(short = 'f', long)]
        force: bool,
        /// Container ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Stop containers: the image's stop signal (SIGTERM), then SIGKILL.
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long, default_value_t = 10)]
        time: u64,
        /// Container ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Send a signal to a container's init.
    Kill {
        /// Signal name or number.
        #[arg(short = 's', long, default_value = "KILL")]
        signal: String,
        /// Container id.
        id: String,
    },
    /// Run a command in a running container.
    Exec {
        /// Allocate a terminal.
        #[arg(short = 't', long)]
        tty: bool,
        /// Keep stdin open (accepted).
        #[arg(short = 'i', long)]
        interactive: bool,
        /// Set an environment variable [default: the container's environment].
        #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Working directory [default: the container's].
        #[arg(short = 'w', long, value_name = "DIR")]
        workdir: Option<String>,
        /// Container id.
        id: String,
        /// The command.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// List the images in the store.
    Images {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Remove images from the store (their blobs and unpacked layers go once nothing
    /// references them; `DIR:TAG` of a local layout releases its unpacked layers only).
    Rmi {
        /// Image references, or DIR:TAG of local layouts.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Check the store's unpacked layers against the digests of their trees (exit status 1 if
    /// one was changed).
    #[command(
        long_about = "Check the store's unpacked layers against the digests of their trees \
                      recorded when they were unpacked; exit status 1 if one was changed."
    )]
    Check {
        /// Unpack changed layers again from their blobs (not those a running container uses).
        #[arg(long)]
        repair: bool,
    },
    /// Unpack an image into a directory (a flat rootfs, as `umoci unpack` makes).
    Unpack {
        /// The image: a registry reference, or DIR:TAG of a local image layout.
        image: String,
        /// The target directory (must not exist or be empty).
        dir: PathBuf,
        /// Platform to select from a multi-platform image [default: the host's].
        #[arg(long)]
        platform: Option<String>,
    },
    /// Write a runtime bundle (config.json + rootfs) for an image, for ocirun or runc.
    Bundle {
        /// The image.
        image: String,
        /// The bundle directory (must not exist or be empty).
        dir: PathBuf,
        /// Platform to select from a multi-platform image [default: the host's].
        #[arg(long)]
        platform: Option<String>,
        /// The command (replaces the image's Cmd) [default: the image's].
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Print the output of a detached container.
    Logs {
        /// Container id.
        id: String,
    },
    /// Write the demo image into a layout, tagged `demo`.
    #[command(
        long_about = "Write the demo image into a layout, tagged `demo`: the host's static \
                      busybox, or without one the host's /bin/sh and the libraries it loads. \
                      Fails, writing nothing, when neither can be had."
    )]
    Demo {
        /// The layout directory to create.
        layout: PathBuf,
        /// The static busybox to put in the image.
        #[arg(long, value_name = "PATH", default_value = examples::demo::BUSYBOX)]
        busybox: PathBuf,
    },
    /// Pull an image from a registry into a layout (created if needed).
    Pull {
        /// `[REGISTRY/]NAME[:TAG][@DIGEST]`; Docker Hub when no registry is named.
        reference: String,
        /// `DIR` or `DIR:TAG` [default tag: the full reference].
        layout: String,
        /// Platform to select from an index (`os/arch[/variant]`) [default: the host's].
        #[arg(long)]
        platform: Option<String>,
        /// Pull every platform of an index.
        #[arg(long)]
        all: bool,
        /// A registry (`HOST[:PORT]`) that may be reached over plain HTTP; repeatable [default:
        /// none].
        #[arg(long, value_name = "HOST[:PORT]")]
        insecure: Vec<String>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Push an image or index from a layout to a registry.
    Push {
        /// `DIR:TAG` or `DIR@DIGEST`.
        image: String,
        /// `[REGISTRY/]NAME[:TAG]`.
        reference: String,
        /// Mount blobs the registry has in this repository instead of uploading them [default:
        /// none].
        #[arg(long, value_name = "REPOSITORY")]
        mount_from: Option<String>,
        /// Upload in chunks of this many bytes [default: one request per blob].
        #[arg(long, value_name = "BYTES")]
        chunk_size: Option<u64>,
        /// A registry (`HOST[:PORT]`) that may be reached over plain HTTP; repeatable [default:
        /// none].
        #[arg(long, value_name = "HOST[:PORT]")]
        insecure: Vec<String>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Print a shell completion script (install: see `scripts/install`).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write ocibox's man pages into a directory.
    #[command(hide = true)]
    Man {
        /// The directory (e.g. /usr/local/share/man/man1).
        dir: PathBuf,
    },
}

/// Deadlines of registry requests, in seconds (fractions allowed).
#[derive(clap::Args)]
struct NetArgs {
    /// Seconds connecting to the registry (DNS, TCP, TLS) may take.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse_secs)]
    connect_timeout: f64,
    /// Seconds a transfer may wait for more bytes; a blob transfer slower than 1 KiB/s over
    /// this long fails too (and is resumed).
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse_secs)]
    read_timeout: f64,
    /// Seconds a request other than a blob transfer (a manifest, a token) may take in all.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = parse_secs)]
    request_timeout: f64,
    /// Seconds the whole pull or push may take, retries included [default: no limit].
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    timeout: Option<f64>,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() && v < 1e9 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

fn registry_client(insecure: Vec<String>, net: &NetArgs) -> oci_image::registry::Client {
    use std::time::Duration;
    let mut b = insecure
        .into_iter()
        .fold(oci_image::registry::Client::builder(), |b, r| {
            b.insecure_registry(r)
        })
        .user_agent(concat!("ocibox/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs_f64(net.connect_timeout))
        .read_timeout(Duration::from_secs_f64(net.read_timeout))
        .request_timeout(Duration::from_secs_f64(net.request_timeout));
    if let Some(t) = net.timeout {
        b = b.deadline(Duration::from_secs_f64(t));
    }
    b.build()
}

/// Splits `DIR`, `DIR:TAG` or `DIR@DIGEST` (skopeo's `oci:` syntax).
fn split_ref(s: &str) -> (PathBuf, String) {
    if let Some((dir, digest)) = s.split_once('@') {
        return (PathBuf::from(dir), digest.to_string());
    }
    match s.split_once(':') {
        Some((dir, tag)) => (PathBuf::from(dir), tag.to_string()),
        None => (PathBuf::from(s), String::new()),
    }
}

fn main() -> ExitCode {
    // A CLI whose output goes into `head` must end quietly when the pipe closes, not panic in
    // println!: restore the default SIGPIPE action that Rust's runtime ignores.
    // SAFETY: signal(2) with SIG_DFL, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // podman's exit statuses: 125 for a failure of ocibox itself, bad usage included (clap's
    // own is 2); 126 and 127 when the container's command cannot be invoked or is not found;
    // otherwise the container's status (128+n for a signal).
    let cli = match cli()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 125 } else { 0 });
        }
    };
    // CVE-2019-5736: `run` and `exec` fork processes that enter a container; they run from a
    // binary that cannot be written (re-executed once, before any thread exists).
    if let Command::Run(_) | Command::Exec { .. } = &cli.command {
        if let Err(e) = oci_sandbox::protect_exe() {
            eprintln!("{}", examples::report::lines("ocibox", &e));
            return ExitCode::from(125);
        }
    }
    match run(cli.root, cli.quiet, cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", examples::report::lines("ocibox", e.as_ref()));
            ExitCode::from(examples::report::exit_status(e.as_ref()))
        }
    }
}

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn run(root: PathBuf, quiet: bool, command: Command) -> AnyResult<ExitCode> {
    let store = || examples::container::Store::open(root.clone()).map(|s| s.quiet(quiet));
    match command {
        Command::Run(a) => {
            let code = store()?.run(&a.image, &run_options(&a)?)?;
            return Ok(ExitCode::from(code.clamp(0, 255) as u8));
        }
        Command::Ps { format } => {
            let list = store()?.list()?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("{:<34}{:<10}COMMAND", "CONTAINER ID", "STATUS");
            for c in list {
                println!("{:<34}{:<10}{}", c.id, c.status, c.command.join(" "));
            }
        }
        Command::Rm { force, ids } => {
            let s = store()?;
            for id in ids {
                s.remove(&id, force)?;
                println!("{id}");
            }
        }
        Command::Stop { time, ids } => {
            let s = store()?;
            for id in ids {
                s.stop(&id, std::time::Duration::from_secs(time))?;
                println!("{id}");
            }
        }
        Command::Kill { signal, id } => {
            let sig = examples::signals::parse(&signal)?;
            store()?
                .runtime()?
                .kill(&id, sig, oci_runtime::KillScope::Init)?;
        }
        Command::Logs { id } => {
            use std::io::Write;
            std::io::stdout().write_all(&store()?.logs(&id)?)?;
        }
        Command::Exec {
            tty,
            interactive: _,
            env,
            workdir,
            id,
            command,
        } => {
            let code = store()?.exec(&id, &command, &env, workdir.as_deref(), tty)?;
            return Ok(ExitCode::from(code.clamp(0, 255) as u8));
        }
        Command::Images { format } => {
            let list = store()?.images_list()?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("{:<60}{:<20}SIZE", "REFERENCE", "DIGEST");
            for i in list {
                let d = &i.digest;
                println!("{:<60}{:<20}{}", i.reference, &d[..d.len().min(19)], i.size);
            }
        }
        Command::Rmi { images } => {
            let s = store()?;
            for i in images {
                let freed = s.remove_image(&i)?;
                println!("untagged {i}; {freed} bytes freed");
            }
        }
        Command::Check { repair } => {
            let (lines, bad) = store()?.check(repair)?;
            for l in lines {
                println!("{l}");
            }
            if bad > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Unpack {
            image,
            dir,
            platform,
        } => {
            store()?.unpack(&image, platform.as_deref(), &dir)?;
            println!("{}", dir.display());
        }
        Command::Bundle {
            image,
            dir,
            platform,
            command,
        } => {
            store()?.bundle(&image, platform.as_deref(), &dir, command)?;
            println!("{}", dir.display());
        }
        Command::Inspect {
            image,
            platform,
            format,
            json,
        } => inspect(&image, platform.as_deref(), json || format == Format::Json)?,
        Command::Validate {
            layout,
            no_verify_content,
        } => return validate(&layout, !no_verify_content),
        Command::Tags { layout, format } => {
            let tags = Layout::open(&layout)?.tags()?;
            if format == Format::Json {
                let list = TagList { layout, tags };
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(ExitCode::SUCCESS);
            }
            for t in tags {
                println!("{t}");
            }
        }
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut cli(), "ocibox", &mut std::io::stdout());
        }
        Command::Man { dir } => {
            for page in examples::manpages::write(cli(), &dir)? {
                println!("{}", page.display());
            }
        }
        Command::Tag { source, tag } => {
            let (dir, reference) = split_ref(&source);
            let layout = Layout::open(dir)?;
            let found = layout.find(&reference)?;
            let [desc] = found.as_slice() else {
                return Err(
                    format!("{source} names {} descriptors, expected one", found.len()).into(),
                );
            };
            let mut desc = desc.clone();
            desc.set_annotations(None);
            layout.tag(&tag, &desc)?;
        }
        Command::Untag { image } => {
            let (dir, tag) = split_ref(&image);
            Layout::open(dir)?.untag(&tag)?;
        }
        Command::Gc { layout, partials } => {
            let r = Layout::open(layout)?
                .gc_with(&oci_image::GcOptions::default().partials(partials))?;
            for d in &r.removed {
                println!("removed {d}");
            }
            println!(
                "{} blobs removed, {} bytes freed, {} stale temporary files removed",
                r.removed.len(),
                r.bytes_freed,
                r.temp_files_removed
            );
        }
        Command::Referrers {
            image,
            artifact_type,
        } => {
            let (dir, reference) = split_ref(&image);
            let layout = Layout::open(dir)?;
            let found = layout.find(&reference)?;
            let [desc] = found.as_slice() else {
                return Err(
                    format!("{image} names {} descriptors, expected one", found.len()).into(),
                );
            };
            let index = layout.referrers_index(desc.digest(), artifact_type.as_deref())?;
            println!("{}", serde_json::to_string_pretty(&index)?);
        }
        Command::Demo { layout, busybox } => {
            use examples::demo::{DemoSource, Payload};
            let source = DemoSource {
                busybox,
                ..DemoSource::default()
            };
            let (desc, payload) = examples::demo::write_demo_image(&layout, &source)?;
            println!("wrote {}:demo ({})", layout.display(), desc.digest());
            if let Payload::HostShell { shell, files } = payload {
                eprintln!(
                    "ocibox: no static busybox at {}: the image holds the host's {} and the {} \
                     files it loads ({}); install busybox-static for a busybox userland",
                    source.busybox.display(),
                    shell.display(),
                    files.len() - 1,
                    files[1..].join(", ")
                );
            }
        }
        Command::Pull {
            reference,
            layout,
            platform,
            all,
            insecure,
            net,
        } => {
            let client = registry_client(insecure, &net);
            let r = client.parse_reference(&reference)?;
            let (dir, tag) = split_ref(&layout);
            let layout = Layout::create(dir)?;
            let progress = std::sync::Arc::new(examples::progress::PullProgress::new(quiet));
            let reporter = progress.clone();
            let mut opts = oci_image::registry::PullOptions::default()
                .all_platforms(all)
                .on_progress(move |p| reporter.event(p));
            if let Some(p) = platform {
                opts = opts.platform(p.parse()?);
            }
            if !tag.is_empty() {
                opts = opts.tag(tag);
            }
            let pulled = client.pull(&r, &layout, &opts);
            progress.finish();
            let pulled = pulled?;
            println!(
                "pulled {} ({}): {} blobs downloaded, {} already present{}",
                pulled.reference,
                pulled.stored.digest(),
                pulled.blobs_downloaded,
                pulled.blobs_present,
                pulled
                    .tag
                    .map(|t| format!(", tagged {t}"))
                    .unwrap_or_default()
            );
        }
        Command::Push {
            image,
            reference,
            mount_from,
            chunk_size,
            insecure,
            net,
        } => {
            let client = registry_client(insecure, &net);
            let r = client.parse_reference(&reference)?;
            let (dir, local) = split_ref(&image);
            let layout = Layout::open(dir)?;
            let mut opts = oci_image::registry::PushOptions::default();
            if let Some(m) = mount_from {
                opts = opts.mount_from(m);
            }
            if let Some(c) = chunk_size {
                opts = opts.chunk_size(c);
            }
            let pushed = client.push(&layout, &local, &r, &opts)?;
            println!(
                "pushed {} ({}): {} blobs uploaded, {} mounted, {} already there",
                pushed.reference,
                pushed.descriptor.digest(),
                pushed.blobs_uploaded,
                pushed.blobs_mounted,
                pushed.blobs_present
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_bytes(s: &str) -> AnyResult<i64> {
    let lower = s.to_ascii_lowercase();
    let (num, mult) = match lower.trim_end_matches('b').chars().last() {
        Some('k') => (&lower[..lower.trim_end_matches('b').len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.trim_end_matches('b').len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (lower.trim_end_matches('b'), 1),
    };
    let n: i64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    Ok(n * mult)
}

fn run_options(a: &RunArgs) -> AnyResult<examples::container::RunOptions> {
    use examples::container::{PullPolicy, RunOptions};
    let mut env = Vec::new();
    for f in &a.env_file {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        env.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    env.extend(a.env.iter().cloned());
    let mut seccomp = None;
    for o in &a.security_opt {
        match o.split_once('=') {
            Some(("seccomp", v)) => seccomp = Some(v.to_string()),
            Some(("no-new-privileges", _)) => {}
            _ => {
                return Err(format!(
                    "--security-opt {o:?}: only seccomp=FILE|unconfined is supported"
                )
                .into())
            }
        }
    }
    let mut overrides = oci_runtime::Overrides::default();
    overrides.entrypoint = a.entrypoint.as_ref().map(|e| {
        if e.is_empty() {
            vec![]
        } else {
            vec![e.clone()]
        }
    });
    overrides.cmd = (!a.command.is_empty()).then(|| a.command.clone());
    overrides.env = env;
    overrides.working_dir.clone_from(&a.workdir);
    overrides.user.clone_from(&a.user);
    overrides.hostname.clone_from(&a.hostname);
    Ok(RunOptions {
        name: a.name.clone(),
        remove: a.rm,
        detach: a.detach,
        tty: a.tty,
        overrides,
        memory: a.memory.as_deref().map(parse_bytes).transpose()?,
        cpus: a.cpus,
        pids_limit: a.pids_limit,
        read_only: a.read_only,
        volumes: a.volume.clone(),
        tmpfs: a.tmpfs.clone(),
        network: Some(a.network.clone()),
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        seccomp,
        platform: a.platform.clone(),
        pull: match a.pull.as_str() {
            "missing" => PullPolicy::Missing,
            "always" => PullPolicy::Always,
            "never" => PullPolicy::Never,
            other => return Err(format!("--pull {other}: use missing, always or never").into()),
        },
    })
}

fn inspect(image: &str, platform: Option<&str>, json: bool) -> AnyResult<()> {
    let (dir, reference) = split_ref(image);
    let layout = Layout::open(dir)?;
    let platform: Option<PlatformSpec> = platform.map(str::parse).transpose()?;
    let img = layout.resolve(&reference, platform.as_ref())?;
    if json {
        let out = InspectOutput {
            digest: img.digest().to_string(),
            platform: img.platform().to_string(),
            manifest: img.manifest.clone(),
            config: img.config.clone(),
            layers: img
                .layers
                .iter()
                .map(|l| LayerInfo {
                    media_type: l.descriptor.media_type().to_string(),
                    digest: l.descriptor.digest().to_string(),
                    size: l.descriptor.size(),
                    diff_id: l.diff_id.to_string(),
                })
                .collect(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("Digest:    {}", img.digest());
    println!("MediaType: {}", img.manifest_descriptor.media_type());
    println!("Platform:  {}", img.platform());
    if let Some(c) = img.config.created() {
        println!("Created:   {c}");
    }
    if let Some(c) = img.config.config() {
        let show = |name: &str, v: &Option<Vec<String>>| {
            if let Some(v) = v {
                println!("{name:<11}{}", serde_json::to_string(v).unwrap_or_default());
            }
        };
        show("Entrypoint:", c.entrypoint());
        show("Cmd:", c.cmd());
        show("Env:", c.env());
        if let Some(u) = c.user() {
            println!("User:      {u}");
        }
        if let Some(w) = c.working_dir() {
            println!("WorkingDir: {w}");
        }
    }
    let total: u64 = img.layers.iter().map(|l| l.descriptor.size()).sum();
    println!("Layers:    {} ({} bytes)", img.layers.len(), total);
    for l in &img.layers {
        print_layer(&l.descriptor, l.diff_id.as_ref());
    }
    Ok(())
}

/// `ocibox tags --format json`, as `skopeo list-tags` shapes it.
#[derive(serde::Serialize)]
struct TagList {
    #[serde(rename = "Layout")]
    layout: PathBuf,
    #[serde(rename = "Tags")]
    tags: Vec<String>,
}

/// `ocibox inspect --format json`: the resolved image.
#[derive(serde::Serialize)]
struct InspectOutput {
    /// The manifest's digest.
    digest: String,
    /// `os/arch[/variant]`.
    platform: String,
    manifest: oci_image::spec::image::ImageManifest,
    config: oci_image::spec::image::ImageConfiguration,
    layers: Vec<LayerInfo>,
}

/// A layer of [`InspectOutput`].
#[derive(serde::Serialize)]
struct LayerInfo {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(rename = "diffID")]
    diff_id: String,
}

fn print_layer(d: &Descriptor, diff_id: &str) {
    println!(
        "  {}  {:>12}  {}\n      diff_id {}",
        d.digest(),
        d.size(),
        d.media_type(),
        diff_id
    );
}

fn validate(dir: &Path, verify_content: bool) -> AnyResult<ExitCode> {
    let layout = Layout::open(dir)?;
    let report = layout.validate_with(&ValidateOptions { verify_content });
    for p in &report.problems {
        println!("{p}");
    }
    let errors = report.errors().count();
    let warnings = report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Warning)
        .count();
    println!(
        "{}: {} manifests, {} indexes, {} blobs verified; {errors} errors, {warnings} warnings",
        dir.display(),
        report.manifests,
        report.indexes,
        report.blobs_verified
    );
    Ok(if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_is_in_one_help_group() {
        let cmd = Cli::command();
        let mut names: Vec<&str> = cmd
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
            .map(|c| c.get_name())
            .collect();
        names.push("help");
        names.sort();
        let mut grouped: Vec<&str> = GROUPS.iter().flat_map(|g| g.1.iter().copied()).collect();
        grouped.sort();
        assert_eq!(names, grouped);
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        cli().debug_assert();
    }
}
