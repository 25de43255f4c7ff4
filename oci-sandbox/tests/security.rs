//! Each security invariant, attacked.
mod common;

use common::{leak_fd, path_str, Fixture};
use oci_sandbox::{Error, ExitStatus, Options};
use serde_json::json;

#[test]
fn no_fd_reaches_the_container_cve_2024_21626() {
    let f = Fixture::new("fdleak");
    leak_fd("/etc", 200);
    let v = f.spec_json(
        "ls /proc/self/fd > /out/fds; test -e /proc/self/fd/200 && echo LEAK > /out/leak; true",
    );
    assert_eq!(f.run(&v), ExitStatus::Exited(0));
    assert!(!f.out.join("leak").exists());
    // ls itself opens one fd for the directory it lists.
    let fds: Vec<i32> = f
        .out("fds")
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(fds.iter().all(|&fd| fd <= 3), "fds seen inside: {fds:?}");
}

#[test]
fn cwd_through_a_leaked_fd_is_refused() {
    let f = Fixture::new("cwdleak");
    leak_fd("/etc", 201);
    let mut v = f.spec_json("pwd > /out/cwd");
    v["process"]["cwd"] = json!("/proc/self/fd/201");
    let err = f.create(&v, Options::new()).unwrap_err();
    assert!(
        matches!(&err, Error::Child { step, .. } if step.contains("cwd")),
        "{err}"
    );
}

#[test]
fn symlinked_mount_destination_stays_inside_the_root_cve_2021_30465() {
    let f = Fixture::new("symdest");
    let host = tempfile::tempdir().unwrap();
    // Absolute and ../ symlinks that point at the host directory if followed on the host.
    std::os::unix::fs::symlink(host.path(), f.rootfs.join("evil")).unwrap();
    std::os::unix::fs::symlink(
        format!("../../../../../../../..{}", path_str(host.path())),
        f.rootfs.join("evil2"),
    )
    .unwrap();
    // Inside the root the links lead to <rootfs>/<host path>; a dangling one is refused (below).
    let inside = f.rootfs.join(host.path().strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inside).unwrap();
    let mut v = f.spec_json("touch /evil/x/inside /evil2/y/inside2");
    let mounts = v["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/evil/x", "type": "tmpfs", "source": "tmpfs"}));
    mounts.push(json!({"destination": "/evil2/y", "type": "tmpfs", "source": "tmpfs"}));
    assert_eq!(f.run(&v), ExitStatus::Exited(0));
    assert_eq!(
        std::fs::read_dir(host.path()).unwrap().count(),
        0,
        "nothing created on the host"
    );
    assert!(
        inside.join("x").is_dir() && inside.join("y").is_dir(),
        "created inside the rootfs instead"
    );
    // A link whose target does not exist inside the root: refused, never created on the host.
    std::fs::remove_dir_all(&inside).unwrap();
    assert!(matches!(
        f.create(&v, Options::new()).unwrap_err(),
        Error::Child {
            step: "resolve mount destination",
            ..
        }
    ));
    assert_eq!(std::fs::read_dir(host.path()).unwrap().count(), 0);
}

#[test]
fn rootfs_with_dev_symlink_gets_devices_inside_the_root() {
    let f = Fixture::new("devsym");
    let host = tempfile::tempdir().unwrap();
    std::fs::remove_dir(f.rootfs.join("dev")).unwrap();
    std::os::unix::fs::symlink(host.path(), f.rootfs.join("dev")).unwrap();
    std::fs::create_dir_all(f.rootfs.join(host.path().strip_prefix("/").unwrap())).unwrap();
    let mut v = f.spec_json("true");
    v["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    assert_eq!(f.run(&v), ExitStatus::Exited(0));
    assert_eq!(
        std::fs::read_dir(host.path()).unwrap().count(),
        0,
        "no device node on the host"
    );
    use std::os::unix::fs::FileTypeExt;
    let null = f
        .rootfs
        .join(host.path().strip_prefix("/").unwrap())
        .join("null");
    assert!(std::fs::symlink_metadata(null)
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn masked_and_readonly_paths_and_readonly_root() {
    let f = Fixture::new("mask");
    let mut v = f.spec_json("cat /proc/kcore | wc -c > /out/kcore; echo x > /proc/sys/kernel/domainname 2> /out/ro || echo denied > /out/rosys; touch /newfile 2> /dev/null || echo denied > /out/roroot");
    v["root"]["readonly"] = json!(true);
    assert_eq!(f.run(&v), ExitStatus::Exited(0));
    assert_eq!(f.out("kcore").trim(), "0");
    assert_eq!(f.out("rosys").trim(), "denied");
    assert_eq!(f.out("roroot").trim(), "denied");
}

#[test]
fn sysctls_go_to_the_container_procfs_and_host_wide_ones_are_refused() {
    let f = Fixture::new("sysctl");
    let mut v = f.spec_json("cat /proc/sys/net/ipv4/ip_forward > /out/fwd");
    v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    assert_eq!(f.run(&v), ExitStatus::Exited(0));
    assert_eq!(f.out("fwd").trim(), "1");
    v["linux"]["sysctl"] = json!({"kernel.panic": "1"});
    assert!(matches!(
        f.create(&v, Options::new()).unwrap_err(),
        Error::InvalidConfig {
            field: "linux.sysctl",
            ..
        }
    ));
}

#[test]
fn seccomp_denies_with_errno_and_compares_arguments() {
    let f = Fixture::new("seccomp");
    let mut v = f.spec_json("mkdir /tmp/d 2> /out/mkdir; echo $? > /out/mkdir_rc; touch /tmp/f; chmod 777 /tmp/f; echo $? > /out/c777; chmod 755 /tmp/f; echo $? > /out/c755; grep Seccomp: /proc/self/status > /out/mode");
    v["process"]["noNewPrivileges"] = json!(true);
    v["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95},
            {"names": ["chmod", "fchmod"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 511, "op": "SCMP_CMP_EQ"}]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 2, "value": 511, "op": "SCMP_CMP_EQ"}]}
        ]
    });
    assert_eq!(f.run(&v), ExitStatus::Exited(0));
    assert_ne!(f.out("mkdir_rc").trim(), "0");
    assert!(
        f.out("mkdir").contains("not supported"),
        "errno 95 (EOPNOTSUPP): {}",
        f.out("mkdir")
    );
    assert_ne!(
        f.out("c777").trim(),
        "0",
        "chmod 777 denied by the argument rule"
    );
    assert_eq!(f.out("c755").trim(), "0", "chmod 755 allowed");
    assert!(
        f.out("mode").contains('2'),
        "filter mode: {}",
        f.out("mode")
    );
}

#[test]
fn seccomp_default_errno_with_allow_list() {
    let f = Fixture::new("seccomp2");
    let mut v = f.spec_json("");
    v["process"]["args"] = json!(["sh", "-c", "mkdir /tmp/d 2> /out/err; echo $? > /out/rc"]);
    v["process"]["noNewPrivileges"] = json!(true);
    // Only what sh needs is allowed: mkdir gets the default EPERM.
    let json = r#"["read","write","open","openat","close","fstat","newfstatat","stat","lstat","mmap","mprotect","munmap","brk","rt_sigaction","rt_sigprocmask","rt_sigreturn","ioctl","access","execve","exit","exit_group","wait4","clone","clone3","fork","vfork","getpid","getppid","getuid","geteuid","getgid","getegid","arch_prctl","set_tid_address","set_robust_list","prlimit64","getrandom","dup2","dup3","fcntl","uname","getcwd","chdir","pipe","pipe2","lseek","readlink","sysinfo","rseq","futex","getpgrp","setpgid","getpgid","kill","pread64","statx","faccessat","faccessat2","umask","tgkill","gettid","poll","ppoll","prctl","getdents64","sigaltstack"]"#;
    let names: serde_json::Value = serde_json::from_str(json).unwrap();
    v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]});
    assert_eq!(f.run(&v), ExitStatus::Exited(0));
    assert_ne!(f.out("rc").trim(), "0", "mkdir denied: {}", f.out("err"));
    assert!(f.out("err").contains("not permitted"), "{}", f.out("err"));
}

#[test]
fn failed_setup_leaves_no_cgroup_behind() {
    let f = Fixture::new("fail");
    let mut v = f.spec_json("true");
    let cg = common::unique("failcg");
    v["linux"]["cgroupsPath"] = json!(cg);
    v["linux"]["resources"] = json!({"pids": {"limit": 10}});
    v["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/x", "type": "no-such-fs", "source": "none"}));
    let err = f.create(&v, Options::new()).unwrap_err();
    assert!(
        matches!(&err, Error::Child { step: "mount", detail, .. } if detail == "/x"),
        "{err}"
    );
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let pids_own = own
        .lines()
        .find(|l| l.contains(":pids:"))
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let dir = std::path::Path::new("/sys/fs/cgroup/pids")
        .join(pids_own.trim_start_matches('/'))
        .join(&cg);
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn sysctl_writes_never_land_on_a_bind_mount_over_proc() {
    // CVE-2019-16884 / CVE-2019-19921 style: a config (or an image volume) mounts a host
    // directory over /proc/sys; a sysctl write must go to the real procfs or fail, never into
    // the host directory.
    let f = Fixture::new("procfake");
    let host = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(host.path().join("ipv4")).unwrap();
    std::fs::write(host.path().join("ipv4/ip_forward"), "0\n").unwrap();
    let mut v = f.spec_json("true");
    v["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/proc/sys/net",
        "type": "bind",
        "source": host.path().to_str().unwrap(),
        "options": ["rbind"]
    }));
    // The mount itself is fine: the container sees the host directory there.
    assert_eq!(f.run(&v), ExitStatus::Exited(0));
    v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    let e = f.create(&v, Options::new()).unwrap_err();
    assert!(
        e.to_string().contains("sysctl") || e.to_string().contains("proc"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("ipv4/ip_forward")).unwrap(),
        "0\n",
        "the host file is untouched"
    );
}
