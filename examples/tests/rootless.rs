//! `ocirun` rootless, run for real as an ordinary user with subordinate ids (the user of
//! `scripts/rootless-user`, through setpriv): what works without privileges, and the
//! refusals, each with runc as the oracle where runc 1.1.5 has the feature.

#[path = "support/rootless.rs"]
mod rootless;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RUNC: &str = "/usr/sbin/runc";
const OCIRUN: &str = env!("CARGO_BIN_EXE_ocirun");

/// A private directory owned by the test user, with a busybox rootfs (owned by root, readable
/// by all) and a config written by `ocirun spec --rootless` as the user, edited by `edit`.
struct Bundle {
    dir: tempfile::TempDir,
    id: String,
}

impl Bundle {
    fn new(name: &str, args: &[&str], edit: &dyn Fn(&mut Value)) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("ocirun-rootless-")
            .tempdir()
            .unwrap();
        rootless::give(dir.path());
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "dev", "proc", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "cat", "id", "sleep", "mount", "ls", "grep"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        let b = Bundle {
            id: format!("rootless-{name}-{}", std::process::id()),
            dir,
        };
        let out = b.cmd(OCIRUN).args(["spec", "--rootless"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = b.path().join("config.json");
        let mut spec: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        spec["process"]["terminal"] = json!(false);
        spec["process"]["args"] = json!(args);
        spec["process"]["env"] = json!(["PATH=/bin"]);
        edit(&mut spec);
        std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
        b
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `program` as the test user, in the bundle, `XDG_RUNTIME_DIR` in it.
    fn cmd(&self, program: &str) -> Command {
        let mut c = rootless::command(program, &self.path().join("xdg"));
        c.current_dir(self.path());
        c
    }

    /// `RUNTIME --root STATE run ID` as the test user.
    fn run(&self, runtime: &str) -> Output {
        let _delete = Delete(self, runtime);
        self.cmd(runtime)
            .arg("--root")
            .arg(self.path().join(format!("state-{}", short(runtime))))
            .args(["run", &self.id])
            .output()
            .unwrap()
    }
}

fn short(runtime: &str) -> &str {
    Path::new(runtime).file_name().unwrap().to_str().unwrap()
}

/// Deletes the container even when the test fails.
struct Delete<'a>(&'a Bundle, &'a str);

impl Drop for Delete<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .cmd(self.1)
            .arg("--root")
            .arg(self.0.path().join(format!("state-{}", short(self.1))))
            .args(["delete", "--force", &self.0.id])
            .output();
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs the bundle under runc and ocirun, checks that both fail, and returns ocirun's stderr.
fn both_refuse(b: &Bundle) -> String {
    let runc = b.run(RUNC);
    assert!(!runc.status.success(), "runc: {}", text(&runc));
    let ours = b.run(OCIRUN);
    assert!(!ours.status.success(), "ocirun: {}", text(&ours));
    String::from_utf8_lossy(&ours.stderr).into_owned()
}

/// What `ocirun spec --rootless` changes in `ocirun spec`, and what `runc spec --rootless`
/// changes in `runc spec`: the namespaces, the maps, the /sys mount, `uid=`/`gid=` options
/// and the resources.
fn rootless_changes(base: &Value, rootless: &Value) -> Value {
    let ns = |s: &Value| -> Vec<String> {
        s["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_string())
            .collect()
    };
    let (before, after) = (ns(base), ns(rootless));
    let removed: Vec<&String> = before.iter().filter(|n| !after.contains(n)).collect();
    let added: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
    let sys: Vec<&Value> = rootless["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destination"] == "/sys")
        .collect();
    let id_options = rootless["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["options"].as_array().cloned().unwrap_or_default())
        .filter(|o| {
            let o = o.as_str().unwrap();
            o.starts_with("uid=") || o.starts_with("gid=")
        })
        .count();
    json!({
        "namespaces removed": removed,
        "namespaces added": added,
        "uidMappings": rootless["linux"]["uidMappings"],
        "gidMappings": rootless["linux"]["gidMappings"],
        "sys mounts": sys,
        "uid= and gid= options": id_options,
        "resources": rootless["linux"]["resources"],
    })
}

/// `ocirun spec --rootless` is runc's rootless template (runc-spec(8): "--rootless: generate
/// a configuration for a rootless container"): the same changes to the default config as
/// `runc spec --rootless` makes to runc's, for the same user.
#[test]
fn spec_rootless_is_runcs_template() {
    let dir = tempfile::tempdir().unwrap();
    rootless::give(dir.path());
    let mut specs = Vec::new();
    for (rt, flags) in [
        (RUNC, &[][..]),
        (RUNC, &["--rootless"][..]),
        (OCIRUN, &[][..]),
        (OCIRUN, &["--rootless"][..]),
    ] {
        let d = dir.path().join(format!("{}-{}", short(rt), flags.len()));
        std::fs::create_dir(&d).unwrap();
        rootless::give(&d);
        let out = rootless::command(rt, &dir.path().join("xdg"))
            .arg("spec")
            .args(flags)
            .current_dir(&d)
            .output()
            .unwrap();
        assert!(out.status.success(), "{rt}: {}", text(&out));
        let s: Value =
            serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap();
        specs.push(s);
    }
    let runc = rootless_changes(&specs[0], &specs[1]);
    let ours = rootless_changes(&specs[2], &specs[3]);
    assert_eq!(runc, ours);
    let u = rootless::user();
    assert_eq!(
        ours["uidMappings"],
        json!([{"containerID": 0, "hostID": u.uid, "size": 1}])
    );
}

/// A rootless container without a `cgroupsPath` on this cgroup v1 host, where the user may
/// create no cgroup: it runs in the user's own cgroups (as under runc), and its state is in
/// `$XDG_RUNTIME_DIR/ocirun` when no `--root` is given (runc: `$XDG_RUNTIME_DIR/runc`).
#[test]
fn state_in_xdg_runtime_dir_and_no_cgroup_of_its_own() {
    // Without a cgroup namespace, to see the host's cgroup paths.
    let b = Bundle::new("xdg", &["sh", "-c", "cat /proc/self/cgroup"], &|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "cgroup");
    });
    let xdg = b.path().join("xdg");
    let mut outputs = Vec::new();
    for rt in [RUNC, OCIRUN] {
        let id = format!("{}-{}", b.id, short(rt));
        // ocirun keeps the stopped container (runc 1.1.5 has no --keep) to show its state.
        let keep: &[&str] = if rt == OCIRUN { &["--keep"] } else { &[] };
        let out = b.cmd(rt).arg("run").args(keep).arg(&id).output().unwrap();
        assert!(out.status.success(), "{rt}: {}", text(&out));
        outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
        if rt == OCIRUN {
            assert!(
                xdg.join("ocirun").join(&id).join("state.json").exists(),
                "state under $XDG_RUNTIME_DIR/ocirun"
            );
            let del = b.cmd(rt).args(["delete", &id]).output().unwrap();
            assert!(del.status.success(), "{}", text(&del));
        } else {
            assert!(xdg.join("runc").is_dir());
        }
    }
    // The same cgroups as the user's own, for both runtimes.
    assert_eq!(outputs[0], outputs[1]);
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(outputs[1], own);
}

/// config-linux.md "Control groups": "the runtime MUST apply" the resource limits; a
/// rootless user on a host that delegated no cgroup to it cannot, so the container is
/// refused (runc: "cannot set memory limit: container could not join or create cgroup"),
/// and ocirun says which delegation is needed.
#[test]
fn limits_without_delegation_are_refused() {
    let b = Bundle::new("limits", &["true"], &|s| {
        s["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
    });
    let err = both_refuse(&b);
    assert!(
        err.contains("/sys/fs/cgroup/") && err.contains("cgroup v1") && err.contains("chowned"),
        "{err}"
    );
}

/// A cgroup subtree chowned to the user (the delegation of cgroup v1, and of v2 without
/// systemd): the rootless container gets its own cgroup there with its limits, and reads
/// them through its cgroup mount.
#[test]
fn a_delegated_subtree_is_used_for_limits() {
    let u = rootless::user();
    let parent = format!("ocirun-rootless-delegated-{}", std::process::id());
    let mut made: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let hier = entry.path();
        if !entry.file_type().unwrap().is_dir() || hier.is_symlink() {
            continue;
        }
        let d = hier.join(&parent);
        std::fs::create_dir(&d).unwrap();
        made.push(d.clone());
        if hier.ends_with("cpuset") {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = std::fs::read_to_string(hier.join(f)).unwrap();
                std::fs::write(d.join(f), v.trim()).unwrap();
            }
        }
        for f in ["", "cgroup.procs", "tasks"] {
            let p = d.join(f);
            if p.exists() {
                std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
            }
        }
    }
    struct Remove(Vec<PathBuf>);
    impl Drop for Remove {
        fn drop(&mut self) {
            for d in &self.0 {
                if let Ok(entries) = std::fs::read_dir(d) {
                    for e in entries.flatten() {
                        if e.file_type().is_ok_and(|t| t.is_dir()) {
                            let _ = std::fs::remove_dir(e.path());
                        }
                    }
                }
                let _ = std::fs::remove_dir(d);
            }
        }
    }
    let _remove = Remove(made);
    let b = Bundle::new(
        "delegated",
        &[
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/pids/pids.max",
        ],
        &|s| {
            s["linux"]["cgroupsPath"] = json!(format!("/{parent}/c"));
            s["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 20}});
        },
    );
    let out = b.run(OCIRUN);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "67108864\n20\n");
}

/// config-linux.md "User namespace mappings": the maps are the config's. A rootless user may
/// map only its own ids and the ranges /etc/subuid and /etc/subgid give it: a mapping
/// outside them is refused by newuidmap, under runc as under ocirun, and ocirun names the
/// helper and the range.
#[test]
fn a_mapping_outside_the_users_ranges_is_refused() {
    let u = rootless::user();
    let outside = u.subid + 65536 + 1000;
    let b = Bundle::new("badmap", &["true"], &|s| {
        s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": u.uid, "size": 1},
            {"containerID": 1, "hostID": outside, "size": 10}]);
        s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": u.gid, "size": 1}]);
    });
    let err = both_refuse(&b);
    assert!(
        err.contains("newuidmap") && err.contains(&format!("1 {outside} 10")),
        "{err}"
    );
}

/// runc's rule for rootless containers: no supplementary groups (setgroups(2) is denied in a
/// user namespace whose gid map an unprivileged process wrote), so `additionalGids` is an
/// error under both runtimes.
#[test]
fn additional_gids_are_refused() {
    let b = Bundle::new("groups", &["true"], &|s| {
        s["process"]["user"]["additionalGids"] = json!([5]);
    });
    let err = both_refuse(&b);
    assert!(err.contains("additionalGids"), "{err}");
}

/// A sysfs mount (Docker's config has one) in a rootless container without a network
/// namespace of its own, which the kernel refuses (sysfs belongs to the network namespace's
/// owner): ocirun binds the host's /sys read-only instead, as runc does since 1.2 (1.1.5,
/// the oracle here, fails: the one place it is not the reference).
#[test]
fn sysfs_falls_back_to_a_bind_of_the_hosts_sys() {
    let b = Bundle::new(
        "sysfs",
        &[
            "sh",
            "-c",
            "grep ' /sys ' /proc/self/mountinfo; ls /sys/kernel >/dev/null && echo listed",
        ],
        &|s| {
            let mounts = s["mounts"].as_array_mut().unwrap();
            for m in mounts.iter_mut() {
                if m["destination"] == "/sys" {
                    *m = json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                        "options": ["nosuid", "noexec", "nodev", "ro"]});
                }
            }
        },
    );
    let runc = b.run(RUNC);
    assert!(!runc.status.success(), "runc 1.1.5: {}", text(&runc));
    let ours = b.run(OCIRUN);
    assert!(ours.status.success(), "{}", text(&ours));
    let out = String::from_utf8_lossy(&ours.stdout);
    let line = out.lines().next().unwrap();
    let fields: Vec<&str> = line.split(' ').collect();
    // mountinfo: root of the mount in its filesystem "/", mount options "ro,nosuid,...",
    // filesystem type sysfs (the host's, bound).
    assert_eq!(fields[3], "/", "{line}");
    assert!(fields[5].starts_with("ro,nosuid,nodev,noexec"), "{line}");
    assert!(line.contains(" - sysfs "), "{line}");
    assert!(out.contains("listed"), "{out}");
}
