//! Credentials, auth files and `WWW-Authenticate` challenges.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::error::{Error, Result};

/// A user name and password (or token) for a registry.
///
/// ```
/// let c = oci_image::registry::Credentials::new("alice", "s3cret");
/// assert_eq!(c.username(), "alice");
/// assert!(!format!("{c:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// Credentials from a user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The value of an `Authorization: Basic` header (RFC 7617).
    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The auth files searched for credentials, in order, as podman and skopeo search them:
/// `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
/// `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/…` by default), then Docker's
/// `$DOCKER_CONFIG/config.json` (`~/.docker/config.json` by default).
///
/// `env` looks up an environment variable; pass `|k| std::env::var(k).ok()` for the process's.
///
/// ```
/// let env = |k: &str| match k {
///     "REGISTRY_AUTH_FILE" => Some("/etc/auth.json".to_string()),
///     "HOME" => Some("/home/a".to_string()),
///     _ => None,
/// };
/// let paths = oci_image::registry::default_auth_files(env);
/// assert_eq!(paths[0], std::path::Path::new("/etc/auth.json"));
/// assert_eq!(paths.last().unwrap(), std::path::Path::new("/home/a/.docker/config.json"));
/// ```
pub fn default_auth_files(env: impl Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    let mut out = Vec::new();
    if let Some(f) = set("REGISTRY_AUTH_FILE") {
        out.push(PathBuf::from(f));
    }
    if let Some(d) = set("XDG_RUNTIME_DIR") {
        out.push(Path::new(&d).join("containers/auth.json"));
    }
    let home = set("HOME");
    match (set("XDG_CONFIG_HOME"), &home) {
        (Some(c), _) => out.push(Path::new(&c).join("containers/auth.json")),
        (None, Some(h)) => out.push(Path::new(h).join(".config/containers/auth.json")),
        (None, None) => {}
    }
    match (set("DOCKER_CONFIG"), &home) {
        (Some(d), _) => out.push(Path::new(&d).join("config.json")),
        (None, Some(h)) => out.push(Path::new(h).join(".docker/config.json")),
        (None, None) => {}
    }
    out
}

/// Looks up credentials for `registry/repository` in the auth files, the first file with a
/// matching entry winning. Within a file the most specific key wins: `registry/repo/path`,
/// then its parents, then `registry` (containers-auth.json(5)). Keys are normalized: a
/// scheme and a trailing `/v1/` or `/v2/` are dropped, and Docker Hub's names
/// (`https://index.docker.io/v1/`, `registry-1.docker.io`) count as `docker.io`.
///
/// Missing files are skipped; a file that exists but does not parse is an error naming it.
/// Credential helpers (`credsStore`, `credHelpers`) are not run.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let file = dir.path().join("auth.json");
/// // "alice:s3cret" in base64
/// std::fs::write(&file, r#"{"auths":{"https://index.docker.io/v1/":{"auth":"YWxpY2U6czNjcmV0"}}}"#).unwrap();
/// let c = oci_image::registry::find_credentials(&[file], "docker.io", "library/busybox")?;
/// assert_eq!(c.unwrap().username(), "alice");
/// # Ok::<(), oci_image::Error>(())
/// ```
pub fn find_credentials(
    files: &[PathBuf],
    registry: &str,
    repository: &str,
) -> Result<Option<Credentials>> {
    let mut wanted = vec![format!("{registry}/{repository}")];
    let mut rest = repository;
    while let Some((parent, _)) = rest.rsplit_once('/') {
        wanted.push(format!("{registry}/{parent}"));
        rest = parent;
    }
    wanted.push(registry.to_string());
    for file in files {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(file, e)),
        };
        let parsed: AuthFile = crate::layout::parse_json(&bytes, &file.display().to_string())?;
        let entries: HashMap<String, &AuthEntry> = parsed
            .auths
            .iter()
            .map(|(k, v)| (normalize_key(k), v))
            .collect();
        for key in &wanted {
            if let Some(entry) = entries.get(key) {
                return entry.credentials(file, key).map(Some);
            }
        }
    }
    Ok(None)
}

#[derive(serde::Deserialize, Default)]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
}

#[derive(serde::Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl AuthEntry {
    fn credentials(&self, file: &Path, key: &str) -> Result<Credentials> {
        let bad = |reason: &str| Error::Invalid {
            what: format!("{}: auths[{key:?}]", file.display()),
            reason: reason.to_string(),
        };
        if let Some(auth) = &self.auth {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad("\"auth\" is not base64"))?;
            let raw = String::from_utf8(raw).map_err(|_| bad("\"auth\" is not UTF-8"))?;
            let (u, p) = raw
                .split_once(':')
                .ok_or_else(|| bad("\"auth\" is not user:password"))?;
            return Ok(Credentials::new(u, p));
        }
        match (&self.username, &self.password) {
            (Some(u), Some(p)) => Ok(Credentials::new(u.clone(), p.clone())),
            _ => Err(bad("no \"auth\" and no username/password")),
        }
    }
}

fn normalize_key(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let k = k.trim_end_matches('/');
    let k = k
        .strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

/// One challenge of a `WWW-Authenticate` header (RFC 9110 section 11.6.1): a scheme and its
/// parameters, parameter names lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: HashMap<String, String>,
}

/// Parses a `WWW-Authenticate` value into its challenges (`Bearer realm="…",service="…"`,
/// `Basic realm="…"`), tolerating quoted commas and escaped quotes.
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let b = header.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && !matches!(b[*i], b' ' | b'\t' | b',' | b'=') {
            *i += 1;
        }
        header[start..*i].to_string()
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        let word = token(&mut i);
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            // `name=value`: a parameter of the current challenge.
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch_len = header[i..].chars().next().map_or(1, char::len_utf8);
                    v.push_str(&header[i..i + ch_len]);
                    i += ch_len;
                }
                i += 1;
                v
            } else {
                token(&mut i)
            };
            if let Some(c) = out.last_mut() {
                c.params.insert(word.to_ascii_lowercase(), value);
            }
        } else if !word.is_empty() {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: HashMap::new(),
            });
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.example/token",service="reg,istry",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.example/token");
        assert_eq!(c[0].params["service"], "reg,istry");
        assert_eq!(c[0].params["scope"], "repository:a/b:pull,push");
        let c = parse_challenges(r#"Basic realm="x\"y", Bearer realm=r"#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].params["realm"], "x\"y");
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].params["realm"], "r");
        for junk in ["", "=", "\"", ",,,", "Bearer realm=\"unterminated", "é=ü"] {
            let _ = parse_challenges(junk);
        }
    }

    #[test]
    fn auth_file_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.json");
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        std::fs::write(
            &a,
            format!(
                r#"{{"auths":{{"r.io/team":{{"auth":"{}"}},"r.io":{{"auth":"{}"}}}}}}"#,
                enc("team:1"),
                enc("all:2")
            ),
        )
        .unwrap();
        std::fs::write(
            &b,
            format!(
                r#"{{"auths":{{"http://other.io/v2/":{{"auth":"{}"}}}},"credsStore":"x"}}"#,
                enc("o:3")
            ),
        )
        .unwrap();
        let files = [dir.path().join("missing.json"), a.clone(), b];
        let user = |reg: &str, repo: &str| {
            find_credentials(&files, reg, repo)
                .unwrap()
                .map(|c| c.username)
        };
        assert_eq!(user("r.io", "team/app").as_deref(), Some("team"));
        assert_eq!(user("r.io", "else/app").as_deref(), Some("all"));
        assert_eq!(user("other.io", "x").as_deref(), Some("o"));
        assert_eq!(user("none.io", "x"), None);
        std::fs::write(&a, "{not json").unwrap();
        assert!(find_credentials(&files, "r.io", "x").is_err());
    }
}
