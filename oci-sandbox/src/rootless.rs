//! Rootless containers: made by a process without privileges over the host (runc's
//! "rootless EUID": an effective uid other than 0, or root of a user namespace that is not the
//! initial one).
//!
//! What changes, as in runc:
//! - user namespace maps (config-linux.md "User namespace mappings"): a single mapping of the
//!   caller's own id is written directly to `/proc/PID/{uid,gid}_map` (after `deny` to
//!   `/proc/PID/setgroups`, which user_namespaces(7) requires of an unprivileged writer of
//!   `gid_map`); anything else goes through the setuid helpers `newuidmap(1)` and
//!   `newgidmap(1)`, which allow the ranges of `/etc/subuid` and `/etc/subgid`;
//! - no supplementary groups (setgroups(2) is denied or meaningless), and `additionalGids` is an
//!   error;
//! - cgroups: a cgroup the caller may not create is skipped when the config sets no limits, and
//!   is an error naming the delegation needed when it does (see [`crate::Error::RootlessCgroup`]);
//! - mounts: sysfs, which a user namespace may mount only with a network namespace of its own,
//!   falls back to a read-only recursive bind of the host's `/sys`; devices are bound from the
//!   host rather than made with mknod(2) (as for any container in a user namespace).

use crate::error::{Error, Result};
use std::path::Path;
use std::process::Command;

/// Whether this process is rootless: an effective uid other than 0, or in a user namespace
/// other than the initial one (whose `uid_map` is `0 0 4294967295`). runc decides the same
/// way (`RootlessEUID`, `userns.RunningInUserNS`).
pub fn is_rootless() -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return true;
    }
    in_user_namespace()
}

/// Whether this process is in a user namespace other than the initial one.
pub fn in_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => {
            let fields: Vec<&str> = map.split_whitespace().collect();
            fields != ["0", "0", "4294967295"]
        }
        // No user namespaces in this kernel: the initial one.
        Err(_) => false,
    }
}

/// How one of the two maps is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MapWriter {
    /// Written to `/proc/PID/*_map` directly (privileged, or a single mapping of one's own id).
    Direct,
    /// Through `newuidmap` / `newgidmap`, with these arguments after the pid.
    Helper(Vec<String>),
}

/// Chooses how to write a map of `maps` (container id, host id, size) for a caller whose
/// effective id is `own` (uid or gid), rootless or not.
pub(crate) fn map_writer(rootless: bool, own: u32, maps: &[(u32, u32, u32)]) -> MapWriter {
    if !rootless || matches!(maps, [(_, h, 1)] if *h == own) {
        return MapWriter::Direct;
    }
    MapWriter::Helper(
        maps.iter()
            .flat_map(|&(c, h, s)| [c.to_string(), h.to_string(), s.to_string()])
            .collect(),
    )
}

/// Runs `helper PID ARGS...` (newuidmap or newgidmap) and turns a refusal into an error that
/// says what the helper said (typically: the range is not the user's in /etc/subuid).
pub(crate) fn run_helper(helper: &'static str, pid: i32, args: &[String]) -> Result<()> {
    let out = Command::new(helper)
        .arg(pid.to_string())
        .args(args)
        .output()
        .map_err(|source| Error::IdMapHelper {
            helper,
            args: args.join(" "),
            reason: if source.kind() == std::io::ErrorKind::NotFound {
                format!("{helper} is not installed (the `uidmap` package): {source}")
            } else {
                source.to_string()
            },
        })?;
    if !out.status.success() {
        return Err(Error::IdMapHelper {
            helper,
            args: args.join(" "),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Whether an error of creating or joining a cgroup is one a rootless caller gets for a
/// hierarchy it was not delegated: permission, or a read-only cgroup filesystem.
pub(crate) fn is_permission(e: &Error) -> bool {
    let io = match e {
        Error::Cgroup { source, .. } => source,
        Error::Syscall { source, .. } => source,
        _ => return false,
    };
    matches!(
        io.raw_os_error(),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
    )
}

/// The message of [`Error::RootlessCgroup`]: what delegation the host needs.
pub(crate) fn delegation_needed(path: &Path) -> String {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    let v2 = crate::cgroups::layout().map(|(_, v2)| v2).unwrap_or(false);
    if v2 {
        format!(
            "a rootless container can have resource limits only in a cgroup v2 subtree \
             delegated to uid {uid}: systemd's user@{uid}.service (Delegate=yes, with the \
             controllers in its cgroup.subtree_control), or a subtree chowned to uid {uid} \
             that holds {}",
            path.display()
        )
    } else {
        format!(
            "this host has cgroup v1, where a rootless container can have resource limits \
             only if {} is created and chowned to uid {uid} beforehand in every hierarchy \
             (better: boot with cgroup v2, systemd.unified_cgroup_hierarchy=1, and delegate a \
             subtree); remove linux.resources to run without limits",
            path.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_mapping_of_ones_own_id_is_written_directly() {
        assert_eq!(map_writer(true, 1000, &[(0, 1000, 1)]), MapWriter::Direct);
        assert_eq!(map_writer(true, 1000, &[(5, 1000, 1)]), MapWriter::Direct);
        assert_eq!(
            map_writer(false, 0, &[(0, 100000, 65536)]),
            MapWriter::Direct
        );
    }

    #[test]
    fn other_mappings_go_through_the_helper() {
        assert_eq!(
            map_writer(true, 1000, &[(0, 1000, 1), (1, 100000, 65536)]),
            MapWriter::Helper(
                ["0", "1000", "1", "1", "100000", "65536"]
                    .map(String::from)
                    .to_vec()
            )
        );
        assert_eq!(
            map_writer(true, 1000, &[(0, 1000, 2)]),
            MapWriter::Helper(["0", "1000", "2"].map(String::from).to_vec())
        );
    }

    #[test]
    fn permission_errors_are_told_apart() {
        let e = |n| Error::Cgroup {
            path: "/x".into(),
            source: std::io::Error::from_raw_os_error(n),
        };
        assert!(is_permission(&e(libc::EACCES)));
        assert!(is_permission(&e(libc::EROFS)));
        assert!(!is_permission(&e(libc::ENOENT)));
    }
}
