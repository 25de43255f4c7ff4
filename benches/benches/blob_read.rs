//! Verified read of a large blob through `Layout::open_blob` (size and sha256 checked while
//! streaming), side by side with coreutils' `sha256sum` of the same file.
//!
//! Size: `OCI_BENCH_BLOB_MIB` (default 1024, i.e. 1 GiB, under `cargo bench`; 8 MiB when
//! `cargo test --all-targets` runs the bench once).
//!
//! Run: `cargo bench -p benches --bench blob_read`.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::io::{Read, Write};
use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oci_image::spec::image::{Descriptor, MediaType};
use oci_image::Layout;

fn blob_read(c: &mut Criterion) {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs each bench once without
    // it, where a small blob is enough to prove the bench works.
    let default_mib = if std::env::args().any(|a| a == "--bench") {
        1024
    } else {
        8
    };
    let mib: u64 = std::env::var("OCI_BENCH_BLOB_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_mib);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let layout = Layout::create(dir.path()).expect("layout");
    // A non-repeating-looking pattern (xorshift) so nothing can shortcut the hashing.
    let mut w = layout.blob_writer().expect("writer");
    let mut chunk = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..mib {
        for b in chunk.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes());
        }
        w.write_all(&chunk).expect("write");
    }
    let (digest, size) = w.commit(None).expect("commit");
    let desc = Descriptor::new(MediaType::ImageLayer, size, digest);
    let path = layout.blob_path(desc.digest()).expect("path");

    let mut g = c.benchmark_group("blob_read");
    g.throughput(Throughput::Bytes(size));
    g.sample_size(10);
    let mut buf = vec![0u8; 256 << 10];
    g.bench_function(format!("verified_read_{mib}MiB"), |b| {
        b.iter(|| {
            let mut r = layout.open_blob(&desc).expect("open");
            while r.read(&mut buf).expect("verified read") != 0 {}
        })
    });
    g.bench_function(format!("sha256sum_{mib}MiB"), |b| {
        b.iter(|| {
            let out = Command::new("sha256sum")
                .arg(&path)
                .output()
                .expect("sha256sum");
            assert!(out.status.success());
        })
    });
    g.finish();
}

criterion_group!(benches, blob_read);
criterion_main!(benches);
