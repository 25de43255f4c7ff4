//! CVE-2021-30465, attacked for real: a symlink swapped into a mount destination while the
//! runtime mounts.
//!
//! In runc before 1.0.0-rc95 a mount destination was resolved inside the rootfs (securejoin)
//! and the resulting *path string* was then given to mount(2), which resolved it again. A
//! container sharing a volume with a second container being created could swap a component
//! of the destination for a symlink between the two resolutions, and the mount landed on the
//! host. runtime-spec config.md "Mounts" has the destination interpreted relative to the
//! container's root: it must be resolved inside the root *at the moment of the mount*.
//!
//! Here the attacker is a thread of the test that exchanges, with `renameat2(RENAME_EXCHANGE)`
//! as fast as it can, real directories with symlinks to a canary directory that lies outside
//! the rootfs (holding the same subdirectories `m0`, `m1`, ...): `race/d` with `race/d.link`
//! (an absolute host path) and `race/e` with `race/e.link` (`../../..` up to the host's `/`,
//! then the canary's path). Meanwhile containers are created whose config mounts a tmpfs on
//! each of `/race/d/m0`, `/race/d/m1`, ... (or `/race/e/...`, every other container). The
//! canary's path also exists *inside* the rootfs, so that a symlink correctly resolved within
//! the root leads to a mountable place there.
//!
//! In the createContainer hook (after every mount, before pivot_root, so the init's root is
//! still the host's `/` and `/proc/PID/mountinfo` shows host-absolute mount points) each of
//! our tmpfs mounts is classified: on the real directory (normal), elsewhere inside the rootfs
//! (the swapped-in symlink was followed, inside the root: the race was hit and defended), or
//! outside the rootfs (an escape). A create that fails because the destination could not be
//! resolved during a swap (openat2(2) returns EAGAIN for a `..` walked while anything on the
//! system was renamed) is also a defended hit. The test asserts that there is no escape, that
//! the race was hit with both kinds of link (so the window was really exercised), and that the
//! host canary has nothing mounted on it and nothing created in it.
mod common;

use common::{path_str, Fixture};
use oci_sandbox::{Error, Options, Sandbox};
use serde_json::json;
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Raced tmpfs mounts per container.
const MOUNTS: usize = 24;
/// The `source` of the raced tmpfs mounts, to recognise them in mountinfo.
const SOURCE: &str = "ocisb-race";
/// At least this many creates, so that many resolutions run against the racer...
const MIN_ITERATIONS: usize = 500;
/// ... and at most this many, or this long.
const MAX_ITERATIONS: usize = 2000;
const MAX_TIME: Duration = Duration::from_secs(10);
/// Stop once each kind of outcome has been seen this many times (after MIN_ITERATIONS).
const ENOUGH: usize = 5;
/// The raced directories (each next to its `NAME.link`), and how their links are spelled.
const VARIANTS: [(&str, &str); 2] = [("d", "absolute"), ("e", "../")];

/// The attacker: exchanges `race/X` and `race/X.link` of every variant until stopped or
/// dropped (also on a panic of the test, so the thread never outlives it).
struct Racer {
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
    error: Arc<AtomicI32>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Racer {
    fn start(dir: &Path) -> Racer {
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicU64::new(0));
        let error = Arc::new(AtomicI32::new(0));
        let dir = std::fs::File::open(dir).unwrap();
        let handle = {
            let (stop, swaps, error) = (stop.clone(), swaps.clone(), error.clone());
            std::thread::spawn(move || {
                use std::os::fd::AsRawFd;
                let fd = dir.as_raw_fd();
                let pairs = [(c"d", c"d.link"), (c"e", c"e.link")];
                while !stop.load(Ordering::Relaxed) {
                    for (a, b) in pairs {
                        // SAFETY: renameat2(2) of two names in a directory we hold open.
                        let r = unsafe {
                            libc::renameat2(fd, a.as_ptr(), fd, b.as_ptr(), libc::RENAME_EXCHANGE)
                        };
                        if r < 0 {
                            let e = std::io::Error::last_os_error();
                            error.store(e.raw_os_error().unwrap_or(-1), Ordering::SeqCst);
                            return;
                        }
                    }
                    swaps.fetch_add(2, Ordering::Relaxed);
                }
            })
        };
        Racer {
            stop,
            swaps,
            error,
            handle: Some(handle),
        }
    }

    /// Stops the thread; returns the number of swaps made.
    fn stop(&mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.swaps.load(Ordering::SeqCst)
    }
}

impl Drop for Racer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What became of the raced mounts and creates of one variant.
#[derive(Default, Debug)]
struct Tally {
    /// Mounts on the real directory.
    normal: usize,
    /// Mounts elsewhere inside the rootfs: the symlink was followed, inside the root.
    inside: usize,
    /// Mount points outside the rootfs.
    escapes: Vec<String>,
    /// createContainer hooks run.
    hooks: usize,
    /// Containers whose hook saw fewer raced mounts than the config has.
    missing: usize,
    created: usize,
    /// Failed creates, by error.
    failed: BTreeMap<String, usize>,
}

impl Tally {
    fn failed(&self) -> usize {
        self.failed.values().sum()
    }

    /// Resolutions that met the symlink: defended, or not.
    fn hits(&self) -> usize {
        self.inside + self.failed() + self.escapes.len()
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

/// (mount point, fstype, source) of every line of a mountinfo file.
fn mountinfo(text: &str) -> Vec<(PathBuf, String, String)> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?.to_string();
            let source = r.next()?.to_string();
            Some((unescape(point), fstype, source))
        })
        .collect()
}

/// Classifies the raced tmpfs mounts of the container `pid` (before its pivot_root). `real`:
/// the real directories, under either of their names (the racer goes on while we read).
fn classify(pid: i32, rootfs: &Path, real: &[PathBuf], tally: &Mutex<Tally>) -> Result<(), String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .map_err(|e| format!("reading mountinfo of {pid}: {e}"))?;
    let mut t = tally.lock().unwrap();
    t.hooks += 1;
    let mut seen = 0;
    for (point, fstype, source) in mountinfo(&text) {
        if source != SOURCE {
            continue;
        }
        seen += 1;
        if fstype != "tmpfs" {
            t.escapes.push(format!("{} ({fstype})", point.display()));
        } else if real.iter().any(|r| point.parent() == Some(r.as_path())) {
            t.normal += 1;
        } else if point.starts_with(rootfs) && point != rootfs {
            t.inside += 1;
        } else {
            t.escapes.push(point.display().to_string());
        }
    }
    if seen < MOUNTS {
        t.missing += 1;
    }
    Ok(())
}

/// The names of `dir`'s entries, and whether each is an empty directory.
fn listing(dir: &Path) -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let empty = e.file_type().unwrap().is_dir()
                && std::fs::read_dir(e.path()).unwrap().next().is_none();
            (e.file_name().to_string_lossy().into_owned(), empty)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn racing_symlink_swap_never_moves_a_mount_outside_the_root_cve_2021_30465() {
    let f = Fixture::new("mountrace");
    let rootfs = f.rootfs.canonicalize().unwrap();
    let names: Vec<String> = (0..MOUNTS).map(|i| format!("m{i}")).collect();

    // The host canary, outside the rootfs, shaped like the raced directories.
    let canary = f.dir.path().canonicalize().unwrap().join("canary");
    let canary_rel = canary.strip_prefix("/").unwrap();
    // The same absolute path, inside the root: where the links lead when resolved there.
    let mirror = rootfs.join(canary_rel);
    let race = rootfs.join("race");
    for n in &names {
        std::fs::create_dir_all(canary.join(n)).unwrap();
        std::fs::create_dir_all(mirror.join(n)).unwrap();
        for (dir, _) in VARIANTS {
            std::fs::create_dir_all(race.join(dir).join(n)).unwrap();
        }
    }
    std::os::unix::fs::symlink(&canary, race.join("d.link")).unwrap();
    // From <rootfs>/race: up past the host's / (as many `..` as needed, and more), then down.
    let up = "../".repeat(race.components().count() + 4);
    std::os::unix::fs::symlink(Path::new(&up).join(canary_rel), race.join("e.link")).unwrap();
    let canary_before = listing(&canary);

    let specs: Vec<_> = VARIANTS
        .iter()
        .map(|(dir, _)| {
            let mut v = f.spec_json("true");
            let mounts = v["mounts"].as_array_mut().unwrap();
            for n in &names {
                mounts.push(json!({
                    "destination": format!("/race/{dir}/{n}"),
                    "type": "tmpfs",
                    "source": SOURCE,
                    "options": ["size=64k"]
                }));
            }
            f.spec(&v)
        })
        .collect();
    let tallies: Vec<_> = VARIANTS
        .iter()
        .map(|_| Arc::new(Mutex::new(Tally::default())))
        .collect();
    let real: Vec<PathBuf> = VARIANTS
        .iter()
        .flat_map(|(dir, _)| [race.join(dir), race.join(format!("{dir}.link"))])
        .collect();
    let enough = |tallies: &[Arc<Mutex<Tally>>]| {
        let t: Vec<_> = tallies.iter().map(|t| t.lock().unwrap()).collect();
        t.iter().map(|t| t.normal).sum::<usize>() >= ENOUGH && t.iter().all(|t| t.hits() >= ENOUGH)
    };

    let mut racer = Racer::start(&race);
    let started = Instant::now();
    let mut iterations = 0;
    while iterations < MAX_ITERATIONS && started.elapsed() < MAX_TIME {
        if iterations >= MIN_ITERATIONS && enough(&tallies) {
            break;
        }
        let variant = iterations % VARIANTS.len();
        iterations += 1;
        let tally = &tallies[variant];
        let hook = {
            let (rootfs, real, tally) = (rootfs.clone(), real.clone(), tally.clone());
            move |pid| classify(pid, &rootfs, &real, &tally)
        };
        let options = Options::new()
            .id(common::unique("mountrace"))
            .on_create_container(hook);
        match Sandbox::create(&specs[variant], &rootfs, options) {
            Ok(c) => {
                tally.lock().unwrap().created += 1;
                c.delete().unwrap();
            }
            // Resolution refused during a swap (EAGAIN, ENOENT, ELOOP, EXDEV...): defended.
            Err(Error::Child {
                step: "resolve mount destination",
                source,
                ..
            }) => {
                *tally
                    .lock()
                    .unwrap()
                    .failed
                    .entry(source.to_string())
                    .or_default() += 1;
            }
            Err(e) => panic!("unexpected create failure at iteration {iterations}: {e}"),
        }
    }
    let elapsed = started.elapsed();
    let swaps = racer.stop();
    let racer_error = racer.error.load(Ordering::SeqCst);

    eprintln!("mount race: {iterations} creates in {elapsed:.2?}, {swaps} swaps");
    for ((_, spelling), t) in VARIANTS.iter().zip(&tallies) {
        let t = t.lock().unwrap();
        eprintln!(
            "  {spelling} link: mounts {} normal, {} inside the root elsewhere, {} escaped; \
             creates {} ok, {} failed {:?}",
            t.normal,
            t.inside,
            t.escapes.len(),
            t.created,
            t.failed(),
            t.failed
        );
    }
    assert_eq!(racer_error, 0, "renameat2(RENAME_EXCHANGE) failed");
    assert!(swaps > 0, "the racer never swapped");
    for ((_, spelling), t) in VARIANTS.iter().zip(&tallies) {
        let t = t.lock().unwrap();
        assert!(
            t.escapes.is_empty(),
            "{spelling} link: {} mounts outside the rootfs {}, such as {:?}",
            t.escapes.len(),
            path_str(&rootfs),
            &t.escapes[..t.escapes.len().min(8)]
        );
        assert_eq!(
            t.hooks, t.created,
            "the hook ran once per created container"
        );
        assert_eq!(t.missing, 0, "a created container lacked some raced mounts");
        assert!(
            t.hits() > 0,
            "{spelling} link: the race was never hit: the test did not exercise the window"
        );
    }
    assert!(
        tallies.iter().any(|t| t.lock().unwrap().normal > 0),
        "no mount ever reached a real directory"
    );

    // The host's view: nothing mounted on or under the canary, nothing created in it.
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let on_canary: Vec<_> = mountinfo(&host)
        .into_iter()
        .filter(|(p, _, _)| p.starts_with(&canary))
        .collect();
    assert!(on_canary.is_empty(), "mounted on the canary: {on_canary:?}");
    assert_eq!(listing(&canary), canary_before, "the canary was written to");
    assert!(canary_before.iter().all(|(_, empty)| *empty));
}
