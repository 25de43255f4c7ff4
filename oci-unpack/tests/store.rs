//! The layer store: overlay-form layers keyed by chain ID, sharing, reference counts, and the
//! overlay mount showing the same tree as a flat unpack.

mod common;

use common::*;
use oci_unpack::{chain_ids, Error, LayerStore, Unpacker};

fn layers() -> Vec<Vec<u8>> {
    let mut l1 = Tar::new();
    l1.dir("etc/", 0o755)
        .file("etc/keep", b"k", 0o644)
        .file("etc/gone", b"g", 0o644)
        .dir("data/", 0o755)
        .file("data/old", b"o", 0o644)
        .dir("data/sub/", 0o755)
        .file("data/sub/deep", b"d", 0o644)
        .symlink("link", "etc/keep");
    let mut l2 = Tar::new();
    l2.dir("etc/", 0o755)
        .whiteout("etc/.wh.gone")
        .file("etc/new", b"n", 0o600)
        .dir("data/", 0o700)
        .whiteout("data/.wh..wh..opq")
        .file("data/fresh", b"f", 0o644)
        .hardlink("etc/new2", "etc/new");
    vec![l1.bytes(), l2.bytes()]
}

#[test]
fn layers_are_stored_in_overlay_form_by_chain_id() {
    let w = workdir();
    let (layout, image) = image(&w.path().join("layout"), &layers(), Comp::Gzip);
    let store = LayerStore::open(w.path().join("store")).unwrap();
    let chain = store
        .prepare(&Unpacker::new(), &layout, &image, "img")
        .unwrap();
    let diff_ids: Vec<_> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
    assert_eq!(chain, chain_ids(&diff_ids));
    let top = store.diff_path(&chain[1]);
    let s = snapshot(&top);
    // overlayfs.rst: a whiteout is a 0/0 character device; an opaque directory has the xattr.
    assert_eq!((s["etc/gone"].kind, s["etc/gone"].rdev), ('c', 0));
    assert_eq!(
        s["data"]
            .xattrs
            .get("trusted.overlay.opaque")
            .map(Vec::as_slice),
        Some(&b"y"[..])
    );
    assert!(
        !s.contains_key("etc/keep"),
        "lower content is not copied up"
    );
    // Nothing left in the store's scratch space.
    assert_eq!(
        std::fs::read_dir(store.path().join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn overlay_mount_matches_the_flat_unpack() {
    let w = workdir();
    let (layout, image) = image(&w.path().join("layout"), &layers(), Comp::Zstd);
    let flat = w.path().join("flat");
    Unpacker::new().unpack(&layout, &image, &flat).unwrap();

    let store = LayerStore::open(w.path().join("store")).unwrap();
    let chain = store
        .prepare(&Unpacker::new(), &layout, &image, "ctr")
        .unwrap();
    let mount = store.mount(&chain, w.path().join("ctr")).unwrap();
    let merged = snapshot(mount.merged());
    let want = snapshot(&flat);
    assert_eq!(
        merged.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (p, n) in &want {
        let m = &merged[p];
        assert_eq!(
            (m.kind, m.mode, m.uid, m.gid, &m.target, &m.sha256),
            (n.kind, n.mode, n.uid, n.gid, &n.target, &n.sha256),
            "{p}"
        );
    }
    // Copy-on-write: the container's writes land in its upper directory only.
    std::fs::write(mount.merged().join("etc/keep"), b"changed").unwrap();
    assert_eq!(
        std::fs::read(mount.upper().join("etc/keep")).unwrap(),
        b"changed"
    );
    assert_eq!(
        std::fs::read(store.diff_path(&chain[0]).join("etc/keep")).unwrap(),
        b"k"
    );
    mount.unmount().unwrap();
}

#[test]
fn layers_are_shared_and_reference_counted() {
    let w = workdir();
    let ls = layers();
    let (layout, image) = image(&w.path().join("layout"), &ls, Comp::Gzip);
    // A second image sharing the base layer, with its own top layer.
    let mut other = Tar::new();
    other.file("other", b"o", 0o644);
    let (layout2, image2) = common::image(
        &w.path().join("layout2"),
        &[ls[0].clone(), other.bytes()],
        Comp::Gzip,
    );

    let store = LayerStore::open(w.path().join("store")).unwrap();
    let u = Unpacker::new();
    let a = store.prepare(&u, &layout, &image, "a").unwrap();
    let base_inode = std::fs::metadata(store.diff_path(&a[0]).join("etc/keep")).unwrap();
    let b = store.prepare(&u, &layout2, &image2, "b").unwrap();
    assert_eq!(a[0], b[0]);
    assert_ne!(a[1], b[1]);
    // The shared layer was not unpacked again.
    let again = std::fs::metadata(store.diff_path(&b[0]).join("etc/keep")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&base_inode),
        std::os::unix::fs::MetadataExt::ino(&again)
    );
    let layers = store.layers().unwrap();
    assert_eq!(layers.len(), 3);
    let base = layers.iter().find(|l| l.chain_id == a[0]).unwrap();
    assert_eq!(base.refs, ["a", "b"]);

    assert_eq!(store.release("a").unwrap(), vec![a[1].clone()]);
    assert!(store.contains(&a[0]) && !store.contains(&a[1]));
    assert_eq!(store.release("b").unwrap().len(), 2);
    assert!(store.layers().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(store.path().join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn a_failing_layer_leaves_nothing_in_the_store() {
    let w = workdir();
    let (layout, mut image) = image(&w.path().join("layout"), &layers(), Comp::Gzip);
    image.layers[1].diff_id = oci_image::sha256_digest(b"wrong");
    let store = LayerStore::open(w.path().join("store")).unwrap();
    let e = store
        .prepare(&Unpacker::new(), &layout, &image, "x")
        .unwrap_err();
    assert!(matches!(e, Error::DiffIdMismatch { .. }), "{e}");
    // The good layer was unpacked in parallel, but nothing is published when one fails.
    assert!(store.layers().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(store.path().join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn store_whiteouts_stay_inside_the_layer() {
    let host = Host::new();
    let w = workdir();
    let mut l1 = Tar::new();
    l1.symlink("hd", &host.s());
    let mut l2 = Tar::new();
    l2.whiteout("hd/.wh.passwd")
        .whiteout("../../.wh.passwd")
        .whiteout(&format!("{}/.wh..wh..opq", host.s()));
    let (layout, image) = image(
        &w.path().join("layout"),
        &[l1.bytes(), l2.bytes()],
        Comp::Gzip,
    );
    let store = LayerStore::open(w.path().join("store")).unwrap();
    // `hd` is not a directory in the second layer's own tree: creating its whiteout there fails
    // or lands inside; either way the host is untouched.
    let _ = store.prepare(&Unpacker::new(), &layout, &image, "x");
    host.assert_untouched();
}

#[test]
fn bad_owner_names_are_refused() {
    let w = workdir();
    let (layout, image) = image(&w.path().join("layout"), &layers(), Comp::Gzip);
    let store = LayerStore::open(w.path().join("store")).unwrap();
    for bad in ["../x", "", ".hidden", "a/b"] {
        let e = store
            .prepare(&Unpacker::new(), &layout, &image, bad)
            .unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{bad}: {e}");
    }
}

/// Two handles on one store (as two processes would have), preparing and releasing images that
/// share their base layer, over and over: the store's lock keeps every layer an owner holds
/// present and complete while the other side removes what it no longer needs, and nothing is
/// left at the end.
#[test]
fn concurrent_prepare_and_release_of_shared_layers() {
    let w = workdir();
    let ls = layers();
    let (layout_a, image_a) = image(&w.path().join("layout-a"), &ls, Comp::Gzip);
    let mut other = Tar::new();
    other.file("other", b"o", 0o644);
    let (layout_b, image_b) = common::image(
        &w.path().join("layout-b"),
        &[ls[0].clone(), other.bytes()],
        Comp::Zstd,
    );
    let store_dir = w.path().join("store");
    let cases = [
        (&layout_a, &image_a, "a", "etc/new"),
        (&layout_b, &image_b, "b", "other"),
    ];
    std::thread::scope(|s| {
        for (i, &(layout, image, owner, top_file)) in cases.iter().enumerate() {
            let store_dir = &store_dir;
            let ctr = w.path().join(format!("ctr-{owner}"));
            s.spawn(move || {
                let store = LayerStore::open(store_dir).unwrap();
                let u = Unpacker::new();
                for round in 0..25 {
                    let chain = store.prepare(&u, layout, image, owner).unwrap();
                    for c in &chain {
                        assert!(store.contains(c), "{owner} round {round}: {c} missing");
                    }
                    assert_eq!(
                        std::fs::read(store.diff_path(&chain[0]).join("etc/keep")).unwrap(),
                        b"k"
                    );
                    assert!(store.diff_path(&chain[1]).join(top_file).exists());
                    if round % 5 == i {
                        // The merged tree is whole while the other side releases.
                        let dir = ctr.join(round.to_string());
                        let mount = store.mount(&chain, &dir).unwrap();
                        assert!(mount.merged().join("etc/keep").is_file());
                        assert!(mount.merged().join(top_file).is_file());
                        mount.unmount().unwrap();
                    }
                    store.release(owner).unwrap();
                }
            });
        }
    });
    let store = LayerStore::open(&store_dir).unwrap();
    assert!(store.layers().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(store.path().join("tmp")).unwrap().count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(store.path().join("owners"))
            .unwrap()
            .count(),
        0
    );
}

/// layer.md "Opaque Whiteout": "an opaque whiteout ... indicates that all siblings are hidden
/// in the lower layer"; at a layer's root that is every file of the layers below. overlayfs
/// ignores the opaque xattr on a lower layer's root, so the store does not stack the layers
/// below: mounted for real, the merged tree is the flat unpack's.
#[test]
fn an_opaque_root_hides_every_lower_layer() {
    let w = workdir();
    let mut l1 = Tar::new();
    l1.dir("etc/", 0o755)
        .file("etc/old", b"o", 0o644)
        .file("gone", b"g", 0o644);
    let mut l2 = Tar::new();
    l2.whiteout(".wh..wh..opq").file("new", b"n", 0o644);
    let mut l3 = Tar::new();
    l3.file("top", b"t", 0o644);
    let (layout, image) = image(
        &w.path().join("layout"),
        &[l1.bytes(), l2.bytes(), l3.bytes()],
        Comp::Gzip,
    );
    let flat = w.path().join("flat");
    Unpacker::new().unpack(&layout, &image, &flat).unwrap();
    assert!(!flat.join("gone").exists() && !flat.join("etc").exists());

    let store = LayerStore::open(w.path().join("store")).unwrap();
    let chain = store
        .prepare(&Unpacker::new(), &layout, &image, "c")
        .unwrap();
    let mount = store.mount(&chain, w.path().join("ctr")).unwrap();
    let merged = snapshot(mount.merged());
    assert_eq!(
        merged.keys().collect::<Vec<_>>(),
        snapshot(&flat).keys().collect::<Vec<_>>()
    );
    assert_eq!(std::fs::read(mount.merged().join("top")).unwrap(), b"t");
    mount.unmount().unwrap();
}

/// Through the store: a gzip blob labelled as a plain tar is refused naming both (image-spec
/// layer.md: the media type decides), and accepted by a lenient unpacker.
#[test]
fn store_refuses_a_compression_its_media_type_does_not_name() {
    let w = workdir();
    let mut t = Tar::new();
    t.file("x", b"x", 0o644);
    let tar = t.bytes();
    let layout = oci_image::Layout::create(w.path().join("layout")).unwrap();
    let blob = compress(&tar, Comp::Gzip);
    let label = oci_image::spec::image::MediaType::ImageLayer;
    let desc = layout.put_blob(label.clone(), &blob).unwrap();
    let (_, mut image) = image(
        &w.path().join("layout"),
        std::slice::from_ref(&tar),
        Comp::None,
    );
    image.layers[0].descriptor = desc;
    let store = LayerStore::open(w.path().join("store")).unwrap();
    let e = store
        .prepare(&Unpacker::new(), &layout, &image, "c")
        .unwrap_err();
    assert!(matches!(e, Error::CompressionMismatch { .. }), "{e}");
    assert!(e.to_string().contains(&label.to_string()) && e.to_string().contains("gzip"));
    assert!(store.layers().unwrap().is_empty());
    let chain = store
        .prepare(&Unpacker::new().lenient(true), &layout, &image, "c")
        .unwrap();
    assert_eq!(
        std::fs::read(store.diff_path(&chain[0]).join("x")).unwrap(),
        b"x"
    );
}

/// Through the store: nesting far over the old cap of 256 unpacks and mounts.
#[test]
fn store_takes_deep_nesting() {
    let w = workdir();
    let deep = "d/".repeat(700);
    let mut l1 = Tar::new();
    l1.long_pax(&format!("{deep}a"), b"a");
    let mut l2 = Tar::new();
    l2.long_pax(&format!("{deep}b"), b"b");
    let (layout, image) = image(
        &w.path().join("layout"),
        &[l1.bytes(), l2.bytes()],
        Comp::Zstd,
    );
    let store = LayerStore::open(w.path().join("store")).unwrap();
    let chain = store
        .prepare(&Unpacker::new(), &layout, &image, "c")
        .unwrap();
    let mount = store.mount(&chain, w.path().join("ctr")).unwrap();
    for f in ["a", "b"] {
        assert_eq!(
            std::fs::read(mount.merged().join(format!("{deep}{f}"))).unwrap(),
            f.as_bytes()
        );
    }
    mount.unmount().unwrap();
    assert_eq!(store.release("c").unwrap().len(), 2);
}

/// Issue 12: a layer in use by a mount survives `release` (the mounted tree stays whole, and a
/// second container gets the same layers), and unmounting removes what the mount made
/// (`upper`, `work`, `merged`, the container directory) and then the released layers.
#[test]
fn a_mounted_layer_survives_release_and_unmount_cleans_up() {
    let w = workdir();
    let (layout, image) = image(&w.path().join("layout"), &layers(), Comp::Gzip);
    let store = LayerStore::open(w.path().join("store")).unwrap();
    let chain = store
        .prepare(&Unpacker::new(), &layout, &image, "ctr1")
        .unwrap();
    let ctr = w.path().join("ctr1");
    let mount = store.mount(&chain, &ctr).unwrap();
    std::fs::write(mount.merged().join("written"), b"w").unwrap();
    assert_eq!(
        store.release("ctr1").unwrap(),
        Vec::<oci_image::spec::image::Digest>::new()
    );
    for c in &chain {
        assert!(store.contains(c), "{c} was removed while mounted");
    }
    assert_eq!(
        std::fs::read(mount.merged().join("etc/keep")).unwrap(),
        b"k"
    );
    // A kept mount (as a runtime holds one) protects its layers the same way.
    let ctr2 = w.path().join("ctr2");
    let kept = store.mount(&chain, &ctr2).unwrap().keep();
    assert!(kept.join("etc/new").is_file());

    let removed = mount.unmount().unwrap();
    assert!(removed.is_empty(), "ctr2 still stacks them: {removed:?}");
    assert!(
        !ctr.exists(),
        "the mount made {} and must remove it",
        ctr.display()
    );
    assert!(store.contains(&chain[0]));

    let removed = store.unmount(&ctr2).unwrap();
    assert_eq!(removed.len(), chain.len());
    assert!(!ctr2.exists());
    assert!(store.layers().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(store.path().join("mounts"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(store.path().join("tmp")).unwrap().count(),
        0
    );
}

/// Unmount removes only what the mount made: a container directory the caller made stays,
/// with the caller's own files, while `upper`, `work` and `merged` go.
#[test]
fn unmount_keeps_what_the_caller_made() {
    let w = workdir();
    let (layout, image) = image(&w.path().join("layout"), &layers(), Comp::Gzip);
    let store = LayerStore::open(w.path().join("store")).unwrap();
    let chain = store
        .prepare(&Unpacker::new(), &layout, &image, "c")
        .unwrap();
    let ctr = w.path().join("ctr");
    std::fs::create_dir(&ctr).unwrap();
    std::fs::write(ctr.join("config.json"), b"{}").unwrap();
    let mount = store.mount(&chain, &ctr).unwrap();
    std::fs::create_dir_all(mount.merged().join("deep/er")).unwrap();
    drop(mount);
    let left: Vec<_> = std::fs::read_dir(&ctr)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["config.json"]);
    // Still referenced by its owner: unmounting removed no layer.
    assert!(chain.iter().all(|c| store.contains(c)));
}

/// A mount record whose overlay is gone (the machine restarted, or the process that mounted
/// it was killed before unmounting and the mount was removed by hand) pins nothing: `gc`
/// drops it and the unreferenced layers it named.
#[test]
fn gc_drops_records_of_overlays_no_longer_mounted() {
    let w = workdir();
    let (layout, image) = image(&w.path().join("layout"), &layers(), Comp::Gzip);
    let store = LayerStore::open(w.path().join("store")).unwrap();
    let chain = store
        .prepare(&Unpacker::new(), &layout, &image, "c")
        .unwrap();
    let ctr = w.path().join("ctr");
    let merged = store.mount(&chain, &ctr).unwrap().keep();
    store.release("c").unwrap();
    assert!(chain.iter().all(|c| store.contains(c)));
    let r = store.gc().unwrap();
    assert_eq!(r.stale_mounts_removed, 0);
    assert!(r.layers_removed.is_empty());
    rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH).unwrap();
    let r = store.gc().unwrap();
    assert_eq!(r.stale_mounts_removed, 1);
    assert_eq!(r.layers_removed.len(), chain.len());
    assert!(store.layers().unwrap().is_empty());
}

/// layer.md "Hardlinks": a hardlink may name a file a lower layer added. The store unpacks
/// each layer alone, so the target is found through the layers below (a symlinked directory on
/// the way, a whiteout and an opaque directory honoured) and copied up: mounted for real, the
/// merged tree is the flat unpack's, both names one inode, and the lower layer is unchanged.
#[test]
fn a_hardlink_to_a_lower_layers_file_is_copied_up() {
    let w = workdir();
    let mut l1 = Tar::new();
    l1.dir_owned("srv/", 0o750, 7, 8)
        .file_x("srv/a", b"lower a", 0o640, &[("user.k", b"v")])
        .dir("real/", 0o755)
        .file_owned("real/f", b"through a symlink", 0o604, 3, 4)
        .symlink("via", "/real")
        .file("gone", b"g", 0o644)
        .dir("opq/", 0o755)
        .file("opq/hidden", b"h", 0o644);
    let mut l2 = Tar::new();
    l2.whiteout(".wh.gone")
        .dir("opq/", 0o755)
        .whiteout("opq/.wh..wh..opq")
        .file("mid", b"m", 0o644);
    let mut l3 = Tar::new();
    l3.hardlink("b", "srv/a")
        .hardlink("c", "b")
        .hardlink("d", "via/f")
        .hardlink("e", "mid");
    let layers = [l1.bytes(), l2.bytes(), l3.bytes()];
    let (layout, image) = image(&w.path().join("layout"), &layers, Comp::Gzip);
    let flat = w.path().join("flat");
    Unpacker::new().unpack(&layout, &image, &flat).unwrap();

    let store = LayerStore::open(w.path().join("store")).unwrap();
    let chain = store
        .prepare(&Unpacker::new(), &layout, &image, "c")
        .unwrap();
    let mount = store.mount(&chain, w.path().join("ctr")).unwrap();
    let (m, f) = (snapshot(mount.merged()), snapshot(&flat));
    assert_eq!(m.keys().collect::<Vec<_>>(), f.keys().collect::<Vec<_>>());
    for (p, n) in &f {
        let g = &m[p];
        assert_eq!(
            (
                g.kind,
                g.mode,
                g.uid,
                g.gid,
                &g.target,
                &g.sha256,
                &g.xattrs,
                &g.link_group
            ),
            (
                n.kind,
                n.mode,
                n.uid,
                n.gid,
                &n.target,
                &n.sha256,
                &n.xattrs,
                &n.link_group
            ),
            "{p}"
        );
        assert_eq!(g.mtime, n.mtime, "{p}");
    }
    assert_eq!(m["b"].link_group.as_deref(), Some("b"));
    assert_eq!(m["srv/a"].link_group.as_deref(), Some("b"));
    // The lower layers are unchanged: one link each.
    let lower = snapshot(&store.diff_path(&chain[0]));
    assert_eq!(lower["srv/a"].link_group, None);
    mount.unmount().unwrap();

    // A link to a file the layers below deleted is still refused.
    let mut l4 = Tar::new();
    l4.hardlink("x", "gone");
    let (layout2, image2) = common::image(
        &w.path().join("layout2"),
        &[layers[0].clone(), layers[1].clone(), l4.bytes()],
        Comp::Gzip,
    );
    let e = store
        .prepare(&Unpacker::new(), &layout2, &image2, "d")
        .unwrap_err();
    assert!(e.to_string().contains("link to \"gone\""), "{e}");
    Unpacker::new()
        .unpack(&layout2, &image2, w.path().join("flat2"))
        .unwrap_err();
}

/// Issue 15: the layer store is verified against a digest of each layer's tree recorded at
/// unpack time; an edit under `layers/…/diff` (content, mode, an added file) is found, and
/// `repair` unpacks the layer again from its blob, keeping its references. A layer a mounted
/// overlay stacks is not swapped under the mount.
#[test]
fn verify_finds_edited_layers_and_repair_restores_them() {
    use oci_unpack::LayerState;
    let w = workdir();
    let mut l3 = Tar::new();
    l3.hardlink("etc/lower-link", "etc/keep");
    let mut ls = layers();
    ls.push(l3.bytes());
    let (layout, image) = image(&w.path().join("layout"), &ls, Comp::Gzip);
    let store = LayerStore::open(w.path().join("store")).unwrap();
    let chain = store
        .prepare(&Unpacker::new(), &layout, &image, "c")
        .unwrap();
    let intact = |checks: &[oci_unpack::LayerCheck]| {
        checks
            .iter()
            .filter(|c| c.state == LayerState::Intact)
            .count()
    };
    assert_eq!(intact(&store.verify().unwrap()), 3);

    let base = store.diff_path(&chain[0]);
    std::fs::write(base.join("etc/keep"), b"K").unwrap();
    std::fs::set_permissions(
        base.join("data/old"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    std::fs::write(store.diff_path(&chain[2]).join("planted"), b"x").unwrap();
    let checks = store.verify().unwrap();
    let modified: Vec<_> = checks
        .iter()
        .filter(|c| matches!(c.state, LayerState::Modified { .. }))
        .map(|c| c.chain_id.clone())
        .collect();
    let mut want = vec![chain[0].clone(), chain[2].clone()];
    want.sort_by_key(|d| d.to_string());
    assert_eq!(modified, want);

    // Not under a mount.
    let mount = store.mount(&chain, w.path().join("ctr")).unwrap();
    let e = store
        .repair(&Unpacker::new(), &layout, &chain[0])
        .unwrap_err();
    assert!(e.to_string().contains("mounted"), "{e}");
    mount.unmount().unwrap();

    for c in &modified {
        store.repair(&Unpacker::new(), &layout, c).unwrap();
    }
    assert_eq!(intact(&store.verify().unwrap()), 3);
    assert_eq!(std::fs::read(base.join("etc/keep")).unwrap(), b"k");
    assert!(!store.diff_path(&chain[2]).join("planted").exists());
    // The copied-up hardlink target is back too, and the references stayed.
    assert!(store.diff_path(&chain[2]).join("etc/lower-link").is_file());
    assert!(store.layers().unwrap().iter().all(|l| l.refs == ["c"]));
    assert_eq!(
        std::fs::read_dir(store.path().join("tmp")).unwrap().count(),
        0
    );
}
