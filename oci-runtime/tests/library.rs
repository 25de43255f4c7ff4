//! The crate as an embedder uses it: a spec from `default_spec`, the sandbox run directly,
//! `Runtime` with stdio of the caller's choosing, two runtimes side by side, and errors in
//! the library's own terms. Creates real containers: run as root.

use oci_runtime::oci_spec::runtime::Spec;
use oci_runtime::{default_spec, Bundle, CreateOptions, Error, ExecOptions, Runtime, Stdio};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(name: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("ocirt-{name}-{}-{n}", std::process::id())
}

/// A busybox rootfs (`sh`, `echo`, `cat`...) under `dir/rootfs`.
fn rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for a in ["sh", "echo", "cat", "sleep", "true"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    root
}

/// `default_spec()` running `sh -c script`.
fn spec(script: &str) -> Spec {
    let mut spec = default_spec().unwrap();
    let mut p = spec.process().clone().unwrap();
    p.set_args(Some(vec!["sh".into(), "-c".into(), script.into()]));
    spec.set_process(Some(p));
    spec
}

fn read_all(mut f: std::fs::File) -> String {
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

/// config-linux.md "Control groups": "If the value [cgroupsPath] is not specified, the
/// behavior is implementation-defined." `default_spec()` has resources (its device rules) and
/// no path: the sandbox runs it in a cgroup of its own, and removes that on delete.
#[test]
fn a_default_spec_runs_in_the_sandbox_without_a_cgroups_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = rootfs(dir.path());
    let spec = spec("echo from the default spec");
    assert!(spec.linux().as_ref().unwrap().cgroups_path().is_none());
    let options = oci_runtime::oci_sandbox::Options::new().stdout(Stdio::piped());
    let mut c = oci_runtime::oci_sandbox::Sandbox::create(&spec, &root, options).unwrap();
    let out = c.take_stdout().unwrap();
    let cgroup = c.cgroup().expect("a cgroup made for the resources").path();
    c.start().unwrap();
    assert_eq!(read_all(out), "from the default spec\n");
    assert_eq!(c.wait().unwrap(), oci_runtime::ExitStatus::Exited(0));
    c.delete().unwrap();
    assert!(!cgroup.exists(), "{} removed", cgroup.display());
}

/// Two runtimes with their own state roots, the same container id in both, at the same
/// time: each gets its own cgroup (the default path carries a tag of the state root).
#[test]
fn two_runtimes_run_the_same_id_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    rootfs(dir.path());
    Bundle::write(dir.path(), &spec("cat")).unwrap();
    let id = unique("twin");
    let (a, b) = (dir.path().join("root-a"), dir.path().join("root-b"));
    let (rt_a, rt_b) = (Runtime::new(&a).unwrap(), Runtime::new(&b).unwrap());
    let opts = || CreateOptions::new(dir.path()).stdin(Stdio::piped());
    let mut run_a = rt_a.run(&id, &opts()).unwrap();
    let mut run_b = rt_b.run(&id, &opts()).unwrap();
    let cg = |rt: &Runtime| rt.list().unwrap()[0].cgroup_path.clone().unwrap();
    let (cg_a, cg_b) = (cg(&rt_a), cg(&rt_b));
    assert_ne!(cg_a, cg_b);
    assert!(cg_a.contains(&id) && cg_b.contains(&id), "{cg_a} {cg_b}");
    // Closing each one's stdin ends its `cat`.
    drop(run_a.take_stdin());
    drop(run_b.take_stdin());
    assert_eq!(run_a.wait().unwrap(), 0);
    assert_eq!(run_b.wait().unwrap(), 0);
    rt_a.delete(&id, false).unwrap();
    rt_b.delete(&id, false).unwrap();
}

/// `Runtime::run` and `Runtime::exec` capture output through pipes, leaving the caller's
/// own fds alone; a running container refuses delete without force, in the library's terms.
#[test]
fn runtime_captures_output_and_speaks_its_own_terms() {
    let dir = tempfile::tempdir().unwrap();
    rootfs(dir.path());
    Bundle::write(dir.path(), &spec("echo started; exec sleep 1000")).unwrap();
    let rt = Runtime::new(dir.path().join("state")).unwrap();
    let id = unique("capture");
    let opts = CreateOptions::new(dir.path()).stdout(Stdio::piped());
    let mut running = rt.run(&id, &opts).unwrap();
    let mut out = running.take_stdout().unwrap();
    let mut line = [0u8; 8];
    out.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"started\n");

    let mut p = spec("").process().clone().unwrap();
    p.set_args(Some(vec!["echo".into(), "exec'd".into()]));
    let mut e = rt
        .exec(&id, &p, &ExecOptions::new().stdout(Stdio::piped()))
        .unwrap();
    assert_eq!(read_all(e.take_stdout().unwrap()), "exec'd\n");
    assert_eq!(e.wait().unwrap(), 0);

    let err = rt.delete(&id, false).unwrap_err();
    assert!(matches!(err, Error::WrongState { .. }), "{err}");
    assert!(!err.to_string().contains("--"), "no CLI flag in {err}");
    rt.delete(&id, true).unwrap();
    assert_eq!(running.wait().unwrap(), 128 + libc::SIGKILL);
}

#[test]
fn an_empty_bundle_path_says_so() {
    let err = Bundle::load("").unwrap_err();
    assert!(matches!(err, Error::Bundle { .. }), "{err}");
    assert!(err.to_string().contains("empty"), "{err}");
}

/// config-linux.md "Seccomp": Docker's profile denies by default and allows `mkdir`; a deny
/// rule appended for it equals the default action and is dropped (as runc drops it), so
/// `deny_syscall` takes the name out of the allow rule. In a real container, `mkdir` then
/// fails with the chosen errno while other calls still work.
#[test]
fn deny_syscall_denies_in_a_deny_by_default_profile() {
    let dir = tempfile::tempdir().unwrap();
    let root = rootfs(dir.path());
    std::os::unix::fs::symlink("busybox", root.join("bin/mkdir")).unwrap();
    let mut spec = spec("mkdir /tmp/made; echo status $?");
    let mut linux = spec.linux().clone().unwrap();
    let mut profile = linux.seccomp().clone().unwrap();
    for name in ["mkdir", "mkdirat"] {
        oci_runtime::oci_sandbox::seccomp::deny_syscall(&mut profile, name, libc::EACCES as u32);
    }
    linux.set_seccomp(Some(profile));
    spec.set_linux(Some(linux));
    let options = oci_runtime::oci_sandbox::Options::new()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut c = oci_runtime::oci_sandbox::Sandbox::create(&spec, &root, options).unwrap();
    let (out, err) = (c.take_stdout().unwrap(), c.take_stderr().unwrap());
    c.start().unwrap();
    assert_eq!(read_all(out), "status 1\n");
    assert!(read_all(err).contains("Permission denied"), "EACCES");
    c.wait().unwrap();
    c.delete().unwrap();
    assert!(!root.join("tmp/made").exists());
}
