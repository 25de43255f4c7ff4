//! Spawn through the library alone: `Sandbox::create` + `start` + `wait` + `delete` of a
//! `/bin/true` container (busybox-static rootfs, runc's default namespaces and mounts, a v1
//! cgroup), side by side with the floor of `unshare` creating the same namespaces and running
//! `/bin/true` (util-linux, a fork + unshare + exec).
//!
//! Run: `cargo bench -p benches --bench spawn`. The command-line comparison with runc, crun and
//! youki is `benches/compare-spawn.sh`.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion};
use oci_sandbox::{Options, Sandbox};

fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    for d in ["bin", "dev", "proc", "sys", "tmp"] {
        std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", dir.path().join("bin/busybox")).expect("busybox-static");
    std::os::unix::fs::symlink("busybox", dir.path().join("bin/true")).expect("symlink");
    dir
}

fn spawn(c: &mut Criterion) {
    let root = rootfs();
    let mut spec = oci_spec::runtime::Spec::default();
    let process = spec.process_mut().as_mut().expect("process");
    process.set_args(Some(vec!["/bin/true".into()]));
    process.set_terminal(Some(false));
    spec.set_hostname(Some("bench".into()));
    // The default spec's cgroup mount and an explicit cgroup, as engines run containers.
    spec.linux_mut()
        .as_mut()
        .expect("linux")
        .set_cgroups_path(Some(
            format!("/spawnbench-lib-{}", std::process::id()).into(),
        ));
    let mut g = c.benchmark_group("spawn");
    g.sample_size(30);
    g.bench_function("oci-sandbox create+start+wait+delete /bin/true", |b| {
        b.iter(|| {
            let mut container =
                Sandbox::create(&spec, root.path(), Options::new()).expect("create");
            container.start().expect("start");
            container.wait().expect("wait");
            container.delete().expect("delete");
        })
    });
    g.bench_function(
        "unshare floor (pid, mount, uts, ipc, net, cgroup) /bin/true",
        |b| {
            b.iter(|| {
                let s = Command::new("unshare")
                    .args([
                        "--fork",
                        "--pid",
                        "--mount",
                        "--uts",
                        "--ipc",
                        "--net",
                        "--cgroup",
                        "/bin/true",
                    ])
                    .status()
                    .expect("unshare");
                assert!(s.success());
            })
        },
    );
    g.finish();
}

criterion_group!(benches, spawn);
criterion_main!(benches);
