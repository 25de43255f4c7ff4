//! HTTP to a registry: scheme selection, authentication, retries, error mapping.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::http::{self, Response};

use super::auth::{find_credentials, parse_challenges, Challenge, Credentials};
use crate::error::{Error, Result};

pub(crate) type HttpResponse = Response<ureq::Body>;

/// The largest error or token response read into memory.
const MAX_SMALL_BODY: u64 = 1 << 20;

/// What a [`super::Client`] was built with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub default_registry: String,
    pub insecure: Vec<String>,
    pub auth_files: Vec<PathBuf>,
    pub credentials: HashMap<String, Credentials>,
    pub retries: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub concurrency: usize,
    pub user_agent: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub request_timeout: Duration,
    pub deadline: Option<Duration>,
    pub min_speed: u64,
}

/// Which repository a request is for, and what it needs to do there: the bearer token's
/// scope and the key for credentials.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    /// The registry as references name it (`docker.io`): the key for credentials.
    pub registry: String,
    /// The host that serves the API (`registry-1.docker.io`).
    pub host: String,
    /// The repository.
    pub repository: String,
    /// `pull` or `pull,push`.
    pub actions: &'static str,
    /// Another repository to read from (the source of a cross-repository mount).
    pub mount_from: Option<String>,
    /// When the whole operation (a pull, a push) must have ended.
    pub deadline: Option<Instant>,
}

impl Scope {
    /// The token scopes (distribution's token-scope grammar,
    /// `repository:<name>:<actions>`).
    fn token_scopes(&self) -> Vec<String> {
        let mut v = vec![format!("repository:{}:{}", self.repository, self.actions)];
        if let Some(from) = &self.mount_from {
            v.push(format!("repository:{from}:pull"));
        }
        v
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// A request body that can be sent again on a retry.
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`.
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
    },
}

/// A request: a path under the registry's base URL (`/v2/…`) or an absolute URL (an upload
/// location).
pub(crate) struct Request<'a> {
    pub method: Method,
    pub target: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<'a>,
    /// Whether the transport may send it again after a transient failure. Upload steps
    /// whose repetition the registry would not accept are retried as a whole by the caller.
    pub retry: bool,
    /// A blob transfer: bounded by the read timeout, the minimum speed and the deadline,
    /// not by the request timeout.
    pub streaming: bool,
}

impl<'a> Request<'a> {
    pub fn new(method: Method, target: impl Into<String>) -> Self {
        Self {
            method,
            target: target.into(),
            headers: Vec::new(),
            body: Body::Empty,
            retry: true,
            streaming: false,
        }
    }

    pub fn streaming(mut self) -> Self {
        self.streaming = true;
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: Body<'a>) -> Self {
        self.body = body;
        self
    }

    pub fn no_retry(mut self) -> Self {
        self.retry = false;
        self
    }
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    tokens: HashMap<String, (String, Instant)>,
}

pub(crate) struct Transport {
    pub config: Config,
    agent: ureq::Agent,
    insecure_agent: ureq::Agent,
    bases: Mutex<HashMap<String, String>>,
    auth: Mutex<HashMap<String, AuthState>>,
    creds: Mutex<HashMap<(String, String), Option<Credentials>>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub fn new(config: Config) -> Self {
        let agent = |verify: bool| -> ureq::Agent {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .user_agent(config.user_agent.as_str())
                // Redirects are followed by `exchange`, which carries `Authorization` only to
                // the exact origin it was issued for (the library's same-host rule ignores
                // the port and the scheme).
                .max_redirects(0)
                .timeout_resolve(Some(config.connect_timeout))
                .timeout_connect(Some(config.connect_timeout))
                .timeout_per_read(Some(config.read_timeout))
                .timeout_per_write(Some(config.read_timeout))
                .tls_config(
                    ureq::tls::TlsConfig::builder()
                        .disable_verification(!verify)
                        .build(),
                )
                .build()
                .new_agent()
        };
        Self {
            agent: agent(true),
            insecure_agent: agent(false),
            config,
            bases: Mutex::new(HashMap::new()),
            auth: Mutex::new(HashMap::new()),
            creds: Mutex::new(HashMap::new()),
        }
    }

    /// Localhost and the registries the user named insecure may be reached over plain HTTP
    /// (and over HTTPS without certificate verification); every other registry only over
    /// verified HTTPS.
    pub fn is_insecure(&self, host: &str) -> bool {
        let bare = host_without_port(host);
        bare == "localhost"
            || bare == "::1"
            || bare.starts_with("127.")
            || self.config.insecure.iter().any(|i| i == host || i == bare)
    }

    /// `https://host`, or for an insecure host whichever of `https://` and `http://` answers
    /// `GET /v2/` (distribution-spec "Determining Support"), HTTPS first as Docker does.
    fn base(&self, host: &str) -> Result<String> {
        if !self.is_insecure(host) {
            return Ok(format!("https://{host}"));
        }
        if let Some(b) = lock(&self.bases).get(host) {
            return Ok(b.clone());
        }
        let mut last = String::new();
        for scheme in ["https", "http"] {
            let base = format!("{scheme}://{host}");
            let url = format!("{base}/v2/");
            let req = http::Request::get(&url)
                .body(())
                .map_err(|e| bad_url(&url, e))?;
            let req = self
                .insecure_agent
                .configure_request(req)
                .timeout_global(Some(self.config.connect_timeout))
                .build();
            match self.insecure_agent.run(req) {
                Ok(_) => {
                    lock(&self.bases).insert(host.to_string(), base.clone());
                    return Ok(base);
                }
                Err(e) => last = format!("{url}: {}", describe(&e)),
            }
        }
        Err(Error::Transport {
            url: format!("{host}/v2/"),
            message: format!("registry unreachable over HTTPS and HTTP ({last})"),
        })
    }

    fn credentials(&self, scope: &Scope) -> Result<Option<Credentials>> {
        if let Some(c) = self.config.credentials.get(&scope.registry) {
            return Ok(Some(c.clone()));
        }
        let key = (scope.registry.clone(), scope.repository.clone());
        if let Some(c) = lock(&self.creds).get(&key) {
            return Ok(c.clone());
        }
        let found = find_credentials(&self.config.auth_files, &scope.registry, &scope.repository)?;
        lock(&self.creds).insert(key, found.clone());
        Ok(found)
    }

    /// The `Authorization` value to send, from what earlier challenges of this registry asked
    /// for; fetches a bearer token for the scope when none is cached.
    fn authorization(&self, scope: &Scope) -> Result<Option<String>> {
        let key = scope.token_scopes().join(" ");
        let challenge = {
            let auth = lock(&self.auth);
            let Some(state) = auth.get(&scope.host) else {
                return Ok(None);
            };
            let Some(challenge) = state.challenge.clone() else {
                return Ok(None);
            };
            if let Some((token, expires)) = state.tokens.get(&key) {
                if Instant::now() < *expires {
                    return Ok(Some(format!("Bearer {token}")));
                }
            }
            challenge
        };
        match challenge.scheme.as_str() {
            "basic" => Ok(self.credentials(scope)?.map(|c| c.basic_header())),
            "bearer" => {
                let (token, ttl) = self.fetch_token(scope, &challenge)?;
                // Renew a little early so that a token does not expire in flight.
                let expires = Instant::now() + ttl.saturating_sub(Duration::from_secs(10));
                lock(&self.auth)
                    .entry(scope.host.clone())
                    .or_default()
                    .tokens
                    .insert(key, (token.clone(), expires));
                Ok(Some(format!("Bearer {token}")))
            }
            _ => Ok(None),
        }
    }

    /// Docker's token authentication (the protocol distribution's token server implements):
    /// `GET <realm>?service=<service>&scope=<scope>…`, with basic credentials when there are
    /// some, answers `{"token": …, "expires_in": …}`.
    fn fetch_token(&self, scope: &Scope, challenge: &Challenge) -> Result<(String, Duration)> {
        let realm = challenge.params.get("realm").cloned().unwrap_or_default();
        let realm_host = url_host(&realm).unwrap_or_default();
        let plain_ok = realm.starts_with("http://") && self.is_insecure(&realm_host);
        if !(realm.starts_with("https://") || plain_ok) {
            return Err(Error::Unauthorized {
                url: realm.clone(),
                message: format!(
                    "the registry {} asks for a token from realm {realm:?}, which is not an \
                     HTTPS URL (plain HTTP is allowed only for localhost and insecure registries)",
                    scope.host
                ),
            });
        }
        let mut url = realm.clone();
        let mut sep = if realm.contains('?') { '&' } else { '?' };
        if let Some(service) = challenge.params.get("service") {
            url.push_str(&format!("{sep}service={}", query_escape(service)));
            sep = '&';
        }
        for s in scope.token_scopes() {
            url.push_str(&format!("{sep}scope={}", query_escape(&s)));
            sep = '&';
        }
        let creds = self.credentials(scope)?;
        // The basic credentials go to the realm the registry named, and only to its origin.
        let basic = creds.as_ref().map(|c| c.basic_header());
        let realm_origin = origin(&realm);
        let req = Request::new(Method::Get, url.clone());
        let mut attempt = 0;
        let mut resp = loop {
            let auth = basic.as_deref().zip(realm_origin.as_ref());
            let wait = match self.exchange(scope, &url, &req, auth) {
                Ok((r, _)) if is_transient_status(r.status().as_u16()) => self
                    .wait_for(attempt, &r)
                    .ok_or_else(|| status_error("GET", &url, r))?,
                Ok((r, _)) => break r,
                Err(Failure::Other(e)) => return Err(e),
                Err(Failure::Http(u, e)) => {
                    if is_transient(&e)
                        && !matches!(e, ureq::Error::Timeout(_))
                        && attempt < self.config.retries
                    {
                        self.backoff(attempt)
                    } else {
                        return Err(self.http_error(scope, &u, &e, &req));
                    }
                }
            };
            self.sleep(scope, wait, &url)?;
            attempt += 1;
        };
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            let who = match &creds {
                Some(c) => format!("as {:?}", c.username()),
                None => "anonymously (no credentials found for this registry)".to_string(),
            };
            let msg = registry_message(&mut resp);
            return Err(Error::Unauthorized {
                url: realm,
                message: format!(
                    "token for {} refused {who}: {msg}",
                    scope.token_scopes().join(" ")
                ),
            });
        }
        if status != 200 {
            return Err(status_error("GET", &realm, resp));
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let bytes = read_small(&mut resp, &realm)?;
        let t: TokenResponse = crate::layout::parse_json(&bytes, &realm)?;
        let token = t
            .token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Unauthorized {
                url: realm.clone(),
                message: "the token server's answer has no token".into(),
            })?;
        // Docker's token spec: a missing expires_in means 60 seconds.
        let ttl = Duration::from_secs(t.expires_in.unwrap_or(60).clamp(10, 24 * 3600));
        Ok((token, ttl))
    }

    /// Remembers what a 401 asked for; returns false when there is nothing new to try.
    fn learn(&self, scope: &Scope, resp: &HttpResponse) -> bool {
        let challenges: Vec<Challenge> = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect();
        let chosen = challenges
            .iter()
            .find(|c| c.scheme == "bearer")
            .or_else(|| challenges.iter().find(|c| c.scheme == "basic"))
            .cloned();
        let Some(chosen) = chosen else { return false };
        let mut auth = lock(&self.auth);
        let state = auth.entry(scope.host.clone()).or_default();
        state.tokens.remove(&scope.token_scopes().join(" "));
        state.challenge = Some(chosen);
        true
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .config
            .backoff
            .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX));
        // A little jitter so that concurrent downloads do not retry in lockstep.
        let jitter = Duration::from_millis(
            (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos()) as u64)
                % (self.config.backoff.as_millis() as u64 / 4 + 1),
        );
        exp.min(self.config.max_backoff) + jitter
    }

    /// How long to wait before retrying a transient status, or `None` when retries are
    /// used up. A `Retry-After` in seconds (distribution-spec "Error Codes", 429) is honoured
    /// up to the maximum backoff.
    fn wait_for(&self, attempt: u32, resp: &HttpResponse) -> Option<Duration> {
        if attempt >= self.config.retries {
            return None;
        }
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(self.config.max_backoff));
        Some(self.backoff(attempt).max(retry_after.unwrap_or_default()))
    }

    /// The absolute URL of a request target.
    pub fn url(&self, scope: &Scope, target: &str) -> Result<String> {
        if target.starts_with("http://") || target.starts_with("https://") {
            return Ok(target.to_string());
        }
        Ok(format!("{}{target}", self.base(&scope.host)?))
    }

    /// Sends a request, authenticating as the registry asks and retrying transient failures
    /// (connection errors, 429, 500, 502, 503, 504) with exponential backoff. Returns the
    /// response for any other status; 401 (after authenticating) and 403 become
    /// [`Error::Unauthorized`] and [`Error::Denied`]. A timeout of a request that is not a
    /// blob transfer is reported at once (see [`super::ClientBuilder::request_timeout`]).
    pub fn send(&self, scope: &Scope, req: &Request<'_>) -> Result<HttpResponse> {
        let mut attempt = 0u32;
        let mut reauthenticated = false;
        loop {
            let url = match self.url(scope, &req.target) {
                Ok(u) => u,
                Err(e) if req.retry && attempt < self.config.retries => {
                    self.sleep(scope, self.backoff(attempt), &format!("{}/v2/", scope.host))?;
                    attempt += 1;
                    let _ = e;
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.check_deadline(scope, &url)?;
            // Credentials go only to the registry's own origin (scheme, host and port): an
            // absolute upload location or a redirect may point elsewhere.
            let registry = origin(&self.base(&scope.host)?);
            let authz = if registry.is_some() && origin(&url) == registry {
                self.authorization(scope)?
            } else {
                None
            };
            let auth = authz.as_deref().zip(registry.as_ref());
            let wait = match self.exchange(scope, &url, req, auth) {
                Err(Failure::Other(e)) => return Err(e),
                Err(Failure::Http(u, e)) => {
                    let timed_out = matches!(e, ureq::Error::Timeout(_));
                    if req.retry
                        && is_transient(&e)
                        && (!timed_out || req.streaming)
                        && attempt < self.config.retries
                    {
                        self.backoff(attempt)
                    } else {
                        return Err(self.http_error(scope, &u, &e, req));
                    }
                }
                Ok((mut resp, at)) => match resp.status().as_u16() {
                    401 if origin(&at) == registry
                        && !reauthenticated
                        && self.learn(scope, &resp) =>
                    {
                        reauthenticated = true;
                        continue;
                    }
                    401 => {
                        let who = match self.credentials(scope)? {
                            Some(c) => format!(" (credentials of {:?} were tried)", c.username()),
                            None => " (no credentials found for this registry)".to_string(),
                        };
                        let msg = registry_message(&mut resp);
                        return Err(Error::Unauthorized {
                            url,
                            message: format!("{msg}{who}"),
                        });
                    }
                    403 => {
                        let message = registry_message(&mut resp);
                        return Err(Error::Denied { url, message });
                    }
                    s if is_transient_status(s) && req.retry => match self.wait_for(attempt, &resp)
                    {
                        Some(w) => w,
                        None => return Err(status_error(req.method.as_str(), &url, resp)),
                    },
                    _ => return Ok(resp),
                },
            };
            self.sleep(scope, wait, &url)?;
            attempt += 1;
        }
    }

    /// Sleeps before a retry, but not past the deadline.
    pub fn sleep(&self, scope: &Scope, wait: Duration, url: &str) -> Result<()> {
        if let Some(d) = scope.deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left <= wait {
                std::thread::sleep(left);
                return Err(self.deadline_error(url, "before the next retry"));
            }
        }
        std::thread::sleep(wait);
        Ok(())
    }

    /// [`Error::Timeout`] for the operation's deadline, if it has passed.
    pub fn check_deadline(&self, scope: &Scope, url: &str) -> Result<()> {
        match scope.deadline {
            Some(d) if Instant::now() >= d => Err(self.deadline_error(url, "")),
            _ => Ok(()),
        }
    }

    fn deadline_error(&self, url: &str, detail: &str) -> Error {
        Error::Timeout {
            url: url.to_string(),
            what: "deadline",
            limit: self.config.deadline.unwrap_or_default(),
            detail: detail.to_string(),
        }
    }

    /// The error for a failed exchange: a timeout names the deadline that fired and its value.
    fn http_error(&self, scope: &Scope, url: &str, e: &ureq::Error, req: &Request<'_>) -> Error {
        match e {
            ureq::Error::Timeout(kind) => self.timeout_error(scope, url, *kind, req.streaming),
            other => transport_error(url, other),
        }
    }

    /// Maps a timeout of the HTTP library to the setting that caused it.
    pub fn timeout_error(
        &self,
        scope: &Scope,
        url: &str,
        kind: ureq::Timeout,
        streaming: bool,
    ) -> Error {
        use ureq::Timeout as T;
        let (what, limit) = match kind {
            T::Resolve | T::Connect => ("connect timeout", self.config.connect_timeout),
            T::PerRead | T::PerWrite => ("read timeout", self.config.read_timeout),
            _ if scope
                .deadline
                .is_some_and(|d| streaming || d <= Instant::now() + Duration::from_millis(100)) =>
            {
                return self.deadline_error(url, "")
            }
            _ => ("request timeout", self.config.request_timeout),
        };
        Error::Timeout {
            url: url.to_string(),
            what,
            limit,
            detail: String::new(),
        }
    }

    /// One request, following redirects (at most [`MAX_REDIRECTS`]) by hand:
    /// `Authorization` (`auth`: the value and the origin it was issued for) goes only to that
    /// exact origin; a `Location` that is not http(s), or plain HTTP to a host that is not
    /// insecure, is refused. Returns the response and the URL that gave it.
    fn exchange(
        &self,
        scope: &Scope,
        url: &str,
        req: &Request<'_>,
        auth: Option<(&str, &Origin)>,
    ) -> std::result::Result<(HttpResponse, String), Failure> {
        let mut url = url.to_string();
        let mut method = req.method;
        let mut body_dropped = false;
        for _ in 0..=MAX_REDIRECTS {
            let authz = auth
                .filter(|(_, o)| origin(&url).as_ref() == Some(*o))
                .map(|(a, _)| a);
            let resp = self
                .send_once(scope, &url, method, req, body_dropped, authz)
                .map_err(|e| Failure::Http(url.clone(), e))?;
            let status = resp.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return Ok((resp, url));
            }
            let Some(location) = header(&resp, "location") else {
                return Ok((resp, url));
            };
            let next = resolve_location(&url, &location).map_err(Failure::Other)?;
            self.check_location(&url, &location, &next)
                .map_err(Failure::Other)?;
            // RFC 9110 section 15.4.4: 303 means "GET what is there".
            if status == 303 && method != Method::Head {
                method = Method::Get;
                body_dropped = true;
            }
            url = next;
        }
        Err(Failure::Other(Error::Transport {
            url,
            message: format!("more than {MAX_REDIRECTS} redirects"),
        }))
    }

    /// A redirect or upload location must be http(s), and plain HTTP only to a host that may
    /// be reached that way.
    pub fn check_location(&self, from: &str, location: &str, next: &str) -> Result<()> {
        let refuse = |reason: &str| Error::BadLocation {
            url: from.to_string(),
            location: location.to_string(),
            reason: reason.to_string(),
        };
        let host = url_host(next).ok_or_else(|| refuse("not an http(s) URL"))?;
        if next.starts_with("http://") && !self.is_insecure(&host) {
            return Err(refuse(
                "plain HTTP to a host that is not localhost or an insecure registry",
            ));
        }
        Ok(())
    }

    fn send_once(
        &self,
        scope: &Scope,
        url: &str,
        method: Method,
        req: &Request<'_>,
        body_dropped: bool,
        authz: Option<&str>,
    ) -> std::result::Result<HttpResponse, ureq::Error> {
        let host = url_host(url).unwrap_or_default();
        let agent = if self.is_insecure(&host) {
            &self.insecure_agent
        } else {
            &self.agent
        };
        let left = scope
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()));
        let global = if req.streaming {
            left
        } else {
            Some(left.map_or(self.config.request_timeout, |l| {
                l.min(self.config.request_timeout)
            }))
        };
        let configure = |r| agent.configure_request(r).timeout_global(global).build();
        let mut b = http::Request::builder().method(method.as_str()).uri(url);
        for (k, v) in &req.headers {
            b = b.header(*k, v.as_str());
        }
        if let Some(a) = authz {
            b = b.header("Authorization", a);
        }
        let body = if body_dropped {
            &Body::Empty
        } else {
            &req.body
        };
        match body {
            Body::Empty => {
                if matches!(method, Method::Post | Method::Put | Method::Patch) {
                    b = b.header("Content-Length", "0");
                }
                agent.run(configure(b.body(ureq::SendBody::none())?))
            }
            Body::Bytes(bytes) => {
                b = b.header("Content-Length", bytes.len().to_string());
                let owned = bytes.to_vec();
                let body = ureq::SendBody::from_owned_reader(std::io::Cursor::new(owned));
                agent.run(configure(b.body(body)?))
            }
            Body::File { path, offset, len } => {
                let mut f = std::fs::File::open(path)?;
                f.seek(SeekFrom::Start(*offset))?;
                b = b.header("Content-Length", len.to_string());
                let body = ureq::SendBody::from_owned_reader(f.take(*len));
                agent.run(configure(b.body(body)?))
            }
        }
    }
}

/// How many redirects a request follows.
const MAX_REDIRECTS: usize = 10;

/// Why an exchange failed: below HTTP (at that URL), or a refused redirect.
pub(crate) enum Failure {
    Http(String, ureq::Error),
    Other(Error),
}

/// An origin (RFC 6454): scheme, host, port.
pub(crate) type Origin = (String, String, u16);

/// The origin of an absolute http(s) URL, with the scheme's default port made explicit.
pub(crate) fn origin(url: &str) -> Option<Origin> {
    let scheme = if url.starts_with("https://") {
        "https"
    } else if url.starts_with("http://") {
        "http"
    } else {
        return None;
    };
    let authority = url_host(url)?;
    let default = if scheme == "https" { 443 } else { 80 };
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default,
        };
        (format!("[{h}]"), port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (authority.clone(), default),
        }
    };
    Some((scheme.to_string(), host, port))
}

/// Resolves a `Location` against the URL of the request that answered with it (RFC 9110
/// section 10.2.2, RFC 3986 section 5): absolute http(s) URLs as they are, a path against
/// the request's origin. Any other scheme (`file:`, `ftp:`…) is refused, never read as a
/// path.
pub(crate) fn resolve_location(from: &str, location: &str) -> Result<String> {
    let location = location.trim();
    let refuse = |reason: &str| Error::BadLocation {
        url: from.to_string(),
        location: location.to_string(),
        reason: reason.to_string(),
    };
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let (scheme, rest) = location.split_once("://").unwrap_or(("", location));
        return Ok(format!("{}://{rest}", scheme.to_ascii_lowercase()));
    }
    // RFC 3986 section 3.1: a scheme is ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":".
    let scheme_end = location.find(':');
    let first_delim = location.find(['/', '?', '#']);
    if let Some(i) = scheme_end {
        let candidate = &location[..i];
        if first_delim.is_none_or(|d| i < d)
            && candidate.starts_with(|c: char| c.is_ascii_alphabetic())
            && candidate
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(refuse("only http and https locations are followed"));
        }
    }
    let (scheme, _) = from
        .split_once("://")
        .ok_or_else(|| refuse("bad base URL"))?;
    let authority = url_host(from).ok_or_else(|| refuse("bad base URL"))?;
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Ok(format!("{scheme}://{authority}{location}"));
    }
    // A relative path: against the directory of the request's path.
    let after = &from[scheme.len() + 3..];
    let path_start = after.find('/').unwrap_or(after.len());
    let path = &after[path_start..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    Ok(format!("{scheme}://{authority}{dir}{location}"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn bad_url(url: &str, e: impl std::fmt::Display) -> Error {
    Error::Transport {
        url: url.to_string(),
        message: format!("invalid request: {e}"),
    }
}

/// Failures worth another try: the connection, not the request, went wrong.
pub(crate) fn is_transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
    )
}

/// 429 and the 5xx statuses that mean "try again" (RFC 9110 section 15.6).
pub(crate) fn is_transient_status(s: u16) -> bool {
    matches!(s, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Whether an error from a registry operation is worth retrying as a whole.
pub(crate) fn is_transient_error(e: &Error) -> bool {
    match e {
        Error::Transport { .. } => true,
        // A stalled or too slow transfer is tried again (resuming); a passed deadline is not.
        Error::Timeout { what, .. } => *what != "deadline",
        Error::RegistryStatus { status, .. } => is_transient_status(*status),
        Error::Io { source, .. } => matches!(
            source.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::Interrupted
        ),
        _ => false,
    }
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => format!("I/O error: {io}"),
        other => other.to_string(),
    }
}

pub(crate) fn transport_error(url: &str, e: &ureq::Error) -> Error {
    Error::Transport {
        url: url.to_string(),
        message: describe(e),
    }
}

/// An error for an unexpected status, with what the registry said.
pub(crate) fn status_error(method: &str, url: &str, mut resp: HttpResponse) -> Error {
    let status = resp.status().as_u16();
    let message = registry_message(&mut resp);
    Error::RegistryStatus {
        method: method.to_string(),
        url: url.to_string(),
        status,
        message,
    }
}

/// An error for a response that should have succeeded: 404 becomes
/// [`Error::RegistryNotFound`] naming `what`, anything else [`Error::RegistryStatus`].
pub(crate) fn response_error(method: &str, url: &str, what: &str, mut resp: HttpResponse) -> Error {
    if resp.status().as_u16() == 404 {
        return Error::RegistryNotFound {
            what: what.to_string(),
            url: url.to_string(),
            message: registry_message(&mut resp),
        };
    }
    status_error(method, url, resp)
}

impl Transport {
    /// [`read_body`] of a request that is not a blob transfer, with a timeout reported as the
    /// request timeout (or the deadline) that fired.
    pub fn read_body(
        &self,
        scope: &Scope,
        resp: &mut HttpResponse,
        url: &str,
        limit: u64,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        match resp
            .body_mut()
            .as_reader()
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
        {
            Ok(_) => Ok(out),
            Err(e) => match e.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>()) {
                Some(ureq::Error::Timeout(kind)) => {
                    Err(self.timeout_error(scope, url, *kind, false))
                }
                _ => Err(Error::Transport {
                    url: url.to_string(),
                    message: format!("reading the response: {e}"),
                }),
            },
        }
    }
}

/// Reads at most `limit + 1` bytes of a body, so that the caller can tell a body over the
/// limit without reading all of it.
pub(crate) fn read_body(resp: &mut HttpResponse, url: &str, limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| Error::Transport {
            url: url.to_string(),
            message: format!("reading the response: {e}"),
        })?;
    Ok(out)
}

/// A response header as a string.
pub(crate) fn header(resp: &HttpResponse, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Reads a small body (an error, a token) with a size cap.
pub(crate) fn read_small(resp: &mut HttpResponse, url: &str) -> Result<Vec<u8>> {
    let out = read_body(resp, url, MAX_SMALL_BODY)?;
    if out.len() as u64 > MAX_SMALL_BODY {
        return Err(Error::Transport {
            url: url.to_string(),
            message: format!("response larger than {MAX_SMALL_BODY} bytes"),
        });
    }
    Ok(out)
}

/// What a registry said in an error body: the distribution-spec's `{"errors": [{"code",
/// "message", "detail"}]}` ("Error Codes") as `CODE: message`, or the start of a text body.
pub(crate) fn registry_message(resp: &mut HttpResponse) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let mut bytes = Vec::new();
    let _ = resp
        .body_mut()
        .as_reader()
        .take(64 * 1024)
        .read_to_end(&mut bytes);
    if let Ok(e) = serde_json::from_slice::<Errors>(&bytes) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|e| {
                let code = e.code.as_deref().unwrap_or("ERROR");
                match e.message.as_deref() {
                    Some(m) if !m.is_empty() => format!("{code}: {m}"),
                    _ => code.to_string(),
                }
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .filter(|c| !c.is_control() || *c == ' ')
        .take(200)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {}", resp.status())
    } else {
        text.to_string()
    }
}

/// The `host[:port]` of an absolute URL.
pub(crate) fn url_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // Drop userinfo, never sent as credentials.
    let host = authority.rsplit('@').next().unwrap_or(authority);
    Some(host.to_ascii_lowercase())
}

fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Percent-encodes a query value (RFC 3986 section 3.4), leaving the characters that token
/// scopes use (`:`, `/`, `,`) readable.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/,@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            url_host("http://127.0.0.1:5000/v2/x").unwrap(),
            "127.0.0.1:5000"
        );
        assert_eq!(url_host("https://u:p@Reg.io?x").unwrap(), "reg.io");
        assert_eq!(url_host("ftp://x"), None);
        assert_eq!(host_without_port("[::1]:5000"), "::1");
        assert_eq!(host_without_port("localhost:5000"), "localhost");
        assert_eq!(host_without_port("reg.io"), "reg.io");
        assert_eq!(
            query_escape("repository:a/b:pull push"),
            "repository:a/b:pull%20push"
        );
    }

    #[test]
    fn origins_include_scheme_and_port() {
        let o = |u| origin(u).unwrap();
        assert_eq!(
            o("https://reg.io/v2/"),
            ("https".into(), "reg.io".into(), 443)
        );
        assert_eq!(o("https://reg.io:443/x"), o("https://reg.io/y"));
        assert_ne!(o("http://127.0.0.1:5105/"), o("http://127.0.0.1:5106/"));
        assert_ne!(o("http://reg.io/"), o("https://reg.io/"));
        assert_eq!(
            o("http://[::1]:5000/v2/"),
            ("http".into(), "[::1]".into(), 5000)
        );
        assert_eq!(origin("file:///etc/passwd"), None);
    }

    #[test]
    fn locations_resolve_against_the_request_and_other_schemes_are_refused() {
        let from = "http://127.0.0.1:5000/v2/repo/blobs/uploads/?x=1";
        let r = |l| resolve_location(from, l);
        assert_eq!(
            r("/v2/repo/blobs/uploads/abc").unwrap(),
            "http://127.0.0.1:5000/v2/repo/blobs/uploads/abc"
        );
        assert_eq!(
            r("abc?s=1").unwrap(),
            "http://127.0.0.1:5000/v2/repo/blobs/uploads/abc?s=1"
        );
        assert_eq!(r("HTTPS://other:1/p").unwrap(), "https://other:1/p");
        assert_eq!(r("//other:2/p").unwrap(), "http://other:2/p");
        for bad in [
            "file:///etc/passwd",
            "ftp://x/y",
            "data:,hi",
            "javascript:alert(1)",
        ] {
            assert!(matches!(r(bad), Err(Error::BadLocation { .. })), "{bad}");
        }
    }
}
