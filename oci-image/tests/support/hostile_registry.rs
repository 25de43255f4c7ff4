//! A small hostile registry, in process: a distribution-spec server on 127.0.0.1 with one
//! misbehaviour per repository, that counts the requests it gets and records their headers
//! (to prove where credentials went). Shared by `oci-image/tests/registry_faults.rs` (the
//! library) and `examples/tests/ocibox_faults.rs` (the CLI).
//!
//! One connection per request (`Connection: close`), a thread per connection; misbehaving
//! connections end when the client goes away or the server is dropped.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// Basic credentials the `Auth::Basic` and `Auth::Bearer` repositories accept.
pub const USER: &str = "alice";
pub const PASSWORD: &str = "s3cret-pa55";
/// The bearer token the token endpoint issues for them.
pub const TOKEN: &str = "tok-7f3a9c-never-elsewhere";

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A tar with the given regular files (as a layer).
pub fn tar(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in files {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// Deterministic filler bytes (so that layers of different seeds differ).
pub fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

/// An image as a registry serves it: manifest bytes, and its blobs.
#[derive(Clone, Debug)]
pub struct Image {
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
}

impl Image {
    /// An image of the host's platform with `layers` layers of about `size` bytes each.
    pub fn new(layers: usize, size: usize, seed: u64) -> Self {
        let layers: Vec<Vec<u8>> = (0..layers)
            .map(|i| tar(&[(&format!("file{i}"), filler(size, seed * 1000 + i as u64))]))
            .collect();
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
        Self::with(layers, diff_ids, host_os(), host_arch())
    }

    /// An image with exactly these layers and diff_ids (which may disagree).
    pub fn with(layers: Vec<Vec<u8>>, diff_ids: Vec<String>, os: &str, arch: &str) -> Self {
        let config = serde_json::json!({
            "architecture": arch,
            "os": os,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "config": {"Cmd": ["/bin/sh"]},
        })
        .to_string()
        .into_bytes();
        let manifest = manifest_json(
            &config,
            &layers
                .iter()
                .map(|l| (OCI_LAYER.to_string(), sha256(l), l.len() as u64))
                .collect::<Vec<_>>(),
            None,
        );
        Image {
            manifest,
            config,
            layers,
        }
    }

    pub fn digest(&self) -> String {
        sha256(&self.manifest)
    }

    pub fn blobs(&self) -> Vec<Vec<u8>> {
        let mut v = vec![self.config.clone()];
        v.extend(self.layers.iter().cloned());
        v
    }
}

/// An image manifest for `config` and layers given as (media type, digest, size); the config
/// descriptor's size may be overridden (a lie).
pub fn manifest_json(
    config: &[u8],
    layers: &[(String, String, u64)],
    config_size: Option<u64>,
) -> Vec<u8> {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": sha256(config),
            "size": config_size.unwrap_or(config.len() as u64),
        },
        "layers": layers.iter().map(|(mt, d, s)| serde_json::json!({
            "mediaType": mt, "digest": d, "size": s
        })).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes()
}

/// An entry of an index: media type, the document's bytes, its platform (os, arch) if any.
pub type Entry<'a> = (&'a str, &'a [u8], Option<(&'a str, &'a str)>);

/// An index of these entries.
pub fn index_json(entries: &[Entry<'_>]) -> Vec<u8> {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries.iter().map(|(mt, bytes, p)| {
            let mut d = serde_json::json!({
                "mediaType": mt, "digest": sha256(bytes), "size": bytes.len()
            });
            if let Some((os, arch)) = p {
                d["platform"] = serde_json::json!({"os": os, "architecture": arch});
            }
            d
        }).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes()
}

pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn host_os() -> &'static str {
    "linux"
}

/// Who may read a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    Anonymous,
    /// HTTP basic with [`USER`]:[`PASSWORD`].
    Basic,
    /// A bearer token from this server's `/token` (given for [`USER`]:[`PASSWORD`]).
    Bearer,
}

/// The one thing a repository does wrong.
#[derive(Clone, Debug)]
pub enum Misbehaviour {
    /// Nothing: a well-behaved registry.
    None,
    /// Blob bodies trickle: one byte every `every`, for ever.
    SlowBlobs { every: Duration },
    /// Not a fault: blob bodies in chunks of `chunk` bytes, `every` apart (a slow link, so
    /// that a concurrent command or a kill lands in the middle of a pull).
    Paced { chunk: usize, every: Duration },
    /// Manifest requests are accepted and never answered.
    SilentManifests,
    /// Blob GETs answer 307 to the same path on another server (another port).
    RedirectBlobs { to: String },
    /// Blob GETs answer 307 to this `Location`, as given.
    RedirectBlobsTo { location: String },
    /// Upload POSTs answer 202 with this `Location`.
    UploadLocation { location: String },
    /// Blobs are served with other bytes of the same length.
    LyingBlobs,
}

#[derive(Clone, Debug)]
pub struct Repo {
    pub auth: Auth,
    pub misbehaviour: Misbehaviour,
    /// Tags and digests to (media type, bytes).
    pub manifests: HashMap<String, (String, Vec<u8>)>,
    pub blobs: HashMap<String, Vec<u8>>,
}

impl Repo {
    pub fn new(auth: Auth, misbehaviour: Misbehaviour) -> Self {
        Repo {
            auth,
            misbehaviour,
            manifests: HashMap::new(),
            blobs: HashMap::new(),
        }
    }

    /// Adds a manifest or index under its digest and, if given, a tag.
    pub fn manifest(mut self, tag: Option<&str>, media_type: &str, bytes: Vec<u8>) -> Self {
        let entry = (media_type.to_string(), bytes);
        if let Some(t) = tag {
            self.manifests.insert(t.to_string(), entry.clone());
        }
        self.manifests.insert(sha256(&entry.1), entry);
        self
    }

    pub fn blob(mut self, bytes: Vec<u8>) -> Self {
        self.blobs.insert(sha256(&bytes), bytes);
        self
    }

    /// Adds an image (manifest under `tag`, config and layers).
    pub fn image(self, tag: &str, image: &Image) -> Self {
        let mut r = self.manifest(Some(tag), OCI_MANIFEST, image.manifest.clone());
        for b in image.blobs() {
            r = r.blob(b);
        }
        r
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
}

impl Seen {
    pub fn authorization(&self) -> Option<&str> {
        self.headers.get("authorization").map(String::as_str)
    }
}

/// The server.
pub struct Hostile {
    pub port: u16,
    repos: Arc<Mutex<HashMap<String, Repo>>>,
    log: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Hostile {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let repos: Arc<Mutex<HashMap<String, Repo>>> = Arc::default();
        let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, l, st) = (repos.clone(), log.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (r, l, st) = (r.clone(), l.clone(), st.clone());
                std::thread::spawn(move || serve(conn, port, &r, &l, &st));
            }
        });
        Hostile {
            port,
            repos,
            log,
            stop,
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn add(&self, name: &str, repo: Repo) {
        self.repos.lock().unwrap().insert(name.to_string(), repo);
    }

    /// `127.0.0.1:PORT/NAME:TAG`.
    pub fn reference(&self, name_tag: &str) -> String {
        format!("{}/{name_tag}", self.host())
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// Requests whose path starts with `/v2/NAME/`.
    pub fn requests_to(&self, name: &str) -> Vec<Seen> {
        let prefix = format!("/v2/{name}/");
        self.seen()
            .into_iter()
            .filter(|s| s.path.starts_with(&prefix))
            .collect()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send the body in chunks of this many bytes, this far apart.
    trickle: Option<(usize, Duration)>,
    /// Never answer.
    silent: bool,
}

impl Reply {
    fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            trickle: None,
            silent: false,
        }
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    fn error(status: u16, code: &str) -> Self {
        Reply::new(
            status,
            format!(r#"{{"errors":[{{"code":"{code}","message":"{code}"}}]}}"#),
        )
        .header("Content-Type", "application/json")
    }
}

fn serve(
    conn: TcpStream,
    port: u16,
    repos: &Mutex<HashMap<String, Repo>>,
    log: &Mutex<Vec<Seen>>,
    stop: &AtomicBool,
) {
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
    let mut body = vec![0u8; len.min(64 << 20)];
    let _ = reader.read_exact(&mut body);
    let seen = Seen {
        method: method.to_string(),
        path: path.to_string(),
        headers,
    };
    log.lock().unwrap().push(seen.clone());
    let reply = {
        let repos = repos.lock().unwrap();
        answer(&seen, port, &repos)
    };
    let mut out = conn;
    if reply.silent {
        // Accept, never answer: hold the connection until the client leaves or we stop.
        let deadline = Instant::now() + Duration::from_secs(120);
        out.set_read_timeout(Some(Duration::from_millis(100))).ok();
        let mut b = [0u8; 1];
        while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
            match out.read(&mut b) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
        return;
    }
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
    if out.write_all(head.as_bytes()).is_err() || method == "HEAD" {
        return;
    }
    match reply.trickle {
        Some((chunk, every)) => {
            for b in reply.body.chunks(chunk.max(1)) {
                if stop.load(Ordering::SeqCst) || out.write_all(b).is_err() {
                    return;
                }
                std::thread::sleep(every);
            }
        }
        None => {
            let _ = out.write_all(&reply.body);
        }
    }
    let _ = out.flush();
    let _ = out.shutdown(std::net::Shutdown::Both);
}

fn answer(req: &Seen, port: u16, repos: &HashMap<String, Repo>) -> Reply {
    let path = req.path.split('?').next().unwrap_or("");
    if path == "/v2/" {
        return Reply::new(200, "{}");
    }
    if path == "/token" {
        let basic = format!("Basic {}", base64(format!("{USER}:{PASSWORD}").as_bytes()));
        if req.authorization() != Some(basic.as_str()) {
            return Reply::error(401, "UNAUTHORIZED");
        }
        return Reply::new(200, format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#))
            .header("Content-Type", "application/json");
    }
    // `/elsewhere/...`: what a redirect to another origin lands on; serves any blob by the
    // digest at the end of the path.
    if let Some(rest) = path.strip_prefix("/elsewhere/") {
        let digest = rest.rsplit('/').next().unwrap_or("");
        for r in repos.values() {
            if let Some(b) = r.blobs.get(digest) {
                return Reply::new(200, b.clone());
            }
        }
        return Reply::error(404, "BLOB_UNKNOWN");
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Reply::error(404, "NOT_FOUND");
    };
    // Repository names may contain slashes: the last "/manifests/", "/blobs/" splits.
    let (name, kind, key) = if let Some((n, k)) = rest.rsplit_once("/manifests/") {
        (n, "manifests", k)
    } else if let Some(n) = rest.strip_suffix("/blobs/uploads/") {
        (n, "uploads", "")
    } else if let Some((n, k)) = rest.rsplit_once("/blobs/uploads/") {
        (n, "uploads", k)
    } else if let Some((n, k)) = rest.rsplit_once("/blobs/") {
        (n, "blobs", k)
    } else {
        return Reply::error(404, "NAME_UNKNOWN");
    };
    let Some(repo) = repos.get(name) else {
        return Reply::error(404, "NAME_UNKNOWN");
    };
    let realm = format!("http://127.0.0.1:{port}/token");
    match repo.auth {
        Auth::Anonymous => {}
        Auth::Basic => {
            let want = format!("Basic {}", base64(format!("{USER}:{PASSWORD}").as_bytes()));
            if req.authorization() != Some(want.as_str()) {
                return Reply::error(401, "UNAUTHORIZED")
                    .header("WWW-Authenticate", r#"Basic realm="hostile""#);
            }
        }
        Auth::Bearer => {
            if req.authorization() != Some(format!("Bearer {TOKEN}").as_str()) {
                return Reply::error(401, "UNAUTHORIZED").header(
                    "WWW-Authenticate",
                    format!(
                        r#"Bearer realm="{realm}",service="hostile",scope="repository:{name}:pull""#
                    ),
                );
            }
        }
    }
    match (kind, &repo.misbehaviour) {
        ("manifests", Misbehaviour::SilentManifests) => {
            let mut r = Reply::new(200, "");
            r.silent = true;
            r
        }
        ("manifests", _) => match repo.manifests.get(key) {
            Some((mt, bytes)) => Reply::new(200, bytes.clone())
                .header("Content-Type", mt.clone())
                .header("Docker-Content-Digest", sha256(bytes)),
            None => Reply::error(404, "MANIFEST_UNKNOWN"),
        },
        ("blobs", m) => {
            let Some(bytes) = repo.blobs.get(key) else {
                return Reply::error(404, "BLOB_UNKNOWN");
            };
            match m {
                Misbehaviour::SlowBlobs { every } => {
                    let mut r = Reply::new(200, bytes.clone());
                    r.trickle = Some((1, *every));
                    r
                }
                Misbehaviour::Paced { chunk, every } => {
                    let mut r = Reply::new(200, bytes.clone());
                    r.trickle = Some((*chunk, *every));
                    r
                }
                Misbehaviour::RedirectBlobs { to } => Reply::new(307, "")
                    .header("Location", format!("http://{to}/elsewhere/{name}/{key}")),
                Misbehaviour::RedirectBlobsTo { location } => {
                    Reply::new(307, "").header("Location", location.clone())
                }
                Misbehaviour::LyingBlobs => Reply::new(200, vec![b'x'; bytes.len()]),
                _ => Reply::new(200, bytes.clone()),
            }
        }
        ("uploads", Misbehaviour::UploadLocation { location }) if req.method == "POST" => {
            Reply::new(202, "").header("Location", location.clone())
        }
        ("uploads", _) => Reply::error(405, "UNSUPPORTED"),
        _ => Reply::error(404, "NOT_FOUND"),
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
