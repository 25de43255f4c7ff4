//! cgroup v1: one directory per mounted hierarchy (config-linux.md "Control groups").

use super::{mkdir_recorded, parse_procs, read, remove_recorded, write, Hierarchy};
use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A container's cgroup on a v1 host: a directory in every v1 hierarchy, plus one in the
/// cgroup2 hierarchy of a hybrid host.
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<(Vec<String>, PathBuf)>,
    created: Vec<PathBuf>,
    unified: Option<super::v2::Cgroup>,
    /// See [`super::Cgroup::path`].
    path: PathBuf,
}

impl Cgroup {
    pub(crate) fn create(
        hs: &[Hierarchy],
        path: &Path,
        resources: Option<&LinuxResources>,
    ) -> Result<Cgroup> {
        let mut cg = Cgroup {
            dirs: Vec::new(),
            created: Vec::new(),
            unified: None,
            path: super::common_path(hs, path)?,
        };
        let result = (|| {
            for h in hs {
                let Some(ctrls) = &h.controllers else {
                    continue;
                };
                let dir = super::resolve(&h.mount, Some(ctrls), path)?;
                mkdir_recorded(&dir, &mut cg.created)?;
                if ctrls.iter().any(|c| c == "cpuset") {
                    // A new v1 cpuset cgroup starts with no cpus and mems, and a task cannot
                    // join it until both are set: inherit the parent's. Every level from the
                    // mount down is checked, not only the ones this call created: another
                    // runtime (or a parallel test) may have just created a shared parent and not
                    // filled it yet, and a child copied from it would stay empty (ENOSPC on
                    // join).
                    let mut levels: Vec<&Path> = dir
                        .ancestors()
                        .take_while(|a| *a != h.mount.as_path() && a.starts_with(&h.mount))
                        .collect();
                    levels.reverse();
                    for d in levels {
                        if let Some(parent) = d.parent() {
                            for f in ["cpuset.cpus", "cpuset.mems"] {
                                if read(d, f)?.trim().is_empty() {
                                    write(d, f, read(parent, f)?.trim())?;
                                }
                            }
                        }
                    }
                }
                cg.dirs.push((ctrls.clone(), dir));
            }
            // Hybrid host: the cgroup2 hierarchy gets the controllers that are only there.
            if let Some(h) = hs.iter().find(|h| h.controllers.is_none()) {
                let dir = super::resolve(&h.mount, None, path)?;
                let rel = dir.strip_prefix(&h.mount).unwrap_or(&dir).to_path_buf();
                let unified_res = resources.map(unified_part);
                cg.unified = Some(super::v2::Cgroup::create(
                    &h.mount,
                    &rel,
                    unified_res.as_ref(),
                )?);
            }
            if let Some(r) = resources {
                cg.apply(r)?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(cg),
            Err(e) => {
                let _ = cg.remove_in_place();
                Err(e)
            }
        }
    }

    /// An existing cgroup (see [`super::Cgroup::open`]): every hierarchy's directory must
    /// exist; `remove` takes only these leaf directories.
    pub(crate) fn open(hs: &[Hierarchy], path: &Path) -> Result<Cgroup> {
        let mut cg = Cgroup {
            dirs: Vec::new(),
            created: Vec::new(),
            unified: None,
            path: super::common_path(hs, path)?,
        };
        for h in hs {
            let dir = super::resolve(&h.mount, h.controllers.as_deref(), path)?;
            if !dir.is_dir() {
                return Err(Error::Cgroup {
                    path: dir,
                    source: std::io::Error::from_raw_os_error(libc::ENOENT),
                });
            }
            match &h.controllers {
                Some(ctrls) => {
                    cg.created.push(dir.clone());
                    cg.dirs.push((ctrls.clone(), dir));
                }
                None => cg.unified = Some(super::v2::Cgroup::open_dir(dir)?),
            }
        }
        Ok(cg)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// runc update: writes what `r` sets, leaves the rest (the cgroup2 part included).
    pub(crate) fn update(&self, r: &LinuxResources) -> Result<()> {
        self.apply(r)?;
        if let Some(u) = &self.unified {
            u.apply(&unified_part(r))?;
        }
        Ok(())
    }

    pub(crate) fn stats(&self) -> Result<super::Stats> {
        use super::stats;
        let mut s = super::Stats::default();
        if let Some(d) = self.dir("memory") {
            stats::v1_memory(d, &mut s.memory)?;
        }
        stats::v1_cpu(self.dir("cpuacct"), self.dir("cpu"), &mut s.cpu)?;
        if let Some(d) = self.dir("pids") {
            stats::pids(d, &mut s.pids)?;
        }
        if let Some(d) = self.dir("blkio") {
            stats::v1_blkio(d, &mut s.blkio)?;
        }
        match (self.dir("hugetlb"), &self.unified) {
            (Some(d), _) => stats::v1_hugetlb(d, &mut s.hugetlb)?,
            (None, Some(u)) => stats::v2_hugetlb(u.dir(), &mut s.hugetlb)?,
            (None, None) => {}
        }
        Ok(s)
    }

    /// memory.oom_control's `oom_kill` (kernel 4.13+).
    pub(crate) fn oom_kill_count(&self) -> Result<u64> {
        let d = self.dir_of("memory", "oom_kill_count (no memory hierarchy)")?;
        super::stats::keyed(d, "memory.oom_control")?
            .get("oom_kill")
            .copied()
            .ok_or_else(|| Error::Cgroup {
                path: d.join("memory.oom_control"),
                source: std::io::Error::other("no oom_kill counter"),
            })
    }

    fn dir_of(&self, ctrl: &str, field: &'static str) -> Result<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| c.iter().any(|x| x == ctrl))
            .map(|(_, d)| d.as_path())
            .ok_or(Error::Unsupported { field })
    }

    /// The directory of the hierarchy that has `controller`, if the host mounts it.
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| c.iter().any(|x| x == controller))
            .map(|(_, d)| d.as_path())
    }

    /// The cgroup2 part on a hybrid host.
    pub fn unified(&self) -> Option<&super::v2::Cgroup> {
        self.unified.as_ref()
    }

    fn apply(&self, r: &LinuxResources) -> Result<()> {
        if r.rdma().is_some() {
            return Err(Error::Unsupported {
                field: "linux.resources.rdma",
            });
        }
        if let Some(m) = r.memory() {
            if m.kernel().is_some() || m.kernel_tcp().is_some() {
                // Deprecated by runtime-spec and not writable on kernels >= 6.x.
                return Err(Error::Unsupported {
                    field: "linux.resources.memory.kernel",
                });
            }
            let d = self.dir_of("memory", "linux.resources.memory (no memory hierarchy)")?;
            if let Some(h) = m.use_hierarchy() {
                write(d, "memory.use_hierarchy", if h { "1" } else { "0" })?;
            }
            // runtime-spec swap is memory+swap: memory.memsw.limit_in_bytes exactly. The
            // kernel keeps limit <= memsw at every step, so when both change (runc update)
            // a memsw that grows goes first and one that shrinks goes last.
            let memsw_first = match m.swap() {
                Some(s) => {
                    let cur = read(d, "memory.memsw.limit_in_bytes")
                        .ok()
                        .and_then(|t| t.trim().parse::<i64>().ok());
                    s < 0 || cur.is_some_and(|c| s > c)
                }
                None => false,
            };
            let swap = || -> Result<()> {
                if let Some(s) = m.swap() {
                    write(d, "memory.memsw.limit_in_bytes", &s.to_string())?;
                }
                Ok(())
            };
            if memsw_first {
                swap()?;
            }
            if let Some(l) = m.limit() {
                write(d, "memory.limit_in_bytes", &l.to_string())?;
            }
            if !memsw_first {
                swap()?;
            }
            if let Some(l) = m.reservation() {
                write(d, "memory.soft_limit_in_bytes", &l.to_string())?;
            }
            if let Some(s) = m.swappiness() {
                if s > 100 {
                    return Err(Error::invalid(
                        "linux.resources.memory.swappiness",
                        "must be 0..=100",
                    ));
                }
                write(d, "memory.swappiness", &s.to_string())?;
            }
            if m.disable_oom_killer() == Some(true) {
                write(d, "memory.oom_control", "1")?;
            }
        }
        if let Some(c) = r.cpu() {
            if c.idle().is_some() {
                return Err(Error::Unsupported {
                    field: "linux.resources.cpu.idle (cgroup v1)",
                });
            }
            let needs_cpu = c.shares().is_some()
                || c.quota().is_some()
                || c.period().is_some()
                || c.burst().is_some()
                || c.realtime_period().is_some()
                || c.realtime_runtime().is_some();
            if needs_cpu {
                let d = self.dir_of("cpu", "linux.resources.cpu (no cpu hierarchy)")?;
                if let Some(s) = c.shares() {
                    write(d, "cpu.shares", &s.to_string())?;
                }
                if let Some(p) = c.period() {
                    write(d, "cpu.cfs_period_us", &p.to_string())?;
                }
                if let Some(q) = c.quota() {
                    write(d, "cpu.cfs_quota_us", &q.to_string())?;
                }
                if let Some(b) = c.burst() {
                    write(d, "cpu.cfs_burst_us", &b.to_string())?;
                }
                if let Some(p) = c.realtime_period() {
                    write(d, "cpu.rt_period_us", &p.to_string())?;
                }
                if let Some(rt) = c.realtime_runtime() {
                    write(d, "cpu.rt_runtime_us", &rt.to_string())?;
                }
            }
            if c.cpus().is_some() || c.mems().is_some() {
                let d = self.dir_of("cpuset", "linux.resources.cpu.cpus (no cpuset hierarchy)")?;
                if let Some(v) = c.cpus() {
                    write(d, "cpuset.cpus", v)?;
                }
                if let Some(v) = c.mems() {
                    write(d, "cpuset.mems", v)?;
                }
            }
        }
        if let Some(p) = r.pids() {
            let d = self.dir_of("pids", "linux.resources.pids (no pids hierarchy)")?;
            write(
                d,
                "pids.max",
                &if p.limit() > 0 {
                    p.limit().to_string()
                } else {
                    "max".into()
                },
            )?;
        }
        if let Some(b) = r.block_io() {
            let d = self.dir_of("blkio", "linux.resources.blockIO (no blkio hierarchy)")?;
            if let Some(w) = b.weight() {
                write(d, "blkio.weight", &w.to_string())?;
            }
            if let Some(w) = b.leaf_weight() {
                write(d, "blkio.leaf_weight", &w.to_string())?;
            }
            for wd in b.weight_device().iter().flatten() {
                if let Some(w) = wd.weight() {
                    write(
                        d,
                        "blkio.weight_device",
                        &format!("{}:{} {w}", wd.major(), wd.minor()),
                    )?;
                }
                if let Some(w) = wd.leaf_weight() {
                    write(
                        d,
                        "blkio.leaf_weight_device",
                        &format!("{}:{} {w}", wd.major(), wd.minor()),
                    )?;
                }
            }
            for (list, file) in [
                (
                    b.throttle_read_bps_device(),
                    "blkio.throttle.read_bps_device",
                ),
                (
                    b.throttle_write_bps_device(),
                    "blkio.throttle.write_bps_device",
                ),
                (
                    b.throttle_read_iops_device(),
                    "blkio.throttle.read_iops_device",
                ),
                (
                    b.throttle_write_iops_device(),
                    "blkio.throttle.write_iops_device",
                ),
            ] {
                for t in list.iter().flatten() {
                    write(
                        d,
                        file,
                        &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                    )?;
                }
            }
        }
        if let Some(n) = r.network() {
            if let Some(id) = n.class_id() {
                write(
                    self.dir_of(
                        "net_cls",
                        "linux.resources.network.classID (no net_cls hierarchy)",
                    )?,
                    "net_cls.classid",
                    &id.to_string(),
                )?;
            }
            for p in n.priorities().iter().flatten() {
                write(
                    self.dir_of(
                        "net_prio",
                        "linux.resources.network.priorities (no net_prio hierarchy)",
                    )?,
                    "net_prio.ifpriomap",
                    &format!("{} {}", p.name(), p.priority()),
                )?;
            }
        }
        let hugetlb = r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty());
        if hugetlb {
            if let Some(d) = self.dir("hugetlb") {
                for h in r.hugepage_limits().iter().flatten() {
                    write(
                        d,
                        &format!("hugetlb.{}.limit_in_bytes", h.page_size()),
                        &h.limit().to_string(),
                    )?;
                }
            } else if self.unified.is_none() {
                return Err(Error::Unsupported {
                    field: "linux.resources.hugepageLimits (no hugetlb controller)",
                });
            }
        }
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) && self.unified.is_none() {
            // config-linux.md "Unified": an error when cgroup v2 is not available.
            return Err(Error::Unsupported {
                field: "linux.resources.unified (no cgroup2 hierarchy)",
            });
        }
        if let Some(devs) = r.devices() {
            if !devs.is_empty() {
                let d = self.dir_of("devices", "linux.resources.devices (no devices hierarchy)")?;
                write(d, "devices.deny", "a")?;
                for rule in devs.iter().chain(default_allowed().iter()) {
                    write(
                        d,
                        if rule.allow() {
                            "devices.allow"
                        } else {
                            "devices.deny"
                        },
                        &device_rule(rule),
                    )?;
                }
            }
        }
        Ok(())
    }

    /// The `cgroup.procs` files of a sub-cgroup: each hierarchy's directory joined with the
    /// `sub` entry naming one of its controllers, else the one naming none, else itself.
    pub(crate) fn sub_procs_files(&self, sub: &[(Vec<String>, PathBuf)]) -> Vec<PathBuf> {
        let pick = |ctrls: &[String]| {
            sub.iter()
                .find(|(c, _)| c.iter().any(|x| ctrls.contains(x)))
                .or_else(|| sub.iter().find(|(c, _)| c.is_empty()))
                .map(|(_, p)| p.as_path())
        };
        let mut v: Vec<PathBuf> = self
            .dirs
            .iter()
            .map(|(c, d)| pick(c).map_or_else(|| d.clone(), |p| d.join(p)))
            .map(|d| d.join("cgroup.procs"))
            .collect();
        if let Some(u) = &self.unified {
            let d = pick(&[]).map_or_else(|| u.dir().to_path_buf(), |p| u.dir().join(p));
            v.push(d.join("cgroup.procs"));
        }
        v
    }

    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self
            .dirs
            .iter()
            .map(|(_, d)| d.join("cgroup.procs"))
            .collect();
        if let Some(u) = &self.unified {
            v.push(u.dir().join("cgroup.procs"));
        }
        v
    }

    /// The pids in the cgroup (as seen in the first hierarchy).
    pub fn procs(&self) -> Result<Vec<i32>> {
        match self.dirs.first() {
            Some((_, d)) => Ok(parse_procs(&read(d, "cgroup.procs")?)),
            None => Ok(Vec::new()),
        }
    }

    /// freezer.state = FROZEN, then waits for the kernel to report FROZEN.
    pub fn freeze(&self) -> Result<()> {
        let d = self.dir_of("freezer", "freeze (no freezer hierarchy)")?;
        for _ in 0..2000 {
            write(d, "freezer.state", "FROZEN")?;
            if read(d, "freezer.state")?.trim() == "FROZEN" {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(Error::Cgroup {
            path: d.join("freezer.state"),
            source: std::io::Error::from_raw_os_error(libc::EBUSY),
        })
    }

    /// freezer.state = THAWED.
    pub fn thaw(&self) -> Result<()> {
        write(
            self.dir_of("freezer", "thaw (no freezer hierarchy)")?,
            "freezer.state",
            "THAWED",
        )
    }

    /// Freezes, SIGKILLs every task, thaws (a frozen task dies once thawed), until empty.
    pub fn kill_all(&self) -> Result<()> {
        // Sub-cgroups included: the v1 freezer freezes them with their parent, and their
        // processes are the container's too.
        let all = || -> Result<Vec<i32>> {
            let mut pids = Vec::new();
            for (_, d) in &self.dirs {
                pids.extend(super::procs_tree(d)?);
            }
            pids.sort_unstable();
            pids.dedup();
            Ok(pids)
        };
        let frozen = self.dir("freezer").is_some() && self.freeze().is_ok();
        if frozen {
            for p in all()? {
                // SAFETY: plain kill(2).
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            self.thaw()?;
        }
        super::kill_loop(all)
    }

    /// Removes the directories this cgroup created.
    pub fn remove(mut self) -> Result<()> {
        self.remove_in_place()
    }

    pub(crate) fn remove_in_place(&mut self) -> Result<()> {
        let u = self
            .unified
            .as_mut()
            .map(|u| u.remove_in_place())
            .unwrap_or(Ok(()));
        remove_recorded(&mut self.created)?;
        u
    }
}

/// What of `r` goes to the cgroup2 part of a hybrid host.
fn unified_part(r: &LinuxResources) -> LinuxResources {
    let mut u = LinuxResources::default();
    u.set_hugepage_limits(r.hugepage_limits().clone());
    u.set_unified(r.unified().clone());
    u
}

fn device_rule(d: &LinuxDeviceCgroup) -> String {
    let t = match d.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::P => 'p',
        LinuxDeviceType::A => 'a',
    };
    let n = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "*".into());
    format!(
        "{t} {}:{} {}",
        n(d.major()),
        n(d.minor()),
        d.access().clone().unwrap_or_else(|| "rwm".into())
    )
}

/// The default devices (config-linux.md "Default Devices") stay usable whatever the list says,
/// as runc's implicit rules do; otherwise a deny-all list breaks /dev/null.
pub(super) fn default_allowed() -> Vec<LinuxDeviceCgroup> {
    [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 2),
        (136, -1),
    ]
    .into_iter()
    .map(|(ma, mi)| {
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(true)
            .set_typ(Some(LinuxDeviceType::C))
            .set_major(Some(ma))
            .set_minor(if mi < 0 { None } else { Some(mi) })
            .set_access(Some("rwm".into()));
        d
    })
    .collect()
}
