//! `ocibox run` of an image that only a registry has: Debian's docker-registry on 127.0.0.1
//! (a random port, its own store), the demo image pushed there with skopeo, then pulled and
//! run by ocibox, shared between two runs, listed, and removed.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Self {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("store").display()
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config_path)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("docker-registry (install it with ./scripts/test)");
            let mut reg = Registry {
                child,
                port,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = reg.child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return reg;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("could not start docker-registry");
    }
}

impl Registry {
    /// Writes the demo image into `dir/demo` and pushes it with skopeo as `NAME:latest`;
    /// returns the reference.
    fn push_demo(&self, dir: &std::path::Path, name: &str) -> String {
        let layout = dir.join("demo");
        assert!(
            ocibox(&dir.join("store"), &["demo", layout.to_str().unwrap()])
                .status
                .success()
        );
        let image = format!("127.0.0.1:{}/{name}:latest", self.port);
        let push = Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                &format!("oci:{}:demo", layout.display()),
                &format!("docker://{image}"),
            ])
            .output()
            .unwrap();
        assert!(
            push.status.success(),
            "{}",
            String::from_utf8_lossy(&push.stderr)
        );
        image
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ocibox(root: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ocibox"))
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn run_pulls_from_a_registry_then_shares_and_removes() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let image = reg.push_demo(tmp.path(), "demo");

    // --pull never: not in the store yet.
    assert!(!ocibox(&store, &["run", "--rm", "--pull", "never", &image])
        .status
        .success());
    let out = ocibox(&store, &["run", "--rm", &image]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Hello from the ocibox demo image") && text.contains("pid: 1"),
        "{text}"
    );

    // Now local: runs without the registry's help, on the same layers.
    let layers_before = std::fs::read_dir(store.join("layers")).unwrap().count();
    let out = ocibox(&store, &["run", "--rm", "--pull", "never", &image, "true"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(store.join("layers")).unwrap().count(),
        layers_before
    );
    let images = String::from_utf8_lossy(&ocibox(&store, &["images"]).stdout).into_owned();
    assert!(images.contains(&image), "{images}");
    // --format json, parsed back.
    let json: serde_json::Value =
        serde_json::from_slice(&ocibox(&store, &["images", "--format", "json"]).stdout).unwrap();
    let listed = &json.as_array().unwrap()[0];
    assert_eq!(listed["Reference"], image.as_str());
    assert!(listed["Digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(listed["Size"].as_u64().unwrap() > 0);

    // The layers belong to the image (issue 18): `run --rm` left them, `rmi` takes them.
    assert!(
        std::fs::read_dir(store.join("layers/layers"))
            .unwrap()
            .count()
            > 0,
        "run --rm kept the image's layers"
    );
    // rmi removes it; nothing is left mounted or running.
    assert!(ocibox(&store, &["rmi", &image]).status.success());
    assert!(!String::from_utf8_lossy(&ocibox(&store, &["images"]).stdout).contains(&image));
    assert_eq!(
        std::fs::read_dir(store.join("layers/layers"))
            .unwrap()
            .count(),
        0,
        "rmi released the image's layers"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(store.to_str().unwrap()));
}

/// Issue 16: progress on a terminal only. A pull from the local registry under a pseudo-terminal
/// (scripts/ptyrun.py) draws per-blob byte progress, and an unpack draws its own; the same
/// commands with stderr on a pipe, or with --quiet, print no progress at all.
#[test]
fn progress_is_drawn_on_a_terminal_only() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let image = reg.push_demo(tmp.path(), "progress");
    let ptyrun = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/ptyrun.py");
    let on_pty = |args: &[&str]| {
        let out = Command::new("python3")
            .arg(ptyrun)
            .arg(env!("CARGO_BIN_EXE_ocibox"))
            .arg("--root")
            .arg(&store)
            .args(args)
            .output()
            .unwrap();
        let all = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{args:?}: {all}");
        all
    };
    let host = format!("127.0.0.1:{}", reg.port);
    let target = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();

    // On a terminal: a bar per blob with its bytes, finished.
    let drawn = on_pty(&[
        "pull",
        "--insecure",
        &host,
        &image,
        &format!("{}:v1", target("pty-layout")),
    ]);
    assert!(drawn.contains("blob "), "{drawn}");
    assert!(drawn.contains("B/"), "bytes done/total: {drawn}");
    assert!(drawn.contains("done"), "{drawn}");
    assert!(drawn.contains("pulled "), "{drawn}");
    let drawn = on_pty(&[
        "unpack",
        &format!("{}:v1", target("pty-layout")),
        &target("pty-rootfs"),
    ]);
    assert!(drawn.contains("unpacking"), "{drawn}");
    assert!(drawn.contains("entries"), "{drawn}");

    // --quiet on the terminal: none.
    let quiet = on_pty(&[
        "--quiet",
        "pull",
        "--insecure",
        &host,
        &image,
        &target("quiet-layout"),
    ]);
    assert!(
        quiet.contains("pulled ") && !quiet.contains("blob "),
        "{quiet}"
    );

    // stderr on a pipe: nothing on stderr at all, the result on stdout.
    let out = ocibox(
        &store,
        &[
            "pull",
            "--insecure",
            &host,
            &image,
            &format!("{}:v1", target("pipe-layout")),
        ],
    );
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("pulled "));
    let out = ocibox(
        &store,
        &[
            "unpack",
            &format!("{}:v1", target("pipe-layout")),
            &target("pipe-rootfs"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
