//! A set-up process that dies (here: OOM-killed under a tiny memory limit) makes
//! `Sandbox::create` return an error naming the cause, never hang, and leave nothing behind.
//! In a test binary of its own: it checks that this process has no child left.

mod common;

use common::{unique, Fixture};
use oci_sandbox::{Error, Options};
use std::sync::mpsc;
use std::time::Duration;

/// The tests of this file check that this process has no child left: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Children of this process not yet reaped (running or zombie), from every thread's
/// `/proc/self/task/TID/children`.
fn children() -> Vec<String> {
    let mut out = Vec::new();
    for t in std::fs::read_dir("/proc/self/task").unwrap() {
        let p = t.unwrap().path().join("children");
        out.extend(
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .split_whitespace()
                .map(String::from),
        );
    }
    out
}

/// `Sandbox::create` in a thread; a hang (the bound is minutes, a create takes
/// milliseconds) fails the test instead of hanging it. A container that did come up is not
/// these tests' case: it is deleted at once.
fn create_bounded(
    spec: oci_spec::runtime::Spec,
    rootfs: std::path::PathBuf,
    options: Options,
    round: u32,
) -> oci_sandbox::Result<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = oci_sandbox::Sandbox::create(&spec, &rootfs, options);
        let _ = tx.send(r.and_then(|c| c.delete()));
    });
    rx.recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("round {round}: Sandbox::create hung"))
}

/// No child process of ours and no directory of `cgroup` in any hierarchy.
fn assert_nothing_left(cgroup: &str, round: u32) {
    assert_eq!(
        children(),
        Vec::<String>::new(),
        "round {round}: a process left"
    );
    for ctl in ["memory", "pids", "cpu", "unified"] {
        let dir = std::path::Path::new("/sys/fs/cgroup")
            .join(ctl)
            .join(&cgroup[1..]);
        assert!(!dir.exists(), "round {round}: {} left", dir.display());
    }
}

/// runtime.md "Create": "If the runtime cannot create the container as specified, it MUST
/// generate an error." With 256 KiB of memory the OOM killer kills the set-up at some point
/// (the stage-1 process after it forked the init, the init itself, ...): each time `create`
/// must come back with the OOM error, and leave no process and no cgroup. The bound only
/// turns a hang into a failure: a create takes milliseconds.
#[test]
fn create_under_a_tiny_memory_limit_fails_with_oom_and_leaves_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fx = Fixture::new("oom");
    for round in 0..10 {
        let cgroup = format!("/{}", unique("oom"));
        let mut v = fx.spec_json("true");
        v["linux"]["cgroupsPath"] = serde_json::json!(cgroup);
        v["linux"]["resources"] = serde_json::json!({"memory": {"limit": 256 * 1024}});
        let r = create_bounded(fx.spec(&v), fx.rootfs.clone(), Options::new(), round);
        match r {
            Err(Error::OomKilled { stage, limit }) => {
                assert_eq!(stage, "create");
                assert_eq!(limit, "262144");
            }
            other => panic!("round {round}: expected the OOM error, got {other:?}"),
        }
        assert_nothing_left(&cgroup, round);
    }
}

/// The case that hung: the set-up's first process dies after forking the init and before
/// reporting its pid, and the init, waiting for the caller, holds the sync socket open.
/// `create` must see the death, kill and reap the init, and say the set-up process vanished.
#[test]
fn create_whose_setup_process_dies_after_forking_the_init_fails_and_leaves_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fx = Fixture::new("die");
    for round in 0..10 {
        let cgroup = format!("/{}", unique("die"));
        let mut v = fx.spec_json("true");
        v["linux"]["cgroupsPath"] = serde_json::json!(cgroup);
        let options = Options::new().die_after_fork(true);
        let r = create_bounded(fx.spec(&v), fx.rootfs.clone(), options, round);
        assert!(
            matches!(r, Err(Error::ChildVanished { stage: "create" })),
            "round {round}: {r:?}"
        );
        assert_nothing_left(&cgroup, round);
    }
}
