//! Read, verify and write OCI image layouts.
//!
//! `oci-image` is the first step of the toolkit's flow: it opens an image layout
//! (image-spec `image-layout.md`), serves its blobs through a content store that checks every
//! size and digest, resolves what a user names (a tag, a digest, nested indexes, a platform) to a
//! runnable [`Image`], validates whole layouts, and writes blobs, manifests and tags atomically.
//!
//! Spec types come from [`oci_spec`] (re-exported as [`spec`]), so values pass freely between
//! this crate, the rest of the workspace and users' code; this crate adds what `oci-spec` lacks:
//! verification, resolution, Docker media types, validation and the write side.
//!
//! ```
//! # fn main() -> Result<(), oci_image::Error> {
//! use oci_image::{Layout, spec::image::*};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let layout = Layout::create(dir.path())?;
//!
//! // A one-layer image: the layer (an empty tar), its config, its manifest, a tag.
//! let tar = vec![0u8; 1024];
//! let layer = layout.put_blob(MediaType::ImageLayer, &tar)?;
//! let config = ImageConfigurationBuilder::default()
//!     .architecture(Arch::Amd64)
//!     .os(Os::Linux)
//!     .rootfs(RootFsBuilder::default()
//!         .typ("layers")
//!         .diff_ids(vec![layer.digest().to_string()])
//!         .build()
//!         .unwrap())
//!     .build()
//!     .unwrap();
//! let config = layout.put_json(MediaType::ImageConfig, &config)?;
//! let manifest = ImageManifestBuilder::default()
//!     .schema_version(2u32)
//!     .media_type(MediaType::ImageManifest)
//!     .config(config)
//!     .layers(vec![layer])
//!     .build()
//!     .unwrap();
//! let desc = layout.put_manifest(&manifest)?;
//! layout.tag("latest", &desc)?;
//!
//! let platform = "linux/amd64".parse()?;
//! let image = layout.resolve("latest", Some(&platform))?;
//! assert_eq!(image.layers.len(), 1);
//! assert!(layout.validate().is_valid());
//! # Ok(()) }
//! ```
//!
//! # Choices
//! - Hashing is `sha2`, which uses the CPU's SHA extensions where present, so verification
//!   runs at several GB/s and is not the bottleneck of unpacking.
//! - Errors name the file, digest and JSON field; JSON errors come through
//!   `serde_path_to_error`, so a bad field is reported as `manifests[3].platform.os`.
//! - Only the registered digest algorithms (sha256, sha512) are accepted before a digest names
//!   a file, which keeps every blob path inside `blobs/`; blobs are opened with `O_NOFOLLOW`
//!   and must be regular files.

#![warn(missing_docs)]

pub mod digest;
mod error;
mod layout;
mod lease;
pub mod media_type;
pub mod platform;
#[cfg(feature = "registry")]
pub mod registry;
mod resolve;
pub mod validate;
mod write;

pub use oci_spec as spec;

pub use digest::{parse_digest, sha256_digest, Hasher, VerifyingReader};
pub use error::{Error, Result};
pub use layout::{
    parse_config, parse_index, parse_manifest, BlobWriter, Layout, PartialBlob, LAYOUT_VERSION,
    MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE,
};
pub use lease::Lease;
pub use platform::PlatformSpec;
pub use resolve::{Image, Layer, ANNOTATION_CONTAINERD_NAME, MAX_INDEX_DEPTH};
pub use validate::{Problem, Report, Severity, ValidateOptions};
pub use write::{check_tag, GcOptions, GcReport};
