//! Crash consistency of `ocirun` (issue 17): `create` killed at each step that matters (by
//! strace's fault injection at a syscall boundary, and at random delays) leaves nothing that
//! `delete --force` cannot remove, and the id can be created again; `list` shows the healthy
//! containers beside corrupt, empty and garbage state files, and `delete --force` removes
//! those too, processes and cgroup included.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn unique(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A busybox bundle running `sleep 1000`, with a state root of its own; every ocirun it runs
/// carries `tag` in its environment, which its forks (the container's set-up processes)
/// share, so that a process left behind is found by its /proc/PID/environ.
struct Bundle {
    dir: tempfile::TempDir,
    root: PathBuf,
    tag: String,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "dev", "proc", "sys", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("busybox-static (./scripts/test installs it)");
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sleep")).unwrap();
        let mut spec = oci_runtime::default_spec().unwrap();
        let p = spec.process_mut().as_mut().unwrap();
        p.set_args(Some(vec!["sleep".into(), "1000".into()]));
        p.set_env(Some(vec!["PATH=/bin".into()]));
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_vec(&spec).unwrap(),
        )
        .unwrap();
        let root = dir.path().join("state");
        Bundle {
            dir,
            root,
            tag: unique(&format!("OCIRUN_CRASH_TAG={name}")),
        }
    }

    /// The config with the cgroupsPath of container `id`.
    fn for_id(&self, id: &str) {
        let path = self.dir.path().join("config.json");
        let mut spec: oci_spec::runtime::Spec =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        spec.linux_mut()
            .as_mut()
            .unwrap()
            .set_cgroups_path(Some(format!("/ocirun-tests/{id}").into()));
        std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
    }

    fn command(&self, prefix: &[&str], args: &[&str]) -> Command {
        let (k, v) = self.tag.split_once('=').unwrap();
        let mut c = match prefix.split_first() {
            Some((p, rest)) => {
                let mut c = Command::new(p);
                c.args(rest).arg(env!("CARGO_BIN_EXE_ocirun"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_ocirun")),
        };
        c.arg("--root")
            .arg(&self.root)
            .args(args)
            .env_clear()
            .env(k, v)
            // A created container keeps create's stdio: files, never pipes.
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(self.dir.path().join("out")).unwrap())
            .stderr(std::fs::File::create(self.dir.path().join("err")).unwrap());
        c
    }

    fn ocirun(&self, args: &[&str]) -> Output {
        let status = self.command(&[], args).status().unwrap();
        Output {
            status,
            stdout: std::fs::read(self.dir.path().join("out")).unwrap_or_default(),
            stderr: std::fs::read(self.dir.path().join("err")).unwrap_or_default(),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.ocirun(args);
        assert!(
            out.status.success(),
            "ocirun {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn create_args(&self, id: &str) -> Vec<String> {
        let bundle = self.dir.path().to_str().unwrap().to_string();
        vec!["create".into(), "--bundle".into(), bundle, id.into()]
    }

    /// Live (not zombie) processes carrying this bundle's tag.
    fn tagged_processes(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            let tagged = env.split(|b| *b == 0).any(|kv| kv == self.tag.as_bytes());
            let zombie = oci_runtime::proc_stat(pid).is_none_or(|(s, _)| s == 'Z' || s == 'X');
            if tagged && !zombie {
                out.push(pid);
            }
        }
        out
    }

    /// Nothing of container `id` is left: no process, cgroup directory, state or mount.
    fn assert_nothing_left(&self, id: &str, when: &str) {
        // A SIGKILLed process takes a moment to be gone.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.tagged_processes().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            self.tagged_processes(),
            Vec::<i32>::new(),
            "{when}: processes"
        );
        let cgroups = cgroup_dirs(&format!("ocirun-tests/{id}"));
        assert!(cgroups.is_empty(), "{when}: cgroups left: {cgroups:?}");
        assert!(!self.root.join(id).exists(), "{when}: state left");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let here = self.dir.path().to_str().unwrap();
        assert!(!mounts.contains(here), "{when}: mounts left");
    }

    /// The id is usable again: create, then a normal delete.
    fn assert_reusable(&self, id: &str, when: &str) {
        let args = self.create_args(id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.ocirun(&args);
        assert!(
            out.status.success(),
            "{when}: create again: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.ok(&["delete", "--force", id]);
        self.assert_nothing_left(id, when);
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Whatever a failed assertion left.
        if let Ok(rd) = std::fs::read_dir(&self.root) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.ocirun(&["delete", "--force", &id]);
            }
        }
        for pid in self.tagged_processes() {
            // SAFETY: kill(2) of a process this test's runtime started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// The directories `rel` under every cgroup mount that exist.
fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .filter_map(|l| l.split(' ').nth(4).map(|m| Path::new(m).join(rel)))
        .filter(|d| d.exists())
        .collect()
}

/// `ocirun create` killed (SIGKILL, injected by strace when the Nth call of a syscall is
/// entered) at each step of its sequence: the state directory, the intent record, the cgroup
/// (before, half-way, after), the fork of the set-up process, each exchange with it while it
/// sets the container up (the init alive), the rename of state.json (the init fully set up,
/// unrecorded), and the release of the recorded init. After each, no process of it is left
/// even before any delete (they die with their creator until the container is recorded),
/// `delete --force` succeeds, nothing is left, and the id can be created again.
#[test]
fn create_killed_at_every_step_leaves_nothing_delete_force_cannot_remove() {
    let b = Bundle::new("steps");
    let steps = [
        ("mkdir", 2),    // the state directory
        ("renameat", 1), // intent.json
        ("mkdir", 3),    // the first cgroup directory
        ("mkdir", 7),    // half the cgroup hierarchies
        ("clone3", 1),   // the fork of stage 1: every cgroup made
        ("recvmsg", 1),  // waiting for the init's pid
        ("recvmsg", 2),  // the init set up its mounts (hooks point)
        ("recvmsg", 3),  // the init waiting for the runtime (Ready)
        ("renameat", 2), // state.json: the init whole, not recorded
        ("sendmsg", 3),  // recorded, releasing the init
    ];
    for (syscall, n) in steps {
        let id = unique("crash");
        let when = format!("killed at {syscall} #{n}");
        b.for_id(&id);
        let inject = format!("inject={syscall}:signal=SIGKILL:when={n}");
        let args = b.create_args(&id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let status = b
            .command(&["strace", "-qq", "-o", "/dev/null", "-e", &inject], &args)
            .status()
            .unwrap();
        assert!(!status.success(), "{when}: create was not killed");
        // Before any delete: no set-up process outlives the killed create (the
        // parent-death signal), so nothing runs that nobody knows of.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !b.tagged_processes().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(b.tagged_processes(), Vec::<i32>::new(), "{when}: orphans");
        let out = b.ocirun(&["delete", "--force", &id]);
        assert!(
            out.status.success(),
            "{when}: delete --force: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        b.assert_nothing_left(&id, &when);
        b.assert_reusable(&id, &when);
    }
}

/// The same at random points: `ocirun create` killed after a pseudo-random delay (bounded
/// loop of a few seconds).
#[test]
fn create_killed_at_random_delays_leaves_nothing() {
    let b = Bundle::new("random");
    // A fixed pseudo-random sequence (xorshift), so that a failure can be replayed.
    let mut x: u32 = 0x9e37_79b9;
    for i in 0..12 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let delay = Duration::from_micros(u64::from(x % 60_000));
        let id = unique("rnd");
        let when = format!("try {i}: killed after {delay:?}");
        b.for_id(&id);
        let args = b.create_args(&id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = b.command(&[], &args).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let out = b.ocirun(&["delete", "--force", &id]);
        assert!(
            out.status.success(),
            "{when}: delete --force: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        b.assert_nothing_left(&id, &when);
    }
    let id = unique("rnd");
    b.for_id(&id);
    b.assert_reusable(&id, "after the loop");
}

/// runc lists the other containers with a warning when one state file is corrupt; so does
/// ocirun, for corrupt, empty and garbage state files, and a create that never finished.
/// `delete --force` then removes each, with its processes and cgroup (runc cannot).
#[test]
fn list_shows_the_healthy_beside_corrupt_state_and_delete_force_removes_them() {
    let b = Bundle::new("list");
    let healthy = unique("ok");
    let broken: Vec<String> = (0..3).map(|_| unique("bad")).collect();
    for id in std::iter::once(&healthy).chain(&broken) {
        b.for_id(id);
        let args = b.create_args(id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        b.ok(&args);
    }
    let corruptions: [&[u8]; 3] = [b"{\"id\": \"trunc", b"", b"\x00\xffgarbage"];
    for (id, bytes) in broken.iter().zip(corruptions) {
        std::fs::write(b.root.join(id).join("state.json"), bytes).unwrap();
    }
    // A create that never finished: the directory only.
    let unfinished = unique("half");
    std::fs::create_dir(b.root.join(&unfinished)).unwrap();

    let out = b.ocirun(&["list", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [healthy.as_str()]);
    let warnings = String::from_utf8_lossy(&out.stderr);
    for id in broken.iter().chain([&unfinished]) {
        assert!(
            warnings.contains(&format!("container {id}")) && warnings.contains("warning"),
            "{id} not warned about: {warnings}"
        );
    }
    let table = b.ok(&["list"]);
    assert!(table.contains(&healthy), "{table}");

    // Their inits still run, in their cgroups: delete --force finds them by the intent.
    for id in broken.iter().chain([&unfinished, &healthy]) {
        b.ok(&["delete", "--force", id]);
    }
    for id in broken.iter().chain([&unfinished, &healthy]) {
        b.assert_nothing_left(id, id);
    }
}
