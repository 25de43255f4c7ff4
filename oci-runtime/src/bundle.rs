//! Runtime bundles (bundle.md): a directory with `config.json` and the root filesystem.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::validate::{parse_config, validate_spec};

/// The largest `config.json` read (a bound on hostile input).
const MAX_CONFIG_SIZE: u64 = 16 << 20;

/// A loaded and validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory, absolute and canonical.
    pub path: PathBuf,
    /// The parsed `config.json`.
    pub spec: Spec,
    /// The root filesystem (`root.path`, resolved against the bundle), absolute.
    pub rootfs: PathBuf,
}

impl Bundle {
    /// Loads `config.json` from `dir`, validates it ([`validate_spec`]) and checks that the
    /// root filesystem directory exists (config.md, "Root": "A directory MUST exist at the path
    /// declared by the field").
    ///
    /// ```no_run
    /// let bundle = oci_runtime::Bundle::load("/var/lib/containers/mybundle").unwrap();
    /// println!("{}", bundle.rootfs.display());
    /// ```
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if dir.as_os_str().is_empty() {
            return Err(Error::Bundle {
                path: dir.to_path_buf(),
                reason: "the bundle path is empty: give the directory holding config.json".into(),
            });
        }
        let path = fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        let file = path.join("config.json");
        let meta = fs::metadata(&file).map_err(|e| Error::io(&file, e))?;
        if meta.len() > MAX_CONFIG_SIZE {
            return Err(Error::io(
                &file,
                std::io::Error::other(format!("larger than {MAX_CONFIG_SIZE} bytes")),
            ));
        }
        let bytes = fs::read(&file).map_err(|e| Error::io(&file, e))?;
        let spec = parse_config(&bytes, &file)?;
        validate_spec(&spec)?;
        let root = spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .unwrap_or_default();
        let rootfs = if root.is_absolute() {
            root
        } else {
            path.join(root)
        };
        match fs::metadata(&rootfs) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::io(
                    &rootfs,
                    std::io::Error::other("root.path is not a directory"),
                ))
            }
            Err(e) => return Err(Error::io(&rootfs, e)),
        }
        Ok(Self { path, spec, rootfs })
    }

    /// Writes `spec` as `dir/config.json` (atomically) and creates the root filesystem
    /// directory `root.path` if it is relative and missing. The spec is validated first.
    pub fn write(dir: impl AsRef<Path>, spec: &Spec) -> Result<Self> {
        let dir = dir.as_ref();
        validate_spec(spec)?;
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let root = spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .unwrap_or_else(|| PathBuf::from("rootfs"));
        if root.is_relative() {
            fs::create_dir_all(dir.join(&root)).map_err(|e| Error::io(dir.join(&root), e))?;
        }
        let bytes = serde_json::to_vec_pretty(spec).map_err(|e| Error::Conversion {
            field: "config.json",
            message: e.to_string(),
        })?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".config.json-")
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        tmp.write_all(&bytes)
            .map_err(|e| Error::io(tmp.path(), e))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), e))?;
        let dest = dir.join("config.json");
        tmp.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
        Self::load(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_load() {
        let d = tempfile::tempdir().unwrap();
        let spec = crate::default_spec().unwrap();
        let b = Bundle::write(d.path(), &spec).unwrap();
        assert_eq!(b.spec, spec);
        assert!(b.rootfs.ends_with("rootfs") && b.rootfs.is_dir());
        // A missing rootfs is an error naming it.
        fs::remove_dir(&b.rootfs).unwrap();
        let e = Bundle::load(d.path()).unwrap_err();
        assert!(e.to_string().contains("rootfs"), "{e}");
        // Garbage config.json names the file.
        fs::write(d.path().join("config.json"), "{").unwrap();
        let e = Bundle::load(d.path()).unwrap_err();
        assert!(matches!(e, Error::Json { .. }), "{e}");
    }
}
