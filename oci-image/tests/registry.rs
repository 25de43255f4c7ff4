//! Pulling and pushing against a real registry: Debian's `docker-registry` (distribution 2.8)
//! started here on 127.0.0.1 with a random port and a temporary store, anonymous and with
//! token authentication (a token server in this process, signing with a certificate made by
//! `openssl`); round trips checked with skopeo. Failures a real registry does not produce on
//! demand (wrong bytes, cut connections, 503s) come from a small fake registry in-process.
//!
//! The tools are installed by the README's test command (`./scripts/test`); a missing tool
//! fails the tests, it never skips them.
#![cfg(feature = "registry")]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use oci_image::registry::{Client, Credentials, PullOptions, PushOptions, Reference};
use oci_image::spec::image::{Descriptor, ImageManifestBuilder, MediaType};
use oci_image::{sha256_digest, Error, Layout, PlatformSpec};

// ---------------------------------------------------------------------------------------
// Harness: tools, the real registry, the token server, the fake registry.

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `docker-registry` process with its own store, killed on drop.
struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    fn start(token: Option<&TokenServer>) -> Self {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let auth = match token {
                Some(t) => format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: test-registry\n    issuer: oci-image-test\n    rootcertbundle: {}\n",
                    t.server.port,
                    s(&t.cert)
                ),
                None => String::new(),
            };
            let config = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
                s(&dir.path().join("store"))
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
                .unwrap_or_else(|e| {
                    panic!("cannot run docker-registry (install it with ./scripts/test): {e}")
                });
            let mut reg = Registry { child, port, dir };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = reg.child.try_wait() {
                    break; // lost the port to someone else: try another
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return reg;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!(
                "docker-registry did not start:\n{}",
                std::fs::read_to_string(reg.dir.path().join("registry.log")).unwrap_or_default()
            );
        }
        panic!("could not start docker-registry");
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn reference(&self, repo_tag: &str) -> Reference {
        format!("{}/{repo_tag}", self.host()).parse().unwrap()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    #[allow(dead_code)]
    method: String,
    path: String,
    headers: HashMap<String, String>,
}

/// A reply: status, headers, body; `cut` sends only that many body bytes (after a full
/// Content-Length) and closes the connection.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    cut: Option<usize>,
}

impl Reply {
    fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            cut: None,
        }
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_string(), v.into()));
        self
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A tiny HTTP/1.1 server on 127.0.0.1: one request per connection, for fakes.
struct Server {
    port: u16,
    log: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(handler: Handler) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, stop2) = (log.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (h, l) = (handler.clone(), log2.clone());
                std::thread::spawn(move || serve(conn, h, l));
            }
        });
        Server {
            port,
            log,
            stop,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, handler: Handler, log: Arc<Mutex<Vec<Seen>>>) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    // A TLS hello (the client tries HTTPS first on localhost) is not a request line: close.
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    if !version.starts_with("HTTP/1") {
        return;
    }
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = reader.read_exact(&mut body);
    let seen = Seen {
        method: method.to_string(),
        path: path.to_string(),
        headers,
    };
    log.lock().unwrap().push(seen.clone());
    let reply = handler(&seen);
    let mut out = conn;
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
    let _ = out.write_all(head.as_bytes());
    if method != "HEAD" {
        let n = reply.cut.unwrap_or(reply.body.len()).min(reply.body.len());
        let _ = out.write_all(&reply.body[..n]);
    }
    let _ = out.flush();
    let _ = out.shutdown(std::net::Shutdown::Both);
}

/// Docker's token server protocol, for the real registry's `auth: token`: basic credentials
/// `alice:secret` get every action asked for; anonymous requests get a token with no access;
/// wrong credentials get a 401. Tokens are JWTs signed RS256 by `openssl` with a self-signed
/// certificate that is the registry's `rootcertbundle` and travels in the `x5c` header.
struct TokenServer {
    server: Server,
    cert: PathBuf,
    issued: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        run(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=oci-image-test-token",
                "-keyout",
                s(&key),
                "-out",
                s(&cert),
            ],
        );
        let der = Command::new("openssl")
            .args(["x509", "-in", s(&cert), "-outform", "DER"])
            .output()
            .unwrap()
            .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let issued = Arc::new(AtomicUsize::new(0));
        let (key2, issued2, work) = (key.clone(), issued.clone(), dir.path().to_path_buf());
        let handler: Handler = Arc::new(move |req: &Seen| {
            let query = req.path.split_once('?').map_or("", |(_, q)| q);
            let mut scopes = Vec::new();
            for pair in query.split('&') {
                if let Some(v) = pair.strip_prefix("scope=") {
                    scopes.push(percent_decode(v));
                }
            }
            let user = match req.headers.get("authorization") {
                None => None,
                Some(a) => {
                    let raw = a.strip_prefix("Basic ").unwrap_or("");
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(raw)
                        .unwrap_or_default();
                    if decoded != b"alice:secret" {
                        return Reply::new(401, r#"{"details":"wrong credentials"}"#);
                    }
                    Some("alice")
                }
            };
            let access: Vec<serde_json::Value> = scopes
                .iter()
                .flat_map(|sc| sc.split(' ').map(str::to_string).collect::<Vec<_>>())
                .filter_map(|sc| {
                    let (rest, actions) = sc.rsplit_once(':')?;
                    let name = rest.strip_prefix("repository:")?;
                    let actions: Vec<&str> = if user.is_some() {
                        actions.split(',').collect()
                    } else {
                        Vec::new()
                    };
                    Some(
                        serde_json::json!({"type": "repository", "name": name, "actions": actions}),
                    )
                })
                .collect();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let n = issued2.fetch_add(1, Ordering::SeqCst);
            let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
            let claims = serde_json::json!({
                "iss": "oci-image-test", "sub": user.unwrap_or(""), "aud": "test-registry",
                "exp": now + 300, "nbf": now - 30, "iat": now, "jti": format!("t{n}"),
                "access": access,
            });
            let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
            let signing_input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims.to_string().as_bytes())
            );
            let input = work.join(format!("input-{n}"));
            std::fs::write(&input, &signing_input).unwrap();
            let sig = Command::new("openssl")
                .args(["dgst", "-sha256", "-sign", s(&key2), s(&input)])
                .output()
                .unwrap()
                .stdout;
            let jwt = format!("{signing_input}.{}", b64(&sig));
            Reply::new(
                200,
                serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": 300})
                    .to_string(),
            )
            .header("Content-Type", "application/json")
        });
        TokenServer {
            server: Server::start(handler),
            cert,
            issued,
            _dir: dir,
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A client for tests: no auth files of the machine, quick retries.
fn client() -> Client {
    Client::builder()
        .auth_files(vec![])
        .backoff(Duration::from_millis(10))
        .retries(3)
        .timeout(Duration::from_secs(20))
        .build()
}

/// A layout with a one-layer image tagged `src`, for the host's platform.
fn source_image() -> (tempfile::TempDir, Layout, Descriptor) {
    let (dir, layout) = layout();
    let d = image(&layout, &PlatformSpec::host().to_string(), false);
    layout.tag("src", &d).unwrap();
    (dir, layout, d)
}

fn skopeo_push(layout: &Path, tag: &str, dest: &str, extra: &[&str]) {
    let src = format!("oci:{}:{tag}", s(layout));
    let dst = format!("docker://{dest}");
    let mut args = vec!["copy", "--quiet", "--dest-tls-verify=false"];
    args.extend_from_slice(extra);
    args.push(&src);
    args.push(&dst);
    run("skopeo", &args);
}

/// The digest of what the registry serves for `reference`, per skopeo.
fn skopeo_digest(reference: &str, extra: &[&str]) -> String {
    let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
    args.extend_from_slice(extra);
    let r = format!("docker://{reference}");
    args.push(&r);
    sha256_digest(run("skopeo", &args).as_bytes()).to_string()
}

// ---------------------------------------------------------------------------------------
// Against the real registry.

#[test]
fn pulls_an_image_skopeo_pushed_and_skips_present_blobs() {
    let reg = Registry::start(None);
    let (src_dir, _src, src_desc) = source_image();
    skopeo_push(
        src_dir.path(),
        "src",
        &format!("{}/team/app:v1", reg.host()),
        &[],
    );
    let served = skopeo_digest(&format!("{}/team/app:v1", reg.host()), &[]);
    assert_eq!(served, src_desc.digest().to_string());

    let (_dst_dir, dst) = layout();
    let r = reg.reference("team/app:v1");
    let events = Arc::new(AtomicUsize::new(0));
    let ev = events.clone();
    let opts = PullOptions::default().on_progress(move |_| {
        ev.fetch_add(1, Ordering::SeqCst);
    });
    let pulled = client().pull(&r, &dst, &opts).unwrap();
    assert_eq!(pulled.descriptor.digest(), src_desc.digest());
    assert_eq!(pulled.blobs_downloaded, 2);
    assert_eq!(pulled.blobs_present, 0);
    assert_eq!(pulled.tag.as_deref(), Some(r.to_string().as_str()));
    assert!(events.load(Ordering::SeqCst) >= 4);
    let img = dst.resolve(&r.to_string(), None).unwrap();
    assert_eq!(img.digest(), src_desc.digest());
    assert_eq!(img.layers.len(), 1);
    assert_valid(&dst);

    // Again: nothing to download; by digest, with a tag of our choosing.
    let by_digest = format!("{}/team/app@{}", reg.host(), src_desc.digest())
        .parse()
        .unwrap();
    let again = client()
        .pull(&by_digest, &dst, &PullOptions::default().tag("latest"))
        .unwrap();
    assert_eq!((again.blobs_downloaded, again.blobs_present), (0, 2));
    assert_eq!(
        dst.resolve("latest", None).unwrap().digest(),
        src_desc.digest()
    );
}

#[test]
fn pulls_one_platform_or_all_of_a_multi_arch_index() {
    let reg = Registry::start(None);
    let (src_dir, src) = layout();
    let amd = image(&src, "linux/amd64", true);
    let arm = image(&src, "linux/arm64/v8", true);
    let idx = index(&src, vec![amd.clone(), arm.clone()]);
    src.tag("multi", &idx).unwrap();
    let dest = format!("{}/multi:1", reg.host());
    skopeo_push(src_dir.path(), "multi", &dest, &["--all"]);
    assert_eq!(skopeo_digest(&dest, &[]), idx.digest().to_string());

    let r = reg.reference("multi:1");
    let (_d, dst) = layout();
    let arm64: PlatformSpec = "linux/arm64".parse().unwrap();
    let pulled = client()
        .pull(&r, &dst, &PullOptions::default().platform(arm64.clone()))
        .unwrap();
    assert_eq!(pulled.descriptor.digest(), idx.digest());
    assert_eq!(pulled.manifests.len(), 1);
    assert_eq!(pulled.manifests[0].digest(), arm.digest());
    assert_eq!(pulled.stored.digest(), arm.digest());
    let img = dst.resolve(&r.to_string(), Some(&arm64)).unwrap();
    assert_eq!(img.platform().architecture, "arm64");
    assert_valid(&dst);

    let s390x: PlatformSpec = "linux/s390x".parse().unwrap();
    let err = client()
        .pull(&r, &dst, &PullOptions::default().platform(s390x))
        .unwrap_err();
    match &err {
        Error::NoMatchingPlatform { available, .. } => {
            assert!(available.iter().any(|p| p.contains("amd64")), "{err}")
        }
        other => panic!("{other}"),
    }

    let (_d2, all) = layout();
    let pulled = client()
        .pull(
            &r,
            &all,
            &PullOptions::default().all_platforms(true).tag("all"),
        )
        .unwrap();
    assert_eq!(pulled.stored.digest(), idx.digest());
    assert_eq!(pulled.manifests.len(), 2);
    for p in ["linux/amd64", "linux/arm64"] {
        let want: PlatformSpec = p.parse().unwrap();
        let img = all.resolve("all", Some(&want)).unwrap();
        assert_eq!(img.platform().architecture, want.architecture);
    }
    assert_valid(&all);
}

#[test]
fn pushes_images_and_indexes_that_skopeo_reads_back() {
    let reg = Registry::start(None);
    let (_src_dir, src, src_desc) = source_image();
    let c = client();

    // A single image, monolithic upload.
    let r = reg.reference("pushed/app:v1");
    let pushed = c.push(&src, "src", &r, &PushOptions::default()).unwrap();
    assert_eq!(pushed.descriptor.digest(), src_desc.digest());
    assert_eq!((pushed.blobs_uploaded, pushed.blobs_present), (2, 0));
    assert_eq!(
        skopeo_digest(&r.to_string(), &[]),
        src_desc.digest().to_string()
    );
    let back = tempfile::tempdir().unwrap();
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &format!("docker://{r}"),
            &format!("oci:{}:back", s(back.path())),
        ],
    );
    let back_layout = Layout::open(back.path()).unwrap();
    let img = back_layout.resolve("back", None).unwrap();
    assert_eq!(img.digest(), src_desc.digest());
    assert_valid(&back_layout);

    // The same again: every blob is already there.
    let again = c.push(&src, "src", &r, &PushOptions::default()).unwrap();
    assert_eq!((again.blobs_uploaded, again.blobs_present), (0, 2));

    // Into another repository: mounted from the first, not uploaded.
    let r2 = reg.reference("mounted/app:v1");
    let mounted = c
        .push(
            &src,
            "src",
            &r2,
            &PushOptions::default().mount_from("pushed/app"),
        )
        .unwrap();
    assert_eq!((mounted.blobs_mounted, mounted.blobs_uploaded), (2, 0));
    assert_eq!(
        skopeo_digest(&r2.to_string(), &[]),
        src_desc.digest().to_string()
    );

    // Chunked upload of a multi-platform index, pushed by digest then read with --all.
    let amd = image(&src, "linux/amd64", true);
    let arm = image(&src, "linux/arm/v7", true);
    let idx = index(&src, vec![amd, arm]);
    src.tag("multi", &idx).unwrap();
    let r3 = reg.reference("chunked/multi:2");
    let pushed = c
        .push(&src, "multi", &r3, &PushOptions::default().chunk_size(100))
        .unwrap();
    assert_eq!(pushed.manifests_pushed, 3);
    assert_eq!(
        skopeo_digest(&r3.to_string(), &[]),
        idx.digest().to_string()
    );
    let all = tempfile::tempdir().unwrap();
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{r3}"),
            &format!("oci:{}:all", s(all.path())),
        ],
    );
    let all = Layout::open(all.path()).unwrap();
    let arm7: PlatformSpec = "linux/arm/v7".parse().unwrap();
    assert_eq!(
        all.resolve("all", Some(&arm7)).unwrap().platform().variant,
        "v7"
    );
    assert_valid(&all);

    // A layout -> registry -> layout round trip with our own client both ways.
    let (_d, round) = layout();
    let pulled = c
        .pull(
            &r3,
            &round,
            &PullOptions::default().all_platforms(true).tag("rt"),
        )
        .unwrap();
    assert_eq!(pulled.stored.digest(), idx.digest());
    assert_valid(&round);
}

#[test]
fn resumes_an_interrupted_download_without_fetching_kept_bytes() {
    let reg = Registry::start(None);
    let (_src_dir, src) = layout();
    // A layer large enough to be worth resuming: 3 MiB of incompressible-ish bytes.
    let mut big = vec![0u8; 3 << 20];
    let mut x = 0x2545F4914F6CDD1Du64;
    for b in big.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let layer = src.put_blob(MediaType::ImageLayer, &big).unwrap();
    let config = src
        .put_json(
            MediaType::ImageConfig,
            &serde_json::json!({"architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [layer.digest().to_string()]}}),
        )
        .unwrap();
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.clone())
        .layers(vec![layer.clone()])
        .build()
        .unwrap();
    let m = src.put_manifest(&manifest).unwrap();
    src.tag("big", &m).unwrap();
    // Pushed with our client: skopeo would compress the uncompressed layer on the way.
    let r = reg.reference("big:1");
    client()
        .push(&src, "big", &r, &PushOptions::default())
        .unwrap();

    // An earlier pull died after the first 1 MiB + 3 bytes of the layer.
    let kept = (1 << 20) + 3;
    let (_d, dst) = layout();
    let partial = dst.path().join(format!(
        "blobs/.tmp-partial-sha256-{}",
        layer.digest().digest()
    ));
    std::fs::write(&partial, &big[..kept]).unwrap();
    let pulled = client().pull(&r, &dst, &PullOptions::default()).unwrap();
    assert_eq!(pulled.bytes_resumed, kept as u64);
    assert_eq!(
        pulled.bytes_downloaded,
        (big.len() - kept) as u64 + config.size()
    );
    assert!(!partial.exists());
    assert_valid(&dst);

    // Kept bytes that are wrong: detected at the end, the download starts over once.
    let (_d2, dst2) = layout();
    let partial2 = dst2.path().join(format!(
        "blobs/.tmp-partial-sha256-{}",
        layer.digest().digest()
    ));
    let mut wrong = big[..kept].to_vec();
    wrong[10] ^= 0xff;
    std::fs::write(&partial2, &wrong).unwrap();
    let pulled = client().pull(&r, &dst2, &PullOptions::default()).unwrap();
    assert_eq!(pulled.bytes_resumed, 0);
    assert_eq!(
        pulled.bytes_downloaded,
        (big.len() - kept + big.len()) as u64 + config.size()
    );
    assert_valid(&dst2);
}

#[test]
fn missing_tags_and_repositories_are_typed_404s() {
    let reg = Registry::start(None);
    let (src_dir, _src, _d) = source_image();
    skopeo_push(
        src_dir.path(),
        "src",
        &format!("{}/here:v1", reg.host()),
        &[],
    );
    let (_d, dst) = layout();
    for missing in ["here:nope", "nowhere:v1"] {
        let r = reg.reference(missing);
        let err = client()
            .pull(&r, &dst, &PullOptions::default())
            .unwrap_err();
        match &err {
            Error::RegistryNotFound { what, url, message } => {
                assert!(what.contains(&r.to_string()), "{err}");
                assert!(url.contains("/manifests/"), "{err}");
                assert!(message.contains("UNKNOWN"), "{err}");
            }
            other => panic!("{missing}: {other}"),
        }
    }
    // Pushing a tag that names nothing in the layout.
    let err = client()
        .push(
            &dst,
            "absent",
            &reg.reference("x:1"),
            &PushOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[test]
fn token_auth_with_credentials_from_an_auth_file() {
    let token = TokenServer::start();
    let reg = Registry::start(Some(&token));
    let (src_dir, src, src_desc) = source_image();
    let dest = format!("{}/private/app:v1", reg.host());
    skopeo_push(
        src_dir.path(),
        "src",
        &dest,
        &["--dest-creds", "alice:secret"],
    );

    // Credentials from an auth file (the format of $REGISTRY_AUTH_FILE / auth.json).
    let auth_dir = tempfile::tempdir().unwrap();
    let auth_file = auth_dir.path().join("auth.json");
    let enc = base64::engine::general_purpose::STANDARD.encode("alice:secret");
    std::fs::write(
        &auth_file,
        format!(r#"{{"auths":{{"{}":{{"auth":"{enc}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    let authed = Client::builder()
        .auth_files(vec![auth_dir.path().join("absent.json"), auth_file])
        .backoff(Duration::from_millis(10))
        .build();
    let r = reg.reference("private/app:v1");
    let (_d, dst) = layout();
    let pulled = authed.pull(&r, &dst, &PullOptions::default()).unwrap();
    assert_eq!(pulled.descriptor.digest(), src_desc.digest());
    assert_valid(&dst);
    // The token is cached per scope: pulling again asks the token server nothing.
    let before = token.issued.load(Ordering::SeqCst);
    authed.pull(&r, &dst, &PullOptions::default()).unwrap();
    assert_eq!(token.issued.load(Ordering::SeqCst), before);

    // Push with the same client, read back by skopeo with credentials.
    let r2 = reg.reference("private/copy:v2");
    authed
        .push(
            &src,
            "src",
            &r2,
            &PushOptions::default().mount_from("private/app"),
        )
        .unwrap();
    assert_eq!(
        skopeo_digest(&r2.to_string(), &["--creds", "alice:secret"]),
        src_desc.digest().to_string()
    );

    // Anonymous: the token grants nothing, the registry says 401.
    let err = client()
        .pull(&r, &dst, &PullOptions::default())
        .unwrap_err();
    match &err {
        Error::Unauthorized { url, message } => {
            assert!(url.contains("/v2/private/app/manifests/v1"), "{err}");
            assert!(message.contains("no credentials"), "{err}");
        }
        other => panic!("{other}"),
    }
    // Wrong password: the token server refuses.
    let wrong = Client::builder()
        .auth_files(vec![])
        .credentials(reg.host(), Credentials::new("alice", "wrong"))
        .build();
    let err = wrong.pull(&r, &dst, &PullOptions::default()).unwrap_err();
    match &err {
        Error::Unauthorized { url, message } => {
            assert!(url.contains("/token"), "{err}");
            assert!(message.contains("alice"), "{err}");
        }
        other => panic!("{other}"),
    }
}

// ---------------------------------------------------------------------------------------
// Against a fake registry, for failures on demand.

/// Serves the blobs of `layout` as a registry would, under repository `repo`, with the
/// manifest `top` as tag `t`; `tweak` may answer first.
fn fake_registry(
    layout: &Layout,
    top: &Descriptor,
    tweak: impl Fn(&Seen, usize) -> Option<Reply> + Send + Sync + 'static,
) -> Server {
    let layout = layout.clone();
    let top = top.clone();
    let counter = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    Server::start(Arc::new(move |req: &Seen| {
        let n = {
            let mut c = counter.lock().unwrap();
            let e = c.entry(req.path.clone()).or_insert(0);
            *e += 1;
            *e
        };
        if let Some(r) = tweak(req, n) {
            return r;
        }
        if req.path == "/v2/" {
            return Reply::new(200, "{}");
        }
        if req.path == "/v2/repo/manifests/t" {
            let bytes = layout.read_blob(&top, 1 << 20).unwrap();
            return Reply::new(200, bytes)
                .header("Content-Type", top.media_type().to_string())
                .header("Docker-Content-Digest", top.digest().to_string());
        }
        let blob = req
            .path
            .strip_prefix("/v2/repo/blobs/")
            .or_else(|| req.path.strip_prefix("/v2/repo/manifests/"));
        if let Some(d) = blob.and_then(|d| oci_image::parse_digest(d).ok()) {
            if let Ok(bytes) = std::fs::read(layout.blob_path(&d).unwrap()) {
                return Reply::new(200, bytes)
                    .header("Content-Type", "application/vnd.oci.image.manifest.v1+json");
            }
        }
        Reply::new(
            404,
            r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#,
        )
    }))
}

fn fake_ref(server: &Server) -> Reference {
    format!("127.0.0.1:{}/repo:t", server.port).parse().unwrap()
}

fn layer_of(layout: &Layout, manifest: &Descriptor) -> Descriptor {
    layout.read_manifest(manifest).unwrap().layers()[0].clone()
}

#[test]
fn wrong_bytes_are_a_digest_mismatch_and_nothing_is_kept() {
    let (_s, src, top) = source_image();
    let layer = layer_of(&src, &top);
    let lpath = format!("/v2/repo/blobs/{}", layer.digest());
    let size = layer.size() as usize;
    let server = fake_registry(&src, &top, move |req, _| {
        (req.path == lpath).then(|| Reply::new(200, vec![b'x'; size]))
    });
    let (_d, dst) = layout();
    let err = client()
        .pull(&fake_ref(&server), &dst, &PullOptions::default())
        .unwrap_err();
    match &err {
        Error::DigestMismatch { expected, .. } => assert_eq!(expected, layer.digest()),
        other => panic!("{other}"),
    }
    assert!(!dst.has_blob(layer.digest()).unwrap());
    let leftovers: Vec<_> = std::fs::read_dir(dst.path().join("blobs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(dst.tags().unwrap().is_empty());
}

#[test]
fn a_longer_body_than_the_descriptor_is_refused_whatever_content_length_says() {
    let (_s, src, top) = source_image();
    let layer = layer_of(&src, &top);
    let lpath = format!("/v2/repo/blobs/{}", layer.digest());
    let mut long = std::fs::read(src.blob_path(layer.digest()).unwrap()).unwrap();
    long.extend_from_slice(&[0u8; 4096]);
    let server = fake_registry(&src, &top, move |req, _| {
        (req.path == lpath).then(|| Reply::new(200, long.clone()))
    });
    let (_d, dst) = layout();
    let err = client()
        .pull(&fake_ref(&server), &dst, &PullOptions::default())
        .unwrap_err();
    assert!(
        matches!(err, Error::SizeMismatch { at_least: true, .. }),
        "{err}"
    );
}

#[test]
fn a_manifest_that_does_not_match_its_digest_is_refused() {
    let (_s, src, top) = source_image();
    let other = image(&src, "linux/riscv64", false);
    let by_digest = format!("/v2/repo/manifests/{}", top.digest());
    let (src2, other2) = (src.clone(), other.clone());
    let server = fake_registry(&src, &top, move |req, _| {
        (req.path == by_digest).then(|| {
            Reply::new(200, src2.read_blob(&other2, 1 << 20).unwrap())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        })
    });
    let r: Reference = format!("127.0.0.1:{}/repo@{}", server.port, top.digest())
        .parse()
        .unwrap();
    let (_d, dst) = layout();
    let err = client()
        .pull(&r, &dst, &PullOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
}

#[test]
fn a_cut_connection_is_resumed_with_a_range_request() {
    let (_s, src, top) = source_image();
    let layer = layer_of(&src, &top);
    let lpath = format!("/v2/repo/blobs/{}", layer.digest());
    let bytes = std::fs::read(src.blob_path(layer.digest()).unwrap()).unwrap();
    let half = bytes.len() / 2;
    let server = fake_registry(&src, &top, move |req, n| {
        if req.path != lpath {
            return None;
        }
        Some(match (n, req.headers.get("range")) {
            (1, _) => Reply {
                cut: Some(half),
                ..Reply::new(200, bytes.clone())
            },
            (_, Some(range)) => {
                let start: usize = range
                    .trim_start_matches("bytes=")
                    .trim_end_matches('-')
                    .parse()
                    .unwrap();
                Reply::new(206, bytes[start..].to_vec()).header(
                    "Content-Range",
                    format!("bytes {start}-{}/{}", bytes.len() - 1, bytes.len()),
                )
            }
            (_, None) => Reply::new(500, "expected a Range"),
        })
    });
    let (_d, dst) = layout();
    let pulled = client()
        .pull(&fake_ref(&server), &dst, &PullOptions::default())
        .unwrap();
    let ranges: Vec<String> = server
        .seen()
        .iter()
        .filter_map(|s| s.headers.get("range").cloned())
        .collect();
    assert_eq!(ranges, vec![format!("bytes={half}-")]);
    assert_eq!(pulled.blobs_downloaded, 2);
    assert!(dst.has_blob(layer.digest()).unwrap());
    assert_valid(&dst);
}

#[test]
fn transient_errors_are_retried_and_persistent_ones_reported() {
    let (_s, src, top) = source_image();
    // Two 503s (one with Retry-After), then the manifest.
    let server = fake_registry(&src, &top, |req, n| {
        (req.path == "/v2/repo/manifests/t" && n <= 2)
            .then(|| Reply::new(503, "busy").header("Retry-After", "0"))
    });
    let (_d, dst) = layout();
    client()
        .pull(&fake_ref(&server), &dst, &PullOptions::default())
        .unwrap();

    let server = fake_registry(&src, &top, |req, _| {
        (req.path == "/v2/repo/manifests/t").then(|| {
            Reply::new(
                500,
                r#"{"errors":[{"code":"UNKNOWN","message":"storage on fire"}]}"#,
            )
        })
    });
    let err = client()
        .pull(&fake_ref(&server), &dst, &PullOptions::default())
        .unwrap_err();
    match &err {
        Error::RegistryStatus {
            status, message, ..
        } => {
            assert_eq!(*status, 500);
            assert!(message.contains("storage on fire"), "{err}");
        }
        other => panic!("{other}"),
    }
    let tries = server
        .seen()
        .iter()
        .filter(|s| s.path == "/v2/repo/manifests/t")
        .count();
    assert_eq!(tries, 4, "one try and three retries");

    // 403 is not retried and says so.
    let server = fake_registry(&src, &top, |req, _| {
        (req.path == "/v2/repo/manifests/t")
            .then(|| Reply::new(403, r#"{"errors":[{"code":"DENIED","message":"no"}]}"#))
    });
    let err = client()
        .pull(&fake_ref(&server), &dst, &PullOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::Denied { .. }), "{err}");
}

#[test]
fn basic_and_bearer_challenges_are_answered() {
    let (_s, src, top) = source_image();
    // Basic: the registry asks, the client answers with its credentials.
    let server = fake_registry(&src, &top, |req, _| {
        let ok = req.headers.get("authorization").map(String::as_str) == Some("Basic Ym9iOnB3"); // bob:pw
        (!ok && req.path != "/v2/")
            .then(|| Reply::new(401, "").header("WWW-Authenticate", r#"Basic realm="fake""#))
    });
    let (_d, dst) = layout();
    let c = Client::builder()
        .auth_files(vec![])
        .credentials(
            format!("127.0.0.1:{}", server.port),
            Credentials::new("bob", "pw"),
        )
        .build();
    c.pull(&fake_ref(&server), &dst, &PullOptions::default())
        .unwrap();

    // Bearer: a token from the realm (on the same fake server), with scope and service.
    let port = Arc::new(AtomicUsize::new(0));
    let p2 = port.clone();
    let server = fake_registry(&src, &top, move |req, _| {
        if req.path.starts_with("/token?") {
            assert!(req.path.contains("service=fake-svc"), "{}", req.path);
            assert!(
                req.path.contains("scope=repository:repo:pull"),
                "{}",
                req.path
            );
            return Some(Reply::new(200, r#"{"token":"tok123"}"#));
        }
        let ok = req.headers.get("authorization").map(String::as_str) == Some("Bearer tok123");
        (!ok && req.path != "/v2/").then(|| {
            Reply::new(401, "").header(
                "WWW-Authenticate",
                format!(
                    r#"Bearer realm="http://127.0.0.1:{}/token",service="fake-svc",scope="repository:repo:pull""#,
                    p2.load(Ordering::SeqCst)
                ),
            )
        })
    });
    port.store(server.port as usize, Ordering::SeqCst);
    let (_d2, dst2) = layout();
    client()
        .pull(&fake_ref(&server), &dst2, &PullOptions::default())
        .unwrap();
    let tokens = server
        .seen()
        .iter()
        .filter(|s| s.path.starts_with("/token"))
        .count();
    assert_eq!(tokens, 1, "one token for the pull's scope, then cached");
}
