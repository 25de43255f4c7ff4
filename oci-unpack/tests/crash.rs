//! Crash consistency (DESIGN.md: "an interrupted unpack leaves the previous state intact and no
//! partial layer in the store"): unpacks in separate processes killed with SIGKILL at random
//! points, then the next unpack succeeds and nothing stale is left after it or after `gc`; and
//! reclaiming never removes the private directory of a live unpack.
//!
//! The test binary runs itself as the child (`CRASH_CHILD` in the environment), so the child is
//! a real process the kernel kills, with its locks dropped by the kernel, as in a crash.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use common::*;
use oci_unpack::{LayerStore, Unpacker};

/// Three layers of 200 small files each, whiteouts and an opaque directory in the top ones.
fn layers() -> Vec<Vec<u8>> {
    (0..3)
        .map(|l| {
            let mut t = Tar::new();
            t.dir("d/", 0o755);
            for i in 0..100 {
                t.file(&format!("d/l{l}-{i}"), &[b'x'; 600], 0o644);
            }
            if l > 0 {
                t.whiteout(&format!("d/.wh.l{}-7", l - 1));
                t.dir("o/", 0o755).whiteout("o/.wh..wh..opq");
            }
            t.bytes()
        })
        .collect()
}

/// A small deterministic generator (xorshift): random points, reproducible from the seed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What the child does: `flat TARGET` or `store STORE OWNER`; with `CRASH_KILL_AT=N` it kills
/// itself with SIGKILL after the Nth entry; with `CRASH_PAUSE_AT=N` it writes `paused` in the
/// work directory after the Nth entry and waits for `go` there.
fn child(work: &Path, mode: &str) {
    let layout = oci_image::Layout::open(work.join("layout")).unwrap();
    let image = layout.resolve("latest", None).unwrap();
    let kill_at: Option<u64> = std::env::var("CRASH_KILL_AT")
        .ok()
        .map(|v| v.parse().unwrap());
    let pause_at: Option<u64> = std::env::var("CRASH_PAUSE_AT")
        .ok()
        .map(|v| v.parse().unwrap());
    let work2 = work.to_path_buf();
    let u = Unpacker::new().on_progress(move |p| {
        if Some(p.entries) == kill_at {
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL)
                .unwrap();
        }
        if Some(p.entries) == pause_at {
            std::fs::write(work2.join("paused"), b"").unwrap();
            while !work2.join("go").exists() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    });
    let target = std::env::var_os("CRASH_TARGET").map(PathBuf::from).unwrap();
    match mode {
        "flat" => u.unpack(&layout, &image, &target).unwrap(),
        _ => {
            let store = LayerStore::open(&target).unwrap();
            store.prepare(&u, &layout, &image, "killed").unwrap();
        }
    }
}

fn spawn(test: &str, work: &Path, mode: &str, target: &Path, env: &[(&str, String)]) -> Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", test, "--test-threads=1", "--nocapture"])
        .env("CRASH_CHILD", mode)
        .env("CRASH_WORK", work)
        .env("CRASH_TARGET", target)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

fn run_child_if_asked() -> bool {
    let Some(mode) = std::env::var_os("CRASH_CHILD") else {
        return false;
    };
    let work = PathBuf::from(std::env::var_os("CRASH_WORK").unwrap());
    child(&work, mode.to_str().unwrap());
    true
}

fn private_dirs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".oci-unpack-"))
        .collect()
}

/// Kills the child at the Nth entry (an odd round) or after a random delay (an even round,
/// which also lands in the set-up, the verification and the rename), then waits for it.
fn kill_somewhere(rng: &mut Rng, round: u64, spawn: impl FnOnce(Vec<(&str, String)>) -> Child) {
    let total = 3 * 103;
    if round % 2 == 1 {
        let at = 1 + rng.below(total);
        let status = spawn(vec![("CRASH_KILL_AT", at.to_string())])
            .wait()
            .unwrap();
        assert!(!status.success(), "the child was to die at entry {at}");
    } else {
        let mut c = spawn(Vec::new());
        std::thread::sleep(std::time::Duration::from_micros(rng.below(60_000)));
        let _ = c.kill();
        c.wait().unwrap();
    }
}

#[test]
fn flat_unpacks_killed_at_random_points() {
    if run_child_if_asked() {
        return;
    }
    let w = workdir();
    image(&w.path().join("layout"), &layers(), Comp::Gzip);
    let (layout, image) = {
        let l = oci_image::Layout::open(w.path().join("layout")).unwrap();
        let i = l.resolve("latest", None).unwrap();
        (l, i)
    };
    let out = w.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..10 {
        let target = out.join(format!("rootfs{round}"));
        kill_somewhere(&mut rng, round, |env| {
            spawn(
                "flat_unpacks_killed_at_random_points",
                w.path(),
                "flat",
                &target,
                &env,
            )
        });
        // The killed unpack left its target absent or whole, never half-written.
        if target.exists() {
            assert_eq!(
                snapshot(&target).len(),
                1 + 3 * 100 - 2 + 1,
                "round {round}"
            );
            std::fs::remove_dir_all(&target).unwrap();
        }
        // The next unpack in the same directory succeeds and reclaims what the killed one
        // left beside its target.
        let next = out.join(format!("next{round}"));
        Unpacker::new().unpack(&layout, &image, &next).unwrap();
        assert!(next.join("d/l2-99").is_file() && !next.join("d/l0-7").exists());
        assert_eq!(private_dirs(&out), Vec::<String>::new(), "round {round}");
    }
}

#[test]
fn store_unpacks_killed_at_random_points() {
    if run_child_if_asked() {
        return;
    }
    let w = workdir();
    let (layout, image) = image(&w.path().join("layout"), &layers(), Comp::Zstd);
    let store_dir = w.path().join("store");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for round in 0..10 {
        kill_somewhere(&mut rng, round, |env| {
            spawn(
                "store_unpacks_killed_at_random_points",
                w.path(),
                "store",
                &store_dir,
                &env,
            )
        });
        // Opening the store reclaims the killed unpack's private directories; the next
        // prepare succeeds and every layer in the store is whole.
        let store = LayerStore::open(&store_dir).unwrap();
        assert_eq!(private_dirs(&store_dir.join("tmp")), Vec::<String>::new());
        let chain = store
            .prepare(&Unpacker::new(), &layout, &image, "next")
            .unwrap();
        let mount = store
            .mount(&chain, w.path().join(format!("ctr{round}")))
            .unwrap();
        assert!(mount.merged().join("d/l2-99").is_file());
        assert!(!mount.merged().join("d/l1-7").exists());
        mount.unmount().unwrap();
        // Released by both owners (the killed one may have referenced them), gc leaves an
        // empty store.
        store.release("next").unwrap();
        store.release("killed").unwrap();
        let r = store.gc().unwrap();
        assert_eq!(
            r.temp_dirs_removed, 0,
            "round {round}: open reclaimed them already"
        );
        assert!(store.layers().unwrap().is_empty(), "round {round}");
        for d in ["tmp", "mounts", "owners", "layers"] {
            let left: Vec<_> = std::fs::read_dir(store_dir.join(d))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(left.is_empty(), "round {round}: {d}/ holds {left:?}");
        }
    }
}

/// Reclaiming is safe against a live writer: an unpack paused in the middle (its private
/// directories in the store's `tmp/` and beside a flat target) survives another process's
/// `open`, `gc` and flat unpack in the same directory, then completes.
#[test]
fn reclaim_never_removes_a_live_unpack() {
    if run_child_if_asked() {
        return;
    }
    let w = workdir();
    let (layout, image) = image(&w.path().join("layout"), &layers(), Comp::Gzip);
    for mode in ["store", "flat"] {
        let _ = std::fs::remove_file(w.path().join("go"));
        let _ = std::fs::remove_file(w.path().join("paused"));
        let target = w.path().join(format!("{mode}-target"));
        let mut c = spawn(
            "reclaim_never_removes_a_live_unpack",
            w.path(),
            mode,
            &target,
            &[("CRASH_PAUSE_AT", "150".into())],
        );
        while !w.path().join("paused").exists() {
            assert!(c.try_wait().unwrap().is_none(), "the child died early");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let tmp = if mode == "store" {
            target.join("tmp")
        } else {
            w.path().to_path_buf()
        };
        let live = private_dirs(&tmp);
        assert!(!live.is_empty());
        if mode == "store" {
            let store = LayerStore::open(&target).unwrap();
            assert_eq!(store.gc().unwrap().temp_dirs_removed, 0);
        } else {
            Unpacker::new()
                .unpack(&layout, &image, w.path().join("beside"))
                .unwrap();
        }
        for d in &live {
            assert!(tmp.join(d).is_dir(), "{mode}: the live {d} was removed");
        }
        std::fs::write(w.path().join("go"), b"").unwrap();
        assert!(
            c.wait().unwrap().success(),
            "{mode}: the paused unpack failed"
        );
        assert_eq!(private_dirs(&tmp), Vec::<String>::new());
    }
}
