//! Builds the probe (probe.rs beside this file) for the tests of any crate of the workspace:
//! include it with `#[path = ".../oci-sandbox/tests/support/build_probe.rs"] mod build_probe;`.

use std::path::{Path, PathBuf};

/// The probe (tests/support/probe.rs) built static, once per source text: with plain
/// `rustc -C target-feature=+crt-static` (it needs only std) into Cargo's temp dir for tests,
/// written under a temp name and renamed, so parallel test binaries share one build.
pub fn probe_binary() -> &'static Path {
    use std::hash::{Hash, Hasher};
    static PROBE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    const SOURCE: &str = include_str!("probe.rs");
    PROBE.get_or_init(|| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        SOURCE.hash(&mut h);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let bin = dir.join(format!("oci-probe-{:016x}", h.finish()));
        if bin.exists() {
            return bin;
        }
        let tmp = dir.join(format!(
            "probe-build-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&tmp).unwrap();
        let src = tmp.join("probe.rs");
        std::fs::write(&src, SOURCE).unwrap();
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let out = std::process::Command::new(rustc)
            .args([
                "--edition",
                "2021",
                "-O",
                "-C",
                "target-feature=+crt-static",
            ])
            .args(["-C", "strip=symbols", "-o"])
            .arg(tmp.join("probe"))
            .arg(&src)
            .output()
            .expect("running rustc for the probe");
        assert!(
            out.status.success(),
            "building the probe: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(tmp.join("probe"), &bin).unwrap();
        let _ = std::fs::remove_dir_all(&tmp);
        bin
    })
}
