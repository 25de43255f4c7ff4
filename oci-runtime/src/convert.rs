//! Image config to runtime config (image-spec conversion.md), with the overrides users give
//! `docker run` and `podman run`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{MountBuilder, Spec, UserBuilder};

use crate::error::{Error, Result};
use crate::user::resolve_user;

/// What a user overrides at run time. Everything is optional; the default converts the image
/// config as it is. Fields may be added: start from `Overrides::default()` and set fields.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Overrides {
    /// `--entrypoint`: replaces `Config.Entrypoint` and, as docker and podman do, resets
    /// `Config.Cmd` (a `Some(vec![])` clears the entrypoint).
    pub entrypoint: Option<Vec<String>>,
    /// The command after the image name: replaces `Config.Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `-e KEY=VALUE` (or `-e KEY` to remove `KEY`): merged over `Config.Env`, later wins.
    pub env: Vec<String>,
    /// `-w`: replaces `Config.WorkingDir`.
    pub working_dir: Option<String>,
    /// `-u`: replaces `Config.User` (`name`, `uid`, `name:group`, `uid:gid`).
    pub user: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `-t`: allocate a terminal (also sets `TERM=xterm` unless the env has `TERM`).
    pub terminal: bool,
    /// How `Config.Volumes` become mounts.
    pub volumes: Volumes,
    /// Extra annotations; they win over those derived from the image.
    pub annotations: HashMap<String, String>,
}

/// How `Config.Volumes` are provided (conversion.md, "Optional Fields" note 2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Volumes {
    /// Each volume is a fresh tmpfs (`nosuid,nodev`), so that application data is not written
    /// to the container's root filesystem.
    #[default]
    Tmpfs,
    /// Volumes are left to the caller.
    Ignore,
}

/// Converts `image` into a runtime config, starting from `base` (normally
/// [`crate::default_spec`]).
///
/// - `process.args` is `Entrypoint + Cmd` after overrides; an image with neither, and no
///   override, is an error.
/// - `process.env` is `Config.Env` merged with the overrides; `PATH` is added when missing,
///   `HOME` from the user's passwd entry when missing, `HOSTNAME` when a hostname is set.
/// - `process.cwd` is `Config.WorkingDir` (default `/`); it must be absolute.
/// - `process.user` resolves `Config.User` against `rootfs`'s `/etc/passwd` and `/etc/group`
///   (see [`crate::resolve_user`]).
/// - `annotations` carry `org.opencontainers.image.{os,architecture,variant,os.version,
///   os.features,author,created,stopSignal,exposedPorts}` and `Config.Labels`, labels winning
///   on conflict, as the section "Annotations" requires.
/// - `Config.Volumes` become tmpfs mounts unless [`Volumes::Ignore`].
///
/// ```
/// use oci_spec::image::ImageConfiguration;
/// let image: ImageConfiguration = serde_json::from_str(r#"{
///     "architecture": "amd64", "os": "linux",
///     "config": {"Entrypoint": ["/bin/echo"], "Cmd": ["hello"], "Env": ["A=1"]},
///     "rootfs": {"type": "layers", "diff_ids": []}
/// }"#).unwrap();
/// let rootfs = tempfile::tempdir().unwrap();
/// let mut overrides = oci_runtime::Overrides::default();
/// overrides.cmd = Some(vec!["bye".into()]);
/// let spec = oci_runtime::spec_from_image(&image, rootfs.path(), &overrides,
///     oci_runtime::default_spec().unwrap()).unwrap();
/// let process = spec.process().as_ref().unwrap();
/// assert_eq!(process.args().as_ref().unwrap(), &["/bin/echo", "bye"]);
/// ```
pub fn spec_from_image(
    image: &ImageConfiguration,
    rootfs: &Path,
    overrides: &Overrides,
    base: Spec,
) -> Result<Spec> {
    let mut spec = base;
    let cfg = image.config().clone().unwrap_or_default();

    // Entrypoint and Cmd (conversion.md "Verbatim Fields" note 2, with docker's override rule).
    let (entrypoint, cmd) = match (&overrides.entrypoint, &overrides.cmd) {
        (Some(ep), cmd) => (ep.clone(), cmd.clone().unwrap_or_default()),
        (None, Some(cmd)) => (cfg.entrypoint().clone().unwrap_or_default(), cmd.clone()),
        (None, None) => (
            cfg.entrypoint().clone().unwrap_or_default(),
            cfg.cmd().clone().unwrap_or_default(),
        ),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::Conversion {
            field: "Config.Entrypoint",
            message: "the image has neither Entrypoint nor Cmd, and no command was given".into(),
        });
    }

    let cwd = overrides
        .working_dir
        .clone()
        .or_else(|| cfg.working_dir().clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(Error::Conversion {
            field: "Config.WorkingDir",
            message: format!("{cwd:?} is not an absolute path"),
        });
    }

    let user_spec = overrides
        .user
        .clone()
        .or_else(|| cfg.user().clone())
        .unwrap_or_default();
    let user = resolve_user(rootfs, &user_spec)?;

    // Env: image, then overrides; later wins, `KEY` alone removes.
    let mut env: Vec<(String, Option<String>)> = Vec::new();
    let mut set = |entry: &str| {
        let (k, v) = match entry.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (entry.to_string(), None),
        };
        if k.is_empty() {
            return;
        }
        match env.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => env.push((k, v)),
        }
    };
    for e in cfg.env().clone().unwrap_or_default() {
        set(&e);
    }
    for e in &overrides.env {
        set(e);
    }
    let has = |env: &[(String, Option<String>)], k: &str| {
        env.iter().any(|(key, v)| key == k && v.is_some())
    };
    if !has(&env, "PATH") {
        env.insert(
            0,
            (
                "PATH".into(),
                Some(crate::defaults::DEFAULT_PATH["PATH=".len()..].to_string()),
            ),
        );
    }
    let hostname = overrides
        .hostname
        .clone()
        .or_else(|| spec.hostname().clone());
    if let Some(h) = &hostname {
        if !has(&env, "HOSTNAME") {
            env.push(("HOSTNAME".into(), Some(h.clone())));
        }
    }
    if overrides.terminal && !has(&env, "TERM") {
        env.push(("TERM".into(), Some("xterm".into())));
    }
    if !has(&env, "HOME") {
        env.push(("HOME".into(), Some(user.home.clone())));
    }
    let env: Vec<String> = env
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
        .collect();

    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(args));
    process.set_env(Some(env));
    process.set_cwd(PathBuf::from(cwd));
    process.set_terminal(Some(overrides.terminal));
    let mut u = UserBuilder::default().uid(user.uid).gid(user.gid);
    if let Some(g) = user.additional_gids.filter(|g| !g.is_empty()) {
        u = u.additional_gids(g);
    }
    process.set_user(u.build().map_err(|e| Error::Conversion {
        field: "Config.User",
        message: e.to_string(),
    })?);
    spec.set_process(Some(process));
    spec.set_hostname(hostname);

    // Annotations (conversion.md "Annotation Fields"): implicit ones first, then labels, which
    // win on conflict, then the caller's.
    let mut ann = spec.annotations().clone().unwrap_or_default();
    let mut put = |k: &str, v: String| {
        ann.insert(format!("org.opencontainers.image.{k}"), v);
    };
    put("os", image.os().to_string());
    put("architecture", image.architecture().to_string());
    if let Some(v) = image.variant() {
        put("variant", v.clone());
    }
    if let Some(v) = image.os_version() {
        put("os.version", v.clone());
    }
    if let Some(v) = image.os_features() {
        put("os.features", v.join(","));
    }
    if let Some(v) = image.author() {
        put("author", v.clone());
    }
    if let Some(v) = image.created() {
        put("created", v.clone());
    }
    if let Some(v) = cfg.stop_signal() {
        put("stopSignal", v.clone());
    }
    if let Some(ports) = cfg.exposed_ports() {
        let ports: BTreeSet<&String> = ports.iter().collect();
        put(
            "exposedPorts",
            ports.into_iter().cloned().collect::<Vec<_>>().join(","),
        );
    }
    if let Some(labels) = cfg.labels() {
        ann.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    ann.extend(overrides.annotations.clone());
    spec.set_annotations(Some(ann));

    if overrides.volumes == Volumes::Tmpfs {
        if let Some(volumes) = cfg.volumes() {
            let mut mounts = spec.mounts().clone().unwrap_or_default();
            let mut sorted: Vec<&String> = volumes.iter().collect();
            sorted.sort();
            for v in sorted {
                if !v.starts_with('/') {
                    return Err(Error::Conversion {
                        field: "Config.Volumes",
                        message: format!("{v:?} is not an absolute path"),
                    });
                }
                if mounts.iter().any(|m| m.destination() == Path::new(v)) {
                    continue;
                }
                mounts.push(
                    MountBuilder::default()
                        .destination(PathBuf::from(v))
                        .typ("tmpfs")
                        .source(PathBuf::from("tmpfs"))
                        .options(vec![
                            "nosuid".to_string(),
                            "nodev".to_string(),
                            "mode=755".to_string(),
                        ])
                        .build()
                        .map_err(|e| Error::Conversion {
                            field: "Config.Volumes",
                            message: e.to_string(),
                        })?,
                );
            }
            spec.set_mounts(Some(mounts));
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(config: serde_json::Value) -> ImageConfiguration {
        serde_json::from_value(serde_json::json!({
            "architecture": "arm64", "variant": "v8", "os": "linux",
            "created": "2024-01-01T00:00:00Z", "author": "me",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": []}
        }))
        .unwrap()
    }

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nweb:x:33:33::/var/www:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nweb:x:33:\nlog:x:4:web\n",
        )
        .unwrap();
        d
    }

    fn convert(img: &ImageConfiguration, o: &Overrides) -> Result<Spec> {
        let r = rootfs();
        spec_from_image(img, r.path(), o, crate::default_spec().unwrap())
    }

    fn args(s: &Spec) -> Vec<String> {
        s.process().as_ref().unwrap().args().clone().unwrap()
    }

    fn env(s: &Spec) -> Vec<String> {
        s.process().as_ref().unwrap().env().clone().unwrap()
    }

    #[test]
    fn entrypoint_and_cmd_overrides() {
        let img = image(serde_json::json!({"Entrypoint": ["/ep"], "Cmd": ["a", "b"]}));
        let o = Overrides::default();
        assert_eq!(args(&convert(&img, &o).unwrap()), ["/ep", "a", "b"]);
        let o = Overrides {
            cmd: Some(vec!["c".into()]),
            ..Default::default()
        };
        assert_eq!(args(&convert(&img, &o).unwrap()), ["/ep", "c"]);
        // An overridden entrypoint resets Cmd.
        let o = Overrides {
            entrypoint: Some(vec!["/other".into()]),
            ..Default::default()
        };
        assert_eq!(args(&convert(&img, &o).unwrap()), ["/other"]);
        let o = Overrides {
            entrypoint: Some(vec![]),
            cmd: Some(vec!["/bin/sh".into()]),
            ..Default::default()
        };
        assert_eq!(args(&convert(&img, &o).unwrap()), ["/bin/sh"]);
        let empty = image(serde_json::json!({}));
        assert!(matches!(
            convert(&empty, &Overrides::default()),
            Err(Error::Conversion { .. })
        ));
    }

    #[test]
    fn env_merge_user_and_home() {
        let img = image(
            serde_json::json!({"Cmd": ["x"], "Env": ["A=1", "B=2", "PATH=/bin"], "User": "web"}),
        );
        let o = Overrides {
            env: vec!["B=3".into(), "C=4".into(), "A".into()],
            terminal: true,
            ..Default::default()
        };
        let s = convert(&img, &o).unwrap();
        let e = env(&s);
        assert!(e.contains(&"PATH=/bin".to_string()));
        assert!(e.contains(&"B=3".to_string()) && e.contains(&"C=4".to_string()));
        assert!(!e.iter().any(|v| v.starts_with("A=")), "{e:?}");
        assert!(e.contains(&"HOME=/var/www".to_string()));
        assert!(e.contains(&"TERM=xterm".to_string()));
        let u = s.process().as_ref().unwrap().user();
        assert_eq!((u.uid(), u.gid()), (33, 33));
        assert_eq!(u.additional_gids().as_ref().unwrap(), &[4]);
        // Missing PATH gets Docker's default.
        let img = image(serde_json::json!({"Cmd": ["x"]}));
        assert!(env(&convert(&img, &Overrides::default()).unwrap())[0]
            .starts_with("PATH=/usr/local/sbin"));
        // Unknown user: an error (conversion.md: MUST return an error).
        let img = image(serde_json::json!({"Cmd": ["x"], "User": "ghost"}));
        assert!(matches!(
            convert(&img, &Overrides::default()),
            Err(Error::User { .. })
        ));
    }

    #[test]
    fn annotations_and_label_precedence() {
        let img = image(serde_json::json!({
            "Cmd": ["x"], "StopSignal": "SIGQUIT",
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            "Labels": {"org.opencontainers.image.author": "label-wins", "k": "v"}
        }));
        let s = convert(&img, &Overrides::default()).unwrap();
        let a = s.annotations().as_ref().unwrap();
        assert_eq!(a["org.opencontainers.image.os"], "linux");
        assert_eq!(a["org.opencontainers.image.architecture"], "arm64");
        assert_eq!(a["org.opencontainers.image.variant"], "v8");
        assert_eq!(a["org.opencontainers.image.stopSignal"], "SIGQUIT");
        assert_eq!(a["org.opencontainers.image.exposedPorts"], "53/udp,80/tcp");
        assert_eq!(a["org.opencontainers.image.author"], "label-wins");
        assert_eq!(
            a["org.opencontainers.image.created"],
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(a["k"], "v");
    }

    #[test]
    fn volumes_workdir_and_hostname() {
        let img = image(
            serde_json::json!({"Cmd": ["x"], "Volumes": {"/data": {}}, "WorkingDir": "/srv"}),
        );
        let o = Overrides {
            hostname: Some("box".into()),
            ..Default::default()
        };
        let s = convert(&img, &o).unwrap();
        assert!(s
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.destination() == Path::new("/data")));
        assert_eq!(s.process().as_ref().unwrap().cwd(), Path::new("/srv"));
        assert_eq!(s.hostname().as_deref(), Some("box"));
        assert!(env(&s).contains(&"HOSTNAME=box".to_string()));
        let rel = image(serde_json::json!({"Cmd": ["x"], "WorkingDir": "srv"}));
        assert!(convert(&rel, &Overrides::default()).is_err());
    }
}
