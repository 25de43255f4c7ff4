//! The registry client against a hostile registry (`support/hostile_registry.rs`: one
//! misbehaviour per repository, every request counted): where credentials go, how many
//! requests platform selection makes, which deadline ends a stalled transfer, what is
//! refused before it is downloaded, and that nothing invalid or incomplete is tagged.
//! Time is bounded by the client's deadlines, never asserted.
#![cfg(feature = "registry")]

mod common;
#[path = "support/hostile_registry.rs"]
mod hostile_registry;

use std::time::Duration;

use common::{assert_valid, layout};
use hostile_registry::*;
use oci_image::registry::{Client, Credentials, PullOptions, PushOptions, Reference};
use oci_image::{Error, Layout};

fn client() -> oci_image::registry::ClientBuilder {
    Client::builder()
        .auth_files(vec![])
        .backoff(Duration::from_millis(10))
        .retries(2)
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(10))
}

fn with_creds(b: oci_image::registry::ClientBuilder, h: &Hostile) -> Client {
    b.credentials(h.host(), Credentials::new(USER, PASSWORD))
        .build()
}

fn r(h: &Hostile, name_tag: &str) -> Reference {
    h.reference(name_tag).parse().unwrap()
}

fn blob_files(layout: &Layout) -> Vec<String> {
    let dir = layout.path().join("blobs/sha256");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn credential_leaks(seen: &[Seen]) -> Vec<Seen> {
    seen.iter()
        .filter(|s| {
            s.authorization().is_some()
                || s.headers
                    .values()
                    .any(|v| v.contains(TOKEN) || v.contains(PASSWORD))
        })
        .cloned()
        .collect()
}

// distribution-spec, "API": "the client SHOULD follow redirects"; RFC 9110 section 15.4 leaves
// credentials to the client. Ours go only to the origin (scheme, host, port) they were issued
// for: a 307 to another port of the same host gets neither the basic credentials nor the token.
#[test]
fn credentials_do_not_follow_a_redirect_to_another_port() {
    let elsewhere = Hostile::start();
    let h = Hostile::start();
    let img = Image::new(2, 4096, 1);
    for (name, auth) in [("basic", Auth::Basic), ("bearer", Auth::Bearer)] {
        h.add(
            name,
            Repo::new(
                auth,
                Misbehaviour::RedirectBlobs {
                    to: elsewhere.host(),
                },
            )
            .image("v1", &img),
        );
        elsewhere.add(
            name,
            Repo::new(Auth::Anonymous, Misbehaviour::None).image("v1", &img),
        );
        let (_d, dst) = layout();
        let pulled = with_creds(client(), &h)
            .pull(&r(&h, &format!("{name}:v1")), &dst, &PullOptions::default())
            .unwrap();
        assert_eq!(pulled.blobs_downloaded, 3);
        assert_valid(&dst);
        // The registry itself got them (the redirects came from an authenticated request)...
        assert!(h
            .requests_to(name)
            .iter()
            .any(|s| s.authorization().is_some()));
    }
    // ...and the other port never did.
    let other = elsewhere.seen();
    assert_eq!(other.len(), 6, "{other:#?}");
    assert!(credential_leaks(&other).is_empty(), "{other:#?}");
}

// A `Location` is a URL to follow (RFC 9110 section 10.2.2), never a path on this machine.
#[test]
fn file_and_other_schemes_in_locations_are_refused() {
    let h = Hostile::start();
    let img = Image::new(1, 1024, 2);
    for (i, loc) in ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://x:70/"]
        .into_iter()
        .enumerate()
    {
        let name = format!("loc{i}");
        h.add(
            &name,
            Repo::new(
                Auth::Anonymous,
                Misbehaviour::RedirectBlobsTo {
                    location: loc.into(),
                },
            )
            .image("v1", &img),
        );
        let (_d, dst) = layout();
        let err = client()
            .build()
            .pull(&r(&h, &format!("{name}:v1")), &dst, &PullOptions::default())
            .unwrap_err();
        match &err {
            Error::BadLocation { location, url, .. } => {
                assert_eq!(location, loc);
                assert!(url.contains("/blobs/sha256:"), "{err}");
            }
            other => panic!("{loc}: {other}"),
        }
        assert!(dst.tags().unwrap().is_empty());
    }
}

// distribution-spec "Pushing blobs": the upload `Location` "MAY be absolute"; credentials
// still go only to the registry's origin, and a `file:` location is refused.
#[test]
fn upload_locations_get_no_credentials_elsewhere_and_file_locations_are_refused() {
    let elsewhere = Hostile::start();
    let h = Hostile::start();
    let (_s, src) = layout();
    let d = common::image(&src, &oci_image::PlatformSpec::host().to_string(), false);
    src.tag("src", &d).unwrap();
    h.add(
        "up-other",
        Repo::new(
            Auth::Basic,
            Misbehaviour::UploadLocation {
                location: format!("http://{}/elsewhere/upload/1", elsewhere.host()),
            },
        ),
    );
    h.add(
        "up-file",
        Repo::new(
            Auth::Basic,
            Misbehaviour::UploadLocation {
                location: "file:///etc/passwd".into(),
            },
        ),
    );
    let c = with_creds(client(), &h);
    // The other origin answers 404 to the PUT: the push fails, after sending no credentials.
    let err = c
        .push(&src, "src", &r(&h, "up-other:v1"), &PushOptions::default())
        .unwrap_err();
    let other = elsewhere.seen();
    assert!(!other.is_empty(), "{err}");
    assert!(credential_leaks(&other).is_empty(), "{other:#?}");
    let err = c
        .push(&src, "src", &r(&h, "up-file:v1"), &PushOptions::default())
        .unwrap_err();
    assert!(
        matches!(&err, Error::BadLocation { location, .. } if location == "file:///etc/passwd"),
        "{err}"
    );
}

// image-index.md: "implementations SHOULD choose" among entries by platform; a manifest listed
// without one is judged by its config. Nested indexes whose entries all point to the next
// level cost one request per distinct index (a memo, as the local resolve has), not
// width^depth.
#[test]
fn platform_selection_over_nested_indexes_is_memoized() {
    let h = Hostile::start();
    let img = Image::new(1, 512, 3);
    let (width, depth) = (10usize, 6usize);
    let mut repo = Repo::new(Auth::Anonymous, Misbehaviour::None).image("leaf", &img);
    // The last level: `width` distinct indexes, each listing the image for the host.
    let mut level: Vec<Vec<u8>> = (0..width)
        .map(|i| {
            let mut idx: serde_json::Value = serde_json::from_slice(&index_json(&[(
                OCI_MANIFEST,
                &img.manifest,
                Some((host_os(), host_arch())),
            )]))
            .unwrap();
            idx["annotations"] = serde_json::json!({"n": i.to_string()});
            idx.to_string().into_bytes()
        })
        .collect();
    for d in 0..depth {
        for b in &level {
            repo = repo.manifest(None, OCI_INDEX, b.clone());
        }
        let entries: Vec<Entry<'_>> = level.iter().map(|b| (OCI_INDEX, &b[..], None)).collect();
        level = (0..width)
            .map(|i| {
                let mut idx: serde_json::Value =
                    serde_json::from_slice(&index_json(&entries)).unwrap();
                idx["annotations"] = serde_json::json!({"n": format!("{d}-{i}")});
                idx.to_string().into_bytes()
            })
            .collect();
    }
    repo = repo.manifest(Some("top"), OCI_INDEX, level[0].clone());
    h.add("nested", repo);
    let (_d, dst) = layout();
    let pulled = client()
        .build()
        .pull(&r(&h, "nested:top"), &dst, &PullOptions::default())
        .unwrap();
    assert_eq!(pulled.manifests[0].digest().to_string(), img.digest());
    let n = h.requests_to("nested").len();
    // top + width per level below it + the manifest + config + layer.
    assert!(n <= 1 + width * depth + 3, "{n} requests");
    assert_valid(&dst);
}

// The same cap as the local resolve: an index of 5000 manifests without a platform is refused
// after a bounded number of requests, leaves no blob behind, and says so in a short error.
#[test]
fn an_index_of_thousands_of_platformless_manifests_is_refused_cheaply() {
    let h = Hostile::start();
    let config = serde_json::json!({"architecture": "s390x", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []}})
    .to_string()
    .into_bytes();
    let mut repo = Repo::new(Auth::Anonymous, Misbehaviour::None).blob(config.clone());
    let mut manifests = Vec::new();
    for i in 0..5000u32 {
        let mut m: serde_json::Value =
            serde_json::from_slice(&manifest_json(&config, &[], None)).unwrap();
        m["annotations"] = serde_json::json!({"n": i.to_string()});
        manifests.push(m.to_string().into_bytes());
    }
    let entries: Vec<Entry<'_>> = manifests
        .iter()
        .map(|b| (OCI_MANIFEST, &b[..], None))
        .collect();
    for m in &manifests {
        repo = repo.manifest(None, OCI_MANIFEST, m.clone());
    }
    repo = repo.manifest(Some("wide"), OCI_INDEX, index_json(&entries));
    h.add("wide", repo);
    let (_d, dst) = layout();
    let err = client()
        .build()
        .pull(&r(&h, "wide:wide"), &dst, &PullOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("256"), "{msg}");
    assert!(msg.len() < 1000, "{} bytes: {msg}", msg.len());
    let n = h.requests_to("wide").len();
    assert!(n <= 1 + 256 + 1, "{n} requests");
    assert_eq!(blob_files(&dst), Vec::<String>::new());
    assert!(dst.tags().unwrap().is_empty());
}

// A registry that trickles a byte at a time is ended by the read timeout's minimum speed (and
// retried, resuming, as a cut connection is), then by the overall deadline; the error names
// the URL and the deadline.
#[test]
fn a_trickling_registry_is_ended_by_the_deadlines() {
    let h = Hostile::start();
    let img = Image::new(1, 64 << 10, 4);
    h.add(
        "slow",
        Repo::new(
            Auth::Anonymous,
            Misbehaviour::SlowBlobs {
                every: Duration::from_millis(20),
            },
        )
        .image("v1", &img),
    );
    let (_d, dst) = layout();
    let err = client()
        .read_timeout(Duration::from_secs(1))
        .retries(1)
        .build()
        .pull(&r(&h, "slow:v1"), &dst, &PullOptions::default())
        .unwrap_err();
    match &err {
        Error::Timeout {
            url, what, limit, ..
        } => {
            assert!(url.contains("/v2/slow/blobs/sha256:"), "{err}");
            assert_eq!(*what, "read timeout");
            assert_eq!(*limit, Duration::from_secs(1));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("read timeout of 1 s"), "{err}");
    // Two tries of the config (the first blob), no more.
    assert_eq!(h.requests_to("slow").len(), 1 + 2);
    assert!(dst.tags().unwrap().is_empty());

    // With retries to spare, the overall deadline ends it.
    h.clear_log();
    let err = client()
        .read_timeout(Duration::from_secs(1))
        .retries(1000)
        .deadline(Duration::from_secs(3))
        .build()
        .pull(&r(&h, "slow:v1"), &dst, &PullOptions::default())
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Timeout {
                what: "deadline",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("deadline of 3 s"), "{err}");
}

// A registry that accepts the connection and never answers: the request timeout, once (a
// manifest that did not come in that time is not asked for again).
#[test]
fn a_silent_registry_is_ended_by_the_request_timeout() {
    let h = Hostile::start();
    h.add(
        "silent",
        Repo::new(Auth::Anonymous, Misbehaviour::SilentManifests),
    );
    let (_d, dst) = layout();
    let err = client()
        .request_timeout(Duration::from_secs(1))
        .build()
        .pull(&r(&h, "silent:v1"), &dst, &PullOptions::default())
        .unwrap_err();
    match &err {
        Error::Timeout { url, what, .. } => {
            assert_eq!(*what, "request timeout");
            assert_eq!(url, &format!("http://{}/v2/silent/manifests/v1", h.host()));
        }
        other => panic!("{other}"),
    }
    assert_eq!(h.requests_to("silent").len(), 1);
}

// config.md is read into memory with a 32 MiB cap (`MAX_CONFIG_SIZE`): a config whose
// descriptor declares 1 GiB is refused before any byte of it (or of a layer) is asked for.
#[test]
fn a_huge_declared_config_is_refused_before_downloading() {
    let h = Hostile::start();
    let img = Image::new(1, 1024, 5);
    let lie = manifest_json(
        &img.config,
        &[(
            OCI_LAYER.into(),
            sha256(&img.layers[0]),
            img.layers[0].len() as u64,
        )],
        Some(1 << 30),
    );
    h.add(
        "huge",
        Repo::new(Auth::Anonymous, Misbehaviour::None)
            .manifest(Some("v1"), OCI_MANIFEST, lie)
            .blob(img.config.clone())
            .blob(img.layers[0].clone()),
    );
    let (_d, dst) = layout();
    let err = client()
        .build()
        .pull(&r(&h, "huge:v1"), &dst, &PullOptions::default())
        .unwrap_err();
    assert!(
        matches!(&err, Error::TooLarge { size, .. } if *size == 1 << 30),
        "{err}"
    );
    let blob_requests: Vec<_> = h
        .requests_to("huge")
        .into_iter()
        .filter(|s| s.path.contains("/blobs/"))
        .collect();
    assert!(blob_requests.is_empty(), "{blob_requests:#?}");
    assert!(dst.tags().unwrap().is_empty());
}

// manifest.md / config.md: `rootfs.diff_ids` pairs with `layers`. An image whose config does not
// pair with its layers is refused before its layers are downloaded, and never tagged.
#[test]
fn an_invalid_image_is_refused_before_its_layers_and_never_tagged() {
    let h = Hostile::start();
    let layer = tar(&[("a", b"a".to_vec())]);
    // 0 layers, 2 diff_ids.
    let none = Image::with(
        vec![],
        vec![sha256(b"x"), sha256(b"y")],
        host_os(),
        host_arch(),
    );
    // 1 layer, 2 diff_ids.
    let mut one = Image::with(
        vec![layer.clone()],
        vec![sha256(&layer)],
        host_os(),
        host_arch(),
    );
    one.config = serde_json::json!({"architecture": host_arch(), "os": host_os(),
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer), sha256(b"y")]}})
    .to_string()
    .into_bytes();
    one.manifest = manifest_json(
        &one.config,
        &[(OCI_LAYER.into(), sha256(&layer), layer.len() as u64)],
        None,
    );
    for (name, img) in [("zero", &none), ("mismatch", &one)] {
        h.add(
            name,
            Repo::new(Auth::Anonymous, Misbehaviour::None).image("v1", img),
        );
        let (_d, dst) = layout();
        let err = client()
            .build()
            .pull(&r(&h, &format!("{name}:v1")), &dst, &PullOptions::default())
            .unwrap_err();
        match &err {
            Error::InvalidImage { problems, .. } => {
                assert!(problems.iter().any(|p| p.contains("diff_ids")), "{err}")
            }
            other => panic!("{name}: {other}"),
        }
        assert!(dst.tags().unwrap().is_empty());
        let layer_gets = h
            .requests_to(name)
            .iter()
            .filter(|s| s.path.ends_with(&sha256(&layer)))
            .count();
        assert_eq!(layer_gets, 0, "{name}");
    }
}

// A blob already in the store is skipped only when its content verifies: a corrupted one of
// the right size is downloaded again and the pull leaves a valid layout.
#[test]
fn a_corrupt_blob_of_the_right_size_is_repaired() {
    let h = Hostile::start();
    let img = Image::new(2, 8192, 6);
    h.add(
        "fix",
        Repo::new(Auth::Anonymous, Misbehaviour::None).image("v1", &img),
    );
    let (_d, dst) = layout();
    let c = client().build();
    c.pull(&r(&h, "fix:v1"), &dst, &PullOptions::default())
        .unwrap();
    let victim = sha256(&img.layers[1]);
    let path = dst
        .blob_path(&oci_image::parse_digest(&victim).unwrap())
        .unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[700] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    h.clear_log();
    let again = c
        .pull(&r(&h, "fix:v1"), &dst, &PullOptions::default())
        .unwrap();
    assert_eq!((again.blobs_downloaded, again.blobs_present), (1, 2));
    let gets: Vec<String> = h
        .requests_to("fix")
        .into_iter()
        .filter(|s| s.path.contains("/blobs/"))
        .map(|s| s.path)
        .collect();
    assert_eq!(gets, vec![format!("/v2/fix/blobs/{victim}")]);
    assert_valid(&dst);
}

// Blobs served with other bytes: a digest mismatch, nothing tagged, nothing half-written.
#[test]
fn lying_blobs_are_refused_and_nothing_is_tagged() {
    let h = Hostile::start();
    let img = Image::new(1, 2048, 7);
    h.add(
        "liar",
        Repo::new(Auth::Anonymous, Misbehaviour::LyingBlobs).image("v1", &img),
    );
    let (_d, dst) = layout();
    let err = client()
        .build()
        .pull(&r(&h, "liar:v1"), &dst, &PullOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(dst.tags().unwrap().is_empty());
    assert_eq!(blob_files(&dst), Vec::<String>::new());
}

// Threads of one process: a gc loop beside a pull never takes what the pull wrote before it
// tagged it (the processes version is in examples/tests/ocibox_faults.rs).
#[test]
fn a_gc_loop_beside_pulls_never_breaks_them() {
    let h = Hostile::start();
    let img = Image::new(6, 64 << 10, 8);
    h.add(
        "big",
        Repo::new(Auth::Anonymous, Misbehaviour::None).image("v1", &img),
    );
    for round in 0..5 {
        let (_d, dst) = layout();
        let done = std::sync::atomic::AtomicBool::new(false);
        let pulled = std::thread::scope(|s| {
            let t = s.spawn(|| {
                let r = client().concurrency(2).build().pull(
                    &r(&h, "big:v1"),
                    &dst,
                    &PullOptions::default().tag("big"),
                );
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                r
            });
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                dst.gc().unwrap();
            }
            t.join().unwrap()
        });
        pulled.unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_valid(&dst);
        assert_eq!(dst.resolve("big", None).unwrap().layers.len(), 6);
    }
}
