//! `ocibox`: the image-level command line of the toolkit.
//!
//! Today it inspects, validates, tags and garbage-collects OCI image layouts, pulls images from
//! registries into them and pushes them back, and generates the demo image the README's main
//! job uses; `run` (pull, unpack and run in one step) comes with the runtime crates.
//!
//! Images are named as skopeo's `oci:` transport names them: `DIR`, `DIR:TAG` or
//! `DIR@sha256:…`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use oci_image::spec::image::Descriptor;
use oci_image::{Layout, PlatformSpec, Severity, ValidateOptions};

#[derive(Parser)]
#[command(
    name = "ocibox",
    version,
    about = "Inspect, validate and manage OCI image layouts"
)]
struct Cli {
    /// The store of images, layers and containers (default /var/lib/ocibox as root,
    /// $XDG_DATA_HOME/ocibox otherwise).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
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
    /// The container's name (its id).
    #[arg(long)]
    name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to remove it).
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Read environment variables from a file (one KEY=VALUE per line).
    #[arg(long = "env-file")]
    env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// User (name, uid, name:group or uid:gid).
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Override the image's entrypoint ("" clears it).
    #[arg(long)]
    entrypoint: Option<String>,
    /// The container's hostname.
    #[arg(long)]
    hostname: Option<String>,
    /// Memory limit (bytes, or with k, m, g suffix).
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// Number of CPUs (e.g. 1.5).
    #[arg(long)]
    cpus: Option<f64>,
    /// Maximum number of processes.
    #[arg(long = "pids-limit")]
    pids_limit: Option<i64>,
    /// Mount the root filesystem read-only.
    #[arg(long = "read-only")]
    read_only: bool,
    /// Bind mount `HOST:CONTAINER[:ro]`.
    #[arg(short = 'v', long = "volume")]
    volume: Vec<String>,
    /// Mount a tmpfs at `PATH[:OPTIONS]`.
    #[arg(long)]
    tmpfs: Vec<String>,
    /// none (a private network namespace, the default) or host.
    #[arg(long)]
    network: Option<String>,
    /// Add a capability.
    #[arg(long = "cap-add")]
    cap_add: Vec<String>,
    /// Drop a capability (ALL drops every one).
    #[arg(long = "cap-drop")]
    cap_drop: Vec<String>,
    /// seccomp=FILE or seccomp=unconfined.
    #[arg(long = "security-opt")]
    security_opt: Vec<String>,
    /// Platform to select from a multi-platform image.
    #[arg(long)]
    platform: Option<String>,
    /// missing, always or never.
    #[arg(long, default_value = "missing")]
    pull: String,
    /// The image: a registry reference, or DIR:TAG of a local image layout.
    image: String,
    /// The command (replaces the image's Cmd).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Resolve an image (tag or digest, then platform) and show its manifest, config and layers.
    Inspect {
        /// `DIR`, `DIR:TAG` or `DIR@DIGEST`.
        image: String,
        /// Platform to select from an index (`os/arch[/variant]`); the host's by default.
        #[arg(long)]
        platform: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check a whole layout against the image-spec: every descriptor, blob, manifest, index and
    /// config reachable from index.json. Exits 1 if any error is found.
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
    },
    /// Point a new tag at the image another reference names.
    Tag {
        /// `DIR:TAG` or `DIR@DIGEST` of an existing image.
        source: String,
        /// The new tag.
        tag: String,
    },
    /// Remove a tag (blobs stay until `gc`).
    Untag {
        /// `DIR:TAG`.
        image: String,
    },
    /// Remove blobs that nothing in index.json reaches.
    Gc {
        /// The layout directory.
        layout: PathBuf,
        /// Also remove partial downloads kept for resume that no pull is writing (by default
        /// they stay for an hour).
        #[arg(long)]
        partials: bool,
    },
    /// List the manifests whose `subject` is the named image (signatures, SBOMs, attestations).
    Referrers {
        /// `DIR:TAG` or `DIR@DIGEST`.
        image: String,
        /// Only referrers of this artifact type.
        #[arg(long)]
        artifact_type: Option<String>,
    },
    /// Run a container from an image.
    Run(Box<RunArgs>),
    /// List containers.
    Ps,
    /// Remove containers (running ones only with --force).
    Rm {
        /// Kill a running container first.
        #[arg(short = 'f', long)]
        force: bool,
        /// Container ids.
        ids: Vec<String>,
    },
    /// Stop containers: the image's stop signal (SIGTERM), then SIGKILL after --time seconds.
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long, default_value_t = 10)]
        time: u64,
        /// Container ids.
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
        /// Set an environment variable.
        #[arg(short = 'e', long = "env")]
        env: Vec<String>,
        /// Working directory.
        #[arg(short = 'w', long)]
        workdir: Option<String>,
        /// Container id.
        id: String,
        /// The command.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// List the images in the store.
    Images,
    /// Remove images from the store (their blobs and unpacked layers go once nothing
    /// references them; `DIR:TAG` of a local layout releases its unpacked layers only).
    Rmi {
        /// Image references, or DIR:TAG of local layouts.
        images: Vec<String>,
    },
    /// Check the store's unpacked layers against the digests of their trees recorded when
    /// they were unpacked; exit status 1 if one was changed.
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
        /// Platform to select from a multi-platform image.
        #[arg(long)]
        platform: Option<String>,
    },
    /// Write a runtime bundle (config.json + rootfs) for an image, for ocirun or runc.
    Bundle {
        /// The image.
        image: String,
        /// The bundle directory (must not exist or be empty).
        dir: PathBuf,
        /// Platform to select from a multi-platform image.
        #[arg(long)]
        platform: Option<String>,
        /// The command (replaces the image's Cmd).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Print the output of a detached container.
    Logs {
        /// Container id.
        id: String,
    },
    /// Write the demo image into a layout, tagged `demo`: the host's static busybox, or
    /// without one the host's /bin/sh and the libraries it loads.
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
        /// `DIR` or `DIR:TAG`; the tag defaults to the full reference.
        layout: String,
        /// Platform to select from an index (`os/arch[/variant]`); the host's by default.
        #[arg(long)]
        platform: Option<String>,
        /// Pull every platform of an index.
        #[arg(long)]
        all: bool,
        /// A registry (`HOST[:PORT]`) that may be reached over plain HTTP; repeatable.
        #[arg(long)]
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
        /// Mount blobs the registry has in this repository instead of uploading them.
        #[arg(long)]
        mount_from: Option<String>,
        /// Upload in chunks of this many bytes.
        #[arg(long)]
        chunk_size: Option<u64>,
        /// A registry (`HOST[:PORT]`) that may be reached over plain HTTP; repeatable.
        #[arg(long)]
        insecure: Vec<String>,
        #[command(flatten)]
        net: NetArgs,
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
    /// Seconds the whole pull or push may take, retries included (no limit by default).
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
    let cli = Cli::parse();
    // CVE-2019-5736: `run` and `exec` fork processes that enter a container; they run from a
    // binary that cannot be written (re-executed once, before any thread exists).
    if let Command::Run(_) | Command::Exec { .. } = &cli.command {
        if let Err(e) = oci_sandbox::protect_exe() {
            eprintln!("ocibox: {e}");
            return ExitCode::from(2);
        }
    }
    match run(cli.root, cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ocibox: {e}");
            ExitCode::from(2)
        }
    }
}

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn run(root: Option<PathBuf>, command: Command) -> AnyResult<ExitCode> {
    let store = || {
        examples::container::Store::open(
            root.clone()
                .unwrap_or_else(examples::container::Store::default_root),
        )
    };
    match command {
        Command::Run(a) => {
            let code = store()?.run(&a.image, &run_options(&a)?)?;
            return Ok(ExitCode::from(code.clamp(0, 255) as u8));
        }
        Command::Ps => {
            println!("{:<34}{:<10}COMMAND", "CONTAINER ID", "STATUS");
            for (id, status, cmd) in store()?.list()? {
                println!("{id:<34}{status:<10}{cmd}");
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
        Command::Images => {
            println!("{:<60}{:<20}SIZE", "REFERENCE", "DIGEST");
            for (name, digest, size) in store()?.images_list()? {
                println!("{name:<60}{:<20}{size}", &digest[..digest.len().min(19)]);
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
            json,
        } => inspect(&image, platform.as_deref(), json)?,
        Command::Validate {
            layout,
            no_verify_content,
        } => return validate(&layout, !no_verify_content),
        Command::Tags { layout } => {
            for t in Layout::open(layout)?.tags()? {
                println!("{t}");
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
            let mut opts = oci_image::registry::PullOptions::default()
                .all_platforms(all)
                .on_progress(|p| {
                    if let oci_image::registry::Progress::BlobDone { digest, size } = p {
                        eprintln!("{digest}: {size} bytes");
                    }
                });
            if let Some(p) = platform {
                opts = opts.platform(p.parse()?);
            }
            if !tag.is_empty() {
                opts = opts.tag(tag);
            }
            let pulled = client.pull(&r, &layout, &opts)?;
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
        network: a.network.clone(),
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
        let out = serde_json::json!({
            "digest": img.digest().to_string(),
            "platform": img.platform().to_string(),
            "manifest": img.manifest,
            "config": img.config,
            "layers": img.layers.iter().map(|l| serde_json::json!({
                "mediaType": l.descriptor.media_type().to_string(),
                "digest": l.descriptor.digest().to_string(),
                "size": l.descriptor.size(),
                "diffID": l.diff_id.to_string(),
            })).collect::<Vec<_>>(),
        });
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
