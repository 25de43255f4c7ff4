//! From what a user names (a tag, a digest) to an image: manifest, config and layers.

use std::collections::{HashMap, HashSet};

use oci_spec::image::{Descriptor, Digest, ImageConfiguration, ImageManifest, ANNOTATION_REF_NAME};

use crate::digest::parse_digest;
use crate::error::{Error, Result};
use crate::layout::{blob_file_name, Layout, MAX_CONFIG_SIZE};
use crate::media_type::{self, Kind};
use crate::platform::PlatformSpec;

/// How deeply image indexes may nest before resolution gives up.
pub const MAX_INDEX_DEPTH: usize = 8;

/// How many manifests and indexes one resolution may read before it gives up (a bound on
/// hostile layouts whose indexes fan out).
const MAX_DOCUMENTS: usize = 4096;

/// containerd's export names images with this annotation; accepted as a second way to name a tag.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// A resolved, runnable image.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest's descriptor (with the digest that identifies the image).
    pub manifest_descriptor: Descriptor,
    /// The manifest.
    pub manifest: ImageManifest,
    /// The parsed image config.
    pub config: ImageConfiguration,
    /// The layers, base first, each with its diff_id from the config.
    pub layers: Vec<Layer>,
}

impl Image {
    /// The platform the image config declares.
    pub fn platform(&self) -> PlatformSpec {
        let c = &self.config;
        let p = oci_spec::image::PlatformBuilder::default()
            .os(c.os().clone())
            .architecture(c.architecture().clone());
        let p = match c.variant() {
            Some(v) => p.variant(v.clone()),
            None => p,
        };
        match p.build() {
            Ok(p) => PlatformSpec::from_platform(&p),
            Err(_) => unreachable!("os and architecture are set"),
        }
    }

    /// The manifest's digest.
    pub fn digest(&self) -> &Digest {
        self.manifest_descriptor.digest()
    }
}

/// One layer of an image: the blob to fetch and the digest of its uncompressed tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The layer blob's descriptor.
    pub descriptor: Descriptor,
    /// The digest of the uncompressed tar (`rootfs.diff_ids[i]`).
    pub diff_id: Digest,
}

impl Layout {
    /// The tags in `index.json` (`org.opencontainers.image.ref.name`), in order, without
    /// duplicates.
    pub fn tags(&self) -> Result<Vec<String>> {
        let index = self.index()?;
        let mut seen = HashSet::new();
        Ok(index
            .manifests()
            .iter()
            .filter_map(|d| ref_name(d).map(str::to_string))
            .filter(|t| seen.insert(t.clone()))
            .collect())
    }

    /// The descriptors a reference names: those of `index.json` tagged `reference`, or the
    /// manifest or index with digest `reference` (in `index.json`, nested in an index there, or
    /// only in the blob store). An empty reference names the layout's only manifest.
    pub fn find(&self, reference: &str) -> Result<Vec<Descriptor>> {
        let index = self.index()?;
        let not_found = || -> Result<Vec<Descriptor>> {
            Err(Error::NotFound {
                reference: reference.to_string(),
                layout: self.path().to_path_buf(),
                available: self.tags().unwrap_or_default(),
            })
        };
        if reference.is_empty() {
            return match index.manifests().as_slice() {
                [only] => Ok(vec![only.clone()]),
                _ => not_found(),
            };
        }
        let tagged: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| ref_name(d) == Some(reference))
            .cloned()
            .collect();
        if !tagged.is_empty() {
            return Ok(tagged);
        }
        let named: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| {
                d.annotations()
                    .as_ref()
                    .and_then(|a| a.get(ANNOTATION_CONTAINERD_NAME))
                    .is_some_and(|n| n == reference)
            })
            .cloned()
            .collect();
        if !named.is_empty() {
            return Ok(named);
        }
        if looks_like_digest(reference) {
            let digest = parse_digest(reference)?;
            if let Some(d) = self.find_descriptor(&digest, index.manifests())? {
                return Ok(vec![d]);
            }
            if self.has_blob(&digest)? {
                return Ok(vec![self.sniff(&digest)?]);
            }
            return not_found();
        }
        not_found()
    }

    /// Resolves a reference to a runnable image for `platform` (the host's when `None`).
    ///
    /// Indexes are followed, nested or not; among the manifests that can run on the platform
    /// the closest variant wins, then the first in index order (image-index.md). Manifests
    /// without a platform in their descriptor are matched on their config's platform. When
    /// nothing matches, the error lists the platforms that are there.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), oci_image::Error> {
    /// let layout = oci_image::Layout::open("/var/lib/images/busybox")?;
    /// let image = layout.resolve("latest", None)?;
    /// for layer in &image.layers {
    ///     println!("{} -> {}", layer.descriptor.digest(), layer.diff_id);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn resolve(&self, reference: &str, platform: Option<&PlatformSpec>) -> Result<Image> {
        let host;
        let wanted = match platform {
            Some(p) => p,
            None => {
                host = PlatformSpec::host();
                &host
            }
        };
        let candidates = self.find(reference)?;
        let mut sel = Selector {
            layout: self,
            wanted,
            seen_platforms: Vec::new(),
            memo: HashMap::new(),
            documents: 0,
        };
        match sel.best(&candidates, &mut Vec::new())? {
            Some((_, desc)) => self.image(&desc),
            None => Err(Error::NoMatchingPlatform {
                wanted: wanted.to_string(),
                within: if reference.is_empty() {
                    "index.json".into()
                } else {
                    reference.to_string()
                },
                available: sel.seen_platforms,
            }),
        }
    }

    /// Reads the image a manifest descriptor names: manifest, config, and layers paired with
    /// their diff_ids.
    pub fn image(&self, manifest_descriptor: &Descriptor) -> Result<Image> {
        let manifest = self.read_manifest(manifest_descriptor)?;
        let config_desc = manifest.config();
        match media_type::kind(config_desc.media_type()) {
            Kind::Config => {}
            _ => {
                return Err(Error::UnexpectedMediaType {
                    digest: config_desc.digest().clone(),
                    media_type: config_desc.media_type().to_string(),
                    expected:
                        "an image config (this manifest is an artifact, not a runnable image)",
                })
            }
        }
        let config: ImageConfiguration = self.read_json(config_desc, MAX_CONFIG_SIZE)?;
        let config_file = blob_file_name(config_desc.digest());
        if config.rootfs().typ() != "layers" {
            return Err(Error::Json {
                file: config_file,
                field: "rootfs.type".into(),
                message: format!("must be \"layers\", found {:?}", config.rootfs().typ()),
            });
        }
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(Error::LayerCountMismatch {
                manifest: manifest_descriptor.digest().clone(),
                config: config_desc.digest().clone(),
                layers: manifest.layers().len(),
                diff_ids: diff_ids.len(),
            });
        }
        let mut layers = Vec::with_capacity(diff_ids.len());
        for (i, (desc, diff_id)) in manifest.layers().iter().zip(diff_ids).enumerate() {
            if !matches!(media_type::kind(desc.media_type()), Kind::Layer { .. }) {
                return Err(Error::UnexpectedMediaType {
                    digest: desc.digest().clone(),
                    media_type: desc.media_type().to_string(),
                    expected: "a layer",
                });
            }
            crate::digest::check_registered(desc.digest())?;
            let diff_id = parse_digest(diff_id).map_err(|e| Error::Json {
                file: config_file.clone(),
                field: format!("rootfs.diff_ids[{i}]"),
                message: e.to_string(),
            })?;
            layers.push(Layer {
                descriptor: desc.clone(),
                diff_id,
            });
        }
        Ok(Image {
            manifest_descriptor: manifest_descriptor.clone(),
            manifest,
            config,
            layers,
        })
    }

    /// Searches `descriptors` and the indexes they reach for one with `digest`.
    fn find_descriptor(
        &self,
        digest: &Digest,
        descriptors: &[Descriptor],
    ) -> Result<Option<Descriptor>> {
        let mut queue: Vec<(Descriptor, usize)> =
            descriptors.iter().map(|d| (d.clone(), 0)).collect();
        let mut visited = HashSet::new();
        while let Some((d, depth)) = queue.pop() {
            if d.digest() == digest {
                return Ok(Some(d));
            }
            if media_type::kind(d.media_type()) == Kind::Index
                && depth < MAX_INDEX_DEPTH
                && visited.insert(d.digest().clone())
                && visited.len() <= MAX_DOCUMENTS
            {
                // An unreadable nested index cannot hold the digest; resolution reports it.
                if let Ok(index) = self.read_index(&d) {
                    queue.extend(index.manifests().iter().map(|m| (m.clone(), depth + 1)));
                }
            }
        }
        Ok(None)
    }

    /// Builds a descriptor for a blob known only by digest, from its content.
    fn sniff(&self, digest: &Digest) -> Result<Descriptor> {
        let path = self.blob_path(digest)?;
        let len = std::fs::symlink_metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .len();
        let probe = Descriptor::new(
            oci_spec::image::MediaType::Other("".into()),
            len,
            digest.clone(),
        );
        let bytes = self.read_blob(&probe, crate::layout::MAX_MANIFEST_SIZE)?;
        #[derive(serde::Deserialize)]
        struct Probe {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
            manifests: Option<serde::de::IgnoredAny>,
            config: Option<serde::de::IgnoredAny>,
        }
        let p: Probe = crate::layout::parse_json(&bytes, &blob_file_name(digest))?;
        let mt = match (p.media_type, p.manifests.is_some(), p.config.is_some()) {
            (Some(mt), _, _) => mt,
            (None, true, false) => oci_spec::image::MediaType::ImageIndex.to_string(),
            (None, false, true) => oci_spec::image::MediaType::ImageManifest.to_string(),
            _ => {
                return Err(Error::Invalid {
                    what: blob_file_name(digest),
                    reason: "neither an image manifest nor an image index".into(),
                })
            }
        };
        Ok(Descriptor::new(mt.as_str().into(), len, digest.clone()))
    }
}

struct Selector<'a> {
    layout: &'a Layout,
    wanted: &'a PlatformSpec,
    seen_platforms: Vec<String>,
    memo: HashMap<Digest, Option<(u32, Descriptor)>>,
    documents: usize,
}

impl Selector<'_> {
    /// The best manifest among `candidates` (following indexes), with its rank.
    fn best(
        &mut self,
        candidates: &[Descriptor],
        chain: &mut Vec<Digest>,
    ) -> Result<Option<(u32, Descriptor)>> {
        let mut best: Option<(u32, Descriptor)> = None;
        let mut first_error = None;
        for d in candidates {
            let found = match media_type::kind(d.media_type()) {
                Kind::Manifest => self.rank_manifest(d),
                Kind::Index => self.best_in_index(d, chain),
                Kind::Schema1 => Err(Error::Schema1 {
                    digest: d.digest().clone(),
                    media_type: d.media_type().to_string(),
                }),
                _ => Ok(None),
            };
            match found {
                Ok(Some((rank, desc))) => {
                    if best.as_ref().is_none_or(|(r, _)| rank < *r) {
                        best = Some((rank, desc));
                    }
                }
                Ok(None) => {}
                // Structural errors (cycles, depth, budget) are about the layout as a whole.
                Err(e @ (Error::IndexCycle { .. } | Error::NestingTooDeep { .. })) => {
                    return Err(e)
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match (best, first_error) {
            (Some(b), _) => Ok(Some(b)),
            // Nothing usable: a broken candidate explains more than "no match".
            (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        }
    }

    fn count_document(&mut self, d: &Descriptor) -> Result<()> {
        self.documents += 1;
        if self.documents > MAX_DOCUMENTS {
            return Err(Error::Invalid {
                what: d.digest().to_string(),
                reason: format!("resolution read more than {MAX_DOCUMENTS} manifests and indexes"),
            });
        }
        Ok(())
    }

    fn best_in_index(
        &mut self,
        d: &Descriptor,
        chain: &mut Vec<Digest>,
    ) -> Result<Option<(u32, Descriptor)>> {
        if chain.contains(d.digest()) {
            let mut names: Vec<String> = chain.iter().map(|c| c.to_string()).collect();
            names.push(d.digest().to_string());
            return Err(Error::IndexCycle {
                digest: d.digest().clone(),
                chain: names,
            });
        }
        if chain.len() >= MAX_INDEX_DEPTH {
            return Err(Error::NestingTooDeep {
                digest: d.digest().clone(),
                limit: MAX_INDEX_DEPTH,
            });
        }
        if let Some(hit) = self.memo.get(d.digest()) {
            return Ok(hit.clone());
        }
        self.count_document(d)?;
        let index = self.layout.read_index(d)?;
        chain.push(d.digest().clone());
        let r = self.best(index.manifests(), chain);
        chain.pop();
        let r = r?;
        self.memo.insert(d.digest().clone(), r.clone());
        Ok(r)
    }

    fn rank_manifest(&mut self, d: &Descriptor) -> Result<Option<(u32, Descriptor)>> {
        let platform = match d.platform() {
            Some(p) => PlatformSpec::from_platform(p),
            None => {
                // No platform in the descriptor: the config says what the image is for.
                self.count_document(d)?;
                let manifest = self.layout.read_manifest(d)?;
                let config = manifest.config();
                if media_type::kind(config.media_type()) != Kind::Config {
                    return Ok(None); // an artifact, not an image
                }
                let c: ConfigPlatform = self.layout.read_json(config, MAX_CONFIG_SIZE)?;
                let p = oci_spec::image::PlatformBuilder::default()
                    .os(c.os.as_str())
                    .architecture(c.architecture.as_str());
                let p = match c.variant {
                    Some(v) => p.variant(v),
                    None => p,
                };
                let p = match c.os_version {
                    Some(v) => p.os_version(v),
                    None => p,
                };
                let p = match c.os_features {
                    Some(v) => p.os_features(v),
                    None => p,
                };
                match p.build() {
                    Ok(p) => PlatformSpec::from_platform(&p),
                    Err(_) => return Ok(None),
                }
            }
        };
        let name = platform.to_string();
        // Attestation manifests (BuildKit's "unknown/unknown") are not images to run.
        if platform.os == "unknown" {
            return Ok(None);
        }
        if !self.seen_platforms.contains(&name) {
            self.seen_platforms.push(name);
        }
        Ok(self.wanted.rank(&platform).map(|r| (r, d.clone())))
    }
}

/// The platform fields of an image config (config.md), read without the rest.
#[derive(serde::Deserialize)]
struct ConfigPlatform {
    architecture: String,
    os: String,
    variant: Option<String>,
    #[serde(rename = "os.version")]
    os_version: Option<String>,
    #[serde(rename = "os.features")]
    os_features: Option<Vec<String>>,
}

pub(crate) fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_REF_NAME))
        .map(String::as_str)
}

/// `alg:encoded` with a registered-looking algorithm; tags cannot contain ':' followed by
/// 64 hex digits, so this never shadows a tag.
fn looks_like_digest(s: &str) -> bool {
    s.starts_with("sha256:") || s.starts_with("sha512:") || {
        match s.split_once(':') {
            Some((alg, enc)) => {
                !alg.is_empty()
                    && alg.bytes().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || b"+._-".contains(&c)
                    })
                    && enc.len() >= 32
            }
            None => false,
        }
    }
}
