//! cgroup v2 (the unified hierarchy): config-linux.md "Control groups" mapped to the
//! cgroup-v2 interface files, as runc converts them.

use super::plan::Plan;
use super::{mkdir_recorded, parse_procs, read, remove_recorded, write};
use crate::error::{Error, Result};
use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A cgroup in a cgroup2 hierarchy mounted at some directory (a fixture directory in tests).
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
    created: Vec<PathBuf>,
}

/// cpu.shares (2..262144) to cpu.weight (1..10000), runc's formula.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// blkio.weight (10..1000) to io.weight (1..10000), runc's formula.
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10) * 9999) / 990
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

impl Cgroup {
    /// Creates `rel` under the cgroup2 mount `mount`, enables the controllers the resources
    /// need in every ancestor's `cgroup.subtree_control`, and applies `resources`.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), oci_sandbox::Error> {
    /// use oci_sandbox::cgroups::v2;
    /// let cg = v2::Cgroup::create("/sys/fs/cgroup".as_ref(), "demo".as_ref(), None)?;
    /// cg.remove()?;
    /// # Ok(()) }
    /// ```
    pub fn create(mount: &Path, rel: &Path, resources: Option<&LinuxResources>) -> Result<Cgroup> {
        let dir = mount.join(rel.strip_prefix("/").unwrap_or(rel));
        let mut cg = Cgroup {
            dir: dir.clone(),
            created: Vec::new(),
        };
        let resources = resources.map(super::without_unset);
        let resources = resources.as_ref();
        let needed = resources.map(needed_controllers).unwrap_or_default();
        if !needed.is_empty() {
            // Each ancestor, from the mount down to the parent, must delegate the controllers.
            let mut cur = mount.to_path_buf();
            let parts: Vec<_> = dir
                .strip_prefix(mount)
                .unwrap_or(&dir)
                .components()
                .collect();
            for (i, c) in parts.iter().enumerate() {
                let available = read(&cur, "cgroup.controllers").unwrap_or_default();
                for ctrl in &needed {
                    if !available.split_whitespace().any(|a| a == *ctrl) {
                        return Err(Error::Cgroup {
                            path: cur.join("cgroup.controllers"),
                            source: std::io::Error::new(
                                std::io::ErrorKind::Unsupported,
                                format!("controller {ctrl} is not available"),
                            ),
                        });
                    }
                    write(&cur, "cgroup.subtree_control", &format!("+{ctrl}"))?;
                }
                cur = cur.join(c);
                if i + 1 < parts.len() {
                    mkdir_recorded(&cur, &mut cg.created)?;
                }
            }
        }
        mkdir_recorded(&dir, &mut cg.created)?;
        if let Some(r) = resources {
            let applied = cg.plan(r).and_then(|plan| {
                cg.apply_devices(r)?;
                plan.apply(false)
            });
            if let Err(e) = applied {
                let _ = cg.remove_in_place();
                return Err(e);
            }
        }
        Ok(cg)
    }

    /// The cgroup's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Changes the limits as `update` does (runc update): what `r` sets is written (zeros
    /// that mean "not set" are not, see [`super::without_unset`]), the device rules are left;
    /// every setting that has no cgroup2 file is an error, found before anything is written,
    /// and a write that fails puts back the ones before it.
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        self.plan(r)?.apply(true)
    }

    /// config-linux.md "Allowed Device list" on cgroup2: an eBPF device program made from
    /// the list, the default devices kept usable after it as on v1.
    fn apply_devices(&self, r: &LinuxResources) -> Result<()> {
        if let Some(devs) = r.devices().as_ref().filter(|d| !d.is_empty()) {
            let rules: Vec<_> = devs
                .iter()
                .cloned()
                .chain(super::v1::default_allowed())
                .collect();
            super::devices_bpf::apply(&self.dir, &rules)?;
        }
        Ok(())
    }

    /// The writes that apply `r`, checked first.
    pub(crate) fn plan(&self, r: &LinuxResources) -> Result<Plan> {
        let r = &super::without_unset(r);
        let d = &self.dir;
        let mut plan = Plan::default();
        if r.rdma().is_some() {
            return Err(Error::Unsupported {
                field: "linux.resources.rdma",
            });
        }
        if r.network().is_some() {
            return Err(Error::Unsupported {
                field: "linux.resources.network (cgroup v2 has no net_cls/net_prio)",
            });
        }
        if let Some(m) = r.memory() {
            if m.kernel().is_some() || m.kernel_tcp().is_some() {
                return Err(Error::Unsupported {
                    field: "linux.resources.memory.kernel",
                });
            }
            if m.swappiness().is_some() {
                return Err(Error::Unsupported {
                    field: "linux.resources.memory.swappiness (cgroup v2)",
                });
            }
            if m.disable_oom_killer() == Some(true) {
                return Err(Error::Unsupported {
                    field: "linux.resources.memory.disableOOMKiller (cgroup v2)",
                });
            }
            if let Some(l) = m.limit() {
                plan.push(d, "memory.max", max_or(l));
            }
            if let Some(l) = m.reservation() {
                plan.push(d, "memory.low", max_or(l));
            }
            // runtime-spec swap is memory+swap; memory.swap.max is swap alone. As runc: an
            // unlimited memory with no swap given makes swap unlimited too.
            let swap = match (m.limit(), m.swap()) {
                (Some(-1), None) => Some(-1),
                (_, s) => s,
            };
            if let Some(s) = swap {
                let v = match (s, m.limit()) {
                    (s, _) if s < 0 => "max".to_string(),
                    (s, Some(l)) if l >= 0 && s >= l => (s - l).to_string(),
                    (_, Some(l)) if l >= 0 => {
                        return Err(Error::invalid(
                            "linux.resources.memory.swap",
                            format!("memory+swap ({s}) must be at least the memory limit ({l})"),
                        ))
                    }
                    _ => {
                        return Err(Error::invalid(
                            "linux.resources.memory.swap",
                            "needs memory.limit on cgroup v2",
                        ))
                    }
                };
                plan.push(d, "memory.swap.max", v);
            }
        }
        if let Some(c) = r.cpu() {
            if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
                return Err(Error::Unsupported {
                    field: "linux.resources.cpu.realtime* (cgroup v2)",
                });
            }
            super::check_cpu(c)?;
            if let Some(s) = c.shares() {
                plan.push(d, "cpu.weight", shares_to_weight(s).to_string());
            }
            if c.quota().is_some() || c.period().is_some() {
                // cpu.max is "QUOTA PERIOD": the half not given keeps its current value.
                let q = match c.quota() {
                    Some(q) => max_or(q),
                    None => read(d, "cpu.max")
                        .ok()
                        .and_then(|t| t.split_whitespace().next().map(str::to_string))
                        .unwrap_or_else(|| "max".into()),
                };
                plan.push(
                    d,
                    "cpu.max",
                    match c.period() {
                        Some(p) => format!("{q} {p}"),
                        None => q,
                    },
                );
            }
            if let Some(b) = c.burst() {
                plan.push(d, "cpu.max.burst", b.to_string());
            }
            if let Some(i) = c.idle() {
                plan.push(d, "cpu.idle", i.to_string());
            }
            let parent = d.parent().unwrap_or(d);
            for (v, file, field) in [
                (c.cpus(), "cpuset.cpus", "linux.resources.cpu.cpus"),
                (c.mems(), "cpuset.mems", "linux.resources.cpu.mems"),
            ] {
                if let Some(v) = v {
                    let avail = read(parent, &format!("{file}.effective")).ok();
                    super::check_cpuset(field, v, avail.as_deref())?;
                    plan.push(d, file, v.clone());
                }
            }
        }
        if let Some(p) = r.pids() {
            plan.push(d, "pids.max", super::pids_max(p.limit()));
        }
        if let Some(b) = r.block_io() {
            if b.leaf_weight().is_some() {
                return Err(Error::Unsupported {
                    field: "linux.resources.blockIO.leafWeight (cgroup v2)",
                });
            }
            // As runc: BFQ's io.bfq.weight takes the blkio weight as it is; io.weight takes
            // it converted.
            let bfq = d.join("io.bfq.weight").exists();
            if let Some(w) = b.weight() {
                if bfq {
                    plan.push(d, "io.bfq.weight", w.to_string());
                } else {
                    plan.push(d, "io.weight", blkio_to_io_weight(w).to_string());
                }
            }
            for wd in b.weight_device().iter().flatten() {
                if let Some(w) = wd.weight() {
                    let (file, w) = if bfq {
                        ("io.bfq.weight", u64::from(w))
                    } else {
                        ("io.weight", blkio_to_io_weight(w))
                    };
                    plan.push(d, file, format!("{}:{} {w}", wd.major(), wd.minor()));
                }
            }
            for (list, key) in [
                (b.throttle_read_bps_device(), "rbps"),
                (b.throttle_write_bps_device(), "wbps"),
                (b.throttle_read_iops_device(), "riops"),
                (b.throttle_write_iops_device(), "wiops"),
            ] {
                for t in list.iter().flatten() {
                    plan.push(
                        d,
                        "io.max",
                        format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()),
                    );
                }
            }
        }
        for h in r.hugepage_limits().iter().flatten() {
            plan.push(
                d,
                format!("hugetlb.{}.max", h.page_size()),
                h.limit().to_string(),
            );
        }
        let mut keys: Vec<_> = r.unified().iter().flatten().collect();
        keys.sort();
        for (k, v) in keys {
            // config-linux.md "Unified": keys are file names of the cgroup directory.
            if k.contains('/') || k.starts_with('.') || k.is_empty() {
                return Err(Error::invalid(
                    "linux.resources.unified",
                    format!("bad key {k:?}"),
                ));
            }
            plan.push(d, k.as_str(), v.as_str());
        }
        Ok(plan)
    }

    /// The pids in the cgroup.
    pub fn procs(&self) -> Result<Vec<i32>> {
        Ok(parse_procs(&read(&self.dir, "cgroup.procs")?))
    }

    /// Freezes (cgroup.freeze) and waits for `frozen 1` in cgroup.events.
    pub fn freeze(&self) -> Result<()> {
        write(&self.dir, "cgroup.freeze", "1")?;
        for _ in 0..2000 {
            if read(&self.dir, "cgroup.events")?
                .lines()
                .any(|l| l.trim() == "frozen 1")
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(Error::Cgroup {
            path: self.dir.join("cgroup.events"),
            source: std::io::Error::from_raw_os_error(libc::EBUSY),
        })
    }

    /// Thaws.
    pub fn thaw(&self) -> Result<()> {
        write(&self.dir, "cgroup.freeze", "0")
    }

    /// cgroup.kill where the kernel has it (5.14+), else a kill loop.
    pub fn kill_all(&self) -> Result<()> {
        // cgroup.kill (5.14) takes the sub-cgroups too; the loop checks them all.
        if self.dir.join("cgroup.kill").exists() {
            write(&self.dir, "cgroup.kill", "1")?;
        }
        super::kill_loop(|| super::procs_tree(&self.dir))
    }

    /// Removes the directories this cgroup created.
    pub fn remove(mut self) -> Result<()> {
        self.remove_in_place()
    }

    pub(crate) fn remove_in_place(&mut self) -> Result<()> {
        remove_recorded(&mut self.created)
    }
}

fn needed_controllers(r: &LinuxResources) -> Vec<&'static str> {
    let mut v = Vec::new();
    if r.memory().is_some() {
        v.push("memory");
    }
    if let Some(c) = r.cpu() {
        if c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.burst().is_some()
            || c.idle().is_some()
        {
            v.push("cpu");
        }
        if c.cpus().is_some() || c.mems().is_some() {
            v.push("cpuset");
        }
    }
    if r.pids().is_some() {
        v.push("pids");
    }
    if r.block_io().is_some() {
        v.push("io");
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        v.push("hugetlb");
    }
    v
}

impl Cgroup {
    /// An existing cgroup directory, nothing created; `remove` takes only this directory.
    pub(crate) fn open_dir(dir: PathBuf) -> Result<Cgroup> {
        if !dir.is_dir() {
            return Err(Error::Cgroup {
                path: dir,
                source: std::io::Error::from_raw_os_error(libc::ENOENT),
            });
        }
        Ok(Cgroup {
            created: vec![dir.clone()],
            dir,
        })
    }
}
