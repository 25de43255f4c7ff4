//! A complete, safe default Linux config: what Docker and podman give a container when the
//! user asks for nothing special.

use std::path::PathBuf;

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxResourcesBuilder, MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder,
    RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::error::{Error, Result};

/// The runtime-spec version configs are written for (the spec in `../shared/specs`).
pub const OCI_VERSION: &str = "1.2.0";

/// The `PATH` a container gets when its image sets none (Docker's default).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPABILITIES: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Paths masked from the container (Docker's list).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths made read-only in the container (Docker's list).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::Conversion {
        field: "default config",
        message: e.to_string(),
    }
}

/// The device cgroup rules of the default config: deny everything, then allow the devices the
/// runtime-spec requires in every container (config-linux.md, "Default Devices"), `/dev/pts/*`,
/// and `mknod` of any device (creating a node is harmless when using it is denied).
pub fn default_device_rules() -> Result<Vec<LinuxDeviceCgroup>> {
    let rule = |allow: bool,
                typ: LinuxDeviceType,
                major: Option<i64>,
                minor: Option<i64>,
                access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(access.to_string());
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().map_err(invalid)
    };
    Ok(vec![
        rule(false, LinuxDeviceType::A, None, None, "rwm")?,
        rule(true, LinuxDeviceType::C, None, None, "m")?,
        rule(true, LinuxDeviceType::B, None, None, "m")?,
        rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm")?, // null
        rule(true, LinuxDeviceType::C, Some(1), Some(5), "rwm")?, // zero
        rule(true, LinuxDeviceType::C, Some(1), Some(7), "rwm")?, // full
        rule(true, LinuxDeviceType::C, Some(1), Some(8), "rwm")?, // random
        rule(true, LinuxDeviceType::C, Some(1), Some(9), "rwm")?, // urandom
        rule(true, LinuxDeviceType::C, Some(5), Some(0), "rwm")?, // tty
        rule(true, LinuxDeviceType::C, Some(5), Some(1), "rwm")?, // console
        rule(true, LinuxDeviceType::C, Some(5), Some(2), "rwm")?, // ptmx
        rule(true, LinuxDeviceType::C, Some(136), None, "rwm")?,  // pts
    ])
}

/// A complete default config for a Linux container: new pid, mount, ipc, uts, network and
/// cgroup namespaces; `/proc`, `/dev`, `/dev/pts`, `/dev/shm`, `/dev/mqueue`, `/sys` and
/// `/sys/fs/cgroup` mounted as runc and Docker mount them; Docker's masked and read-only
/// paths, capability set and seccomp profile; device rules that allow only the default
/// devices; `RLIMIT_NOFILE` 1024; `noNewPrivileges`. Running `sh` as root in `rootfs`.
///
/// Every part is an ordinary `Spec` field, so callers override what they need.
///
/// ```
/// let spec = oci_runtime::default_spec().unwrap();
/// assert!(spec.process().as_ref().unwrap().no_new_privileges().unwrap());
/// ```
pub fn default_spec() -> Result<Spec> {
    let caps: std::collections::HashSet<Capability> =
        DEFAULT_CAPABILITIES.iter().copied().collect();
    let cap_names: Vec<String> = DEFAULT_CAPABILITIES
        .iter()
        .map(|c| format!("CAP_{}", capability_name(c)))
        .collect();
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(0u32)
                .gid(0u32)
                .build()
                .map_err(invalid)?,
        )
        .args(vec!["sh".to_string()])
        .env(vec![DEFAULT_PATH.to_string()])
        .cwd("/")
        .no_new_privileges(true)
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                .inheritable(std::collections::HashSet::new())
                .ambient(std::collections::HashSet::new())
                .build()
                .map_err(invalid)?,
        )
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .hard(1024u64)
            .soft(1024u64)
            .build()
            .map_err(invalid)?])
        .build()
        .map_err(invalid)?;

    let mount = |dest: &str, typ: &str, source: &str, options: &[&str]| {
        MountBuilder::default()
            .destination(PathBuf::from(dest))
            .typ(typ.to_string())
            .source(PathBuf::from(source))
            .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .map_err(invalid)
    };
    let mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
    ];

    let namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|t| {
        LinuxNamespaceBuilder::default()
            .typ(t)
            .build()
            .map_err(invalid)
    })
    .collect::<Result<Vec<_>>>()?;

    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(
            MASKED_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .resources(
            LinuxResourcesBuilder::default()
                .devices(default_device_rules()?)
                .build()
                .map_err(invalid)?,
        )
        .seccomp(crate::seccomp::docker_default_seccomp(&cap_names)?)
        .build()
        .map_err(invalid)?;

    SpecBuilder::default()
        .version(OCI_VERSION)
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(false)
                .build()
                .map_err(invalid)?,
        )
        .process(process)
        .hostname("ocibox")
        .mounts(mounts)
        .linux(linux)
        .build()
        .map_err(invalid)
}

/// `SYS_ADMIN` for `Capability::SysAdmin`: the name without its `CAP_` prefix.
pub fn capability_name(c: &Capability) -> String {
    // oci-spec serializes capabilities as "CAP_…".
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.trim_start_matches("CAP_").to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_is_complete_and_safe() {
        let s = default_spec().unwrap();
        let p = s.process().as_ref().unwrap();
        assert_eq!(
            p.capabilities()
                .as_ref()
                .unwrap()
                .bounding()
                .as_ref()
                .unwrap()
                .len(),
            14
        );
        assert!(p
            .capabilities()
            .as_ref()
            .unwrap()
            .inheritable()
            .as_ref()
            .unwrap()
            .is_empty());
        let l = s.linux().as_ref().unwrap();
        assert_eq!(l.namespaces().as_ref().unwrap().len(), 6);
        assert!(l.seccomp().is_some());
        assert!(l
            .masked_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/kcore".to_string()));
        assert_eq!(s.mounts().as_ref().unwrap().len(), 7);
        assert_eq!(capability_name(&Capability::SysAdmin), "SYS_ADMIN");
        // It survives a JSON round trip (what goes into config.json).
        let json = serde_json::to_string(&s).unwrap();
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
