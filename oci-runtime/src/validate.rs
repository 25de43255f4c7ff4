//! Runtime config validation: the rules of runtime-spec config.md and config-linux.md that the
//! JSON schema cannot express, each problem named by its JSON path.

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, LinuxSeccompAction, Spec};

use crate::error::{ConfigProblem, Error, Result};

/// Checks `spec` against the runtime-spec rules; returns every problem at once.
///
/// Checked: `ociVersion` is SemVer with major 1; `root.path` is set; `process.args` is not
/// empty, `process.cwd` is absolute, env entries are `KEY=VALUE`, rlimits are not duplicated
/// and soft ≤ hard; mount destinations are absolute; namespaces are not duplicated and
/// `path`s are absolute; uid/gid mappings come in pairs and only with a user namespace; a
/// hostname or domainname needs a new UTS namespace; sysctls need the namespace that owns
/// them; time offsets need a time namespace; devices have absolute paths and a major/minor
/// where their type needs them; masked and read-only paths are absolute; hook paths are
/// absolute and timeouts positive; seccomp rules name syscalls and `errnoRet` is only used
/// with actions that return an errno; annotation keys are not empty.
///
/// ```
/// let mut spec = oci_runtime::default_spec().unwrap();
/// oci_runtime::validate_spec(&spec).unwrap();
/// spec.set_hostname(Some("box".into()));
/// spec.linux_mut().as_mut().unwrap().set_namespaces(Some(vec![]));
/// let err = oci_runtime::validate_spec(&spec).unwrap_err();
/// assert!(err.to_string().contains("hostname"));
/// ```
pub fn validate_spec(spec: &Spec) -> Result<()> {
    let mut p = Problems::default();
    check_version(&mut p, spec.version());

    match spec.root() {
        Some(root) if !root.path().as_os_str().is_empty() => {}
        _ => p.add("root.path", "required on Linux (config.md, \"Root\")"),
    }

    if let Some(process) = spec.process() {
        match process.args() {
            Some(args) if !args.is_empty() => {}
            _ => p.add(
                "process.args",
                "must have at least one entry (config.md, \"Process\")",
            ),
        }
        if !process.cwd().is_absolute() {
            p.add(
                "process.cwd",
                "must be an absolute path (config.md, \"Process\")",
            );
        }
        for (i, e) in process.env().iter().flatten().enumerate() {
            if !e.contains('=') || e.starts_with('=') {
                p.add(
                    format!("process.env[{i}]"),
                    format!("{e:?} is not KEY=VALUE"),
                );
            }
        }
        let mut seen = HashSet::new();
        for (i, r) in process.rlimits().iter().flatten().enumerate() {
            if !seen.insert(format!("{:?}", r.typ())) {
                p.add(
                    format!("process.rlimits[{i}].type"),
                    "duplicated rlimit type (config.md, \"POSIX process\")",
                );
            }
            if r.soft() > r.hard() {
                p.add(
                    format!("process.rlimits[{i}]"),
                    format!("soft limit {} is above hard limit {}", r.soft(), r.hard()),
                );
            }
        }
        if let Some(adj) = process.oom_score_adj() {
            if !(-1000..=1000).contains(&adj) {
                p.add(
                    "process.oomScoreAdj",
                    format!("{adj} is outside -1000..1000"),
                );
            }
        }
    }

    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            p.add(
                format!("mounts[{i}].destination"),
                format!(
                    "{:?} must be an absolute path (config.md, \"Mounts\")",
                    m.destination()
                ),
            );
        }
        if m.uid_mappings().is_some() != m.gid_mappings().is_some() {
            p.add(
                format!("mounts[{i}]"),
                "uidMappings and gidMappings must be given together (config.md, \"Mounts\")",
            );
        }
    }

    for (k, _) in spec.annotations().iter().flatten() {
        if k.is_empty() {
            p.add(
                "annotations",
                "keys must not be empty (config.md, \"Annotations\")",
            );
        }
    }

    check_hooks(&mut p, spec);

    let linux = spec.linux().as_ref();
    let mut new_ns = HashSet::new();
    if let Some(linux) = linux {
        let mut seen = HashSet::new();
        for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
            if !seen.insert(ns.typ()) {
                p.add(
                    format!("linux.namespaces[{i}].type"),
                    format!(
                        "duplicated namespace {} (config-linux.md, \"Namespaces\")",
                        ns.typ()
                    ),
                );
            }
            match ns.path() {
                Some(path) if !path.is_absolute() => p.add(
                    format!("linux.namespaces[{i}].path"),
                    "must be an absolute path",
                ),
                Some(_) => {}
                None => {
                    new_ns.insert(ns.typ());
                }
            }
        }
        let has_userns = seen.contains(&LinuxNamespaceType::User);
        let uid = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        let gid = linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if (uid || gid) && !has_userns {
            p.add(
                "linux.uidMappings",
                "mappings require a user namespace (config-linux.md, \"User namespace mappings\")",
            );
        }
        if uid != gid && new_ns.contains(&LinuxNamespaceType::User) {
            p.add(
                "linux.gidMappings",
                "uidMappings and gidMappings must be given together",
            );
        }
        for (i, m) in linux
            .uid_mappings()
            .iter()
            .flatten()
            .chain(linux.gid_mappings().iter().flatten())
            .enumerate()
        {
            if m.size() == 0 {
                p.add(
                    format!("linux.uidMappings/gidMappings[{i}].size"),
                    "must be greater than zero",
                );
            }
        }
        for (key, _) in linux.sysctl().iter().flatten() {
            // The rule of which namespace owns a sysctl is oci-sandbox's, which applies it
            // (and also refuses a joined namespace that is the runtime's own).
            let needs = oci_sandbox::sysctl_namespace(key);
            match needs {
                Some(ns) if !seen.contains(&ns) => p.add(format!("linux.sysctl.{key}"), format!("needs a {ns} namespace in linux.namespaces")),
                Some(_) => {}
                None => p.add(format!("linux.sysctl.{key}"), "not namespaced: setting it would change the host (config-linux.md, \"Sysctl\")"),
            }
        }
        if linux.time_offsets().is_some() && !new_ns.contains(&LinuxNamespaceType::Time) {
            p.add(
                "linux.timeOffsets",
                "needs a new time namespace (config-linux.md, \"Offset for Time Namespace\")",
            );
        }
        for (i, d) in linux.devices().iter().flatten().enumerate() {
            if !d.path().is_absolute() {
                p.add(
                    format!("linux.devices[{i}].path"),
                    "must be an absolute path",
                );
            }
            let needs_numbers = matches!(
                d.typ(),
                LinuxDeviceType::C | LinuxDeviceType::B | LinuxDeviceType::U
            );
            if needs_numbers && (d.major() < 0 || d.minor() < 0) {
                p.add(
                    format!("linux.devices[{i}]"),
                    "major and minor are required for c, b and u devices",
                );
            }
            if matches!(d.typ(), LinuxDeviceType::A) {
                p.add(
                    format!("linux.devices[{i}].type"),
                    "\"a\" is a cgroup rule type, not a device type",
                );
            }
        }
        for (field, paths) in [
            ("linux.maskedPaths", linux.masked_paths()),
            ("linux.readonlyPaths", linux.readonly_paths()),
        ] {
            for (i, path) in paths.iter().flatten().enumerate() {
                if !Path::new(path).is_absolute() {
                    p.add(
                        format!("{field}[{i}]"),
                        format!("{path:?} must be an absolute path"),
                    );
                }
            }
        }
        if let Some(propagation) = linux.rootfs_propagation() {
            if ![
                "",
                "private",
                "rprivate",
                "slave",
                "rslave",
                "shared",
                "rshared",
                "unbindable",
                "runbindable",
            ]
            .contains(&propagation.as_str())
            {
                p.add(
                    "linux.rootfsPropagation",
                    format!("{propagation:?} is not a propagation mode"),
                );
            }
        }
        if let Some(seccomp) = linux.seccomp() {
            if seccomp.listener_metadata().is_some() && seccomp.listener_path().is_none() {
                p.add(
                    "linux.seccomp.listenerMetadata",
                    "must not be set without listenerPath (config-linux.md, \"Seccomp\")",
                );
            }
            let returns_errno = |a: LinuxSeccompAction| {
                matches!(
                    a,
                    LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace
                )
            };
            if seccomp.default_errno_ret().is_some() && !returns_errno(seccomp.default_action()) {
                p.add(
                    "linux.seccomp.defaultErrnoRet",
                    "only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE",
                );
            }
            for (i, rule) in seccomp.syscalls().iter().flatten().enumerate() {
                if rule.names().is_empty() {
                    p.add(
                        format!("linux.seccomp.syscalls[{i}].names"),
                        "must contain at least one entry",
                    );
                }
                if rule.errno_ret().is_some() && !returns_errno(rule.action()) {
                    p.add(
                        format!("linux.seccomp.syscalls[{i}].errnoRet"),
                        "only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE",
                    );
                }
                let notify = rule.action() == LinuxSeccompAction::ScmpActNotify;
                if notify && seccomp.listener_path().is_none() {
                    p.add(
                        format!("linux.seccomp.syscalls[{i}].action"),
                        "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath",
                    );
                }
            }
        }
    }
    let uts = new_ns.contains(&LinuxNamespaceType::Uts);
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !uts {
        p.add(
            "hostname",
            "setting a hostname needs a new UTS namespace (config.md, \"Hostname\")",
        );
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !uts {
        p.add(
            "domainname",
            "setting a domainname needs a new UTS namespace",
        );
    }
    p.finish()
}

fn check_version(p: &mut Problems, v: &str) {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    if !numeric {
        p.add(
            "ociVersion",
            format!("{v:?} is not SemVer (config.md, \"Specification version\")"),
        );
    } else if parts[0] != "1" {
        p.add(
            "ociVersion",
            format!("{v:?}: this runtime implements runtime-spec 1.x"),
        );
    }
}

fn check_hooks(p: &mut Problems, spec: &Spec) {
    let Some(hooks) = spec.hooks() else { return };
    #[allow(deprecated)]
    let all = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (kind, list) in all {
        for (i, h) in list.iter().flatten().enumerate() {
            if !h.path().is_absolute() {
                p.add(
                    format!("hooks.{kind}[{i}].path"),
                    "must be an absolute path (config.md, \"POSIX-platform Hooks\")",
                );
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                p.add(
                    format!("hooks.{kind}[{i}].timeout"),
                    "must be greater than zero",
                );
            }
        }
    }
}

#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            field: field.into(),
            message: message.into(),
        });
    }

    fn finish(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidConfig(self.0))
        }
    }
}

/// Parses a `config.json`, naming the JSON path of a field that does not parse.
pub fn parse_config(bytes: &[u8], file: &Path) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| Error::Json {
        file: file.to_path_buf(),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxNamespaceBuilder, MountBuilder};

    fn fields(spec: &Spec) -> Vec<String> {
        match validate_spec(spec) {
            Ok(()) => vec![],
            Err(Error::InvalidConfig(v)) => v.into_iter().map(|p| p.field).collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn default_is_valid() {
        assert_eq!(
            fields(&crate::default_spec().unwrap()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn each_rule_names_its_field() {
        let mut s = crate::default_spec().unwrap();
        s.set_version("2.0.0".into());
        let mut mounts = s.mounts().clone().unwrap();
        mounts.push(
            MountBuilder::default()
                .destination("relative")
                .typ("tmpfs")
                .build()
                .unwrap(),
        );
        s.set_mounts(Some(mounts));
        let linux = s.linux_mut().as_mut().unwrap();
        let mut ns = linux.namespaces().clone().unwrap();
        ns.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Pid)
                .build()
                .unwrap(),
        );
        linux.set_namespaces(Some(ns));
        linux.set_uid_mappings(Some(vec![
            oci_spec::runtime::LinuxIdMappingBuilder::default()
                .host_id(1000u32)
                .container_id(0u32)
                .size(1u32)
                .build()
                .unwrap(),
        ]));
        let mut sysctl = std::collections::HashMap::new();
        sysctl.insert("vm.swappiness".to_string(), "1".to_string());
        linux.set_sysctl(Some(sysctl));
        linux.set_masked_paths(Some(vec!["proc/kcore".into()]));
        let process = s.process_mut().as_mut().unwrap();
        process.set_args(Some(vec![]));
        process.set_cwd("rel".into());
        process.set_env(Some(vec!["NOEQUALS".into()]));
        let f = fields(&s);
        for want in [
            "ociVersion",
            "process.args",
            "process.cwd",
            "process.env[0]",
            "mounts[7].destination",
            "linux.namespaces[6].type",
            "linux.uidMappings",
            "linux.sysctl.vm.swappiness",
            "linux.maskedPaths[0]",
        ] {
            assert!(f.contains(&want.to_string()), "{want} not in {f:?}");
        }
    }

    #[test]
    fn parse_errors_name_the_path() {
        let e = parse_config(
            br#"{"ociVersion": "1.0.0", "linux": {"namespaces": [{"type": "bogus"}]}}"#,
            Path::new("config.json"),
        )
        .unwrap_err();
        match e {
            Error::Json { field, .. } => assert_eq!(field, "linux.namespaces[0].type"),
            other => panic!("{other}"),
        }
    }
}
