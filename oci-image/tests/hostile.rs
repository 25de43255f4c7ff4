//! A corpus of hostile layouts. Each must give its own clear error, never a panic, and never
//! hand out unverified bytes.

mod common;

use std::fs;

use common::*;
use oci_image::spec::image::{Descriptor, MediaType};
use oci_image::{Error, Layout, PlatformSpec};
use serde_json::json;

fn amd64() -> PlatformSpec {
    "linux/amd64".parse().unwrap()
}

/// Writes `index.json` with raw descriptors (bypassing every check of the write side).
fn raw_index(layout: &Layout, manifests: serde_json::Value) {
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    fs::write(layout.path().join("index.json"), index.to_string()).unwrap();
}

fn tagged(desc: serde_json::Value, tag: &str) -> serde_json::Value {
    let mut d = desc;
    d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    d
}

fn desc_json(d: &Descriptor) -> serde_json::Value {
    serde_json::to_value(d).unwrap()
}

fn put_raw(layout: &Layout, media_type: &str, bytes: &[u8]) -> Descriptor {
    layout
        .put_blob(MediaType::Other(media_type.into()), bytes)
        .unwrap()
}

/// Every hostile layout must also make `validate` report an error (and not panic).
fn assert_invalid(layout: &Layout) {
    let report = layout.validate();
    assert!(!report.is_valid(), "validate found nothing wrong");
}

#[test]
fn truncated_blob() {
    let (_d, layout) = layout();
    let m = image(&layout, "linux/amd64", false);
    layout.tag("t", &m).unwrap();
    let img = layout.resolve("t", Some(&amd64())).unwrap();
    let layer = &img.layers[0].descriptor;
    let path = layout.blob_path(layer.digest()).unwrap();
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = layout.open_blob(layer).unwrap_err();
    assert!(matches!(e, Error::SizeMismatch { .. }), "{e}");
    // The manifest itself truncated.
    let mpath = layout.blob_path(m.digest()).unwrap();
    let mbytes = fs::read(&mpath).unwrap();
    fs::write(&mpath, &mbytes[..10]).unwrap();
    let e = layout.resolve("t", Some(&amd64())).unwrap_err();
    assert!(matches!(e, Error::SizeMismatch { .. }), "{e}");
    assert_invalid(&layout);
}

#[test]
fn altered_blob_of_the_right_size() {
    let (_d, layout) = layout();
    let m = image(&layout, "linux/amd64", false);
    layout.tag("t", &m).unwrap();
    let img = layout.resolve("t", Some(&amd64())).unwrap();
    let config = img.manifest.config();
    let path = layout.blob_path(config.digest()).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let i = bytes.iter().position(|&b| b == b'a').unwrap();
    bytes[i] = b'b';
    fs::write(&path, &bytes).unwrap();
    let e = layout.resolve("t", Some(&amd64())).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    assert!(e.to_string().contains(&config.digest().to_string()));
    assert_invalid(&layout);
}

#[test]
fn swapped_blobs() {
    let (_d, layout) = layout();
    let a = image(&layout, "linux/amd64", false);
    let b = image(&layout, "linux/arm64", false);
    layout.tag("a", &a).unwrap();
    let pa = layout.blob_path(a.digest()).unwrap();
    let pb = layout.blob_path(b.digest()).unwrap();
    let (ba, bb) = (fs::read(&pa).unwrap(), fs::read(&pb).unwrap());
    assert_eq!(ba.len(), bb.len(), "same-shaped manifests");
    fs::write(&pa, &bb).unwrap();
    fs::write(&pb, &ba).unwrap();
    let e = layout.resolve("a", Some(&amd64())).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    assert_invalid(&layout);
}

#[test]
fn right_digest_wrong_declared_size() {
    let (_d, layout) = layout();
    let m = image(&layout, "linux/amd64", false);
    let mut j = desc_json(&m);
    j["size"] = json!(m.size() + 1);
    raw_index(&layout, json!([tagged(j, "t")]));
    let e = layout.resolve("t", Some(&amd64())).unwrap_err();
    assert!(
        matches!(e, Error::SizeMismatch { expected, .. } if expected == m.size() + 1),
        "{e}"
    );
    assert_invalid(&layout);
}

#[test]
fn huge_declared_sizes_are_refused_before_reading() {
    let (_d, layout) = layout();
    let m = image(&layout, "linux/amd64", false);
    let mut j = desc_json(&m);
    j["size"] = json!(1u64 << 62);
    raw_index(&layout, json!([tagged(j, "t")]));
    let e = layout.resolve("t", Some(&amd64())).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    // A layer that declares a huge size fails at open, before any byte is handed out.
    let img = {
        let (_d2, l2) = layout_with_image();
        let img = l2.resolve("t", Some(&amd64())).unwrap();
        let mut d = img.layers[0].descriptor.clone();
        d.set_size(u64::MAX);
        assert!(matches!(l2.open_blob(&d), Err(Error::SizeMismatch { .. })));
        img
    };
    assert_eq!(img.layers.len(), 1);
    assert_invalid(&layout);
}

fn layout_with_image() -> (tempfile::TempDir, Layout) {
    let (d, layout) = layout();
    let m = image(&layout, "linux/amd64", false);
    layout.tag("t", &m).unwrap();
    (d, layout)
}

#[test]
fn descriptor_media_type_lies() {
    let (_d, layout) = layout();
    let m = image(&layout, "linux/amd64", false);
    let idx = index(&layout, vec![m.clone()]);
    // A manifest announced as an index, and an index announced as a manifest. Neither has a
    // mediaType field, so the shape must give them away.
    let strip = |d: &Descriptor| {
        let path = layout.blob_path(d.digest()).unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("mediaType");
        let bytes = serde_json::to_vec(&v).unwrap();
        put_raw(&layout, "application/octet-stream", &bytes)
    };
    let (m2, i2) = (strip(&m), strip(&idx));
    let mut as_index = desc_json(&m2);
    as_index["mediaType"] = json!("application/vnd.oci.image.index.v1+json");
    let mut as_manifest = desc_json(&i2);
    as_manifest["mediaType"] = json!("application/vnd.oci.image.manifest.v1+json");
    raw_index(
        &layout,
        json!([tagged(as_index, "i"), tagged(as_manifest, "m")]),
    );
    for tag in ["i", "m"] {
        let e = layout.resolve(tag, Some(&amd64())).unwrap_err();
        assert!(matches!(e, Error::MediaTypeMismatch { .. }), "{tag}: {e}");
    }
    // A document whose own mediaType contradicts its descriptor.
    let mut lie = desc_json(&m);
    lie["mediaType"] = json!(oci_image::media_type::DOCKER_MANIFEST);
    raw_index(&layout, json!([tagged(lie, "d")]));
    let e = layout.resolve("d", Some(&amd64())).unwrap_err();
    assert!(matches!(e, Error::MediaTypeMismatch { .. }), "{e}");
    assert_invalid(&layout);
}

#[test]
fn config_that_is_not_a_config() {
    let (_d, layout) = layout();
    let layer = put_raw(
        &layout,
        "application/vnd.oci.image.layer.v1.tar",
        &layer_tar("f", b"x"),
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc_json(&layer),
        "layers": [desc_json(&layer)],
    });
    let m = put_raw(
        &layout,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.to_string().as_bytes(),
    );
    raw_index(&layout, json!([tagged(desc_json(&m), "t")]));
    let e = layout.image(&m).unwrap_err();
    assert!(matches!(e, Error::UnexpectedMediaType { .. }), "{e}");
}

#[test]
fn unknown_and_unregistered_algorithms() {
    let (_d, layout) = layout();
    for digest in [
        format!("sha384:{}", "a".repeat(96)),
        "md5:d41d8cd98f00b204e9800998ecf8427e".to_string(),
        "blake3:0000000000000000000000000000000000000000000000000000000000000000".to_string(),
    ] {
        let d = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 10});
        raw_index(&layout, json!([tagged(d, "t")]));
        let e = layout.resolve("t", Some(&amd64())).unwrap_err();
        assert!(
            matches!(e, Error::UnsupportedAlgorithm { .. }),
            "{digest}: {e}"
        );
        assert_invalid(&layout);
        let e = layout.resolve(&digest, None).unwrap_err();
        assert!(
            matches!(e, Error::UnsupportedAlgorithm { .. }),
            "{digest}: {e}"
        );
    }
}

#[test]
fn path_traversal_in_digests() {
    let (dir, layout) = layout();
    fs::write(dir.path().join("secret"), "x").unwrap();
    for digest in [
        "sha256:../../secret",
        "sha256:/etc/passwd",
        "../sha256:aaaa",
        "sha256:..",
        "sha256:aa/../../secret",
    ] {
        let d = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1});
        raw_index(&layout, json!([tagged(d, "t")]));
        let e = layout.resolve("t", None).unwrap_err();
        match &e {
            Error::Json { file, field, .. } => {
                assert_eq!(file, "index.json");
                assert_eq!(field, "manifests[0].digest", "{e}");
            }
            other => panic!("{digest}: {other}"),
        }
        assert!(layout.resolve(digest, None).is_err());
        assert_invalid(&layout);
    }
}

#[test]
fn symlinked_blob_is_refused() {
    let (_d, layout) = layout_with_image();
    let img = layout.resolve("t", Some(&amd64())).unwrap();
    let path = layout.blob_path(img.layers[0].descriptor.digest()).unwrap();
    fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
    let e = layout.open_blob(&img.layers[0].descriptor).unwrap_err();
    assert!(matches!(e, Error::NotARegularFile { .. }), "{e}");
    assert_invalid(&layout);
}

#[test]
fn deeply_nested_indexes() {
    let (_d, layout) = layout();
    let mut d = image(&layout, "linux/amd64", true);
    for _ in 0..(oci_image::MAX_INDEX_DEPTH + 2) {
        d = index(&layout, vec![d]);
    }
    layout.tag("deep", &d).unwrap();
    let e = layout.resolve("deep", Some(&amd64())).unwrap_err();
    assert!(matches!(e, Error::NestingTooDeep { .. }), "{e}");
    assert_invalid(&layout);
}

#[test]
fn wide_fan_out_of_shared_indexes_is_bounded() {
    // Each level lists the level below twice: 2^depth paths but only `depth` documents.
    let (_d, layout) = layout();
    let mut d = image(&layout, "linux/amd64", true);
    for _ in 0..(oci_image::MAX_INDEX_DEPTH - 1) {
        d = index(&layout, vec![d.clone(), d.clone(), d]);
    }
    layout.tag("wide", &d).unwrap();
    assert!(layout.resolve("wide", Some(&amd64())).is_ok());
    assert!(layout.validate().is_valid());
}

#[test]
fn cycles_between_indexes() {
    // Content addressing makes a real cycle impossible without a hash collision, so a hostile
    // layout can only fake one by storing blobs under names that do not match their content.
    // Verification must catch that before the cycle is followed.
    let (_d, layout) = layout();
    let fake_a = oci_image::sha256_digest(b"a");
    let fake_b = oci_image::sha256_digest(b"b");
    let idx = |target: &oci_image::spec::image::Digest, size: usize| {
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                              "digest": target.to_string(), "size": size}]})
        .to_string()
    };
    // Sizes must agree so that only the digest check can catch the lie.
    let a_len = idx(&fake_b, 1000).len();
    let a = idx(&fake_b, a_len);
    let b = idx(&fake_a, a_len);
    assert_eq!(a.len(), b.len());
    fs::write(layout.blob_path(&fake_a).unwrap(), &a).unwrap();
    fs::write(layout.blob_path(&fake_b).unwrap(), &b).unwrap();
    raw_index(
        &layout,
        json!([tagged(
            json!({"mediaType": "application/vnd.oci.image.index.v1+json",
                             "digest": fake_a.to_string(), "size": a.len()}),
            "loop"
        )]),
    );
    let e = layout.resolve("loop", Some(&amd64())).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    assert_invalid(&layout);
}

#[test]
fn malformed_documents_name_the_field() {
    let (_d, layout) = layout();
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (
            json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": 5, "layers": []}),
            "config",
        ),
        (
            json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:zz", "size": 2}, "layers": []}),
            "config.digest",
        ),
        (
            json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": -2}, "layers": []}),
            "config.size",
        ),
        (
            json!({"schemaVersion": 3, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}),
            "schemaVersion",
        ),
    ];
    for (doc, field) in cases {
        let m = put_raw(
            &layout,
            "application/vnd.oci.image.manifest.v1+json",
            doc.to_string().as_bytes(),
        );
        let e = layout.image(&m).unwrap_err();
        match &e {
            Error::Json { field: f, file, .. } => {
                assert_eq!(f, field, "{e}");
                assert!(file.starts_with("blobs/sha256/"), "{e}");
            }
            other => panic!("{field}: {other}"),
        }
    }
    for junk in [
        &b""[..],
        b"{",
        b"null",
        b"[]",
        b"\xff\xfe",
        b"{\"schemaVersion\": 2}",
    ] {
        let m = put_raw(&layout, "application/vnd.oci.image.manifest.v1+json", junk);
        assert!(layout.image(&m).is_err());
        let i = put_raw(&layout, "application/vnd.oci.image.index.v1+json", junk);
        assert!(layout.read_index(&i).is_err());
    }
}

#[test]
fn schema1_is_refused_clearly() {
    let (_d, layout) = layout();
    let doc = json!({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": [], "history": []});
    let m = put_raw(
        &layout,
        oci_image::media_type::DOCKER_SCHEMA1_SIGNED,
        doc.to_string().as_bytes(),
    );
    raw_index(&layout, json!([tagged(desc_json(&m), "old")]));
    let e = layout.resolve("old", None).unwrap_err();
    assert!(matches!(e, Error::Schema1 { .. }), "{e}");
    assert_invalid(&layout);
}

#[test]
fn diff_ids_that_do_not_pair_with_layers() {
    let (_d, layout) = layout();
    let tar = layer_tar("f", b"x");
    let layer = layout.put_blob(MediaType::ImageLayer, &tar).unwrap();
    for (diff_ids, expect_count) in [
        (json!([]), true),
        (
            json!([oci_image::sha256_digest(&tar).to_string(), "sha256:00"]),
            true,
        ),
        (json!(["not-a-digest"]), false),
    ] {
        let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}});
        let config = put_raw(
            &layout,
            "application/vnd.oci.image.config.v1+json",
            config.to_string().as_bytes(),
        );
        let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                              "config": desc_json(&config), "layers": [desc_json(&layer)]});
        let m = put_raw(
            &layout,
            "application/vnd.oci.image.manifest.v1+json",
            manifest.to_string().as_bytes(),
        );
        raw_index(&layout, json!([tagged(desc_json(&m), "t")]));
        let e = layout.resolve("t", Some(&amd64())).unwrap_err();
        if expect_count {
            assert!(matches!(e, Error::LayerCountMismatch { .. }), "{e}");
        } else {
            assert!(
                matches!(&e, Error::Json { field, .. } if field == "rootfs.diff_ids[0]"),
                "{e}"
            );
        }
        assert_invalid(&layout);
    }
}

#[test]
fn broken_index_json() {
    let (dir, layout) = layout();
    for junk in [
        "",
        "{",
        "[]",
        r#"{"schemaVersion": 1, "manifests": []}"#,
        r#"{"schemaVersion": 2}"#,
    ] {
        fs::write(dir.path().join("index.json"), junk).unwrap();
        assert!(layout.resolve("x", None).is_err(), "{junk:?}");
        assert_invalid(&layout);
    }
    // Oversized index.json is refused without being parsed.
    let big = vec![b' '; (oci_image::MAX_MANIFEST_SIZE + 1) as usize];
    fs::write(dir.path().join("index.json"), big).unwrap();
    assert!(matches!(layout.index(), Err(Error::Invalid { .. })));
}

#[test]
fn empty_descriptor_rules() {
    let (_d, layout) = layout();
    let subject = image(&layout, "linux/amd64", false);
    let empty = layout.put_blob(MediaType::EmptyJSON, b"{}").unwrap();
    // config.mediaType empty without artifactType: manifest.md says artifactType MUST be set.
    let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "config": desc_json(&empty), "layers": [desc_json(&empty)], "subject": desc_json(&subject)});
    let m = put_raw(
        &layout,
        "application/vnd.oci.image.manifest.v1+json",
        m.to_string().as_bytes(),
    );
    // An "empty" descriptor that is not empty.
    let mut fake_empty = desc_json(&put_raw(&layout, "text/plain", b"{ }"));
    fake_empty["mediaType"] = json!("application/vnd.oci.empty.v1+json");
    let m2 = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "artifactType": "application/x.test", "config": fake_empty, "layers": []});
    let m2 = put_raw(
        &layout,
        "application/vnd.oci.image.manifest.v1+json",
        m2.to_string().as_bytes(),
    );
    raw_index(&layout, json!([desc_json(&m), desc_json(&m2)]));
    let report = layout.validate();
    let fields: Vec<&str> = report.errors().map(|p| p.field.as_str()).collect();
    assert!(fields.contains(&"artifactType"), "{:?}", report.problems);
    assert!(fields.contains(&"config"), "{:?}", report.problems);
}
