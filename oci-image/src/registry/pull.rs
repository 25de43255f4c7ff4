//! Pull: manifests with content negotiation, platform choice, blobs into the store.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};

use oci_spec::image::{Descriptor, Digest, MediaType};

use super::transport::{
    header, is_transient_error, response_error, HttpResponse, Method, Request, Scope,
};
use super::{parallel, Client, Progress, ProgressFn, PullOptions, Pulled, Reference};
use crate::digest::Hasher;
use crate::error::{Error, Result};
use crate::layout::{Layout, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE};
use crate::media_type::{self, Kind};
use crate::platform::PlatformSpec;
use crate::resolve::MAX_INDEX_DEPTH;

/// The manifest types this client reads, sent as `Accept` (distribution-spec "Pulling
/// manifests", content-negotiation.md). Docker's types are listed so that registries that
/// store them serve them as they are instead of converting to schema 1; indexes first so that
/// a multi-platform tag answers with its index rather than a registry-chosen platform.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// A manifest or index as fetched: its descriptor and exact bytes.
type Document = (Descriptor, Vec<u8>);

/// What the walk of an image collects before anything is written.
#[derive(Default)]
struct Plan {
    /// Manifests and indexes to store, children before parents.
    documents: Vec<Document>,
    /// Config and layer blobs, without duplicates.
    blobs: Vec<Descriptor>,
    seen_blobs: HashSet<Digest>,
    /// The image manifests.
    manifests: Vec<Descriptor>,
    /// The digests in `blobs` that are configs.
    configs: HashSet<Digest>,
}

impl Plan {
    fn add_blob(&mut self, d: &Descriptor) {
        if self.seen_blobs.insert(d.digest().clone()) {
            self.blobs.push(d.clone());
        }
    }
}

#[derive(Default)]
struct BlobOutcome {
    downloaded: bool,
    bytes: u64,
    resumed: u64,
}

impl Client {
    pub(super) fn scope(
        &self,
        r: &Reference,
        actions: &'static str,
        mount_from: Option<String>,
    ) -> Scope {
        Scope {
            registry: r.registry().to_string(),
            host: r.api_host().to_string(),
            repository: r.repository().to_string(),
            actions,
            mount_from,
            deadline: self
                .transport
                .config
                .deadline
                .map(|d| std::time::Instant::now() + d),
        }
    }

    /// Pulls `reference` into `layout`: the manifest (or the index and the manifest chosen
    /// for the platform, or with [`PullOptions::all_platforms`] all of them), the config and
    /// the layers; then tags it (see [`PullOptions::tag`]).
    ///
    /// Blobs are written before the manifests that reference them, and the tag last, so an
    /// interrupted pull leaves the layout as it was plus complete blobs and partial
    /// downloads, which the next pull reuses.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), oci_image::Error> {
    /// use oci_image::registry::{Client, PullOptions};
    /// let layout = oci_image::Layout::create("/tmp/images")?;
    /// let r = "localhost:5000/busybox:latest".parse()?;
    /// let pulled = Client::new().pull(&r, &layout, &PullOptions::default().tag("busybox"))?;
    /// let image = layout.resolve("busybox", None)?;
    /// assert_eq!(image.digest(), pulled.manifests[0].digest());
    /// # Ok(()) }
    /// ```
    pub fn pull(
        &self,
        reference: &Reference,
        layout: &Layout,
        options: &PullOptions,
    ) -> Result<Pulled> {
        // What this pull writes is not reachable from index.json until the tag: a lease keeps
        // a concurrent gc (here or in another process) from collecting it meanwhile.
        let lease = layout.lease()?;
        let scope = self.scope(reference, "pull", None);
        let (top, top_bytes) = self.fetch_manifest(&scope, reference, None)?;
        let mut plan = Plan::default();
        let stored = match media_type::kind(top.media_type()) {
            Kind::Index if options.all_platforms => {
                self.walk_all(&scope, reference, (top.clone(), top_bytes), 0, &mut plan)?;
                top.clone()
            }
            Kind::Index => {
                let host;
                let wanted = match &options.platform {
                    Some(p) => p,
                    None => {
                        host = PlatformSpec::host();
                        &host
                    }
                };
                let mut sel = Selection {
                    wanted,
                    seen: Vec::new(),
                    fetched: HashMap::new(),
                    indexes: HashMap::new(),
                    platforms: HashMap::new(),
                    requests: 0,
                };
                let chosen = self.select(&scope, reference, &top, &top_bytes, 0, &mut sel)?;
                let Some((_, chosen)) = chosen else {
                    return Err(Error::NoMatchingPlatform {
                        wanted: wanted.to_string(),
                        within: reference.to_string(),
                        available: sel.seen,
                    });
                };
                let doc = match sel.fetched.remove(chosen.digest()) {
                    Some(bytes) => (chosen.clone(), bytes),
                    None => self.fetch_manifest(&scope, reference, Some(&chosen))?,
                };
                self.add_manifest(doc, &mut plan)?;
                chosen
            }
            _ => {
                self.add_manifest((top.clone(), top_bytes), &mut plan)?;
                top.clone()
            }
        };
        lease.add(
            plan.blobs
                .iter()
                .map(Descriptor::digest)
                .chain(plan.documents.iter().map(|(d, _)| d.digest())),
        )?;

        // Configs first: an image whose config does not pair with its layers is refused
        // before its layers are downloaded.
        let progress = options.progress.clone();
        let (configs, layers): (Vec<Descriptor>, Vec<Descriptor>) = plan
            .blobs
            .iter()
            .cloned()
            .partition(|d| plan.configs.contains(d.digest()));
        let mut outcomes = parallel(&configs, self.transport.config.concurrency, |d| {
            self.download_blob(&scope, layout, d, progress.as_ref())
        })?;
        for (d, bytes) in &plan.documents {
            if media_type::kind(d.media_type()) == Kind::Manifest {
                precheck_image(layout, reference, d, bytes)?;
            }
        }
        outcomes.extend(parallel(&layers, self.transport.config.concurrency, |d| {
            self.download_blob(&scope, layout, d, progress.as_ref())
        })?);
        for (d, bytes) in &plan.documents {
            store_bytes(layout, d, bytes)?;
        }
        // Nothing that is not whole is tagged: the image as `validate` and `run` see it.
        check_whole(layout, reference, &stored)?;
        let tag = match &options.tag {
            Some(t) => Some(t.clone()),
            None => reference.tag().map(|_| reference.to_string()),
        };
        if let Some(t) = &tag {
            layout.tag(t, &stored)?;
        }
        drop(lease);
        Ok(Pulled {
            reference: reference.clone(),
            descriptor: top,
            stored,
            manifests: plan.manifests,
            tag,
            blobs_downloaded: outcomes.iter().filter(|o| o.downloaded).count(),
            blobs_present: outcomes.iter().filter(|o| !o.downloaded).count(),
            bytes_downloaded: outcomes.iter().map(|o| o.bytes).sum(),
            bytes_resumed: outcomes.iter().map(|o| o.resumed).sum(),
        })
    }

    /// Adds an image manifest, its config and its layers to the plan. Non-distributable
    /// layers are not fetched (image-spec layer.md: they are not to be uploaded, so registries
    /// usually lack them), as [`Layout::put_manifest`] does not require them.
    fn add_manifest(&self, doc: Document, plan: &mut Plan) -> Result<()> {
        let manifest = crate::layout::parse_manifest(&doc.1, &doc.0)?;
        let config = manifest.config();
        // Checked before any byte is downloaded: `inspect` and `run` refuse a larger config.
        if media_type::kind(config.media_type()) == Kind::Config && config.size() > MAX_CONFIG_SIZE
        {
            return Err(Error::TooLarge {
                digest: config.digest().clone(),
                size: config.size(),
                limit: MAX_CONFIG_SIZE,
                what: "an image config",
            });
        }
        crate::digest::check_registered(config.digest())?;
        plan.configs.insert(config.digest().clone());
        plan.add_blob(config);
        for l in manifest.layers() {
            if matches!(
                media_type::kind(l.media_type()),
                Kind::Layer {
                    non_distributable: true,
                    ..
                }
            ) {
                continue;
            }
            crate::digest::check_registered(l.digest())?;
            plan.add_blob(l);
        }
        plan.manifests.push(doc.0.clone());
        plan.documents.push(doc);
        Ok(())
    }

    /// Every manifest and nested index of an index, for `--all`.
    fn walk_all(
        &self,
        scope: &Scope,
        reference: &Reference,
        doc: Document,
        depth: usize,
        plan: &mut Plan,
    ) -> Result<()> {
        if depth >= MAX_INDEX_DEPTH {
            return Err(Error::NestingTooDeep {
                digest: doc.0.digest().clone(),
                limit: MAX_INDEX_DEPTH,
            });
        }
        let index = crate::layout::parse_index(&doc.1, &doc.0)?;
        for child in index.manifests() {
            if plan
                .documents
                .iter()
                .any(|(d, _)| d.digest() == child.digest())
            {
                continue;
            }
            match media_type::kind(child.media_type()) {
                Kind::Manifest => {
                    let c = self.fetch_manifest(scope, reference, Some(child))?;
                    self.add_manifest(c, plan)?;
                }
                Kind::Index => {
                    let c = self.fetch_manifest(scope, reference, Some(child))?;
                    self.walk_all(scope, reference, c, depth + 1, plan)?;
                }
                Kind::Schema1 => {
                    return Err(Error::Schema1 {
                        digest: child.digest().clone(),
                        media_type: child.media_type().to_string(),
                    })
                }
                _ => {}
            }
        }
        plan.documents.push(doc);
        Ok(())
    }

    /// The best manifest for the wanted platform in an index (image-index.md: the closest
    /// variant, then the first in order), following nested indexes. Manifests whose
    /// descriptor has no platform are judged by their config, fetched for that (into memory:
    /// the store gets only what the pull keeps).
    ///
    /// As the local `resolve`, each index and manifest is fetched once (a memo by digest, so
    /// that indexes whose entries all point to the same next level cost one request per
    /// level), and the whole selection is capped at [`MAX_SELECTION_REQUESTS`] requests.
    fn select(
        &self,
        scope: &Scope,
        reference: &Reference,
        desc: &Descriptor,
        bytes: &[u8],
        depth: usize,
        sel: &mut Selection<'_>,
    ) -> Result<Option<(u32, Descriptor)>> {
        if depth >= MAX_INDEX_DEPTH {
            return Err(Error::NestingTooDeep {
                digest: desc.digest().clone(),
                limit: MAX_INDEX_DEPTH,
            });
        }
        let index = crate::layout::parse_index(bytes, desc)?;
        let mut best: Option<(u32, Descriptor)> = None;
        for child in index.manifests() {
            let found = match media_type::kind(child.media_type()) {
                Kind::Manifest => {
                    let platform = match child.platform() {
                        Some(p) => Some(PlatformSpec::from_platform(p)),
                        None => self.config_platform(scope, reference, child, sel)?,
                    };
                    match platform {
                        // BuildKit's attestations ("unknown/unknown") are not images.
                        Some(p) if p.os != "unknown" => {
                            let name = p.to_string();
                            if !sel.seen.contains(&name) {
                                sel.seen.push(name);
                            }
                            sel.wanted.rank(&p).map(|r| (r, child.clone()))
                        }
                        _ => None,
                    }
                }
                Kind::Index => match sel.indexes.get(child.digest()) {
                    Some(hit) => hit.clone(),
                    None => {
                        sel.count(reference)?;
                        let (d, b) = self.fetch_manifest(scope, reference, Some(child))?;
                        // A cycle: the index is being searched above us; nothing new below.
                        sel.indexes.insert(d.digest().clone(), None);
                        let r = self.select(scope, reference, &d, &b, depth + 1, sel)?;
                        sel.indexes.insert(d.digest().clone(), r.clone());
                        r
                    }
                },
                _ => None,
            };
            if let Some((rank, d)) = found {
                if best.as_ref().is_none_or(|(r, _)| rank < *r) {
                    best = Some((rank, d));
                }
            }
        }
        Ok(best)
    }

    /// The platform an image's config declares, for a manifest listed without one.
    fn config_platform(
        &self,
        scope: &Scope,
        reference: &Reference,
        child: &Descriptor,
        sel: &mut Selection<'_>,
    ) -> Result<Option<PlatformSpec>> {
        let bytes = match sel.fetched.get(child.digest()) {
            Some(b) => b.clone(),
            None => {
                sel.count(reference)?;
                let (_, b) = self.fetch_manifest(scope, reference, Some(child))?;
                sel.fetched.insert(child.digest().clone(), b.clone());
                b
            }
        };
        let manifest = crate::layout::parse_manifest(&bytes, child)?;
        let config = manifest.config();
        if media_type::kind(config.media_type()) != Kind::Config {
            return Ok(None);
        }
        if let Some(p) = sel.platforms.get(config.digest()) {
            return Ok(p.clone());
        }
        sel.count(reference)?;
        let bytes = self.fetch_small_blob(scope, config, MAX_CONFIG_SIZE, "an image config")?;
        #[derive(serde::Deserialize)]
        struct ConfigPlatform {
            architecture: String,
            os: String,
            variant: Option<String>,
        }
        let c: ConfigPlatform =
            crate::layout::parse_json(&bytes, &crate::layout::blob_file_name(config.digest()))?;
        let mut p = format!("{}/{}", c.os, c.architecture);
        if let Some(v) = c.variant.filter(|v| !v.is_empty()) {
            p = format!("{p}/{v}");
        }
        let p: Option<PlatformSpec> = p.parse().ok();
        sel.platforms.insert(config.digest().clone(), p.clone());
        Ok(p)
    }

    /// Fetches a small blob into memory, verified: refused before the request when its
    /// descriptor declares more than `limit` bytes.
    fn fetch_small_blob(
        &self,
        scope: &Scope,
        desc: &Descriptor,
        limit: u64,
        what: &'static str,
    ) -> Result<Vec<u8>> {
        let digest = desc.digest();
        crate::digest::check_registered(digest)?;
        if desc.size() > limit {
            return Err(Error::TooLarge {
                digest: digest.clone(),
                size: desc.size(),
                limit,
                what,
            });
        }
        let path = format!("/v2/{}/blobs/{digest}", scope.repository);
        let mut resp = self
            .transport
            .send(scope, &Request::new(Method::Get, path.clone()))?;
        let url = self.transport.url(scope, &path)?;
        if resp.status().as_u16() != 200 {
            return Err(response_error("GET", &url, &format!("blob {digest}"), resp));
        }
        let bytes = self
            .transport
            .read_body(scope, &mut resp, &url, desc.size())?;
        if bytes.len() as u64 != desc.size() {
            return Err(Error::SizeMismatch {
                digest: digest.clone(),
                expected: desc.size(),
                actual: bytes.len() as u64,
                at_least: bytes.len() as u64 > desc.size(),
            });
        }
        let actual = digest_with(digest, &bytes)?;
        if actual != *digest {
            return Err(Error::DigestMismatch {
                expected: digest.clone(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Fetches a manifest or index: the one the reference names when `expected` is `None`,
    /// else the one `expected` describes (by digest). Verifies size and digest, and that the
    /// type the registry declares agrees with the content and with `expected`.
    pub(super) fn fetch_manifest(
        &self,
        scope: &Scope,
        reference: &Reference,
        expected: Option<&Descriptor>,
    ) -> Result<Document> {
        let (what, key) = match expected {
            Some(e) => (
                format!("manifest {}@{}", reference.name(), e.digest()),
                e.digest().to_string(),
            ),
            None => (format!("manifest {reference}"), reference.tag_or_digest()),
        };
        let known_digest = expected.map(|e| e.digest()).or(reference.digest());
        if let Some(e) = expected {
            crate::digest::check_registered(e.digest())?;
            if e.size() > MAX_MANIFEST_SIZE {
                return Err(Error::TooLarge {
                    digest: e.digest().clone(),
                    size: e.size(),
                    limit: MAX_MANIFEST_SIZE,
                    what: "a manifest",
                });
            }
        }
        let path = format!("/v2/{}/manifests/{key}", scope.repository);
        let req = Request::new(Method::Get, path.clone()).header("Accept", MANIFEST_ACCEPT);
        let mut resp = self.transport.send(scope, &req)?;
        let url = self.transport.url(scope, &path)?;
        if resp.status().as_u16() != 200 {
            return Err(response_error("GET", &url, &what, resp));
        }
        let content_type = header(&resp, "content-type")
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let header_digest =
            header(&resp, "docker-content-digest").and_then(|d| crate::parse_digest(&d).ok());
        let bytes = self
            .transport
            .read_body(scope, &mut resp, &url, MAX_MANIFEST_SIZE)?;
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(match known_digest.or(header_digest.as_ref()) {
                Some(d) => Error::TooLarge {
                    digest: d.clone(),
                    size: bytes.len() as u64,
                    limit: MAX_MANIFEST_SIZE,
                    what: "a manifest",
                },
                None => Error::Invalid {
                    what: url,
                    reason: format!("manifest larger than {MAX_MANIFEST_SIZE} bytes"),
                },
            });
        }
        // "If the <tag-or-digest> part of a manifest request is a digest, clients SHOULD
        // verify the returned manifest matches this digest"; a Docker-Content-Digest, "if it
        // is used, the client MUST verify" (distribution-spec "Pulling manifests").
        let digest = match known_digest.or(header_digest.as_ref()) {
            Some(d) => {
                let actual = digest_with(d, &bytes)?;
                if actual != *d {
                    return Err(Error::DigestMismatch {
                        expected: d.clone(),
                        actual: actual.to_string(),
                    });
                }
                d.clone()
            }
            None => crate::sha256_digest(&bytes),
        };
        if let Some(e) = expected {
            if e.size() != bytes.len() as u64 {
                return Err(Error::SizeMismatch {
                    digest: digest.clone(),
                    expected: e.size(),
                    actual: bytes.len() as u64,
                    at_least: false,
                });
            }
        }
        let media_type = match media_type::kind_of(&content_type) {
            Kind::Manifest | Kind::Index | Kind::Schema1 => content_type,
            // No (or a generic) Content-Type: the content says what it is.
            _ => sniff_media_type(&bytes).ok_or_else(|| Error::UnexpectedMediaType {
                digest: digest.clone(),
                media_type: content_type.clone(),
                expected: "an image manifest or index",
            })?,
        };
        if media_type::kind_of(&media_type) == Kind::Schema1 {
            return Err(Error::Schema1 { digest, media_type });
        }
        let desc = match expected {
            Some(e) => {
                if media_type::kind_of(&media_type) != media_type::kind(e.media_type()) {
                    return Err(Error::MediaTypeMismatch {
                        digest,
                        descriptor: e.media_type().to_string(),
                        content: format!("{media_type} (the registry's Content-Type)"),
                    });
                }
                e.clone()
            }
            None => Descriptor::new(
                MediaType::from(media_type.as_str()),
                bytes.len() as u64,
                digest,
            ),
        };
        // The content's own `mediaType` must agree with the declared type ("clients SHOULD
        // reject unless the mediaType field's value matches the type specified by the
        // Content-Type header"); parse_* check that and the document's shape.
        match media_type::kind(desc.media_type()) {
            Kind::Index => {
                crate::layout::parse_index(&bytes, &desc)?;
            }
            _ => {
                crate::layout::parse_manifest(&bytes, &desc)?;
            }
        }
        Ok((desc, bytes))
    }

    /// Downloads one blob into the store, resuming a partial download, retrying transient
    /// failures, verifying size and digest. A blob already in the store is skipped.
    fn download_blob(
        &self,
        scope: &Scope,
        layout: &Layout,
        desc: &Descriptor,
        progress: Option<&ProgressFn>,
    ) -> Result<BlobOutcome> {
        let digest = desc.digest();
        let size = desc.size();
        let report = |p: Progress| {
            if let Some(f) = progress {
                f(&p)
            }
        };
        // A blob of the right size may still hold other bytes (a bit flip, an edit): it is
        // verified before the download is skipped, and a corrupt one is downloaded again
        // (the new file replaces it when it commits).
        let present = |layout: &Layout| -> Result<bool> { verified_present(layout, desc) };
        if present(layout)? {
            report(Progress::BlobSkipped {
                digest: digest.clone(),
                size,
            });
            return Ok(BlobOutcome::default());
        }
        let mut partial = layout.partial_blob(digest)?;
        // Another thread or process may have finished it while we waited for the lock.
        if present(layout)? {
            partial.discard()?;
            report(Progress::BlobSkipped {
                digest: digest.clone(),
                size,
            });
            return Ok(BlobOutcome::default());
        }
        if partial.offset() > size {
            partial.reset()?;
        }
        let mut resumed = partial.offset();
        let mut outcome = BlobOutcome {
            downloaded: true,
            ..Default::default()
        };
        let mut attempt = 0;
        let mut restarted = false;
        loop {
            report(Progress::BlobStarted {
                digest: digest.clone(),
                size,
                offset: partial.offset(),
            });
            let fetched = if partial.offset() == size {
                Ok(())
            } else {
                self.fetch_blob_rest(scope, desc, &mut partial, &mut outcome.bytes, &report)
            };
            match fetched {
                Ok(()) => match partial.commit() {
                    Ok(_) => break,
                    // Kept bytes from an earlier attempt may be what is wrong: start over
                    // once from zero before blaming the registry.
                    Err(Error::DigestMismatch { .. }) if resumed > 0 && !restarted => {
                        restarted = true;
                        resumed = 0;
                        partial = layout.partial_blob(digest)?;
                        partial.reset()?;
                    }
                    Err(e) => return Err(e),
                },
                Err(e) if is_transient_error(&e) && attempt < self.transport.config.retries => {
                    // The bytes received so far stay in the partial file: the next try asks
                    // for the rest ("Resumable Pull").
                    self.transport.sleep(
                        scope,
                        self.backoff_for(attempt),
                        &format!("blob {digest}"),
                    )?;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
        outcome.resumed = resumed;
        report(Progress::BlobDone {
            digest: digest.clone(),
            size,
        });
        Ok(outcome)
    }

    pub(super) fn backoff_for(&self, attempt: u32) -> std::time::Duration {
        let c = &self.transport.config;
        c.backoff
            .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
            .min(c.max_backoff)
    }

    /// One `GET` of the blob from the partial download's offset to its end.
    fn fetch_blob_rest(
        &self,
        scope: &Scope,
        desc: &Descriptor,
        partial: &mut crate::PartialBlob,
        received: &mut u64,
        report: &dyn Fn(Progress),
    ) -> Result<()> {
        let digest = desc.digest();
        let size = desc.size();
        let offset = partial.offset();
        let path = format!("/v2/{}/blobs/{digest}", scope.repository);
        let mut req = Request::new(Method::Get, path.clone()).streaming();
        if offset > 0 {
            // "A registry SHOULD support the Range request header" (distribution-spec
            // "Pulling blobs"; RFC 9110 section 14).
            req = req.header("Range", format!("bytes={offset}-"));
        }
        let mut resp = self.transport.send(scope, &req)?;
        let url = self.transport.url(scope, &path)?;
        match resp.status().as_u16() {
            200 => {
                if offset > 0 {
                    // The registry ignored the Range and sends the whole blob.
                    partial.reset()?;
                }
            }
            206 => {
                let start = header(&resp, "content-range").and_then(|v| content_range_start(&v));
                if start != Some(offset) {
                    partial.reset()?;
                    return Err(Error::Transport {
                        url,
                        message: format!(
                            "asked for bytes {offset}- and got Content-Range {:?}; starting over",
                            header(&resp, "content-range")
                        ),
                    });
                }
            }
            416 => {
                partial.reset()?;
                return Err(Error::Transport {
                    url,
                    message: format!("range {offset}- not satisfiable; starting over"),
                });
            }
            _ => return Err(response_error("GET", &url, &format!("blob {digest}"), resp)),
        }
        let limits = Limits {
            transport: &self.transport,
            scope,
        };
        copy_body(&mut resp, partial, size, &url, &limits, received, &|n| {
            report(Progress::BlobBytes {
                digest: digest.clone(),
                bytes: n,
            })
        })
    }
}

/// What bounds a blob transfer: the read timeout, the minimum speed, the deadline.
struct Limits<'a> {
    transport: &'a super::transport::Transport,
    scope: &'a Scope,
}

/// Copies a blob body into the partial download, never past the descriptor's size: a
/// response longer than that is a [`Error::SizeMismatch`] whatever its `Content-Length`
/// says; one that ends early is a transient [`Error::Transport`] (the bytes stay). A transfer
/// slower than the minimum speed over a read-timeout window is a transient
/// [`Error::Timeout`]; one that outlives the deadline, a final one.
fn copy_body(
    resp: &mut HttpResponse,
    partial: &mut crate::PartialBlob,
    size: u64,
    url: &str,
    limits: &Limits<'_>,
    received: &mut u64,
    report: &dyn Fn(u64),
) -> Result<()> {
    let config = &limits.transport.config;
    let mut reader = resp.body_mut().as_reader();
    let mut buf = vec![0u8; 256 * 1024];
    let mut window_start = std::time::Instant::now();
    let mut window_bytes = 0u64;
    loop {
        let remaining = size - partial.offset();
        let want = buf
            .len()
            .min(remaining.max(1).try_into().unwrap_or(usize::MAX));
        let n = match reader.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let detail = format!("at byte {} of {size}", partial.offset());
                if let Some(ureq::Error::Timeout(kind)) =
                    e.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>())
                {
                    return Err(
                        match limits
                            .transport
                            .timeout_error(limits.scope, url, *kind, true)
                        {
                            Error::Timeout {
                                url, what, limit, ..
                            } => Error::Timeout {
                                url,
                                what,
                                limit,
                                detail,
                            },
                            other => other,
                        },
                    );
                }
                return Err(Error::Transport {
                    url: url.to_string(),
                    message: format!("transfer interrupted {detail}: {e}"),
                });
            }
        };
        if n == 0 {
            break;
        }
        if remaining == 0 {
            let digest = partial.digest().clone();
            partial.reset()?;
            return Err(Error::SizeMismatch {
                digest,
                expected: size,
                actual: size + n as u64,
                at_least: true,
            });
        }
        partial
            .write_all(&buf[..n])
            .map_err(|e| Error::io(partial.path(), e))?;
        *received += n as u64;
        report(n as u64);
        window_bytes += n as u64;
        let elapsed = window_start.elapsed();
        if elapsed >= config.read_timeout {
            let want = config.min_speed.saturating_mul(elapsed.as_secs().max(1));
            if window_bytes < want && partial.offset() < size {
                return Err(Error::Timeout {
                    url: url.to_string(),
                    what: "read timeout",
                    limit: config.read_timeout,
                    detail: format!(
                        "{window_bytes} bytes in {} s, slower than the minimum of {} bytes/s; \
                         at byte {} of {size}",
                        elapsed.as_secs(),
                        config.min_speed,
                        partial.offset()
                    ),
                });
            }
            window_start = std::time::Instant::now();
            window_bytes = 0;
        }
        limits.transport.check_deadline(limits.scope, url)?;
    }
    if partial.offset() < size {
        return Err(Error::Transport {
            url: url.to_string(),
            message: format!(
                "the connection ended at byte {} of {size}",
                partial.offset()
            ),
        });
    }
    Ok(())
}

/// The most requests platform selection makes (indexes, manifests and configs fetched to
/// choose), beyond the top document: an index of thousands of manifests without a platform
/// is refused after this many rather than costing two requests per entry.
pub const MAX_SELECTION_REQUESTS: usize = 256;

struct Selection<'a> {
    wanted: &'a PlatformSpec,
    seen: Vec<String>,
    /// Manifests fetched to read their config's platform, by digest.
    fetched: HashMap<Digest, Vec<u8>>,
    /// Nested indexes searched, and what each gave.
    indexes: HashMap<Digest, Option<(u32, Descriptor)>>,
    /// The platforms of configs read, by digest.
    platforms: HashMap<Digest, Option<PlatformSpec>>,
    requests: usize,
}

impl Selection<'_> {
    fn count(&mut self, reference: &Reference) -> Result<()> {
        self.requests += 1;
        if self.requests > MAX_SELECTION_REQUESTS {
            return Err(Error::Invalid {
                what: reference.to_string(),
                reason: format!(
                    "choosing a platform would take more than {MAX_SELECTION_REQUESTS} \
                     requests (nested indexes, or manifests listed without a platform); \
                     pull a manifest by digest instead"
                ),
            });
        }
        Ok(())
    }
}

/// Before the layers are downloaded: an image manifest's config (in the store by now) must
/// pair with its layers as `resolve` and `run` need.
fn precheck_image(
    layout: &Layout,
    reference: &Reference,
    desc: &Descriptor,
    bytes: &[u8],
) -> Result<()> {
    let manifest = crate::layout::parse_manifest(bytes, desc)?;
    let config = manifest.config();
    if media_type::kind(config.media_type()) != Kind::Config {
        return Ok(());
    }
    let c: oci_spec::image::ImageConfiguration = layout.read_json(config, MAX_CONFIG_SIZE)?;
    let problem = if c.rootfs().typ() != "layers" {
        Some(format!(
            "{}: rootfs.type: must be \"layers\", found {:?}",
            crate::layout::blob_file_name(config.digest()),
            c.rootfs().typ()
        ))
    } else if c.rootfs().diff_ids().len() != manifest.layers().len() {
        Some(
            Error::LayerCountMismatch {
                manifest: desc.digest().clone(),
                config: config.digest().clone(),
                layers: manifest.layers().len(),
                diff_ids: c.rootfs().diff_ids().len(),
            }
            .to_string(),
        )
    } else {
        None
    };
    match problem {
        Some(p) => Err(Error::InvalidImage {
            reference: reference.to_string(),
            problems: vec![p],
        }),
        None => Ok(()),
    }
}

/// After every blob is written, before the tag: the stored descriptor validates as a whole
/// (sizes, not content: each blob was verified as it landed or before it was trusted), and
/// each image manifest resolves to a runnable image.
fn check_whole(layout: &Layout, reference: &Reference, stored: &Descriptor) -> Result<()> {
    let report = layout.validate_descriptor(
        stored,
        &crate::ValidateOptions {
            verify_content: false,
        },
    );
    let mut problems: Vec<String> = report.errors().map(|p| p.to_string()).collect();
    if problems.is_empty() && media_type::kind(stored.media_type()) == Kind::Manifest {
        let manifest = layout.read_manifest(stored)?;
        if media_type::kind(manifest.config().media_type()) == Kind::Config {
            if let Err(e) = layout.image(stored) {
                problems.push(e.to_string());
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidImage {
            reference: reference.to_string(),
            problems,
        })
    }
}

/// Whether the store holds the blob `desc` names, whole and with the right content.
fn verified_present(layout: &Layout, desc: &Descriptor) -> Result<bool> {
    let mut r = match layout.open_blob(desc) {
        Ok(r) => r,
        Err(Error::BlobNotFound { .. } | Error::SizeMismatch { .. }) => return Ok(false),
        Err(e) => return Err(e),
    };
    match std::io::copy(&mut r, &mut std::io::sink()) {
        Ok(_) => Ok(true),
        Err(e) => match Error::from_io(layout.blob_path(desc.digest())?, e) {
            Error::DigestMismatch { .. } | Error::SizeMismatch { .. } => Ok(false),
            other => Err(other),
        },
    }
}

/// Writes a fetched (already verified) document into the store.
fn store_bytes(layout: &Layout, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
    if verified_present(layout, desc)? {
        return Ok(());
    }
    let mut p = layout.partial_blob(desc.digest())?;
    p.reset()?;
    p.write_all(bytes).map_err(|e| Error::io(p.path(), e))?;
    p.commit()?;
    Ok(())
}

/// The digest of `bytes` with the algorithm of `like`.
fn digest_with(like: &Digest, bytes: &[u8]) -> Result<Digest> {
    let mut h = Hasher::new(like.algorithm())?;
    h.update(bytes);
    Ok(h.finish())
}

/// `bytes START-END/TOTAL` → START (RFC 9110 section 14.4).
fn content_range_start(v: &str) -> Option<u64> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, _) = rest.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    start.trim().parse().ok()
}

/// The media type of a manifest served without a useful Content-Type: its `mediaType`, or
/// its shape (`manifests` for an index, `config` for a manifest).
fn sniff_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
        config: Option<serde::de::IgnoredAny>,
    }
    let p: Probe = serde_json::from_slice(bytes).ok()?;
    match (p.media_type, p.manifests.is_some(), p.config.is_some()) {
        (Some(mt), _, _) => Some(mt),
        (None, true, false) => Some(MediaType::ImageIndex.to_string()),
        (None, false, true) => Some(MediaType::ImageManifest.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST};

    #[test]
    fn content_ranges() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes 0-0/*"), Some(0));
        assert_eq!(content_range_start("items 1-2/3"), None);
        assert_eq!(content_range_start("bytes x-1/2"), None);
    }

    #[test]
    fn accept_lists_every_manifest_type() {
        for t in [DOCKER_MANIFEST, DOCKER_MANIFEST_LIST] {
            assert!(MANIFEST_ACCEPT.contains(t));
        }
        assert!(MANIFEST_ACCEPT.contains(&MediaType::ImageIndex.to_string()));
        assert!(MANIFEST_ACCEPT.contains(&MediaType::ImageManifest.to_string()));
    }
}
