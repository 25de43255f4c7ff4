//! `ocibox run` and the commands around it: from an image to a running container, composing
//! `oci-image` (resolve, pull), `oci-unpack` (shared layers + an overlay per container),
//! `oci-runtime` (image config to bundle, lifecycle) and, through it, `oci-sandbox`.
//!
//! The store (`--root`, default `/var/lib/ocibox` as root, `$XDG_DATA_HOME/ocibox` otherwise):
//! - `images/`: one OCI image layout, the content store of every pulled image;
//! - `layers/`: the layer store, one directory per chain ID, shared between images. A layer
//!   belongs to the images that use it (owner `image-<alg>-<hex>` of the manifest digest) and
//!   to the containers stacking it: `run --rm` leaves the image's layers in place (as podman
//!   does), `rmi` releases them;
//! - `containers/<id>/`: the container's bundle (`config.json`), its overlay
//!   (`upper`, `work`, `merged`), and `log` for detached containers;
//! - `run/`: the runtime's state (one directory per container).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_image::{Layout, PlatformSpec};
use oci_runtime::{CreateOptions, KillScope, Overrides, Runtime, Stdio};
use oci_spec::runtime::{
    Capability, LinuxNamespaceType, LinuxResourcesBuilder, MountBuilder, Spec,
};
use oci_unpack::{LayerStore, Unpacker};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Where ocibox keeps images, layers and containers.
#[derive(Debug, Clone)]
pub struct Store {
    /// The store's root directory.
    pub root: PathBuf,
    /// No progress bars (`--quiet`); they are drawn only on a terminal anyway.
    quiet: bool,
}

/// When to pull an image from its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Only when the store does not have it.
    #[default]
    Missing,
    /// Every time.
    Always,
    /// Never: a missing image is an error.
    Never,
}

/// The options of `ocibox run` people use most.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--name`.
    pub name: Option<String>,
    /// `--rm`: remove the container (state, overlay, layer references) when it exits.
    pub remove: bool,
    /// `-d`: print the id and leave the container running.
    pub detach: bool,
    /// `-t`: a terminal.
    pub tty: bool,
    /// Image config overrides: entrypoint, cmd, env, workdir, user, hostname.
    pub overrides: Overrides,
    /// `--memory` in bytes.
    pub memory: Option<i64>,
    /// `--cpus` (e.g. 1.5).
    pub cpus: Option<f64>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--read-only`.
    pub read_only: bool,
    /// `-v host:container[:ro]`.
    pub volumes: Vec<String>,
    /// `--tmpfs /path[:options]`.
    pub tmpfs: Vec<String>,
    /// `--network none|host`.
    pub network: Option<String>,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--security-opt seccomp=FILE|unconfined`.
    pub seccomp: Option<String>,
    /// `--platform`.
    pub platform: Option<String>,
    /// `--pull`.
    pub pull: PullPolicy,
}

impl Store {
    /// The default store: `/var/lib/ocibox` as root, `$XDG_DATA_HOME/ocibox` otherwise.
    pub fn default_root() -> PathBuf {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            return PathBuf::from("/var/lib/ocibox");
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        data.join("ocibox")
    }

    /// Opens (creating) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(root.join("containers"))?;
        Ok(Self { root, quiet: false })
    }

    /// The same store, drawing no progress bars when `quiet`.
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// An unpacker reporting to `bar`, and the bar for the image's layers.
    fn unpacker(&self, image: &oci_image::Image) -> (Unpacker, crate::progress::UnpackProgress) {
        let total = image.layers.iter().map(|l| l.descriptor.size()).sum();
        let bar = crate::progress::UnpackProgress::new(self.quiet, total);
        let mut unpacker = Unpacker::new();
        if let Some(f) = bar.callback() {
            unpacker = unpacker.on_progress(f);
        }
        (unpacker, bar)
    }

    /// The content store of pulled images.
    pub fn images(&self) -> Result<Layout> {
        Ok(Layout::create(self.root.join("images"))?)
    }

    /// The layer store.
    pub fn layers(&self) -> Result<LayerStore> {
        Ok(LayerStore::open(self.root.join("layers"))?)
    }

    /// The runtime over the store's state directory.
    pub fn runtime(&self) -> Result<Runtime> {
        Ok(Runtime::new(self.root.join("run"))?)
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// Finds an image: `DIR:TAG` or `DIR@DIGEST` of a local layout, or a registry reference
    /// (pulled into the store according to `policy`). Returns the layout holding it and the
    /// resolved image.
    pub fn image(
        &self,
        name: &str,
        platform: Option<&PlatformSpec>,
        policy: PullPolicy,
    ) -> Result<(Layout, oci_image::Image)> {
        let (layout, image, _lease) = self.image_leased(name, platform, policy)?;
        Ok((layout, image))
    }

    /// [`Store::image`], with a lease on the image's blobs: a concurrent `rmi` or `gc` does not
    /// collect them (not even if the image is untagged meanwhile) while the lease lives, so
    /// that an unpack reads whole content.
    pub fn image_leased(
        &self,
        name: &str,
        platform: Option<&PlatformSpec>,
        policy: PullPolicy,
    ) -> Result<(Layout, oci_image::Image, Option<oci_image::Lease>)> {
        let mut tries = 0;
        loop {
            let (layout, image) = self.image_unleased(name, platform, policy)?;
            // A layout we may not write to (a read-only image directory) cannot hold a lease;
            // nothing there collects garbage behind our back either, but `ocibox gc`.
            let Ok(lease) = layout.lease() else {
                return Ok((layout, image, None));
            };
            let digests: Vec<_> = [
                image.manifest_descriptor.digest(),
                image.manifest.config().digest(),
            ]
            .into_iter()
            .chain(image.layers.iter().map(|l| l.descriptor.digest()))
            .cloned()
            .collect();
            lease.add(&digests)?;
            // A gc between the resolve and the lease may have taken some: resolve again
            // (pulling what is missing); from now on what is found stays.
            let mut whole = true;
            for d in &digests {
                whole &= layout.has_blob(d)?;
            }
            tries += 1;
            if whole || tries >= 3 {
                return Ok((layout, image, Some(lease)));
            }
        }
    }

    fn image_unleased(
        &self,
        name: &str,
        platform: Option<&PlatformSpec>,
        policy: PullPolicy,
    ) -> Result<(Layout, oci_image::Image)> {
        if let Some((dir, reference)) = local_layout(name) {
            let layout = Layout::open(&dir)?;
            let image = layout.resolve(&reference, platform)?;
            return Ok((layout, image));
        }
        let layout = self.images()?;
        let client = oci_image::registry::Client::new();
        let r = client.parse_reference(name)?;
        let local_tag = r.to_string();
        let have = layout.resolve(&local_tag, platform);
        match (policy, have) {
            (PullPolicy::Missing | PullPolicy::Never, Ok(image)) => return Ok((layout, image)),
            (PullPolicy::Never, Err(e)) => {
                return Err(format!("{name}: not in the store and --pull never: {e}").into())
            }
            _ => {}
        }
        let progress = std::sync::Arc::new(crate::progress::PullProgress::new(self.quiet));
        let reporter = progress.clone();
        let mut opts = oci_image::registry::PullOptions::default()
            .tag(local_tag.clone())
            .on_progress(move |p| reporter.event(p));
        if let Some(p) = platform {
            opts = opts.platform(p.clone());
        }
        let pulled = client.pull(&r, &layout, &opts);
        progress.finish();
        pulled?;
        let image = layout.resolve(&local_tag, platform)?;
        Ok((layout, image))
    }

    /// `ocibox run`: creates the container's overlay and bundle, runs it, and returns its exit
    /// code (or 0 with `-d`, after printing the id).
    pub fn run(&self, image_name: &str, opts: &RunOptions) -> Result<i32> {
        let platform = opts
            .platform
            .as_deref()
            .map(str::parse::<PlatformSpec>)
            .transpose()?;
        let (layout, image, lease) = self.image_leased(image_name, platform.as_ref(), opts.pull)?;
        let id = match &opts.name {
            Some(n) => {
                oci_runtime::check_id(n)?;
                n.clone()
            }
            None => random_id()?,
        };
        let dir = self.container_dir(&id);
        if dir.exists() {
            return Err(format!("a container named {id} already exists").into());
        }
        fs::create_dir_all(&dir)?;
        let mut guard = ContainerGuard {
            store: self.clone(),
            id: id.clone(),
            armed: true,
        };
        let layers = self.layers()?;
        let (unpacker, bar) = self.unpacker(&image);
        // Layers belong to the image (its owner keeps them until `rmi`), as in podman: a
        // second `run --rm` of the image finds them unpacked. The container holds them too,
        // so that an `rmi` while it exists does not take them from under it.
        let owner = image_owner(image.manifest_descriptor.digest());
        let chain = layers
            .prepare(&unpacker, &layout, &image, &owner)
            .and_then(|_| layers.prepare(&unpacker, &layout, &image, &id));
        drop(lease);
        bar.finish();
        let chain = chain?;
        let mount = layers.mount(&chain, &dir)?;
        let rootfs = mount.merged().to_path_buf();
        let merged = mount.keep();

        let mut overrides = opts.overrides.clone();
        overrides.terminal = opts.tty;
        if overrides.hostname.is_none() {
            overrides.hostname = Some(id.chars().take(12).collect());
        }
        let mut spec = oci_runtime::spec_from_image(
            &image.config,
            &rootfs,
            &overrides,
            oci_runtime::default_spec()?,
        )?;
        apply_options(&mut spec, &merged, &id, opts)?;
        let bundle = dir.join("bundle");
        oci_runtime::Bundle::write(&bundle, &spec)?;

        let rt = self.runtime()?;
        if opts.detach {
            // Detached containers write their output to `containers/<id>/log`.
            let log = fs::File::create(dir.join("log"))?;
            let opts = CreateOptions::new(bundle)
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log));
            let running = rt.run(&id, &opts)?;
            running.detach();
            guard.armed = false;
            println!("{id}");
            return Ok(0);
        }
        let mut running = rt.run(&id, &CreateOptions::new(bundle))?;
        let console = running.console.take();
        let _raw = console.as_ref().map(crate::terminal::proxy);
        let forward = crate::terminal::forward_signals(
            running.pid(),
            console.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
        );
        let code = running.wait();
        drop(forward);
        if opts.remove {
            drop(guard); // removes the container, its overlay and its layer references
        } else {
            guard.armed = false;
            let _ = rt.delete(&id, true);
        }
        Ok(code?)
    }

    /// Removes a container: kills it if `force`, deletes its runtime state, unmounts its
    /// overlay, releases its layers and removes its directory.
    pub fn remove(&self, id: &str, force: bool) -> Result<()> {
        let rt = self.runtime()?;
        match rt.delete(id, force) {
            Ok(()) | Err(oci_runtime::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let dir = self.container_dir(id);
        if !dir.exists() {
            return Err(format!("no container {id}").into());
        }
        // Unmounts and removes the overlay's directories; layers still stacked by another
        // container's overlay stay until that one is unmounted.
        let layers = self.layers()?;
        layers.unmount(&dir)?;
        layers.release(id)?;
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    /// Stops a container: SIGTERM (or the image's stop signal), then SIGKILL after `timeout`.
    pub fn stop(&self, id: &str, timeout: std::time::Duration) -> Result<()> {
        let rt = self.runtime()?;
        let record = rt.store().load(id)?;
        let sig = record
            .config
            .annotations()
            .as_ref()
            .and_then(|a| a.get("org.opencontainers.image.stopSignal").cloned())
            .and_then(|s| crate::signals::parse(&s).ok())
            .unwrap_or(libc::SIGTERM);
        if record.status() == oci_spec::runtime::ContainerState::Stopped {
            return Ok(());
        }
        match rt.kill(id, sig, KillScope::Init) {
            // It exited between the check and the signal: stopped, as asked.
            Err(oci_runtime::Error::NotRunning { .. }) => return Ok(()),
            r => r?,
        }
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if rt.store().load(id)?.status() == oci_spec::runtime::ContainerState::Stopped {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        match rt.kill(id, libc::SIGKILL, KillScope::All) {
            Ok(()) | Err(oci_runtime::Error::NotRunning { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `command` in a running container (its process settings, with `env` added and
    /// `workdir` as cwd), in the foreground; returns its exit code.
    pub fn exec(
        &self,
        id: &str,
        command: &[String],
        env: &[String],
        workdir: Option<&str>,
        tty: bool,
    ) -> Result<i32> {
        let rt = self.runtime()?;
        let record = rt.store().load(id)?;
        let mut p = record.config.process().clone().unwrap_or_default();
        p.set_args(Some(command.to_vec()));
        p.set_terminal(Some(tty));
        p.set_console_size(None);
        let mut e = p.env().clone().unwrap_or_default();
        for kv in env {
            let key = kv.split('=').next().unwrap_or("");
            e.retain(|x| x.split('=').next() != Some(key));
            e.push(kv.clone());
        }
        p.set_env(Some(e));
        if let Some(w) = workdir {
            p.set_cwd(w.into());
        }
        let mut exec = rt.exec(id, &p, &oci_runtime::ExecOptions::default())?;
        let console = exec.console.take();
        let _raw = console.as_ref().map(crate::terminal::proxy);
        let _fwd = crate::terminal::forward_signals(
            exec.pid(),
            console.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
        );
        Ok(exec.wait()?)
    }

    /// `ocibox unpack`: the image (pulled if missing) as a flat rootfs at `dir`.
    pub fn unpack(&self, image: &str, platform: Option<&str>, dir: &Path) -> Result<()> {
        let (layout, img, _lease) = self.fetch(image, platform)?;
        let (unpacker, bar) = self.unpacker(&img);
        let done = unpacker.unpack(&layout, &img, dir);
        bar.finish();
        done?;
        Ok(())
    }

    /// The image for `--platform` (the host's by default), pulled if the store lacks it.
    fn fetch(
        &self,
        image: &str,
        platform: Option<&str>,
    ) -> Result<(Layout, oci_image::Image, Option<oci_image::Lease>)> {
        let p = platform.map(str::parse::<PlatformSpec>).transpose()?;
        self.image_leased(image, p.as_ref(), PullPolicy::Missing)
    }

    /// `ocibox bundle`: `dir/rootfs` unpacked and `dir/config.json` converted from the image
    /// config (with `command` replacing its Cmd), ready for ocirun or runc.
    pub fn bundle(
        &self,
        image: &str,
        platform: Option<&str>,
        dir: &Path,
        command: Vec<String>,
    ) -> Result<()> {
        let (layout, img, _lease) = self.fetch(image, platform)?;
        let rootfs = dir.join("rootfs");
        fs::create_dir_all(dir)?;
        let (unpacker, bar) = self.unpacker(&img);
        let done = unpacker.unpack(&layout, &img, &rootfs);
        bar.finish();
        done?;
        let mut overrides = Overrides::default();
        overrides.cmd = (!command.is_empty()).then_some(command);
        let mut spec = oci_runtime::spec_from_image(
            &img.config,
            &rootfs,
            &overrides,
            oci_runtime::default_spec()?,
        )?;
        if let Some(root) = spec.root_mut() {
            root.set_path("rootfs".into());
        }
        oci_runtime::Bundle::write(dir, &spec)?;
        Ok(())
    }

    /// The images of the store, by reference.
    pub fn images_list(&self) -> Result<Vec<ImageSummary>> {
        let layout = self.images()?;
        let mut out = Vec::new();
        for tag in layout.tags()? {
            let descs = layout.find(&tag)?;
            let digest = descs
                .first()
                .map(|d| d.digest().to_string())
                .unwrap_or_default();
            let size = layout
                .resolve(&tag, None)
                .map(|i| i.layers.iter().map(|l| l.descriptor.size()).sum())
                .unwrap_or(0);
            out.push(ImageSummary {
                reference: tag,
                digest,
                size,
            });
        }
        Ok(out)
    }

    /// Untags an image and garbage-collects the blobs nothing references any more; returns the
    /// bytes freed.
    ///
    /// The unpacked layers the image held go with it (those another image or a container
    /// still references stay). For `DIR:TAG` of a local layout, whose directory is not the
    /// store's, only the layers are released: the layout is left as it is.
    pub fn remove_image(&self, reference: &str) -> Result<u64> {
        let layers = self.layers()?;
        if let Some((dir, r)) = local_layout(reference) {
            let image = Layout::open(&dir)?.resolve(&r, None)?;
            layers.release(&image_owner(image.manifest_descriptor.digest()))?;
            return Ok(0);
        }
        let layout = self.images()?;
        let client = oci_image::registry::Client::new();
        let tag = match layout.find(reference) {
            Ok(_) => reference.to_string(),
            Err(_) => client.parse_reference(reference)?.to_string(),
        };
        layout.untag(&tag)?;
        let report = layout.gc()?;
        // A manifest that gc removed is an image nothing references any more: its layers'
        // owner goes. (A manifest kept by a lease is released by the `rmi` or `gc` after.)
        for d in &report.removed {
            layers.release(&image_owner(d))?;
        }
        Ok(report.bytes_freed)
    }

    /// Checks the layer store: every layer's tree is hashed again and compared with the
    /// digest recorded when it was unpacked (and killed unpacks' leftovers are reclaimed).
    /// With `repair`, a changed layer is unpacked again from its blob in the image store.
    /// Returns a line per layer and how many are still changed.
    pub fn check(&self, repair: bool) -> Result<(Vec<String>, usize)> {
        let layers = self.layers()?;
        layers.gc()?;
        let mut lines = Vec::new();
        let mut bad = 0;
        for c in layers.verify()? {
            let line = match &c.state {
                oci_unpack::LayerState::Intact => format!("{} ok", c.chain_id),
                oci_unpack::LayerState::Unrecorded => {
                    format!("{} unchecked (no digest recorded)", c.chain_id)
                }
                oci_unpack::LayerState::Modified { recorded, actual } if repair => {
                    match layers.repair(&Unpacker::new(), &self.images()?, &c.chain_id) {
                        Ok(()) => format!(
                            "{} repaired (was {actual}, recorded {recorded})",
                            c.chain_id
                        ),
                        Err(e) => {
                            bad += 1;
                            format!("{} MODIFIED, not repaired: {e}", c.chain_id)
                        }
                    }
                }
                oci_unpack::LayerState::Modified { recorded, actual } => {
                    bad += 1;
                    format!(
                        "{} MODIFIED: tree {actual}, recorded {recorded}",
                        c.chain_id
                    )
                }
                _ => format!("{} {:?}", c.chain_id, c.state),
            };
            lines.push(line);
        }
        Ok((lines, bad))
    }

    /// The output of a detached container.
    pub fn logs(&self, id: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        fs::File::open(self.container_dir(id).join("log"))
            .map_err(|e| format!("{id}: no logs: {e}"))?
            .read_to_end(&mut out)?;
        Ok(out)
    }

    /// The containers of the store, by id.
    pub fn list(&self) -> Result<Vec<ContainerSummary>> {
        let rt = self.runtime()?;
        let mut out = Vec::new();
        for entry in fs::read_dir(self.root.join("containers"))? {
            let id = entry?.file_name().to_string_lossy().into_owned();
            let (status, command) = match rt.store().load(&id) {
                Ok(r) => (
                    Runtime::status_name(&r),
                    r.config
                        .process()
                        .as_ref()
                        .and_then(|p| p.args().clone())
                        .unwrap_or_default(),
                ),
                // Its runtime state is gone once it exited: the command is the bundle's.
                Err(_) => (
                    "exited".to_string(),
                    fs::read(self.container_dir(&id).join("bundle/config.json"))
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Spec>(&b).ok())
                        .and_then(|s| s.process().as_ref().and_then(|p| p.args().clone()))
                        .unwrap_or_default(),
                ),
            };
            out.push(ContainerSummary {
                id,
                status,
                command,
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

/// A container as `ocibox ps` lists it (`--format json`: podman's key names).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerSummary {
    /// The container's id.
    #[serde(rename = "Id")]
    pub id: String,
    /// `created`, `running`, `paused`, `stopped`, or `exited` once its runtime state is gone.
    #[serde(rename = "State")]
    pub status: String,
    /// Its process's arguments.
    #[serde(rename = "Command")]
    pub command: Vec<String>,
}

/// An image of the store as `ocibox images` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageSummary {
    /// The reference it was pulled as (its tag in the store's layout).
    #[serde(rename = "Reference")]
    pub reference: String,
    /// The digest of its manifest (or index).
    #[serde(rename = "Digest")]
    pub digest: String,
    /// The bytes of its layers, compressed, for the host's platform.
    #[serde(rename = "Size")]
    pub size: u64,
}

/// `DIR:TAG`, `DIR@DIGEST` or `DIR` when DIR is an image layout on disk.
fn local_layout(name: &str) -> Option<(PathBuf, String)> {
    let (dir, reference) = match name.split_once('@') {
        Some((d, r)) => (d.to_string(), r.to_string()),
        None => match name.split_once(':') {
            Some((d, r)) => (d.to_string(), r.to_string()),
            None => (name.to_string(), String::new()),
        },
    };
    let dir = dir.strip_prefix("oci:").map(str::to_string).unwrap_or(dir);
    Path::new(&dir)
        .join("oci-layout")
        .is_file()
        .then(|| (PathBuf::from(dir), reference))
}

/// The layer store's owner name of the image whose manifest is `digest`.
fn image_owner(digest: &oci_spec::image::Digest) -> String {
    format!("image-{}-{}", digest.algorithm(), digest.digest())
}

fn random_id() -> Result<String> {
    let mut b = [0u8; 16];
    fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn capability(name: &str) -> Result<Capability> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    serde_json::from_value(serde_json::Value::String(full))
        .map_err(|_| format!("unknown capability {name:?}").into())
}

/// Applies the run options that are not image overrides to the spec.
fn apply_options(spec: &mut Spec, rootfs: &Path, id: &str, o: &RunOptions) -> Result<()> {
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path(rootfs.to_path_buf());
    root.set_readonly(Some(o.read_only));
    spec.set_root(Some(root));

    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for v in &o.volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, ro) = match parts.as_slice() {
            [s, d] => (*s, *d, false),
            [s, d, "ro"] => (*s, *d, true),
            [s, d, "rw"] => (*s, *d, false),
            _ => return Err(format!("-v {v:?}: expected HOST:CONTAINER[:ro]").into()),
        };
        let src = fs::canonicalize(src).map_err(|e| format!("-v {v:?}: {src}: {e}"))?;
        if !dst.starts_with('/') {
            return Err(format!("-v {v:?}: the container path must be absolute").into());
        }
        let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
        if ro {
            options.push("ro".into());
        }
        mounts.retain(|m| m.destination() != Path::new(dst));
        mounts.push(
            MountBuilder::default()
                .destination(dst)
                .typ("bind")
                .source(src)
                .options(options)
                .build()?,
        );
    }
    for t in &o.tmpfs {
        let (dst, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        if !dst.starts_with('/') {
            return Err(format!("--tmpfs {t:?}: the path must be absolute").into());
        }
        let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
        options.extend(
            opts.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        mounts.retain(|m| m.destination() != Path::new(dst));
        mounts.push(
            MountBuilder::default()
                .destination(dst)
                .typ("tmpfs")
                .source("tmpfs")
                .options(options)
                .build()?,
        );
    }
    spec.set_mounts(Some(mounts));

    if let Some(p) = spec.process_mut() {
        if let Some(mut caps) = p.capabilities().clone() {
            let add: Vec<Capability> = o
                .cap_add
                .iter()
                .map(|c| capability(c))
                .collect::<Result<_>>()?;
            let all = o.cap_drop.iter().any(|c| c.eq_ignore_ascii_case("all"));
            let drop: Vec<Capability> = o
                .cap_drop
                .iter()
                .filter(|c| !c.eq_ignore_ascii_case("all"))
                .map(|c| capability(c))
                .collect::<Result<_>>()?;
            let edit = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = if all {
                    Default::default()
                } else {
                    set.clone().unwrap_or_default()
                };
                for c in &drop {
                    s.remove(c);
                }
                s.extend(add.iter().copied());
                Some(s)
            };
            caps.set_bounding(edit(caps.bounding()));
            caps.set_effective(edit(caps.effective()));
            caps.set_permitted(edit(caps.permitted()));
            p.set_capabilities(Some(caps));
        }
    }

    let bounding: Vec<String> = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().clone())
        .unwrap_or_default()
        .iter()
        .map(|c| format!("CAP_{}", oci_runtime::capability_name(c)))
        .collect();
    if let Some(linux) = spec.linux_mut() {
        linux.set_cgroups_path(Some(PathBuf::from(format!("/ocibox/{id}"))));
        match o.network.as_deref() {
            None | Some("none") | Some("private") => {}
            Some("host") => {
                let mut ns = linux.namespaces().clone().unwrap_or_default();
                ns.retain(|n| n.typ() != LinuxNamespaceType::Network);
                linux.set_namespaces(Some(ns));
            }
            Some(other) => {
                return Err(format!("--network {other}: only none and host are supported").into())
            }
        }
        match o.seccomp.as_deref() {
            None => {
                linux.set_seccomp(Some(oci_runtime::docker_default_seccomp(&bounding)?));
            }
            Some("unconfined") => {
                linux.set_seccomp(None);
            }
            Some(file) => {
                let bytes = fs::read(file).map_err(|e| format!("seccomp profile {file}: {e}"))?;
                linux.set_seccomp(Some(
                    serde_json::from_slice(&bytes)
                        .map_err(|e| format!("seccomp profile {file}: {e}"))?,
                ));
            }
        }
        let mut res = linux
            .resources()
            .clone()
            .unwrap_or_else(|| LinuxResourcesBuilder::default().build().unwrap_or_default());
        if let Some(m) = o.memory {
            res.set_memory(Some(
                oci_spec::runtime::LinuxMemoryBuilder::default()
                    .limit(m)
                    .build()?,
            ));
        }
        if let Some(c) = o.cpus {
            let period = 100_000u64;
            res.set_cpu(Some(
                oci_spec::runtime::LinuxCpuBuilder::default()
                    .period(period)
                    .quota((c * period as f64) as i64)
                    .build()?,
            ));
        }
        if let Some(p) = o.pids_limit {
            res.set_pids(Some(
                oci_spec::runtime::LinuxPidsBuilder::default()
                    .limit(p)
                    .build()?,
            ));
        }
        linux.set_resources(Some(res));
    }
    if o.network.as_deref() == Some("host") {
        // The host's network namespace: the hostname stays the container's (own UTS).
    }
    Ok(())
}

/// Removes a half-made or `--rm` container: runtime state, overlay, layer references, dir.
struct ContainerGuard {
    store: Store,
    id: String,
    armed: bool,
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.store.remove(&self.id, true);
        }
    }
}
