//! Rootless unpacking, for real: the test binary re-runs itself as user 65534 (nobody), which
//! unpacks an image with foreign owners, device nodes and a mode-000 directory that a later
//! layer writes into. The parent (root) then inspects the tree.

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use common::*;
use oci_unpack::{Error, Unpacker};

const NOBODY: u32 = 65534;
const LAYOUT_ENV: &str = "OCI_UNPACK_ROOTLESS_LAYOUT";
const TARGET_ENV: &str = "OCI_UNPACK_ROOTLESS_TARGET";

fn layers() -> Vec<Vec<u8>> {
    let mut l1 = Tar::new();
    l1.dir("etc/", 0o755)
        .file_owned("etc/owned", b"o", 0o640, 1000, 1001)
        .file("etc/root", b"r", 0o644)
        .chardev("null", 1, 3)
        .dir("locked/", 0o000)
        .file("locked/inside", b"i", 0o000)
        .fifo("fifo", 0o600)
        .dir("reopened/", 0o000);
    let mut l2 = Tar::new();
    // Writing into, and whiting out inside, a directory the image made mode 000.
    l2.file("locked/later", b"l", 0o644)
        .whiteout("locked/.wh.inside")
        .dir("locked/", 0o000)
        .dir("reopened/", 0o750);
    vec![l1.bytes(), l2.bytes()]
}

/// The part of `rootless_unpack` that runs as nobody, in the test binary re-executed with
/// `LAYOUT_ENV` and `TARGET_ENV` set.
fn rootless_child(layout: String, target: String) {
    assert!(!rustix::process::geteuid().is_root());
    let layout = oci_image::Layout::open(&layout).unwrap();
    let image = layout.resolve("latest", None).unwrap();
    Unpacker::new().unpack(&layout, &image, &target).unwrap();
    // Removing it again needs the same care with mode 000 directories; a failed unpack too.
    let mut bad = image.clone();
    bad.layers[1].diff_id = oci_image::sha256_digest(b"x");
    let e = Unpacker::new()
        .unpack(&layout, &bad, format!("{target}-bad"))
        .unwrap_err();
    assert!(matches!(e, Error::DiffIdMismatch { .. }), "{e}");
}

fn chown_tree(p: &Path) {
    let ok = Command::new("chown")
        .arg("-R")
        .arg(format!("{NOBODY}:{NOBODY}"))
        .arg(p)
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn rootless_unpack() {
    if let (Ok(layout), Ok(target)) = (std::env::var(LAYOUT_ENV), std::env::var(TARGET_ENV)) {
        return rootless_child(layout, target);
    }
    let w = workdir();
    let (_layout, _image) = image(&w.path().join("layout"), &layers(), Comp::Gzip);
    chown_tree(w.path());
    let target = w.path().join("rootfs");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "rootless_unpack",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LAYOUT_ENV, w.path().join("layout"))
        .env(TARGET_ENV, &target)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && log.contains("1 passed"),
        "child failed:\n{log}"
    );

    let s = snapshot(&target);
    // No chown: everything belongs to the unpacking user; the image's owner is in the xattr.
    assert!(s.values().all(|n| n.uid == NOBODY && n.gid == NOBODY));
    assert_eq!(
        s["etc/owned"]
            .xattrs
            .get("user.rootlesscontainers")
            .map(Vec::as_slice),
        Some(&[0x08, 0xe8, 0x07, 0x10, 0xe9, 0x07][..])
    );
    assert!(!s["etc/root"].xattrs.contains_key("user.rootlesscontainers"));
    // No device nodes; fifos are fine.
    assert!(!s.contains_key("null"));
    assert_eq!(s["fifo"].kind, 'p');
    // The mode-000 directory kept its mode, got the later layer's file, lost the whited-out one.
    assert_eq!(
        std::fs::metadata(target.join("locked")).unwrap().mode() & 0o7777,
        0
    );
    assert!(s.contains_key("locked/later") && !s.contains_key("locked/inside"));
    // A later layer's mode replaces an earlier one's.
    assert_eq!(s["reopened"].mode, 0o750);
    // The failed unpack left nothing.
    let names: Vec<_> = std::fs::read_dir(w.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}
