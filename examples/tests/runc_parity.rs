//! Side by side with runc: the same bundle (Docker's default config from
//! `oci_runtime::default_spec`, a busybox rootfs and the static probe of
//! oci-sandbox/tests/support) is run by `runc run` and by `ocirun run`, and the probe's two
//! reports of what the container process sees are compared field by field. Only what
//! necessarily differs between two containers (namespace inodes, the cgroup name, peer group
//! numbers) is normalised away.

#[path = "../../oci-sandbox/tests/support/build_probe.rs"]
mod build_probe;
#[path = "support/console.rs"]
mod console;
#[path = "support/rootless.rs"]
mod rootless;

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
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

/// The probe's command line: the syscalls, reads and writes it tries.
fn probe_args() -> Vec<String> {
    let mut args = vec!["probe".to_string()];
    for s in SYSCALLS {
        args.extend(["--syscall".into(), s.to_string()]);
    }
    for r in [
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/sys/firmware",
        "/proc/sys/net/ipv4/ip_unprivileged_port_start",
        "/data/file",
    ] {
        args.extend(["--read".into(), r.into()]);
    }
    for w in [
        "/proc/sys/kernel/hostname",
        "/proc/sysrq-trigger",
        "/newfile",
        "/sys/kernel/x",
        "/tmp/newfile",
        "/data/newfile",
    ] {
        args.extend(["--write".into(), w.into()]);
    }
    for d in [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
        "/dev/ptmx",
        "/dev/fd",
        "/dev/stdin",
        "/dev/stdout",
        "/dev/stderr",
        "/dev/console",
        "/dev/pts",
        "/dev/pts/0",
        "/dev/shm",
        "/dev/mqueue",
        "/dev",
        "/tmp",
        "/",
    ] {
        args.extend(["--stat".into(), d.into()]);
    }
    args
}

/// A bundle whose process runs `args`, on Docker's default config changed by `edit`.
fn write_bundle(dir: &Path, id: &str, args: &[String], edit: &dyn Fn(&mut Value)) {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "dev", "proc", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "sleep", "cat", "env", "sort", "true"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::copy(build_probe::probe_binary(), rootfs.join("bin/probe")).unwrap();
    let mut spec = serde_json::to_value(oci_runtime::default_spec().unwrap()).unwrap();
    spec["process"]["args"] = json!(args);
    spec["process"]["env"] = json!(["PATH=/bin", "TERM=xterm"]);
    spec["process"]["terminal"] = json!(false);
    spec["hostname"] = json!("parity");
    spec["linux"]["cgroupsPath"] = json!(format!("/ocirun-parity/{id}"));
    edit(&mut spec);
    std::fs::write(dir.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
}

/// `RUNTIME --root BUNDLE/state ARGS...`, checked to succeed; its stdout. Output goes to
/// files, not pipes: a created container inherits the runtime's stdio and would hold a pipe
/// open for its whole life.
fn runtime(runtime: &str, bundle: &Path, args: &[&str]) -> String {
    runtime_as(false, runtime, bundle, args)
}

/// [`runtime`], as the rootless test user when `rootless`.
fn runtime_as(rootless: bool, runtime: &str, bundle: &Path, args: &[&str]) -> String {
    let (out, err) = (bundle.join("stdout"), bundle.join("stderr"));
    let mut cmd = if rootless {
        rootless::command(runtime, &bundle.join("xdg"))
    } else {
        Command::new(runtime)
    };
    let status = cmd
        .arg("--root")
        .arg(bundle.join("state"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    let stdout = std::fs::read_to_string(&out).unwrap();
    assert!(
        status.success(),
        "{runtime} {args:?}: {stdout}\n{}",
        std::fs::read_to_string(&err).unwrap()
    );
    stdout
}

fn report(runtime: &str, stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{runtime}: {e}: {stdout}"))
}

/// Deletes a container (and its cgroup) even when the test fails; as the rootless test user
/// when the last field is true.
struct Delete<'a>(&'a str, &'a Path, &'a str, bool);

impl Drop for Delete<'_> {
    fn drop(&mut self) {
        let mut cmd = if self.3 {
            rootless::command(self.0, &self.1.join("xdg"))
        } else {
            Command::new(self.0)
        };
        let _ = cmd
            .arg("--root")
            .arg(self.1.join("state"))
            .args(["delete", "--force", self.2])
            .output();
    }
}

const RUNTIMES: [(&str, &str); 2] = [(RUNC, "runc"), (env!("CARGO_BIN_EXE_ocirun"), "ocirun")];

/// What two containers cannot share: namespace inodes, peer group numbers, the rootfs path,
/// the pipes of stdio (runc interposes its own), the pid of an exec'd process.
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
                "{} {} {} ({}) [{}] root={}",
                m["target"].as_str().unwrap(),
                m["type"].as_str().unwrap(),
                m["options"].as_str().unwrap(),
                // The superblock of the device a masked file is bound from: the runtimes'
                // choice of /dev differs (see `deliberate`), and devtmpfs's size is the host's.
                if m["root"] == "/null" {
                    "-"
                } else {
                    m["super"].as_str().unwrap()
                },
                optional.join(" "),
                m["root"]
                    .as_str()
                    .unwrap()
                    .replace(rootfs.to_str().unwrap(), "ROOTFS")
                    .replace(rootfs.parent().unwrap().to_str().unwrap(), "BUNDLE"),
            )
        })
        .collect();
    r["mounts"] = json!(mounts);
    // The kernel lists device rules in the order they were written: compare them as a set.
    if let Some(list) = r["reads"]["/sys/fs/cgroup/devices/devices.list"]["content"].as_str() {
        let mut lines: Vec<&str> = list.lines().collect();
        lines.sort_unstable();
        let sorted = lines.join("\n");
        r["reads"]["/sys/fs/cgroup/devices/devices.list"]["content"] = json!(sorted);
    }
    let fds: Vec<String> = r["fds"].as_object().unwrap().keys().cloned().collect();
    r["fds"] = json!(fds);
    // An exec'd process's pid depends on how many helpers the runtime forked in the
    // container's pid namespace; what matters is that it leads its own session and group.
    let pid = r["pid"].clone();
    for k in ["sid", "pgrp"] {
        r[k] = json!(if r[k] == pid { "own" } else { "other" });
    }
    if pid != 1 {
        r["pid"] = json!("not 1");
    }
    // In the host's pid namespace the parent is the runtime, a different process each time.
    if r["ppid"] != 0 {
        r["ppid"] = json!("a host process");
    }
    r
}

/// Runs `scenario(runtime, bundle dir, container id)` (which returns the probe's stdout) for
/// runc and for ocirun, each in a bundle of its own, and returns the differences between
/// the two reports. The containers are deleted even when the test fails.
fn side_by_side(name: &str, scenario: &dyn Fn(&str, &Path, &str) -> String) -> BTreeSet<String> {
    side_by_side_as(false, name, scenario)
}

/// [`side_by_side`], the runtimes run as the rootless test user when `rootless` (the
/// bundle directories are the user's).
fn side_by_side_as(
    rootless: bool,
    name: &str,
    scenario: &dyn Fn(&str, &Path, &str) -> String,
) -> BTreeSet<String> {
    let dir = tempfile::Builder::new()
        .prefix("ocirun-parity-")
        .tempdir()
        .unwrap();
    if rootless {
        rootless::give(dir.path());
    }
    let mut reports = Vec::new();
    for (rt, short) in RUNTIMES {
        let b = dir.path().join(short);
        std::fs::create_dir(&b).unwrap();
        if rootless {
            rootless::give(&b);
        }
        let id = format!("parity-{name}-{short}-{}", std::process::id());
        let _delete = Delete(rt, &b, &id, rootless);
        let out = scenario(rt, &b, &id);
        reports.push(normalise(report(rt, &out), &b.join("rootfs")));
    }
    compare(&reports[0], &reports[1])
}

/// The probe as the container process (`run`), on Docker's default config changed by `edit`.
fn differences(name: &str, edit: &dyn Fn(&mut Value)) -> BTreeSet<String> {
    side_by_side(name, &|rt, b, id| {
        write_bundle(b, id, &probe_args(), edit);
        runtime(rt, b, &["run", "--bundle", b.to_str().unwrap(), id])
    })
}

/// The probe run with `exec FLAGS... ID probe...` in a running `sleep` container.
fn exec_differences(name: &str, edit: &dyn Fn(&mut Value), flags: &[&str]) -> BTreeSet<String> {
    side_by_side(name, &|rt, b, id| {
        write_bundle(b, id, &["sleep".into(), "1000".into()], edit);
        runtime(rt, b, &["create", "--bundle", b.to_str().unwrap(), id]);
        runtime(rt, b, &["start", id]);
        let probe = probe_args();
        let mut args = vec!["exec"];
        args.extend(flags);
        args.push(id);
        args.extend(probe.iter().map(String::as_str));
        runtime(rt, b, &args)
    })
}

/// The fields of two normalised reports that differ, and the mounts only one of them has.
fn compare(runc: &Value, ours: &Value) -> BTreeSet<String> {
    let mut differences = Vec::new();
    for (k, v) in runc.as_object().unwrap() {
        if k == "mounts" {
            continue;
        }
        // The probes asked for on the command line, one by one.
        if ["stats", "reads", "writes", "syscalls", "execs"].contains(&k.as_str()) {
            for (path, want) in v.as_object().unwrap() {
                let got = &ours[k][path];
                if got != want {
                    differences.push(format!("{k} {path}: runc {want} ocirun {got}"));
                }
            }
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

/// In a user namespace, the IPC namespace's mqueue root belongs to whoever created the
/// namespace: ocirun creates it as the container's root (0:0); runc 1.1.5 as uid 0 but with
/// its gid still the host's, unmapped (65534).
const MQUEUE_OWNER: &str = r#"stats /dev/mqueue: runc {"gid":65534,"mode":1023,"type":"dir","uid":0} ocirun {"gid":0,"mode":1023,"type":"dir","uid":0}"#;

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
    if userns {
        deliberate_with("devtmpfs rw,relatime", ",uid=100000,gid=100000")
    } else {
        deliberate_with("tmpfs rw,nosuid", "")
    }
}

/// [`deliberate`] for a rootless container: as in a user namespace, the tmpfs owned by the
/// host id of the container's root, the test user.
fn deliberate_rootless() -> BTreeSet<String> {
    let u = rootless::user();
    deliberate_with(
        "devtmpfs rw,relatime",
        &format!(",uid={},gid={}", u.uid, u.gid),
    )
}

/// The deliberate differences, given runc's source of masked files and the tmpfs owner.
fn deliberate_with(runc_null: &str, ids: &str) -> BTreeSet<String> {
    let cgroup = "/sys/fs/cgroup tmpfs";
    let flags = "nosuid,nodev,noexec,relatime";
    [
        format!("mount only under runc: {cgroup} rw,{flags} (rw,mode=755{ids}) [] root=/"),
        format!("mount only under ocirun: {cgroup} ro,{flags} (ro,mode=755{ids}) [] root=/"),
        format!(
            "mount only under ocirun: /sys/fs/cgroup/unified cgroup2 ro,{flags} (rw) [] root=/"
        ),
    ]
    .into_iter()
    .chain(masked_files().into_iter().flat_map(|p| {
        [
            format!("mount only under runc: {p} {runc_null} (-) [] root=/null"),
            format!("mount only under ocirun: {p} devtmpfs rw,nosuid,relatime (-) [] root=/null"),
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
    let mut expected = deliberate(true);
    expected.insert(MQUEUE_OWNER.into());
    assert_only(&d, &expected);
}

#[test]
fn mounts_sysctls_and_a_read_only_root() {
    let data = tempfile::Builder::new()
        .prefix("ocirun-parity-data-")
        .tempdir()
        .unwrap();
    std::fs::write(data.path().join("file"), "data").unwrap();
    let src = data.path().to_str().unwrap().to_string();
    let d = differences("mounts", &|s| {
        s["root"]["readonly"] = json!(true);
        s["domainname"] = json!("parity.example");
        s["linux"]["sysctl"] = json!({"net.ipv4.ip_unprivileged_port_start": "0"});
        let mounts = s["mounts"].as_array_mut().unwrap();
        mounts.push(
            json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=1733"]}),
        );
        mounts.push(
            json!({"destination": "/data", "type": "bind", "source": src,
            "options": ["rbind", "ro", "nosuid", "rprivate"]}),
        );
    });
    // Debian's runc 1.1.5 predates `domainname` (runtime-spec 1.1, runc 1.2) and ignores it;
    // and it chmods a tmpfs to the mode of the directory it covers, overriding the config's
    // `mode=1733` (0o1733 = 987), which ocirun leaves as the option says.
    let mut expected = deliberate(false);
    expected.insert(r#"domainname: runc "(none)" ocirun "parity.example""#.into());
    expected.insert(
        r#"stats /tmp: runc {"gid":0,"mode":493,"type":"dir","uid":0} ocirun {"gid":0,"mode":987,"type":"dir","uid":0}"#
            .into(),
    );
    assert_only(&d, &expected);
}

#[test]
fn exec_with_a_user_cwd_env_and_capabilities() {
    let d = exec_differences(
        "exec",
        &|_| {},
        &[
            "--user",
            "1000:1000",
            "--additional-gids",
            "7",
            "--cwd",
            "/tmp",
            "--env",
            "EXEC=1",
            "--cap",
            "CAP_SYS_ADMIN",
            "--no-new-privs",
        ],
    );
    assert_only(&d, &deliberate(false));
}

#[test]
fn exec_in_a_user_namespace() {
    let d = exec_differences(
        "exec-userns",
        &|s| {
            s["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            s["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            s["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        },
        &["--user", "1000:1000", "--cwd", "/tmp"],
    );
    let mut expected = deliberate(true);
    expected.insert(MQUEUE_OWNER.into());
    assert_only(&d, &expected);
}

/// What each hook saw, under one runtime: its stdin (the state, normalised), env and cwd.
fn hook_views(rt: &str, b: &Path, id: &str) -> BTreeMap<String, Value> {
    let out = b.join("out");
    std::fs::create_dir(&out).unwrap();
    let record = |dir: &str, name: &str| {
        json!({"path": "/bin/sh", "env": ["HOOK=1"], "args": ["sh", "-c", format!(
            "cat > {dir}/{name}.state; env | sort > {dir}/{name}.env; pwd > {dir}/{name}.cwd"
        )]})
    };
    let host = out.to_str().unwrap().to_string();
    // Long enough to be running when poststart runs.
    write_bundle(b, id, &["sleep".into(), "0.5".into()], &|s| {
        s["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/out", "type": "bind", "source": host, "options": ["rbind", "rw"]}),
        );
        let mut hooks = serde_json::Map::new();
        for name in [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop",
        ] {
            hooks.insert(name.into(), json!([record(&host, name)]));
        }
        // startContainer runs after pivot_root: its paths are the container's.
        hooks.insert(
            "startContainer".into(),
            json!([record("/out", "startContainer")]),
        );
        s["hooks"] = Value::Object(hooks);
    });
    runtime(rt, b, &["run", "--bundle", b.to_str().unwrap(), id]);
    let mut views = BTreeMap::new();
    for name in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        // Each runtime has its own bundle directory: named BUNDLE in what the hooks saw.
        let read = |ext: &str| {
            std::fs::read_to_string(out.join(format!("{name}.{ext}")))
                .map(|s| s.replace(b.to_str().unwrap(), "BUNDLE"))
        };
        let mut state: Value = read("state")
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null);
        if let Some(o) = state.as_object_mut() {
            // The container's own id, bundle and pid; the spec version each runtime speaks.
            o.remove("ociVersion");
            for k in ["id", "bundle"] {
                o.insert(k.into(), json!(k));
            }
            if o.contains_key("pid") {
                o.insert("pid".into(), json!("pid"));
            }
        }
        views.insert(
            name.to_string(),
            json!({"state": state, "env": read("env").ok(), "cwd": read("cwd").ok()}),
        );
    }
    views
}

/// The OCI hooks (config.md "POSIX-platform Hooks") under runc and ocirun: each runs at its
/// point with the same state on stdin, the same environment and the same working directory.
#[test]
fn hooks_see_the_same_state_env_and_cwd() {
    let dir = tempfile::Builder::new()
        .prefix("ocirun-parity-")
        .tempdir()
        .unwrap();
    let mut views = Vec::new();
    for (rt, short) in RUNTIMES {
        let b = dir.path().join(short);
        std::fs::create_dir(&b).unwrap();
        let id = format!("parity-hooks-{short}-{}", std::process::id());
        let _delete = Delete(rt, &b, &id, false);
        views.push(hook_views(rt, &b, &id));
    }
    let mut differences = Vec::new();
    for (hook, runc) in &views[0] {
        let ours = &views[1][hook];
        for k in ["state", "env", "cwd"] {
            if runc[k] != ours[k] {
                differences.push(format!("{hook} {k}: runc {} ocirun {}", runc[k], ours[k]));
            }
        }
    }
    // runc 1.1.5 gives poststart the state it had before recording the start.
    let expected = [
        r#"poststart state: runc {"bundle":"bundle","id":"id","pid":"pid","status":"created"} ocirun {"bundle":"bundle","id":"id","pid":"pid","status":"running"}"#,
    ];
    assert_eq!(differences, expected);
}

/// `process.terminal`: the pty sent to the console socket, the process's stdio on it as its
/// controlling terminal, /dev/console bound to it.
#[test]
fn a_terminal_container() {
    let d = side_by_side("tty", &|rt, b, id| {
        let out = b.join("out");
        std::fs::create_dir(&out).unwrap();
        let mut args = probe_args();
        args.extend(["--out".into(), "/out/r.json".into()]);
        let host = out.to_str().unwrap().to_string();
        write_bundle(b, id, &args, &|s| {
            s["process"]["terminal"] = json!(true);
            s["mounts"].as_array_mut().unwrap().push(
                json!({"destination": "/out", "type": "bind", "source": host, "options": ["rbind", "rw"]}),
            );
        });
        let sock = b.join("console.sock");
        let receiver = console::receiver(&sock);
        let b_str = b.to_str().unwrap();
        let sock_str = sock.to_str().unwrap();
        runtime(
            rt,
            b,
            &[
                "create",
                "--bundle",
                b_str,
                "--console-socket",
                sock_str,
                id,
            ],
        );
        let master = receiver.join().unwrap();
        runtime(rt, b, &["start", id]);
        // Drain the pty until the process is gone (EIO once the slave is closed).
        let mut f = std::fs::File::from(master);
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut f, &mut sink);
        let report = std::fs::read_to_string(out.join("r.json")).unwrap();
        let r: Value = serde_json::from_str(&report).unwrap();
        assert_eq!(r["stdin_tty"], true, "{rt}: stdin is the pty");
        assert_eq!(r["stats"]["/dev/console"]["type"], "char", "{rt}");
        report
    });
    assert_only(&d, &deliberate(false));
}

/// cgroup limits, as the container reads them through its cgroup namespace and the cgroup
/// mount (values written by each runtime into cgroup v1 files, and the device rules).
#[test]
fn cgroup_limits_and_device_rules() {
    let files = [
        "memory/memory.limit_in_bytes",
        "memory/memory.memsw.limit_in_bytes",
        "memory/memory.soft_limit_in_bytes",
        "memory/memory.swappiness",
        "memory/memory.oom_control",
        "cpu/cpu.shares",
        "cpu/cpu.cfs_quota_us",
        "cpu/cpu.cfs_period_us",
        "cpuset/cpuset.cpus",
        "cpuset/cpuset.mems",
        "pids/pids.max",
        "devices/devices.list",
    ];
    let d = side_by_side("cgroups", &|rt, b, id| {
        let mut args = probe_args();
        for f in files {
            args.extend(["--read".into(), format!("/sys/fs/cgroup/{f}")]);
        }
        write_bundle(b, id, &args, &|s| {
            if !s["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "cgroup")
            {
                s["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "cgroup"}));
            }
            s["linux"]["resources"]["memory"] = json!({"limit": 67108864, "reservation": 33554432,
                "swap": 134217728, "swappiness": 10, "disableOOMKiller": false});
            s["linux"]["resources"]["cpu"] = json!({"shares": 512, "quota": 50000,
                "period": 100000, "cpus": "0", "mems": "0"});
            s["linux"]["resources"]["pids"] = json!({"limit": 42});
        });
        runtime(rt, b, &["run", "--bundle", b.to_str().unwrap(), id])
    });
    // runc 1.1.5 also allows /dev/net/tun (c 10:200) to every container; runc 1.2 dropped it
    // from its implicit rules, and ocirun allows only the default devices and the config's.
    let mut expected = deliberate(false);
    let rules = |tun: bool| {
        let mut v = vec![
            "b *:* m",
            "c *:* m",
            "c 1:3 rwm",
            "c 1:5 rwm",
            "c 1:7 rwm",
            "c 1:8 rwm",
            "c 1:9 rwm",
            "c 136:* rwm",
            "c 5:0 rwm",
            "c 5:1 rwm",
            "c 5:2 rwm",
        ];
        if tun {
            v.push("c 10:200 rwm");
        }
        v.sort_unstable();
        json!({ "content": v.join("\n") })
    };
    expected.insert(format!(
        "reads /sys/fs/cgroup/devices/devices.list: runc {} ocirun {}",
        rules(true),
        rules(false)
    ));
    assert_only(&d, &expected);
}

/// The host's pid and network namespaces (docker's `--pid=host --network=host`): /proc
/// shows the host's processes, sysfs the host's devices.
#[test]
fn host_pid_and_network_namespaces() {
    let d = differences("hostns", &|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid" && n["type"] != "network");
    });
    assert_only(&d, &deliberate(false));
}

/// `RUNTIME --root BUNDLE/state --log FILE --log-format json ARGS...`: its exit code and the
/// `msg` of the error it logged (engines read that log to tell why a command failed).
fn runtime_result(runtime: &str, bundle: &Path, args: &[&str]) -> (Option<i32>, String) {
    let log = bundle.join("log.json");
    let _ = std::fs::remove_file(&log);
    let status = Command::new(runtime)
        .arg("--root")
        .arg(bundle.join("state"))
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(bundle.join("stderr")).unwrap())
        .status()
        .unwrap();
    let msg = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == "error")
        .map(|v| v["msg"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    (status.code(), msg)
}

/// runtime.md, "Kill": "Attempting to send a signal to a container that is neither `created`
/// nor `running` MUST have no effect on the container and MUST generate an error." runc words
/// that error "container not running", the text containerd matches to treat it as harmless;
/// and runc's `kill --all` on a stopped container signals what is left in its cgroup and
/// succeeds, which containerd relies on after every exit (`kill --all ID 9`). The container
/// shares the host's pid namespace, so a `sleep` outlives its init in the cgroup.
#[test]
fn kill_of_a_stopped_container() {
    let dir = tempfile::Builder::new()
        .prefix("ocirun-parity-")
        .tempdir()
        .unwrap();
    let mut results = Vec::new();
    for (rt, short) in RUNTIMES {
        let b = dir.path().join(short);
        std::fs::create_dir(&b).unwrap();
        let id = format!("parity-kill-{short}-{}", std::process::id());
        let _delete = Delete(rt, &b, &id, false);
        let args = ["sh".into(), "-c".into(), "sleep 1000 & exit 0".into()];
        write_bundle(&b, &id, &args, &|s| {
            s["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "pid");
        });
        runtime(
            rt,
            &b,
            &["run", "--detach", "--bundle", b.to_str().unwrap(), &id],
        );
        let status = || -> String {
            let st: Value = serde_json::from_str(&runtime(rt, &b, &["state", &id])).unwrap();
            st["status"].as_str().unwrap().to_string()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while status() != "stopped" {
            assert!(
                std::time::Instant::now() < deadline,
                "{short}: never stopped"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let procs = format!("/sys/fs/cgroup/pids/ocirun-parity/{id}/cgroup.procs");
        let left = || {
            std::fs::read_to_string(&procs)
                .map(|p| p.lines().count())
                .unwrap_or(0)
        };
        let mut steps = vec![format!("stopped, {} process(es) left", left())];
        for args in [
            vec!["kill", &id, "9"],
            vec!["kill", &id],
            vec!["kill", "--all", &id, "9"],
            vec!["kill", "--all", &id, "15"],
            vec!["kill", &id, "KILL"],
        ] {
            let (code, msg) = runtime_result(rt, &b, &args);
            // Let a SIGKILL sent to the cgroup take effect before counting.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while args[1] == "--all" && left() > 0 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let args = args.join(" ").replace(&id, "ID");
            steps.push(format!("{args}: exit {code:?} {msg:?}, {} left", left()));
        }
        runtime(rt, &b, &["delete", &id]);
        let (code, _) = runtime_result(rt, &b, &["kill", &id, "9"]);
        steps.push(format!("kill after delete: exit {code:?}"));
        results.push(steps);
    }
    assert_eq!(results[0], results[1], "runc, then ocirun");
    assert!(results[0][1].contains("exit Some(1) \"container not running\", 1 left"));
    assert!(results[0][3].contains("exit Some(0) \"\", 0 left"));
}

/// config.md "Process", args: "This specification extends the IEEE standard in that at least
/// one entry is REQUIRED, and that entry is used with the same semantics as execvp's file."
/// A program that cannot be found or run fails `create` (and `exec`) in both runtimes, with
/// runc's words: engines match them (Docker exits 127 on "executable file not found" or "no
/// such file or directory" and 126 on "permission denied"; runc adds its own prefix).
#[test]
fn missing_and_non_executable_programs_are_worded_as_runc() {
    let dir = tempfile::Builder::new()
        .prefix("ocirun-parity-")
        .tempdir()
        .unwrap();
    let cases: &[&[&str]] = &[
        &["nosuch"],
        &["/nosuch"],
        &["/notexec"],
        &["notexec"],
        &["/tmp"],
        &["/notexec/x"],
        &["/bin/nosuchdir/x"],
    ];
    let setup = |b: &Path, id: &str, args: &[String]| {
        write_bundle(b, id, args, &|s| {
            s["process"]["env"] = json!(["PATH=/bin:/"]);
        });
        let rootfs = b.join("rootfs");
        std::fs::write(rootfs.join("notexec"), "").unwrap();
        std::fs::write(rootfs.join("badinterp"), "#!/nonexistent\n").unwrap();
        std::fs::set_permissions(
            rootfs.join("badinterp"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    };
    let mut seen = Vec::new();
    for (n, args) in cases.iter().enumerate() {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut results = Vec::new();
        for (rt, short) in RUNTIMES {
            let b = dir.path().join(format!("{short}-{n}"));
            std::fs::create_dir(&b).unwrap();
            let id = format!("parity-noexec-{short}-{n}-{}", std::process::id());
            let _delete = Delete(rt, &b, &id, false);
            setup(&b, &id, &args);
            results.push(runtime_result(
                rt,
                &b,
                &["create", "--bundle", b.to_str().unwrap(), &id],
            ));
        }
        let ((rc, runc), (oc, ours)) = (&results[0], &results[1]);
        assert_eq!(rc, oc, "{args:?}: exit codes");
        assert!(
            !ours.is_empty() && runc.ends_with(ours.as_str()),
            "{args:?}: runc {runc:?}, ocirun {ours:?}"
        );
        seen.push(ours.clone());
    }
    assert_eq!(
        seen[0],
        "exec: \"nosuch\": executable file not found in $PATH"
    );
    // The same words from `exec` into a running container (runc-exec(8): status 255).
    for (rt, short) in RUNTIMES {
        let b = dir.path().join(format!("{short}-exec"));
        std::fs::create_dir(&b).unwrap();
        let id = format!("parity-noexec-{short}-exec-{}", std::process::id());
        let _delete = Delete(rt, &b, &id, false);
        setup(&b, &id, &["sleep".into(), "1000".into()]);
        runtime(
            rt,
            &b,
            &["run", "--detach", "--bundle", b.to_str().unwrap(), &id],
        );
        for (args, want) in cases.iter().zip(&seen) {
            let mut all = vec!["exec", id.as_str()];
            all.extend(args.iter());
            let (code, msg) = runtime_result(rt, &b, &all);
            assert_eq!(code, Some(255), "{short} {all:?}");
            assert!(msg.ends_with(want.as_str()), "{short} {all:?}: {msg:?}");
        }
        // Found, but its execve fails: the process's own failure (status 1, runc's words on
        // its stderr), not an error of exec.
        let (code, msg) = runtime_result(rt, &b, &["exec", &id, "/badinterp"]);
        assert_eq!((code, msg.as_str()), (Some(1), ""), "{short}");
        assert!(
            std::fs::read_to_string(b.join("stderr"))
                .unwrap()
                .contains("exec /badinterp: no such file or directory"),
            "{short}"
        );
    }
}

/// The config `ocirun spec --rootless` writes, made by the test user (runc's rootless
/// template applied to Docker's default config: the user's own ids mapped to root, no network
/// namespace, /sys bound from the host, no resources).
fn rootless_template(dir: &Path) -> Value {
    let d = dir.join("template");
    std::fs::create_dir(&d).unwrap();
    rootless::give(&d);
    let out = rootless::command(env!("CARGO_BIN_EXE_ocirun"), &dir.join("xdg"))
        .args(["spec", "--rootless", "--bundle"])
        .arg(&d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap()
}

/// The probe run by runc and by ocirun as the rootless test user, on the config of
/// `ocirun spec --rootless` (its process and root replaced by the probe's) changed by `edit`.
fn rootless_differences(name: &str, edit: &dyn Fn(&mut Value)) -> BTreeSet<String> {
    let dir = tempfile::Builder::new()
        .prefix("ocirun-rootless-spec-")
        .tempdir()
        .unwrap();
    rootless::give(dir.path());
    let template = rootless_template(dir.path());
    side_by_side_as(true, name, &|rt, b, id| {
        write_bundle(b, id, &probe_args(), &|s| {
            let (process, root) = (s["process"].clone(), s["root"].clone());
            *s = template.clone();
            s["process"]["args"] = process["args"].clone();
            s["process"]["env"] = process["env"].clone();
            s["process"]["terminal"] = json!(false);
            s["root"] = root;
            s["hostname"] = json!("parity");
            edit(s);
        });
        rootless::give(b);
        runtime_as(true, rt, b, &["run", "--bundle", b.to_str().unwrap(), id])
    })
}

/// Rootless, as an ordinary user with subordinate ids (runc's "rootless containers"): the
/// bundle of `ocirun spec --rootless` run by runc and by ocirun as that user. On this cgroup
/// v1 host the user may create no cgroup, and the config sets no limits: both runtimes leave
/// the container in the user's own cgroups.
#[test]
fn rootless_template_as_an_ordinary_user() {
    let d = rootless_differences("rootless", &|_| {});
    assert_only(&d, &deliberate_rootless());
}

/// The same with more than the user's own id mapped: uids and gids 1-65536 of the container
/// are the user's subordinate ones, written by newuidmap and newgidmap (config-linux.md "User
/// namespace mappings"), and the process runs as one of them.
#[test]
fn rootless_with_subordinate_ids_through_newuidmap() {
    let u = rootless::user();
    let d = rootless_differences("rootless-subid", &|s| {
        s["process"]["user"] = json!({"uid": 1000, "gid": 1000, "umask": 18});
        s["process"]["cwd"] = json!("/tmp");
        s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": u.uid, "size": 1},
            {"containerID": 1, "hostID": u.subid, "size": 65536}]);
        s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": u.gid, "size": 1},
            {"containerID": 1, "hostID": u.subid, "size": 65536}]);
    });
    assert_only(&d, &deliberate_rootless());
}
