//! Builders shared by the integration tests.
#![allow(dead_code)]

use std::io::Write;

use oci_image::spec::image::{
    Arch, Descriptor, ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder,
    MediaType, Os, PlatformBuilder, RootFsBuilder,
};
use oci_image::{sha256_digest, Layout, PlatformSpec};

/// A tar with one regular file, and its gzip.
pub fn layer_tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, content).unwrap();
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Writes a one-layer image for `platform` (`os/arch[/variant]`) and returns its manifest
/// descriptor, with the platform set on the descriptor when `platform_on_descriptor`.
pub fn image(layout: &Layout, platform: &str, platform_on_descriptor: bool) -> Descriptor {
    image_with_types(layout, platform, platform_on_descriptor, false)
}

/// Same, with Docker schema 2 media types when `docker`.
pub fn image_with_types(
    layout: &Layout,
    platform: &str,
    platform_on_descriptor: bool,
    docker: bool,
) -> Descriptor {
    let p: PlatformSpec = platform.parse().unwrap();
    let tar = layer_tar("file", platform.as_bytes());
    let (layer_mt, config_mt, manifest_mt) = if docker {
        (
            MediaType::Other(oci_image::media_type::DOCKER_LAYER_GZIP.into()),
            MediaType::Other(oci_image::media_type::DOCKER_CONFIG.into()),
            MediaType::Other(oci_image::media_type::DOCKER_MANIFEST.into()),
        )
    } else {
        (
            MediaType::ImageLayerGzip,
            MediaType::ImageConfig,
            MediaType::ImageManifest,
        )
    };
    let layer = layout.put_blob(layer_mt, &gzip(&tar)).unwrap();
    let mut config = ImageConfigurationBuilder::default()
        .architecture(Arch::from(p.architecture.as_str()))
        .os(Os::from(p.os.as_str()))
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![sha256_digest(&tar).to_string()])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    if !p.variant.is_empty() {
        config.set_variant(Some(p.variant.clone()));
    }
    let config = layout.put_json(config_mt, &config).unwrap();
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(manifest_mt)
        .config(config)
        .layers(vec![layer])
        .build()
        .unwrap();
    let mut d = layout.put_manifest(&manifest).unwrap();
    if platform_on_descriptor {
        d.set_platform(Some(platform_of(&p)));
    }
    d
}

pub fn platform_of(p: &PlatformSpec) -> oci_image::spec::image::Platform {
    let mut b = PlatformBuilder::default()
        .architecture(Arch::from(p.architecture.as_str()))
        .os(Os::from(p.os.as_str()));
    if !p.variant.is_empty() {
        b = b.variant(p.variant.clone());
    }
    b.build().unwrap()
}

/// Writes an index of `manifests` and returns its descriptor.
pub fn index(layout: &Layout, manifests: Vec<Descriptor>) -> Descriptor {
    let i = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .unwrap();
    layout.put_index(&i).unwrap()
}

/// A fresh layout in a temporary directory.
pub fn layout() -> (tempfile::TempDir, Layout) {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    (dir, layout)
}

/// Runs a peer tool (umoci, skopeo, openssl), failing the test with its output if it fails.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} (install it with ./scripts/test): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A path as the `&str` argument tools take.
pub fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// Fails the test with every problem if the layout does not validate.
pub fn assert_valid(layout: &Layout) {
    let report = layout.validate();
    assert!(
        report.is_valid(),
        "{}",
        report
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
