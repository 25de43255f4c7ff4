//! Whole-layout validation, beyond what the JSON schemas in image-spec/schema check.
//!
//! Every descriptor reachable from `index.json` is checked (digest syntax and registered
//! algorithm, media type syntax, size and digest of the content, embedded `data`, the empty
//! descriptor, annotations), every manifest, index and config is parsed and checked against
//! the rules of manifest.md, image-index.md and config.md, and each problem names the file,
//! the digest and the JSON field it is about.

use std::collections::HashSet;
use std::fmt;
use std::io::Read;

use base64::Engine as _;
use oci_spec::image::{
    Descriptor, Digest, ImageConfiguration, ImageIndex, ANNOTATION_CREATED, ANNOTATION_REF_NAME,
};

use crate::digest::{check_registered, sha256_digest, Hasher};
use crate::error::Error;
use crate::layout::{blob_file_name, Layout, MAX_CONFIG_SIZE};
use crate::media_type::{self, is_valid_media_type, Kind, EMPTY_JSON_DIGEST};
use crate::resolve::MAX_INDEX_DEPTH;
use crate::write::check_tag;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A SHOULD of the spec is not met; tools will still read the layout.
    Warning,
    /// A MUST of the spec is broken, or content does not verify.
    Error,
}

/// One thing wrong with a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The file (`index.json`, `blobs/sha256/…`).
    pub file: String,
    /// The digest of the document or blob, when there is one.
    pub digest: Option<Digest>,
    /// The JSON path of the field (`manifests[0].platform.os`), or `.` for the whole file.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}: {}: {}", self.file, self.field, self.message)
    }
}

/// What [`Layout::validate`] found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every problem, in the order found.
    pub problems: Vec<Problem>,
    /// Distinct blobs whose size and digest were verified.
    pub blobs_verified: usize,
    /// Manifests checked.
    pub manifests: usize,
    /// Indexes checked (not counting `index.json`).
    pub indexes: usize,
}

impl Report {
    /// True when there is no problem of severity [`Severity::Error`].
    pub fn is_valid(&self) -> bool {
        self.errors().next().is_none()
    }

    /// The problems of severity [`Severity::Error`].
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }
}

/// Options for [`Layout::validate_with`].
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// Hash every blob (including layers) to check its digest; sizes are always checked.
    pub verify_content: bool,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        Self {
            verify_content: true,
        }
    }
}

impl Layout {
    /// Validates everything reachable from `index.json`, hashing every blob.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), oci_image::Error> {
    /// let report = oci_image::Layout::open("image")?.validate();
    /// for p in &report.problems {
    ///     eprintln!("{p}");
    /// }
    /// assert!(report.is_valid());
    /// # Ok(()) }
    /// ```
    pub fn validate(&self) -> Report {
        self.validate_with(&ValidateOptions::default())
    }

    /// Validates with options.
    pub fn validate_with(&self, options: &ValidateOptions) -> Report {
        let mut v = Validator {
            layout: self,
            options,
            report: Report::default(),
            verified: HashSet::new(),
            visited: HashSet::new(),
        };
        v.top();
        v.report
    }
}

impl Layout {
    /// Validates one manifest or index (a descriptor not necessarily listed in `index.json`)
    /// and everything it reaches, with the rules of [`Layout::validate`]. A pull runs this
    /// before it tags what it wrote.
    pub fn validate_descriptor(&self, d: &Descriptor, options: &ValidateOptions) -> Report {
        let mut v = Validator {
            layout: self,
            options,
            report: Report::default(),
            verified: HashSet::new(),
            visited: HashSet::new(),
        };
        let at = At {
            file: format!("descriptor of {}", d.digest()),
            digest: None,
        };
        if v.descriptor(&at, "", d, true) {
            match media_type::kind(d.media_type()) {
                Kind::Manifest => v.manifest(d),
                Kind::Index => v.nested_index(&at, "", d, &mut Vec::new()),
                _ => v.error(
                    &at,
                    "mediaType",
                    format!("{} is neither a manifest nor an index", d.media_type()),
                ),
            }
        }
        v.report
    }
}

struct Validator<'a> {
    layout: &'a Layout,
    options: &'a ValidateOptions,
    report: Report,
    verified: HashSet<Digest>,
    visited: HashSet<Digest>,
}

/// Where a problem is: file, digest of that file, and the field prefix inside it.
#[derive(Clone)]
struct At {
    file: String,
    digest: Option<Digest>,
}

impl Validator<'_> {
    fn push(&mut self, severity: Severity, at: &At, field: &str, message: impl Into<String>) {
        self.report.problems.push(Problem {
            severity,
            file: at.file.clone(),
            digest: at.digest.clone(),
            field: if field.is_empty() {
                ".".into()
            } else {
                field.into()
            },
            message: message.into(),
        });
    }

    fn error(&mut self, at: &At, field: &str, message: impl Into<String>) {
        self.push(Severity::Error, at, field, message)
    }

    fn warn(&mut self, at: &At, field: &str, message: impl Into<String>) {
        self.push(Severity::Warning, at, field, message)
    }

    /// Records an `Error` from a read or parse as a problem at the place it names.
    fn record_error(&mut self, at: &At, field: &str, e: Error) {
        match e {
            Error::Json {
                file,
                field: f,
                message,
            } => {
                let at = At {
                    file,
                    digest: at.digest.clone(),
                };
                self.error(&at, &f, message)
            }
            other => self.error(at, field, other.to_string()),
        }
    }

    fn top(&mut self) {
        let at = At {
            file: "index.json".into(),
            digest: None,
        };
        let index = match self.layout.index() {
            Ok(i) => i,
            Err(e) => return self.record_error(&at, "", e),
        };
        if let Some(mt) = index.media_type() {
            if mt.as_ref() != "application/vnd.oci.image.index.v1+json" {
                self.error(
                    &at,
                    "mediaType",
                    format!("index.json must be an OCI image index, found {mt}"),
                );
            }
        }
        self.index_body(&at, &index, &mut Vec::new());
        // Tags must be unique per platform-less name; duplicates make resolution ambiguous.
        let mut tags = HashSet::new();
        for (i, d) in index.manifests().iter().enumerate() {
            if let Some(t) = crate::resolve::ref_name(d) {
                if d.platform().is_none() && !tags.insert(t.to_string()) {
                    self.warn(
                        &at,
                        &format!("manifests[{i}].annotations"),
                        format!("tag {t:?} names more than one descriptor"),
                    );
                }
            }
        }
    }

    fn index_body(&mut self, at: &At, index: &ImageIndex, chain: &mut Vec<Digest>) {
        if index.schema_version() != 2 {
            self.error(
                at,
                "schemaVersion",
                format!("must be 2, found {}", index.schema_version()),
            );
        }
        self.annotations(at, "annotations", index.annotations().as_ref());
        if let Some(s) = index.subject() {
            self.descriptor(at, "subject", s, false);
        }
        for (i, d) in index.manifests().iter().enumerate() {
            let field = format!("manifests[{i}]");
            if !self.descriptor(at, &field, d, true) {
                continue;
            }
            match media_type::kind(d.media_type()) {
                Kind::Manifest => self.manifest(d),
                Kind::Index => self.nested_index(at, &field, d, chain),
                Kind::Schema1 => self.error(
                    at,
                    &format!("{field}.mediaType"),
                    "Docker schema 1 manifests are not supported",
                ),
                _ => self.warn(
                    at,
                    &format!("{field}.mediaType"),
                    format!("{} is neither a manifest nor an index", d.media_type()),
                ),
            }
        }
    }

    fn nested_index(&mut self, at: &At, field: &str, d: &Descriptor, chain: &mut Vec<Digest>) {
        if chain.contains(d.digest()) {
            let msg = Error::IndexCycle {
                digest: d.digest().clone(),
                chain: chain.iter().map(|c| c.to_string()).collect(),
            };
            return self.error(at, field, msg.to_string());
        }
        if chain.len() >= MAX_INDEX_DEPTH {
            return self.error(
                at,
                field,
                format!("image indexes nest deeper than {MAX_INDEX_DEPTH} levels"),
            );
        }
        if !self.visited.insert(d.digest().clone()) {
            return;
        }
        self.report.indexes += 1;
        let here = At {
            file: blob_file_name(d.digest()),
            digest: Some(d.digest().clone()),
        };
        match self.layout.read_index(d) {
            Ok(index) => {
                chain.push(d.digest().clone());
                self.index_body(&here, &index, chain);
                chain.pop();
            }
            Err(e) => self.record_error(&here, "", e),
        }
    }

    fn manifest(&mut self, d: &Descriptor) {
        if !self.visited.insert(d.digest().clone()) {
            return;
        }
        self.report.manifests += 1;
        let at = At {
            file: blob_file_name(d.digest()),
            digest: Some(d.digest().clone()),
        };
        let m = match self.layout.read_manifest(d) {
            Ok(m) => m,
            Err(e) => return self.record_error(&at, "", e),
        };
        if m.media_type().is_none() {
            self.warn(&at, "mediaType", "should be set (manifest.md)");
        }
        self.annotations(&at, "annotations", m.annotations().as_ref());
        if let Some(t) = m.artifact_type() {
            if !is_valid_media_type(t.as_ref()) {
                self.error(
                    &at,
                    "artifactType",
                    format!("{t} is not a valid media type (RFC 6838)"),
                );
            }
        }
        let config = m.config();
        let config_ok = self.descriptor(&at, "config", config, true);
        let config_kind = media_type::kind(config.media_type());
        if config_kind == Kind::Empty && m.artifact_type().is_none() {
            self.error(
                &at,
                "artifactType",
                "must be set when config.mediaType is the empty media type (manifest.md)",
            );
        }
        let is_image = config_kind == Kind::Config;
        if is_image && m.layers().is_empty() {
            self.warn(
                &at,
                "layers",
                "an image should have at least one layer (manifest.md)",
            );
        }
        for (i, l) in m.layers().iter().enumerate() {
            let field = format!("layers[{i}]");
            let kind = media_type::kind(l.media_type());
            let non_dist = matches!(
                kind,
                Kind::Layer {
                    non_distributable: true,
                    ..
                }
            );
            self.descriptor(&at, &field, l, !non_dist);
            if is_image && !matches!(kind, Kind::Layer { .. }) {
                self.warn(
                    &at,
                    &format!("{field}.mediaType"),
                    format!("{} is not a layer media type", l.media_type()),
                );
            }
        }
        if let Some(s) = m.subject() {
            self.descriptor(&at, "subject", s, false);
            if !matches!(
                media_type::kind(s.media_type()),
                Kind::Manifest | Kind::Index
            ) {
                self.error(
                    &at,
                    "subject.mediaType",
                    format!(
                        "a subject must be a manifest or index, found {}",
                        s.media_type()
                    ),
                );
            }
        }
        if is_image && config_ok {
            self.config(&at, config, m.layers().len());
        }
    }

    fn config(&mut self, manifest_at: &At, d: &Descriptor, layers: usize) {
        let at = At {
            file: blob_file_name(d.digest()),
            digest: Some(d.digest().clone()),
        };
        let c: ImageConfiguration = match self.layout.read_json(d, MAX_CONFIG_SIZE) {
            Ok(c) => c,
            Err(e) => return self.record_error(&at, "", e),
        };
        if c.architecture().to_string().is_empty() {
            self.error(&at, "architecture", "must not be empty");
        }
        if c.os().to_string().is_empty() {
            self.error(&at, "os", "must not be empty");
        }
        if c.rootfs().typ() != "layers" {
            self.error(
                &at,
                "rootfs.type",
                format!("must be \"layers\", found {:?}", c.rootfs().typ()),
            );
        }
        let diff_ids = c.rootfs().diff_ids();
        for (i, id) in diff_ids.iter().enumerate() {
            if let Err(e) = crate::digest::parse_digest(id) {
                self.error(&at, &format!("rootfs.diff_ids[{i}]"), e.to_string());
            }
        }
        if diff_ids.len() != layers {
            self.error(
                manifest_at,
                "layers",
                format!(
                    "{layers} layers but the config's rootfs.diff_ids has {} entries",
                    diff_ids.len()
                ),
            );
        }
        if let Some(h) = c.history() {
            let non_empty = h
                .iter()
                .filter(|e| !e.empty_layer().unwrap_or(false))
                .count();
            if non_empty != diff_ids.len() {
                self.warn(
                    &at,
                    "history",
                    format!(
                        "{non_empty} entries are not empty_layer but there are {} diff_ids",
                        diff_ids.len()
                    ),
                );
            }
        }
        if let Some(created) = c.created() {
            if !is_rfc3339(created) {
                self.warn(
                    &at,
                    "created",
                    format!("{created:?} is not an RFC 3339 date-time"),
                );
            }
        }
    }

    /// Checks a descriptor and, if `must_exist`, the blob it names. Returns false if the
    /// descriptor cannot be followed.
    fn descriptor(&mut self, at: &At, field: &str, d: &Descriptor, must_exist: bool) -> bool {
        let mut ok = true;
        let mt = d.media_type().to_string();
        if !is_valid_media_type(&mt) {
            self.error(
                at,
                &format!("{field}.mediaType"),
                format!("{mt:?} is not a valid media type (RFC 6838)"),
            );
        }
        if let Some(t) = d.artifact_type() {
            if !is_valid_media_type(t.as_ref()) {
                self.error(
                    at,
                    &format!("{field}.artifactType"),
                    format!("{t} is not a valid media type (RFC 6838)"),
                );
            }
        }
        if let Err(e) = check_registered(d.digest()) {
            self.error(at, &format!("{field}.digest"), e.to_string());
            return false;
        }
        if media_type::kind(d.media_type()) == Kind::Empty
            && (d.digest().as_ref() != EMPTY_JSON_DIGEST || d.size() != 2)
        {
            self.error(at, field, format!("the empty descriptor must have size 2 and digest {EMPTY_JSON_DIGEST} (manifest.md)"));
        }
        self.annotations(
            at,
            &format!("{field}.annotations"),
            d.annotations().as_ref(),
        );
        if let Some(urls) = d.urls() {
            for (i, u) in urls.iter().enumerate() {
                if !u.contains("://") {
                    self.error(
                        at,
                        &format!("{field}.urls[{i}]"),
                        format!("{u:?} is not an absolute URI (RFC 3986)"),
                    );
                }
            }
        }
        if let Some(p) = d.platform() {
            if p.architecture().to_string().is_empty() || p.os().to_string().is_empty() {
                self.error(
                    at,
                    &format!("{field}.platform"),
                    "architecture and os must not be empty",
                );
            }
        }
        if let Some(data) = d.data() {
            match base64::engine::general_purpose::STANDARD.decode(data) {
                Ok(bytes) => {
                    let mut h = match Hasher::new(d.digest().algorithm()) {
                        Ok(h) => h,
                        Err(_) => return false,
                    };
                    h.update(&bytes);
                    if bytes.len() as u64 != d.size() || h.finish() != *d.digest() {
                        self.error(at, &format!("{field}.data"), "embedded data does not match the descriptor's size and digest (descriptor.md)");
                    }
                }
                Err(e) => self.error(at, &format!("{field}.data"), format!("not base64: {e}")),
            }
        }
        match self.layout.has_blob(d.digest()) {
            Ok(true) => ok &= self.verify_blob(at, field, d),
            Ok(false) if must_exist => {
                self.error(
                    at,
                    &format!("{field}.digest"),
                    format!("blob {} is not in the layout", d.digest()),
                );
                ok = false;
            }
            Ok(false) => ok = false,
            Err(e) => {
                self.record_error(at, field, e);
                ok = false;
            }
        }
        ok
    }

    fn verify_blob(&mut self, at: &At, field: &str, d: &Descriptor) -> bool {
        if self.verified.contains(d.digest()) {
            return true;
        }
        let result = self.layout.open_blob(d).and_then(|mut r| {
            if self.options.verify_content {
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    match r.read(&mut buf) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => return Err(Error::from_io(blob_file_name(d.digest()), e)),
                    }
                }
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                self.verified.insert(d.digest().clone());
                self.report.blobs_verified += 1;
                true
            }
            Err(e) => {
                self.error(at, field, crate::error::with_causes(&e));
                false
            }
        }
    }

    fn annotations(
        &mut self,
        at: &At,
        field: &str,
        a: Option<&std::collections::HashMap<String, String>>,
    ) {
        let Some(a) = a else { return };
        let mut keys: Vec<&String> = a.keys().collect();
        keys.sort();
        for k in keys {
            let v = &a[k];
            if k.is_empty() {
                self.error(
                    at,
                    field,
                    "annotation keys must not be empty (annotations.md)",
                );
            }
            if k == ANNOTATION_REF_NAME {
                if let Err(e) = check_tag(v) {
                    self.error(at, &format!("{field}.{k}"), e.to_string());
                }
            }
            if k == ANNOTATION_CREATED && !is_rfc3339(v) {
                self.error(
                    at,
                    &format!("{field}.{k}"),
                    format!("{v:?} is not an RFC 3339 date-time (annotations.md)"),
                );
            }
        }
    }
}

/// A structural RFC 3339 date-time check: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !matches!(b[10], b'T' | b't' | b' ')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            b.len() == i + 6 && digits(i + 1..i + 3) && b[i + 3] == b':' && digits(i + 4..i + 6)
        }
        _ => false,
    }
}

/// Checks content against the empty descriptor's rules: exactly `{}`.
pub fn is_empty_json(bytes: &[u8]) -> bool {
    bytes == b"{}" && sha256_digest(bytes).as_ref() == EMPTY_JSON_DIGEST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert!(is_rfc3339("2024-01-02T03:04:05Z"));
        assert!(is_rfc3339("2024-01-02T03:04:05.123456789+01:00"));
        assert!(!is_rfc3339("2024-01-02"));
        assert!(!is_rfc3339("2024-01-02T03:04:05"));
        assert!(!is_rfc3339("yesterday"));
    }

    #[test]
    fn empty_json_digest_is_right() {
        assert!(is_empty_json(b"{}"));
    }
}
