//! The command-line conventions people already know (issue 16): podman's exit statuses,
//! `--format json` parsed back, each cause of an error said once, and a snapshot of every
//! `--help` so that a change to the interface shows in review.
//!
//! The snapshots are in `examples/tests/snapshots/help/`; after a deliberate change, refresh
//! them with `UPDATE_SNAPSHOTS=1 cargo test -p examples --test cli` and review the diff. They
//! are taken as root (ocibox's `--root` default is /var/lib/ocibox for root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ocibox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ocibox"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run ocibox")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A private store and the demo image in a layout.
struct Env {
    tmp: tempfile::TempDir,
    image: String,
}

impl Env {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let layout = tmp.path().join("demo");
        let out = ocibox(&["demo", layout.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let image = format!("{}:demo", layout.display());
        Env { tmp, image }
    }

    fn layout(&self) -> PathBuf {
        self.tmp.path().join("demo")
    }

    fn ocibox(&self, args: &[&str]) -> Output {
        let root = self.tmp.path().join("store");
        let mut all = vec!["--root", root.to_str().unwrap()];
        all.extend_from_slice(args);
        ocibox(&all)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let containers = self.tmp.path().join("store/containers");
        for e in std::fs::read_dir(containers)
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = e.file_name().to_string_lossy().into_owned();
            let _ = self.ocibox(&["rm", "--force", &id]);
        }
    }
}

// podman-run(1), "Exit Status": "125 The error is with Podman itself"; "126 The contained
// command cannot be invoked"; "127 The contained command cannot be found"; "Otherwise, the exit
// code is the exit code of the contained command". docker-run(1) says the same.
#[test]
fn exit_statuses_are_podmans() {
    let env = Env::new();
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm", env.image.as_str()];
        all.extend_from_slice(args);
        let out = env.ocibox(&all);
        (out.status.code(), text(&out.stderr))
    };
    // The command is not found.
    let (code, err) = run(&["/no/such/command"]);
    assert_eq!(code, Some(127), "{err}");
    // It exists but cannot be invoked: not executable, or a directory.
    let (code, err) = run(&["/etc/passwd"]);
    assert_eq!(code, Some(126), "{err}");
    assert_eq!(run(&["/tmp"]).0, Some(126));
    // The container's own status, and 128+n for a signal (SIGTERM is 15).
    assert_eq!(run(&["sh", "-c", "exit 3"]).0, Some(3));
    // Killed with SIGKILL (9) from outside, as `podman kill` does.
    let root = env.tmp.path().join("store");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocibox"))
        .args([
            "--root",
            root.to_str().unwrap(),
            "run",
            "--rm",
            "--name",
            "killed",
        ])
        .args([env.image.as_str(), "sleep", "1000"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while !env.ocibox(&["kill", "killed"]).status.success() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the container ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(child.wait().unwrap().code(), Some(128 + 9));
    // ocibox itself fails: a missing image, a bad option value, bad usage (podman exits 125 on
    // an unknown flag or a missing argument, where clap alone exits 2).
    assert_eq!(
        env.ocibox(&["inspect", "/no/such/layout:tag"])
            .status
            .code(),
        Some(125)
    );
    assert_eq!(run(&["--pull", "sometimes"]).0, Some(125));
    assert_eq!(ocibox(&["--no-such-flag"]).status.code(), Some(125));
    assert_eq!(ocibox(&["run"]).status.code(), Some(125));
    assert_eq!(ocibox(&["no-such-command"]).status.code(), Some(125));
    // Help and version are not failures.
    assert_eq!(ocibox(&["--help"]).status.code(), Some(0));
    assert_eq!(ocibox(&["--version"]).status.code(), Some(0));
}

#[test]
fn each_cause_of_an_error_is_said_once() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nothing-here");
    let out = ocibox(&["inspect", &format!("{}:tag", missing.display())]);
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].starts_with("ocibox: "), "{err}");
    assert!(
        lines[1..].iter().all(|l| l.starts_with("  caused by: ")),
        "one line per cause: {err}"
    );
    // No line repeats another's text.
    for (i, l) in lines.iter().enumerate() {
        let body = l
            .trim_start_matches("ocibox: ")
            .trim_start_matches("  caused by: ");
        for other in &lines[i + 1..] {
            assert!(!other.contains(body), "{err}");
        }
    }
}

#[test]
fn format_json_parses_back() {
    let env = Env::new();
    let layout = env.layout();
    let l = layout.to_str().unwrap();

    let tags: serde_json::Value =
        serde_json::from_slice(&env.ocibox(&["tags", "--format", "json", l]).stdout).unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["demo"]));
    assert_eq!(tags["Layout"], l);

    let out = env.ocibox(&["inspect", "--format", "json", &env.image]);
    let inspect: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(inspect["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(inspect["layers"].as_array().unwrap().len(), 2);
    assert_eq!(inspect["config"]["config"]["Cmd"][0], "/bin/sh");
    assert!(inspect["layers"][0]["diffID"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    // The text form is the default.
    assert!(text(&env.ocibox(&["inspect", &env.image]).stdout).starts_with("Digest:"));

    // A container that stays after it exits (no --rm), listed by ps.
    let out = env.ocibox(&["run", "--name", "json-ps", &env.image, "true"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ps: serde_json::Value =
        serde_json::from_slice(&env.ocibox(&["ps", "--format", "json"]).stdout).unwrap();
    let c = ps
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["Id"] == "json-ps")
        .expect("the container is listed");
    assert_eq!(c["Command"], serde_json::json!(["true"]));
    assert!(c["State"].is_string());
    assert!(env.ocibox(&["rm", "json-ps"]).status.success());

    // An empty store lists no images, as an empty JSON array.
    let images: serde_json::Value =
        serde_json::from_slice(&env.ocibox(&["images", "--format", "json"]).stdout).unwrap();
    assert_eq!(images, serde_json::json!([]));
    // (images with entries: ocibox_registry.rs, where an image is pulled into the store)
}

/// `BIN [SUB] --help` for the binary and each of its subcommands, hidden ones excepted.
fn help_pages(bin: &str, subcommands: &[&str]) -> Vec<(String, String)> {
    let mut pages = Vec::new();
    let exe = match bin {
        "ocibox" => env!("CARGO_BIN_EXE_ocibox"),
        _ => env!("CARGO_BIN_EXE_ocirun"),
    };
    for sub in std::iter::once("").chain(subcommands.iter().copied()) {
        let mut cmd = Command::new(exe);
        if !sub.is_empty() {
            cmd.arg(sub);
        }
        let out = cmd.arg("--help").env("COLUMNS", "100").output().unwrap();
        assert!(out.status.success(), "{bin} {sub} --help");
        let name = if sub.is_empty() {
            bin.to_string()
        } else {
            format!("{bin}-{sub}")
        };
        pages.push((name, text(&out.stdout)));
    }
    pages
}

/// The subcommand names a top-level help lists (the lines indented by two spaces under a
/// heading other than Options/Arguments).
fn listed_subcommands(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_list = false;
    for line in help.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            in_list = !line.starts_with("Options") && !line.starts_with("Arguments");
            continue;
        }
        if in_list {
            if let Some(name) = line
                .strip_prefix("  ")
                .and_then(|l| l.split_whitespace().next())
            {
                if name != "help" && !name.starts_with('-') {
                    out.push(name.to_string());
                }
            }
        }
    }
    out
}

fn check_snapshots(bin: &str) {
    let top = help_pages(bin, &[]).remove(0).1;
    let subs = listed_subcommands(&top);
    assert!(subs.len() > 5, "{top}");
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/help");
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut stale = Vec::new();
    for (name, page) in help_pages(bin, &subs) {
        let file = dir.join(format!("{name}.txt"));
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&file, &page).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&file).unwrap_or_default();
        if want != page {
            stale.push(format!("{}:\n{page}", file.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "the command-line interface changed; if that is meant, refresh the snapshots with \
         `UPDATE_SNAPSHOTS=1 cargo test -p examples --test cli` and commit them:\n{}",
        stale.join("\n")
    );
}

#[test]
fn help_snapshots_ocibox() {
    check_snapshots("ocibox");
}

#[test]
fn help_snapshots_ocirun() {
    check_snapshots("ocirun");
}

#[test]
fn the_top_level_help_says_what_ocibox_is_and_groups_its_commands() {
    let help = text(&ocibox(&["--help"]).stdout);
    assert!(
        help.starts_with("ocibox: pull, unpack and run OCI container images"),
        "{help}"
    );
    for group in [
        "Containers:",
        "Images (the store):",
        "Layouts (DIR, DIR:TAG, DIR@DIGEST):",
    ] {
        assert!(help.contains(group), "{help}");
    }
    assert!(help.contains("[default: "), "{help}");
}

#[test]
fn completions_and_man_pages_are_generated_for_both_binaries() {
    for shell in ["bash", "zsh", "fish"] {
        let out = ocibox(&["completion", shell]);
        assert!(out.status.success());
        let script = text(&out.stdout);
        assert!(
            script.contains("ocibox") && script.contains("inspect"),
            "{shell}"
        );
        let out = Command::new(env!("CARGO_BIN_EXE_ocirun"))
            .args(["--generate-completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let script = text(&out.stdout);
        assert!(
            script.contains("ocirun") && script.contains("console-socket"),
            "{shell}"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    assert!(ocibox(&["man", dir.to_str().unwrap()]).status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_ocirun"))
        .args(["--generate-man", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    for page in [
        "ocibox.1",
        "ocibox-run.1",
        "ocibox-pull.1",
        "ocirun.1",
        "ocirun-create.1",
    ] {
        let roff = std::fs::read_to_string(dir.join(page)).unwrap_or_default();
        assert!(roff.contains(".TH"), "{page}: {roff}");
    }
}
