//! Real containers: the spawn, namespaces, hooks, process settings.
mod common;

use common::{status_field, Fixture};
use oci_sandbox::{Error, ExitStatus, Options};
use serde_json::json;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

#[test]
fn runs_a_container_created_then_started() {
    let f = Fixture::new("basic");
    let v = f.spec_json("echo $$ > /out/pid; hostname > /out/host; readlink /proc/self/ns/net > /out/net; pwd > /out/cwd");
    let mut c = f.create(&v, Options::new()).unwrap();
    // Created: the user's program has not run yet.
    assert!(!f.out.join("pid").exists());
    c.start().unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0));
    c.delete().unwrap();
    assert_eq!(
        f.out("pid").trim(),
        "1",
        "pid namespace: the program is pid 1"
    );
    assert_eq!(f.out("host").trim(), "sandbox");
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(f.out("net").trim(), host_net.to_str().unwrap());
    assert_eq!(f.out("cwd").trim(), "/");
}

#[test]
fn exit_code_and_signal_are_reported() {
    let f = Fixture::new("exit");
    assert_eq!(f.run(&f.spec_json("exit 7")), ExitStatus::Exited(7));
    // SIGKILL from inside the pid namespace is ignored by its init: kill from outside.
    let mut c = f
        .create(&f.spec_json("sleep 1000"), Options::new())
        .unwrap();
    c.start().unwrap();
    c.kill(9).unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Signaled(9));
    c.delete().unwrap();
}

#[test]
fn hooks_are_called_in_order_with_the_pid() {
    let f = Fixture::new("hooks");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (a, b, c2) = (log.clone(), log.clone(), log.clone());
    let opts = Options::new()
        .on_create_runtime(move |pid| {
            // The container's mount namespace exists already.
            let mnt =
                std::fs::read_link(format!("/proc/{pid}/ns/mnt")).map_err(|e| e.to_string())?;
            assert_ne!(mnt, std::fs::read_link("/proc/self/ns/mnt").unwrap());
            a.lock().unwrap().push(("createRuntime", pid));
            Ok(())
        })
        .on_create_container(move |pid| {
            b.lock().unwrap().push(("createContainer", pid));
            Ok(())
        })
        .on_start_container(move |pid| {
            c2.lock().unwrap().push(("startContainer", pid));
            Ok(())
        });
    let mut c = f.create(&f.spec_json("true"), opts).unwrap();
    let pid = c.pid();
    assert_eq!(
        *log.lock().unwrap(),
        vec![("createRuntime", pid), ("createContainer", pid)]
    );
    c.start().unwrap();
    assert_eq!(log.lock().unwrap().last(), Some(&("startContainer", pid)));
    c.wait().unwrap();
}

#[test]
fn failing_hook_aborts_create() {
    let f = Fixture::new("hookfail");
    let err = f
        .create(
            &f.spec_json("true"),
            Options::new().on_create_runtime(|_| Err("nope".into())),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Hook {
                hook: "createRuntime",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn user_namespace_maps_are_written_by_the_parent() {
    let f = Fixture::new("userns");
    let mut v = f.spec_json(
        "id -u > /out/uid; cat /proc/self/uid_map > /out/map; ls -l /dev/null > /out/null",
    );
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    assert_eq!(f.run(&v), ExitStatus::Exited(0));
    assert_eq!(f.out("uid").trim(), "0");
    let map: Vec<String> = f.out("map").split_whitespace().map(String::from).collect();
    assert_eq!(map, ["0", "100000", "65536"]);
    assert!(
        f.out("null").starts_with('c'),
        "default device bind-mounted: {}",
        f.out("null")
    );
}

#[test]
fn process_user_groups_umask_env_rlimits_caps_nnp() {
    let f = Fixture::new("proc");
    let mut v = f.spec_json("cat /proc/self/status > /out/status; cat /proc/self/limits > /out/limits; env > /out/env; cat /proc/self/oom_score_adj > /out/oom");
    v["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 7], "umask": 23});
    v["process"]["env"] = json!(["PATH=/bin", "HELLO=world"]);
    v["process"]["noNewPrivileges"] = json!(true);
    v["process"]["oomScoreAdj"] = json!(500);
    v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}]);
    v["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"],
        "effective": ["CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
        "inheritable": ["CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"]
    });
    assert_eq!(f.run(&v), ExitStatus::Exited(0));
    let s = f.out("status");
    assert_eq!(status_field(&s, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&s, "Gid"), "1001\t1001\t1001\t1001");
    assert_eq!(status_field(&s, "Groups"), "5 7");
    assert_eq!(status_field(&s, "Umask"), "0027");
    assert_eq!(status_field(&s, "NoNewPrivs"), "1");
    // After execve as a non-root user: permitted = effective = ambient (cap 10).
    let bit = |n: u32| format!("{:016x}", 1u64 << n);
    assert_eq!(status_field(&s, "CapAmb"), bit(10));
    assert_eq!(status_field(&s, "CapEff"), bit(10));
    assert_eq!(status_field(&s, "CapPrm"), bit(10));
    assert_eq!(status_field(&s, "CapInh"), bit(10));
    assert_eq!(
        status_field(&s, "CapBnd"),
        format!("{:016x}", (1u64 << 0) | (1 << 10) | (1 << 5))
    );
    let limits = f.out("limits");
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        nofile.split_whitespace().collect::<Vec<_>>()[3..5],
        ["512", "1024"]
    );
    assert!(f.out("env").lines().any(|l| l == "HELLO=world"));
    assert_eq!(f.out("oom").trim(), "500");
}

#[test]
fn program_is_looked_up_in_the_container_path() {
    let f = Fixture::new("path");
    let mut v = f.spec_json("");
    v["process"]["args"] = json!(["touch", "/out/touched"]);
    v["process"]["env"] = json!(["PATH=/nonexistent:/bin"]);
    assert_eq!(f.run(&v), ExitStatus::Exited(0));
    assert!(f.out.join("touched").exists());
    // Not in PATH: create fails (busybox exists at /bin but PATH does not list /bin).
    v["process"]["env"] = json!(["PATH=/nonexistent"]);
    let err = f.create(&v, Options::new()).unwrap_err();
    assert!(
        matches!(&err, Error::Executable { name, searched: true, .. } if name == "touch"),
        "{err:?}"
    );
}

#[test]
fn unsupported_settings_are_refused() {
    let f = Fixture::new("unsup");
    let mut v = f.spec_json("true");
    v["linux"]["intelRdt"] = json!({"closID": "x"});
    assert!(matches!(
        f.create(&v, Options::new()).unwrap_err(),
        Error::Unsupported {
            field: "linux.intelRdt"
        }
    ));
    let mut v = f.spec_json("true");
    v["process"]["execCPUAffinity"] = json!({"final": "0"});
    assert!(matches!(
        f.create(&v, Options::new()).unwrap_err(),
        Error::Unsupported {
            field: "process.execCPUAffinity"
        }
    ));
    let mut v = f.spec_json("true");
    v["process"]["apparmorProfile"] = json!("docker-default");
    assert!(matches!(
        f.create(&v, Options::new()).unwrap_err(),
        Error::LsmUnavailable { .. } | Error::Unsupported { .. }
    ));
    let mut v = f.spec_json("true");
    v["linux"]["namespaces"] = json!([{"type": "pid"}]);
    assert!(matches!(
        f.create(&v, Options::new()).unwrap_err(),
        Error::Unsupported { .. }
    ));
}

/// clone3 (the init's stage 1 born in the cgroup2 part with CLONE_INTO_CGROUP, the init's
/// pidfd from CLONE_PIDFD) and the clone(2) fallback of kernels before 5.3 (cgroup.procs
/// writes, pidfd_open) give the same container.
#[test]
fn clone3_and_the_clone_fallback_make_the_same_container() {
    for legacy in [false, true] {
        let f = Fixture::new("clone3");
        let mut v = f.spec_json("sleep 1000");
        let path = format!("/{}", common::unique("clone3"));
        v["linux"]["cgroupsPath"] = json!(path);
        v["linux"]["resources"] = json!({"pids": {"limit": 10}});
        let mut c = f.create(&v, Options::new().legacy_clone(legacy)).unwrap();
        let cgroups = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).unwrap();
        for controller in ["0::", ":pids:", ":memory:", ":freezer:"] {
            let line = cgroups
                .lines()
                .find(|l| l.contains(controller))
                .unwrap_or_else(|| panic!("{controller} in {cgroups}"));
            assert!(line.ends_with(&path), "legacy={legacy}: {line}");
        }
        let pidfd = c.pidfd().expect("a pidfd on this kernel").as_raw_fd();
        c.start().unwrap();
        let mut poll = libc::pollfd {
            fd: pidfd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a pidfd is readable once the process has exited.
        assert_eq!(unsafe { libc::poll(&mut poll, 1, 0) }, 0, "running");
        c.kill(libc::SIGKILL).unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { libc::poll(&mut poll, 1, 10_000) }, 1, "exited");
        assert_eq!(c.wait().unwrap(), ExitStatus::Signaled(libc::SIGKILL));
        c.delete().unwrap();
    }
}

/// Fds to preserve must be open: otherwise fds the set-up opens itself could take their
/// numbers and reach the container in their place.
#[test]
fn preserving_fds_that_are_not_open_is_refused() {
    let f = Fixture::new("nofds");
    let v = f.spec_json("true");
    let e = f
        .create(&v, Options::new().preserve_fds(100_000))
        .unwrap_err();
    assert!(matches!(e, Error::InvalidConfig { .. }), "{e:?}");
    assert!(e.to_string().contains("is not open"), "{e}");
}

/// (uid_t)-1 means "unchanged" to setresuid(2): a config asking for it must not leave the
/// process root.
#[test]
fn the_id_minus_one_is_refused() {
    let f = Fixture::new("idm1");
    for (field, user) in [
        ("process.user.uid", json!({"uid": 4294967295u32, "gid": 0})),
        (
            "process.user.gid",
            json!({"uid": 1000, "gid": 4294967295u32}),
        ),
        (
            "process.user.additionalGids",
            json!({"uid": 1000, "gid": 1000, "additionalGids": [4294967295u32]}),
        ),
    ] {
        let mut v = f.spec_json("true");
        v["process"]["user"] = user;
        let e = f.create(&v, Options::new()).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidConfig { field: got, .. } if *got == field),
            "{e:?}"
        );
    }
}
