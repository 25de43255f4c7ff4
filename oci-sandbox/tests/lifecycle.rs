//! Lifecycle across processes: the exec fifo (runc create / start) and detach.
mod common;

use common::Fixture;
use oci_sandbox::{ExitStatus, Options};
use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn mkfifo(dir: &Path) -> PathBuf {
    let p = dir.join("exec.fifo");
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: plain mkfifo(3) of a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o622) }, 0);
    p
}

/// Kills and reaps a detached container's init if the test fails before it does.
struct Reaper(i32);

impl Drop for Reaper {
    fn drop(&mut self) {
        if self.0 > 0 {
            // SAFETY: kill and reap our own child.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
                libc::waitpid(self.0, std::ptr::null_mut(), 0);
            }
        }
    }
}

fn waitpid(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    status
}

#[test]
fn exec_fifo_starts_a_detached_container_from_another_thread() {
    let f = Fixture::new("fifo");
    let fifo = mkfifo(f.dir.path());
    let v = f.spec_json("echo started > /out/started; echo $$ > /out/pid");
    let (spec, rootfs, fifo2) = (f.spec(&v), f.rootfs.clone(), fifo.clone());
    // Created in one thread, which detaches and ends, as `ocirun create` exits.
    let pid = std::thread::spawn(move || {
        let c =
            oci_sandbox::Sandbox::create(&spec, &rootfs, Options::new().exec_fifo(fifo2)).unwrap();
        c.detach()
    })
    .join()
    .unwrap();
    let mut reaper = Reaper(pid);
    // Ready and blocked on the fifo: alive, the user's program has not run.
    std::thread::sleep(Duration::from_millis(100));
    assert!(!f.out.join("started").exists());
    // SAFETY: signal 0 only checks that the process exists.
    assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "init alive after detach");
    // Started from another thread, as `ocirun start` would: open for reading, read the byte.
    let got = std::thread::spawn(move || {
        let mut fd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut byte = [0u8; 1];
        loop {
            match fd.read(&mut byte) {
                Ok(1) => return byte[0],
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read fifo: {e}"),
            }
            assert!(Instant::now() < deadline, "no byte from the exec fifo");
            std::thread::sleep(Duration::from_millis(5));
        }
    })
    .join()
    .unwrap();
    assert_eq!(got, b'0');
    let status = waitpid(pid);
    reaper.0 = 0;
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert_eq!(f.out("started").trim(), "started");
    assert_eq!(f.out("pid").trim(), "1");
}

#[test]
fn exec_fifo_container_never_started_is_killed() {
    let f = Fixture::new("fifokill");
    let fifo = mkfifo(f.dir.path());
    let v = f.spec_json("echo started > /out/started");
    let mut c = f.create(&v, Options::new().exec_fifo(&fifo)).unwrap();
    c.kill(libc::SIGKILL).unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Signaled(libc::SIGKILL));
    c.delete().unwrap();
    assert!(!f.out.join("started").exists());
}

#[test]
fn exec_fifo_start_through_the_handle() {
    let f = Fixture::new("fifostart");
    let fifo = mkfifo(f.dir.path());
    let v = f.spec_json("echo started > /out/started; exit 3");
    let mut c = f.create(&v, Options::new().exec_fifo(&fifo)).unwrap();
    c.start().unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(3));
    c.delete().unwrap();
    assert_eq!(f.out("started").trim(), "started");
}

#[test]
fn exec_fifo_must_be_a_fifo() {
    let f = Fixture::new("fifonot");
    let not = f.dir.path().join("plain");
    std::fs::write(&not, "").unwrap();
    let err = f
        .create(&f.spec_json("true"), Options::new().exec_fifo(&not))
        .unwrap_err();
    // The error names the operation and the path; its cause says why.
    let cause = std::error::Error::source(&err).map(|c| c.to_string());
    assert!(err.to_string().contains("exec fifo"), "{err}");
    assert_eq!(cause.as_deref(), Some("not a FIFO"), "{err}");
}

#[test]
fn terminal_gives_a_pty_whose_master_reads_the_output() {
    let f = Fixture::new("tty");
    let mut v = f.spec_json(
        "tty; stty size; echo hello-from-the-pty; \
         test -c /dev/console && echo console-ok; \
         grep ' /dev/console ' /proc/self/mountinfo > /out/console; \
         tty > /out/tty",
    );
    v["process"]["terminal"] = serde_json::json!(true);
    v["process"]["consoleSize"] = serde_json::json!({"height": 31, "width": 97});
    let mut c = f.create(&v, Options::new()).unwrap();
    let master = c.take_console().expect("a pty master");
    assert!(c.take_console().is_none(), "taken once");
    c.start().unwrap();
    let reader = std::thread::spawn(move || common::read_console(master));
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0));
    let text = reader.join().unwrap();
    c.delete().unwrap();
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(
        lines,
        ["/dev/pts/0", "31 97", "hello-from-the-pty", "console-ok"],
        "{text:?}"
    );
    assert_eq!(f.out("tty").trim(), "/dev/pts/0");
    // config-linux.md "/dev/console": the slave bound over /dev/console.
    assert!(
        f.out("console").contains(" /dev/console "),
        "{}",
        f.out("console")
    );
}

#[test]
fn without_terminal_there_is_no_console() {
    let f = Fixture::new("notty");
    let mut v = f.spec_json("true");
    // Ignored without a terminal (config.md "Process").
    v["process"]["consoleSize"] = serde_json::json!({"height": 31, "width": 97});
    let mut c = f.create(&v, Options::new()).unwrap();
    assert!(c.take_console().is_none());
    c.start().unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0));
}

#[test]
fn no_pivot_moves_the_root_and_chroots() {
    let f = Fixture::new("nopivot");
    let v = f.spec_json(
        "ls / > /out/ls; cat /proc/self/mountinfo > /out/mountinfo; hostname > /out/host",
    );
    let mut c = f.create(&v, Options::new().no_pivot(true)).unwrap();
    c.start().unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0));
    c.delete().unwrap();
    let ls = f.out("ls");
    assert!(
        ls.lines().any(|l| l == "bin") && ls.lines().any(|l| l == "out"),
        "{ls}"
    );
    assert_eq!(f.out("host").trim(), "sandbox");
    // The rootfs was moved onto "/" of the namespace: the mount at "/" is the rootfs bind
    // (its root is the rootfs directory), and the host's mounts stay beneath it, out of sight.
    let mi = f.out("mountinfo");
    let root_line = mi
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no / mount in {mi}"));
    let root = root_line.split_whitespace().nth(3).unwrap();
    assert!(root.ends_with("/rootfs"), "{root_line}");
}
