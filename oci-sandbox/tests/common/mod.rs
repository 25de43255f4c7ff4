//! Test fixtures: a busybox rootfs in a private temp dir, an output dir bind-mounted at /out,
//! a spec built from JSON, unique ids and cgroup paths.
#![allow(dead_code)]

use oci_sandbox::{Container, Options, Sandbox};
use oci_spec::runtime::Spec;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn unique(name: &str) -> String {
    format!(
        "ocisb-{}-{}-{}",
        name,
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

const APPLETS: &[&str] = &[
    "sh",
    "cat",
    "echo",
    "ls",
    "id",
    "hostname",
    "mkdir",
    "touch",
    "grep",
    "sleep",
    "true",
    "false",
    "readlink",
    "env",
    "pwd",
    "stat",
    "head",
    "tail",
    "chmod",
    "test",
    "wc",
    "domainname",
    "tty",
    "stty",
    "ps",
    "mount",
];

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub rootfs: PathBuf,
    pub out: PathBuf,
    pub id: String,
}

impl Fixture {
    pub fn new(name: &str) -> Fixture {
        let dir = tempfile::Builder::new().prefix("ocisb-").tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "out"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Fixture {
            dir,
            rootfs,
            out,
            id: unique(name),
        }
    }

    /// A config running `sh -c script` with the usual namespaces and mounts, /out bound rw.
    pub fn spec_json(&self, script: &str) -> Value {
        json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {
                "args": ["sh", "-c", script],
                "env": ["PATH=/bin", "TERM=dumb"],
                "cwd": "/",
                "user": {"uid": 0, "gid": 0}
            },
            "hostname": "sandbox",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/out", "type": "bind", "source": self.out.to_str().unwrap(), "options": ["rbind", "rw"]}
            ],
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}],
                "maskedPaths": ["/proc/kcore", "/proc/timer_list", "/sys/firmware", "/proc/scsi"],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
            }
        })
    }

    pub fn spec(&self, v: &Value) -> Spec {
        serde_json::from_value(v.clone()).unwrap()
    }

    pub fn create(&self, v: &Value, options: Options) -> oci_sandbox::Result<Container> {
        Sandbox::create(&self.spec(v), &self.rootfs, options)
    }

    /// create + start + wait; returns the exit status.
    pub fn run(&self, v: &Value) -> oci_sandbox::ExitStatus {
        let mut c = self.create(v, Options::new()).unwrap();
        c.start().unwrap();
        let s = c.wait().unwrap();
        c.delete().unwrap();
        s
    }

    pub fn out(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.join(name))
            .unwrap_or_else(|e| panic!("reading /out/{name}: {e}"))
    }
}

/// `Key:\tvalue` of /proc/self/status as the container saw it.
pub fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {key} in status"))
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Leaks a non-CLOEXEC fd of `path` at fd number `at` in this (test) process.
pub fn leak_fd(path: &str, at: i32) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: dup2 onto a number no other test uses; deliberately without O_CLOEXEC.
    assert_eq!(unsafe { libc::dup2(f.as_raw_fd(), at) }, at);
}

/// Reads a pty master until the slave side is gone (EIO) or EOF.
pub fn read_console(master: std::os::fd::OwnedFd) -> String {
    use std::io::Read;
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) => panic!("read console: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[path = "../support/build_probe.rs"]
mod build_probe;
pub use build_probe::probe_binary;

impl Fixture {
    /// Puts the probe at /bin/probe in the rootfs.
    pub fn with_probe(self) -> Fixture {
        std::fs::copy(probe_binary(), self.rootfs.join("bin/probe")).unwrap();
        self
    }

    /// The probe's report written to /out/`name` (by `probe --out /out/NAME ...`).
    pub fn report(&self, name: &str) -> Value {
        let text = self.out(name);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("probe report {name}: {e}\n{text}"))
    }
}
