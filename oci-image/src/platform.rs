//! Platform selection (image-index.md, "platform" and "Platform Variants").
//!
//! Names are normalized the way containerd's `platforms` package does (GOOS/GOARCH values,
//! `aarch64` → `arm64`, `x86_64` → `amd64`, `armhf` → `arm/v7`), variants take the spec's
//! defaults (`arm64` → `v8`, `arm` → `v7`, `amd64` → `v1`), and a wanted variant also accepts
//! older compatible variants of the same architecture (an `arm/v7` host runs `arm/v6` images),
//! preferring the closest.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::{Arch, Os, Platform, PlatformBuilder};

use crate::error::{Error, Result};

/// A platform to select: `os/architecture[/variant]`, with optional `os.version` and
/// `os.features`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    /// GOOS value, e.g. `linux`.
    pub os: String,
    /// GOARCH value, e.g. `amd64`.
    pub architecture: String,
    /// CPU variant (`v8` for arm64), normalized; empty when the architecture has none.
    pub variant: String,
    /// Wanted `os.version`; when set, manifests that declare a different one are skipped.
    pub os_version: Option<String>,
    /// OS features the host has; a manifest that requires others is skipped.
    pub os_features: Vec<String>,
}

impl PlatformSpec {
    /// The platform this program runs on (Linux, with the architecture it was built for).
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86" => "386",
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "loongarch64" => "loong64",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            other => other,
        };
        let (architecture, variant) = normalize_arch(arch, "");
        Self {
            os: normalize_os(std::env::consts::OS),
            architecture,
            variant,
            os_version: None,
            os_features: Vec::new(),
        }
    }

    /// The platform an index descriptor or image config declares.
    pub fn from_platform(p: &Platform) -> Self {
        let (architecture, variant) = normalize_arch(
            &p.architecture().to_string(),
            p.variant().as_deref().unwrap_or(""),
        );
        Self {
            os: normalize_os(&p.os().to_string()),
            architecture,
            variant,
            os_version: p.os_version().clone(),
            os_features: p.os_features().clone().unwrap_or_default(),
        }
    }

    /// As an `oci_spec` [`Platform`].
    pub fn to_platform(&self) -> Platform {
        let mut b = PlatformBuilder::default()
            .os(Os::from(self.os.as_str()))
            .architecture(Arch::from(self.architecture.as_str()));
        if !self.variant.is_empty() {
            b = b.variant(self.variant.clone());
        }
        if let Some(v) = &self.os_version {
            b = b.os_version(v.clone());
        }
        if !self.os_features.is_empty() {
            b = b.os_features(self.os_features.clone());
        }
        b.build()
            .unwrap_or_else(|_| unreachable!("os and architecture are set"))
    }

    /// How well a candidate fits this wanted platform: `None` if it cannot run, otherwise a
    /// rank where lower is better (0 is an exact match).
    pub fn rank(&self, candidate: &PlatformSpec) -> Option<u32> {
        if self.os != candidate.os || self.architecture != candidate.architecture {
            return None;
        }
        let mut rank = variant_distance(&self.architecture, &self.variant, &candidate.variant)?;
        match (&self.os_version, &candidate.os_version) {
            (Some(w), Some(c)) if w != c => return None,
            (Some(_), None) => rank += 1,
            _ => {}
        }
        if !candidate
            .os_features
            .iter()
            .all(|f| self.os_features.contains(f))
        {
            return None;
        }
        Some(rank)
    }

    /// True if a candidate can run on this platform.
    pub fn matches(&self, candidate: &PlatformSpec) -> bool {
        self.rank(candidate).is_some()
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        if let Some(v) = &self.os_version {
            write!(f, " (os.version {v})")?;
        }
        if !self.os_features.is_empty() {
            write!(f, " (os.features {})", self.os_features.join(","))?;
        }
        Ok(())
    }
}

impl FromStr for PlatformSpec {
    type Err = Error;

    /// Parses `os/arch[/variant]` or `arch` alone (Linux assumed), as `--platform` flags do.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::Invalid {
            what: format!("platform {s:?}"),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("empty component"));
        }
        if !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/._-".contains(&c))
        {
            return Err(bad(
                "only letters, digits, '.', '_', '-' and '/' are allowed",
            ));
        }
        let (os, arch, variant) = match parts.as_slice() {
            [arch] => ("linux", *arch, ""),
            [os, arch] => (*os, *arch, ""),
            [os, arch, variant] => (*os, *arch, *variant),
            _ => return Err(bad("expected os/arch[/variant]")),
        };
        let (architecture, variant) = normalize_arch(&arch.to_ascii_lowercase(), variant);
        Ok(Self {
            os: normalize_os(os),
            architecture,
            variant,
            os_version: None,
            os_features: Vec::new(),
        })
    }
}

fn normalize_os(os: &str) -> String {
    match os.to_ascii_lowercase().as_str() {
        "macos" => "darwin".into(),
        other => other.into(),
    }
}

/// Normalizes a GOARCH name and variant (containerd's `platforms.Normalize`, with the spec's
/// default variants filled in).
pub fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let variant = variant.to_ascii_lowercase();
    let (arch, variant) = match arch {
        "i386" | "i486" | "i586" | "i686" | "x86" => ("386", variant),
        "x86_64" | "x86-64" | "amd64" => ("amd64", variant),
        "aarch64" | "arm64" => ("arm64", variant),
        "armhf" => ("arm", "v7".to_string()),
        "armel" => ("arm", "v6".to_string()),
        other => (other, variant),
    };
    let variant = match (arch, variant.as_str()) {
        ("arm64", "" | "8" | "v8" | "v8.0") => "v8".to_string(),
        ("arm", "") => "v7".to_string(),
        ("arm", "5" | "6" | "7" | "8") => format!("v{variant}"),
        ("amd64", "v1") => String::new(),
        _ => variant,
    };
    (arch.to_string(), variant)
}

/// Parses `vN` or `vN.M` into a comparable number; amd64's empty variant is v1.
fn variant_level(arch: &str, v: &str) -> Option<(u32, u32)> {
    if v.is_empty() && arch == "amd64" {
        return Some((1, 0));
    }
    let rest = v.strip_prefix('v')?;
    let (major, minor) = match rest.split_once('.') {
        Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
        None => (rest.parse().ok()?, 0),
    };
    Some((major, minor))
}

/// 0 for the same variant; for architectures whose variants are backward compatible (arm,
/// arm64, amd64) the number of steps down to an older candidate variant; `None` otherwise.
fn variant_distance(arch: &str, wanted: &str, candidate: &str) -> Option<u32> {
    if wanted == candidate {
        return Some(0);
    }
    if !matches!(arch, "arm" | "arm64" | "amd64") {
        return None;
    }
    let w = variant_level(arch, wanted)?;
    let c = variant_level(arch, candidate)?;
    if c > w {
        return None;
    }
    Some((w.0 - c.0) * 10 + w.1.saturating_sub(c.1) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PlatformSpec {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_and_aliases() {
        assert_eq!(p("linux/arm64"), p("linux/arm64/v8"));
        assert_eq!(p("linux/aarch64"), p("linux/arm64/v8"));
        assert_eq!(p("linux/x86_64"), p("linux/amd64"));
        assert_eq!(p("linux/amd64/v1"), p("linux/amd64"));
        assert_eq!(p("linux/arm"), p("linux/arm/v7"));
        assert_eq!(p("amd64"), p("linux/amd64"));
        assert_eq!(p("linux/arm64").to_string(), "linux/arm64/v8");
    }

    #[test]
    fn older_variants_are_compatible_and_ranked() {
        let host = p("linux/arm/v7");
        assert_eq!(host.rank(&p("linux/arm/v7")), Some(0));
        let v6 = host.rank(&p("linux/arm/v6")).unwrap();
        let v5 = host.rank(&p("linux/arm/v5")).unwrap();
        assert!(v6 < v5);
        assert_eq!(p("linux/arm/v6").rank(&p("linux/arm/v7")), None);
        assert_eq!(p("linux/amd64").rank(&p("linux/amd64/v3")), None);
        assert!(p("linux/amd64/v3").matches(&p("linux/amd64")));
        assert!(!p("linux/amd64").matches(&p("linux/arm64")));
        assert!(!p("linux/amd64").matches(&p("windows/amd64")));
    }

    #[test]
    fn os_version_and_features() {
        let mut want = p("windows/amd64");
        want.os_version = Some("10.0.17763.1".into());
        let mut c = p("windows/amd64");
        c.os_version = Some("10.0.14393.1".into());
        assert!(!want.matches(&c));
        c.os_version = Some("10.0.17763.1".into());
        assert_eq!(want.rank(&c), Some(0));
        c.os_features = vec!["win32k".into()];
        assert!(!want.matches(&c));
        want.os_features = vec!["win32k".into()];
        assert!(want.matches(&c));
    }

    #[test]
    fn bad_platform_strings() {
        for s in ["", "linux/", "a/b/c/d", "linux/amd64/../x", "linux /amd64"] {
            assert!(s.parse::<PlatformSpec>().is_err(), "{s}");
        }
    }
}
