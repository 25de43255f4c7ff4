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
        // Whiteouts in a directory that is (or becomes) opaque hide nothing more.
        .whiteout("data/.wh.old")
        .whiteout("data/.wh..wh..opq")
        .whiteout("data/.wh.sub")
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

const NOBODY: u32 = 65534;
const LAYOUT_ENV: &str = "OCI_UNPACK_TEST_LAYOUT";
const STORE_ENV: &str = "OCI_UNPACK_TEST_STORE";
const FLAT_ENV: &str = "OCI_UNPACK_TEST_FLAT";
const CTR_ENV: &str = "OCI_UNPACK_TEST_CTR";
const XWHITEOUT_ENV: &str = "OCI_UNPACK_TEST_XATTR_WHITEOUTS";

/// A path the parent test passed to its re-executed child.
fn need(k: &str) -> std::path::PathBuf {
    std::env::var_os(k)
        .unwrap_or_else(|| panic!("{k} is set by the parent test"))
        .into()
}

fn chain_of(
    layout: &Path,
) -> (
    oci_image::Layout,
    oci_image::Image,
    Vec<oci_image::spec::image::Digest>,
) {
    let layout = oci_image::Layout::open(layout).unwrap();
    let image = layout.resolve("latest", None).unwrap();
    let diff_ids: Vec<_> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
    let chain = crate::chain_ids(&diff_ids);
    (layout, image, chain)
}

/// Which part a re-executed test binary plays (`store` or `mount`); unset in normal runs.
const CHILD_ENV: &str = "OCI_UNPACK_TEST_CHILD";

/// In a test binary that `rootless_store` re-executed, runs the part it was asked for and
/// returns true; in a normal run returns false.
fn child_part() -> bool {
    match std::env::var(CHILD_ENV).as_deref() {
        Ok("store") => rootless_store_child(),
        Ok("mount") => rootless_mount_child(),
        _ => return false,
    }
    true
}

/// As nobody: the image into a layer store and a flat rootfs.
fn rootless_store_child() {
    let (layout, store, flat) = (need(LAYOUT_ENV), need(STORE_ENV), need(FLAT_ENV));
    assert!(!rustix::process::geteuid().is_root());
    let (layout, image, chain) = chain_of(&layout);
    let store = LayerStore::open(store).unwrap();
    assert_eq!(
        store
            .prepare(&Unpacker::new(), &layout, &image, "img")
            .unwrap(),
        chain
    );
    Unpacker::new().unpack(&layout, &image, flat).unwrap();
}

/// As root of a user namespace owned by nobody: the overlay of the rootless store.
fn rootless_mount_child() {
    let (layout, store, flat, ctr) = (
        need(LAYOUT_ENV),
        need(STORE_ENV),
        need(FLAT_ENV),
        need(CTR_ENV),
    );
    let (_, _, chain) = chain_of(&layout);
    let store = LayerStore::open(store).unwrap();
    // Both ways of mounting: `lowerdir+`, and mount(2) as kernels before 6.8 need.
    for legacy in [false, true] {
        FORCE_LEGACY_MOUNT.with(|f| f.set(legacy));
        let mount = store.mount(&chain, ctr.join(legacy.to_string())).unwrap();
        FORCE_LEGACY_MOUNT.with(|f| f.set(false));
        let opts = mount_options(mount.merged());
        assert!(opts.contains("userxattr"), "{opts}");
        assert_eq!(opts.contains("lowerdir+="), !legacy, "{opts}");
        // Owners differ (nobody is root in here), everything else is the flat unpack's.
        assert_same_tree(mount.merged(), &flat, false);
        mount.unmount().unwrap();
    }
}

/// Re-runs the test `test` of this binary through `cmd` (as another user), playing `part`.
fn run_child(
    mut cmd: std::process::Command,
    test: &str,
    part: &str,
    envs: &[(&str, &Path)],
    xwhiteout: bool,
) {
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    cmd.env(CHILD_ENV, part);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    if xwhiteout {
        cmd.env(XWHITEOUT_ENV, "1");
    }
    let out = cmd.output().unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && log.contains("1 passed"),
        "{test} failed:\n{log}"
    );
}

/// A rootless layer store, for real: unpacked by nobody, mounted by nobody in a user namespace
/// and by root, both with `userxattr`, showing the flat unpack's tree.
fn rootless_store(test: &str, xwhiteout: bool) {
    use std::os::unix::process::CommandExt;
    let w = workdir();
    let layout = w.path().join("layout");
    let (_, _) = image(&layout, &layers(), Comp::Gzip);
    let ok = std::process::Command::new("chown")
        .arg("-R")
        .arg(format!("{NOBODY}:{NOBODY}"))
        .arg(w.path())
        .status()
        .unwrap();
    assert!(ok.success());
    let (store_dir, flat) = (w.path().join("store"), w.path().join("flat"));
    let exe = std::env::current_exe().unwrap();
    let mut cmd = std::process::Command::new(&exe);
    cmd.uid(NOBODY).gid(NOBODY);
    let envs = [
        (LAYOUT_ENV, layout.as_path()),
        (STORE_ENV, &store_dir),
        (FLAT_ENV, &flat),
    ];
    run_child(cmd, test, "store", &envs, xwhiteout);

    let (_, _, chain) = chain_of(&layout);
    let store = LayerStore::open(&store_dir).unwrap();
    let top = snapshot(&store.diff_path(&chain[1]));
    let x = |p: &str, k: &str| top[p].xattrs.get(k).cloned();
    if xwhiteout {
        // overlayfs.rst: a zero-size regular file with overlay.whiteout, in a directory
        // marked opaque=x; the root of the layer too.
        for p in ["etc/gone", "dir"] {
            assert_eq!(top[p].kind, 'f', "{p}");
            assert_eq!(
                top[p].sha256,
                Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"")))
            );
            assert_eq!(x(p, "user.overlay.whiteout"), Some(b"y".to_vec()), "{p}");
        }
        assert_eq!(x("etc", "user.overlay.opaque"), Some(b"x".to_vec()));
        // In the opaque directory, overlayfs would show them as files: there are none.
        assert!(!top.contains_key("data/old") && !top.contains_key("data/sub"));
        assert_eq!(
            xattrs(&store.diff_path(&chain[1])).get("user.overlay.opaque"),
            Some(&b"x".to_vec())
        );
    } else {
        // Linux >= 5.8 lets anyone make the 0/0 whiteout device.
        assert_eq!((top["etc/gone"].kind, top["etc/gone"].rdev), ('c', 0));
        assert_eq!(x("etc", "user.overlay.opaque"), None);
    }
    assert_eq!(x("data", "user.overlay.opaque"), Some(b"y".to_vec()));
    assert!(top
        .values()
        .all(|n| !n.xattrs.keys().any(|k| k.starts_with("trusted."))));
    assert_eq!(
        std::fs::read_to_string(
            store_dir
                .join("layers")
                .join(format!("sha256-{}/overlay_xattrs", chain[1].digest()))
        )
        .unwrap(),
        "user"
    );

    // nobody, in a user namespace of its own: mounts with userxattr.
    let ctr = w.path().join("ctr-userns");
    std::fs::create_dir(&ctr).unwrap();
    std::os::unix::fs::chown(&ctr, Some(NOBODY), Some(NOBODY)).unwrap();
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--mount"]).arg(&exe);
    cmd.uid(NOBODY).gid(NOBODY);
    let envs = [
        (LAYOUT_ENV, layout.as_path()),
        (STORE_ENV, &store_dir),
        (FLAT_ENV, &flat),
        (CTR_ENV, &ctr),
    ];
    run_child(cmd, test, "mount", &envs, false);

    // root, over the same layers: userxattr too, since that is where their metadata is.
    let mount = store.mount(&chain, w.path().join("ctr-root")).unwrap();
    assert!(mount_options(mount.merged()).contains("userxattr"));
    assert_same_tree(mount.merged(), &flat, true);
    mount.unmount().unwrap();
}

#[test]
fn rootless_store_with_xattr_whiteouts() {
    if !child_part() {
        rootless_store("tests::rootless_store_with_xattr_whiteouts", true);
    }
}

#[test]
fn rootless_store_with_device_whiteouts() {
    if !child_part() {
        rootless_store("tests::rootless_store_with_device_whiteouts", false);
    }
}
