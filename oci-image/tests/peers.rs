//! Interoperability with the reference tools: layouts written by umoci and skopeo read
//! correctly, and layouts written here are accepted by them. The tools are installed by the
//! README's test command (`./scripts/test`); a missing tool fails the test, it never skips.

mod common;

use std::path::Path;

use common::*;
use oci_image::{Layout, PlatformSpec};

#[test]
fn reads_layouts_written_by_umoci() {
    let tmp = tempfile::tempdir().unwrap();
    let l = tmp.path().join("layout");
    let image = format!("{}:base", s(&l));
    run("umoci", &["init", "--layout", s(&l)]);
    run("umoci", &["new", "--image", &image]);
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("etc/motd"), "hello from umoci\n").unwrap();
    run("umoci", &["insert", "--image", &image, s(&src), "/"]);
    run(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--config.cmd",
            "/bin/sh",
            "--config.env",
            "A=1",
        ],
    );
    run("umoci", &["tag", "--image", &image, "second"]);

    let layout = Layout::open(&l).unwrap();
    let mut tags = layout.tags().unwrap();
    tags.sort();
    assert_eq!(tags, vec!["base", "second"]);
    let img = layout.resolve("base", None).unwrap();
    assert_eq!(img.layers.len(), 1);
    let cfg = img.config.config().as_ref().unwrap();
    assert_eq!(cfg.cmd().as_ref().unwrap(), &vec!["/bin/sh".to_string()]);
    assert!(cfg.env().as_ref().unwrap().contains(&"A=1".to_string()));
    // The layer streams and verifies, and its uncompressed content hashes to the diff_id.
    let mut r = layout.open_blob(&img.layers[0].descriptor).unwrap();
    let mut gz = flate2::read::GzDecoder::new(&mut r);
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut gz, &mut tar).unwrap();
    drop(gz);
    r.finish().unwrap();
    assert_eq!(oci_image::sha256_digest(&tar), img.layers[0].diff_id);
    assert_eq!(
        layout.resolve("second", None).unwrap().digest(),
        img.digest()
    );
    assert_valid(&layout);
}

#[test]
fn reads_layouts_written_by_skopeo_with_gzip_and_zstd() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = tmp.path().join("ours");
    let layout = Layout::create(&ours).unwrap();
    let d = image(&layout, &PlatformSpec::host().to_string(), false);
    layout.tag("src", &d).unwrap();
    for (name, extra) in [
        ("gzip", &[][..]),
        (
            "zstd",
            &["--dest-compress-format", "zstd", "--dest-compress"][..],
        ),
    ] {
        let theirs = tmp.path().join(name);
        let mut args = vec!["copy", "--quiet"];
        args.extend_from_slice(extra);
        let src = format!("oci:{}:src", s(&ours));
        let dst = format!("oci:{}:copy", s(&theirs));
        args.push(&src);
        args.push(&dst);
        run("skopeo", &args);
        let copy = Layout::open(&theirs).unwrap();
        let img = copy.resolve("copy", None).unwrap();
        assert_eq!(img.layers.len(), 1);
        let kind = oci_image::media_type::kind(img.layers[0].descriptor.media_type());
        let want = if name == "zstd" {
            oci_image::media_type::Compression::Zstd
        } else {
            oci_image::media_type::Compression::Gzip
        };
        assert!(
            matches!(kind, oci_image::media_type::Kind::Layer { compression, .. } if compression == want),
            "{name}: {kind:?}"
        );
        // Same uncompressed content, whatever the compression.
        let ours_img = layout.resolve("src", None).unwrap();
        assert_eq!(img.layers[0].diff_id, ours_img.layers[0].diff_id);
        assert_valid(&copy);
    }
}

#[test]
fn layouts_written_here_are_accepted_by_skopeo_and_umoci() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let desc = examples_demo(&dir);
    let layout = Layout::open(&dir).unwrap();
    assert_valid(&layout);

    let inspect = run("skopeo", &["inspect", &format!("oci:{}:demo", s(&dir))]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], desc.digest().to_string());
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
    let raw = run(
        "skopeo",
        &["inspect", "--raw", &format!("oci:{}:demo", s(&dir))],
    );
    assert_eq!(oci_image::sha256_digest(raw.as_bytes()), *desc.digest());

    let stat = run(
        "umoci",
        &["stat", "--image", &format!("{}:demo", s(&dir)), "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&stat).unwrap();
    assert_eq!(v["history"].as_array().unwrap().len(), 2);
    // umoci can unpack what we wrote (it checks every digest on the way).
    let bundle = tmp.path().join("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:demo", s(&dir)),
            s(&bundle),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/etc/motd")).unwrap(),
        "Hello from the ocibox demo image.\n"
    );

    // A multi-platform index we write survives `skopeo copy --all` and resolves per platform.
    let amd = image(&layout, "linux/amd64", true);
    let arm = image(&layout, "linux/arm64", true);
    let idx = index(&layout, vec![amd.clone(), arm.clone()]);
    layout.tag("multi", &idx).unwrap();
    assert_valid(&layout);
    let copy_dir = tmp.path().join("copy");
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--all",
            &format!("oci:{}:multi", s(&dir)),
            &format!("oci:{}:multi", s(&copy_dir)),
        ],
    );
    let copy = Layout::open(&copy_dir).unwrap();
    for (plat, want) in [("linux/amd64", &amd), ("linux/arm64", &arm)] {
        let p: PlatformSpec = plat.parse().unwrap();
        assert_eq!(
            copy.resolve("multi", Some(&p)).unwrap().digest(),
            want.digest()
        );
    }
    assert_valid(&copy);

    // After untag + gc, the tools still accept what is left.
    layout.untag("multi").unwrap();
    let gc = layout.gc().unwrap();
    assert_eq!(
        gc.removed.len(),
        7,
        "index, 2 manifests, 2 configs, 2 layers"
    );
    run("umoci", &["stat", "--image", &format!("{}:demo", s(&dir))]);
    run("skopeo", &["inspect", &format!("oci:{}:demo", s(&dir))]);
}

/// The demo image of the examples package, rebuilt here to keep this crate independent of it:
/// two gzip layers with history, the way `ocibox demo` writes them.
fn examples_demo(dir: &Path) -> oci_image::spec::image::Descriptor {
    use oci_image::spec::image::*;
    let layout = Layout::create(dir).unwrap();
    let files: [(&str, &[u8]); 2] = [
        ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        ("etc/motd", b"Hello from the ocibox demo image.\n"),
    ];
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    let mut history = Vec::new();
    for (name, content) in files {
        let tar = layer_tar(name, content);
        diff_ids.push(oci_image::sha256_digest(&tar).to_string());
        layers.push(
            layout
                .put_blob(MediaType::ImageLayerGzip, &gzip(&tar))
                .unwrap(),
        );
        history.push(
            HistoryBuilder::default()
                .created("2026-01-01T00:00:00Z")
                .created_by(format!("add {name}"))
                .build()
                .unwrap(),
        );
    }
    let host = PlatformSpec::host();
    let config = ImageConfigurationBuilder::default()
        .created("2026-01-01T00:00:00Z")
        .architecture(Arch::from(host.architecture.as_str()))
        .os(Os::Linux)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(diff_ids)
                .build()
                .unwrap(),
        )
        .history(history)
        .build()
        .unwrap();
    let config = layout.put_json(MediaType::ImageConfig, &config).unwrap();
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .build()
        .unwrap();
    let d = layout.put_manifest(&manifest).unwrap();
    layout.tag("demo", &d).unwrap();
    d
}
