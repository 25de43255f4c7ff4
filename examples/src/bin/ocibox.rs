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
    #[command(subcommand)]
    command: Command,
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
    },
    /// List the manifests whose `subject` is the named image (signatures, SBOMs, attestations).
    Referrers {
        /// `DIR:TAG` or `DIR@DIGEST`.
        image: String,
        /// Only referrers of this artifact type.
        #[arg(long)]
        artifact_type: Option<String>,
    },
    /// Write the demo image (busybox-static when the host has it) into a layout, tagged `demo`.
    Demo {
        /// The layout directory to create.
        layout: PathBuf,
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
    },
}

fn registry_client(insecure: Vec<String>) -> oci_image::registry::Client {
    insecure
        .into_iter()
        .fold(oci_image::registry::Client::builder(), |b, r| {
            b.insecure_registry(r)
        })
        .user_agent(concat!("ocibox/", env!("CARGO_PKG_VERSION")))
        .build()
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
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ocibox: {e}");
            ExitCode::from(2)
        }
    }
}

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn run(command: Command) -> AnyResult<ExitCode> {
    match command {
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
        Command::Gc { layout } => {
            let r = Layout::open(layout)?.gc()?;
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
        Command::Demo { layout } => {
            let desc = examples::demo::write_demo_image(&layout)?;
            println!("wrote {}:demo ({})", layout.display(), desc.digest());
        }
        Command::Pull {
            reference,
            layout,
            platform,
            all,
            insecure,
        } => {
            let client = registry_client(insecure);
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
        } => {
            let client = registry_client(insecure);
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
