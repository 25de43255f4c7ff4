//! Push: blobs (skipped, mounted or uploaded), then manifests, then the tag.

use oci_spec::image::{Descriptor, Digest};

use super::transport::{
    header, is_transient_error, query_escape, resolve_location, response_error, status_error, Body,
    HttpResponse, Method, Request, Scope,
};
use super::{parallel, Client, Progress, PushOptions, Pushed, Reference};
use crate::error::{Error, Result};
use crate::layout::{Layout, MAX_MANIFEST_SIZE};
use crate::media_type::{self, Kind};
use crate::resolve::MAX_INDEX_DEPTH;

#[derive(Default)]
struct PushPlan {
    /// Manifests and indexes, children before parents (the last is the top).
    documents: Vec<(Descriptor, Vec<u8>)>,
    blobs: Vec<Descriptor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlobPush {
    Present,
    Mounted,
    Uploaded,
}

impl Client {
    /// Pushes the image or index that `local` names in `layout` (a tag or a digest, as
    /// [`Layout::find`] takes them) to `reference`: every blob the registry lacks, then the
    /// manifests of an index by digest, then the top manifest or index under the reference's
    /// tag (or by digest for a reference without one).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), oci_image::Error> {
    /// use oci_image::registry::{Client, PushOptions};
    /// let layout = oci_image::Layout::open("/tmp/images")?;
    /// let r = "localhost:5000/team/app:v1".parse()?;
    /// let pushed = Client::new().push(&layout, "app", &r, &PushOptions::default())?;
    /// println!("pushed {}", pushed.descriptor.digest());
    /// # Ok(()) }
    /// ```
    pub fn push(
        &self,
        layout: &Layout,
        local: &str,
        reference: &Reference,
        options: &PushOptions,
    ) -> Result<Pushed> {
        let found = layout.find(local)?;
        let top = match found.as_slice() {
            [one] => one.clone(),
            [first, rest @ ..] if rest.iter().all(|d| d.digest() == first.digest()) => {
                first.clone()
            }
            _ => {
                return Err(Error::Invalid {
                    what: format!("{local:?} in {}", layout.path().display()),
                    reason: format!(
                        "names {} different manifests; push one of them by digest",
                        found.len()
                    ),
                })
            }
        };
        if let Some(d) = reference.digest() {
            if d != top.digest() {
                return Err(Error::Invalid {
                    what: reference.to_string(),
                    reason: format!("the local image {local:?} is {}", top.digest()),
                });
            }
        }
        let mut plan = PushPlan::default();
        collect(layout, &top, 0, &mut plan)?;
        let scope = self.scope(reference, "pull,push", options.mount_from.clone());
        let outcomes = parallel(&plan.blobs, self.transport.config.concurrency, |d| {
            let o = self.push_blob(&scope, layout, d, options)?;
            if let Some(f) = &options.progress {
                f(&match o {
                    BlobPush::Present => Progress::BlobSkipped {
                        digest: d.digest().clone(),
                        size: d.size(),
                    },
                    _ => Progress::BlobDone {
                        digest: d.digest().clone(),
                        size: d.size(),
                    },
                });
            }
            Ok(o)
        })?;
        let count = |k| outcomes.iter().filter(|o| **o == k).count();
        let (top_doc, children) = match plan.documents.split_last() {
            Some(x) => x,
            None => unreachable!("collect always adds the top document"),
        };
        for (d, bytes) in children {
            self.put_manifest(&scope, d.digest().as_ref(), d, bytes)?;
        }
        let key = match reference.tag() {
            Some(t) => t.to_string(),
            None => top_doc.0.digest().to_string(),
        };
        self.put_manifest(&scope, &key, &top_doc.0, &top_doc.1)?;
        Ok(Pushed {
            reference: reference.clone(),
            descriptor: Descriptor::new(
                top_doc.0.media_type().clone(),
                top_doc.0.size(),
                top_doc.0.digest().clone(),
            ),
            blobs_uploaded: count(BlobPush::Uploaded),
            blobs_mounted: count(BlobPush::Mounted),
            blobs_present: count(BlobPush::Present),
            manifests_pushed: plan.documents.len(),
        })
    }

    /// distribution-spec "Pushing Manifests": `PUT /v2/<name>/manifests/<tag-or-digest>`
    /// with the exact bytes and the `mediaType` as `Content-Type`.
    fn put_manifest(
        &self,
        scope: &Scope,
        key: &str,
        desc: &Descriptor,
        bytes: &[u8],
    ) -> Result<()> {
        let path = format!("/v2/{}/manifests/{key}", scope.repository);
        let req = Request::new(Method::Put, path.clone())
            .header("Content-Type", desc.media_type().to_string())
            .body(Body::Bytes(bytes));
        let resp = self.transport.send(scope, &req)?;
        let url = self.transport.url(scope, &path)?;
        if resp.status().as_u16() != 201 {
            return Err(response_error(
                "PUT",
                &url,
                &format!("manifest {key}"),
                resp,
            ));
        }
        // "The Docker-Content-Digest header ... MUST be equal to the client provided digest."
        if let Some(d) = header(&resp, "docker-content-digest") {
            if d != desc.digest().to_string() {
                return Err(Error::DigestMismatch {
                    expected: desc.digest().clone(),
                    actual: format!("{d} (the registry's Docker-Content-Digest for {url})"),
                });
            }
        }
        Ok(())
    }

    fn push_blob(
        &self,
        scope: &Scope,
        layout: &Layout,
        desc: &Descriptor,
        options: &PushOptions,
    ) -> Result<BlobPush> {
        let digest = desc.digest();
        let file = layout.blob_path(digest)?;
        let len = std::fs::symlink_metadata(&file)
            .map_err(|e| Error::io(&file, e))?
            .len();
        if len != desc.size() {
            return Err(Error::SizeMismatch {
                digest: digest.clone(),
                expected: desc.size(),
                actual: len,
                at_least: false,
            });
        }
        // "Checking if content exists in the registry" / "Layer Upload De-duplication".
        let path = format!("/v2/{}/blobs/{digest}", scope.repository);
        let resp = self
            .transport
            .send(scope, &Request::new(Method::Head, path.clone()))?;
        match resp.status().as_u16() {
            200 => return Ok(BlobPush::Present),
            404 => {}
            _ => {
                let url = self.transport.url(scope, &path)?;
                return Err(status_error("HEAD", &url, resp));
            }
        }
        let uploads = format!("/v2/{}/blobs/uploads/", scope.repository);
        let mut session = None;
        if let Some(from) = &options.mount_from {
            // "Mounting a blob from another repository": 201 when mounted, 202 with an
            // upload session otherwise.
            let target = format!(
                "{uploads}?mount={}&from={}",
                query_escape(digest.as_ref()),
                query_escape(from)
            );
            let resp = self
                .transport
                .send(scope, &Request::new(Method::Post, target.clone()))?;
            match resp.status().as_u16() {
                201 => return Ok(BlobPush::Mounted),
                202 => session = Some(self.location(scope, &target, &resp)?),
                _ => {
                    let url = self.transport.url(scope, &target)?;
                    return Err(status_error("POST", &url, resp));
                }
            }
        }
        let mut attempt = 0;
        loop {
            let result = self.upload(scope, &uploads, session.take(), &file, desc, options);
            match result {
                Ok(()) => return Ok(BlobPush::Uploaded),
                Err(e) if is_transient_error(&e) && attempt < self.transport.config.retries => {
                    std::thread::sleep(self.backoff_for(attempt));
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One whole upload: open a session (unless a mount attempt opened one), send the bytes
    /// in one `PUT` ("POST then PUT") or in `PATCH` chunks ("Pushing a blob in chunks"), and
    /// close it with the digest.
    fn upload(
        &self,
        scope: &Scope,
        uploads: &str,
        session: Option<(String, Option<u64>)>,
        file: &std::path::Path,
        desc: &Descriptor,
        options: &PushOptions,
    ) -> Result<()> {
        let (location, min_chunk) = match session {
            Some(s) => s,
            None => {
                let resp = self
                    .transport
                    .send(scope, &Request::new(Method::Post, uploads))?;
                if resp.status().as_u16() != 202 {
                    let url = self.transport.url(scope, uploads)?;
                    return Err(response_error(
                        "POST",
                        &url,
                        &format!("repository {}", scope.repository),
                        resp,
                    ));
                }
                self.location(scope, uploads, &resp)?
            }
        };
        let result = self.send_bytes(scope, location.clone(), min_chunk, file, desc, options);
        if result.is_err() {
            // "Cancel a blob upload": clients SHOULD release the session, and ignore failures.
            let cancel = Request::new(Method::Delete, location).no_retry();
            let _ = self.transport.send(scope, &cancel);
        }
        result
    }

    fn send_bytes(
        &self,
        scope: &Scope,
        mut location: String,
        min_chunk: Option<u64>,
        file: &std::path::Path,
        desc: &Descriptor,
        options: &PushOptions,
    ) -> Result<()> {
        let digest = desc.digest();
        let size = desc.size();
        let mut offset = 0u64;
        if let Some(chunk) = options.chunk_size {
            // "If the registry provides an OCI-Chunk-Min-Length header ..., the size of each
            // chunk, except for the final chunk, SHOULD be greater or equal to that value."
            let chunk = chunk.max(min_chunk.unwrap_or(0)).max(1);
            while offset < size {
                let len = chunk.min(size - offset);
                let req = Request::new(Method::Patch, location.clone())
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Range", format!("{offset}-{}", offset + len - 1))
                    .body(Body::File {
                        path: file,
                        offset,
                        len,
                    })
                    .streaming()
                    .no_retry();
                let resp = self.transport.send(scope, &req)?;
                if resp.status().as_u16() != 202 {
                    return Err(status_error("PATCH", &location, resp));
                }
                location = self.location(scope, &location, &resp)?.0;
                offset += len;
            }
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={}", query_escape(digest.as_ref()));
        let mut req = Request::new(Method::Put, put.clone()).no_retry();
        if offset < size {
            req = req
                .header("Content-Type", "application/octet-stream")
                .body(Body::File {
                    path: file,
                    offset,
                    len: size - offset,
                })
                .streaming();
        }
        let resp = self.transport.send(scope, &req)?;
        if resp.status().as_u16() != 201 {
            return Err(status_error("PUT", &put, resp));
        }
        Ok(())
    }

    /// The absolute upload location a response names ("it MAY be relative"), and the
    /// registry's minimum chunk size.
    fn location(
        &self,
        scope: &Scope,
        request: &str,
        resp: &HttpResponse,
    ) -> Result<(String, Option<u64>)> {
        let loc = header(resp, "location").ok_or_else(|| Error::RegistryStatus {
            method: "POST".into(),
            url: request.to_string(),
            status: resp.status().as_u16(),
            message: "no Location header in the answer".into(),
        })?;
        let min = header(resp, "oci-chunk-min-length").and_then(|v| v.trim().parse().ok());
        // "The location MAY be relative" (distribution-spec "Pushing blobs"): resolved
        // against the request's URL; a `file:` or other non-http(s) location is refused, and
        // credentials follow it only to the registry's own origin (`Transport::send`).
        let from = self.transport.url(scope, request)?;
        let abs = resolve_location(&from, &loc)?;
        self.transport.check_location(&from, &loc, &abs)?;
        Ok((abs, min))
    }
}

/// Walks what `desc` names in the layout: the blobs, then the documents, children first.
fn collect(layout: &Layout, desc: &Descriptor, depth: usize, plan: &mut PushPlan) -> Result<()> {
    if plan
        .documents
        .iter()
        .any(|(d, _)| d.digest() == desc.digest())
    {
        return Ok(());
    }
    let bytes = layout.read_blob(desc, MAX_MANIFEST_SIZE)?;
    let name = |d: &Digest| format!("{} {d}", media_type_name(desc));
    match media_type::kind(desc.media_type()) {
        Kind::Index => {
            if depth >= MAX_INDEX_DEPTH {
                return Err(Error::NestingTooDeep {
                    digest: desc.digest().clone(),
                    limit: MAX_INDEX_DEPTH,
                });
            }
            let index = crate::layout::parse_index(&bytes, desc)?;
            for (i, child) in index.manifests().iter().enumerate() {
                if !layout.has_blob(child.digest())? {
                    return Err(Error::MissingReference {
                        parent: name(desc.digest()),
                        field: format!("manifests[{i}]"),
                        digest: child.digest().clone(),
                    });
                }
                collect(layout, child, depth + 1, plan)?;
            }
        }
        Kind::Manifest => {
            let manifest = crate::layout::parse_manifest(&bytes, desc)?;
            let mut refs = vec![("config".to_string(), manifest.config().clone())];
            for (i, l) in manifest.layers().iter().enumerate() {
                // image-spec layer.md: non-distributable layers are not to be uploaded.
                if matches!(
                    media_type::kind(l.media_type()),
                    Kind::Layer {
                        non_distributable: true,
                        ..
                    }
                ) {
                    continue;
                }
                refs.push((format!("layers[{i}]"), l.clone()));
            }
            for (field, d) in refs {
                if !layout.has_blob(d.digest())? {
                    return Err(Error::MissingReference {
                        parent: name(desc.digest()),
                        field,
                        digest: d.digest().clone(),
                    });
                }
                if !plan.blobs.iter().any(|b| b.digest() == d.digest()) {
                    plan.blobs.push(d);
                }
            }
        }
        _ => {
            return Err(Error::UnexpectedMediaType {
                digest: desc.digest().clone(),
                media_type: desc.media_type().to_string(),
                expected: "an image manifest or index",
            })
        }
    }
    plan.documents.push((desc.clone(), bytes));
    Ok(())
}

fn media_type_name(d: &Descriptor) -> &'static str {
    match media_type::kind(d.media_type()) {
        Kind::Index => "image index",
        _ => "image manifest",
    }
}
