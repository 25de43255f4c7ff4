//! `ocibox` against a hostile registry (`oci-image/tests/support/hostile_registry.rs`, in
//! this test process) and against itself: separate `ocibox` processes racing on one layout or
//! store (pull/gc, pull/rmi, unpack/rmi, parallel pulls into a layout that does not exist
//! yet), `kill -9` at random points of a pull, and the CLI's errors for each misbehaviour.
//! Loops are bounded; time is bounded by the deadlines given on the command line, never
//! asserted.

#[path = "../../oci-image/tests/support/hostile_registry.rs"]
mod hostile_registry;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use hostile_registry::*;

fn ocibox(env: &Env, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibox"));
    c.arg("--root")
        .arg(&env.root)
        .args(args)
        .env("REGISTRY_AUTH_FILE", &env.auth)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn run(env: &Env, args: &[&str]) -> Output {
    ocibox(env, args).output().unwrap()
}

fn ok(env: &Env, args: &[&str]) -> Output {
    let out = run(env, args);
    assert!(
        out.status.success(),
        "ocibox {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn spawn(env: &Env, args: &[&str]) -> Child {
    ocibox(env, args).spawn().unwrap()
}

fn finish(child: Child, what: &str) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn running(child: &mut Child) -> bool {
    child.try_wait().unwrap().is_none()
}

/// A temporary directory with a store root, an auth file with the hostile registry's
/// credentials, and room for layouts.
struct Env {
    dir: tempfile::TempDir,
    root: PathBuf,
    auth: PathBuf,
}

impl Env {
    fn new(h: &Hostile) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let auth = dir.path().join("auth.json");
        let token = base64(format!("{USER}:{PASSWORD}").as_bytes());
        std::fs::write(
            &auth,
            format!(r#"{{"auths":{{"{}":{{"auth":"{token}"}}}}}}"#, h.host()),
        )
        .unwrap();
        Env { dir, root, auth }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

fn base64(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A registry serving `big` (six 256 KiB layers at a slow link's pace) and three small
/// images `other0..2`.
fn registry() -> (Hostile, Image) {
    let h = Hostile::start();
    let big = Image::new(6, 256 << 10, 11);
    h.add(
        "big",
        Repo::new(
            Auth::Anonymous,
            Misbehaviour::Paced {
                chunk: 32 << 10,
                every: Duration::from_millis(3),
            },
        )
        .image("v1", &big),
    );
    for i in 0..3 {
        h.add(
            &format!("other{i}"),
            Repo::new(Auth::Anonymous, Misbehaviour::None)
                .image("v1", &Image::new(1, 4096, 20 + i)),
        );
    }
    (h, big)
}

/// What interrupted writers may leave in a layout: lease files, temporaries.
fn stale_files(layout: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [
        layout.to_path_buf(),
        layout.join("blobs"),
        layout.join(".leases"),
    ] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") || dir.ends_with(".leases") {
                out.push(e.path());
            }
        }
    }
    out
}

/// `validate` of the layout and a flat unpack of `image` must succeed.
fn check_whole(env: &Env, layout: &Path, image: &str, round: usize) {
    ok(env, &["validate", &layout.display().to_string()]);
    let dest = env.path(&format!("unpacked-{round}-{}", rand() % 1_000_000));
    ok(env, &["unpack", image, &dest.display().to_string()]);
    assert!(dest.join("file0").exists() || dest.join("file5").exists());
}

fn rand() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    x
}

// DESIGN.md: "a pull, gc or unpack racing another never leaves a tagged image with missing
// blobs". `ocibox gc` in a loop beside `ocibox pull`, in separate processes: every pull that
// exits 0 leaves a whole image, which validates and unpacks.
#[test]
fn pull_beside_a_gc_loop() {
    let (h, _) = registry();
    let env = Env::new(&h);
    for round in 0..4 {
        let layout = env.path(&format!("l{round}"));
        let l = layout.display().to_string();
        ok(
            &env,
            &["pull", &h.reference("other0:v1"), &format!("{l}:keep")],
        );
        let mut pull = spawn(&env, &["pull", &h.reference("big:v1"), &format!("{l}:big")]);
        let mut gcs = 0;
        while running(&mut pull) {
            ok(&env, &["gc", &l]);
            gcs += 1;
        }
        finish(pull, &format!("round {round}, after {gcs} gc runs"));
        check_whole(&env, &layout, &format!("{l}:big"), round);
        assert!(
            stale_files(&layout).is_empty(),
            "{:?}",
            stale_files(&layout)
        );
    }
}

// `rmi` of other images (untag + gc of the store) beside `pull` into the store and beside
// `unpack` of a registry reference (which pulls into the store first).
#[test]
fn pull_and_unpack_beside_rmi_loops() {
    let (h, _) = registry();
    let env = Env::new(&h);
    let images = env.root.join("images");
    let im = images.display().to_string();
    let big = h.reference("big:v1");
    for round in 0..4 {
        for i in 0..3 {
            ok(&env, &["pull", &h.reference(&format!("other{i}:v1")), &im]);
        }
        let unpack_dir = env.path(&format!("u{round}"));
        let mut child = if round % 2 == 0 {
            spawn(&env, &["pull", &big, &im])
        } else {
            spawn(&env, &["unpack", &big, &unpack_dir.display().to_string()])
        };
        let mut i = 0;
        while running(&mut child) {
            let other = h.reference(&format!("other{}:v1", i % 3));
            let _ = run(&env, &["rmi", &other]); // may already be gone: it is re-pulled
            ok(&env, &["pull", &other, &im]);
            i += 1;
        }
        finish(child, &format!("round {round}, beside {i} rmi"));
        check_whole(&env, &images, &big, round);
        ok(&env, &["rmi", &big]);
    }
    assert!(
        stale_files(&images).is_empty(),
        "{:?}",
        stale_files(&images)
    );
}

// Parallel pulls into a layout that does not exist yet: each creates it or finds it whole.
#[test]
fn parallel_pulls_into_a_new_layout() {
    let (h, _) = registry();
    let env = Env::new(&h);
    for round in 0..4 {
        let layout = env.path(&format!("new{round}/nested"));
        let l = layout.display().to_string();
        let children: Vec<Child> = (0..6)
            .map(|i| {
                let img = h.reference(&format!("other{}:v1", i % 3));
                spawn(&env, &["pull", &img, &format!("{l}:t{i}")])
            })
            .collect();
        for (i, c) in children.into_iter().enumerate() {
            finish(c, &format!("round {round}, pull {i}"));
        }
        ok(&env, &["validate", &l]);
        let tags = String::from_utf8(ok(&env, &["tags", &l]).stdout).unwrap();
        assert_eq!(tags.lines().count(), 6, "{tags}");
    }
}

// kill -9 at random points of a pull: the next pull succeeds, and neither it nor a gc after
// it leaves anything stale (leases, temporaries, partial downloads).
#[test]
fn kill_9_at_random_points_of_a_pull() {
    let (h, big) = registry();
    let env = Env::new(&h);
    let layout = env.path("killed");
    let l = layout.display().to_string();
    let big_ref = h.reference("big:v1");
    // How long a whole pull takes here: the kills land at random points within it.
    let scratch = env.s("scratch");
    let start = std::time::Instant::now();
    ok(&env, &["pull", &big_ref, &scratch]);
    let span = start.elapsed().as_millis().max(1) as u64;
    let mut killed_mid_pull = 0;
    for round in 0..8 {
        let mut child = spawn(&env, &["pull", &big_ref, &format!("{l}:big")]);
        std::thread::sleep(Duration::from_millis(rand() % span));
        if running(&mut child) {
            killed_mid_pull += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        ok(&env, &["pull", &big_ref, &format!("{l}:big")]);
        assert!(
            stale_files(&layout).is_empty(),
            "round {round}: {:?}",
            stale_files(&layout)
        );
        ok(&env, &["gc", &l]);
        assert!(
            stale_files(&layout).is_empty(),
            "round {round}: {:?}",
            stale_files(&layout)
        );
        check_whole(&env, &layout, &format!("{l}:big"), round);
        // The next round starts without the image, so that the kill lands in a download.
        ok(&env, &["untag", &format!("{l}:big")]);
        ok(&env, &["gc", &l]);
        let blobs = std::fs::read_dir(layout.join("blobs/sha256"))
            .unwrap()
            .count();
        assert_eq!(blobs, 0, "round {round}");
    }
    // Kills at random points of a pull's span land in a pull, most of them.
    assert!(killed_mid_pull > 0);
    let _ = big;
}

// The CLI's errors for the registry's misbehaviours: clear, naming the URL and the deadline,
// within the deadlines given, with bounded requests, no credentials to another port.
#[test]
fn cli_errors_against_a_hostile_registry() {
    let h = Hostile::start();
    let elsewhere = Hostile::start();
    let env = Env::new(&h);
    let img = Image::new(1, 64 << 10, 30);
    h.add(
        "slow",
        Repo::new(
            Auth::Anonymous,
            Misbehaviour::SlowBlobs {
                every: Duration::from_millis(20),
            },
        )
        .image("v1", &img),
    );
    h.add(
        "silent",
        Repo::new(Auth::Anonymous, Misbehaviour::SilentManifests),
    );
    h.add(
        "redirect",
        Repo::new(
            Auth::Bearer,
            Misbehaviour::RedirectBlobs {
                to: elsewhere.host(),
            },
        )
        .image("v1", &img),
    );
    elsewhere.add(
        "redirect",
        Repo::new(Auth::Anonymous, Misbehaviour::None).image("v1", &img),
    );
    h.add(
        "huge",
        Repo::new(Auth::Anonymous, Misbehaviour::None)
            .manifest(
                Some("v1"),
                OCI_MANIFEST,
                manifest_json(
                    &img.config,
                    &[(
                        OCI_LAYER.into(),
                        sha256(&img.layers[0]),
                        img.layers[0].len() as u64,
                    )],
                    Some(1 << 30),
                ),
            )
            .blob(img.config.clone()),
    );
    let l = env.s("layout");
    let fail = |args: &[&str]| -> String {
        let out = run(&env, args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.len() < 2000, "{} bytes of error: {err}", err.len());
        err
    };

    let err = fail(&[
        "pull",
        &h.reference("slow:v1"),
        &l,
        "--read-timeout",
        "1",
        "--timeout",
        "3",
    ]);
    assert!(err.contains("deadline of 3 s"), "{err}");
    assert!(
        err.contains(&format!("http://{}/v2/slow/blobs/sha256:", h.host())),
        "{err}"
    );

    let err = fail(&[
        "pull",
        &h.reference("silent:v1"),
        &l,
        "--request-timeout",
        "1",
    ]);
    assert!(err.contains("request timeout of 1 s"), "{err}");
    assert!(
        err.contains(&format!("http://{}/v2/silent/manifests/v1", h.host())),
        "{err}"
    );
    assert_eq!(h.requests_to("silent").len(), 1);

    let err = fail(&["pull", &h.reference("huge:v1"), &l]);
    assert!(err.contains("exceeds the limit"), "{err}");
    assert!(!h
        .requests_to("huge")
        .iter()
        .any(|s| s.path.contains("/blobs/")));

    ok(
        &env,
        &["pull", &h.reference("redirect:v1"), &format!("{l}:r")],
    );
    assert!(h
        .requests_to("redirect")
        .iter()
        .any(|s| s.authorization().is_some()));
    let other = elsewhere.seen();
    assert_eq!(other.len(), 2, "{other:#?}");
    assert!(
        other.iter().all(|s| s.authorization().is_none()),
        "{other:#?}"
    );
    ok(&env, &["validate", &l]);
    let tags = String::from_utf8(ok(&env, &["tags", &l]).stdout).unwrap();
    assert_eq!(tags.trim(), "r", "only the whole image is tagged");
}
