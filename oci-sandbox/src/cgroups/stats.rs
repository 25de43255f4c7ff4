//! Resource usage of a cgroup (runc's `events --stats`), read from the v1 or v2 interface
//! files. Field names and units follow runc's `types.Stats` JSON, so a runtime can print it
//! as runc does: times in nanoseconds, sizes in bytes, a limit of "max" as `u64::MAX`.

use super::read;
use crate::error::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Everything [`super::Cgroup::stats`] reports.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// CPU time and CFS throttling.
    pub cpu: CpuStats,
    /// Memory, swap and kernel memory.
    pub memory: MemoryStats,
    /// Number of tasks.
    pub pids: PidsStats,
    /// Block I/O per device.
    pub blkio: BlkioStats,
    /// Per huge page size (`2MB`, `1GB`).
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

/// CPU usage and throttling.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct CpuStats {
    /// CPU time used.
    pub usage: CpuUsage,
    /// CFS bandwidth throttling.
    pub throttling: Throttling,
}

/// CPU time, in nanoseconds.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct CpuUsage {
    /// Total CPU time.
    pub total: u64,
    /// Per CPU (cgroup v1 only; empty on v2).
    #[serde(rename = "percpu", skip_serializing_if = "Vec::is_empty")]
    pub per_cpu: Vec<u64>,
    /// Time in kernel mode.
    pub kernel: u64,
    /// Time in user mode.
    pub user: u64,
}

/// CFS bandwidth throttling (`cpu.stat`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    /// Enforcement periods elapsed.
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    pub throttled_periods: u64,
    /// Total time throttled, in nanoseconds.
    pub throttled_time: u64,
}

/// Memory usage.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    /// Page cache (`cache` of v1 memory.stat, `file` of v2).
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory plus swap (v1's memsw; on v2 computed as runc does: swap + memory).
    pub swap: MemoryEntry,
    /// Kernel memory (v1 kmem, when the kernel has it).
    pub kernel: MemoryEntry,
    /// memory.stat, as is.
    pub raw: BTreeMap<String, u64>,
}

/// One memory counter.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryEntry {
    /// Limit in bytes (`u64::MAX` when unlimited).
    pub limit: u64,
    /// Current usage in bytes.
    pub usage: u64,
    /// Highest usage recorded (v1 max_usage_in_bytes, v2 memory.peak), in bytes.
    #[serde(rename = "max")]
    pub max_usage: u64,
    /// How many times the limit was hit.
    pub failcnt: u64,
}

/// Tasks.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PidsStats {
    /// Tasks in the cgroup.
    pub current: u64,
    /// pids.max; 0 when unlimited (as runc reports it).
    pub limit: u64,
}

/// Block I/O, recursive, per device and operation.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlkioStats {
    /// Bytes transferred.
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations done.
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// One device and operation (`Read`, `Write`, `Sync`, `Async`, `Discard`, `Total`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BlkioEntry {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// The operation.
    pub op: String,
    /// Bytes or operations.
    pub value: u64,
}

/// One huge page size.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct HugetlbStats {
    /// Bytes in use.
    pub usage: u64,
    /// Highest usage (v1 only; 0 on v2).
    #[serde(rename = "max")]
    pub max_usage: u64,
    /// How many times the limit was hit.
    pub failcnt: u64,
}

/// A number, or "max" as `u64::MAX`; a missing file is 0.
fn num(dir: &Path, file: &str) -> Result<u64> {
    if !dir.join(file).exists() {
        return Ok(0);
    }
    let t = read(dir, file)?;
    let t = t.trim();
    Ok(if t == "max" {
        u64::MAX
    } else {
        t.parse().unwrap_or(0)
    })
}

/// `key value` lines (memory.stat, cpu.stat, memory.events...); a missing file is empty.
pub(crate) fn keyed(dir: &Path, file: &str) -> Result<BTreeMap<String, u64>> {
    if !dir.join(file).exists() {
        return Ok(BTreeMap::new());
    }
    Ok(read(dir, file)?
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect())
}

/// Huge page sizes that have a `hugetlb.<size>.<suffix>` file in `dir`.
fn hugetlb_sizes(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            n.strip_prefix("hugetlb.")?
                .strip_suffix(suffix)
                .filter(|s| !s.contains('.'))
                .map(String::from)
        })
        .collect();
    v.sort();
    v
}

/// v1 memory hierarchy.
pub(crate) fn v1_memory(dir: &Path, s: &mut MemoryStats) -> Result<()> {
    let entry = |prefix: &str| -> Result<MemoryEntry> {
        Ok(MemoryEntry {
            limit: num(dir, &format!("{prefix}limit_in_bytes"))?,
            usage: num(dir, &format!("{prefix}usage_in_bytes"))?,
            max_usage: num(dir, &format!("{prefix}max_usage_in_bytes"))?,
            failcnt: num(dir, &format!("{prefix}failcnt"))?,
        })
    };
    s.usage = entry("memory.")?;
    s.swap = entry("memory.memsw.")?;
    s.kernel = entry("memory.kmem.")?;
    s.raw = keyed(dir, "memory.stat")?;
    s.cache = s.raw.get("cache").copied().unwrap_or(0);
    Ok(())
}

/// v1 cpuacct (times) and cpu (throttling) hierarchies.
pub(crate) fn v1_cpu(cpuacct: Option<&Path>, cpu: Option<&Path>, s: &mut CpuStats) -> Result<()> {
    if let Some(d) = cpuacct {
        s.usage.total = num(d, "cpuacct.usage")?;
        if d.join("cpuacct.usage_percpu").exists() {
            s.usage.per_cpu = read(d, "cpuacct.usage_percpu")?
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
        }
        // cpuacct.stat is in USER_HZ ticks.
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let st = keyed(d, "cpuacct.stat")?;
        let ns = |k: &str| st.get(k).copied().unwrap_or(0) * 1_000_000_000 / hz;
        s.usage.user = ns("user");
        s.usage.kernel = ns("system");
    }
    if let Some(d) = cpu {
        let st = keyed(d, "cpu.stat")?;
        s.throttling = Throttling {
            periods: st.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: st.get("throttled_time").copied().unwrap_or(0),
        };
    }
    Ok(())
}

/// pids controller, either version.
pub(crate) fn pids(dir: &Path, s: &mut PidsStats) -> Result<()> {
    s.current = num(dir, "pids.current")?;
    s.limit = match num(dir, "pids.max")? {
        u64::MAX => 0,
        n => n,
    };
    Ok(())
}

/// `8:0 Read 4096` lines of a v1 blkio file.
fn v1_blkio_file(dir: &Path, file: &str) -> Result<Vec<BlkioEntry>> {
    if !dir.join(file).exists() {
        return Ok(Vec::new());
    }
    Ok(read(dir, file)?
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [dev, op, value] = f[..] else { return None };
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect())
}

/// v1 blkio: the CFQ/BFQ recursive files when the scheduler fills them, else the throttle
/// layer's (which every scheduler has), as runc does.
pub(crate) fn v1_blkio(dir: &Path, s: &mut BlkioStats) -> Result<()> {
    let bytes = v1_blkio_file(dir, "blkio.io_service_bytes_recursive")?;
    if bytes.is_empty() {
        s.io_service_bytes_recursive =
            v1_blkio_file(dir, "blkio.throttle.io_service_bytes_recursive")?;
        s.io_serviced_recursive = v1_blkio_file(dir, "blkio.throttle.io_serviced_recursive")?;
    } else {
        s.io_service_bytes_recursive = bytes;
        s.io_serviced_recursive = v1_blkio_file(dir, "blkio.io_serviced_recursive")?;
    }
    Ok(())
}

/// v1 hugetlb.
pub(crate) fn v1_hugetlb(dir: &Path, s: &mut BTreeMap<String, HugetlbStats>) -> Result<()> {
    for size in hugetlb_sizes(dir, ".usage_in_bytes") {
        s.insert(
            size.clone(),
            HugetlbStats {
                usage: num(dir, &format!("hugetlb.{size}.usage_in_bytes"))?,
                max_usage: num(dir, &format!("hugetlb.{size}.max_usage_in_bytes"))?,
                failcnt: num(dir, &format!("hugetlb.{size}.failcnt"))?,
            },
        );
    }
    Ok(())
}

/// v2 hugetlb (also the unified part of a hybrid host).
pub(crate) fn v2_hugetlb(dir: &Path, s: &mut BTreeMap<String, HugetlbStats>) -> Result<()> {
    for size in hugetlb_sizes(dir, ".current") {
        let events = keyed(dir, &format!("hugetlb.{size}.events"))?;
        s.insert(
            size.clone(),
            HugetlbStats {
                usage: num(dir, &format!("hugetlb.{size}.current"))?,
                max_usage: 0,
                failcnt: events.get("max").copied().unwrap_or(0),
            },
        );
    }
    Ok(())
}

/// Everything of a cgroup2 directory.
pub(crate) fn v2(dir: &Path, s: &mut Stats) -> Result<()> {
    let events = keyed(dir, "memory.events")?;
    let m = &mut s.memory;
    m.usage = MemoryEntry {
        limit: num(dir, "memory.max")?,
        usage: num(dir, "memory.current")?,
        max_usage: num(dir, "memory.peak")?,
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    // runc reports v2 swap as memory + swap, comparable with v1's memsw.
    let swap_limit = num(dir, "memory.swap.max")?;
    m.swap = MemoryEntry {
        limit: if swap_limit == u64::MAX || m.usage.limit == u64::MAX {
            u64::MAX
        } else {
            swap_limit + m.usage.limit
        },
        usage: num(dir, "memory.swap.current")? + m.usage.usage,
        max_usage: 0,
        failcnt: 0,
    };
    m.raw = keyed(dir, "memory.stat")?;
    m.cache = m.raw.get("file").copied().unwrap_or(0);
    let cpu = keyed(dir, "cpu.stat")?;
    let us = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
    s.cpu.usage.total = us("usage_usec");
    s.cpu.usage.user = us("user_usec");
    s.cpu.usage.kernel = us("system_usec");
    s.cpu.throttling = Throttling {
        periods: cpu.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
        throttled_time: us("throttled_usec"),
    };
    pids(dir, &mut s.pids)?;
    if dir.join("io.stat").exists() {
        for line in read(dir, "io.stat")?.lines() {
            let mut it = line.split_whitespace();
            let Some((major, minor)) = it.next().and_then(|d| d.split_once(':')) else {
                continue;
            };
            let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
                continue;
            };
            for kv in it {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let Ok(value) = v.parse() else { continue };
                let (list, op) = match k {
                    "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                    "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                    "dbytes" => (&mut s.blkio.io_service_bytes_recursive, "Discard"),
                    "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                    "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                    "dios" => (&mut s.blkio.io_serviced_recursive, "Discard"),
                    _ => continue,
                };
                list.push(BlkioEntry {
                    major,
                    minor,
                    op: op.to_string(),
                    value,
                });
            }
        }
    }
    v2_hugetlb(dir, &mut s.hugetlb)
}
