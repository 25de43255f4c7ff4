//! Flat unpacks: every entry type, whiteouts, replacement rules, compression, verification,
//! atomicity, limits, progress and id mapping.

mod common;

use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use oci_unpack::{Error, Limits, Unpacker};

fn unpack(layers: &[Vec<u8>], c: Comp) -> (tempfile::TempDir, std::path::PathBuf) {
    let w = workdir();
    let (layout, image) = image(&w.path().join("layout"), layers, c);
    let target = w.path().join("rootfs");
    Unpacker::new().unpack(&layout, &image, &target).unwrap();
    (w, target)
}

fn base_layer() -> Vec<u8> {
    let mut t = Tar::new();
    t.dir("etc/", 0o755)
        .file("etc/hostname", b"box\n", 0o644)
        .file_owned("etc/owned", b"x", 0o640, 1000, 2000)
        .dir("bin/", 0o755)
        .file("bin/su", b"#!su", 0o4755)
        .file("bin/wall", b"#!wall", 0o2755)
        .dir("tmp/", 0o1777)
        .symlink("bin/sh", "/bin/busybox")
        .file("bin/busybox", b"busybox", 0o755)
        .hardlink("bin/ls", "bin/busybox")
        .fifo("run-fifo", 0o600)
        .chardev("dev-null", 1, 3)
        .blockdev("dev-loop", 7, 0)
        .file_x(
            "bin/ping",
            b"ping",
            0o755,
            &[
                (
                    "security.capability",
                    &[
                        1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    ],
                ),
                ("user.note", b"hello"),
            ],
        )
        .long_gnu(&format!("deep/{}/file", "d".repeat(150)), b"gnu long")
        .long_pax(&format!("pax/{}/file", "p".repeat(150)), b"pax long");
    t.bytes()
}

#[test]
fn every_entry_type_lands_with_its_attributes() {
    for c in [Comp::None, Comp::Gzip, Comp::Zstd] {
        let (_w, root) = unpack(&[base_layer()], c);
        let s = snapshot(&root);
        let n = |p: &str| {
            s.get(p)
                .unwrap_or_else(|| panic!("{p} missing from {:?}", s.keys()))
        };
        assert_eq!(n("etc/hostname").sha256, snapshot_sha(b"box\n"));
        assert_eq!(
            (n("etc/owned").uid, n("etc/owned").gid, n("etc/owned").mode),
            (1000, 2000, 0o640)
        );
        assert_eq!(n("bin/su").mode, 0o4755);
        assert_eq!(n("bin/wall").mode, 0o2755);
        assert_eq!(n("tmp").mode, 0o1777);
        assert_eq!(n("bin/sh").target.as_deref(), Some("/bin/busybox"));
        assert_eq!(n("bin/ls").link_group, n("bin/busybox").link_group);
        assert!(n("bin/ls").link_group.is_some());
        assert_eq!(n("run-fifo").kind, 'p');
        assert_eq!(
            (n("dev-null").kind, n("dev-null").rdev),
            ('c', rustix::fs::makedev(1, 3))
        );
        assert_eq!(
            (n("dev-loop").kind, n("dev-loop").rdev),
            ('b', rustix::fs::makedev(7, 0))
        );
        assert_eq!(
            n("bin/ping").xattrs.get("user.note").map(Vec::as_slice),
            Some(&b"hello"[..])
        );
        assert!(n("bin/ping").xattrs.contains_key("security.capability"));
        assert_eq!(
            n(&format!("deep/{}/file", "d".repeat(150))).sha256,
            snapshot_sha(b"gnu long")
        );
        let pax = std::fs::metadata(root.join(format!("pax/{}/file", "p".repeat(150)))).unwrap();
        assert_eq!((pax.mtime(), pax.mtime_nsec()), (MTIME as i64, 500_000_000));
        assert_eq!(n("etc/hostname").mtime, Some(MTIME as i64));
        // Directory times are set after their children.
        assert_eq!(
            std::fs::metadata(root.join("etc")).unwrap().mtime(),
            MTIME as i64
        );
    }
}

fn snapshot_sha(b: &[u8]) -> Option<String> {
    use sha2::Digest;
    Some(hex::encode(sha2::Sha256::digest(b)))
}

#[test]
fn whiteouts_and_opaque_directories() {
    let mut l1 = Tar::new();
    l1.file("file1", b"1", 0o644)
        .dir("a/", 0o755)
        .file("a/file2", b"2", 0o644)
        .dir("b/", 0o755)
        .file("b/x", b"x", 0o644)
        .dir("c/", 0o755)
        .file("c/file3", b"3", 0o644)
        .dir("bin/", 0o755)
        .file("bin/my-app-binary", b"b", 0o755)
        .dir("bin/tools/", 0o755)
        .file("bin/tools/one", b"1", 0o755)
        .dir("o/", 0o755)
        .dir("o/b/", 0o755)
        .dir("o/b/c/", 0o755)
        .file("o/b/c/bar", b"bar", 0o644);
    // layer.md "Whiteouts" and "Opaque Whiteout" examples; the second opaque comes after the
    // entries it must not hide.
    let mut l2 = Tar::new();
    l2.whiteout(".wh.file1")
        .whiteout("a/.wh.file2")
        .whiteout(".wh.b")
        .file("file4", b"4", 0o644)
        .dir("bin/", 0o755)
        .whiteout("bin/.wh..wh..opq")
        .file("bin/new", b"n", 0o755)
        .dir("o/", 0o755)
        .dir("o/b/", 0o755)
        .dir("o/b/c/", 0o755)
        .file("o/b/c/foo", b"foo", 0o644)
        .whiteout("o/.wh..wh..opq")
        // AUFS metadata is skipped, not created.
        .whiteout(".wh..wh.plnk");
    let (_w, root) = unpack(&[l1.bytes(), l2.bytes()], Comp::Gzip);
    let keys: Vec<String> = snapshot(&root).into_keys().collect();
    assert_eq!(
        keys,
        [
            "a",
            "bin",
            "bin/new",
            "c",
            "c/file3",
            "file4",
            "o",
            "o/b",
            "o/b/c",
            "o/b/c/foo"
        ]
    );
}

#[test]
fn whiteouts_never_hide_their_own_layer() {
    let mut l1 = Tar::new();
    l1.dir("d/", 0o755)
        .file("d/lower", b"l", 0o644)
        .file("f", b"lower", 0o644);
    let mut l2 = Tar::new();
    // The layer writes f and d/upper, and also whites out f and d: only lower content goes.
    l2.file("f", b"upper", 0o644)
        .dir("d/", 0o755)
        .file("d/upper", b"u", 0o644)
        .whiteout(".wh.f")
        .whiteout(".wh.d");
    let (_w, root) = unpack(&[l1.bytes(), l2.bytes()], Comp::None);
    assert_eq!(std::fs::read(root.join("f")).unwrap(), b"upper");
    assert!(root.join("d/upper").exists());
    assert!(!root.join("d/lower").exists());
}

#[test]
fn replacement_rules_and_duplicates() {
    let mut l1 = Tar::new();
    l1.dir("dir2file/", 0o755)
        .file("dir2file/child", b"c", 0o644)
        .file("file2dir", b"f", 0o644)
        .symlink("link2dir", "/etc")
        .dir("keep/", 0o700)
        .file("keep/child", b"k", 0o644);
    let mut l2 = Tar::new();
    l2.file("dir2file", b"now a file", 0o600)
        .dir("file2dir/", 0o750)
        .dir("link2dir/", 0o755)
        .dir_owned("keep/", 0o755, 5, 6)
        .file("dup", b"first", 0o644)
        .file("dup", b"second", 0o600);
    let (_w, root) = unpack(&[l1.bytes(), l2.bytes()], Comp::Zstd);
    let s = snapshot(&root);
    assert_eq!(s["dir2file"].kind, 'f');
    assert_eq!(s["file2dir"].kind, 'd');
    assert_eq!(s["file2dir"].mode, 0o750);
    assert_eq!(s["link2dir"].kind, 'd');
    // A directory over a directory keeps its children and takes the entry's attributes.
    assert_eq!(
        (s["keep"].mode, s["keep"].uid, s["keep"].gid),
        (0o755, 5, 6)
    );
    assert!(s.contains_key("keep/child"));
    assert_eq!(std::fs::read(root.join("dup")).unwrap(), b"second");
    assert_eq!(s["dup"].mode, 0o600);
}

#[test]
fn sparse_files_keep_their_holes() {
    // GNU tar writes sparse entries; the tar crate's builder does not, so use GNU tar.
    let w = workdir();
    let src = w.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let f = std::fs::File::create(src.join("sparse")).unwrap();
    f.set_len(64 << 20).unwrap();
    use std::io::{Seek, SeekFrom, Write};
    let mut f = f;
    f.seek(SeekFrom::Start(32 << 20)).unwrap();
    f.write_all(b"middle").unwrap();
    drop(f);
    let tarball = w.path().join("l.tar");
    let ok = std::process::Command::new("tar")
        .args(["--sparse", "--format=gnu", "-cf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg("sparse")
        .status()
        .unwrap();
    assert!(ok.success());
    let (_w2, root) = unpack(&[std::fs::read(&tarball).unwrap()], Comp::Gzip);
    let m = std::fs::metadata(root.join("sparse")).unwrap();
    assert_eq!(m.len(), 64 << 20);
    assert!(
        m.blocks() * 512 < 1 << 20,
        "holes were filled: {} blocks",
        m.blocks()
    );
    let data = std::fs::read(root.join("sparse")).unwrap();
    assert_eq!(&data[32 << 20..(32 << 20) + 6], b"middle");
}

#[test]
fn pax_sparse_files_are_refused_not_written_wrong() {
    // GNU tar's PAX sparse format (GNU.sparse.* records, the map inside the data) is not
    // decoded by the tar crate: the layer must fail clearly rather than write the map as content.
    let w = workdir();
    let scratch = workdir();
    let src = scratch.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let f = std::fs::File::create(src.join("sparse")).unwrap();
    f.set_len(8 << 20).unwrap();
    drop(f);
    let tarball = scratch.path().join("l.tar");
    let ok = std::process::Command::new("tar")
        .args(["--sparse", "--format=pax", "-cf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg("sparse")
        .status()
        .unwrap();
    assert!(ok.success());
    let (layout, image) = image(
        &w.path().join("layout"),
        &[std::fs::read(&tarball).unwrap()],
        Comp::None,
    );
    let e = unpack_fails(&layout, &image, w.path());
    assert!(matches!(e, Error::InvalidEntry { .. }), "{e}");
    assert!(e.to_string().contains("PAX sparse"), "{e}");
}

/// image-spec layer.md: "`application/vnd.oci.image.layer.v1.tar+gzip` represents an
/// `application/vnd.oci.image.layer.v1.tar` payload which has been compressed with gzip": the
/// media type decides the compression. A gzip blob labelled as a plain tar (and a plain tar
/// labelled gzip) is refused with both named; a lenient unpacker follows the bytes.
#[test]
fn compression_is_the_media_types() {
    let w = workdir();
    let mut t = Tar::new();
    t.file("x", b"x", 0o644);
    let tar = t.bytes();
    let diff_id = oci_image::sha256_digest(&tar);
    let layout = oci_image::Layout::create(w.path().join("layout")).unwrap();
    use oci_image::spec::image::MediaType;
    let cases = [
        (Comp::Gzip, MediaType::ImageLayer, "gzip"),
        (Comp::Zstd, MediaType::ImageLayerGzip, "zstd"),
        (Comp::None, MediaType::ImageLayerZstd, "an uncompressed tar"),
    ];
    for (i, (comp, label, detected)) in cases.into_iter().enumerate() {
        let blob = compress(&tar, comp);
        let d = layout.put_blob(label.clone(), &blob).unwrap();
        let root = w.path().join(format!("root{i}"));
        std::fs::create_dir(&root).unwrap();
        let e = Unpacker::new()
            .apply_layer(&root, &blob[..], &d, Some(&diff_id))
            .unwrap_err();
        assert!(matches!(e, Error::CompressionMismatch { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&label.to_string()) && msg.contains(detected),
            "{msg}"
        );
        assert!(!root.join("x").exists());
        Unpacker::new()
            .lenient(true)
            .apply_layer(&root, &blob[..], &d, Some(&diff_id))
            .unwrap();
        assert_eq!(std::fs::read(root.join("x")).unwrap(), b"x");
    }
}

/// Nesting deeper than the old fixed cap of 256 is what real images may hold: the default
/// limit is PATH_MAX's, a lower one is an option. Removing such a tree (a whiteout of its top
/// in the next layer) holds two descriptors, not one per level: the test runs itself again in
/// a child allowed 200 open files.
#[test]
fn deep_nesting_within_path_max_unpacks() {
    let deep = "d/".repeat(600);
    if let Some(dir) = std::env::var_os("DEEP_NESTING_CHILD") {
        let dir = std::path::PathBuf::from(dir);
        let layout = oci_image::Layout::open(dir.join("layout2")).unwrap();
        let image = layout.resolve("latest", None).unwrap();
        Unpacker::new()
            .unpack(&layout, &image, dir.join("whited"))
            .unwrap();
        return;
    }
    let w = workdir();
    let mut t = Tar::new();
    t.long_pax(&format!("{deep}file"), b"deep");
    let deep_layer = t.bytes();
    let (layout, image) = image(
        &w.path().join("layout"),
        std::slice::from_ref(&deep_layer),
        Comp::Gzip,
    );
    let target = w.path().join("rootfs");
    Unpacker::new().unpack(&layout, &image, &target).unwrap();
    assert_eq!(
        std::fs::read(target.join(format!("{deep}file"))).unwrap(),
        b"deep"
    );
    let e = Unpacker::new()
        .limits(Limits {
            max_depth: Some(300),
            ..Limits::default()
        })
        .unpack(&layout, &image, w.path().join("capped"))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::LimitExceeded {
                limit: "max_depth",
                max: 300,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(Limits::default().max_depth, Some(Limits::DEFAULT_MAX_DEPTH));

    let mut t2 = Tar::new();
    t2.whiteout(".wh.d").file("kept", b"k", 0o644);
    common::image(
        &w.path().join("layout2"),
        &[deep_layer, t2.bytes()],
        Comp::None,
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 200 && exec \"$@\"")
        .arg("sh")
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "deep_nesting_within_path_max_unpacks",
            "--test-threads=1",
        ])
        .env("DEEP_NESTING_CHILD", w.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let whited = w.path().join("whited");
    assert!(whited.join("kept").is_file() && !whited.join("d").exists());
}

#[test]
fn multi_member_gzip() {
    let w = workdir();
    let mut t = Tar::new();
    t.file("a", &[b'a'; 5000], 0o644)
        .file("b", &[b'b'; 5000], 0o644);
    let tar = t.bytes();
    let mut blob = compress(&tar[..3000], Comp::Gzip);
    blob.extend(compress(&tar[3000..], Comp::Gzip));
    let layout = oci_image::Layout::create(w.path().join("layout")).unwrap();
    let d = layout
        .put_blob(oci_image::spec::image::MediaType::ImageLayerGzip, &blob)
        .unwrap();
    let root = w.path().join("root");
    std::fs::create_dir(&root).unwrap();
    Unpacker::new()
        .apply_layer(&root, &blob[..], &d, Some(&oci_image::sha256_digest(&tar)))
        .unwrap();
    assert_eq!(std::fs::read(root.join("b")).unwrap(), vec![b'b'; 5000]);
}

/// Unpacks, expecting an error, and checks the target was never created and nothing is left
/// next to it.
fn unpack_fails(
    layout: &oci_image::Layout,
    image: &oci_image::Image,
    w: &std::path::Path,
) -> Error {
    let target = w.join("rootfs");
    let e = Unpacker::new().unpack(layout, image, &target).unwrap_err();
    assert!(
        !target.exists(),
        "a failed unpack left {}",
        target.display()
    );
    let leftovers: Vec<_> = std::fs::read_dir(w)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "layout")
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    e
}

#[test]
fn a_tampered_blob_fails_and_leaves_nothing() {
    // Uncompressed too: there the diff_id is the blob digest, and the stream is hashed once.
    for c in [Comp::Gzip, Comp::None] {
        let w = workdir();
        let mut t = Tar::new();
        t.file("x", &[7u8; 100_000], 0o644);
        let (layout, image) = image(&w.path().join("layout"), &[base_layer(), t.bytes()], c);
        // Rewrite the second blob in place with different bytes of the same length.
        let d = &image.layers[1].descriptor;
        let path = layout.blob_path(d.digest()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 5] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let e = unpack_fails(&layout, &image, w.path());
        assert!(
            matches!(e, Error::Blob { .. } | Error::Decompress { .. }),
            "{c:?}: {e}"
        );
        assert!(e.to_string().contains(&d.digest().to_string()), "{e}");
    }
}

#[test]
fn a_wrong_diff_id_fails_and_leaves_nothing() {
    for c in [Comp::Zstd, Comp::None] {
        let w = workdir();
        let (layout, mut image) = image(&w.path().join("layout"), &[base_layer()], c);
        let wrong = oci_image::sha256_digest(b"not the tar");
        image.layers[0].diff_id = wrong.clone();
        match unpack_fails(&layout, &image, w.path()) {
            Error::DiffIdMismatch {
                expected, actual, ..
            } => {
                assert_eq!(*expected, wrong);
                assert_eq!(*actual, oci_image::sha256_digest(&base_layer()), "{c:?}");
            }
            e => panic!("{c:?}: {e}"),
        }
    }
}

#[test]
fn a_truncated_tar_fails() {
    let w = workdir();
    let tar = base_layer();
    let (layout, image) = image(
        &w.path().join("layout"),
        &[tar[..1500].to_vec()],
        Comp::Gzip,
    );
    let e = unpack_fails(&layout, &image, w.path());
    assert!(matches!(e, Error::Tar { .. }), "{e}");
}

#[test]
fn target_must_be_absent_or_empty() {
    let w = workdir();
    let (layout, image) = image(&w.path().join("layout"), &[base_layer()], Comp::None);
    let target = w.path().join("rootfs");
    std::fs::create_dir(&target).unwrap();
    Unpacker::new().unpack(&layout, &image, &target).unwrap();
    let e = Unpacker::new()
        .unpack(&layout, &image, &target)
        .unwrap_err();
    assert!(matches!(e, Error::TargetExists { .. }), "{e}");
}

#[test]
fn limits_stop_tar_bombs() {
    let w = workdir();
    let mut t = Tar::new();
    for i in 0..50 {
        t.file(&format!("f{i}"), &[0u8; 1000], 0o644);
    }
    t.file(&format!("{}x", "d/".repeat(40)), b"deep", 0o644);
    let (layout, image) = image(&w.path().join("layout"), &[t.bytes()], Comp::Gzip);
    let cases = [
        (
            Limits {
                max_bytes: Some(10_000),
                ..Limits::default()
            },
            "max_bytes",
        ),
        (
            Limits {
                max_entries: Some(20),
                ..Limits::default()
            },
            "max_entries",
        ),
        (
            Limits {
                max_depth: Some(10),
                ..Limits::default()
            },
            "max_depth",
        ),
    ];
    for (limits, which) in cases {
        let target = w.path().join("rootfs");
        let e = Unpacker::new()
            .limits(limits)
            .unpack(&layout, &image, &target)
            .unwrap_err();
        match e {
            Error::LimitExceeded { limit, .. } => assert_eq!(limit, which),
            e => panic!("{which}: {e}"),
        }
        assert!(!target.exists());
    }
}

#[test]
fn progress_reports_bytes_and_entries() {
    let w = workdir();
    let (layout, image) = image(
        &w.path().join("layout"),
        &[base_layer(), base_layer()],
        Comp::Gzip,
    );
    let last = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let l = last.clone();
    Unpacker::new()
        .on_progress(move |p| {
            l.0.store(p.bytes_read, Ordering::Relaxed);
            l.1.store(p.entries, Ordering::Relaxed);
        })
        .unpack(&layout, &image, w.path().join("rootfs"))
        .unwrap();
    let total: u64 = image.layers.iter().map(|l| l.descriptor.size()).sum();
    assert!(last.0.load(Ordering::Relaxed) > 0 && last.0.load(Ordering::Relaxed) <= total);
    assert_eq!(last.1.load(Ordering::Relaxed), 2 * 16);
}

#[test]
fn id_mapping_shifts_owners() {
    use oci_image::spec::runtime::LinuxIdMappingBuilder;
    let map = |c: u32, h: u32, n: u32| {
        LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(n)
            .build()
            .unwrap()
    };
    let w = workdir();
    let mut t = Tar::new();
    t.file_owned("a", b"a", 0o644, 0, 0)
        .file_owned("b", b"b", 0o644, 1000, 100)
        .symlink("l", "a");
    let (layout, image) = image(&w.path().join("layout"), &[t.bytes()], Comp::None);
    let target = w.path().join("rootfs");
    Unpacker::new()
        .id_mappings(vec![map(0, 100_000, 65536)], vec![map(0, 200_000, 65536)])
        .unpack(&layout, &image, &target)
        .unwrap();
    let s = snapshot(&target);
    assert_eq!((s["a"].uid, s["a"].gid), (100_000, 200_000));
    assert_eq!((s["b"].uid, s["b"].gid), (101_000, 200_100));
    assert_eq!((s["l"].uid, s["l"].gid), (100_000, 200_000));
    // An owner outside the map is refused.
    let e = Unpacker::new()
        .id_mappings(vec![map(0, 100_000, 10)], vec![])
        .unpack(&layout, &image, w.path().join("other"))
        .unwrap_err();
    assert!(matches!(e, Error::InvalidEntry { .. }), "{e}");
}

#[test]
fn a_non_layer_media_type_is_refused() {
    let w = workdir();
    let (layout, image) = image(&w.path().join("layout"), &[base_layer()], Comp::None);
    let root = w.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let config = image.manifest.config();
    let blob = layout.read_blob(config, 1 << 20).unwrap();
    let e = Unpacker::new()
        .apply_layer(&root, &blob[..], config, None)
        .unwrap_err();
    assert!(matches!(e, Error::NotALayer { .. }), "{e}");
}

/// A file the unpacker may leave with the owner it was created with (root's own) still gets
/// the image's owner in a setgid directory of another group, where new files take the
/// directory's group.
#[test]
fn owners_in_a_setgid_directory() {
    let mut t = Tar::new();
    t.dir_owned("sg/", 0o2775, 0, 1234)
        .file("sg/root", b"r", 0o644)
        .file_owned("sg/other", b"o", 0o644, 5, 1234)
        .dir("plain/", 0o755)
        .file("plain/root", b"r", 0o644);
    let (_w, root) = unpack(&[t.bytes()], Comp::None);
    let s = snapshot(&root);
    assert_eq!((s["sg"].gid, s["sg"].mode), (1234, 0o2775));
    assert_eq!((s["sg/root"].uid, s["sg/root"].gid), (0, 0));
    assert_eq!((s["sg/other"].uid, s["sg/other"].gid), (5, 1234));
    assert_eq!((s["plain/root"].uid, s["plain/root"].gid), (0, 0));
}

/// An entry whose parent cannot be made (a file stands where its directory should be): the
/// error names the entry as the layer spells it, never the unpacker's private directory.
#[test]
fn an_entry_without_its_parent_is_named_in_the_error() {
    let w = workdir();
    let mut l = Tar::new();
    l.file("etc", b"a file", 0o644)
        .file("etc/passwd", b"root:x:0:0::/:/bin/sh\n", 0o644);
    let (layout, image) = image(&w.path().join("layout"), &[l.bytes()], Comp::Gzip);
    let e = unpack_fails(&layout, &image, w.path());
    let msg = e.to_string();
    assert!(msg.contains("etc/passwd"), "{msg}");
    assert!(!msg.contains(".oci-unpack-"), "{msg}");
}
