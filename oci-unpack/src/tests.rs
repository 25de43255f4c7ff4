//! Tests that need the crate's private switches: the pre-6.8 overlay mount path and the xattr
//! form of rootless whiteouts, forced on a kernel that would not pick them by itself.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;

use common::*;

use crate::store::FORCE_LEGACY_MOUNT;
use crate::{LayerStore, Unpacker};

fn layers() -> Vec<Vec<u8>> {
    let mut l1 = Tar::new();
    l1.dir("etc/", 0o755)
        .file("etc/keep", b"k", 0o644)
        .file("etc/gone", b"g", 0o644)
        .dir("data/", 0o755)
        .file("data/old", b"o", 0o644)
        .dir("data/sub/", 0o755)
        .file("data/sub/deep", b"d", 0o644)
        .dir("dir/", 0o755)
        .file("dir/x", b"x", 0o644)
        .symlink("link", "etc/keep");
    let mut l2 = Tar::new();
    l2.dir("etc/", 0o755)
        .whiteout("etc/.wh.gone")
        .file("etc/new", b"n", 0o600)
        .dir("data/", 0o700)
        .whiteout("data/.wh..wh..opq")
        .file("data/fresh", b"f", 0o644)
        .whiteout(".wh.dir")
        .hardlink("etc/new2", "etc/new");
    let mut l3 = Tar::new();
    // A directory whited out by a lower layer and made again: it must not show the old child.
    l3.dir("dir/", 0o750).file("dir/y", b"y", 0o644);
    vec![l1.bytes(), l2.bytes(), l3.bytes()]
}

/// Paths, types, modes, owners, link targets and contents of `merged` are those of `flat`.
fn assert_same_tree(merged: &Path, flat: &Path, owners: bool) {
    let (m, f) = (snapshot(merged), snapshot(flat));
    assert_eq!(m.keys().collect::<Vec<_>>(), f.keys().collect::<Vec<_>>());
    for (p, n) in &f {
        let g = &m[p];
        assert_eq!(
            (g.kind, g.mode, &g.target, &g.sha256),
            (n.kind, n.mode, &n.target, &n.sha256),
            "{p}"
        );
        if owners {
            assert_eq!((g.uid, g.gid), (n.uid, n.gid), "{p}");
        }
    }
}

/// The overlay options of the mount at `merged`, from /proc/self/mountinfo.
fn mount_options(merged: &Path) -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let m = merged.to_str().unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(m))
        .unwrap_or_else(|| panic!("{m} is not mounted"));
    line.rsplit(' ').next().unwrap().to_string()
}

/// Mounts the image's layers from the store at `store_dir` with `lowerdir+` (or whatever the
/// crate picks: `auto_is_plus` says which it must be) and forced through `mount(2)`.
fn mount_both_ways(layers: &[Vec<u8>], store_dir: &Path, auto_is_plus: bool) {
    let w = workdir();
    let (layout, image) = image(&w.path().join("layout"), layers, Comp::Gzip);
    let flat = w.path().join("flat");
    Unpacker::new().unpack(&layout, &image, &flat).unwrap();
    let store = LayerStore::open(store_dir).unwrap();
    let chain = store
        .prepare(&Unpacker::new(), &layout, &image, "ctr")
        .unwrap();
    for legacy in [false, true] {
        FORCE_LEGACY_MOUNT.with(|f| f.set(legacy));
        let r = store.mount(&chain, w.path().join(format!("ctr-{legacy}")));
        FORCE_LEGACY_MOUNT.with(|f| f.set(false));
        let mount = r.unwrap();
        let opts = mount_options(mount.merged());
        if legacy || !auto_is_plus {
            // Descriptor numbers, not paths.
            let lower = opts.split(',').find_map(|o| o.strip_prefix("lowerdir="));
            let lower = lower.unwrap_or_else(|| panic!("{opts}"));
            assert!(lower.split(':').all(|n| n.parse::<u32>().is_ok()), "{opts}");
            assert_eq!(lower.split(':').count(), chain.len());
        } else {
            assert!(opts.contains("lowerdir+="), "{opts}");
        }
        assert_same_tree(mount.merged(), &flat, true);
        // Copy-on-write into this mount's own upper directory.
        std::fs::write(mount.merged().join("etc/keep"), b"changed").unwrap();
        assert_eq!(
            std::fs::read(mount.upper().join("etc/keep")).unwrap(),
            b"changed"
        );
        mount.unmount().unwrap();
    }
}

#[test]
fn legacy_and_new_mounts_match_the_flat_unpack() {
    let w = workdir();
    mount_both_ways(&layers(), &w.path().join("store"), true);
}

/// 150 layers in a store whose path is ~240 bytes long: as absolute paths, `lowerdir=` would
/// need ~50 KiB, far over mount(2)'s one page. The layer paths are also over `fsconfig`'s
/// 256-byte cap on a value, so even on this kernel `lowerdir+` is refused and the crate falls
/// back to `mount(2)`.
#[test]
fn legacy_mount_of_many_layers_under_a_long_path() {
    let w = workdir();
    let mut deep = w.path().to_path_buf();
    for i in 0..4 {
        deep.push(format!(
            "{i}-a-rather-long-directory-name-for-the-layer-store-xx"
        ));
    }
    let mut ls = Vec::new();
    for i in 0..150 {
        let mut t = Tar::new();
        t.dir("etc/", 0o755)
            .file("etc/top", format!("{i}").as_bytes(), 0o644)
            .file(&format!("l{i}"), b"x", 0o644);
        if i > 0 {
            t.whiteout(&format!(".wh.l{}", i - 1));
        }
        t.file("etc/keep", b"k", 0o644);
        ls.push(t.bytes());
    }
    mount_both_ways(&ls, &deep, false);
}
