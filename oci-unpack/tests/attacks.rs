//! Hostile layers. Each test attacks one way out of the root and checks that nothing outside
//! the target changed (a canary directory of "host" files), that the attack either failed with
//! an error or was contained inside the root, and that a failed unpack left nothing behind.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use oci_unpack::{Error, Unpacker};

/// Unpacks `layers`; returns the root on success. On failure checks the target is absent.
fn try_unpack(w: &Path, layers: &[Vec<u8>]) -> Result<PathBuf, Error> {
    let (layout, image) = image(&w.join("layout"), layers, Comp::Gzip);
    let target = w.join("rootfs");
    match Unpacker::new().unpack(&layout, &image, &target) {
        Ok(()) => Ok(target),
        Err(e) => {
            assert!(!target.exists(), "failed unpack left the target");
            Err(e)
        }
    }
}

/// The workdir must only hold the layout and the target: nothing written beside the root.
fn assert_nothing_beside(w: &Path) {
    let mut names: Vec<String> = std::fs::read_dir(w)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.retain(|n| n != "layout" && n != "rootfs");
    assert!(names.is_empty(), "written beside the root: {names:?}");
}

/// The host path without its leading `/`, as it appears when contained in the root.
fn inside(root: &Path, host: &Host, rest: &str) -> PathBuf {
    root.join(host.s().trim_start_matches('/')).join(rest)
}

#[test]
fn absolute_names_and_dotdot_are_contained() {
    let host = Host::new();
    let w = workdir();
    let mut t = Tar::new();
    t.file(&format!("{}/passwd", host.s()), b"pwned", 0o644)
        .file(
            &format!("../../../../../../..{}/etc/shadow", host.s()),
            b"pwned",
            0o644,
        )
        .file("../escape", b"pwned", 0o644)
        .file("a/../../../escape2", b"pwned", 0o644);
    let root = try_unpack(w.path(), &[t.bytes()]).unwrap();
    host.assert_untouched();
    assert_nothing_beside(w.path());
    assert_eq!(
        std::fs::read(inside(&root, &host, "passwd")).unwrap(),
        b"pwned"
    );
    assert_eq!(
        std::fs::read(inside(&root, &host, "etc/shadow")).unwrap(),
        b"pwned"
    );
    assert!(root.join("escape").exists() && root.join("escape2").exists());
}

#[test]
fn writing_through_a_lower_symlink_to_root_or_dotdot_is_contained() {
    let host = Host::new();
    let w = workdir();
    let mut l1 = Tar::new();
    l1.symlink("up", "/")
        .symlink("dots", "../../../../../../../..")
        .symlink("hostdir", &host.s())
        .symlink("hostfile", &format!("{}/passwd", host.s()));
    let mut l2 = Tar::new();
    l2.file(&format!("up{}/passwd", host.s()), b"pwned", 0o644)
        .file(&format!("dots{}/etc/shadow", host.s()), b"pwned", 0o644)
        .file("dots/escape", b"pwned", 0o644)
        // The symlink itself is replaced, its target is not written.
        .file("hostfile", b"pwned", 0o644);
    // Same-layer variant: the symlink and the write through it in one layer.
    l2.symlink("same", "/../..")
        .file(&format!("same{}/passwd", host.s()), b"pwned", 0o644);
    let root = try_unpack(w.path(), &[l1.bytes(), l2.bytes()]).unwrap();
    host.assert_untouched();
    assert_nothing_beside(w.path());
    assert!(root.join("escape").exists());
    assert_eq!(
        std::fs::read(inside(&root, &host, "passwd")).unwrap(),
        b"pwned"
    );
    assert!(std::fs::symlink_metadata(root.join("hostfile"))
        .unwrap()
        .file_type()
        .is_file());
}

#[test]
fn writing_through_a_symlink_to_a_host_directory_fails_or_stays_inside() {
    let host = Host::new();
    let w = workdir();
    let mut l1 = Tar::new();
    l1.symlink("etc", &format!("{}/etc", host.s()));
    let mut l2 = Tar::new();
    l2.file("etc/shadow", b"pwned", 0o777);
    // `etc` resolves to `<root>/<host>/etc`, which does not exist in the root: refused.
    let r = try_unpack(w.path(), &[l1.bytes(), l2.bytes()]);
    host.assert_untouched();
    assert!(matches!(r, Err(Error::Apply { .. })), "{r:?}");
    assert_nothing_beside(w.path());
}

#[test]
fn a_symlink_named_dot_or_slash_is_refused() {
    let host = Host::new();
    for name in [".", "/", "./", "a/.."] {
        let w = workdir();
        let mut t = Tar::new();
        t.symlink(name, &host.s()).file("passwd", b"pwned", 0o644);
        let r = try_unpack(w.path(), &[t.bytes()]);
        assert!(
            matches!(r, Err(Error::InvalidEntry { .. })),
            "{name}: {r:?}"
        );
        host.assert_untouched();
        assert_nothing_beside(w.path());
    }
}

#[test]
fn hardlinks_out_of_the_root_are_refused() {
    let host = Host::new();
    for target in [
        format!("{}/passwd", host.s()),
        format!("../../../../../../..{}/passwd", host.s()),
    ] {
        let w = workdir();
        let mut t = Tar::new();
        t.hardlink("stolen", &target);
        let r = try_unpack(w.path(), &[t.bytes()]);
        assert!(matches!(r, Err(Error::Apply { .. })), "{target}: {r:?}");
        host.assert_untouched();
        assert_nothing_beside(w.path());
    }
}

#[test]
fn hardlinks_through_symlinks_stay_inside() {
    let host = Host::new();
    let w = workdir();
    let mut l1 = Tar::new();
    l1.symlink("hd", &host.s())
        .symlink("hf", &format!("{}/passwd", host.s()));
    let l1 = l1.bytes();
    // Through a symlinked directory: resolved in the root, where the host file is absent.
    let mut bad = Tar::new();
    bad.hardlink("x", "hd/passwd");
    let r = try_unpack(w.path(), &[l1.clone(), bad.bytes()]);
    assert!(matches!(r, Err(Error::Apply { .. })), "{r:?}");
    host.assert_untouched();

    // To a symlink: the link is to the symlink itself; rewriting it then replaces, not follows.
    let w = workdir();
    let mut l2 = Tar::new();
    l2.hardlink("x", "hf");
    let mut l3 = Tar::new();
    l3.file("x", b"pwned", 0o666).dir("hf/", 0o777);
    let root = try_unpack(w.path(), &[l1, l2.bytes(), l3.bytes()]).unwrap();
    host.assert_untouched();
    assert_eq!(std::fs::read(root.join("x")).unwrap(), b"pwned");
    assert!(root.join("hf").is_dir());
}

#[test]
fn a_hardlink_to_itself_is_refused() {
    let w = workdir();
    let mut t = Tar::new();
    t.file("f", b"keep", 0o644).hardlink("f", "./f");
    let r = try_unpack(w.path(), &[t.bytes()]);
    assert!(matches!(r, Err(Error::InvalidEntry { .. })), "{r:?}");
}

#[test]
fn whiteouts_of_dotdot_and_bare_whiteouts_are_refused() {
    let host = Host::new();
    for name in ["a/.wh..", "a/.wh...", ".wh.", "a/.wh."] {
        let w = workdir();
        let mut l1 = Tar::new();
        l1.dir("a/", 0o755)
            .file("a/f", b"f", 0o644)
            .file("top", b"t", 0o644);
        let mut l2 = Tar::new();
        l2.whiteout(name);
        let r = try_unpack(w.path(), &[l1.bytes(), l2.bytes()]);
        assert!(
            matches!(r, Err(Error::InvalidEntry { .. })),
            "{name}: {r:?}"
        );
        host.assert_untouched();
        assert_nothing_beside(w.path());
    }
}

#[test]
fn whiteouts_through_symlinked_directories_stay_inside() {
    let host = Host::new();
    let w = workdir();
    let mut l1 = Tar::new();
    l1.symlink("hd", &host.s())
        .symlink("up", "../../../../..")
        .dir("keep/", 0o755)
        .file("keep/f", b"f", 0o644);
    let l1 = l1.bytes();
    let mut l2 = Tar::new();
    l2.whiteout("hd/.wh.passwd")
        .whiteout("hd/.wh.etc")
        .whiteout("hd/.wh..wh..opq")
        .whiteout(&format!("up{}/.wh.passwd", host.s()))
        .whiteout(&format!("up{}/.wh..wh..opq", host.s()));
    let root = try_unpack(w.path(), &[l1.clone(), l2.bytes()]).unwrap();
    host.assert_untouched();
    assert!(root.join("keep/f").exists());
    assert_nothing_beside(w.path());

    // A whiteout of the symlink itself removes the symlink, not what it points to.
    let w = workdir();
    let mut l3 = Tar::new();
    l3.whiteout(".wh.hd");
    let root = try_unpack(w.path(), &[l1, l3.bytes()]).unwrap();
    host.assert_untouched();
    assert!(std::fs::symlink_metadata(root.join("hd")).is_err());
}

#[test]
fn modes_and_owners_never_apply_through_a_symlink() {
    let host = Host::new();
    let w = workdir();
    let mut l1 = Tar::new();
    l1.symlink("d", &host.s())
        .symlink("f", &format!("{}/passwd", host.s()));
    let mut l2 = Tar::new();
    // A directory entry over a symlink to a host directory, then (same layer) the symlink back:
    // the directory's deferred mode and mtime must not reach the host through it.
    l2.dir_owned("d/", 0o777, 1234, 1234)
        .dir_owned("e/", 0o777, 1234, 1234)
        .symlink("e", &host.s())
        .dir_owned("./", 0o755, 0, 0);
    let root = try_unpack(w.path(), &[l1.bytes(), l2.bytes()]).unwrap();
    host.assert_untouched();
    assert!(std::fs::symlink_metadata(root.join("d")).unwrap().is_dir());
    assert!(std::fs::symlink_metadata(root.join("f"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn symlink_loops_fail_cleanly() {
    let w = workdir();
    let mut t = Tar::new();
    t.symlink("a", "b")
        .symlink("b", "a")
        .file("a/x", b"x", 0o644);
    let r = try_unpack(w.path(), &[t.bytes()]);
    assert!(matches!(r, Err(Error::Apply { .. })), "{r:?}");
    assert_nothing_beside(w.path());
}

#[test]
fn overlay_xattrs_from_a_layer_are_dropped() {
    let w = workdir();
    let mut t = Tar::new();
    t.file_x(
        "f",
        b"f",
        0o644,
        &[("trusted.overlay.redirect", b"/etc"), ("user.ok", b"1")],
    );
    let root = try_unpack(w.path(), &[t.bytes()]).unwrap();
    let x = xattrs(&root.join("f"));
    assert!(!x.contains_key("trusted.overlay.redirect"));
    assert!(x.contains_key("user.ok"));
}

mod hostile_props {
    use super::*;
    use proptest::prelude::*;
    use proptest::{collection, sample};

    fn name() -> impl Strategy<Value = String> {
        let comp = sample::select(vec![
            "a",
            "b",
            "..",
            ".",
            "",
            ".wh.a",
            ".wh..wh..opq",
            "HOST",
        ]);
        collection::vec(comp, 1..5).prop_map(|v| v.join("/"))
    }

    #[derive(Debug, Clone)]
    enum E {
        File(String),
        Dir(String),
        Symlink(String, String),
        Hardlink(String, String),
        Whiteout(String),
    }

    fn entry() -> impl Strategy<Value = E> {
        let target = prop_oneof![
            name(),
            Just("/".to_string()),
            Just("HOST".to_string()),
            Just("../../..".to_string())
        ];
        prop_oneof![
            name().prop_map(E::File),
            name().prop_map(E::Dir),
            (name(), target.clone()).prop_map(|(a, b)| E::Symlink(a, b)),
            (name(), target).prop_map(|(a, b)| E::Hardlink(a, b)),
            name().prop_map(E::Whiteout),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        /// Random layers of hostile names and links: the unpack succeeds or fails with an error,
        /// never panics, and the host directory never changes.
        #[test]
        fn random_hostile_layers_never_escape(layers in collection::vec(collection::vec(entry(), 1..12), 1..3)) {
            let host = Host::new();
            let w = workdir();
            let sub = |s: &String| s.replace("HOST", host.s().trim_start_matches('/'));
            let tars: Vec<Vec<u8>> = layers.iter().map(|l| {
                let mut t = Tar::new();
                for e in l {
                    match e {
                        E::File(n) => { t.file(&sub(n), b"pwned", 0o777); }
                        E::Dir(n) => { t.dir_owned(&sub(n), 0o777, 4321, 4321); }
                        E::Symlink(n, tg) => { t.symlink(&sub(n), &sub(tg).replace(host.s().trim_start_matches('/'), &host.s())); }
                        E::Hardlink(n, tg) => { t.hardlink(&sub(n), &sub(tg)); }
                        E::Whiteout(n) => { t.whiteout(&format!("{}/.wh.{}", sub(n), "passwd")); }
                    }
                }
                t.bytes()
            }).collect();
            let _ = try_unpack(w.path(), &tars);
            host.assert_untouched();
            assert_nothing_beside(w.path());
        }
    }
}

/// A layer that is one extension header declaring `size` bytes, then that many bytes of `a`,
/// generated as read (never held in memory by the test); counts what the unpacker reads.
struct HugeHeader {
    head: Vec<u8>,
    pos: u64,
    total: u64,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl HugeHeader {
    fn new(kind: tar::EntryType, size: u64) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.as_old_mut().name[..9].copy_from_slice(b"././@Long");
        h.set_mode(0o644);
        h.set_size(size);
        h.set_cksum();
        HugeHeader {
            head: h.as_bytes().to_vec(),
            pos: 0,
            total: 512 + size,
            read: Default::default(),
        }
    }
}

impl std::io::Read for HugeHeader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.total - self.pos;
        let n = (buf.len() as u64).min(left) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let at = self.pos + i as u64;
            *b = if at < 512 {
                self.head[at as usize]
            } else {
                b'a'
            };
        }
        self.pos += n as u64;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// The `tar` crate reads a PAX extended header or a GNU long name/link whole into memory,
/// whatever size it declares. A layer declaring 1 GiB of them stops after a megabyte with a
/// limit error: never buffered, and the rest of the stream is not even read.
#[test]
fn huge_pax_and_gnu_long_name_headers_stop_early() {
    use oci_image::spec::image::{DescriptorBuilder, MediaType};
    for kind in [
        tar::EntryType::XHeader,
        tar::EntryType::GNULongName,
        tar::EntryType::GNULongLink,
    ] {
        let w = workdir();
        let blob = HugeHeader::new(kind, 1 << 30);
        let read = blob.read.clone();
        // The digest is never reached: the unpack stops long before the end of the blob.
        let descriptor = DescriptorBuilder::default()
            .media_type(MediaType::ImageLayer)
            .digest(oci_image::sha256_digest(b"never checked"))
            .size(blob.total)
            .build()
            .unwrap();
        let root = w.path().join("rootfs");
        std::fs::create_dir(&root).unwrap();
        let start = std::time::Instant::now();
        let e = Unpacker::new()
            .apply_layer(&root, blob, &descriptor, None)
            .unwrap_err();
        assert!(
            matches!(&e, Error::LimitExceeded { limit, .. } if limit.contains("header")),
            "{kind:?}: {e}"
        );
        // What was read: the 1 MiB budget plus the decompression thread's read-ahead.
        let n = read.load(std::sync::atomic::Ordering::Relaxed);
        assert!(n < 16 << 20, "{kind:?}: read {n} bytes");
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
        assert_nothing_beside(w.path());
    }
}
