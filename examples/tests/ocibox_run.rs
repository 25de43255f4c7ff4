//! `ocibox run` end to end on the demo image (busybox-static), each option checked from
//! inside the container. Every test has its own store (`--root`) and removes its containers.

use std::path::Path;
use std::process::{Command, Output};

struct Env {
    tmp: tempfile::TempDir,
    image: String,
}

impl Env {
    fn new() -> Self {
        Self::with_demo_args(&[])
    }

    /// The demo image written with `ocibox demo ARGS... LAYOUT`.
    fn with_demo_args(demo_args: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let layout = tmp.path().join("demo");
        let out = Command::new(env!("CARGO_BIN_EXE_ocibox"))
            .arg("demo")
            .args(demo_args)
            .arg(&layout)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let image = format!("{}:demo", layout.display());
        Env { tmp, image }
    }

    fn root(&self) -> std::path::PathBuf {
        self.tmp.path().join("store")
    }

    fn ocibox(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ocibox"))
            .arg("--root")
            .arg(self.root())
            .args(args)
            .output()
            .unwrap()
    }

    /// `ocibox run --rm [opts] IMAGE sh -c SCRIPT`, returning (exit code, stdout).
    fn run(&self, opts: &[&str], script: &str) -> (i32, String) {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(opts);
        args.push(&self.image);
        args.extend_from_slice(&["sh", "-c", script]);
        let out = self.ocibox(&args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.code().is_none() || stdout.is_empty() && !out.status.success() {
            eprintln!("stderr: {}", String::from_utf8_lossy(&out.stderr));
        }
        (out.status.code().unwrap_or(-1), stdout)
    }

    /// `ocibox run --rm IMAGE` prints the demo's report: the motd, pid 1, the overlay root.
    fn runs_the_demo_report(&self) {
        let out = self.ocibox(&["run", "--rm", &self.image]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("Hello from the ocibox demo image"), "{text}");
        assert!(text.contains("pid: 1"), "{text}");
        assert!(
            text.contains(" / overlay "),
            "the root is the container's overlay: {text}"
        );
    }

    fn ok(&self, opts: &[&str], script: &str) -> String {
        let (code, out) = self.run(opts, script);
        assert_eq!(code, 0, "run {opts:?} {script:?}: {out}");
        out
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Remove whatever a failing test left.
        if let Ok(entries) = std::fs::read_dir(self.root().join("containers")) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.ocibox(&["rm", "--force", &id]);
            }
        }
    }
}

#[test]
fn the_demo_image_runs_isolated() {
    Env::new().runs_the_demo_report();
}

/// Issue 16: on a host without busybox-static, `ocibox demo` packs the host's /bin/sh with its
/// interpreter and libraries, and the image runs and prints the same report.
#[test]
fn the_demo_image_runs_without_a_static_busybox() {
    let env = Env::with_demo_args(&["--busybox", "/nonexistent/busybox"]);
    env.runs_the_demo_report();
    // Only the shell is there: busybox's applets are not.
    assert_eq!(env.run(&[], "echo $PATH").1.trim(), "/bin");
    assert_eq!(env.run(&[], "ls /").0, 127);
}

#[test]
fn exit_codes_env_workdir_user_hostname_entrypoint() {
    let env = Env::new();
    assert_eq!(env.run(&[], "exit 7").0, 7);
    let out = env.ok(
        &[
            "-e",
            "FOO=bar",
            "-w",
            "/tmp",
            "-u",
            "65534:65534",
            "--hostname",
            "boxy",
        ],
        "echo $FOO; pwd; id -u; id -g; hostname",
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["bar", "/tmp", "65534", "65534", "boxy"],
        "{out}"
    );
    let envfile = env.tmp.path().join("env");
    std::fs::write(&envfile, "A=1\n# comment\nB=2\n").unwrap();
    let out = env.ok(&["--env-file", envfile.to_str().unwrap()], "echo $A$B");
    assert_eq!(out.trim(), "12");
    // --entrypoint replaces the image's and resets its Cmd.
    let args = [
        "run",
        "--rm",
        "--entrypoint",
        "/bin/echo",
        &env.image,
        "from",
        "echo",
    ];
    let out = env.ocibox(&args);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "from echo");
}

#[test]
fn read_only_volumes_tmpfs_network_caps() {
    let env = Env::new();
    let (code, _) = env.run(&["--read-only"], "touch /newfile");
    assert_ne!(code, 0, "a read-only root refuses writes");
    let host = env.tmp.path().join("vol");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "from host").unwrap();
    let v = format!("{}:/data", host.display());
    let out = env.ok(&["-v", &v], "cat /data/in; echo written > /data/out");
    assert!(out.contains("from host"));
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "written\n"
    );
    let vro = format!("{}:/data:ro", host.display());
    assert_ne!(env.run(&["-v", &vro], "echo x > /data/out2").0, 0);
    let out = env.ok(
        &["--tmpfs", "/scratch"],
        "grep ' /scratch ' /proc/self/mounts",
    );
    assert!(out.contains("tmpfs"), "{out}");
    let out = env.ok(&["--network", "none"], "ls /sys/class/net");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["lo"], "{out}");
    let out = env.ok(&["--cap-drop", "ALL"], "grep CapEff /proc/self/status");
    assert!(out.contains("0000000000000000"), "{out}");
    let out = env.ok(&["--cap-add", "NET_ADMIN"], "grep CapBnd /proc/self/status");
    let bnd = u64::from_str_radix(out.split_whitespace().last().unwrap(), 16).unwrap();
    assert!(
        bnd & (1 << 12) != 0,
        "CAP_NET_ADMIN in the bounding set: {out}"
    );
    // Docker's default seccomp profile: unshare is refused without CAP_SYS_ADMIN…
    let (code, _) = env.run(&[], "busybox unshare -U true");
    assert_ne!(code, 0);
    // …and allowed (as far as seccomp goes) when unconfined.
    let _ = env.run(&["--security-opt", "seccomp=unconfined"], "true");
}

#[test]
fn resource_limits_reach_the_cgroup() {
    let env = Env::new();
    let out = env.ocibox(&[
        "run",
        "-d",
        "--name",
        "limited",
        "--memory",
        "64m",
        "--pids-limit",
        "32",
        "--cpus",
        "0.5",
        &env.image,
        "sleep",
        "1000",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cg = Path::new("/sys/fs/cgroup");
    let read = |p: &str| {
        std::fs::read_to_string(cg.join(p))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(
        read("memory/ocibox/limited/memory.limit_in_bytes"),
        "67108864"
    );
    assert_eq!(read("pids/ocibox/limited/pids.max"), "32");
    assert_eq!(read("cpu/ocibox/limited/cpu.cfs_quota_us"), "50000");
    let ps = String::from_utf8_lossy(&env.ocibox(&["ps"]).stdout).into_owned();
    assert!(ps.contains("limited") && ps.contains("running"), "{ps}");
    assert!(env.ocibox(&["stop", "-t", "1", "limited"]).status.success());
    assert!(env.ocibox(&["rm", "limited"]).status.success());
    assert!(!cg.join("memory/ocibox/limited").exists(), "cgroup removed");
    assert!(!env.root().join("containers/limited").exists());
}

#[test]
fn detached_logs_and_layer_sharing() {
    let env = Env::new();
    let out = env.ocibox(&[
        "run",
        "-d",
        "--name",
        "a",
        &env.image,
        "sh",
        "-c",
        "echo logged; sleep 1000",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.ocibox(&["run", "-d", "--name", "b", &env.image, "sleep", "1000"]);
    assert!(out.status.success());
    // Two containers of one image share its two layers.
    let layers = std::fs::read_dir(env.root().join("layers"))
        .unwrap()
        .count();
    let mut logs = String::new();
    for _ in 0..100 {
        logs = String::from_utf8_lossy(&env.ocibox(&["logs", "a"]).stdout).into_owned();
        if logs.contains("logged") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(logs.contains("logged"), "{logs}");
    assert!(env.ocibox(&["rm", "--force", "a", "b"]).status.success());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(env.root().to_str().unwrap()),
        "no overlay left mounted"
    );
    assert!(layers >= 2, "layers dir has {layers} entries");
}

#[test]
fn exec_unpack_and_bundle() {
    let env = Env::new();
    let out = env.ocibox(&["run", "-d", "--name", "ex", &env.image, "sleep", "1000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.ocibox(&[
        "exec",
        "-e",
        "X=42",
        "-w",
        "/etc",
        "ex",
        "sh",
        "-c",
        "echo $X $(pwd); exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42 /etc");
    assert!(env.ocibox(&["rm", "--force", "ex"]).status.success());

    // A flat unpack, as umoci's.
    let flat = env.tmp.path().join("flat");
    assert!(env
        .ocibox(&["unpack", &env.image, flat.to_str().unwrap()])
        .status
        .success());
    assert_eq!(
        std::fs::read_to_string(flat.join("etc/hostname")).unwrap(),
        "ocibox-demo\n"
    );

    // A bundle that ocirun and runc both run.
    let bundle = env.tmp.path().join("bundle");
    let out = env.ocibox(&[
        "bundle",
        &env.image,
        bundle.to_str().unwrap(),
        "cat",
        "/etc/motd",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for runtime in [env!("CARGO_BIN_EXE_ocirun"), "runc"] {
        let root = env.tmp.path().join(format!("state-{}", runtime.len()));
        let out = Command::new(runtime)
            .args([
                "--root",
                root.to_str().unwrap(),
                "run",
                "--bundle",
                bundle.to_str().unwrap(),
                "bundled",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{runtime}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Hello from the ocibox demo image"),
            "{runtime}"
        );
    }
}

/// Issue 15: `ocibox check` rehashes the unpacked layers against the digests recorded when they
/// were unpacked and finds an edit under `layers/…/diff`; `--repair` does not swap a layer
/// under a running container's overlay (the library's tests cover the repair itself).
#[test]
fn check_finds_an_edited_layer() {
    let env = Env::new();
    let out = env.ocibox(&["run", "-d", "--name", "chk", &env.image, "sleep", "1000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.ocibox(&["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Edit the first regular file of some layer.
    let mut stack = vec![env.root().join("layers/layers")];
    let mut victim = None;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let t = e.file_type().unwrap();
            let under_diff = e.path().components().any(|c| c.as_os_str() == "diff");
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() && under_diff && victim.is_none() {
                victim = Some(e.path());
            }
        }
    }
    let victim = victim.expect("a file in a layer");
    std::fs::write(&victim, b"tampered").unwrap();
    let out = env.ocibox(&["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("MODIFIED"), "{stdout}");
    let out = env.ocibox(&["check", "--repair"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("not repaired") && stdout.contains("mounted"),
        "{stdout}"
    );
    assert!(env.ocibox(&["rm", "--force", "chk"]).status.success());
    // The layers belong to the image (issue 18): the edited one outlives the container...
    let out = env.ocibox(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    // ...and goes with the image.
    assert!(env.ocibox(&["rmi", &env.image]).status.success());
    let out = env.ocibox(&["check"]);
    assert!(out.status.success());
}

/// The `diff/` directories of the layer store, by chain ID, with their inode numbers.
fn layer_inodes(root: &Path) -> Vec<(String, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out: Vec<(String, u64)> = std::fs::read_dir(root.join("layers/layers"))
        .map(|it| {
            it.flatten()
                .filter_map(|e| {
                    let m = std::fs::metadata(e.path().join("diff")).ok()?;
                    Some((e.file_name().to_string_lossy().into_owned(), m.ino()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Issue 18: layers belong to the image, as in podman. `run --rm` removes the container, not
/// the image's unpacked layers, so a second `run --rm` of the image reuses the very same layer
/// directories (same inodes: nothing was unpacked again); `rmi` of the image releases them.
#[test]
fn run_rm_keeps_the_image_layers_until_rmi() {
    let env = Env::new();
    assert_eq!(env.ok(&[], "echo one"), "one\n");
    let first = layer_inodes(&env.root());
    assert_eq!(
        first.len(),
        2,
        "the demo image's two layers stay: {first:?}"
    );
    assert_eq!(env.ok(&[], "echo two"), "two\n");
    assert_eq!(layer_inodes(&env.root()), first, "not unpacked again");
    // No container is left, yet the layers are still referenced: by the image.
    let containers = std::fs::read_dir(env.root().join("containers"))
        .map(|it| it.count())
        .unwrap_or(0);
    assert_eq!(containers, 0);

    // A kept container holds the layers too: `rmi` leaves them to it, its `rm` ends them.
    let out = env.ocibox(&["run", "-d", "--name", "keep", &env.image, "sleep", "1000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.ocibox(&["rmi", &env.image]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        layer_inodes(&env.root()),
        first,
        "still used by a container"
    );
    assert!(env.ocibox(&["rm", "--force", "keep"]).status.success());
    assert_eq!(
        layer_inodes(&env.root()),
        vec![],
        "released by rmi, then rm"
    );

    // And without a container: run --rm, then rmi removes them.
    assert_eq!(env.ok(&[], "echo three"), "three\n");
    assert_eq!(layer_inodes(&env.root()).len(), 2);
    let out = env.ocibox(&["rmi", &env.image]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(layer_inodes(&env.root()), vec![]);
}
