//! Manifest, index and config parsing, platform strings, tags and digests: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_image::spec::image::{Descriptor, MediaType};

const MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let mt = MEDIA_TYPES[selector as usize % MEDIA_TYPES.len()];
    let desc = Descriptor::new(MediaType::from(mt), rest.len() as u64, oci_image::sha256_digest(rest));
    let _ = oci_image::parse_manifest(rest, &desc);
    let _ = oci_image::parse_index(rest, &desc);
    let _ = oci_image::parse_config(rest, &desc);
    if let Ok(s) = std::str::from_utf8(rest) {
        let _ = s.parse::<oci_image::PlatformSpec>().map(|p| p.to_string());
        let _ = oci_image::check_tag(s);
        let _ = oci_image::parse_digest(s);
        let _ = oci_image::media_type::is_valid_media_type(s);
    }
});
