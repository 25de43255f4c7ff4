//! `ocirun` driven as an engine drives runc: separate processes for create, start, state,
//! kill and delete, on real containers built from busybox-static. Each test has its own state
//! root, container id and cgroup, and removes its container even when it fails.

#[path = "support/console.rs"]
mod console;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use oci_spec::runtime::{HookBuilder, HooksBuilder, Spec};

const BUSYBOX: &str = "/bin/busybox";

fn unique(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A bundle with a busybox rootfs and the default config running `args`.
struct Bundle {
    dir: tempfile::TempDir,
    root: PathBuf,
    id: String,
}

impl Bundle {
    fn new(name: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "dev", "proc", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox"))
            .expect("busybox-static (./scripts/test installs it)");
        for applet in [
            "sh", "sleep", "cat", "echo", "hostname", "ls", "id", "true", "false", "tty", "trap",
            "touch", "ps", "mkdir",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        let id = unique(name);
        let mut spec = oci_runtime::default_spec().unwrap();
        spec.process_mut()
            .as_mut()
            .unwrap()
            .set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        spec.process_mut()
            .as_mut()
            .unwrap()
            .set_env(Some(vec!["PATH=/bin".into()]));
        spec.linux_mut()
            .as_mut()
            .unwrap()
            .set_cgroups_path(Some(format!("/ocirun-tests/{id}").into()));
        spec.set_hostname(Some("ocirun-test".into()));
        let root = dir.path().join("state");
        let b = Bundle { dir, root, id };
        b.write(&spec);
        b
    }

    fn write(&self, spec: &Spec) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(spec).unwrap(),
        )
        .unwrap();
    }

    fn spec(&self) -> Spec {
        serde_json::from_slice(&std::fs::read(self.dir.path().join("config.json")).unwrap())
            .unwrap()
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs ocirun with its output in files, not pipes: a created container inherits
    /// `create`'s stdio, as with runc, and would hold a pipe open for its whole life.
    fn ocirun(&self, args: &[&str]) -> Output {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let out_path = self.dir.path().join(format!("out-{n}"));
        let err_path = self.dir.path().join(format!("err-{n}"));
        let status = Command::new(env!("CARGO_BIN_EXE_ocirun"))
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .env_clear() // engines call with almost no environment
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&out_path).unwrap_or_default(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.ocirun(args);
        assert!(
            out.status.success(),
            "ocirun {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.ocirun(args);
        assert!(!out.status.success(), "ocirun {args:?} should fail");
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// A failed `exec`: runc-exec(8) exits with 255 when an error occurred, so that the
    /// failure cannot pass for the command's own exit status.
    fn exec_fails(&self, args: &[&str]) -> String {
        let mut all = vec!["exec"];
        all.extend(args);
        let out = self.ocirun(&all);
        assert_eq!(out.status.code(), Some(255), "ocirun {all:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn create(&self) {
        self.ok(&[
            "create",
            "--bundle",
            self.path().to_str().unwrap(),
            &self.id,
        ]);
    }

    fn state(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["state", &self.id])).unwrap()
    }

    fn status(&self) -> String {
        self.state()["status"].as_str().unwrap().to_string()
    }

    fn wait_status(&self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.status() != want {
            assert!(Instant::now() < deadline, "status never became {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = self.ocirun(&["delete", "--force", &self.id]);
    }
}

#[test]
fn lifecycle_create_start_state_kill_delete() {
    let b = Bundle::new("life", &["sleep", "1000"]);
    b.create();
    let st = b.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], b.id.as_str());
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(
        st["bundle"],
        std::fs::canonicalize(b.path()).unwrap().to_str().unwrap()
    );
    // The user's program has not run yet: the init is still ours, waiting.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("sleep"));

    b.ok(&["start", &b.id]);
    b.wait_status("running");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains("sleep"));

    // Errors the spec requires.
    assert!(b.fails(&["start", &b.id]).contains("running"));
    assert!(b.fails(&["delete", &b.id]).contains("running"));
    b.fails(&["create", "--bundle", b.path().to_str().unwrap(), &b.id]);

    let list: serde_json::Value =
        serde_json::from_str(&b.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(list[0]["id"], b.id.as_str());
    assert_eq!(list[0]["status"], "running");
    // runc's owner: the user owning the state directory (the tests run as root).
    assert_eq!(list[0]["owner"], "root");
    assert_eq!(b.ok(&["list", "-q"]).trim(), b.id);

    b.ok(&["kill", &b.id, "KILL"]);
    b.wait_status("stopped");
    // runtime.md, "Kill": a container that is neither created nor running "MUST generate an
    // error", worded as runc's, which engines match.
    assert!(b
        .fails(&["kill", &b.id, "TERM"])
        .contains("container not running"));
    // runc's `kill --all` on a stopped container (what containerd sends after each exit).
    b.ok(&["kill", "--all", &b.id, "9"]);
    b.ok(&["delete", &b.id]);
    assert!(b.fails(&["state", &b.id]).contains("does not exist"));
    b.fails(&["delete", &b.id]);
    // --force on a missing container is not an error (engines retry deletes).
    b.ok(&["delete", "--force", &b.id]);
    assert!(
        !Path::new(&format!("/sys/fs/cgroup/memory/ocirun-tests/{}", b.id)).exists(),
        "cgroup removed"
    );
}

#[test]
fn unknown_container_errors_say_not_found() {
    let b = Bundle::new("ghost", &["true"]);
    for args in [
        vec!["state", "nope"],
        vec!["start", "nope"],
        vec!["kill", "nope"],
        vec!["delete", "nope"],
    ] {
        let err = b.fails(&args);
        assert!(err.contains("does not exist"), "{args:?}: {err}");
    }
    assert!(b
        .fails(&["state", "../escape"])
        .contains("invalid container id"));
}

#[test]
fn exec_errors_exit_with_255_as_runc_exec() {
    let b = Bundle::new("execerr", &["sleep", "1000"]);
    let err = b.exec_fails(&["nope", "true"]);
    assert!(err.contains("does not exist"), "{err}");
    b.create();
    b.ok(&["start", &b.id]);
    b.wait_status("running");
    // A command that cannot start, in the foreground and detached (containerd's shim runs
    // `exec --detach --process FILE`): 255, not a status the command could have had.
    b.exec_fails(&[&b.id, "/nonexistent"]);
    b.exec_fails(&["--detach", &b.id, "/nonexistent"]);
    let process = b.path().join("process.json");
    std::fs::write(&process, "{not json").unwrap();
    b.exec_fails(&["--process", process.to_str().unwrap(), "--detach", &b.id]);
    // The command's own status is still the command's, 255 included.
    let out = b.ocirun(&["exec", &b.id, "sh", "-c", "exit 1"]);
    assert_eq!(out.status.code(), Some(1));
    let out = b.ocirun(&["exec", &b.id, "sh", "-c", "exit 255"]);
    assert_eq!(out.status.code(), Some(255));
    // Other commands still fail with 1.
    assert!(b.fails(&["start", &b.id]).contains(&b.id));
    b.ok(&["delete", "--force", &b.id]);
}

#[test]
fn run_returns_the_exit_code_and_removes_the_container() {
    let b = Bundle::new("run", &["sh", "-c", "exit 42"]);
    let out = b.ocirun(&["run", "--bundle", b.path().to_str().unwrap(), &b.id]);
    assert_eq!(
        out.status.code(),
        Some(42),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(b.fails(&["state", &b.id]).contains("does not exist"));
}

#[test]
fn run_output_shows_isolation() {
    let b = Bundle::new(
        "iso",
        &[
            "sh",
            "-c",
            "echo pid=$$; hostname; ls /proc | grep -c '^[0-9]'",
        ],
    );
    let out = b.ok(&["run", "--bundle", b.path().to_str().unwrap(), &b.id]);
    assert!(out.contains("pid=1"), "{out}");
    assert!(out.contains("ocirun-test"), "{out}");
}

#[test]
fn kill_a_container_whose_init_ignores_sigterm() {
    let b = Bundle::new(
        "stubborn",
        &["sh", "-c", "trap '' TERM; while true; do sleep 1; done"],
    );
    b.create();
    b.ok(&["start", &b.id]);
    b.wait_status("running");
    b.ok(&["kill", &b.id, "TERM"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(b.status(), "running", "SIGTERM is ignored");
    b.ok(&["kill", "--all", &b.id, "9"]);
    b.wait_status("stopped");
    b.ok(&["delete", &b.id]);
}

#[test]
fn delete_of_a_created_container_kills_it() {
    let b = Bundle::new("created", &["sleep", "1000"]);
    b.create();
    let pid = b.state()["pid"].as_i64().unwrap();
    b.ok(&["delete", &b.id]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
    {
        assert!(Instant::now() < deadline, "init {pid} still alive");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn hooks_run_in_order_with_the_state_and_failures_follow_the_spec() {
    let b = Bundle::new("hooks", &["true"]);
    let log = b.path().join("hooks.log");
    let hook = |name: &str| {
        HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "sh".to_string(),
                "-c".to_string(),
                format!("read -r s; echo \"{name} $s\" >> {}", log.display()),
            ])
            .build()
            .unwrap()
    };
    let mut spec = b.spec();
    #[allow(deprecated)]
    let hooks = HooksBuilder::default()
        .prestart(vec![hook("prestart")])
        .create_runtime(vec![hook("createRuntime")])
        .poststart(vec![hook("poststart")])
        .poststop(vec![hook("poststop")])
        .build()
        .unwrap();
    spec.set_hooks(Some(hooks));
    b.write(&spec);
    b.create();
    b.ok(&["start", &b.id]);
    b.wait_status("stopped");
    b.ok(&["delete", &b.id]);
    let text = std::fs::read_to_string(&log).unwrap();
    let order: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        order,
        ["prestart", "createRuntime", "poststart", "poststop"],
        "{text}"
    );
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("\"status\":\"creating\""),
        "{text}"
    );
    assert!(text.contains(&format!("\"id\":\"{}\"", b.id)));

    // A failing createRuntime hook fails create and leaves nothing behind.
    let b2 = Bundle::new("badhook", &["true"]);
    let mut spec = b2.spec();
    let bad = HookBuilder::default()
        .path("/bin/sh")
        .args(vec![
            "sh".into(),
            "-c".into(),
            "echo nope >&2; exit 7".into(),
        ])
        .build()
        .unwrap();
    spec.set_hooks(Some(
        HooksBuilder::default()
            .create_runtime(vec![bad])
            .build()
            .unwrap(),
    ));
    b2.write(&spec);
    let err = b2.fails(&["create", "--bundle", b2.path().to_str().unwrap(), &b2.id]);
    assert!(
        err.contains("createRuntime") && err.contains("nope"),
        "{err}"
    );
    assert!(b2.fails(&["state", &b2.id]).contains("does not exist"));
    assert!(!Path::new(&format!("/sys/fs/cgroup/memory/ocirun-tests/{}", b2.id)).exists());
}

#[test]
fn exec_pause_resume_ps() {
    let b = Bundle::new("exec", &["sleep", "1000"]);
    b.create();
    b.ok(&["start", &b.id]);
    b.wait_status("running");
    let out = b.ok(&["exec", &b.id, "sh", "-c", "echo pid=$$; hostname"]);
    assert!(out.contains("ocirun-test"), "{out}");
    assert!(!out.contains("pid=1\n"), "exec is not the init: {out}");
    let out = b.ocirun(&["exec", &b.id, "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let pids: Vec<i32> = serde_json::from_str(&b.ok(&["ps", "--format", "json", &b.id])).unwrap();
    assert!(!pids.is_empty());
    // exec --preserve-fds 1: fd 3 of the caller reaches the process, fd 4 does not.
    std::fs::write(b.path().join("passed"), "passed\n").unwrap();
    let script = format!(
        "exec {} --root {} exec --preserve-fds 1 {} sh -c 'cat <&3; ls /proc/self/fd/' \
         3<passed 4<passed",
        env!("CARGO_BIN_EXE_ocirun"),
        b.root.display(),
        b.id
    );
    let out = Command::new("/bin/sh")
        .args(["-c", &script])
        .current_dir(b.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(
        lines,
        ["passed", "0", "1", "2", "3", "4"],
        "ls's own fd is 4"
    );
    // Declared but not open: refused, rather than passing whatever takes those numbers.
    let out = b.ocirun(&["exec", "--preserve-fds", "100000", &b.id, "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not open"));

    b.ok(&["pause", &b.id]);
    assert_eq!(b.status(), "paused");
    b.exec_fails(&[&b.id, "true"]);
    b.ok(&["resume", &b.id]);
    assert_eq!(b.status(), "running");
    b.ok(&["delete", "--force", &b.id]);
}

#[test]
fn update_and_events_stats() {
    let b = Bundle::new("update", &["sleep", "1000"]);
    b.create();
    b.ok(&["start", &b.id]);
    b.ok(&[
        "update",
        "--memory",
        "67108864",
        "--pids-limit",
        "50",
        &b.id,
    ]);
    let limit = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/ocirun-tests/{}/memory.limit_in_bytes",
        b.id
    ))
    .unwrap();
    assert_eq!(limit.trim(), "67108864");
    let ev: serde_json::Value = serde_json::from_str(&b.ok(&["events", "--stats", &b.id])).unwrap();
    assert_eq!(ev["type"], "stats");
    b.ok(&["delete", "--force", &b.id]);
}

#[test]
fn console_socket_receives_the_pty() {
    use std::io::Read;
    let b = Bundle::new("tty", &["sh", "-c", "tty; echo hello-from-tty"]);
    let mut spec = b.spec();
    spec.process_mut()
        .as_mut()
        .unwrap()
        .set_terminal(Some(true));
    b.write(&spec);
    let sock = b.path().join("console.sock");
    let receiver = console::receiver(&sock);
    b.ok(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        &b.id,
    ]);
    let master = receiver.join().unwrap();
    b.ok(&["start", &b.id]);
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&out).contains("hello-from-tty") && Instant::now() < deadline {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("hello-from-tty"), "{text}");
    // A terminal without a console socket is refused when detached.
    let b2 = Bundle::new("tty2", &["true"]);
    b2.write(&spec);
    b2.fails(&["create", "--bundle", b2.path().to_str().unwrap(), &b2.id]);
}

#[test]
fn spec_features_version_and_logs() {
    let b = Bundle::new("misc", &["true"]);
    let dir = tempfile::tempdir().unwrap();
    b.ok(&["spec", "--bundle", dir.path().to_str().unwrap()]);
    let spec: Spec =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    oci_runtime::validate_spec(&spec).unwrap();
    b.fails(&["spec", "--bundle", dir.path().to_str().unwrap()]);
    let f: serde_json::Value = serde_json::from_str(&b.ok(&["features"])).unwrap();
    assert!(f["linux"]["namespaces"].as_array().unwrap().len() >= 7);
    assert!(b.ok(&["--version"]).contains("ocirun version"));
    // Errors go to --log as runc's JSON lines.
    let log = dir.path().join("log.json");
    let out = b.ocirun(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let line: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("does not exist"));
    assert!(b.fails(&["--systemd-cgroup", "list"]).contains("systemd"));
}

#[test]
fn seccomp_without_no_new_privileges_for_a_non_root_user() {
    // podman's configs: Docker's seccomp profile, noNewPrivileges false, a non-root user. The
    // filter must go in while the init still has CAP_SYS_ADMIN (before the uid change).
    let b = Bundle::new(
        "nnp",
        &["sh", "-c", "id -u; grep Seccomp: /proc/self/status"],
    );
    let mut spec = b.spec();
    let p = spec.process_mut().as_mut().unwrap();
    p.set_no_new_privileges(Some(false));
    let mut user = p.user().clone();
    user.set_uid(65534);
    user.set_gid(65534);
    p.set_user(user);
    b.write(&spec);
    let out = b.ok(&["run", "--bundle", b.path().to_str().unwrap(), &b.id]);
    assert!(out.contains("65534"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "a filter is installed: {out}");
}

#[test]
fn ambient_capabilities_that_cannot_be_raised_are_skipped() {
    // runc's default config lists ambient capabilities that are not inheritable; the kernel
    // refuses to raise them, and config.md says such a request is a warning, not a failure.
    use oci_spec::runtime::Capability;
    let b = Bundle::new("ambient", &["true"]);
    let mut spec = b.spec();
    let p = spec.process_mut().as_mut().unwrap();
    let mut caps = p.capabilities().clone().unwrap();
    caps.set_ambient(Some(
        [Capability::Kill, Capability::AuditWrite]
            .into_iter()
            .collect(),
    ));
    caps.set_inheritable(Some(Default::default()));
    p.set_capabilities(Some(caps));
    b.write(&spec);
    b.ok(&["run", "--bundle", b.path().to_str().unwrap(), &b.id]);
}

#[test]
fn tmpcopyup_fills_a_tmpfs_with_the_image_content() {
    // podman's --read-only mounts /tmp, /var/tmp and /run as tmpfs with runc's `tmpcopyup`.
    let b = Bundle::new("copyup", &["sh", "-c", "cat /data/seed; ls -l /data/link; echo new > /data/new && cat /data/new; grep ' /data ' /proc/self/mounts"]);
    let data = b.path().join("rootfs/data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("seed"), "from-image\n").unwrap();
    std::os::unix::fs::symlink("seed", data.join("link")).unwrap();
    let mut spec = b.spec();
    let mut mounts = spec.mounts().clone().unwrap();
    mounts.push(
        oci_spec::runtime::MountBuilder::default()
            .destination("/data")
            .typ("tmpfs")
            .source("tmpfs")
            .options(vec![
                "tmpcopyup".to_string(),
                "nosuid".to_string(),
                "size=1m".to_string(),
            ])
            .build()
            .unwrap(),
    );
    spec.set_mounts(Some(mounts));
    spec.root_mut().as_mut().unwrap().set_readonly(Some(true));
    b.write(&spec);
    let out = b.ok(&["run", "--bundle", b.path().to_str().unwrap(), &b.id]);
    assert!(out.contains("from-image"), "{out}");
    assert!(out.contains("link -> seed"), "{out}");
    assert!(
        out.contains("new"),
        "the tmpfs is writable on a read-only root: {out}"
    );
    assert!(out.contains("tmpfs /data tmpfs"), "{out}");
    assert!(!data.join("new").exists(), "writes stay in the tmpfs");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains("oci-sandbox-tmpcopyup"),
        "the host side is unmounted"
    );
}

#[test]
fn the_runtime_binary_is_not_reachable_from_inside() {
    // CVE-2019-5736: before start, the container's pid 1 is still an image of the runtime's
    // binary. A process in the container must not be able to open it through /proc/1/exe.
    let b = Bundle::new("cve5736", &["sleep", "1000"]);
    b.create();
    let out = b.ok(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "cat /proc/1/exe >/dev/null 2>&1 && echo READ-OK || echo READ-DENIED; \
         (echo x >> /proc/1/exe) 2>/dev/null && echo WRITE-OK || echo WRITE-DENIED",
    ]);
    assert!(out.contains("READ-DENIED"), "{out}");
    assert!(out.contains("WRITE-DENIED"), "{out}");
    b.ok(&["delete", "--force", &b.id]);
}

/// Socket activation as under systemd: `LISTEN_FDS` for ocirun's own pid passes fds 3.. to
/// the container before the `--preserve-fds` ones, with `LISTEN_FDS` and `LISTEN_PID=1` set in
/// its environment (as runc does); no other fd reaches it.
#[test]
fn socket_activation_fds_and_preserved_fds_reach_the_container() {
    let b = Bundle::new(
        "listen",
        &[
            "sh",
            "-c",
            "echo $LISTEN_FDS $LISTEN_PID; cat <&3; cat <&4; ls /proc/self/fd",
        ],
    );
    std::fs::write(b.path().join("listen"), "listening\n").unwrap();
    std::fs::write(b.path().join("preserved"), "preserved\n").unwrap();
    std::fs::write(b.path().join("other"), "").unwrap();
    // A createRuntime hook (run by ocirun on the host) lists the fds it inherited.
    let hook_fds = b.path().join("hook-fds");
    let mut spec = b.spec();
    let hook = HookBuilder::default()
        .path("/bin/sh")
        .args(vec![
            "sh".to_string(),
            "-c".to_string(),
            format!("ls -l /proc/self/fd/ > {}", hook_fds.display()),
        ])
        .build()
        .unwrap();
    spec.set_hooks(Some(
        HooksBuilder::default()
            .create_runtime(vec![hook])
            .build()
            .unwrap(),
    ));
    b.write(&spec);
    // `exec` keeps the shell's pid, which LISTEN_PID names; fd 5 is open but not passed.
    let script = format!(
        "LISTEN_PID=$$ LISTEN_FDS=1 exec {} --root {} run --preserve-fds 1 --bundle {} {} \
         3<listen 4<preserved 5<other",
        env!("CARGO_BIN_EXE_ocirun"),
        b.root.display(),
        b.path().display(),
        b.id
    );
    let out = Command::new("/bin/sh")
        .args(["-c", &script])
        .current_dir(b.path())
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[..3], ["1 1", "listening", "preserved"], "{stdout}");
    // ls lists its own directory fd too (the lowest free number: 5).
    let fds: Vec<&str> = lines[3..]
        .iter()
        .flat_map(|l| l.split_whitespace())
        .collect();
    assert_eq!(fds, ["0", "1", "2", "3", "4", "5"], "{stdout}");
    // The passed fds are not the hook's; the caller's fd 5, neither passed nor close-on-exec,
    // is inherited as by any child (as with runc), which shows the listing works.
    let hook = std::fs::read_to_string(&hook_fds).unwrap();
    assert!(hook.contains("/other"), "{hook}");
    assert!(
        !hook.contains("/listen") && !hook.contains("/preserved"),
        "{hook}"
    );
}

/// `exec --cgroup` (runc's): into an existing sub-cgroup, for one controller or all; a missing
/// or escaping one is an error; delete removes the sub-cgroup with the container's.
#[test]
fn exec_into_a_sub_cgroup() {
    let b = Bundle::new("execcg", &["sleep", "1000"]);
    b.create();
    b.ok(&["start", &b.id]);
    let memory = Path::new("/sys/fs/cgroup/memory/ocirun-tests").join(&b.id);
    assert!(memory.is_dir(), "{memory:?}");
    std::fs::create_dir(memory.join("sub")).unwrap();
    let out = b.ok(&[
        "exec",
        "--cgroup",
        "memory:sub",
        &b.id,
        "cat",
        "/proc/self/cgroup",
    ]);
    let line = |ctrl: &str| {
        out.lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|x| x == ctrl))
            })
            .unwrap_or_else(|| panic!("{ctrl} in {out}"))
            .to_string()
    };
    assert!(line("memory").ends_with("/sub"), "{out}");
    assert!(!line("pids").ends_with("/sub"), "{out}");
    let out = b.ocirun(&["exec", "--cgroup", "nosuch", &b.id, "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such sub-cgroup"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = b.ocirun(&["exec", "--cgroup", "memory:../x", &b.id, "true"]);
    assert_eq!(out.status.code(), Some(255));
    b.ok(&["delete", "--force", &b.id]);
    assert!(!memory.exists(), "sub-cgroup removed with the container's");
}
