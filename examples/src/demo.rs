//! The demo image the README's main job runs: a tiny, reproducible two-layer image built from
//! the host's busybox-static (when present), written into an OCI image layout.

use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use oci_image::spec::image::{
    Arch, ConfigBuilder, Descriptor, HistoryBuilder, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};
use oci_image::{sha256_digest, Layout, PlatformSpec};

/// Where busybox-static installs its binary on Debian.
pub const BUSYBOX: &str = "/bin/busybox";

/// Fixed timestamps keep the demo image byte-for-byte reproducible.
const MTIME: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const CREATED: &str = "2026-01-01T00:00:00Z";

/// The applets the demo links to busybox.
const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "hostname", "id", "mount", "ps", "uname", "sleep", "true", "false",
];

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct TarBuilder(tar::Builder<Vec<u8>>);

impl TarBuilder {
    fn new() -> Self {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Deterministic);
        Self(b)
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(size);
        h
    }

    fn dir(&mut self, path: &str, mode: u32) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        self.0.append_data(&mut h, path, std::io::empty())?;
        Ok(())
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        self.0.append_data(&mut h, path, data)?;
        Ok(())
    }

    fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.0.append_link(&mut h, path, target)?;
        Ok(())
    }

    /// Finishes the tar and returns (gzip bytes, diff_id).
    fn finish(self) -> Result<(Vec<u8>, String)> {
        let tar = self.0.into_inner()?;
        let diff_id = sha256_digest(&tar).to_string();
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar)?;
        Ok((gz.finish()?, diff_id))
    }
}

/// Writes the demo image into the layout at `dir` (created if needed), tags it `demo`, and
/// returns the manifest's descriptor.
pub fn write_demo_image(dir: &Path) -> Result<Descriptor> {
    let layout = Layout::create(dir)?;

    let mut base = TarBuilder::new();
    for (d, mode) in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("sys", 0o555),
        ("tmp", 0o1777),
    ] {
        base.dir(d, mode)?;
    }
    if let Ok(busybox) = std::fs::read(BUSYBOX) {
        base.file("bin/busybox", 0o755, &busybox)?;
        for applet in APPLETS {
            base.symlink(&format!("bin/{applet}"), "busybox")?;
        }
    }
    base.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    base.file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")?;
    let (base_gz, base_diff) = base.finish()?;

    let mut top = TarBuilder::new();
    top.dir("etc", 0o755)?;
    top.file("etc/motd", 0o644, b"Hello from the ocibox demo image.\n")?;
    top.file("etc/hostname", 0o644, b"ocibox-demo\n")?;
    let (top_gz, top_diff) = top.finish()?;

    let layers = vec![
        layout.put_blob(MediaType::ImageLayerGzip, &base_gz)?,
        layout.put_blob(MediaType::ImageLayerGzip, &top_gz)?,
    ];
    let host = PlatformSpec::host();
    let script = "cat /etc/motd; echo \"hostname: $(hostname)\"; echo \"pid: $$\"; echo mounts:; cat /proc/self/mounts";
    let mut config = ImageConfigurationBuilder::default()
        .created(CREATED)
        .architecture(Arch::from(host.architecture.as_str()))
        .os(Os::from(host.os.as_str()))
        .config(
            ConfigBuilder::default()
                .env(vec!["PATH=/bin".to_string()])
                .cmd(vec![
                    "/bin/sh".to_string(),
                    "-c".to_string(),
                    script.to_string(),
                ])
                .working_dir("/")
                .build()?,
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![base_diff, top_diff])
                .build()?,
        )
        .history(vec![
            HistoryBuilder::default()
                .created(CREATED)
                .created_by("ocibox demo: busybox-static and /etc")
                .build()?,
            HistoryBuilder::default()
                .created(CREATED)
                .created_by("ocibox demo: motd and hostname")
                .build()?,
        ])
        .build()?;
    if !host.variant.is_empty() {
        config.set_variant(Some(host.variant.clone()));
    }
    let config = layout.put_json(MediaType::ImageConfig, &config)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .build()?;
    let desc = layout.put_manifest(&manifest)?;
    layout.tag("demo", &desc)?;
    Ok(desc)
}
