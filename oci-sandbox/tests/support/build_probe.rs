//! Builds the probe (probe.rs beside this file) for the tests of any crate of the workspace:
//! include it with `#[path = ".../oci-sandbox/tests/support/build_probe.rs"] mod build_probe;`.

use std::path::{Path, PathBuf};

/// The probe (tests/support/probe.rs) built static, once per source text: with plain
/// `rustc -C target-feature=+crt-static` (it needs only std) into Cargo's temp dir for tests,
/// written under a temp name and renamed, so parallel test binaries share one build.
#[allow(dead_code)] // not every test crate that includes this file runs the probe
pub fn probe_binary() -> &'static Path {
    static PROBE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PROBE.get_or_init(|| static_binary("probe", include_str!("probe.rs")))
}

/// Any std-only program `source` built as the probe is, named `name` and its source's hash.
#[allow(dead_code)] // not every test crate that includes this file builds other programs
pub fn static_binary(name: &str, source: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    source.hash(&mut h);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let bin = dir.join(format!("oci-{name}-{:016x}", h.finish()));
    if bin.exists() {
        return bin;
    }
    let tmp = dir.join(format!(
        "{name}-build-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&tmp).unwrap();
    let src = tmp.join(format!("{name}.rs"));
    std::fs::write(&src, source).unwrap();
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
        .arg(tmp.join(name))
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("running rustc for {name}: {e}"));
    assert!(
        out.status.success(),
        "building {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(tmp.join(name), &bin).unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
    bin
}
