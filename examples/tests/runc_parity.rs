//! Side by side with runc: the same bundle (Docker's default config from
//! `oci_runtime::default_spec`, a busybox rootfs and the static probe of
//! oci-sandbox/tests/support) is run by `runc run` and by `ocirun run`, and the probe's two
//! reports of what the container process sees are compared field by field. Only what
//! necessarily differs between two containers (namespace inodes, the cgroup name, peer group
//! numbers) is normalised away.

#[path = "../../oci-sandbox/tests/support/build_probe.rs"]
mod build_probe;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

const RUNC: &str = "/usr/sbin/runc";

/// Syscalls probed under Docker's seccomp profile, with harmless arguments: `(nr, args)`.
const SYSCALLS: &[&str] = &[
    "250",            // keyctl: denied
    "272,0x10000000", // unshare(CLONE_NEWUSER): denied without CAP_SYS_ADMIN
    "435",            // clone3: ENOSYS, so that libcs fall back to clone
    "155",            // pivot_root: denied
    "165",            // mount(NULL...): denied without CAP_SYS_ADMIN
    "169",            // reboot(0...): denied without CAP_SYS_BOOT
    "103",            // syslog(CLOSE): denied without CAP_SYSLOG
    "161",            // chroot(NULL): allowed (EFAULT)
    "135,0x1234",     // personality(0x1234): denied
    "135,0xffffffff", // personality query: allowed
];

fn write_bundle(dir: &Path, id: &str, edit: &dyn Fn(&mut Value)) {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "dev", "proc", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    std::fs::copy(build_probe::probe_binary(), rootfs.join("bin/probe")).unwrap();
    let mut args = vec!["probe".to_string()];
    for s in SYSCALLS {
        args.extend(["--syscall".into(), s.to_string()]);
    }
    for r in [
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/sys/firmware",
    ] {
        args.extend(["--read".into(), r.into()]);
    }
    for w in [
        "/proc/sys/kernel/hostname",
        "/proc/sysrq-trigger",
        "/newfile",
        "/sys/kernel/x",
    ] {
        args.extend(["--write".into(), w.into()]);
    }
    let mut spec = serde_json::to_value(oci_runtime::default_spec().unwrap()).unwrap();
    spec["process"]["args"] = json!(args);
    spec["process"]["env"] = json!(["PATH=/bin", "TERM=xterm"]);
    spec["process"]["terminal"] = json!(false);
    spec["hostname"] = json!("parity");
    spec["linux"]["cgroupsPath"] = json!(format!("/ocirun-parity/{id}"));
    edit(&mut spec);
    std::fs::write(dir.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
}

/// `RUNTIME --root ROOT run --bundle DIR ID`, and the probe's report from its stdout.
fn run(runtime: &str, bundle: &Path, id: &str) -> Value {
    let out = Command::new(runtime)
        .arg("--root")
        .arg(bundle.join("state"))
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{runtime}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{runtime}: {e}: {stdout}"))
}

/// What two containers cannot share: namespace inodes, peer group numbers, the rootfs path,
/// the pipes of stdio (runc interposes its own).
fn normalise(mut r: Value, rootfs: &Path) -> Value {
    let ns = r["namespaces"].as_object_mut().unwrap();
    let host: Vec<(String, bool)> = ns
        .iter()
        .map(|(k, v)| {
            let mine = std::fs::read_link(format!("/proc/self/ns/{k}"))
                .map(|l| l.to_string_lossy().into_owned())
                .ok();
            (k.clone(), v.as_str() == mine.as_deref())
        })
        .collect();
    for (k, shared) in host {
        ns[&k] = json!(if shared { "host" } else { "new" });
    }
    let mounts: BTreeSet<String> = r["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let optional: Vec<&str> = m["optional"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .map(|o| o.split(':').next().unwrap())
                .collect();
            format!(
                "{} {} {} [{}] root={}",
                m["target"].as_str().unwrap(),
                m["type"].as_str().unwrap(),
                m["options"].as_str().unwrap(),
                optional.join(" "),
                m["root"]
                    .as_str()
                    .unwrap()
                    .replace(rootfs.to_str().unwrap(), "ROOTFS"),
            )
        })
        .collect();
    r["mounts"] = json!(mounts);
    let fds: Vec<String> = r["fds"].as_object().unwrap().keys().cloned().collect();
    r["fds"] = json!(fds);
    r
}

/// Runs the probe under runc and ocirun with Docker's default config changed by `edit`, and
/// returns the differences between the two reports.
fn differences(name: &str, edit: &dyn Fn(&mut Value)) -> BTreeSet<String> {
    let n = std::process::id();
    let dir = tempfile::Builder::new()
        .prefix("ocirun-parity-")
        .tempdir()
        .unwrap();
    let mut reports = Vec::new();
    for (runtime, rt) in [(RUNC, "runc"), (env!("CARGO_BIN_EXE_ocirun"), "ocirun")] {
        let b = dir.path().join(rt);
        std::fs::create_dir(&b).unwrap();
        let id = format!("parity-{name}-{rt}-{n}");
        write_bundle(&b, &id, edit);
        reports.push(normalise(run(runtime, &b, &id), &b.join("rootfs")));
    }
    let (runc, ours) = (&reports[0], &reports[1]);
    let mut differences = Vec::new();
    for (k, v) in runc.as_object().unwrap() {
        if k == "mounts" {
            continue;
        }
        if ours.get(k) != Some(v) {
            differences.push(format!("{k}: runc {v} ocirun {}", ours[k]));
        }
    }
    let set =
        |r: &Value| -> BTreeSet<String> { serde_json::from_value(r["mounts"].clone()).unwrap() };
    let (m_runc, m_ours) = (set(runc), set(ours));
    for m in m_runc.difference(&m_ours) {
        differences.push(format!("mount only under runc: {m}"));
    }
    for m in m_ours.difference(&m_runc) {
        differences.push(format!("mount only under ocirun: {m}"));
    }
    differences.into_iter().collect()
}

/// Asserts that the differences are exactly `expected`.
fn assert_only(differences: &BTreeSet<String>, expected: &BTreeSet<String>) {
    let unexpected: Vec<&String> = differences.difference(expected).collect();
    let missing: Vec<&String> = expected.difference(differences).collect();
    assert!(
        unexpected.is_empty() && missing.is_empty(),
        "unexpected differences:\n{}\nexpected but not seen:\n{}",
        unexpected
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The files among Docker's maskedPaths that this kernel has (bound over with /dev/null;
/// directories get a read-only tmpfs, the same under both runtimes).
fn masked_files() -> Vec<String> {
    let spec = oci_runtime::default_spec().unwrap();
    let masked = spec.linux().as_ref().unwrap().masked_paths().clone();
    masked
        .unwrap_or_default()
        .into_iter()
        .filter(|p| Path::new(p).is_file())
        .collect()
}

/// Deliberate differences, each for a reason:
/// - masked files are bound from the host's /dev/null (devtmpfs), never from the rootfs's own
///   /dev/null, which an image can make a symlink to anything (CVE-2025-31133);
/// - the cgroup mount's tmpfs is read-only (runc 1.1 leaves it writable: a container can make
///   directories there), and on a hybrid host the cgroup2 hierarchy is mounted too, as systemd
///   in a container expects.
///
/// `userns`: runc then binds its masks from the host's /dev/null too, and without nosuid.
fn deliberate(userns: bool) -> BTreeSet<String> {
    let runc_null = if userns {
        "devtmpfs rw,relatime"
    } else {
        "tmpfs rw,nosuid"
    };
    [
        "mount only under runc: /sys/fs/cgroup tmpfs rw,nosuid,nodev,noexec,relatime [] root=/",
        "mount only under ocirun: /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,relatime [] root=/",
        "mount only under ocirun: /sys/fs/cgroup/unified cgroup2 ro,nosuid,nodev,noexec,relatime [] root=/",
    ]
    .into_iter()
    .map(String::from)
    .chain(masked_files().into_iter().flat_map(|p| {
        [
            format!("mount only under runc: {p} {runc_null} [] root=/null"),
            format!("mount only under ocirun: {p} devtmpfs rw,nosuid,relatime [] root=/null"),
        ]
    }))
    .collect()
}

#[test]
fn docker_default_config_as_root() {
    assert_only(&differences("root", &|_| {}), &deliberate(false));
}

#[test]
fn non_root_user_with_its_own_settings_in_a_user_namespace() {
    let d = differences("userns", &|s| {
        s["process"]["user"] =
            json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 18});
        s["process"]["cwd"] = json!("/tmp");
        s["process"]["noNewPrivileges"] = json!(true);
        s["process"]["oomScoreAdj"] = json!(200);
        s["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]);
        let caps = json!(["CAP_NET_BIND_SERVICE", "CAP_KILL"]);
        s["process"]["capabilities"] = json!({"bounding": caps, "effective": caps,
            "permitted": caps, "inheritable": caps, "ambient": caps});
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    assert_only(&d, &deliberate(true));
}
