//! Unpacking multi-layer images: `oci-unpack` flat and layer-store, side by side with
//! `umoci unpack` and plain `tar -x` (with `-z`/`--zstd`) of the same layer blobs, on the same
//! filesystem, in one run. `benches/compare-unpack.sh` prints the ratios.
//!
//! Datasets (all built at start-up in a temp dir under the target dir):
//! - `small`: `OCI_BENCH_SMALL_FILES` files of 0-4 KiB (default 100000) in three layers, the
//!   last one whiting out a tenth of the first.
//! - `large`: four files of `OCI_BENCH_LARGE_MIB` MiB (default 64) in two layers.
//! - `distro`: the host directories in `OCI_BENCH_DISTRO` (default
//!   `/usr/share/doc /usr/lib/python3.11 /usr/share/perl`), one layer each: a stand-in for a
//!   distribution rootfs, since debootstrap needs a mirror.
//!
//! Each is written gzip (level 6), zstd (level 3) and uncompressed.
//!
//! Everything runs in a temp dir under `OCI_BENCH_DIR` (default: the target dir). On ext4, a
//! tree created right after another was deleted spends most of its time in the kernel's inode
//! allocator (`recently_deleted` scans), the same for every tool, so the ratios tend to 1 and
//! vary run to run; `OCI_BENCH_DIR=/dev/shm` (tmpfs) measures the unpackers themselves.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use oci_image::spec::image::*;
use oci_image::{Image, Layout};
use oci_unpack::{LayerStore, Unpacker};

#[derive(Clone, Copy, Debug)]
enum Comp {
    Gzip,
    Zstd,
    None,
}

impl Comp {
    fn name(self) -> &'static str {
        match self {
            Comp::Gzip => "gzip",
            Comp::Zstd => "zstd",
            Comp::None => "tar",
        }
    }
}

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs each benchmark once without
/// it, and then the datasets are kept tiny so the test suite stays fast.
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn env_u64(k: &str, d: u64) -> u64 {
    let d = if bench_mode() { d } else { d.min(300) / 64 + 3 };
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn header(path: &str, size: u64, kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_path(path).expect("path");
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_cksum();
    h
}

fn small_layers() -> Vec<Vec<u8>> {
    let n = env_u64("OCI_BENCH_SMALL_FILES", 100_000);
    let per = n / 3;
    let mut out = Vec::new();
    let mut x: u32 = 12345;
    for l in 0..3 {
        let mut b = tar::Builder::new(Vec::new());
        for d in 0..(per / 100).max(1) {
            let dir = format!("l{l}/d{d}/");
            b.append(&header(&dir, 0, tar::EntryType::Directory, 0o755), &[][..])
                .expect("dir");
            for f in 0..100 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let len = (x % 4096) as usize;
                let data: Vec<u8> = (0..len)
                    .map(|i| (i as u8).wrapping_mul(31) ^ (x as u8))
                    .collect();
                let p = format!("{dir}f{f}");
                b.append(
                    &header(&p, len as u64, tar::EntryType::Regular, 0o644),
                    &data[..],
                )
                .expect("file");
            }
        }
        if l == 2 {
            for d in 0..(per / 1000).max(1) {
                let p = format!("l0/.wh.d{d}");
                b.append(&header(&p, 0, tar::EntryType::Regular, 0o644), &[][..])
                    .expect("wh");
            }
        }
        out.push(b.into_inner().expect("tar"));
    }
    out
}

fn large_layers() -> Vec<Vec<u8>> {
    let mib = env_u64("OCI_BENCH_LARGE_MIB", 64) as usize;
    let mut out = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for l in 0..2 {
        let mut b = tar::Builder::new(Vec::new());
        for f in 0..2 {
            // Half pseudo-random, half text-like: compresses about 2:1 like real binaries.
            let mut data = vec![0u8; mib << 20];
            for (i, c) in data.chunks_mut(8).enumerate() {
                if i % 2 == 0 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
                } else {
                    c.copy_from_slice(&b"abcdefgh"[..c.len()]);
                }
            }
            let p = format!("big/l{l}f{f}.bin");
            b.append(
                &header(&p, data.len() as u64, tar::EntryType::Regular, 0o755),
                &data[..],
            )
            .expect("file");
        }
        out.push(b.into_inner().expect("tar"));
    }
    out
}

fn distro_layers() -> Vec<Vec<u8>> {
    let dirs = std::env::var("OCI_BENCH_DISTRO").unwrap_or_else(|_| {
        if bench_mode() {
            "/usr/share/doc /usr/lib/python3.11 /usr/share/perl".to_string()
        } else {
            "/usr/share/perl5".to_string()
        }
    });
    let mut out = Vec::new();
    for d in dirs.split_whitespace() {
        let p = Path::new(d);
        if !p.is_dir() {
            continue;
        }
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(false);
        b.append_dir_all(d.trim_start_matches('/'), p)
            .expect("append dir");
        out.push(b.into_inner().expect("tar"));
    }
    out
}

fn compress(tar: &[u8], c: Comp) -> Vec<u8> {
    match c {
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            e.write_all(tar).expect("gzip");
            e.finish().expect("gzip")
        }
        Comp::Zstd => zstd::encode_all(tar, 3).expect("zstd"),
        Comp::None => tar.to_vec(),
    }
}

struct Case {
    layout_dir: PathBuf,
    layout: Layout,
    image: Image,
    blobs: Vec<PathBuf>,
    comp: Comp,
}

fn build(dir: &Path, layers: &[Vec<u8>], comp: Comp) -> Case {
    let layout_dir = dir.join(format!("layout-{}", comp.name()));
    let layout = Layout::create(&layout_dir).expect("layout");
    let mt = match comp {
        Comp::Gzip => MediaType::ImageLayerGzip,
        Comp::Zstd => MediaType::ImageLayerZstd,
        Comp::None => MediaType::ImageLayer,
    };
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        descs.push(
            layout
                .put_blob(mt.clone(), &compress(l, comp))
                .expect("blob"),
        );
        diff_ids.push(oci_image::sha256_digest(l).to_string());
    }
    let config = ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(diff_ids)
                .build()
                .expect("rootfs"),
        )
        .build()
        .expect("config");
    let config = layout
        .put_json(MediaType::ImageConfig, &config)
        .expect("config");
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(descs.clone())
        .build()
        .expect("manifest");
    let d = layout.put_manifest(&manifest).expect("manifest");
    layout.tag("latest", &d).expect("tag");
    let image = layout.resolve("latest", None).expect("resolve");
    let blobs = descs
        .iter()
        .map(|d| layout.blob_path(d.digest()).expect("path"))
        .collect();
    Case {
        layout_dir,
        layout,
        image,
        blobs,
        comp,
    }
}

/// Times `f` writing into a fresh directory each iteration; removal is not timed.
fn timed(scratch: &Path, iters: u64, mut f: impl FnMut(&Path)) -> Duration {
    let mut total = Duration::ZERO;
    for i in 0..iters {
        let t = scratch.join(format!("run-{i}"));
        let start = Instant::now();
        f(&t);
        total += start.elapsed();
        let _ = Command::new("rm").arg("-rf").arg(&t).status();
    }
    total
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bench_case(c: &mut Criterion, group: &str, layers: &[Vec<u8>], comps: &[Comp]) {
    let base = std::env::var_os("OCI_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    let dir = tempfile::tempdir_in(base).expect("temp dir");
    let mut g = c.benchmark_group(format!("unpack_{group}"));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.warm_up_time(Duration::from_millis(1));
    for &comp in comps {
        let case = build(dir.path(), layers, comp);
        let scratch = dir.path().join("scratch");
        std::fs::create_dir_all(&scratch).expect("scratch");
        let u = Unpacker::new();
        g.bench_function(BenchmarkId::new("oci-unpack-flat", comp.name()), |b| {
            b.iter_custom(|n| {
                timed(&scratch, n, |t| {
                    u.unpack(&case.layout, &case.image, t).expect("unpack")
                })
            })
        });
        g.bench_function(BenchmarkId::new("oci-unpack-store", comp.name()), |b| {
            b.iter_custom(|n| {
                timed(&scratch, n, |t| {
                    let store = LayerStore::open(t).expect("store");
                    store
                        .prepare(&u, &case.layout, &case.image, "bench")
                        .expect("prepare");
                })
            })
        });
        g.bench_function(BenchmarkId::new("tar-x", comp.name()), |b| {
            b.iter_custom(|n| {
                timed(&scratch, n, |t| {
                    std::fs::create_dir(t).expect("mkdir");
                    for blob in &case.blobs {
                        let mut cmd = Command::new("tar");
                        match case.comp {
                            Comp::Gzip => cmd.arg("-z"),
                            Comp::Zstd => cmd.arg("--zstd"),
                            Comp::None => &mut cmd,
                        };
                        run(cmd.arg("-xf").arg(blob).arg("-C").arg(t));
                    }
                })
            })
        });
        // umoci 0.4 reads gzip and plain layers only.
        if !matches!(comp, Comp::Zstd) {
            g.bench_function(BenchmarkId::new("umoci-unpack", comp.name()), |b| {
                b.iter_custom(|n| {
                    timed(&scratch, n, |t| {
                        run(Command::new("umoci")
                            .arg("unpack")
                            .arg("--image")
                            .arg(format!("{}:latest", case.layout_dir.display()))
                            .arg(t))
                    })
                })
            });
        }
    }
    g.finish();
}

fn unpack(c: &mut Criterion) {
    let only = std::env::var("OCI_BENCH_UNPACK").unwrap_or_else(|_| "small,large,distro".into());
    let all = [Comp::Gzip, Comp::Zstd, Comp::None];
    if only.contains("small") {
        bench_case(c, "small", &small_layers(), &all);
    }
    if only.contains("large") {
        bench_case(c, "large", &large_layers(), &all);
    }
    if only.contains("distro") {
        bench_case(c, "distro", &distro_layers(), &all);
    }
}

criterion_group!(benches, unpack);
criterion_main!(benches);
