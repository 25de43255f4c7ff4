//! Runtime hardening, attacked for real (issue 17): the runtime's binary against a container
//! holding CAP_SYS_PTRACE (CVE-2019-5736). Each test runs its own copy of `ocirun`, so that
//! a successful attack would damage the copy only, with its own state root, ids and cgroups.

#[path = "../../oci-sandbox/tests/support/build_probe.rs"]
mod build_probe;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Capability, Spec};

const BUSYBOX: &str = "/bin/busybox";

fn unique(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// How `ocirun` must end up protecting itself: the mount API as root normally allows, or the
/// sealed memfd copy, forced by a seccomp filter that answers `open_tree` and `mount_setattr`
/// with ENOSYS (as on a kernel before 5.12, or under Docker's default profile).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Bind,
    Memfd,
}

impl Mode {
    fn log_name(self) -> &'static str {
        match self {
            Mode::Bind => "read-only bind mount",
            Mode::Memfd => "sealed copy",
        }
    }
}

/// A busybox bundle with the attacker at /bin/attacker and CAP_SYS_PTRACE in every set, run
/// by a private copy of `ocirun`.
struct Bundle {
    dir: tempfile::TempDir,
    root: PathBuf,
    id: String,
    ocirun: PathBuf,
    mode: Mode,
}

impl Bundle {
    fn new(name: &str, args: &[&str], mode: Mode) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "dev", "proc", "sys", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox"))
            .expect("busybox-static (./scripts/test installs it)");
        for applet in ["sh", "sleep", "true", "cat"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        let attacker = build_probe::static_binary("attacker", include_str!("support/attacker.rs"));
        std::fs::copy(attacker, rootfs.join("bin/attacker")).unwrap();
        let ocirun = dir.path().join("ocirun-copy");
        std::fs::copy(env!("CARGO_BIN_EXE_ocirun"), &ocirun).unwrap();
        let id = unique(name);
        let mut spec: Spec = oci_runtime::default_spec().unwrap();
        let p = spec.process_mut().as_mut().unwrap();
        p.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        p.set_env(Some(vec!["PATH=/bin".into()]));
        let mut caps = p.capabilities().clone().unwrap();
        let add = |s: &Option<oci_spec::runtime::Capabilities>| {
            let mut s = s.clone().unwrap_or_default();
            s.insert(Capability::SysPtrace);
            Some(s)
        };
        caps.set_bounding(add(caps.bounding()));
        caps.set_effective(add(caps.effective()));
        caps.set_permitted(add(caps.permitted()));
        p.set_capabilities(Some(caps));
        spec.linux_mut()
            .as_mut()
            .unwrap()
            .set_cgroups_path(Some(format!("/ocirun-tests/{id}").into()));
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_vec_pretty(&spec).unwrap(),
        )
        .unwrap();
        let root = dir.path().join("state");
        Bundle {
            dir,
            root,
            id,
            ocirun,
            mode,
        }
    }

    /// Lets the attacker write to these files (and to nothing of the host's but them).
    fn allow(&self, files: &[&Path]) {
        use std::os::unix::fs::MetadataExt;
        let lines: String = files
            .iter()
            .map(|f| {
                let m = std::fs::metadata(f).unwrap();
                format!("{} {}\n", m.dev(), m.ino())
            })
            .collect();
        std::fs::write(self.rootfs().join("tmp/targets"), lines).unwrap();
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn ocirun(&self, args: &[&str]) -> Output {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let out_path = self.dir.path().join(format!("out-{n}"));
        let err_path = self.dir.path().join(format!("err-{n}"));
        let mut cmd = Command::new(&self.ocirun);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--debug")
            .arg("--log")
            .arg(self.dir.path().join("ocirun.log"))
            .args(args)
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap());
        if self.mode == Mode::Memfd {
            let filter = no_mount_api_filter();
            // SAFETY: only prctl(2) and seccomp(2) between fork and exec, on memory prepared
            // before the fork.
            unsafe {
                cmd.pre_exec(move || {
                    let fprog = SockFprog {
                        len: filter.len() as u16,
                        filter: filter.as_ptr(),
                    };
                    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                        || libc::syscall(
                            libc::SYS_seccomp,
                            libc::SECCOMP_SET_MODE_FILTER,
                            0,
                            &fprog as *const SockFprog,
                        ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let status = cmd.status().unwrap();
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

    fn create_and_start(&self) {
        self.create();
        self.ok(&["start", &self.id]);
    }

    fn create(&self) {
        let bundle = self.dir.path().to_str().unwrap().to_string();
        self.ok(&["create", "--bundle", &bundle, &self.id]);
    }

    fn init_pid(&self) -> i32 {
        let st: serde_json::Value = serde_json::from_str(&self.ok(&["state", &self.id])).unwrap();
        st["pid"].as_i64().unwrap() as i32
    }

    fn attack_log(&self) -> String {
        std::fs::read_to_string(self.rootfs().join("tmp/attack.log")).unwrap_or_default()
    }

    /// Waits for the attacker's log to contain `what` (the attacker always gets there: it
    /// logs `done` after at most 20 s of ETXTBSY per file).
    fn wait_log(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let log = self.attack_log();
            if log.contains(what) {
                return log;
            }
            assert!(Instant::now() < deadline, "no {what:?} in {log:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Tells the attacker to write what it holds, and returns its log once it is done.
    fn strike(&self) -> String {
        std::fs::write(self.rootfs().join("tmp/stop"), b"").unwrap();
        self.wait_log("done")
    }

    /// The runtime protected itself the way this test asked for.
    fn assert_protected_by(&self) {
        let log = std::fs::read_to_string(self.dir.path().join("ocirun.log")).unwrap();
        assert!(
            log.contains(&format!("runtime binary: {}", self.mode.log_name())),
            "{log}"
        );
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = self.ocirun(&["delete", "--force", &self.id]);
    }
}

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const oci_sandbox::seccomp::SockFilter,
}

fn no_mount_api_filter() -> Vec<oci_sandbox::seccomp::SockFilter> {
    let profile: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{
            "names": ["open_tree", "mount_setattr"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": libc::ENOSYS
        }]
    }))
    .unwrap();
    oci_sandbox::seccomp::compile(&profile)
        .unwrap()
        .instructions()
        .to_vec()
}

/// Every file the attacker caught was refused: each `caught`/`opened` line has its `denied`,
/// no `wrote`.
fn assert_every_write_refused(log: &str, caught: &str) {
    let held = log.lines().filter(|l| l.starts_with(caught)).count();
    let denied = log.lines().filter(|l| l.starts_with("denied")).count();
    assert!(held > 0, "{log}");
    assert_eq!(held, denied, "{log}");
    assert!(!log.contains("wrote"), "{log}");
}

/// CVE-2019-5736, exec variant: the container's init watches /proc for an incoming
/// `ocirun exec`, opens its /proc/PID/exe while it is still the runtime's image, and once the
/// runtime has exited reopens that for writing.
fn exec_race(mode: Mode) {
    let b = Bundle::new("cve5736-exec", &["/bin/attacker", "race"], mode);
    b.allow(&[&b.ocirun]);
    let before = sha256(&b.ocirun);
    b.create_and_start();
    // A bounded number of tries: the attacker catches one in the first few on this machine.
    let caught = (0..200).any(|_| {
        b.ok(&["exec", &b.id, "true"]);
        b.attack_log().contains("caught")
    });
    assert!(caught, "no exec was caught in 200: {}", b.attack_log());
    let log = b.strike();
    assert_every_write_refused(&log, "caught");
    // EROFS on the read-only bind mount; EPERM (the write) on the sealed memfd.
    let errno = match mode {
        Mode::Bind => format!("denied OPEN {}", libc::EROFS),
        Mode::Memfd => format!("denied WRITE {}", libc::EPERM),
    };
    assert!(log.contains(&errno), "{log}");
    assert_eq!(sha256(&b.ocirun), before, "the runtime binary was changed");
    b.assert_protected_by();
}

/// CVE-2019-5736, before `start`: the init waits on the exec fifo, still the runtime's image;
/// an `exec -d` process holds /proc/1/exe (as `exec 3</proc/1/exe`), and writes once the
/// container has started and no runtime process is left.
fn before_start(mode: Mode) {
    let b = Bundle::new("cve5736-init", &["sleep", "1000"], mode);
    b.allow(&[&b.ocirun]);
    let before = sha256(&b.ocirun);
    b.create();
    b.ok(&["exec", "-d", &b.id, "/bin/attacker", "hold", "/proc/1/exe"]);
    let log = b.wait_log("opened /proc/1/exe");
    assert!(!log.contains("denied"), "{log}");
    b.ok(&["start", &b.id]);
    let pid = b.init_pid();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
        .contains("sleep")
    {
        assert!(Instant::now() < deadline, "the init never ran sleep");
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = b.strike();
    assert_every_write_refused(&log, "opened");
    assert_eq!(sha256(&b.ocirun), before, "the runtime binary was changed");
    b.assert_protected_by();
}

#[test]
fn cve_2019_5736_an_exec_caught_by_a_ptrace_capable_container_cannot_overwrite_the_runtime() {
    exec_race(Mode::Bind);
}

#[test]
fn cve_2019_5736_the_init_before_start_cannot_be_used_to_overwrite_the_runtime() {
    before_start(Mode::Bind);
}

#[test]
fn cve_2019_5736_exec_race_without_the_mount_api_meets_a_sealed_copy() {
    exec_race(Mode::Memfd);
}

#[test]
fn cve_2019_5736_before_start_without_the_mount_api_meets_a_sealed_copy() {
    before_start(Mode::Memfd);
}

/// The negative control: the same attacker, against a host binary that a process of the
/// container runs (a copy of busybox started by nsenter in the container's pid namespace),
/// does overwrite it. So the tests above would see the bug if the runtime had it.
#[test]
fn control_the_attacker_overwrites_a_host_binary_left_reachable() {
    let b = Bundle::new("cve5736-control", &["/bin/attacker", "race"], Mode::Bind);
    // Named busybox, so that it runs its argv[1] applet.
    std::fs::create_dir(b.dir.path().join("host")).unwrap();
    let exposed = b.dir.path().join("host/busybox");
    std::fs::copy(BUSYBOX, &exposed).unwrap();
    // Only the copy: nsenter's own fork is caught too, and must be let go.
    b.allow(&[&exposed]);
    b.create_and_start();
    let before = sha256(&exposed);
    let pid = b.init_pid().to_string();
    let caught = (0..50).any(|_| {
        let st = Command::new("nsenter")
            .args(["--target", &pid, "--pid", "--"])
            .arg(&exposed)
            .args(["sleep", "0.2"])
            .status()
            .unwrap();
        assert!(st.success(), "nsenter: {st}");
        b.attack_log().contains("caught")
    });
    assert!(caught, "{}", b.attack_log());
    let log = b.strike();
    assert!(log.contains("wrote"), "{log}");
    assert_ne!(sha256(&exposed), before, "the control was not overwritten");
}
