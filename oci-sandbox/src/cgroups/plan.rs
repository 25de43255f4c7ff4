//! Limits as a list of cgroup file writes, checked whole before the first one and undone
//! when one fails part way (runc update's input applied as one change).
//!
//! A [`Plan`] is built from `linux.resources` without touching the cgroup; every file it names
//! must exist before anything is written (cgroupfs cannot create files, and a write to a missing
//! one fails with EACCES, which names no cause). [`Plan::apply`] writes in order; with `restore`
//! each file's value is read before it is written, and a failed write puts back what the earlier
//! ones changed, newest first, so the kernel sees the same intermediate states in reverse.

use super::{read, write};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// One write of a value into a cgroup file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    pub dir: PathBuf,
    pub file: String,
    pub value: String,
    /// Retried once after every other write when the kernel refuses it with EINVAL: a CFS
    /// period shorter than the current one can exceed the parent's quota until the new quota
    /// is in (runc retries it the same way).
    pub retry_late: bool,
}

/// The writes that apply some resources, in order.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub writes: Vec<Write>,
}

impl Plan {
    pub fn push(&mut self, dir: &Path, file: impl Into<String>, value: impl Into<String>) {
        self.writes.push(Write {
            dir: dir.to_path_buf(),
            file: file.into(),
            value: value.into(),
            retry_late: false,
        });
    }

    /// See [`Write::retry_late`].
    pub fn push_retry_late(&mut self, dir: &Path, file: &str, value: String) {
        self.push(dir, file, value);
        if let Some(w) = self.writes.last_mut() {
            w.retry_late = true;
        }
    }

    pub fn extend(&mut self, other: Plan) {
        self.writes.extend(other.writes);
    }

    /// Every file the plan writes exists: a missing one is named (this kernel or this
    /// hierarchy lacks it) before anything is written.
    pub fn check_files(&self) -> Result<()> {
        for w in &self.writes {
            let p = w.dir.join(&w.file);
            if !p.exists() {
                return Err(Error::Cgroup {
                    path: p,
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no such cgroup file (the kernel or this hierarchy does not have it)",
                    ),
                });
            }
        }
        Ok(())
    }

    /// Writes the plan in order. With `restore`, a failure puts back every file written
    /// before it; the error then says what could not be put back, if anything. Without it the
    /// caller discards the cgroup on failure (create).
    pub fn apply(self, restore: bool) -> Result<()> {
        self.check_files()?;
        let mut done: Vec<(Write, Option<String>)> = Vec::new();
        let mut late: Vec<Write> = Vec::new();
        let mut failure = None;
        for w in self.writes {
            let before = restore.then(|| previous(&w)).flatten();
            match write(&w.dir, &w.file, &w.value) {
                Ok(()) => done.push((w, before)),
                Err(Error::Cgroup { source, .. })
                    if w.retry_late && source.raw_os_error() == Some(libc::EINVAL) =>
                {
                    late.push(w)
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if failure.is_none() {
            for w in late {
                let before = restore.then(|| previous(&w)).flatten();
                match write(&w.dir, &w.file, &w.value) {
                    Ok(()) => done.push((w, before)),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        let Some(err) = failure else {
            return Ok(());
        };
        if !restore || done.is_empty() {
            return Err(err);
        }
        let mut left = Vec::new();
        for (w, before) in done.into_iter().rev() {
            let path = w.dir.join(&w.file);
            match before {
                Some(b) if write(&w.dir, &w.file, &b).is_ok() => {}
                Some(b) => left.push(format!(
                    "{} is {:?}, was {b:?} (restoring it failed)",
                    path.display(),
                    w.value
                )),
                None => left.push(format!(
                    "{} is {:?} (its previous value could not be read)",
                    path.display(),
                    w.value
                )),
            }
        }
        Err(Error::UpdateIncomplete {
            source: Box::new(err),
            left,
        })
    }
}

/// Files written as `KEY VALUE` lines, one key at a time, and what removes a key's setting.
fn keyed_default(file: &str) -> Option<&'static str> {
    Some(match file {
        "blkio.throttle.read_bps_device"
        | "blkio.throttle.write_bps_device"
        | "blkio.throttle.read_iops_device"
        | "blkio.throttle.write_iops_device"
        | "blkio.weight_device"
        | "blkio.leaf_weight_device"
        | "net_prio.ifpriomap" => "0",
        "blkio.bfq.weight_device" | "io.weight" | "io.bfq.weight" => "default",
        "io.max" => "rbps=max wbps=max riops=max wiops=max",
        _ => return None,
    })
}

/// What writing `w` back restores, from the file's content now; `None` if it cannot be
/// known.
fn previous(w: &Write) -> Option<String> {
    let now = read(&w.dir, &w.file).ok()?;
    let key = w.value.split_whitespace().next().unwrap_or("");
    if let Some(default) = keyed_default(&w.file) {
        // `maj:min VALUE` (or `IFNAME PRIO`): restore that key's line, or its default.
        // io.weight and io.bfq.weight also take a plain weight, listed as `default N`.
        let keyed = w.file.ends_with("priomap") || key.contains(':');
        if keyed {
            return Some(
                now.lines()
                    .find(|l| l.split_whitespace().next() == Some(key))
                    .map(|l| l.trim().to_string())
                    .unwrap_or_else(|| format!("{key} {default}")),
            );
        }
    }
    match w.file.as_str() {
        // `oom_kill_disable N` among counters; only the flag is writable.
        "memory.oom_control" => now
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill_disable "))
            .map(|v| v.trim().to_string()),
        // A weight, listed as `N` or `default N` depending on the kernel.
        "blkio.bfq.weight" | "io.bfq.weight" | "io.weight" | "blkio.weight" => now
            .lines()
            .find(|l| !l.contains(':'))
            .and_then(|l| l.split_whitespace().last())
            .map(str::to_string),
        _ => {
            let t = now.trim();
            (!t.contains('\n')).then(|| t.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (f, v) in files {
            std::fs::write(d.path().join(f), v).unwrap();
        }
        d
    }

    fn w(dir: &Path, file: &str, value: &str) -> Write {
        Write {
            dir: dir.to_path_buf(),
            file: file.into(),
            value: value.into(),
            retry_late: false,
        }
    }

    #[test]
    fn previous_values_restore_what_was_there() {
        let d = fixture(&[
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
            ),
            ("blkio.bfq.weight", "default 300\n"),
            ("blkio.throttle.read_bps_device", "8:0 1000\n"),
            ("io.max", "8:16 rbps=2 wbps=max riops=max wiops=max\n"),
            ("io.weight", "default 100\n8:16 50\n"),
            ("net_prio.ifpriomap", "lo 0\neth0 3\n"),
        ]);
        let p = d.path();
        let cases = [
            (w(p, "memory.limit_in_bytes", "100"), "9223372036854771712"),
            (w(p, "memory.oom_control", "1"), "0"),
            (w(p, "blkio.bfq.weight", "500"), "300"),
            (w(p, "blkio.throttle.read_bps_device", "8:0 5"), "8:0 1000"),
            (w(p, "blkio.throttle.read_bps_device", "8:16 5"), "8:16 0"),
            (
                w(p, "io.max", "8:16 wbps=5"),
                "8:16 rbps=2 wbps=max riops=max wiops=max",
            ),
            (
                w(p, "io.max", "8:0 wbps=5"),
                "8:0 rbps=max wbps=max riops=max wiops=max",
            ),
            (w(p, "io.weight", "70"), "100"),
            (w(p, "io.weight", "8:16 70"), "8:16 50"),
            (w(p, "io.weight", "8:0 70"), "8:0 default"),
            (w(p, "net_prio.ifpriomap", "eth0 5"), "eth0 3"),
            (w(p, "net_prio.ifpriomap", "eth1 5"), "eth1 0"),
        ];
        for (write, want) in cases {
            assert_eq!(previous(&write).as_deref(), Some(want), "{write:?}");
        }
    }

    #[test]
    fn a_missing_file_is_named_before_anything_is_written() {
        let d = fixture(&[("cpu.shares", "1024\n")]);
        let mut plan = Plan::default();
        plan.push(d.path(), "cpu.shares", "512");
        plan.push(d.path(), "blkio.weight", "500");
        let e = plan.apply(true).unwrap_err();
        // The error names the file; its cause says what is wrong.
        let cause = std::error::Error::source(&e)
            .map(|c| c.to_string())
            .unwrap_or_default();
        assert!(e.to_string().contains("blkio.weight"), "{e}");
        assert!(cause.contains("no such cgroup file"), "{cause}");
        assert_eq!(
            std::fs::read_to_string(d.path().join("cpu.shares")).unwrap(),
            "1024\n"
        );
    }

    #[test]
    fn a_failed_write_puts_back_what_was_written_before_it() {
        let d = fixture(&[("cpu.shares", "1024"), ("pids.max", "max")]);
        // A directory in place of a file: its write fails after the check that it exists.
        std::fs::create_dir(d.path().join("cpu.cfs_quota_us")).unwrap();
        let mut plan = Plan::default();
        plan.push(d.path(), "cpu.shares", "512");
        plan.push(d.path(), "pids.max", "10");
        plan.push(d.path(), "cpu.cfs_quota_us", "5000");
        let err = plan.apply(true).unwrap_err();
        assert!(
            matches!(&err, Error::UpdateIncomplete { left, .. } if left.is_empty()),
            "{err}"
        );
        let read = |f| std::fs::read_to_string(d.path().join(f)).unwrap();
        assert_eq!(read("cpu.shares"), "1024");
        assert_eq!(read("pids.max"), "max");
    }
}
