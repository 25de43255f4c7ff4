//! `ocibox` end to end on the demo image: the README's main job, and the layout subcommands.

use std::process::{Command, Output};

fn ocibox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ocibox"))
        .args(args)
        .output()
        .expect("run ocibox")
}

fn ok(args: &[&str]) -> String {
    let out = ocibox(args);
    assert!(
        out.status.success(),
        "ocibox {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn demo_inspect_validate_tag_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    let d = dir.to_str().unwrap();
    let wrote = ok(&["demo", d]);
    assert!(wrote.contains(":demo (sha256:"), "{wrote}");

    let text = ok(&["inspect", &format!("{d}:demo")]);
    assert!(text.contains("Layers:    2"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", &format!("{d}:demo")])).unwrap();
    let digest = json["digest"].as_str().unwrap().to_string();
    assert_eq!(json["layers"].as_array().unwrap().len(), 2);
    assert!(json["config"]["config"]["Cmd"][0] == "/bin/sh");
    // By digest, too.
    let by_digest: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", &format!("{d}@{digest}")])).unwrap();
    assert_eq!(by_digest["digest"], digest.as_str());

    let v = ok(&["validate", d]);
    assert!(v.contains("0 errors"), "{v}");

    ok(&["tag", &format!("{d}:demo"), "v1"]);
    assert_eq!(ok(&["tags", d]), "demo\nv1\n");
    ok(&["untag", &format!("{d}:demo")]);
    let gc = ok(&["gc", d]);
    assert!(gc.starts_with("0 blobs removed"), "{gc}");
    ok(&["untag", &format!("{d}:v1")]);
    let gc = ok(&["gc", d]);
    assert!(
        gc.contains("4 blobs removed"),
        "manifest, config, 2 layers: {gc}"
    );

    // Errors: a clear message and a non-zero exit, no panic.
    let out = ocibox(&["inspect", &format!("{d}:nope")]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn validate_exits_1_on_a_corrupt_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("layout");
    let ds = d.to_str().unwrap();
    ok(&["demo", ds]);
    // Corrupt one byte of the largest blob (the busybox layer, or whatever is biggest).
    let blobs = d.join("blobs/sha256");
    let biggest = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&biggest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&biggest, bytes).unwrap();
    let out = ocibox(&["validate", ds]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("digest mismatch"), "{text}");
    assert!(
        text.contains("layers[") || text.contains("config"),
        "{text}"
    );
}

#[test]
fn a_closed_pipe_ends_quietly() {
    use std::io::Read;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("layout");
    let ds = d.to_str().unwrap();
    ok(&["demo", ds]);
    // More than a pipe buffer (64 KiB) of output, so that ocibox is still writing when the
    // reader goes away.
    let long = "x".repeat(3000);
    for i in 0..40 {
        ok(&["tag", &format!("{ds}:demo"), &format!("t{i}{long}")]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocibox"))
        .args(["tags", ds])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read one byte, then close the pipe, as `| head -c1` does.
    let mut out = child.stdout.take().unwrap();
    let mut b = [0u8; 1];
    out.read_exact(&mut b).unwrap();
    drop(out);
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(status.code() != Some(101), "{status:?}");
}

/// Issue 15: a partial download kept for resume stays through `gc` (it may be resumed within
/// the hour) and goes with `gc --partials`, so a disk a failed pull filled can be freed.
#[test]
fn gc_partials_frees_abandoned_downloads() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("l");
    ok(&["demo", l.to_str().unwrap()]);
    let layout = oci_image::Layout::open(&l).unwrap();
    let mut p = layout
        .partial_blob(&oci_image::sha256_digest(b"never finished"))
        .unwrap();
    p.write_all(&[0u8; 4096]).unwrap();
    let path = p.path().to_path_buf();
    drop(p);
    ok(&["gc", l.to_str().unwrap()]);
    assert!(path.exists());
    let out = ok(&["gc", "--partials", l.to_str().unwrap()]);
    assert!(out.contains("1 stale temporary files removed"), "{out}");
    assert!(!path.exists());
}
