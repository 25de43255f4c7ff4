//! The write side: manifests, tags, untag, garbage collection, referrers.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::time::{Duration, SystemTime};

use oci_spec::image::{
    Descriptor, Digest, ImageIndex, ImageIndexBuilder, ImageManifest, MediaType,
    ANNOTATION_REF_NAME,
};

use crate::error::{Error, Result};
use crate::layout::{Layout, MAX_MANIFEST_SIZE};
use crate::media_type::{self, Kind};
use crate::resolve::{ref_name, MAX_INDEX_DEPTH};

/// Checks a tag against the grammar of `org.opencontainers.image.ref.name` (annotations.md):
/// `component ("/" component)*`, `component ::= alphanum (separator alphanum)*`,
/// `alphanum ::= [A-Za-z0-9]+`, `separator ::= [-._:@+] | "--"`.
pub fn check_tag(name: &str) -> Result<()> {
    let bad = |reason: &str| Error::InvalidTag {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() > 4096 {
        return Err(bad("longer than 4096 bytes"));
    }
    for component in name.split('/') {
        let b = component.as_bytes();
        if b.is_empty() {
            return Err(bad("empty path component"));
        }
        if !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
            return Err(bad("components must start and end with a letter or digit"));
        }
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_alphanumeric() {
                i += 1;
                continue;
            }
            let sep_len = if b[i..].starts_with(b"--") {
                2
            } else if b"-._:@+".contains(&b[i]) {
                1
            } else {
                return Err(bad(&format!("character {:?} is not allowed", b[i] as char)));
            };
            i += sep_len;
            if !b.get(i).is_some_and(u8::is_ascii_alphanumeric) {
                return Err(bad("separators must be followed by a letter or digit"));
            }
        }
    }
    Ok(())
}

/// What [`Layout::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The blobs removed.
    pub removed: Vec<Digest>,
    /// Their total size in bytes.
    pub bytes_freed: u64,
    /// Stale temporary files removed (left by interrupted writers).
    pub temp_files_removed: usize,
}

/// How [`Layout::gc_with`] collects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcOptions {
    /// Also remove partial downloads ([`Layout::partial_blob`]) that no live writer holds,
    /// however young: what a pull left for resume (after a full disk, a kill) is reclaimed at
    /// once instead of after an hour. A partial file being written is locked by its writer
    /// and never removed.
    pub partials: bool,
}

impl GcOptions {
    /// Sets [`GcOptions::partials`].
    pub fn partials(mut self, partials: bool) -> Self {
        self.partials = partials;
        self
    }
}

/// Temporary files younger than this are left alone by [`Layout::gc`]: they may belong to a
/// writer that is still running.
const TEMP_GRACE: Duration = Duration::from_secs(3600);

impl Layout {
    /// Writes an image manifest as a blob after checking that the config and layers it
    /// references are in the store, and returns its descriptor (not yet tagged; see
    /// [`Layout::tag`]).
    pub fn put_manifest(&self, manifest: &ImageManifest) -> Result<Descriptor> {
        let name = "image manifest";
        let mut refs = vec![("config".to_string(), manifest.config())];
        for (i, l) in manifest.layers().iter().enumerate() {
            let kind = media_type::kind(l.media_type());
            if matches!(
                kind,
                Kind::Layer {
                    non_distributable: true,
                    ..
                }
            ) {
                continue;
            }
            refs.push((format!("layers[{i}]"), l));
        }
        for (field, d) in refs {
            if !self.has_blob(d.digest())? {
                return Err(Error::MissingReference {
                    parent: name.into(),
                    field,
                    digest: d.digest().clone(),
                });
            }
        }
        let media_type = manifest
            .media_type()
            .clone()
            .unwrap_or(MediaType::ImageManifest);
        let mut d = self.put_json(media_type, manifest)?;
        if let Some(t) = manifest.artifact_type() {
            d.set_artifact_type(Some(t.clone()));
        }
        Ok(d)
    }

    /// Writes an image index as a blob after checking that the manifests it lists are in the
    /// store, and returns its descriptor.
    pub fn put_index(&self, index: &ImageIndex) -> Result<Descriptor> {
        for (i, d) in index.manifests().iter().enumerate() {
            if !self.has_blob(d.digest())? {
                return Err(Error::MissingReference {
                    parent: "image index".into(),
                    field: format!("manifests[{i}]"),
                    digest: d.digest().clone(),
                });
            }
        }
        let media_type = index.media_type().clone().unwrap_or(MediaType::ImageIndex);
        self.put_json(media_type, index)
    }

    /// Points tag `name` at `descriptor` in `index.json` (a manifest or index that is in the
    /// store), replacing what the tag pointed at before.
    pub fn tag(&self, name: &str, descriptor: &Descriptor) -> Result<()> {
        check_tag(name)?;
        match media_type::kind(descriptor.media_type()) {
            Kind::Manifest | Kind::Index => {}
            _ => {
                return Err(Error::UnexpectedMediaType {
                    digest: descriptor.digest().clone(),
                    media_type: descriptor.media_type().to_string(),
                    expected: "a manifest or an index",
                })
            }
        }
        if !self.has_blob(descriptor.digest())? {
            return Err(Error::MissingReference {
                parent: "index.json".into(),
                field: format!("tag {name}"),
                digest: descriptor.digest().clone(),
            });
        }
        let mut d = descriptor.clone();
        let mut annotations = d.annotations().clone().unwrap_or_default();
        annotations.insert(ANNOTATION_REF_NAME.to_string(), name.to_string());
        d.set_annotations(Some(annotations));
        self.update_index(|index| {
            let mut manifests: Vec<Descriptor> = index
                .manifests()
                .iter()
                .filter(|m| ref_name(m) != Some(name))
                .cloned()
                .collect();
            manifests.push(d);
            index.set_manifests(manifests);
            Ok(())
        })
    }

    /// Removes tag `name` from `index.json`. The blobs stay until [`Layout::gc`]. Returns an
    /// error if there is no such tag.
    pub fn untag(&self, name: &str) -> Result<()> {
        self.update_index(|index| {
            let before = index.manifests().len();
            let manifests: Vec<Descriptor> = index
                .manifests()
                .iter()
                .filter(|m| ref_name(m) != Some(name))
                .cloned()
                .collect();
            if manifests.len() == before {
                return Err(Error::NotFound {
                    reference: name.to_string(),
                    layout: self.path().to_path_buf(),
                    available: index
                        .manifests()
                        .iter()
                        .filter_map(|d| ref_name(d).map(str::to_string))
                        .collect(),
                });
            }
            index.set_manifests(manifests);
            Ok(())
        })
    }

    /// The digests of every blob reachable from `index.json`: indexes, manifests, configs and
    /// layers, plus the manifests that refer to a reachable manifest through `subject`
    /// (signatures and SBOMs stay with their image, as registries keep them).
    pub fn reachable(&self) -> Result<HashSet<Digest>> {
        let index = self.index()?;
        let mut live = HashSet::new();
        let mut queue: Vec<(Descriptor, usize)> =
            index.manifests().iter().map(|d| (d.clone(), 0)).collect();
        while let Some((d, depth)) = queue.pop() {
            if !live.insert(d.digest().clone()) {
                continue;
            }
            if !self.has_blob(d.digest())? {
                continue;
            }
            match media_type::kind(d.media_type()) {
                Kind::Index if depth < MAX_INDEX_DEPTH => {
                    let i = self.read_index(&d)?;
                    queue.extend(i.manifests().iter().map(|m| (m.clone(), depth + 1)));
                }
                Kind::Manifest => {
                    let m = self.read_manifest(&d)?;
                    live.insert(m.config().digest().clone());
                    live.extend(m.layers().iter().map(|l| l.digest().clone()));
                }
                _ => {}
            }
        }
        // Referrers of live manifests: a fixed point, since a signature can itself be signed.
        let subjects = self.all_subjects()?;
        loop {
            let mut grew = false;
            for (referrer, subject) in &subjects {
                if live.contains(subject) && !live.contains(referrer.digest()) {
                    live.insert(referrer.digest().clone());
                    if let Ok(m) = self.read_manifest(referrer) {
                        live.insert(m.config().digest().clone());
                        live.extend(m.layers().iter().map(|l| l.digest().clone()));
                    }
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
        Ok(live)
    }

    /// Removes every blob that [`Layout::reachable`] does not reach and no live [`crate::Lease`]
    /// holds, the leases and `index.json` temporaries of writers that died, and blob
    /// temporaries that interrupted writers left more than an hour ago. Holds the layout lock
    /// while it runs.
    pub fn gc(&self) -> Result<GcReport> {
        self.gc_with(&GcOptions::default())
    }

    /// [`Layout::gc`], with options: [`GcOptions::partials`] also reclaims the partial
    /// downloads no writer holds.
    pub fn gc_with(&self, options: &GcOptions) -> Result<GcReport> {
        let _lock = self.lock()?;
        let mut live = self.reachable()?;
        // Content in flight: written by a pull or held by an unpack, not tagged (yet).
        live.extend(self.leased_locked()?);
        let mut report = GcReport::default();
        let blobs = self.path().join("blobs");
        let now = SystemTime::now();
        // Interrupted blob writers leave temporaries in blobs/, index writers in the root
        // (those are written under the lock we hold, so any found now is stale).
        report.temp_files_removed += self.sweep_locked()?;
        report.temp_files_removed += remove_stale_temps(&blobs, now, options.partials)?;
        for alg in fs::read_dir(&blobs).map_err(|e| Error::io(&blobs, e))? {
            let alg = alg.map_err(|e| Error::io(&blobs, e))?;
            let name = alg.file_name().to_string_lossy().into_owned();
            let ft = alg.file_type().map_err(|e| Error::io(alg.path(), e))?;
            if !ft.is_dir() || !matches!(name.as_str(), "sha256" | "sha512") {
                continue;
            }
            for blob in fs::read_dir(alg.path()).map_err(|e| Error::io(alg.path(), e))? {
                let blob = blob.map_err(|e| Error::io(alg.path(), e))?;
                let encoded = blob.file_name().to_string_lossy().into_owned();
                let Ok(digest) = crate::digest::parse_digest(&format!("{name}:{encoded}")) else {
                    continue; // not a blob name: not ours to delete
                };
                if live.contains(&digest) {
                    continue;
                }
                let size = blob.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(blob.path()).map_err(|e| Error::io(blob.path(), e))?;
                report.removed.push(digest);
                report.bytes_freed += size;
            }
        }
        report.removed.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
        Ok(report)
    }

    /// The manifests in the layout that name `subject` as their subject (the referrers of
    /// distribution-spec's referrers API, computed over a local layout), optionally only those
    /// of one `artifact_type`. Each descriptor carries the referrer's `artifactType` (or its
    /// config media type) and annotations, as the referrers API returns them.
    ///
    /// All manifest-sized JSON blobs in the store are considered, not only those `index.json`
    /// lists, since tools that attach artifacts do not always list them.
    pub fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>> {
        let mut out: Vec<Descriptor> = self
            .all_subjects()?
            .into_iter()
            .filter(|(_, s)| s == subject)
            .map(|(d, _)| d)
            .filter(|d| {
                artifact_type
                    .is_none_or(|t| d.artifact_type().as_ref().is_some_and(|a| a.as_ref() == t))
            })
            .collect();
        out.sort_by(|a, b| a.digest().as_ref().cmp(b.digest().as_ref()));
        Ok(out)
    }

    /// The referrers of `subject` as the image index the referrers API answers with.
    pub fn referrers_index(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<ImageIndex> {
        let manifests = self.referrers(subject, artifact_type)?;
        ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(manifests)
            .build()
            .map_err(|e| Error::Invalid {
                what: "referrers index".into(),
                reason: e.to_string(),
            })
    }

    /// Every manifest in the store that has a `subject`, as (referrer descriptor, subject).
    fn all_subjects(&self) -> Result<Vec<(Descriptor, Digest)>> {
        #[derive(serde::Deserialize)]
        struct Probe {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
            #[serde(rename = "artifactType")]
            artifact_type: Option<String>,
            config: Option<ConfigProbe>,
            manifests: Option<serde::de::IgnoredAny>,
            subject: Option<Descriptor>,
            annotations: Option<HashMap<String, String>>,
        }
        #[derive(serde::Deserialize)]
        struct ConfigProbe {
            #[serde(rename = "mediaType")]
            media_type: String,
        }
        let mut out = Vec::new();
        let blobs = self.path().join("blobs");
        for alg in ["sha256", "sha512"] {
            let dir = blobs.join(alg);
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(&dir, e))?;
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() || meta.len() > MAX_MANIFEST_SIZE || meta.len() < 2 {
                    continue;
                }
                let encoded = entry.file_name().to_string_lossy().into_owned();
                let Ok(digest) = crate::digest::parse_digest(&format!("{alg}:{encoded}")) else {
                    continue;
                };
                // Cheap sniff before the verified read: JSON objects start with '{'.
                let mut first = [0u8; 1];
                let starts_with_brace = fs::File::open(entry.path())
                    .and_then(|mut f| std::io::Read::read(&mut f, &mut first))
                    .map(|n| n == 1 && first[0] == b'{')
                    .unwrap_or(false);
                if !starts_with_brace {
                    continue;
                }
                let probe_desc =
                    Descriptor::new(MediaType::Other(String::new()), meta.len(), digest.clone());
                // Content that does not verify is not a referrer we can vouch for.
                let Ok(bytes) = self.read_blob(&probe_desc, MAX_MANIFEST_SIZE) else {
                    continue;
                };
                let Ok(p) = serde_json::from_slice::<Probe>(&bytes) else {
                    continue;
                };
                let Some(subject) = p.subject else { continue };
                let media_type = match (&p.media_type, &p.manifests) {
                    (Some(mt), _) => mt.clone(),
                    (None, Some(_)) => MediaType::ImageIndex.to_string(),
                    (None, None) => MediaType::ImageManifest.to_string(),
                };
                let mut d = Descriptor::new(media_type.as_str().into(), meta.len(), digest);
                // distribution-spec "Listing Referrers": artifactType, else config.mediaType.
                let at = p.artifact_type.or(p.config.map(|c| c.media_type));
                d.set_artifact_type(at.map(|a| a.as_str().into()));
                d.set_annotations(p.annotations.filter(|a| !a.is_empty()));
                out.push((d, subject.digest().clone()));
            }
        }
        Ok(out)
    }
}

/// Removes `.tmp-*` files in `dir` older than [`TEMP_GRACE`]; with `partials`, also the partial
/// downloads no writer holds locked, whatever their age.
fn remove_stale_temps(dir: &std::path::Path, now: SystemTime, partials: bool) -> Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if !entry.file_name().to_string_lossy().starts_with(".tmp-") {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > TEMP_GRACE);
        let partial = partials
            && meta.is_file()
            && entry
                .file_name()
                .to_string_lossy()
                .starts_with(".tmp-partial-");
        if partial {
            // The writer holds an exclusive flock for as long as it writes; a file whose
            // lock we get has no writer (removed while we hold it: a writer that opens it
            // meanwhile finds it gone and starts a new one).
            let Ok(f) = fs::File::open(entry.path()) else {
                continue;
            };
            match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {
                    fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
                    removed += 1;
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {}
                Err(e) => return Err(Error::io(entry.path(), e.into())),
            }
        } else if meta.is_file() && old {
            fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_grammar() {
        for ok in [
            "latest",
            "v1.0",
            "foo/bar:1",
            "a--b",
            "a_b",
            "registry.io/x@y+z",
            "1",
        ] {
            check_tag(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "", "-a", "a-", "a..b", "a/", "/a", "a//b", "a b", "a\nb", "../x", "a---b",
        ] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }
}
