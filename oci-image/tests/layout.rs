//! Reading, resolving and writing layouts.

mod common;

use std::io::{Read, Write};

use common::*;
use oci_image::spec::image::{Descriptor, ImageManifestBuilder, MediaType, ANNOTATION_REF_NAME};
use oci_image::{media_type, Error, Layout, PlatformSpec};

fn p(s: &str) -> PlatformSpec {
    s.parse().unwrap()
}

#[test]
fn create_open_and_blob_round_trip() {
    let (dir, layout) = layout();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let d = layout
        .put_blob(MediaType::Other("text/plain".into()), b"hi")
        .unwrap();
    // Deduplicated: writing it again changes nothing.
    let d2 = layout
        .put_blob(MediaType::Other("text/plain".into()), b"hi")
        .unwrap();
    assert_eq!(d, d2);
    let reopened = Layout::open(dir.path()).unwrap();
    assert_eq!(reopened.read_blob(&d, 10).unwrap(), b"hi");
    // Streaming writer, checked against an expected digest.
    let mut w = layout.blob_writer().unwrap();
    w.write_all(b"stream").unwrap();
    let wrong = oci_image::sha256_digest(b"other");
    assert!(matches!(
        w.commit(Some(&wrong)),
        Err(Error::DigestMismatch { .. })
    ));
    let mut w = layout.blob_writer().unwrap();
    w.write_all(b"stream").unwrap();
    let (digest, size) = w
        .commit(Some(&oci_image::sha256_digest(b"stream")))
        .unwrap();
    assert_eq!(size, 6);
    let mut r = layout
        .open_blob(&Descriptor::new(MediaType::Other("x/y".into()), 6, digest))
        .unwrap();
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "stream");
    // No temporary files left behind by the failed commit or the successful one.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("blobs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn open_refuses_what_is_not_a_layout() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Layout::open(dir.path()),
        Err(Error::NotALayout { .. })
    ));
    std::fs::write(
        dir.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    assert!(matches!(
        Layout::open(dir.path()),
        Err(Error::LayoutVersion { .. })
    ));
    std::fs::write(
        dir.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let e = Layout::open(dir.path()).unwrap_err();
    assert!(e.to_string().contains("no index.json"), "{e}");
}

#[test]
fn tag_resolve_untag_gc() {
    let (_dir, layout) = layout();
    let amd = image(&layout, "linux/amd64", false);
    layout.tag("v1", &amd).unwrap();
    layout.tag("v1-again", &amd).unwrap();
    assert_eq!(layout.tags().unwrap(), vec!["v1", "v1-again"]);
    let img = layout.resolve("v1", Some(&p("linux/amd64"))).unwrap();
    assert_eq!(img.digest(), amd.digest());
    assert_eq!(img.layers.len(), 1);
    assert_eq!(img.platform(), p("linux/amd64"));
    // By digest too.
    let by_digest = layout
        .resolve(amd.digest().as_ref(), Some(&p("linux/amd64")))
        .unwrap();
    assert_eq!(by_digest.digest(), amd.digest());
    // Retagging moves the tag instead of duplicating it.
    let arm = image(&layout, "linux/arm64", false);
    layout.tag("v1", &arm).unwrap();
    assert_eq!(layout.index().unwrap().manifests().len(), 2);
    assert!(layout.resolve("v1", Some(&p("linux/amd64"))).is_err());
    // Untag then gc removes only what is unreachable.
    layout.untag("v1").unwrap();
    assert!(matches!(layout.untag("v1"), Err(Error::NotFound { .. })));
    let report = layout.gc().unwrap();
    assert_eq!(report.removed.len(), 3, "arm64 manifest, config and layer");
    assert!(layout.resolve("v1-again", Some(&p("linux/amd64"))).is_ok());
    assert!(layout.validate().is_valid());
    assert!(!layout.has_blob(arm.digest()).unwrap());
}

#[test]
fn not_found_lists_the_tags() {
    let (_dir, layout) = layout();
    let d = image(&layout, "linux/amd64", false);
    layout.tag("one", &d).unwrap();
    layout.tag("two", &d).unwrap();
    let e = layout.resolve("three", None).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    assert!(e.to_string().contains("one, two"), "{e}");
}

#[test]
fn platform_selection_in_nested_indexes() {
    let (_dir, layout) = layout();
    let amd = image(&layout, "linux/amd64", true);
    let arm7 = image(&layout, "linux/arm/v7", true);
    let arm6 = image(&layout, "linux/arm/v6", true);
    let arm64 = image(&layout, "linux/arm64", true);
    let inner = index(&layout, vec![arm6.clone(), arm64.clone()]);
    let outer = index(&layout, vec![amd.clone(), inner, arm7.clone()]);
    layout.tag("multi", &outer).unwrap();

    let pick = |plat: &str| {
        layout
            .resolve("multi", Some(&p(plat)))
            .map(|i| i.digest().clone())
    };
    assert_eq!(pick("linux/amd64").unwrap(), *amd.digest());
    assert_eq!(pick("linux/arm64/v8").unwrap(), *arm64.digest());
    assert_eq!(pick("linux/aarch64").unwrap(), *arm64.digest());
    // v7 exact beats v6 though v6 comes first (in the nested index).
    assert_eq!(pick("linux/arm/v7").unwrap(), *arm7.digest());
    assert_eq!(pick("linux/arm/v6").unwrap(), *arm6.digest());
    let e = layout
        .resolve("multi", Some(&p("linux/s390x")))
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::NoMatchingPlatform { .. }), "{msg}");
    for plat in [
        "linux/amd64",
        "linux/arm/v7",
        "linux/arm/v6",
        "linux/arm64/v8",
    ] {
        assert!(msg.contains(plat), "{msg} lacks {plat}");
    }
    assert!(
        layout.validate().is_valid(),
        "{:?}",
        layout.validate().problems
    );
}

#[test]
fn manifests_without_descriptor_platform_match_on_config() {
    let (_dir, layout) = layout();
    let amd = image(&layout, "linux/amd64", false);
    let arm = image(&layout, "linux/arm64", false);
    let idx = index(&layout, vec![arm.clone(), amd.clone()]);
    layout.tag("x", &idx).unwrap();
    assert_eq!(
        layout
            .resolve("x", Some(&p("linux/amd64")))
            .unwrap()
            .digest(),
        amd.digest()
    );
}

#[test]
fn docker_schema2_media_types_are_accepted() {
    let (_dir, layout) = layout();
    let amd = image_with_types(&layout, "linux/amd64", true, true);
    let arm = image_with_types(&layout, "linux/arm64", true, true);
    let list = oci_image::spec::image::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::Other(media_type::DOCKER_MANIFEST_LIST.into()))
        .manifests(vec![amd.clone(), arm])
        .build()
        .unwrap();
    let list = layout.put_index(&list).unwrap();
    assert_eq!(list.media_type().as_ref(), media_type::DOCKER_MANIFEST_LIST);
    layout.tag("docker", &list).unwrap();
    let img = layout.resolve("docker", Some(&p("linux/amd64"))).unwrap();
    assert_eq!(img.digest(), amd.digest());
    assert_eq!(
        img.layers[0].descriptor.media_type().as_ref(),
        media_type::DOCKER_LAYER_GZIP
    );
    let report = layout.validate();
    assert!(report.is_valid(), "{:?}", report.problems);
}

#[test]
fn put_manifest_refuses_missing_blobs() {
    let (_dir, layout) = layout();
    let missing = Descriptor::new(MediaType::ImageConfig, 2, oci_image::sha256_digest(b"{}"));
    let m = ImageManifestBuilder::default()
        .schema_version(2u32)
        .config(missing)
        .layers(Vec::<Descriptor>::new())
        .build()
        .unwrap();
    assert!(matches!(
        layout.put_manifest(&m),
        Err(Error::MissingReference { .. })
    ));
    let d = image(&layout, "linux/amd64", false);
    for bad in ["", "a b", "../x", "-x"] {
        assert!(
            matches!(layout.tag(bad, &d), Err(Error::InvalidTag { .. })),
            "{bad}"
        );
    }
}

#[test]
fn artifacts_and_referrers() {
    let (_dir, layout) = layout();
    let subject = image(&layout, "linux/amd64", false);
    layout.tag("app", &subject).unwrap();
    let empty = layout.put_blob(MediaType::EmptyJSON, b"{}").unwrap();
    assert_eq!(empty.digest().as_ref(), media_type::EMPTY_JSON_DIGEST);
    let sig_blob = layout
        .put_blob(
            MediaType::Other("application/vnd.example.signature".into()),
            b"sig",
        )
        .unwrap();
    let mut ann = std::collections::HashMap::new();
    ann.insert("org.example.signer".to_string(), "alice".to_string());
    let artifact = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .artifact_type(MediaType::Other("application/vnd.example.signature".into()))
        .config(empty.clone())
        .layers(vec![sig_blob])
        .subject(subject.clone())
        .annotations(ann)
        .build()
        .unwrap();
    let art = layout.put_manifest(&artifact).unwrap();
    // An SBOM attached by an artifact with a custom config type (no artifactType).
    let sbom_config = layout
        .put_blob(
            MediaType::Other("application/vnd.example.sbom.config".into()),
            b"{}",
        )
        .unwrap();
    let sbom = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(sbom_config)
        .layers(vec![empty])
        .subject(subject.clone())
        .build()
        .unwrap();
    let sbom = layout.put_manifest(&sbom).unwrap();

    let all = layout.referrers(subject.digest(), None).unwrap();
    assert_eq!(all.len(), 2);
    let sig = all.iter().find(|d| d.digest() == art.digest()).unwrap();
    assert_eq!(
        sig.artifact_type().as_ref().unwrap().as_ref(),
        "application/vnd.example.signature"
    );
    assert_eq!(
        sig.annotations().as_ref().unwrap()["org.example.signer"],
        "alice"
    );
    let only = layout
        .referrers(
            subject.digest(),
            Some("application/vnd.example.sbom.config"),
        )
        .unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].digest(), sbom.digest());
    // An artifact is not a runnable image.
    assert!(matches!(
        layout.image(&art),
        Err(Error::UnexpectedMediaType { .. })
    ));
    // gc keeps referrers of a live image even though index.json does not list them.
    let r = layout.gc().unwrap();
    assert!(r.removed.is_empty(), "{:?}", r.removed);
    layout.untag("app").unwrap();
    let r = layout.gc().unwrap();
    assert!(r.removed.contains(art.digest()) && r.removed.contains(sbom.digest()));
}

#[test]
fn empty_reference_names_the_only_manifest() {
    let (_dir, layout) = layout();
    let d = image(&layout, "linux/amd64", false);
    // Untagged in index.json.
    layout
        .update_index(|i| {
            i.set_manifests(vec![d.clone()]);
            Ok(())
        })
        .unwrap();
    assert_eq!(
        layout
            .resolve("", Some(&p("linux/amd64")))
            .unwrap()
            .digest(),
        d.digest()
    );
    let ann = layout.index().unwrap().manifests()[0].annotations().clone();
    assert!(ann.is_none_or(|a| !a.contains_key(ANNOTATION_REF_NAME)));
}

#[test]
fn concurrent_taggers_do_not_lose_updates() {
    let (_dir, layout) = layout();
    let d = image(&layout, "linux/amd64", false);
    std::thread::scope(|s| {
        for t in 0..8 {
            let layout = layout.clone();
            let d = d.clone();
            s.spawn(move || {
                for i in 0..10 {
                    layout.tag(&format!("t{t}-{i}"), &d).unwrap();
                }
            });
        }
    });
    assert_eq!(layout.tags().unwrap().len(), 80);
}

#[test]
fn gc_removes_stale_temporaries_but_not_fresh_ones() {
    let (dir, layout) = layout();
    let old = dir.path().join("blobs/.tmp-old");
    let old_root = dir.path().join(".tmp-index");
    let fresh = dir.path().join("blobs/.tmp-fresh");
    for p in [&old, &old_root, &fresh] {
        std::fs::write(p, "partial").unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    for p in [&old, &old_root] {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
    }
    let r = layout.gc().unwrap();
    assert_eq!(r.temp_files_removed, 2);
    assert!(!old.exists() && !old_root.exists() && fresh.exists());
}

#[test]
fn sha512_blobs_are_read_and_verified() {
    use sha2::Digest as _;
    let (dir, layout) = layout();
    let data = b"sha512 content";
    let hex = hex::encode(sha2::Sha512::digest(data));
    std::fs::create_dir_all(dir.path().join("blobs/sha512")).unwrap();
    std::fs::write(dir.path().join("blobs/sha512").join(&hex), data).unwrap();
    let digest = oci_image::parse_digest(&format!("sha512:{hex}")).unwrap();
    let d = Descriptor::new(
        MediaType::Other("text/plain".into()),
        data.len() as u64,
        digest,
    );
    assert_eq!(layout.read_blob(&d, 100).unwrap(), data);
    std::fs::write(
        dir.path().join("blobs/sha512").join(&hex),
        b"sha512 c0ntent",
    )
    .unwrap();
    assert!(matches!(
        layout.read_blob(&d, 100),
        Err(Error::DigestMismatch { .. })
    ));
}

#[test]
fn embedded_data_must_match_the_descriptor() {
    use base64::Engine as _;
    let (_dir, layout) = layout();
    let m = image(&layout, "linux/amd64", false);
    let mut tagged = m.clone();
    tagged.set_data(Some(
        base64::engine::general_purpose::STANDARD.encode(b"not the manifest"),
    ));
    layout
        .update_index(|i| {
            i.set_manifests(vec![tagged.clone()]);
            Ok(())
        })
        .unwrap();
    let report = layout.validate();
    assert!(
        report.errors().any(|p| p.field == "manifests[0].data"),
        "{:?}",
        report.problems
    );
}

/// Issue 15: a partial download kept for resume (after a full disk, a kill) is left by a plain
/// `gc` for an hour, but `gc_with(partials)` reclaims it at once, and never one a live writer
/// holds.
#[test]
fn gc_with_partials_reclaims_abandoned_downloads_only() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    let abandoned = oci_image::sha256_digest(b"abandoned download");
    let mut p = layout.partial_blob(&abandoned).unwrap();
    p.write_all(b"abandoned").unwrap();
    let abandoned_path = p.path().to_path_buf();
    drop(p);
    let live = oci_image::sha256_digest(b"live download");
    let mut writer = layout.partial_blob(&live).unwrap();
    writer.write_all(b"live").unwrap();

    assert_eq!(layout.gc().unwrap().temp_files_removed, 0);
    assert!(abandoned_path.exists());
    let r = layout
        .gc_with(&oci_image::GcOptions::default().partials(true))
        .unwrap();
    assert_eq!(r.temp_files_removed, 1);
    assert!(!abandoned_path.exists());
    assert!(writer.path().exists());
    writer.write_all(b" download").unwrap();
    assert_eq!(writer.commit().unwrap(), 13);
    assert!(layout.has_blob(&live).unwrap());
}
