//! The container state store (runtime.md, "State"): one directory per container under a root
//! (default `/run/ocirun`, `$XDG_RUNTIME_DIR/ocirun` when rootless: [`default_root`]), `state.json` written atomically, an exclusive lock per container
//! against concurrent operations on the same id.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{ContainerState, Spec, State, StateBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The default state root, as runc's is `/run/runc`.
pub const DEFAULT_ROOT: &str = "/run/ocirun";

const STATE_FILE: &str = "state.json";

/// The state root to use when none is given: `$XDG_RUNTIME_DIR/ocirun` for a rootless caller
/// (as runc uses `$XDG_RUNTIME_DIR/runc`: a non-root effective uid, or root of a user namespace
/// whose `$USER` is not root, such as `podman unshare`), else [`DEFAULT_ROOT`].
pub fn default_root() -> PathBuf {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let honour = euid != 0
        || (oci_sandbox::in_user_namespace() && std::env::var("USER").is_ok_and(|u| u != "root"));
    match xdg {
        Some(dir) if honour => PathBuf::from(dir).join("ocirun"),
        _ => PathBuf::from(DEFAULT_ROOT),
    }
}

/// What `create` records before any cgroup or process of the container exists, so that a
/// create killed half-way (or a state file lost) can still be undone by `delete --force`.
const INTENT_FILE: &str = "intent.json";

/// The recovery record of a container: written by `create` first, kept for its whole life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    /// The container's cgroupsPath, as the config gives it (after the runtime's default).
    pub cgroups_path: Option<String>,
    /// The bundle directory.
    pub bundle: PathBuf,
}

/// What [`StateStore::scan`] found in one container directory.
#[derive(Debug)]
#[non_exhaustive]
pub enum Entry {
    /// A readable record.
    Healthy(Box<ContainerRecord>),
    /// A create in progress (its lock is held): not yet a container.
    Creating,
    /// No record, and nobody creating it: a create that did not finish.
    Incomplete,
    /// A record that cannot be read (empty, truncated, garbage).
    Corrupt(Error),
}

/// Checks a container id: letters, digits and `_ + - .`, not `.` or `..`, at most 1024
/// bytes (runc's rule), so that an id can never name a path outside the state root.
pub fn check_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        return bad("not a valid name");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
    {
        return bad("only letters, digits, '_', '+', '-' and '.' are allowed");
    }
    Ok(())
}

/// What the runtime records about one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecord {
    /// The container id.
    pub id: String,
    /// The bundle directory (absolute).
    pub bundle: PathBuf,
    /// The root filesystem (absolute).
    pub rootfs: PathBuf,
    /// The recorded status; see [`ContainerRecord::status`] for the live one.
    pub status: ContainerState,
    /// The init process, once created.
    pub pid: Option<i32>,
    /// The init process's start time (field 22 of `/proc/PID/stat`), so that a recycled pid is
    /// never mistaken for the container.
    pub pid_start_time: Option<u64>,
    /// When the container was created (RFC 3339, UTC).
    pub created: String,
    /// The config the container was created from (hooks at delete time use it, whatever
    /// happened to the bundle since).
    pub config: Spec,
    /// The cgroup path used, once created.
    pub cgroup_path: Option<String>,
    /// Free-form data of the layers above (console socket, exec fifo, …).
    #[serde(default)]
    pub extra: HashMap<String, String>,
}

impl ContainerRecord {
    /// The live status: a container recorded as created or running whose init has exited (or
    /// whose pid now belongs to another process) is stopped.
    pub fn status(&self) -> ContainerState {
        match self.status {
            ContainerState::Created | ContainerState::Running => {
                if self.init_alive() {
                    self.status
                } else {
                    ContainerState::Stopped
                }
            }
            other => other,
        }
    }

    /// True if the init process still runs (and is not a zombie or a recycled pid).
    pub fn init_alive(&self) -> bool {
        match (self.pid, self.pid_start_time) {
            (Some(pid), Some(start)) => {
                matches!(proc_stat(pid), Some((state, t)) if t == start && state != 'Z' && state != 'X')
            }
            (Some(pid), None) => matches!(proc_stat(pid), Some((s, _)) if s != 'Z' && s != 'X'),
            _ => false,
        }
    }

    /// The runtime-spec state of the container (runtime.md, "State"), as `state` prints it
    /// and hooks receive it on stdin.
    pub fn oci_state(&self) -> State {
        let status = self.status();
        let pid = match status {
            ContainerState::Created | ContainerState::Running => self.pid,
            _ => None,
        };
        let mut b = StateBuilder::default()
            .version(self.config.version().clone())
            .id(self.id.clone())
            .status(status)
            .bundle(self.bundle.clone());
        if let Some(pid) = pid {
            b = b.pid(pid);
        }
        if let Some(a) = self.config.annotations().clone().filter(|a| !a.is_empty()) {
            b = b.annotations(a);
        }
        b.build()
            .unwrap_or_else(|_| unreachable!("version, id, status and bundle are set"))
    }
}

/// `(state, starttime)` from `/proc/PID/stat`.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// The state root: one directory per container.
#[derive(Debug, Clone)]
pub struct StateStore {
    root: PathBuf,
}

/// An exclusive lock on one container's directory, released on drop.
#[derive(Debug)]
pub struct ContainerLock {
    _dir: File,
}

impl StateStore {
    /// Opens (creating it with mode 0700 if needed) the state root.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(|e| Error::io(&root, e))?;
        Ok(Self { root })
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of container `id` (the id is checked first).
    pub fn dir(&self, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        Ok(self.root.join(id))
    }

    /// Creates the directory of a new container and takes its lock; fails with
    /// [`Error::Exists`] if the id is taken. Nothing is recorded until [`StateStore::save`].
    pub fn create(&self, id: &str) -> Result<ContainerLock> {
        let dir = self.dir(id)?;
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists { id: id.into() })
            }
            Err(e) => return Err(Error::io(&dir, e)),
        }
        self.lock(id)
    }

    /// Takes the exclusive lock of container `id`, waiting for another holder to finish.
    pub fn lock(&self, id: &str) -> Result<ContainerLock> {
        let dir = self.dir(id)?;
        let f = match File::open(&dir) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound { id: id.into() })
            }
            Err(e) => return Err(Error::io(&dir, e)),
        };
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(&dir, e.into()))?;
        Ok(ContainerLock { _dir: f })
    }

    /// Writes a container's record atomically.
    pub fn save(&self, record: &ContainerRecord) -> Result<()> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| Error::io(&record.id, std::io::Error::other(e)))?;
        self.write_file(&record.id, STATE_FILE, &bytes)
    }

    /// Records the intent to create container `id` (before anything of it exists).
    pub fn save_intent(&self, id: &str, intent: &Intent) -> Result<()> {
        let bytes =
            serde_json::to_vec(intent).map_err(|e| Error::io(id, std::io::Error::other(e)))?;
        self.write_file(id, INTENT_FILE, &bytes)
    }

    /// The intent recorded for `id`, if any and readable.
    pub fn load_intent(&self, id: &str) -> Option<Intent> {
        let bytes = fs::read(self.dir(id).ok()?.join(INTENT_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every container directory and what it holds, sorted by id.
    pub fn scan(&self) -> Result<Vec<(String, Entry)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))? {
            let entry = entry.map_err(|e| Error::io(&self.root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if check_id(&name).is_err() || !entry.path().is_dir() {
                continue;
            }
            let found = match self.load(&name) {
                Ok(r) => Entry::Healthy(Box::new(r)),
                Err(Error::NotFound { .. }) => match File::open(entry.path()) {
                    Ok(f) => match rustix::fs::flock(
                        &f,
                        rustix::fs::FlockOperation::NonBlockingLockShared,
                    ) {
                        Ok(()) => Entry::Incomplete,
                        Err(_) => Entry::Creating,
                    },
                    // Removed meanwhile.
                    Err(_) => continue,
                },
                Err(e) => Entry::Corrupt(e),
            };
            out.push((name, found));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn write_file(&self, id: &str, name: &str, bytes: &[u8]) -> Result<()> {
        let dir = self.dir(id)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".state-")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))?;
        tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(tmp.path(), e))?;
        let dest = dir.join(name);
        tmp.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
        Ok(())
    }

    /// Reads a container's record; [`Error::NotFound`] if there is none.
    pub fn load(&self, id: &str) -> Result<ContainerRecord> {
        let file = self.dir(id)?.join(STATE_FILE);
        let bytes = match fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound { id: id.into() })
            }
            Err(e) => return Err(Error::io(&file, e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::Json {
            file,
            field: ".".into(),
            message: e.to_string(),
        })
    }

    /// Removes a container's directory and everything in it.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id)?;
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&dir, e)),
        }
    }

    /// The records of every container whose record is readable, sorted by id; directories
    /// without one (a create in progress or killed) or with a corrupt one are left out: see
    /// [`StateStore::scan`] for those.
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        Ok(self
            .scan()?
            .into_iter()
            .filter_map(|(_, e)| match e {
                Entry::Healthy(r) => Some(*r),
                _ => None,
            })
            .collect())
    }
}

/// Now as RFC 3339 UTC with nanoseconds, as runc records `created`.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, pid: Option<i32>) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            status: ContainerState::Created,
            pid,
            pid_start_time: pid.and_then(proc_stat).map(|(_, t)| t),
            created: now_rfc3339(),
            config: crate::default_spec().unwrap(),
            cgroup_path: None,
            extra: HashMap::new(),
        }
    }

    #[test]
    fn ids_cannot_escape_the_root() {
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a\0b", "é"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        for ok in ["abc", "a.b-c_d+e", "0123"] {
            check_id(ok).unwrap();
        }
    }

    #[test]
    fn create_save_load_list_remove() {
        let d = tempfile::tempdir().unwrap();
        let store = StateStore::new(d.path().join("root")).unwrap();
        let lock = store.create("c1").unwrap();
        assert!(matches!(store.create("c1"), Err(Error::Exists { .. })));
        assert!(matches!(store.load("c1"), Err(Error::NotFound { .. })));
        let me = std::process::id() as i32;
        store.save(&record("c1", Some(me))).unwrap();
        drop(lock);
        let r = store.load("c1").unwrap();
        assert_eq!(r.status(), ContainerState::Created, "this process is alive");
        let st = r.oci_state();
        assert_eq!(st.pid(), &Some(me));
        store.save(&record("c2", None)).unwrap_err(); // no directory: create first
        store.create("c2").unwrap();
        store.save(&record("c2", None)).unwrap();
        assert_eq!(store.load("c2").unwrap().status(), ContainerState::Stopped);
        assert_eq!(store.list().unwrap().len(), 2);
        store.remove("c1").unwrap();
        assert!(matches!(store.load("c1"), Err(Error::NotFound { .. })));
        assert!(matches!(store.lock("c1"), Err(Error::NotFound { .. })));
    }

    #[test]
    fn a_recycled_pid_is_not_the_container() {
        let mut r = record("x", Some(std::process::id() as i32));
        r.pid_start_time = r.pid_start_time.map(|t| t + 1);
        assert_eq!(r.status(), ContainerState::Stopped);
    }

    #[test]
    fn rfc3339_shape() {
        let s = now_rfc3339();
        assert_eq!(s.len(), 30, "{s}");
        assert!(s.ends_with('Z') && s.as_bytes()[10] == b'T');
    }
}
