//! The tree we produce is the tree `umoci unpack` produces from the same image: same paths,
//! types, modes, owners, link targets, hardlink groups, xattrs, content hashes and file mtimes.

mod common;

use std::process::Command;

use common::*;
use oci_unpack::Unpacker;

fn layers() -> Vec<Vec<u8>> {
    let cap: &[u8] = &[
        1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let mut l1 = Tar::new();
    l1.dir("etc/", 0o755)
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644)
        .file_owned("etc/shadow", b"root:*:1::::::\n", 0o640, 0, 42)
        .file("etc/remove-me", b"old", 0o644)
        .dir("bin/", 0o755)
        .file("bin/busybox", &vec![0x7f; 100_000], 0o755)
        .hardlink("bin/ls", "bin/busybox")
        .hardlink("bin/cat", "bin/busybox")
        .symlink("bin/sh", "busybox")
        .file("bin/su", b"su", 0o4755)
        .file("bin/wall", b"wall", 0o2755)
        .file_x(
            "bin/ping",
            b"ping",
            0o755,
            &[("security.capability", cap), ("user.origin", b"layer1")],
        )
        .dir("tmp/", 0o1777)
        .dir("var/", 0o755)
        .dir("var/cache/", 0o755)
        .dir("var/cache/apt/", 0o755)
        .file("var/cache/apt/pkgcache.bin", b"cache", 0o644)
        .dir("var/cache/apt/archives/", 0o755)
        .file("var/cache/apt/archives/lock", b"", 0o640)
        .dir_owned("home/", 0o755, 0, 0)
        .dir_owned("home/user/", 0o700, 1000, 1000)
        .file_owned("home/user/.profile", b"PS1=$\n", 0o644, 1000, 1000)
        .fifo("run-initctl", 0o600)
        .dir("dev/", 0o755)
        .chardev("dev/null", 1, 3)
        .blockdev("dev/loop0", 7, 0)
        .symlink("lib", "usr/lib")
        .dir("usr/", 0o755)
        .dir("usr/lib/", 0o755)
        .file("usr/lib/libc.so", b"libc", 0o755);
    let mut l2 = Tar::new();
    l2.dir("etc/", 0o755)
        .whiteout("etc/.wh.remove-me")
        .file(
            "etc/passwd",
            b"root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
            0o644,
        )
        .dir("var/cache/apt/", 0o755)
        .whiteout("var/cache/apt/.wh..wh..opq")
        .file("var/cache/apt/new.bin", b"new", 0o644)
        .dir("bin/", 0o755)
        // Replace a hardlinked file: the other names keep the old content.
        .file("bin/cat", b"a real cat", 0o755)
        .symlink("bin/sh", "/bin/busybox")
        .file("usr/lib/libm.so", b"libm", 0o755)
        .whiteout(".wh.run-initctl");
    let mut l3 = Tar::new();
    l3.dir("opt/", 0o755)
        .dir("opt/app/", 0o750)
        .file_x(
            "opt/app/run",
            b"#!/bin/sh\n",
            0o755,
            &[("user.setting", b"3")],
        )
        .symlink("opt/current", "app")
        .fifo("opt/app/fifo", 0o620)
        .hardlink("opt/app/run2", "opt/app/run")
        .dir("home/user/", 0o700)
        .whiteout("home/user/.wh..profile")
        .file_owned("home/user/notes", b"n", 0o600, 1000, 1000);
    vec![l1.bytes(), l2.bytes(), l3.bytes()]
}

#[test]
fn same_tree_as_umoci_unpack() {
    for c in [Comp::Gzip, Comp::None] {
        let w = workdir();
        let layout_dir = w.path().join("layout");
        let (layout, image) = image(&layout_dir, &layers(), c);

        let ours = w.path().join("ours");
        Unpacker::new().unpack(&layout, &image, &ours).unwrap();

        let bundle = w.path().join("bundle");
        let out = Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:latest", layout_dir.display()))
            .arg(&bundle)
            .output()
            .expect("umoci is installed (scripts/test installs it)");
        assert!(
            out.status.success(),
            "umoci unpack failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let mut theirs = snapshot(&bundle.join("rootfs"));
        // The comparison covers what the image exercises.
        assert!(theirs["bin/ping"]
            .xattrs
            .contains_key("security.capability"));
        assert!(theirs["opt/app/run"].xattrs.contains_key("user.setting"));
        assert_eq!(theirs["bin/su"].mode, 0o4755);
        assert_eq!(theirs["opt/app/fifo"].kind, 'p');
        assert!(!theirs.contains_key("run-initctl"));
        assert!(!theirs.contains_key("etc/remove-me"));
        assert!(!theirs.contains_key("var/cache/apt/pkgcache.bin"));
        assert_eq!(theirs["bin/ls"].link_group.as_deref(), Some("bin/busybox"));
        let mut ours = snapshot(&ours);
        // umoci keeps no xattr it does not know to be safe to restore; compare what both keep
        // and require ours to hold everything umoci has.
        for (path, n) in theirs.iter_mut() {
            let o = ours
                .get_mut(path)
                .unwrap_or_else(|| panic!("{path}: umoci has it, we do not"));
            for (k, v) in &n.xattrs {
                assert_eq!(o.xattrs.get(k), Some(v), "{path}: xattr {k}");
            }
            o.xattrs.retain(|k, _| n.xattrs.contains_key(k));
        }
        let (a, b): (Vec<_>, Vec<_>) = (ours.keys().collect(), theirs.keys().collect());
        assert_eq!(a, b, "paths differ");
        for (path, n) in &theirs {
            assert_eq!(&ours[path], n, "{path} differs ({c:?})");
        }
    }
}
