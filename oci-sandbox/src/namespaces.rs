//! Namespaces: created new (unshare in the set-up process) or joined by path (setns).
//!
//! runtime-spec config-linux.md "Namespaces": a namespace with a `path` is joined, one without
//! is created; a type that is absent is inherited from the runtime. User namespace maps are
//! written by the parent ("User namespace mappings") before the child does anything that needs
//! its capabilities in the new namespace.

use crate::error::{Error, Result};
use crate::rootless::{self, MapWriter};
use crate::sys::{self, CResult, Step};
use libc::c_int;
use oci_spec::runtime::{Linux, LinuxNamespaceType};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// What the set-up process does with namespaces, prepared before fork.
#[derive(Debug)]
pub(crate) struct Plan {
    /// `CLONE_NEW*` flags to unshare (after the joins).
    pub unshare: c_int,
    /// Namespaces to join, user namespace first (so that the others are joined with its
    /// capabilities), each as (nstype, fd).
    pub joins: Vec<(c_int, OwnedFd)>,
    /// `/proc/PID/uid_map` and `gid_map` contents, written by the parent.
    pub uid_map: String,
    pub gid_map: String,
    /// How each map is written: directly, or by `newuidmap` / `newgidmap` (rootless).
    pub uid_writer: MapWriter,
    pub gid_writer: MapWriter,
    /// The maps are written by a runtime without privileges (euid != 0).
    pub unprivileged: bool,
    /// `/proc/self/timens_offsets` contents for a new time namespace.
    pub time_offsets: Option<CString>,
    /// Whether the container gets a new mount namespace (required: pivot_root needs one).
    pub new_mount: bool,
    pub has_uts: bool,
    pub pid_joined: bool,
    /// `CLONE_NEW*` flags of the namespaces that are the runtime's own: not listed in the
    /// config (inherited), or joined by a path that is the same namespace as the runtime's
    /// (`/proc/1/ns/net` run from the host), with that path.
    pub runtimes_own: c_int,
    pub own_paths: Vec<(c_int, std::path::PathBuf)>,
}

impl Plan {
    pub(crate) fn new_user(&self) -> bool {
        self.unshare & libc::CLONE_NEWUSER != 0
    }

    /// Why namespace `flag` is not the container's own, if it is the runtime's: what the
    /// container writes into it (a sysctl, the hostname) would change the host's.
    pub(crate) fn runtimes_own(&self, flag: c_int) -> Option<String> {
        if self.runtimes_own & flag == 0 {
            return None;
        }
        let name = NAMES
            .iter()
            .find(|(f, _)| *f == flag)
            .map_or("?", |(_, n)| n);
        Some(match self.own_paths.iter().find(|(f, _)| *f == flag) {
            Some((_, p)) => format!(
                "the {name} namespace it joins ({}) is the runtime's own",
                p.display()
            ),
            None => format!("no {name} namespace of its own is listed in linux.namespaces"),
        })
    }
}

/// Namespace flags and their names under /proc/PID/ns.
const NAMES: &[(c_int, &str)] = &[
    (libc::CLONE_NEWPID, "pid"),
    (libc::CLONE_NEWNET, "net"),
    (libc::CLONE_NEWNS, "mnt"),
    (libc::CLONE_NEWIPC, "ipc"),
    (libc::CLONE_NEWUTS, "uts"),
    (libc::CLONE_NEWUSER, "user"),
    (libc::CLONE_NEWCGROUP, "cgroup"),
    (libc::CLONE_NEWTIME, "time"),
];

/// Whether the namespace `fd` (opened from a config's path) is the one this process is in:
/// the same st_dev and st_ino as `/proc/self/ns/NAME` (namespaces(7), "The /proc/[pid]/ns/
/// directory": two processes are in the same namespace when those match).
fn is_runtimes_own(fd: &OwnedFd, flag: c_int) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let Some((_, name)) = NAMES.iter().find(|(f, _)| *f == flag) else {
        return Ok(false);
    };
    let own = Path::new("/proc/self/ns").join(name);
    let ours = match std::fs::metadata(&own) {
        Ok(m) => m,
        // A kernel without this namespace type (time before 5.6): nothing to be the same as.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::sys("stat namespace", own)(e)),
    };
    let f = std::fs::File::from(fd.try_clone().map_err(Error::sys("dup", None))?);
    let theirs = f.metadata().map_err(Error::sys("stat namespace", None))?;
    Ok((theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()))
}

pub(crate) fn flag(t: LinuxNamespaceType) -> c_int {
    match t {
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
            unshare: 0,
            joins: Vec::new(),
            uid_map: String::new(),
            gid_map: String::new(),
            uid_writer: MapWriter::Direct,
            gid_writer: MapWriter::Direct,
            unprivileged: false,
            time_offsets: None,
            new_mount: false,
            has_uts: false,
            pid_joined: false,
            runtimes_own: 0,
            own_paths: Vec::new(),
        }
    }
}

fn triples(maps: &[oci_spec::runtime::LinuxIdMapping]) -> Vec<(u32, u32, u32)> {
    maps.iter()
        .map(|m| (m.container_id(), m.host_id(), m.size()))
        .collect()
}

fn map_text(maps: &[oci_spec::runtime::LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

pub(crate) fn plan(linux: &Linux) -> Result<Plan> {
    let mut plan = Plan::default();
    let mut seen = 0;
    let mut joins = Vec::new();
    for ns in linux.namespaces().as_deref().unwrap_or_default() {
        let f = flag(ns.typ());
        if seen & f != 0 {
            // config-linux.md "Namespaces": duplicated types MUST be an error.
            return Err(Error::invalid(
                "linux.namespaces",
                format!("{:?} namespace listed twice", ns.typ()),
            ));
        }
        seen |= f;
        match ns.path() {
            Some(path) => {
                let fd = std::fs::File::open(path)
                    .map_err(Error::sys("open namespace", path.to_path_buf()))?;
                let fd = OwnedFd::from(fd);
                if is_runtimes_own(&fd, f)? {
                    plan.runtimes_own |= f;
                    plan.own_paths.push((f, path.to_path_buf()));
                }
                joins.push((f, fd));
            }
            None => plan.unshare |= f,
        }
    }
    // Join the user namespace first so that the joins that follow are made with its privileges.
    joins.sort_by_key(|(f, _)| if *f == libc::CLONE_NEWUSER { 0 } else { 1 });
    plan.joins = joins;
    plan.runtimes_own |= NAMES.iter().map(|(f, _)| *f).fold(0, |a, f| a | f) & !seen;
    plan.new_mount = plan.unshare & libc::CLONE_NEWNS != 0;
    plan.has_uts = seen & libc::CLONE_NEWUTS != 0;
    plan.pid_joined = seen & libc::CLONE_NEWPID != 0 && plan.unshare & libc::CLONE_NEWPID == 0;
    if seen & libc::CLONE_NEWNS == 0 || !plan.new_mount {
        // pivot_root into the rootfs needs a mount namespace of our own; sharing (or joining) one
        // would change the host's (or another container's) root.
        return Err(Error::Unsupported {
            field: "linux.namespaces (container without a new mount namespace)",
        });
    }
    let uid = linux.uid_mappings().as_deref().unwrap_or_default();
    let gid = linux.gid_mappings().as_deref().unwrap_or_default();
    if plan.new_user() {
        if uid.is_empty() || gid.is_empty() {
            return Err(Error::invalid(
                "linux.uidMappings",
                "a new user namespace needs uidMappings and gidMappings",
            ));
        }
        plan.uid_map = map_text(uid);
        plan.gid_map = map_text(gid);
        // runc's RootlessEUID: without privileges over the host, only a single mapping of
        // one's own id can be written directly (user_namespaces(7)); the rest goes through
        // the setuid helpers, which check /etc/subuid and /etc/subgid.
        // SAFETY: geteuid and getegid cannot fail.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        plan.unprivileged = euid != 0;
        plan.uid_writer = rootless::map_writer(euid != 0, euid, &triples(uid));
        plan.gid_writer = rootless::map_writer(euid != 0, egid, &triples(gid));
    } else if !uid.is_empty() || !gid.is_empty() {
        // config-linux.md "User namespace mappings" only make sense for a new user namespace.
        return Err(Error::invalid(
            "linux.uidMappings",
            "mappings given without a new user namespace",
        ));
    }
    if let Some(offsets) = linux.time_offsets() {
        if plan.unshare & libc::CLONE_NEWTIME == 0 {
            return Err(Error::invalid(
                "linux.timeOffsets",
                "offsets need a new time namespace",
            ));
        }
        let mut text = String::new();
        for (clock, off) in offsets {
            if clock != "monotonic" && clock != "boottime" {
                return Err(Error::invalid(
                    "linux.timeOffsets",
                    format!("unknown clock {clock:?}"),
                ));
            }
            text.push_str(&format!(
                "{clock} {} {}\n",
                off.secs().unwrap_or(0),
                off.nanosecs().unwrap_or(0)
            ));
        }
        plan.time_offsets =
            Some(CString::new(text).map_err(|_| Error::invalid("linux.timeOffsets", "NUL byte"))?);
    }
    Ok(plan)
}

/// Writes the user namespace maps of `pid` (config-linux.md "User namespace mappings").
/// Without privileges, a gid map written directly needs `deny` in `/proc/PID/setgroups`
/// first (user_namespaces(7), "The /proc/[pid]/setgroups file"): the container can then never
/// call setgroups(2), as under runc.
pub(crate) fn write_id_maps(pid: i32, plan: &Plan) -> Result<()> {
    let proc = Path::new("/proc").join(pid.to_string());
    if plan.unprivileged && plan.gid_writer == MapWriter::Direct {
        let path = proc.join("setgroups");
        std::fs::write(&path, b"deny").map_err(Error::sys("write setgroups", path))?;
    }
    for (file, text, writer, helper) in [
        ("uid_map", &plan.uid_map, &plan.uid_writer, "newuidmap"),
        ("gid_map", &plan.gid_map, &plan.gid_writer, "newgidmap"),
    ] {
        match writer {
            MapWriter::Direct => {
                let path = proc.join(file);
                std::fs::write(&path, text.as_bytes()).map_err(Error::sys("write id map", path))?;
            }
            MapWriter::Helper(args) => rootless::run_helper(helper, pid, args)?,
        }
    }
    Ok(())
}

/// Child: setns(2) into each (nstype, fd), in order (create, and exec into a container).
pub(crate) fn join(joins: &[(c_int, OwnedFd)]) -> CResult {
    for (i, (nstype, fd)) in joins.iter().enumerate() {
        sys::check(
            // SAFETY: plain syscall on an fd we own.
            unsafe { libc::setns(fd.as_raw_fd(), *nstype) } as i64,
            Step::Setns,
            i,
        )?;
    }
    Ok(())
}

/// Child: join, then create. A new user namespace is created alone first and
/// `in_user_ns` runs in it (the parent writes the id maps, the process becomes its root), so
/// that the other namespaces are created by its root: objects they make at creation, such as
/// the IPC namespace's mqueue filesystem root, belong to the container's root rather than to
/// an unmapped host id. Time namespace offsets must be written before any process is created
/// in the new time namespace (time_namespaces(7)).
pub(crate) fn enter(plan: &Plan, in_user_ns: impl FnOnce() -> CResult) -> CResult {
    join(&plan.joins)?;
    let mut rest = plan.unshare;
    if plan.new_user() {
        sys::check(
            // SAFETY: plain syscall.
            unsafe { libc::unshare(libc::CLONE_NEWUSER) } as i64,
            Step::Unshare,
            0,
        )?;
        in_user_ns()?;
        rest &= !libc::CLONE_NEWUSER;
    }
    // SAFETY: plain syscall.
    sys::check(unsafe { libc::unshare(rest) } as i64, Step::Unshare, 1)?;
    if let Some(text) = &plan.time_offsets {
        let fd = sys::openat2(
            libc::AT_FDCWD,
            c"/proc/self/timens_offsets",
            libc::O_WRONLY,
            0,
            0,
        )
        .map_err(|e| sys::fail(Step::TimeOffsets, 0, e))?;
        let r = sys::write_all(fd, text.as_bytes());
        sys::close(fd);
        r.map_err(|e| sys::fail(Step::TimeOffsets, 0, e))?;
    }
    Ok(())
}
