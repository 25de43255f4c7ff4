//! Control groups behind one interface, v1 and v2 (config-linux.md "Control groups").
//!
//! The version is chosen by what the host mounts: a cgroup2 filesystem at `/sys/fs/cgroup`
//! means v2; v1 hierarchies mean v1, and on a hybrid host (v1 controllers plus a cgroup2 mount
//! at `/sys/fs/cgroup/unified`) the container is also placed in the cgroup2 hierarchy, where the
//! controllers that live there (here: hugetlb) and `unified` keys are applied.
//!
//! `cgroupsPath` (config-linux.md "Cgroups Path"): an absolute path is relative to each
//! hierarchy's root; a relative one is relative to the runtime's own cgroup in that hierarchy.

mod devices_bpf;
mod plan;
mod stats;
pub mod v1;
pub mod v2;

pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, HugetlbStats, MemoryEntry, MemoryStats, PidsStats,
    Stats, Throttling,
};

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxCpu, LinuxResources, LinuxWeightDeviceBuilder};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A container's cgroup, on a v1 (or hybrid) host or a v2 host.
#[derive(Debug)]
pub enum Cgroup {
    /// cgroup v1 hierarchies (with the cgroup2 part of a hybrid host, if any).
    V1(v1::Cgroup),
    /// The unified hierarchy.
    V2(v2::Cgroup),
}

/// One mounted hierarchy: its mount point and, for v1, its controllers (`cpu,cpuacct`,
/// `name=systemd`); `None` for cgroup2.
#[derive(Debug, Clone)]
pub(crate) struct Hierarchy {
    pub mount: PathBuf,
    pub controllers: Option<Vec<String>>,
}

pub(crate) fn hierarchies() -> Result<Vec<Hierarchy>> {
    let p = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(p).map_err(Error::sys("read", p.to_path_buf()))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let rfields: Vec<&str> = right.split(' ').collect();
        if fields.len() < 5 || rfields.len() < 3 {
            continue;
        }
        let mount = PathBuf::from(fields[4]);
        match rfields[0] {
            "cgroup2" => out.push(Hierarchy {
                mount,
                controllers: None,
            }),
            "cgroup" => {
                let ctrls = rfields[2]
                    .split(',')
                    .filter(|o| {
                        !matches!(
                            *o,
                            "rw" | "ro"
                                | "relatime"
                                | "noatime"
                                | "nosuid"
                                | "nodev"
                                | "noexec"
                                | "clone_children"
                                | "noprefix"
                        ) && !o.starts_with("release_agent")
                            && !o.starts_with("cpuset_v2")
                    })
                    .map(String::from)
                    .collect();
                out.push(Hierarchy {
                    mount,
                    controllers: Some(ctrls),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The host's hierarchies, and whether it is a pure cgroup v2 host (cgroup2 at
/// `/sys/fs/cgroup`, or no v1 hierarchy at all) rather than a v1 or hybrid one.
pub(crate) fn layout() -> Result<(Vec<Hierarchy>, bool)> {
    let hs = hierarchies()?;
    let root_is_v2 = hs
        .iter()
        .any(|h| h.controllers.is_none() && h.mount == Path::new("/sys/fs/cgroup"));
    let v2 = root_is_v2 || !hs.iter().any(|h| h.controllers.is_some());
    Ok((hs, v2))
}

/// The cgroup2 mount of a v2 host.
fn v2_mount(hs: &[Hierarchy]) -> Result<PathBuf> {
    hs.iter()
        .find(|h| h.controllers.is_none())
        .map(|h| h.mount.clone())
        .ok_or_else(|| Error::invalid("linux.cgroupsPath", "the host mounts no cgroup filesystem"))
}

/// The absolute cgroupsPath that `path` resolves to in every hierarchy, if it is the same in
/// all of them (always for an absolute path); otherwise `path` itself (a relative path on a
/// host where the runtime's own cgroups differ between hierarchies).
pub(crate) fn common_path(hs: &[Hierarchy], path: &Path) -> Result<PathBuf> {
    let mut common: Option<PathBuf> = None;
    for h in hs {
        let dir = resolve(&h.mount, h.controllers.as_deref(), path)?;
        let abs = Path::new("/").join(dir.strip_prefix(&h.mount).unwrap_or(&dir));
        match &common {
            None => common = Some(abs),
            Some(c) if *c == abs => {}
            Some(_) => return Ok(path.to_path_buf()),
        }
    }
    Ok(common.unwrap_or_else(|| path.to_path_buf()))
}

/// The runtime's own cgroup in a hierarchy (from /proc/self/cgroup).
pub(crate) fn own_cgroup(controllers: Option<&[String]>) -> Result<PathBuf> {
    let p = Path::new("/proc/self/cgroup");
    let text = std::fs::read_to_string(p).map_err(Error::sys("read", p.to_path_buf()))?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("/"),
        );
        let matches = match controllers {
            None => ctrls.is_empty(),
            Some(want) => {
                let have: Vec<&str> = ctrls.split(',').collect();
                !ctrls.is_empty() && want.iter().all(|w| have.contains(&w.as_str()))
            }
        };
        if matches {
            return Ok(PathBuf::from(path));
        }
    }
    Ok(PathBuf::from("/"))
}

/// The cgroup directory of `path` under a hierarchy.
pub(crate) fn resolve(
    mount: &Path,
    controllers: Option<&[String]>,
    path: &Path,
) -> Result<PathBuf> {
    if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(Error::invalid("linux.cgroupsPath", "\"..\" is not allowed"));
    }
    let base = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        own_cgroup(controllers)?
    };
    let rel = base.join(path);
    Ok(mount.join(rel.strip_prefix("/").unwrap_or(&rel)))
}

pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let p = dir.join(file);
    std::fs::write(&p, value.as_bytes()).map_err(|source| Error::Cgroup { path: p, source })
}

pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let p = dir.join(file);
    std::fs::read_to_string(&p).map_err(|source| Error::Cgroup { path: p, source })
}

/// mkdir -p that records the directories it made, so that removal takes exactly those.
pub(crate) fn mkdir_recorded(dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        mkdir_recorded(parent, created)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {
            created.push(dir.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(Error::Cgroup {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Removes the directories made by [`mkdir_recorded`], deepest first. A cgroup whose last task
/// just died can still be busy for a moment: retried a bounded number of times.
pub(crate) fn remove_recorded(created: &mut Vec<PathBuf>) -> Result<()> {
    while let Some(dir) = created.pop() {
        // Sub-cgroups the container made (systemd or an engine inside it, runc exec
        // --cgroup) go first, deepest first, as runc's RemovePath does: rmdir of a cgroup
        // with children is EBUSY.
        if let Err(e) = remove_children(&dir) {
            created.push(dir);
            return Err(e);
        }
        let mut tries = 0;
        loop {
            match std::fs::remove_dir(&dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 200 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(source) => {
                    created.push(dir.clone());
                    return Err(Error::Cgroup { path: dir, source });
                }
            }
        }
    }
    Ok(())
}

/// Removes every cgroup below `dir` (not `dir` itself), deepest first.
fn remove_children(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Cgroup {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let mut sub = vec![entry.path()];
            remove_recorded(&mut sub)?;
        }
    }
    Ok(())
}

/// The pids of `dir`'s cgroup and of every cgroup below it.
pub(crate) fn procs_tree(dir: &Path) -> Result<Vec<i32>> {
    let mut pids = match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(text) => parse_procs(&text),
        // Removed meanwhile: nothing left in it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Cgroup {
                path: dir.join("cgroup.procs"),
                source,
            })
        }
    };
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            pids.extend(procs_tree(&entry.path())?);
        }
    }
    Ok(pids)
}

pub(crate) fn parse_procs(text: &str) -> Vec<i32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

impl Cgroup {
    /// Creates (or joins, if it exists) the cgroup at `path` on this host and applies
    /// `resources`. Settings the host cannot apply are errors, never skipped.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), oci_sandbox::Error> {
    /// use oci_sandbox::cgroups::Cgroup;
    /// let cg = Cgroup::create(std::path::Path::new("example"), None)?;
    /// cg.remove()?;
    /// # Ok(()) }
    /// ```
    pub fn create(path: &Path, resources: Option<&LinuxResources>) -> Result<Cgroup> {
        let (hs, is_v2) = layout()?;
        if is_v2 {
            let mount = v2_mount(&hs)?;
            let rel = resolve(&mount, None, path)?;
            let rel = rel.strip_prefix(&mount).unwrap_or(&rel).to_path_buf();
            Ok(Cgroup::V2(v2::Cgroup::create(&mount, &rel, resources)?))
        } else {
            Ok(Cgroup::V1(v1::Cgroup::create(&hs, path, resources)?))
        }
    }

    /// Reopens an existing cgroup, made by [`Cgroup::create`] in this or another process,
    /// from its [`Cgroup::path`]; nothing is created, and a missing directory is an error.
    /// [`Cgroup::remove`] of a reopened cgroup removes its leaf directories only.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), oci_sandbox::Error> {
    /// use oci_sandbox::cgroups::Cgroup;
    /// let cg = Cgroup::open("/mycontainer".as_ref())?;
    /// cg.kill_all()?;
    /// cg.remove()?;
    /// # Ok(()) }
    /// ```
    pub fn open(path: &Path) -> Result<Cgroup> {
        let (hs, is_v2) = layout()?;
        if is_v2 {
            let mount = v2_mount(&hs)?;
            Ok(Cgroup::V2(v2::Cgroup::open_dir(resolve(
                &mount, None, path,
            )?)?))
        } else {
            Ok(Cgroup::V1(v1::Cgroup::open(&hs, path)?))
        }
    }

    /// The cgroupsPath this cgroup lives at, absolute (`/process_api/abc/mytest`), for
    /// [`Cgroup::open`] from another process. A relative cgroupsPath is resolved against the
    /// runtime's own cgroup in each hierarchy (config-linux.md "Cgroups Path"); when those
    /// differ between v1 hierarchies there is no one absolute path, and the relative path is
    /// returned as given: reopening it then needs a process in the same cgroups.
    pub fn path(&self) -> PathBuf {
        match self {
            Cgroup::V1(c) => c.path().to_path_buf(),
            Cgroup::V2(c) => {
                let mount = hierarchies()
                    .ok()
                    .and_then(|hs| hs.into_iter().find(|h| h.controllers.is_none()))
                    .map(|h| h.mount)
                    .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"));
                Path::new("/").join(c.dir().strip_prefix(&mount).unwrap_or(c.dir()))
            }
        }
    }

    /// Changes the limits of a live cgroup (runc update; config-linux.md "Control groups"):
    /// what `resources` sets is written, what it leaves out (or sets to a zero that means
    /// "not set", see [`without_unset`]) is left as it is, and so are the device rules.
    /// The whole change is checked before the first write; if a write fails, the files
    /// written before it are put back ([`Error::UpdateIncomplete`] says which could not be).
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        match self {
            Cgroup::V1(c) => c.update(resources),
            Cgroup::V2(c) => c.apply(resources),
        }
    }

    /// Resource usage (runc events --stats): memory, CPU, pids, block I/O, huge pages.
    pub fn stats(&self) -> Result<Stats> {
        match self {
            Cgroup::V1(c) => c.stats(),
            Cgroup::V2(c) => {
                let mut s = Stats::default();
                stats::v2(c.dir(), &mut s)?;
                Ok(s)
            }
        }
    }

    /// How many processes of the cgroup the OOM killer has killed (v1: memory.oom_control's
    /// `oom_kill`; v2: memory.events' `oom_kill`).
    pub fn oom_kill_count(&self) -> Result<u64> {
        match self {
            Cgroup::V1(c) => c.oom_kill_count(),
            Cgroup::V2(c) => stats::keyed(c.dir(), "memory.events")?
                .get("oom_kill")
                .copied()
                .ok_or_else(|| Error::Cgroup {
                    path: c.dir().join("memory.events"),
                    source: std::io::Error::other("no oom_kill counter"),
                }),
        }
    }

    /// The `cgroup.procs` files a process writes to join this cgroup.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        match self {
            Cgroup::V1(c) => c.procs_files(),
            Cgroup::V2(c) => vec![c.dir().join("cgroup.procs")],
        }
    }

    /// The `cgroup.procs` files of an existing sub-cgroup (runc exec `--cgroup`): `sub` is
    /// a list of (controllers, relative path); on v1 each hierarchy takes the entry naming one
    /// of its controllers, else the entry naming none, else stays at this cgroup; v2 takes
    /// one entry naming no controller. Paths must be relative without `..`, and exist.
    pub fn sub_procs_files(&self, sub: &[(Vec<String>, PathBuf)]) -> Result<Vec<PathBuf>> {
        for (_, p) in sub {
            let plain = p
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !plain || p.as_os_str().is_empty() {
                return Err(Error::invalid(
                    "exec --cgroup",
                    format!("{} is not a relative path inside the cgroup", p.display()),
                ));
            }
        }
        let files = match self {
            Cgroup::V1(c) => c.sub_procs_files(sub),
            Cgroup::V2(c) => match sub {
                [(ctrls, p)] if ctrls.is_empty() => vec![c.dir().join(p).join("cgroup.procs")],
                _ => {
                    return Err(Error::invalid(
                        "exec --cgroup",
                        "cgroup v2 takes a single path without controllers",
                    ))
                }
            },
        };
        for f in &files {
            if !f.exists() {
                return Err(Error::Cgroup {
                    path: f.parent().unwrap_or(f).to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no such sub-cgroup (it must exist)",
                    ),
                });
            }
        }
        Ok(files)
    }

    /// The pids in the cgroup.
    pub fn procs(&self) -> Result<Vec<i32>> {
        match self {
            Cgroup::V1(c) => c.procs(),
            Cgroup::V2(c) => c.procs(),
        }
    }

    /// Freezes every process of the cgroup and waits until the kernel reports it frozen.
    pub fn freeze(&self) -> Result<()> {
        match self {
            Cgroup::V1(c) => c.freeze(),
            Cgroup::V2(c) => c.freeze(),
        }
    }

    /// Thaws a frozen cgroup.
    pub fn thaw(&self) -> Result<()> {
        match self {
            Cgroup::V1(c) => c.thaw(),
            Cgroup::V2(c) => c.thaw(),
        }
    }

    /// Sends SIGKILL to every process of the cgroup until it is empty.
    pub fn kill_all(&self) -> Result<()> {
        match self {
            Cgroup::V1(c) => c.kill_all(),
            Cgroup::V2(c) => c.kill_all(),
        }
    }

    /// Removes the directories this cgroup created (the cgroup must be empty).
    pub fn remove(self) -> Result<()> {
        match self {
            Cgroup::V1(c) => c.remove(),
            Cgroup::V2(c) => c.remove(),
        }
    }

    pub(crate) fn remove_in_place(&mut self) -> Result<()> {
        match self {
            Cgroup::V1(c) => c.remove_in_place(),
            Cgroup::V2(c) => c.remove_in_place(),
        }
    }
}

/// `linux.resources` as runc reads it: a zero (or an empty string) means "not set" wherever
/// runc's cgroup drivers skip it, so that engines that send every field, unset ones as 0
/// (Docker's create and update, containerd's), change only what they mean to. Those fields
/// are: memory `limit`, `reservation`, `swap`, `kernel`, `kernelTCP`; `disableOOMKiller`
/// false; a `swappiness` of -1 (Docker's "unset", which arrives as 2^64-1); cpu `shares`,
/// `quota`, `period`, `realtimeRuntime`, `realtimePeriod`, empty `cpus` and `mems`; a pids
/// `limit` of 0; blockIO `weight` and `leafWeight`, and those of each `weightDevice`; a
/// network `classID` of 0. What remains empty is dropped. A zero throttle rate or
/// hugepage limit is a real value (it lifts the throttle, or forbids huge pages) and stays.
///
/// ```
/// use oci_sandbox::cgroups::without_unset;
/// let docker: oci_spec::runtime::LinuxResources = serde_json::from_str(
///     r#"{"memory": {"limit": 0, "kernel": 0}, "cpu": {"shares": 0, "cpus": ""},
///         "blockIO": {"weight": 0}, "pids": {"limit": 50}}"#,
/// ).unwrap();
/// let r = without_unset(&docker);
/// assert!(r.memory().is_none() && r.cpu().is_none() && r.block_io().is_none());
/// assert_eq!(r.pids().unwrap().limit(), 50);
/// ```
pub fn without_unset(r: &LinuxResources) -> LinuxResources {
    fn set<T: PartialEq + Default>(v: Option<T>) -> Option<T> {
        v.filter(|v| *v != T::default())
    }
    let mut r = r.clone();
    if let Some(mut m) = *r.memory() {
        let old = m;
        m.set_limit(set(old.limit()))
            .set_reservation(set(old.reservation()))
            .set_swap(set(old.swap()))
            .set_kernel(set(old.kernel()))
            .set_kernel_tcp(set(old.kernel_tcp()))
            .set_disable_oom_killer(old.disable_oom_killer().filter(|d| *d))
            .set_swappiness(old.swappiness().filter(|s| *s != u64::MAX));
        r.set_memory((m != Default::default()).then_some(m));
    }
    if let Some(mut c) = r.cpu().clone() {
        let old = c.clone();
        c.set_shares(set(old.shares()))
            .set_quota(set(old.quota()))
            .set_period(set(old.period()))
            .set_realtime_runtime(set(old.realtime_runtime()))
            .set_realtime_period(set(old.realtime_period()))
            .set_cpus(set(old.cpus().clone()))
            .set_mems(set(old.mems().clone()));
        r.set_cpu((c != Default::default()).then_some(c));
    }
    if r.pids().is_some_and(|p| p.limit() == 0) {
        r.set_pids(None);
    }
    if let Some(mut b) = r.block_io().clone() {
        let (w, lw) = (set(b.weight()), set(b.leaf_weight()));
        b.set_weight(w).set_leaf_weight(lw);
        if let Some(wds) = b.weight_device().clone() {
            let wds: Vec<_> = wds
                .into_iter()
                .filter_map(|wd| {
                    // The type has no setters: rebuilt with the weights that are set.
                    let mut b = LinuxWeightDeviceBuilder::default()
                        .major(wd.major())
                        .minor(wd.minor());
                    if let Some(w) = set(wd.weight()) {
                        b = b.weight(w);
                    }
                    if let Some(w) = set(wd.leaf_weight()) {
                        b = b.leaf_weight(w);
                    }
                    b.build()
                        .ok()
                        .filter(|wd| wd.weight().is_some() || wd.leaf_weight().is_some())
                })
                .collect();
            b.set_weight_device((!wds.is_empty()).then_some(wds));
        }
        r.set_block_io((b != Default::default()).then_some(b));
    }
    if let Some(mut n) = r.network().clone() {
        let id = set(n.class_id());
        n.set_class_id(id);
        r.set_network((n != Default::default()).then_some(n));
    }
    r
}

/// pids.max for a pids limit: a negative one is "max" (config-linux.md "pids"; 0 is unset
/// and never gets here).
pub(crate) fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".into()
    }
}

/// What the kernel would refuse in cpu settings, refused before anything is written: CFS
/// periods of 1 ms to 1 s, a quota of at least 1 ms (negative is unlimited), shares of 2 to
/// 262144 (the kernel clamps others; runc then fails with these words).
pub(crate) fn check_cpu(c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares() {
        if s < 2 {
            return Err(Error::invalid(
                "linux.resources.cpu.shares",
                "the minimum allowed cpu-shares is 2",
            ));
        }
        if s > 262_144 {
            return Err(Error::invalid(
                "linux.resources.cpu.shares",
                "the maximum allowed cpu-shares is 262144",
            ));
        }
    }
    if let Some(p) = c.period() {
        if !(1_000..=1_000_000).contains(&p) {
            return Err(Error::invalid(
                "linux.resources.cpu.period",
                format!("{p} is outside 1000..=1000000 (microseconds)"),
            ));
        }
    }
    if let Some(q) = c.quota() {
        if (0..1_000).contains(&q) {
            return Err(Error::invalid(
                "linux.resources.cpu.quota",
                format!("{q} is below 1000 (microseconds; -1 is unlimited)"),
            ));
        }
    }
    Ok(())
}

/// A list of cpus or memory nodes (`0-3,6`), as a sorted set.
fn parse_cpu_list(list: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let v: u32 = part.trim().parse().ok()?;
                (v, v)
            }
        };
        if a > b || b - a > 65_536 {
            return None;
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// `value` (cpuset.cpus or .mems) parses and names only what the parent cgroup has (when
/// that can be read).
pub(crate) fn check_cpuset(field: &'static str, value: &str, parent: Option<&str>) -> Result<()> {
    let want = parse_cpu_list(value)
        .ok_or_else(|| Error::invalid(field, format!("{value:?} is not a list like 0-3,6")))?;
    let Some(parent) = parent else {
        return Ok(());
    };
    let have = parse_cpu_list(parent).unwrap_or_default();
    if let Some(missing) = want.iter().find(|v| have.binary_search(v).is_err()) {
        return Err(Error::invalid(
            field,
            format!(
                "{missing} (in {value:?}) is not available: the parent cgroup has {:?}",
                parent.trim()
            ),
        ));
    }
    Ok(())
}

/// kill, re-read, repeat: a fork between the read and the kill adds a process. Frozen first
/// where the freezer is available, so that nothing can fork in between.
pub(crate) fn kill_loop(procs: impl Fn() -> Result<Vec<i32>>) -> Result<()> {
    for _ in 0..1000 {
        let pids = procs()?;
        if pids.is_empty() {
            return Ok(());
        }
        for p in pids {
            // SAFETY: plain kill(2).
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err(Error::Cgroup {
        path: PathBuf::from("cgroup.procs"),
        source: std::io::Error::from_raw_os_error(libc::EBUSY),
    })
}
