//! Media types: the OCI ones (media-types.md) and Docker's schema 2 equivalents, which
//! containerd and podman accept wherever an OCI type is expected.

use oci_spec::image::MediaType;

/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (the equivalent of an OCI image index).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker foreign (non-distributable) gzip layer.
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker schema 1 manifest (refused).
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker signed schema 1 manifest (refused).
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// The empty descriptor's media type (manifest.md, "Guidance for an Empty Descriptor").
pub const EMPTY_JSON: &str = "application/vnd.oci.empty.v1+json";
/// The digest of the two bytes `{}`, the content of the empty descriptor.
pub const EMPTY_JSON_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// How a layer's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// zstd (RFC 8478).
    Zstd,
}

/// What a media type denotes, with OCI and Docker types folded together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An image index or Docker manifest list.
    Index,
    /// An image manifest or Docker schema 2 manifest.
    Manifest,
    /// A Docker schema 1 manifest, which this crate refuses.
    Schema1,
    /// An image config (OCI or Docker).
    Config,
    /// A filesystem layer.
    Layer {
        /// Its compression.
        compression: Compression,
        /// True for non-distributable (foreign) layers.
        non_distributable: bool,
    },
    /// The empty descriptor's type.
    Empty,
    /// Anything else (artifact configs and blobs, unknown types).
    Other,
}

/// Classifies a media type string.
pub fn kind_of(media_type: &str) -> Kind {
    let layer = |compression, non_distributable| Kind::Layer {
        compression,
        non_distributable,
    };
    match media_type {
        "application/vnd.oci.image.index.v1+json" | DOCKER_MANIFEST_LIST => Kind::Index,
        "application/vnd.oci.image.manifest.v1+json" | DOCKER_MANIFEST => Kind::Manifest,
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Kind::Schema1,
        "application/vnd.oci.image.config.v1+json" | DOCKER_CONFIG => Kind::Config,
        "application/vnd.oci.image.layer.v1.tar" => layer(Compression::None, false),
        "application/vnd.oci.image.layer.v1.tar+gzip" | DOCKER_LAYER_GZIP => {
            layer(Compression::Gzip, false)
        }
        "application/vnd.oci.image.layer.v1.tar+zstd" => layer(Compression::Zstd, false),
        "application/vnd.oci.image.layer.nondistributable.v1.tar" => layer(Compression::None, true),
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | DOCKER_LAYER_FOREIGN_GZIP => layer(Compression::Gzip, true),
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
            layer(Compression::Zstd, true)
        }
        EMPTY_JSON => Kind::Empty,
        _ => Kind::Other,
    }
}

/// Classifies an `oci_spec` media type.
pub fn kind(media_type: &MediaType) -> Kind {
    kind_of(media_type.as_ref())
}

/// True if the string is a syntactically valid media type (RFC 6838 section 4.2:
/// `type "/" subtype`, each a restricted name of 1 to 127 characters, plus an optional
/// `+suffix`).
pub fn is_valid_media_type(s: &str) -> bool {
    fn restricted_name(n: &str) -> bool {
        let b = n.as_bytes();
        !b.is_empty()
            && b.len() <= 127
            && b[0].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(c))
    }
    match s.split_once('/') {
        Some((t, sub)) => restricted_name(t) && restricted_name(sub),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_and_oci_fold_together() {
        assert_eq!(kind_of(DOCKER_MANIFEST), Kind::Manifest);
        assert_eq!(
            kind_of("application/vnd.oci.image.manifest.v1+json"),
            Kind::Manifest
        );
        assert_eq!(kind_of(DOCKER_MANIFEST_LIST), Kind::Index);
        assert_eq!(
            kind_of(DOCKER_LAYER_GZIP),
            Kind::Layer {
                compression: Compression::Gzip,
                non_distributable: false
            }
        );
        assert_eq!(kind_of("text/plain"), Kind::Other);
    }

    #[test]
    fn media_type_syntax() {
        assert!(is_valid_media_type(
            "application/vnd.oci.image.manifest.v1+json"
        ));
        assert!(!is_valid_media_type("application"));
        assert!(!is_valid_media_type("application/"));
        assert!(!is_valid_media_type("a/b/c"));
        assert!(!is_valid_media_type("appli cation/json"));
    }
}
