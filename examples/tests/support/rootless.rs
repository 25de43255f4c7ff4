//! The ordinary user the rootless tests run as: created (if missing) by
//! `scripts/rootless-user`, which CI also runs, with 65536 subordinate uids and gids from
//! 400000 in /etc/subuid and /etc/subgid. Commands run as that user through setpriv(1), with
//! its own groups, no capabilities, and a clean environment.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// The test user.
#[derive(Debug)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The first of its subordinate uids and gids (65536 of each).
    pub subid: u32,
}

/// The test user, created once per test binary by the repository's script.
pub fn user() -> &'static User {
    static USER: std::sync::OnceLock<User> = std::sync::OnceLock::new();
    USER.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/rootless-user");
        let out = Command::new(&script)
            .output()
            .expect("running rootless-user");
        assert!(
            out.status.success(),
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let name = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let id = |flag: &str| -> u32 {
            let o = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8(o.stdout).unwrap().trim().parse().unwrap()
        };
        let subuid = std::fs::read_to_string("/etc/subuid").unwrap();
        let subid = subuid
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() == 3 && f[0] == name).then(|| f[1].parse().unwrap())
            })
            .expect("the test user's range in /etc/subuid");
        User {
            uid: id("-u"),
            gid: id("-g"),
            name,
            subid,
        }
    })
}

/// `program` as the test user: its uid, gid and groups, no capabilities, HOME and USER set,
/// `XDG_RUNTIME_DIR` set to `xdg` (made, and owned by the user).
pub fn command(program: impl AsRef<std::ffi::OsStr>, xdg: &Path) -> Command {
    let u = user();
    std::fs::create_dir_all(xdg).unwrap();
    give(xdg);
    std::fs::set_permissions(xdg, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid",
        &u.uid.to_string(),
        "--regid",
        &u.gid.to_string(),
        "--init-groups",
        "--inh-caps=-all",
        "--",
    ])
    .arg(reachable(program.as_ref()))
    .env_clear()
    .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    .env("HOME", format!("/home/{}", u.name))
    .env("USER", &u.name)
    .env("XDG_RUNTIME_DIR", xdg);
    c
}

/// Makes `path` (not what is under it) the test user's.
pub fn give(path: &Path) {
    let u = user();
    std::os::unix::fs::lchown(path, Some(u.uid), Some(u.gid)).unwrap();
}

/// `program` at a path the test user can execute: itself, or a copy (once per test binary)
/// when a directory above it is closed to others (a checkout under /root).
fn reachable(program: &std::ffi::OsStr) -> std::path::PathBuf {
    use std::collections::HashMap;
    use std::path::PathBuf;
    static COPIES: std::sync::Mutex<Option<HashMap<PathBuf, PathBuf>>> =
        std::sync::Mutex::new(None);
    let path = Path::new(program);
    let open = path.ancestors().skip(1).all(|d| {
        d.as_os_str().is_empty()
            || std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    });
    if !path.is_absolute() || open {
        return path.to_path_buf();
    }
    let mut copies = COPIES.lock().unwrap();
    let copies = copies.get_or_insert_with(HashMap::new);
    if let Some(c) = copies.get(path) {
        return c.clone();
    }
    let dir = std::env::temp_dir().join(format!("oci-rootless-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.join(path.file_name().unwrap());
    std::fs::copy(path, &copy).unwrap();
    copies.insert(path.to_path_buf(), copy.clone());
    copy
}
