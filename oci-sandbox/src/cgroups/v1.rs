//! cgroup v1: one directory per mounted hierarchy (config-linux.md "Control groups").

use super::plan::Plan;
use super::{mkdir_recorded, parse_procs, read, remove_recorded, write, Hierarchy};
use crate::error::{Error, Result};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxResources,
};
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
            // Rootless, only when the config asks for something there: moving a process
            // between cgroup2 cgroups needs write access to their common ancestor's
            // cgroup.procs (cgroup-v2.rst "Delegation Containment"), which a user given
            // a v1 subtree is not given in the unified hierarchy.
            let unified_res = resources.map(unified_part);
            let wanted = !crate::rootless::is_rootless()
                || unified_res
                    .as_ref()
                    .is_some_and(|r| r != &Default::default());
            if let Some(h) = hs
                .iter()
                .find(|h| h.controllers.is_none())
                .filter(|_| wanted)
            {
                let dir = super::resolve(&h.mount, None, path)?;
                let rel = dir.strip_prefix(&h.mount).unwrap_or(&dir).to_path_buf();
                cg.unified = Some(super::v2::Cgroup::create(
                    &h.mount,
                    &rel,
                    unified_res.as_ref(),
                )?);
            }
            if let Some(r) = resources {
                let mut plan = cg.plan(r)?;
                cg.plan_devices(r, &mut plan)?;
                plan.apply(false)?;
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

    /// runc update: writes what `r` sets, leaves the rest (the cgroup2 part included, the
    /// device rules always), checked whole first and put back if a write fails.
    pub(crate) fn update(&self, r: &LinuxResources) -> Result<()> {
        let mut plan = self.plan(r)?;
        if let Some(u) = &self.unified {
            plan.extend(u.plan(&unified_part(r))?);
        }
        plan.apply(true)
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

    /// The writes that apply `r` (zeros read as "not set", see [`super::without_unset`]),
    /// checked against the config's rules and this cgroup's current values first.
    fn plan(&self, r: &LinuxResources) -> Result<Plan> {
        let r = &super::without_unset(r);
        let mut plan = Plan::default();
        if r.rdma().is_some() {
            return Err(Error::Unsupported {
                field: "linux.resources.rdma",
            });
        }
        if let Some(m) = r.memory() {
            self.plan_memory(m, &mut plan)?;
        }
        if let Some(c) = r.cpu() {
            self.plan_cpu(c, &mut plan)?;
        }
        if let Some(p) = r.pids() {
            let d = self.dir_of("pids", "linux.resources.pids (no pids hierarchy)")?;
            plan.push(d, "pids.max", super::pids_max(p.limit()));
        }
        if let Some(b) = r.block_io() {
            self.plan_block_io(b, &mut plan)?;
        }
        if let Some(n) = r.network() {
            if let Some(id) = n.class_id() {
                let d = self.dir_of(
                    "net_cls",
                    "linux.resources.network.classID (no net_cls hierarchy)",
                )?;
                plan.push(d, "net_cls.classid", id.to_string());
            }
            for p in n.priorities().iter().flatten() {
                let d = self.dir_of(
                    "net_prio",
                    "linux.resources.network.priorities (no net_prio hierarchy)",
                )?;
                plan.push(
                    d,
                    "net_prio.ifpriomap",
                    format!("{} {}", p.name(), p.priority()),
                );
            }
        }
        let hugetlb = r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty());
        if hugetlb {
            if let Some(d) = self.dir("hugetlb") {
                for h in r.hugepage_limits().iter().flatten() {
                    plan.push(
                        d,
                        format!("hugetlb.{}.limit_in_bytes", h.page_size()),
                        h.limit().to_string(),
                    );
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
        Ok(plan)
    }

    fn plan_memory(&self, m: &LinuxMemory, plan: &mut Plan) -> Result<()> {
        if m.kernel().is_some() || m.kernel_tcp().is_some() {
            // Deprecated by runtime-spec; kernels since 6.1 accept the write and ignore it,
            // so a limit that would not hold is refused rather than passed over.
            return Err(Error::Unsupported {
                field: "linux.resources.memory.kernel",
            });
        }
        if m.swappiness().is_some_and(|s| s > 100) {
            return Err(Error::invalid(
                "linux.resources.memory.swappiness",
                "must be 0..=100",
            ));
        }
        let d = self.dir_of("memory", "linux.resources.memory (no memory hierarchy)")?;
        if let Some(h) = m.use_hierarchy() {
            plan.push(d, "memory.use_hierarchy", if h { "1" } else { "0" });
        }
        let memsw_file = d.join("memory.memsw.limit_in_bytes");
        // runc: an unlimited memory with no swap given makes memory+swap unlimited too.
        let swap = match (m.limit(), m.swap()) {
            (Some(-1), None) if memsw_file.exists() => Some(-1),
            (_, s) => s,
        };
        // runtime-spec swap is memory+swap: memory.memsw.limit_in_bytes exactly. The
        // kernel keeps limit <= memsw at every step, so a memsw that grows goes first and
        // one that shrinks goes last; the pair must hold once both are written.
        let current = |f: &str| {
            read(d, f)
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .unwrap_or(u64::MAX)
        };
        let bytes = |v: i64| u64::try_from(v).unwrap_or(u64::MAX);
        let limit_after = m
            .limit()
            .map_or_else(|| current("memory.limit_in_bytes"), bytes);
        if let Some(s) = swap {
            if bytes(s) < limit_after {
                return Err(Error::invalid(
                    "linux.resources.memory.swap",
                    format!(
                        "memory+swap ({s}) must be at least the memory limit ({})",
                        m.limit().map_or_else(
                            || format!("{limit_after}, set before"),
                            |l| l.to_string()
                        )
                    ),
                ));
            }
        } else if m.limit().is_some() && memsw_file.exists() {
            let memsw = current("memory.memsw.limit_in_bytes");
            if limit_after > memsw {
                return Err(Error::invalid(
                    "linux.resources.memory.limit",
                    format!(
                        "{limit_after} is above the memory+swap limit ({memsw}): raise memory.swap with it"
                    ),
                ));
            }
        }
        let memsw_first =
            swap.is_some_and(|s| s < 0 || bytes(s) > current("memory.memsw.limit_in_bytes"));
        let push_swap = |plan: &mut Plan| {
            if let Some(s) = swap {
                plan.push(d, "memory.memsw.limit_in_bytes", s.to_string());
            }
        };
        if memsw_first {
            push_swap(plan);
        }
        if let Some(l) = m.limit() {
            plan.push(d, "memory.limit_in_bytes", l.to_string());
        }
        if !memsw_first {
            push_swap(plan);
        }
        if let Some(l) = m.reservation() {
            plan.push(d, "memory.soft_limit_in_bytes", l.to_string());
        }
        if let Some(s) = m.swappiness() {
            plan.push(d, "memory.swappiness", s.to_string());
        }
        if m.disable_oom_killer() == Some(true) {
            plan.push(d, "memory.oom_control", "1");
        }
        Ok(())
    }

    fn plan_cpu(&self, c: &LinuxCpu, plan: &mut Plan) -> Result<()> {
        if c.idle().is_some() {
            return Err(Error::Unsupported {
                field: "linux.resources.cpu.idle (cgroup v1)",
            });
        }
        super::check_cpu(c)?;
        let needs_cpu = c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.burst().is_some()
            || c.realtime_period().is_some()
            || c.realtime_runtime().is_some();
        if needs_cpu {
            let d = self.dir_of("cpu", "linux.resources.cpu (no cpu hierarchy)")?;
            if let Some(s) = c.shares() {
                plan.push(d, "cpu.shares", s.to_string());
            }
            if let Some(p) = c.period() {
                if c.quota().is_some() {
                    plan.push_retry_late(d, "cpu.cfs_period_us", p.to_string());
                } else {
                    plan.push(d, "cpu.cfs_period_us", p.to_string());
                }
            }
            if let Some(q) = c.quota() {
                plan.push(d, "cpu.cfs_quota_us", q.to_string());
            }
            if let Some(b) = c.burst() {
                plan.push(d, "cpu.cfs_burst_us", b.to_string());
            }
            if let Some(p) = c.realtime_period() {
                plan.push(d, "cpu.rt_period_us", p.to_string());
            }
            if let Some(rt) = c.realtime_runtime() {
                plan.push(d, "cpu.rt_runtime_us", rt.to_string());
            }
        }
        if c.cpus().is_some() || c.mems().is_some() {
            let d = self.dir_of("cpuset", "linux.resources.cpu.cpus (no cpuset hierarchy)")?;
            let parent = d.parent().unwrap_or(d);
            for (v, file, field) in [
                (c.cpus(), "cpuset.cpus", "linux.resources.cpu.cpus"),
                (c.mems(), "cpuset.mems", "linux.resources.cpu.mems"),
            ] {
                if let Some(v) = v {
                    super::check_cpuset(field, v, read(parent, file).ok().as_deref())?;
                    plan.push(d, file, v.clone());
                }
            }
        }
        Ok(())
    }

    fn plan_block_io(&self, b: &LinuxBlockIo, plan: &mut Plan) -> Result<()> {
        let d = self.dir_of("blkio", "linux.resources.blockIO (no blkio hierarchy)")?;
        // Without CFQ (gone since 5.0) the weights are BFQ's, in blkio.bfq.*, as runc
        // writes them.
        let (weight, weight_device) = if d.join("blkio.weight").exists() {
            ("blkio.weight", "blkio.weight_device")
        } else {
            ("blkio.bfq.weight", "blkio.bfq.weight_device")
        };
        if let Some(w) = b.weight() {
            plan.push(d, weight, w.to_string());
        }
        if let Some(w) = b.leaf_weight() {
            plan.push(d, "blkio.leaf_weight", w.to_string());
        }
        for wd in b.weight_device().iter().flatten() {
            if let Some(w) = wd.weight() {
                plan.push(
                    d,
                    weight_device,
                    format!("{}:{} {w}", wd.major(), wd.minor()),
                );
            }
            if let Some(w) = wd.leaf_weight() {
                plan.push(
                    d,
                    "blkio.leaf_weight_device",
                    format!("{}:{} {w}", wd.major(), wd.minor()),
                );
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
                plan.push(d, file, format!("{}:{} {}", t.major(), t.minor(), t.rate()));
            }
        }
        Ok(())
    }

    /// The device rules (create only: `update` leaves them, as runc's does, since rewriting
    /// them denies every device for a moment to a running container).
    fn plan_devices(&self, r: &LinuxResources, plan: &mut Plan) -> Result<()> {
        if let Some(devs) = r.devices() {
            if !devs.is_empty() {
                let d = self.dir_of("devices", "linux.resources.devices (no devices hierarchy)")?;
                plan.push(d, "devices.deny", "a");
                for rule in devs.iter().chain(default_allowed().iter()) {
                    plan.push(
                        d,
                        if rule.allow() {
                            "devices.allow"
                        } else {
                            "devices.deny"
                        },
                        device_rule(rule),
                    );
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
