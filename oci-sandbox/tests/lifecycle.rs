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
    assert!(err.to_string().contains("FIFO"), "{err}");
}
