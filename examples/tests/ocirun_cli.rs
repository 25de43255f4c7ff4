//! ocirun's command line where it used to differ from runc's (issue 16), each case run under
//! runc (the oracle on this machine) and ocirun, with private state roots: the exit status
//! must be runc's and the message must say what runc's says.

use std::path::Path;
use std::process::{Command, Output};

fn run(bin: &str, root: &Path, args: &[&str], cwd: &Path) -> Output {
    let exe = if bin == "runc" {
        "runc"
    } else {
        env!("CARGO_BIN_EXE_ocirun")
    };
    Command::new(exe)
        .arg("--root")
        .arg(root)
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{exe}: {e}"))
}

/// Runs `args` under both runtimes; returns (runc's, ocirun's) (status, stderr).
fn both(args: &[&str], cwd: &Path) -> [(Option<i32>, String); 2] {
    let tmp = tempfile::tempdir().unwrap();
    ["runc", "ocirun"].map(|bin| {
        let out = run(bin, &tmp.path().join(bin), args, cwd);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
}

#[test]
fn an_unknown_log_format_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let [runc, ocirun] = both(&["--log-format", "xml", "list"], tmp.path());
    assert_eq!(runc.0, Some(1), "{}", runc.1);
    assert_eq!(ocirun.0, runc.0, "{}", ocirun.1);
    assert!(runc.1.contains("invalid log-format: xml"), "{}", runc.1);
    assert!(ocirun.1.contains("invalid log-format: xml"), "{}", ocirun.1);
    // The formats runc knows are accepted.
    let [runc, ocirun] = both(&["--log-format", "json", "list"], tmp.path());
    assert_eq!(
        (runc.0, ocirun.0),
        (Some(0), Some(0)),
        "{}\n{}",
        runc.1,
        ocirun.1
    );
}

#[test]
fn events_of_a_missing_container_fail() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["events", "no-such-container"][..],
        &["events", "--stats", "no-such-container"],
    ] {
        let [runc, ocirun] = both(args, tmp.path());
        assert_eq!(runc.0, Some(1), "{}", runc.1);
        assert_eq!(ocirun.0, runc.0, "{args:?}: {}", ocirun.1);
        assert!(runc.1.contains("does not exist"), "{}", runc.1);
        assert!(ocirun.1.contains("does not exist"), "{}", ocirun.1);
    }
}

/// runc `create` (and `run --detach`) of a bundle whose process.terminal is true, without
/// --console-socket: "cannot allocate tty if runc will detach without setting console socket",
/// exit status 1, and no container left behind.
#[test]
fn a_terminal_without_a_console_socket_is_refused_as_runc_does() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path();
    std::fs::create_dir_all(bundle.join("rootfs/bin")).unwrap();
    std::fs::copy("/bin/busybox", bundle.join("rootfs/bin/sh"))
        .expect("busybox-static (./scripts/test installs it)");
    // runc's own default config: process.terminal is true.
    let spec = Command::new("runc")
        .arg("spec")
        .current_dir(bundle)
        .status()
        .unwrap();
    assert!(spec.success());
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["terminal"], true);
    let id = format!("tty-{}", std::process::id());
    config["linux"]["cgroupsPath"] = format!("/ocirun-tests/{id}").into();
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();

    let roots = tempfile::tempdir().unwrap();
    for args in [
        &["create", id.as_str()][..],
        &["run", "--detach", id.as_str()],
    ] {
        let mut seen = Vec::new();
        for bin in ["runc", "ocirun"] {
            let root = roots.path().join(bin);
            let out = run(bin, &root, args, bundle);
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            let listed = run(bin, &root, &["list", "--quiet"], bundle);
            // Nothing is left, whatever happened.
            let _ = run(bin, &root, &["delete", "--force", &id], bundle);
            assert!(
                String::from_utf8_lossy(&listed.stdout).trim().is_empty(),
                "{bin} {args:?} left a container"
            );
            assert!(
                err.contains("cannot allocate tty if")
                    && err.contains("detach without setting console socket"),
                "{bin} {args:?}: {err}"
            );
            assert!(!err.contains("image config"), "{bin}: {err}");
            seen.push(out.status.code());
        }
        assert_eq!(seen, [Some(1), Some(1)], "{args:?}");
    }
}
