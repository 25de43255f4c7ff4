//! The container's stdin, stdout and stderr chosen per stream (`Options::stdin`...,
//! `ExecOptions::stdin`...): inherited, /dev/null, a given fd, or a pipe whose other end the
//! caller gets. The caller's own fds 0-2 are never touched.
mod common;

use common::Fixture;
use oci_sandbox::{ExecOptions, ExitStatus, Options, Sandbox, Stdio};
use serde_json::json;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;

/// (device, inode, flags) of this process's fds 0-2: what a dup2 onto them would change.
fn own_stdio() -> Vec<(u64, u64, i32)> {
    (0..3)
        .map(|fd| {
            let m = std::fs::metadata(format!("/proc/self/fd/{fd}")).unwrap();
            // SAFETY: F_GETFL only queries.
            let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
            (m.dev(), m.ino(), fl)
        })
        .collect()
}

fn read_all(mut f: std::fs::File) -> String {
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

/// config.md "process": the container runs `args`; what it writes to its stdout and stderr
/// is captured through pipes, what it reads from stdin comes from the caller's pipe.
#[test]
fn pipes_capture_a_containers_output_and_feed_its_input() {
    let f = Fixture::new("stdio");
    let before = own_stdio();
    let v = f.spec_json("read line; echo \"got $line\"; echo oops >&2; exit 3");
    let mut c = f
        .create(
            &v,
            Options::new()
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .unwrap();
    let mut stdin = c.take_stdin().unwrap();
    let stdout = c.take_stdout().unwrap();
    let stderr = c.take_stderr().unwrap();
    assert!(c.take_stdout().is_none(), "handed out once");
    c.start().unwrap();
    stdin.write_all(b"hello\n").unwrap();
    drop(stdin);
    // End-of-file once the container's process is gone: the caller holds no writing end.
    assert_eq!(read_all(stdout), "got hello\n");
    assert_eq!(read_all(stderr), "oops\n");
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(3));
    c.delete().unwrap();
    assert_eq!(own_stdio(), before, "the caller's fds 0-2 are untouched");
}

#[test]
fn null_and_a_given_file() {
    let f = Fixture::new("stdio");
    let log = f.dir.path().join("log");
    let file = std::fs::File::create(&log).unwrap();
    // stdin is /dev/null: `cat` ends at once.
    let v = f.spec_json("cat; echo to-file; echo to-null >&2; readlink /proc/self/fd/2 > /out/fd2");
    let mut c = f
        .create(
            &v,
            Options::new()
                .stdin(Stdio::null())
                .stdout(Stdio::from(file))
                .stderr(Stdio::null()),
        )
        .unwrap();
    assert!(c.take_stdout().is_none(), "no pipe was asked for");
    c.start().unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0));
    c.delete().unwrap();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "to-file\n");
    assert_eq!(f.out("fd2").trim(), "/dev/null");
}

#[test]
fn exec_takes_its_own_stdio() {
    let f = Fixture::new("stdio");
    let before = own_stdio();
    let mut v = f.spec_json("sleep 1000");
    v["linux"]["cgroupsPath"] = json!(common::unique("stdio"));
    let mut c = f.create(&v, Options::new().stdout(Stdio::null())).unwrap();
    c.start().unwrap();
    let p: oci_spec::runtime::Process = serde_json::from_value(json!({
        "args": ["sh", "-c", "tr a-z A-Z; hostname >&2"],
        "env": ["PATH=/bin"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0}
    }))
    .unwrap();
    let mut e = Sandbox::exec(
        c.pid(),
        &p,
        ExecOptions::new()
            .cgroup(c.cgroup().unwrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    let mut stdin = e.take_stdin().unwrap();
    stdin.write_all(b"shout\n").unwrap();
    drop(stdin);
    assert_eq!(read_all(e.take_stdout().unwrap()), "SHOUT\n");
    assert_eq!(read_all(e.take_stderr().unwrap()), "sandbox\n");
    assert_eq!(e.wait().unwrap(), ExitStatus::Exited(0));
    c.delete().unwrap();
    assert_eq!(own_stdio(), before);
}

/// A terminal is the process's stdio: asking for both is refused, not silently resolved.
#[test]
fn a_terminal_with_stdio_is_refused() {
    let f = Fixture::new("stdio");
    let mut v = f.spec_json("true");
    v["process"]["terminal"] = json!(true);
    let e = f
        .create(&v, Options::new().stdout(Stdio::piped()))
        .unwrap_err();
    assert!(
        matches!(
            e,
            oci_sandbox::Error::InvalidConfig {
                field: "process.terminal",
                ..
            }
        ),
        "{e}"
    );
}
