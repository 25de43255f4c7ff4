//! The probe: a small static program placed in test rootfses that reports, as one JSON
//! object, what a process in the container sees: namespaces, credentials, capability sets,
//! seccomp and no_new_privs, rlimits, umask, cwd, env, hostname, mounts with their flags,
//! open fds, cgroup membership, scheduling, and the results of probes asked for on the
//! command line. The tests compare this report with the config setting by setting.
//!
//! It uses `std` only (libc functions are declared here), so the tests build it with plain
//! `rustc -C target-feature=+crt-static` and no Cargo project: the binary runs in a rootfs
//! that has no dynamic loader.
//!
//! Usage: `probe [--out FILE] [--syscall NR[,ARG]...]... [--read PATH]... [--write PATH]...
//! [--exec PATH]... [--stat PATH]...`
//! - `--syscall`: makes the syscall with those arguments (zero-filled) and reports the
//!   return value and errno. Only for syscalls that are harmless with these arguments.
//! - `--read`: the file's content, or the errno.
//! - `--write`: whether `open(O_WRONLY | O_CREAT)` succeeds (nothing is written).
//! - `--exec`: whether `access(X_OK)` succeeds.
//! - `--stat`: type, mode, owner, device numbers (and a symlink's target) without following
//!   a last symlink, or the errno.

use std::ffi::{c_char, c_int, c_long, c_uint, CString};
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;

extern "C" {
    fn getresuid(r: *mut c_uint, e: *mut c_uint, s: *mut c_uint) -> c_int;
    fn getresgid(r: *mut c_uint, e: *mut c_uint, s: *mut c_uint) -> c_int;
    fn getgroups(n: c_int, list: *mut c_uint) -> c_int;
    fn umask(mask: c_uint) -> c_uint;
    fn getrlimit(resource: c_int, rlim: *mut [u64; 2]) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
    fn syscall(nr: c_long, ...) -> c_long;
    fn getpid() -> c_int;
    fn getppid() -> c_int;
    fn getsid(pid: c_int) -> c_int;
    fn getpgrp() -> c_int;
    fn sched_getscheduler(pid: c_int) -> c_int;
    fn personality(persona: std::ffi::c_ulong) -> c_int;
    fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    fn close(fd: c_int) -> c_int;
    fn access(path: *const c_char, mode: c_int) -> c_int;
    fn isatty(fd: c_int) -> c_int;
}

const PR_GET_NO_NEW_PRIVS: c_int = 39;
const PR_GET_DUMPABLE: c_int = 3;
const O_WRONLY: c_int = 1;
const O_CREAT: c_int = 0o100;
const O_CLOEXEC: c_int = 0o2000000;
const X_OK: c_int = 1;
const SYS_IOPRIO_GET: c_long = 252;
const NAMESPACES: [&str; 10] = [
    "cgroup",
    "ipc",
    "mnt",
    "net",
    "pid",
    "pid_for_children",
    "time",
    "time_for_children",
    "user",
    "uts",
];

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// A JSON string literal.
fn s(v: &str) -> String {
    let mut o = String::with_capacity(v.len() + 2);
    o.push('"');
    for c in v.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A JSON object from (key, already-encoded value) pairs.
fn obj(fields: Vec<(String, String)>) -> String {
    let body: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| format!("{}:{}", s(&k), v))
        .collect();
    format!("{{{}}}", body.join(","))
}

fn arr(items: Vec<String>) -> String {
    format!("[{}]", items.join(","))
}

fn read(path: &str) -> Result<String, i32> {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| e.raw_os_error().unwrap_or(0))
}

fn read_or_null(path: &str) -> String {
    read(path).map_or("null".into(), |v| s(v.trim_end_matches('\n')))
}

fn ids(f: unsafe extern "C" fn(*mut c_uint, *mut c_uint, *mut c_uint) -> c_int) -> String {
    let (mut r, mut e, mut v) = (0, 0, 0);
    // SAFETY: three valid out-pointers.
    unsafe { f(&mut r, &mut e, &mut v) };
    format!("[{r},{e},{v}]")
}

fn groups() -> String {
    let mut list = [0 as c_uint; 256];
    // SAFETY: the buffer holds 256 entries.
    let n = unsafe { getgroups(list.len() as c_int, list.as_mut_ptr()) };
    arr(list[..n.max(0) as usize]
        .iter()
        .map(|g| g.to_string())
        .collect())
}

/// `CapInh` etc. of /proc/self/status as numbers, with `NoNewPrivs`, `Seccomp`.
fn status_fields(status: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in status.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "CapInh" | "CapPrm" | "CapEff" | "CapBnd" | "CapAmb" => {
                let n = u64::from_str_radix(v, 16).unwrap_or(u64::MAX);
                out.push((k.to_string(), n.to_string()));
            }
            "NoNewPrivs" | "Seccomp" | "Seccomp_filters" => {
                out.push((k.to_string(), v.parse::<i64>().unwrap_or(-1).to_string()))
            }
            _ => {}
        }
    }
    out
}

/// /proc/self/mountinfo as objects: the mount point, fs type, source, per-mount options,
/// superblock options, the root of the mount within its filesystem, and optional fields
/// (propagation).
fn mounts() -> String {
    let info = read("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 6 || r.len() < 3 {
            continue;
        }
        out.push(obj(vec![
            ("target".into(), s(&unescape(l[4]))),
            ("root".into(), s(&unescape(l[3]))),
            ("options".into(), s(l[5])),
            ("optional".into(), s(&l[6..].join(" "))),
            ("type".into(), s(r[0])),
            ("source".into(), s(&unescape(r[1]))),
            ("super".into(), s(r[2])),
        ]));
    }
    arr(out)
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut o = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = |c: &u8| (b'0'..=b'7').contains(c);
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(octal) {
            let n = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |n, c| n * 8 + u32::from(c - b'0'));
            o.push(n as u8);
            i += 4;
        } else {
            o.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&o).into_owned()
}

/// Open fds and what they point to; the directory fd used to list them is left out.
fn fds() -> String {
    let mut nums: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    nums.sort_unstable();
    let mut out = Vec::new();
    for n in nums {
        if let Ok(t) = std::fs::read_link(format!("/proc/self/fd/{n}")) {
            out.push((n.to_string(), s(&t.to_string_lossy())));
        }
    }
    obj(out)
}

/// `[soft, hard]` of each resource, indexed by its RLIMIT_* number.
fn rlimits() -> String {
    let mut out = Vec::new();
    for i in 0..16 {
        let mut l = [0u64; 2];
        // SAFETY: a valid out-pointer of two u64 (struct rlimit on 64-bit Linux).
        if unsafe { getrlimit(i as c_int, &mut l) } != 0 {
            break;
        }
        out.push(format!("[{},{}]", l[0], l[1]));
    }
    arr(out)
}

fn namespaces() -> String {
    obj(NAMESPACES
        .iter()
        .map(|n| {
            let v = std::fs::read_link(format!("/proc/self/ns/{n}"))
                .map_or("null".into(), |t| s(&t.to_string_lossy()));
            (n.to_string(), v)
        })
        .collect())
}

fn syscall_probe(spec: &str) -> String {
    let parts: Vec<i64> = spec
        .split(',')
        .map(|p| {
            p.strip_prefix("0x")
                .map_or_else(|| p.parse(), |h| i64::from_str_radix(h, 16))
                .unwrap_or(-1)
        })
        .collect();
    let mut a = [0i64; 6];
    for (i, v) in parts.iter().skip(1).take(6).enumerate() {
        a[i] = *v;
    }
    // SAFETY: the tests only ask for syscalls that are harmless with these arguments.
    let ret = unsafe { syscall(parts[0], a[0], a[1], a[2], a[3], a[4], a[5]) };
    let e = if ret < 0 { errno() } else { 0 };
    obj(vec![
        ("ret".into(), ret.to_string()),
        ("errno".into(), e.to_string()),
    ])
}

fn cpath(p: &str) -> CString {
    CString::new(p).unwrap_or_default()
}

fn write_probe(path: &str) -> String {
    let c = cpath(path);
    // SAFETY: a NUL-terminated path; the fd is closed at once and nothing is written.
    let fd = unsafe { open(c.as_ptr(), O_WRONLY | O_CREAT | O_CLOEXEC, 0o600 as c_uint) };
    if fd >= 0 {
        // SAFETY: our own fd.
        unsafe { close(fd) };
        "0".into()
    } else {
        errno().to_string()
    }
}

fn stat_probe(path: &str) -> String {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => return obj(vec![("errno".into(), e.raw_os_error().unwrap_or(0).to_string())]),
    };
    let ft = m.file_type();
    let kind = if ft.is_symlink() {
        "link"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else {
        "file"
    };
    let rdev = m.rdev();
    // glibc's gnu_dev_major/minor.
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff);
    let mut fields = vec![
        ("type".to_string(), s(kind)),
        ("mode".into(), (m.mode() & 0o7777).to_string()),
        ("uid".into(), m.uid().to_string()),
        ("gid".into(), m.gid().to_string()),
    ];
    if ft.is_char_device() || ft.is_block_device() {
        fields.push(("major".into(), major.to_string()));
        fields.push(("minor".into(), minor.to_string()));
    }
    if ft.is_symlink() {
        let target = std::fs::read_link(path).map_or("null".into(), |t| s(&t.to_string_lossy()));
        fields.push(("target".into(), target));
    }
    obj(fields)
}

fn exec_probe(path: &str) -> String {
    let c = cpath(path);
    // SAFETY: a NUL-terminated path.
    if unsafe { access(c.as_ptr(), X_OK) } == 0 {
        "0".into()
    } else {
        errno().to_string()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out_file = None;
    let (mut syscalls, mut reads, mut writes, mut execs, mut stats) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut i = 0;
    while i + 1 < args.len() {
        let v = args[i + 1].clone();
        match args[i].as_str() {
            "--out" => out_file = Some(v),
            "--syscall" => syscalls.push((v.clone(), syscall_probe(&v))),
            "--read" => {
                let r = read(&v).map_or_else(
                    |e| obj(vec![("errno".into(), e.to_string())]),
                    |c| obj(vec![("content".into(), s(&c))]),
                );
                reads.push((v, r));
            }
            "--write" => writes.push((v.clone(), write_probe(&v))),
            "--exec" => execs.push((v.clone(), exec_probe(&v))),
            "--stat" => stats.push((v.clone(), stat_probe(&v))),
            other => {
                eprintln!("probe: unknown option {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    // SAFETY: umask always succeeds; the old mask is put back at once.
    let mask = unsafe {
        let m = umask(0o022);
        umask(m);
        m
    };
    let status = read("/proc/self/status").unwrap_or_default();
    // SAFETY: plain queries without pointers (or with 0 as the unused arguments).
    let (nnp, dumpable, pid, ppid, sid, pgrp, policy, pers, ioprio, tty) = unsafe {
        (
            prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
            prctl(PR_GET_DUMPABLE, 0, 0, 0, 0),
            getpid(),
            getppid(),
            getsid(0),
            getpgrp(),
            sched_getscheduler(0),
            personality(0xffff_ffff),
            syscall(SYS_IOPRIO_GET, 1, 0),
            isatty(0),
        )
    };
    let env: Vec<String> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            s(&String::from_utf8_lossy(&kv))
        })
        .collect();
    let cwd = std::env::current_dir().map_or("null".into(), |p| s(&p.to_string_lossy()));
    let mut fields = vec![
        ("pid".to_string(), pid.to_string()),
        ("ppid".into(), ppid.to_string()),
        ("sid".into(), sid.to_string()),
        ("pgrp".into(), pgrp.to_string()),
        ("uids".into(), ids(getresuid)),
        ("gids".into(), ids(getresgid)),
        ("groups".into(), groups()),
        ("umask".into(), mask.to_string()),
        ("no_new_privs".into(), nnp.to_string()),
        ("dumpable".into(), dumpable.to_string()),
        ("sched_policy".into(), policy.to_string()),
        ("personality".into(), pers.to_string()),
        ("ioprio".into(), ioprio.to_string()),
        ("stdin_tty".into(), (tty == 1).to_string()),
        ("cwd".into(), cwd),
        ("env".into(), arr(env)),
        (
            "hostname".into(),
            read_or_null("/proc/sys/kernel/hostname"),
        ),
        (
            "domainname".into(),
            read_or_null("/proc/sys/kernel/domainname"),
        ),
        ("oom_score_adj".into(), read_or_null("/proc/self/oom_score_adj")),
        ("uid_map".into(), read_or_null("/proc/self/uid_map")),
        ("gid_map".into(), read_or_null("/proc/self/gid_map")),
        ("setgroups".into(), read_or_null("/proc/self/setgroups")),
        ("cgroup".into(), read_or_null("/proc/self/cgroup")),
        ("namespaces".into(), namespaces()),
        ("rlimits".into(), rlimits()),
        ("mounts".into(), mounts()),
        ("fds".into(), fds()),
        ("syscalls".into(), obj(syscalls)),
        ("reads".into(), obj(reads)),
        ("writes".into(), obj(writes)),
        ("execs".into(), obj(execs)),
        ("stats".into(), obj(stats)),
    ];
    fields.extend(status_fields(&status));
    let json = obj(fields) + "\n";
    match out_file {
        Some(f) => {
            if let Err(e) = std::fs::write(&f, json) {
                eprintln!("probe: writing {f}: {e}");
                std::process::exit(1);
            }
        }
        None => print!("{json}"),
    }
}
