//! The probe (tests/support/probe.rs, a static program) runs as the container's process and
//! reports what it sees; each report is compared with the config, setting by setting.
mod common;

use common::Fixture;
use oci_sandbox::ExitStatus;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::str::FromStr;

const SYS_PERSONALITY: u32 = 135;
const SYS_GETPRIORITY: u32 = 140;
const SYS_CHROOT: u32 = 161;

/// The capability mask of a list of names.
fn mask(names: &[&str]) -> u64 {
    names
        .iter()
        .map(|n| 1u64 << caps::Capability::from_str(n).unwrap().index())
        .fold(0, |a, b| a | b)
}

/// The namespace links of this (test) process.
fn host_namespaces() -> BTreeMap<String, String> {
    ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"]
        .iter()
        .map(|n| {
            let l = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
            (n.to_string(), l.to_string_lossy().into_owned())
        })
        .collect()
}

/// Namespaces the report shares with the host, and those it does not.
fn check_namespaces(r: &Value, new: &[&str]) {
    let host = host_namespaces();
    for (n, link) in &host {
        let seen = r["namespaces"][n].as_str().unwrap();
        if new.contains(&n.as_str()) {
            assert_ne!(seen, link, "{n}: a new namespace");
        } else {
            assert_eq!(seen, link, "{n}: the host's");
        }
    }
}

/// This (test) process's rlimits, indexed by RLIMIT_* number as the probe reports them.
fn host_rlimits() -> Vec<[u64; 2]> {
    (0..16)
        .map(|i| {
            let mut l = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: a valid out-pointer.
            assert_eq!(unsafe { libc::getrlimit(i, &mut l) }, 0);
            [l.rlim_cur, l.rlim_max]
        })
        .collect()
}

fn rlimits_of(r: &Value) -> Vec<[u64; 2]> {
    serde_json::from_value(r["rlimits"].clone()).unwrap()
}

/// The mount at `target` (the last one, as mountinfo lists stacked mounts in order).
fn mount<'a>(r: &'a Value, target: &str) -> &'a Value {
    r["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["target"] == target)
        .unwrap_or_else(|| panic!("no mount at {target}: {:#}", r["mounts"]))
}

fn options(m: &Value, key: &str) -> BTreeSet<String> {
    m[key]
        .as_str()
        .unwrap()
        .split(',')
        .map(String::from)
        .collect()
}

fn has_options(m: &Value, key: &str, want: &[&str]) {
    let got = options(m, key);
    for w in want {
        assert!(got.contains(*w), "{w} in {key} of {m}");
    }
}

fn read_content(r: &Value, path: &str) -> String {
    r["reads"][path]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("reading {path}: {}", r["reads"][path]))
        .to_string()
}

fn errno_of(r: &Value, kind: &str, key: &str) -> i64 {
    r[kind][key]
        .as_i64()
        .unwrap_or_else(|| panic!("{kind} {key}: {}", r[kind][key]))
}

/// A config with most settings of config.md away from their defaults, for a non-root user.
#[test]
fn a_non_root_process_sees_exactly_its_config() {
    let f = Fixture::new("probe").with_probe();
    std::fs::create_dir_all(f.rootfs.join("home/probe")).unwrap();
    std::fs::create_dir(f.out.join("ro")).unwrap();
    std::fs::set_permissions(f.out.join("ro"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let data = f.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("file"), "data").unwrap();
    let hard_nofile = host_rlimits()[libc::RLIMIT_NOFILE as usize][1].min(4096);
    let cgroup_path = format!("/{}", common::unique("probe"));
    let mut v = f.spec_json("");
    v["process"] = json!({
        "args": ["probe", "--out", "/out/r.json",
            "--syscall", SYS_CHROOT.to_string(),
            "--syscall", format!("{SYS_GETPRIORITY},7"),
            "--syscall", format!("{SYS_GETPRIORITY},0"),
            "--syscall", format!("{SYS_PERSONALITY},0x1234"),
            "--read", "/proc/keys",
            "--read", "/proc/timer_list",
            "--read", "/data/file",
            "--read", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "--read", "/sys/fs/cgroup/pids/pids.max",
            "--read", "/sys/fs/cgroup/cpu/cpu.shares",
            "--write", "/newfile",
            "--write", "/tmp/newfile",
            "--write", "/data/newfile",
            "--write", "/out/ro/newfile",
            "--write", "/out/written",
            "--exec", "/bin/busybox",
            "--stat", "/dev/null", "--stat", "/dev/zero", "--stat", "/dev/full",
            "--stat", "/dev/random", "--stat", "/dev/urandom", "--stat", "/dev/tty",
            "--stat", "/dev/ptmx", "--stat", "/dev/fd", "--stat", "/dev/stdin",
            "--stat", "/dev/stdout", "--stat", "/dev/stderr", "--stat", "/dev/custom"],
        "env": ["PATH=/bin", "PROBE=1", "WITH SPACE=a b"],
        "cwd": "/home/probe",
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [10, 2000], "umask": 23},
        "capabilities": {
            "bounding": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"],
            "effective": ["CAP_NET_BIND_SERVICE"],
            "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
            "inheritable": ["CAP_NET_BIND_SERVICE"],
            "ambient": ["CAP_NET_BIND_SERVICE"]
        },
        "rlimits": [
            {"type": "RLIMIT_NOFILE", "soft": hard_nofile / 2, "hard": hard_nofile},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
        ],
        "noNewPrivileges": true,
        "oomScoreAdj": 123
    });
    v["hostname"] = json!("probe-host");
    v["domainname"] = json!("probe.example");
    v["root"]["readonly"] = json!(true);
    let mounts = v["mounts"].as_array_mut().unwrap();
    mounts.push(
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=1733"]}),
    );
    mounts.push(
        json!({"destination": "/data", "type": "bind", "source": data,
        "options": ["rbind", "ro", "nosuid", "nodev"]}),
    );
    mounts.push(
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
        "options": ["nosuid", "noexec", "nodev", "ro"]}),
    );
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "cgroup"}));
    v["linux"]["cgroupsPath"] = json!(cgroup_path);
    v["linux"]["resources"] = json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 50},
        "cpu": {"shares": 256}
    });
    v["linux"]["maskedPaths"] = json!([
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/sys/firmware"
    ]);
    v["linux"]["readonlyPaths"] = json!(["/proc/sys", "/proc/sysrq-trigger", "/out/ro"]);
    v["linux"]["devices"] = json!([{"path": "/dev/custom", "type": "c", "major": 10, "minor": 229,
        "fileMode": 0o640, "uid": 1000, "gid": 2000}]);
    v["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99},
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 7, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
             "args": [{"index": 0, "value": 0x1234, "op": "SCMP_CMP_EQ"}]}
        ]
    });
    assert_eq!(f.run(&v), ExitStatus::Exited(0));
    let r = f.report("r.json");

    // Namespaces: the five of the fixture plus cgroup are new; user and time are the host's.
    check_namespaces(&r, &["cgroup", "ipc", "mnt", "net", "pid", "uts"]);
    assert_eq!(r["pid"], 1);
    assert_eq!(r["ppid"], 0);
    // The init leads its own session and process group (as runc's), not the caller's.
    assert_eq!(r["sid"], 1);
    assert_eq!(r["pgrp"], 1);
    // Credentials (config.md "User"): exactly the additional gids, not the primary one.
    assert_eq!(r["uids"], json!([1000, 1000, 1000]));
    assert_eq!(r["gids"], json!([1000, 1000, 1000]));
    assert_eq!(r["groups"], json!([10, 2000]));
    assert_eq!(r["umask"], 0o027);
    assert_eq!(r["cwd"], "/home/probe");
    assert_eq!(r["env"], json!(["PATH=/bin", "PROBE=1", "WITH SPACE=a b"]));
    assert_eq!(r["hostname"], "probe-host");
    assert_eq!(r["domainname"], "probe.example");
    assert_eq!(r["oom_score_adj"], "123");
    // Capabilities after execve as a non-root user with no file capabilities: the permitted
    // and effective sets are the ambient set (capabilities(7)).
    let nbs = mask(&["CAP_NET_BIND_SERVICE"]);
    assert_eq!(r["CapAmb"], nbs);
    assert_eq!(r["CapPrm"], nbs);
    assert_eq!(r["CapEff"], nbs);
    assert_eq!(r["CapInh"], nbs);
    assert_eq!(
        r["CapBnd"],
        mask(&["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"])
    );
    assert_eq!(r["no_new_privs"], 1);
    assert_eq!(r["NoNewPrivs"], 1);
    // The user's program is dumpable again (its /proc/self belongs to it).
    assert_eq!(r["dumpable"], 1);
    // Seccomp: filter mode, one filter; each rule decides as configured.
    assert_eq!(r["Seccomp"], 2);
    assert_eq!(r["Seccomp_filters"], 1);
    let call = |k: String| {
        (
            r["syscalls"][&k]["ret"].clone(),
            r["syscalls"][&k]["errno"].clone(),
        )
    };
    assert_eq!(call(SYS_CHROOT.to_string()), (json!(-1), json!(99)));
    assert_eq!(
        call(format!("{SYS_GETPRIORITY},7")),
        (json!(-1), json!(libc::EPERM))
    );
    let (ret, errno) = call(format!("{SYS_GETPRIORITY},0"));
    assert_eq!(errno, 0, "getpriority(PRIO_PROCESS) allowed");
    assert!(ret.as_i64().unwrap() > 0);
    assert_eq!(
        call(format!("{SYS_PERSONALITY},0x1234")),
        (json!(-1), json!(77))
    );
    // The personality query itself was allowed: the default.
    assert_eq!(r["personality"], 0);
    // rlimits: the configured ones, every other inherited unchanged.
    let mut want = host_rlimits();
    want[libc::RLIMIT_NOFILE as usize] = [hard_nofile / 2, hard_nofile];
    want[libc::RLIMIT_CORE as usize] = [0, 0];
    assert_eq!(rlimits_of(&r), want);
    // No fd but stdio (CVE-2024-21626).
    let fds: Vec<&String> = r["fds"].as_object().unwrap().keys().collect();
    assert_eq!(fds, ["0", "1", "2"], "{}", r["fds"]);

    // Mounts: the read-only root and each configured mount with its flags.
    has_options(mount(&r, "/"), "options", &["ro"]);
    let tmp = mount(&r, "/tmp");
    assert_eq!(tmp["type"], "tmpfs");
    has_options(tmp, "options", &["rw", "nosuid", "nodev", "noexec"]);
    has_options(tmp, "super", &["size=1024k", "mode=1733"]);
    let d = mount(&r, "/data");
    has_options(d, "options", &["ro", "nosuid", "nodev"]);
    assert_eq!(read_content(&r, "/data/file"), "data");
    has_options(
        mount(&r, "/sys"),
        "options",
        &["ro", "nosuid", "nodev", "noexec"],
    );
    assert_eq!(mount(&r, "/proc")["type"], "proc");
    has_options(mount(&r, "/dev/pts"), "options", &["nosuid", "noexec"]);
    assert_eq!(mount(&r, "/dev/mqueue")["type"], "mqueue");
    has_options(mount(&r, "/out"), "options", &["rw"]);
    // Masked paths (config-linux.md): a file reads empty (even one only root could read),
    // a directory is a read-only tmpfs, and one this kernel lacks is passed over.
    assert_eq!(read_content(&r, "/proc/keys"), "");
    assert_eq!(read_content(&r, "/proc/timer_list"), "");
    let fw = mount(&r, "/sys/firmware");
    assert_eq!(fw["type"], "tmpfs");
    has_options(fw, "options", &["ro"]);
    has_options(mount(&r, "/proc/sys"), "options", &["ro"]);
    // Writes: refused by the read-only root, bind and readonlyPaths; allowed where rw.
    let erofs = i64::from(libc::EROFS);
    assert_eq!(errno_of(&r, "writes", "/newfile"), erofs);
    assert_eq!(errno_of(&r, "writes", "/data/newfile"), erofs);
    assert_eq!(errno_of(&r, "writes", "/out/ro/newfile"), erofs);
    assert_eq!(errno_of(&r, "writes", "/tmp/newfile"), 0);
    assert_eq!(errno_of(&r, "writes", "/out/written"), 0);
    assert_eq!(errno_of(&r, "execs", "/bin/busybox"), 0);
    // Nothing is mounted but what the config asks for (and the cgroup hierarchies under
    // the cgroup mount).
    let mut allowed: BTreeSet<String> = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap().to_string())
        .collect();
    allowed.insert("/".into());
    for p in ["maskedPaths", "readonlyPaths"] {
        for x in v["linux"][p].as_array().unwrap() {
            allowed.insert(x.as_str().unwrap().to_string());
        }
    }
    for m in r["mounts"].as_array().unwrap() {
        let t = m["target"].as_str().unwrap();
        assert!(
            allowed.contains(t) || t.starts_with("/sys/fs/cgroup/"),
            "unexpected mount {m}"
        );
    }

    // Devices (config-linux.md "Devices", "Default Devices", "Dev symbolic links").
    let stat = |p: &str| r["stats"][p].clone();
    for (dev, major, minor) in [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ] {
        assert_eq!(
            stat(dev),
            json!({"type": "char", "mode": 0o666, "uid": 0, "gid": 0, "major": major, "minor": minor}),
            "{dev}"
        );
    }
    assert_eq!(
        stat("/dev/custom"),
        json!({"type": "char", "mode": 0o640, "uid": 1000, "gid": 2000, "major": 10, "minor": 229})
    );
    for (link, target) in [
        ("/dev/ptmx", "pts/ptmx"),
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        assert_eq!(stat(link)["type"], "link", "{link}");
        assert_eq!(stat(link)["target"], target, "{link}");
    }

    // cgroup: the namespace roots every hierarchy at the container's cgroup, whose limits
    // are the config's.
    let cg = r["cgroup"].as_str().unwrap();
    assert!(cg.lines().all(|l| l.ends_with(":/")), "{cg}");
    assert_eq!(
        read_content(&r, "/sys/fs/cgroup/memory/memory.limit_in_bytes").trim(),
        "67108864"
    );
    assert_eq!(
        read_content(&r, "/sys/fs/cgroup/pids/pids.max").trim(),
        "50"
    );
    assert_eq!(
        read_content(&r, "/sys/fs/cgroup/cpu/cpu.shares").trim(),
        "256"
    );
}

/// The fields of `/proc/self/uid_map` (or gid_map) as numbers.
fn id_map(r: &Value, key: &str) -> Vec<u64> {
    r[key]
        .as_str()
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

/// Root in a user namespace, with runc's default capabilities: the maps, the credentials,
/// the capability sets the kernel gives root at execve, devices bound from the host.
#[test]
fn root_in_a_user_namespace_sees_its_mappings() {
    let f = Fixture::new("probe-userns").with_probe();
    std::fs::create_dir(f.out.join("ro")).unwrap();
    std::fs::set_permissions(f.out.join("ro"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut v = f.spec_json("");
    v["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/out/ro"));
    let three = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    v["process"]["args"] = json!([
        "probe",
        "--out",
        "/out/r.json",
        "--write",
        "/out/ro/newfile",
        "--write",
        "/dev/null",
        "--read",
        "/dev/null",
        "--stat",
        "/dev/mqueue"
    ]);
    v["process"]["capabilities"] = json!({
        "bounding": three, "effective": three, "permitted": three
    });
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 1000}]);
    assert_eq!(f.run(&v), ExitStatus::Exited(0));
    let r = f.report("r.json");
    check_namespaces(&r, &["ipc", "mnt", "net", "pid", "user", "uts"]);
    assert_eq!(id_map(&r, "uid_map"), [0, 100000, 65536]);
    assert_eq!(id_map(&r, "gid_map"), [0, 200000, 1000]);
    assert_eq!(r["uids"], json!([0, 0, 0]));
    assert_eq!(r["gids"], json!([0, 0, 0]));
    assert_eq!(r["groups"], json!([]));
    // Root at execve (no file capabilities): permitted = inheritable | bounding, effective
    // = permitted, ambient cleared by nothing but also never raised.
    let m = mask(&three);
    assert_eq!(r["CapBnd"], m);
    assert_eq!(r["CapPrm"], m);
    assert_eq!(r["CapEff"], m);
    assert_eq!(r["CapInh"], 0);
    assert_eq!(r["CapAmb"], 0);
    assert_eq!(r["no_new_privs"], 0);
    assert_eq!(r["Seccomp"], 0);
    // readonlyPaths hold for root of the user namespace too.
    assert_eq!(
        errno_of(&r, "writes", "/out/ro/newfile"),
        i64::from(libc::EROFS)
    );
    // mknod is not allowed in a user namespace: the default devices are the host's, bound.
    for dev in [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/tty",
        "/dev/random",
        "/dev/urandom",
    ] {
        let m = mount(&r, dev);
        assert_eq!(m["root"], dev.strip_prefix("/dev").unwrap(), "{m}");
    }
    assert_eq!(errno_of(&r, "writes", "/dev/null"), 0);
    // The IPC namespace (and its mqueue filesystem) is created by the container's root.
    let mq = &r["stats"]["/dev/mqueue"];
    assert_eq!((&mq["uid"], &mq["gid"]), (&json!(0), &json!(0)), "{mq}");
    assert_eq!(read_content(&r, "/dev/null"), "");
}

/// A process exec'd into a running container has the container's namespaces and cgroup,
/// the exec'd process's own credentials, and leads its own session.
#[test]
fn an_exec_process_sees_the_container_and_its_own_settings() {
    let f = Fixture::new("probe-exec").with_probe();
    let mut v = f.spec_json("sleep 1000");
    v["linux"]["cgroupsPath"] = json!(common::unique("probe-exec"));
    v["linux"]["resources"] = json!({"pids": {"limit": 42}});
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "cgroup"}));
    let mut c = f.create(&v, oci_sandbox::Options::new()).unwrap();
    c.start().unwrap();
    let p: oci_spec::runtime::Process = serde_json::from_value(json!({
        "args": ["probe", "--out", "/out/r.json", "--syscall", SYS_CHROOT.to_string()],
        "env": ["PATH=/bin", "EXEC=1"],
        "cwd": "/tmp",
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [3], "umask": 63},
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"], "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]},
        "noNewPrivileges": true
    }))
    .unwrap();
    let seccomp = serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 55}]
    }))
    .unwrap();
    let mut e = oci_sandbox::Sandbox::exec(
        c.pid(),
        &p,
        oci_sandbox::ExecOptions::new()
            .cgroup(c.cgroup().unwrap())
            .seccomp(Some(&seccomp)),
    )
    .unwrap();
    assert_eq!(e.wait().unwrap(), ExitStatus::Exited(0));
    let r = f.report("r.json");
    for n in ["cgroup", "ipc", "mnt", "net", "pid", "uts", "user"] {
        let init = std::fs::read_link(format!("/proc/{}/ns/{n}", c.pid())).unwrap();
        assert_eq!(r["namespaces"][n], init.to_str().unwrap(), "{n}");
    }
    let pid = r["pid"].as_i64().unwrap();
    assert!(pid > 1, "in the container's pid namespace, not its init");
    assert_eq!(r["sid"], pid, "a session of its own");
    assert_eq!(r["ppid"], 0, "its parent is outside the namespace");
    assert_eq!(r["uids"], json!([1000, 1000, 1000]));
    assert_eq!(r["groups"], json!([3]));
    assert_eq!(r["umask"], 63);
    assert_eq!(r["cwd"], "/tmp");
    assert_eq!(r["env"], json!(["PATH=/bin", "EXEC=1"]));
    assert_eq!(r["hostname"], "sandbox");
    let kill = mask(&["CAP_KILL"]);
    for set in ["CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"] {
        assert_eq!(r[set], kill, "{set}");
    }
    assert_eq!(r["no_new_privs"], 1);
    assert_eq!(r["Seccomp"], 2);
    assert_eq!(r["syscalls"][SYS_CHROOT.to_string()]["errno"], 55);
    let cg = r["cgroup"].as_str().unwrap();
    assert!(cg.lines().all(|l| l.ends_with(":/")), "{cg}");
    let fds: Vec<&String> = r["fds"].as_object().unwrap().keys().collect();
    assert_eq!(fds, ["0", "1", "2"], "{}", r["fds"]);
    c.delete().unwrap();
}
