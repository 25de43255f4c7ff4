//! Docker's default seccomp profile, as a runtime-spec `linux.seccomp`.
//!
//! `default.json` is the default profile of the containers project
//! (`/usr/share/containers/seccomp.json` from Debian's golang-github-containers-common
//! 0.50.1, Apache-2.0), which is Docker's default profile with podman's additions. It is a
//! *template*: rules carry `includes`/`excludes` on capabilities, kernel architectures and
//! minimum kernel versions, and are resolved against the container's capability set and
//! architecture as Docker resolves them.
//!
//! Podman's additions allow some syscalls unconditionally that Docker allows only with a
//! capability (`mount`, `unshare`, `setns`, `reboot`, …) or not at all (`keyctl`,
//! `pivot_root`). [`DOCKER_CAP_GATES`] and [`DOCKER_DENIED`] put Docker's rules back, so the
//! result is Docker's default: `--cap-add SYS_ADMIN` allows `mount`, and without it `mount`
//! fails with `EPERM`, `clone` is allowed only without namespace flags and `clone3` fails with
//! `ENOSYS` (so that libc falls back to `clone`).

use std::collections::HashSet;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use serde::Deserialize;

use crate::error::{Error, Result};

const DEFAULT_PROFILE: &str = include_str!("default.json");

/// Syscalls Docker's default profile allows only to holders of a capability.
pub const DOCKER_CAP_GATES: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &["kcmp", "pidfd_getfd", "process_madvise"],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
];

/// Syscalls podman's profile allows that Docker's never does.
pub const DOCKER_DENIED: &[&str] = &["keyctl", "add_key", "request_key", "pivot_root"];

/// The namespace flags of `clone` (`CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
/// CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET`): without `CAP_SYS_ADMIN`,
/// `clone` is allowed only when none is set.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// `ENOSYS`, returned for `clone3` without `CAP_SYS_ADMIN` (its flags are behind a pointer, so
/// seccomp cannot inspect them; libc falls back to `clone`).
const ENOSYS: u32 = 38;

/// `EPERM`, Docker's `defaultErrnoRet`.
const EPERM: u32 = 1;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Template {
    default_action: LinuxSeccompAction,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    syscalls: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Vec<Arch>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    names: Vec<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: usize,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: LinuxSeccompOperator,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// The GOARCH name of the architecture this program was built for, as the profile's
/// `includes.arches` uses them.
fn host_goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    }
}

/// Docker's default profile resolved for a container with `capabilities` (names like
/// `CAP_SYS_ADMIN`, normally the bounding set) on the host's architecture.
///
/// The profile denies by default (`SCMP_ACT_ERRNO`): appending a rule that denies a syscall
/// does nothing, since a rule whose action equals the default is dropped (as runc and
/// libseccomp drop it) and the allow rule listing the syscall still decides. To deny one, use
/// [`oci_sandbox::seccomp::deny_syscall`], which also takes it out of the allow rules.
///
/// ```
/// let seccomp = oci_runtime::docker_default_seccomp(&["CAP_CHOWN".to_string()]).unwrap();
/// let allowed: Vec<&String> = seccomp.syscalls().as_ref().unwrap().iter()
///     .filter(|s| s.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActAllow)
///     .flat_map(|s| s.names()).collect();
/// assert!(allowed.iter().any(|n| *n == "read"));
/// assert!(!allowed.iter().any(|n| *n == "mount")); // needs CAP_SYS_ADMIN
/// ```
pub fn docker_default_seccomp(capabilities: &[String]) -> Result<LinuxSeccomp> {
    resolve_template(
        DEFAULT_PROFILE,
        capabilities,
        host_goarch(),
        kernel_version(),
    )
}

fn kernel_version() -> Option<(u32, u32)> {
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    parse_kernel(&release)
}

fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

fn resolve_template(
    json: &str,
    capabilities: &[String],
    goarch: &str,
    kernel: Option<(u32, u32)>,
) -> Result<LinuxSeccomp> {
    let bad = |message: String| Error::Conversion {
        field: "seccomp profile",
        message,
    };
    let t: Template = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let caps: HashSet<&str> = capabilities.iter().map(String::as_str).collect();
    let kernel_ok = |min: &Option<String>| match (min.as_deref().and_then(parse_kernel), kernel) {
        (Some(min), Some(k)) => k >= min,
        (Some(_), None) => false,
        (None, _) => true,
    };
    let mut syscalls: Vec<LinuxSyscall> = Vec::new();
    for r in t.syscalls {
        let inc = &r.includes;
        if !inc.caps.iter().all(|c| caps.contains(c.as_str())) {
            continue;
        }
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == goarch) {
            continue;
        }
        if !kernel_ok(&inc.min_kernel) {
            continue;
        }
        let exc = &r.excludes;
        if !exc.caps.is_empty() && exc.caps.iter().any(|c| caps.contains(c.as_str())) {
            continue;
        }
        if exc.arches.iter().any(|a| a == goarch) {
            continue;
        }
        if exc.min_kernel.is_some() && kernel_ok(&exc.min_kernel) {
            continue;
        }
        let mut b = LinuxSyscallBuilder::default()
            .names(r.names)
            .action(r.action);
        if let Some(e) = r.errno_ret {
            b = b.errno_ret(e);
        }
        if let Some(args) = r.args.filter(|a| !a.is_empty()) {
            let args: Vec<LinuxSeccompArg> = args
                .into_iter()
                .map(|a| {
                    LinuxSeccompArgBuilder::default()
                        .index(a.index)
                        .value(a.value)
                        .value_two(a.value_two)
                        .op(a.op)
                        .build()
                        .map_err(|e| bad(e.to_string()))
                })
                .collect::<Result<_>>()?;
            b = b.args(args);
        }
        syscalls.push(b.build().map_err(|e| bad(e.to_string()))?);
    }
    docker_overlay(&mut syscalls, &caps, kernel).map_err(|e| bad(e.to_string()))?;
    let native = match goarch {
        "amd64" => Some(Arch::ScmpArchX86_64),
        "arm64" => Some(Arch::ScmpArchAarch64),
        "x86" => Some(Arch::ScmpArchX86),
        "arm" => Some(Arch::ScmpArchArm),
        "ppc64le" => Some(Arch::ScmpArchPpc64le),
        "s390x" => Some(Arch::ScmpArchS390x),
        _ => None,
    };
    let architectures: Vec<Arch> = t
        .arch_map
        .into_iter()
        .filter(|m| Some(m.architecture) == native)
        .flat_map(|m| std::iter::once(m.architecture).chain(m.sub_architectures))
        .collect();
    let mut b = LinuxSeccompBuilder::default()
        .default_action(t.default_action)
        .architectures(architectures)
        .syscalls(syscalls);
    // Docker answers unknown syscalls with EPERM (podman's template says ENOSYS).
    let _ = t.default_errno_ret;
    b = b.default_errno_ret(EPERM);
    b.build().map_err(|e| bad(e.to_string()))
}

/// Puts Docker's capability gates back onto podman's template (see the module docs).
fn docker_overlay(
    syscalls: &mut Vec<LinuxSyscall>,
    caps: &HashSet<&str>,
    kernel: Option<(u32, u32)>,
) -> std::result::Result<(), oci_spec::OciSpecError> {
    let mut blocked: HashSet<&str> = DOCKER_DENIED.iter().copied().collect();
    for (cap, names) in DOCKER_CAP_GATES {
        if !caps.contains(cap) {
            blocked.extend(names.iter().copied());
        }
    }
    // ptrace and process_vm_{readv,writev} are safe from kernel 4.8 on; before it they need
    // CAP_SYS_PTRACE.
    if !caps.contains("CAP_SYS_PTRACE") && kernel.is_none_or(|k| k < (4, 8)) {
        blocked.extend(["ptrace", "process_vm_readv", "process_vm_writev"]);
    }
    // Gated names whose capability is held stay allowed, even if only podman listed them.
    for rule in syscalls.iter_mut() {
        if rule.action() != LinuxSeccompAction::ScmpActAllow || rule.args().is_some() {
            continue;
        }
        let names: Vec<String> = rule
            .names()
            .iter()
            .filter(|n| !blocked.contains(n.as_str()))
            .cloned()
            .collect();
        rule.set_names(names);
    }
    syscalls.retain(|r| !r.names().is_empty());
    if !caps.contains("CAP_SYS_ADMIN") {
        syscalls.push(
            LinuxSyscallBuilder::default()
                .names(vec!["clone".to_string()])
                .action(LinuxSeccompAction::ScmpActAllow)
                .args(vec![LinuxSeccompArgBuilder::default()
                    .index(0usize)
                    .value(CLONE_NAMESPACE_FLAGS)
                    .value_two(0u64)
                    .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                    .build()?])
                .build()?,
        );
        syscalls.push(
            LinuxSyscallBuilder::default()
                .names(vec!["clone3".to_string()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(ENOSYS)
                .build()?,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(s: &LinuxSeccomp) -> HashSet<String> {
        s.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none())
            .flat_map(|r| r.names().clone())
            .collect()
    }

    #[test]
    fn capabilities_gate_syscalls_like_docker() {
        let base = resolve_template(DEFAULT_PROFILE, &[], "amd64", Some((6, 1))).unwrap();
        let admin = resolve_template(
            DEFAULT_PROFILE,
            &["CAP_SYS_ADMIN".to_string()],
            "amd64",
            Some((6, 1)),
        )
        .unwrap();
        assert!(allowed(&base).contains("read"));
        assert!(allowed(&base).contains("arch_prctl"), "amd64-only syscall");
        assert!(!allowed(&base).contains("mount"));
        assert!(allowed(&admin).contains("mount"));
        assert_eq!(base.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(base.default_errno_ret(), Some(1)); // EPERM, as Docker
        for blocked in [
            "keyctl",
            "pivot_root",
            "unshare",
            "setns",
            "reboot",
            "clone3",
        ] {
            assert!(!allowed(&base).contains(blocked), "{blocked}");
        }
        assert!(allowed(&base).contains("ptrace"), "allowed from kernel 4.8");
        let old = resolve_template(DEFAULT_PROFILE, &[], "amd64", Some((4, 4))).unwrap();
        assert!(!allowed(&old).contains("ptrace"));
        // clone without namespace flags only.
        let clone: Vec<&LinuxSyscall> = base
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.names().contains(&"clone".to_string()))
            .collect();
        assert_eq!(clone.len(), 1);
        assert_eq!(
            clone[0].args().as_ref().unwrap()[0].value(),
            CLONE_NAMESPACE_FLAGS
        );
        assert!(allowed(&admin).contains("clone") && allowed(&admin).contains("unshare"));
        assert_eq!(
            base.architectures().as_ref().unwrap()[0],
            Arch::ScmpArchX86_64
        );
        let arm = resolve_template(DEFAULT_PROFILE, &[], "arm64", Some((6, 1))).unwrap();
        assert!(!allowed(&arm).contains("arch_prctl"));
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("x"), None);
    }
}
