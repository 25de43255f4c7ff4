//! Image references: `[registry/]repository[:tag][@digest]`.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::Digest;

use crate::digest::parse_digest;
use crate::error::{Error, Result};

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";

/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Longest `registry/repository` accepted (distribution-spec "Pulling manifests",
/// implementers' note: many clients limit the name to 255 characters).
const MAX_NAME: usize = 255;

/// A parsed image reference: which registry, which repository, and a tag, a digest or both.
///
/// Parsing follows Docker's rules, which every other tool shares: the first path component is
/// a registry if it contains `.` or `:`, is `localhost`, or has upper-case letters; otherwise
/// the default registry is meant (Docker Hub unless [`Reference::parse_with_default`] names
/// another), and a one-component Docker Hub name gets `library/` in front. A reference without
/// tag or digest means the tag `latest`. Repository names follow the distribution-spec's
/// grammar for `<name>` and tags its grammar for `<tag-or-digest>` ("Pulling manifests").
///
/// ```
/// use oci_image::registry::Reference;
///
/// let r: Reference = "busybox".parse()?;
/// assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
/// assert_eq!(r.api_host(), "registry-1.docker.io");
///
/// let r: Reference = "127.0.0.1:5000/team/app:v1".parse()?;
/// assert_eq!((r.registry(), r.repository(), r.tag()), ("127.0.0.1:5000", "team/app", Some("v1")));
///
/// let r = Reference::parse_with_default("app", "registry.example.com")?;
/// assert_eq!(r.to_string(), "registry.example.com/app:latest");
/// # Ok::<(), oci_image::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses `s`, taking `default_registry` for names without a registry component.
    ///
    /// ```
    /// let r = oci_image::registry::Reference::parse_with_default("tools/jq:1.7", "localhost:5000")?;
    /// assert_eq!(r.to_string(), "localhost:5000/tools/jq:1.7");
    /// # Ok::<(), oci_image::Error>(())
    /// ```
    pub fn parse_with_default(s: &str, default_registry: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidReference {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (
                rest,
                Some(parse_digest(d).map_err(|e| bad(&e.to_string()))?),
            ),
            None => (s, None),
        };
        // A tag is a ':' in the last path component (a ':' before the last '/' is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.bytes().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (default_registry.to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | DOCKER_HUB_API => DOCKER_HUB.to_string(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        check_registry(&registry).map_err(|r| bad(&r))?;
        check_repository(&repository).map_err(|r| bad(&r))?;
        if registry.len() + 1 + repository.len() > MAX_NAME {
            return Err(bad(&format!(
                "registry and repository are longer than {MAX_NAME} characters"
            )));
        }
        if let Some(t) = &tag {
            check_tag(t).map_err(|r| bad(&r))?;
        }
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t,
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry as written in references (`docker.io`, `quay.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host (and port) that serves the registry's API: the registry itself, except
    /// `registry-1.docker.io` for Docker Hub.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The repository (`<name>` in the distribution-spec), e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference has one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What goes after `/manifests/` in a request: the digest when there is one (it is the
    /// more precise), otherwise the tag.
    pub fn tag_or_digest(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same repository with another tag (and no digest).
    ///
    /// ```
    /// let r: oci_image::registry::Reference = "quay.io/a/b@sha256:4413\
    ///     6fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a".parse()?;
    /// assert_eq!(r.with_tag("v2")?.to_string(), "quay.io/a/b:v2");
    /// # Ok::<(), oci_image::Error>(())
    /// ```
    pub fn with_tag(&self, tag: &str) -> Result<Self> {
        check_tag(tag).map_err(|reason| Error::InvalidReference {
            reference: format!("{}/{}:{tag}", self.registry, self.repository),
            reason,
        })?;
        Ok(Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository with a digest (and no tag).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl FromStr for Reference {
    type Err = Error;

    /// Parses with Docker Hub as the default registry.
    fn from_str(s: &str) -> Result<Self> {
        Self::parse_with_default(s, DOCKER_HUB)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `host[:port]`, a DNS name, an IPv4 address or a bracketed IPv6 address.
fn check_registry(r: &str) -> std::result::Result<(), String> {
    let (host, port) = if let Some(rest) = r.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, p))
                if !h.is_empty() && h.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') =>
            {
                (h, p.strip_prefix(':'))
            }
            _ => return Err(format!("registry {r:?} is not a valid host")),
        }
    } else {
        match r.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (r, None),
        }
    };
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("registry {r:?} has an invalid port"));
        }
    }
    let ok_host = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b':')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok_host || r.starts_with('[') {
        Ok(())
    } else {
        Err(format!("registry {r:?} is not a valid host"))
    }
}

/// distribution-spec "Pulling manifests": `<name>` matches
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
fn check_repository(name: &str) -> std::result::Result<(), String> {
    let bad = |why: &str| Err(format!("repository {name:?}: {why}"));
    if name.is_empty() {
        return bad("empty");
    }
    for component in name.split('/') {
        let b = component.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        if b.is_empty() {
            return bad("empty path component");
        }
        if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return bad("components must start and end with a lower-case letter or digit");
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            // A separator: '.', '_', '__' or one or more '-'.
            let start = i;
            match b[i] {
                b'.' => i += 1,
                b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
                b'-' => {
                    while b.get(i) == Some(&b'-') {
                        i += 1;
                    }
                }
                c => {
                    return bad(&format!(
                        "character {:?} is not allowed (only a-z, 0-9, '.', '_', '-')",
                        c as char
                    ))
                }
            }
            if !b.get(i).copied().is_some_and(alnum) {
                return bad(&format!(
                    "separator {:?} must be followed by a letter or digit",
                    &component[start..i]
                ));
            }
        }
    }
    Ok(())
}

/// distribution-spec "Pulling manifests": a tag matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
fn check_tag(tag: &str) -> std::result::Result<(), String> {
    let b = tag.as_bytes();
    let word = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    if b.is_empty() || b.len() > 128 {
        return Err(format!("tag {tag:?} must be 1 to 128 characters"));
    }
    if !word(&b[0]) || !b.iter().all(|c| word(c) || *c == b'.' || *c == b'-') {
        return Err(format!(
            "tag {tag:?} must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_hub_short_names() {
        assert_eq!(p("busybox").to_string(), "docker.io/library/busybox:latest");
        assert_eq!(p("user/app:1").to_string(), "docker.io/user/app:1");
        assert_eq!(
            p("index.docker.io/busybox").to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(p("docker.io/busybox").api_host(), DOCKER_HUB_API);
    }

    #[test]
    fn registries_ports_tags_digests() {
        let d = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        let r = p(&format!("localhost:5000/a/b:v1@{d}"));
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "a/b");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest().unwrap().to_string(), d);
        assert_eq!(r.tag_or_digest(), d);
        let r = p(&format!("localhost/a@{d}"));
        assert_eq!((r.registry(), r.tag()), ("localhost", None));
        assert_eq!(p("[::1]:5000/x").registry(), "[::1]:5000");
        assert_eq!(p("Registry/x").registry(), "Registry");
        assert_eq!(p("a.b/c__d-e.f/g---h:T_1.x-y").tag(), Some("T_1.x-y"));
    }

    #[test]
    fn bad_references() {
        for s in [
            "",
            "UPPER",
            "a//b",
            "a/b:",
            "a:b:c",
            "-a",
            "a_-b",
            "a/b@sha256:abc",
            "a/b@md5:d41d8cd98f00b204e9800998ecf8427e",
            "host:99999/a",
            "host:/a",
            "a/b:.tag",
            "a b",
            "../etc/passwd",
        ] {
            assert!(s.parse::<Reference>().is_err(), "{s:?} should be refused");
        }
        let long = format!("r.io/{}", "a".repeat(300));
        assert!(long.parse::<Reference>().is_err());
        let long_tag = format!("a:{}", "t".repeat(129));
        assert!(long_tag.parse::<Reference>().is_err());
    }
}
