//! Running OCI hooks (config.md, "POSIX-platform Hooks"): the container state on stdin, the
//! hook's own args and env (nothing inherited), an optional timeout.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, State};

use crate::error::{Error, Result};

/// The most of a failing hook's stderr kept in the error.
const STDERR_LIMIT: usize = 4096;

/// Runs `hooks` in order, stopping at the first failure. `kind` names them in errors
/// (`prestart`, `createRuntime`, …).
///
/// Each hook runs `path` with `args` (`args[0]` is `argv[0]`, as in `execv`), with exactly
/// `env` as its environment, and the state as JSON on stdin. It fails if it cannot start,
/// exits non-zero, is killed by a signal, or outlives `timeout` seconds (it is then killed).
///
/// ```
/// use oci_spec::runtime::{HookBuilder, StateBuilder, ContainerState};
/// let hook = HookBuilder::default().path("/bin/sh")
///     .args(vec!["sh".into(), "-c".into(), "grep -q '\"id\":\"c1\"'".into()])
///     .build().unwrap();
/// let state = StateBuilder::default().version("1.2.0").id("c1")
///     .status(ContainerState::Created).bundle("/b").build().unwrap();
/// oci_runtime::run_hooks("prestart", &[hook], &state).unwrap();
/// ```
pub fn run_hooks(kind: &str, hooks: &[Hook], state: &State) -> Result<()> {
    let input = serde_json::to_vec(state).map_err(|e| Error::Hook {
        hook: kind.into(),
        path: "".into(),
        message: e.to_string(),
    })?;
    for hook in hooks {
        run_hook_with(kind, hook, &input, Some(state.bundle()), None)?;
    }
    Ok(())
}

/// Runs `hooks` like [`run_hooks`], but each hook process first joins the namespaces of the
/// container whose init is `pid` (user first, then mount, uts, ipc, network and cgroup), so
/// that its path resolves and it runs in the container namespace, as config.md requires of
/// createContainer and startContainer hooks. Namespaces the container shares with the runtime
/// are not re-joined. The hook starts in `cwd` as seen in the container's mount namespace
/// (runc: the rootfs for createContainer, which runs before pivot_root), else at its root.
pub fn run_hooks_in_namespaces(
    kind: &str,
    hooks: &[Hook],
    state: &State,
    pid: i32,
    cwd: Option<&Path>,
) -> Result<()> {
    if hooks.is_empty() {
        return Ok(());
    }
    let input = serde_json::to_vec(state).map_err(|e| Error::Hook {
        hook: kind.into(),
        path: "".into(),
        message: e.to_string(),
    })?;
    let mut fds: Vec<std::os::fd::OwnedFd> = Vec::new();
    for ns in ["user", "mnt", "uts", "ipc", "net", "cgroup"] {
        let theirs = format!("/proc/{pid}/ns/{ns}");
        let ours = format!("/proc/self/ns/{ns}");
        let same = match (std::fs::metadata(&theirs), std::fs::metadata(&ours)) {
            (Ok(a), Ok(b)) => {
                use std::os::unix::fs::MetadataExt;
                a.ino() == b.ino() && a.dev() == b.dev()
            }
            _ => false,
        };
        if same {
            continue;
        }
        match std::fs::File::open(&theirs) {
            Ok(f) => fds.push(f.into()),
            Err(e) => {
                return Err(Error::Hook {
                    hook: kind.into(),
                    path: theirs.into(),
                    message: format!("cannot open the container's namespace: {e}"),
                })
            }
        }
    }
    let raw: Vec<i32> = fds.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
    let dir = cwd
        .map(|d| std::ffi::CString::new(d.as_os_str().as_encoded_bytes()))
        .transpose()
        .map_err(|_| Error::Hook {
            hook: kind.into(),
            path: "".into(),
            message: "a NUL byte in the working directory".into(),
        })?;
    for hook in hooks {
        let raw = raw.clone();
        let dir = dir.clone();
        let join = move || -> std::io::Result<()> {
            for fd in &raw {
                // SAFETY: setns(2) on fds opened above; async-signal-safe.
                if unsafe { libc::setns(*fd, 0) } < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // Joining a mount namespace puts the process at its root; then the cwd asked for.
            if let Some(d) = &dir {
                // SAFETY: chdir(2) with a string made before fork; async-signal-safe.
                if unsafe { libc::chdir(d.as_ptr()) } < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        };
        run_hook_with(kind, hook, &input, None, Some(Box::new(join)))?;
    }
    drop(fds);
    Ok(())
}

type PreExec = Box<dyn FnMut() -> std::io::Result<()> + Send + Sync>;

/// Runs one hook; `cwd` is its working directory (runc runs hooks in the bundle directory),
/// kept only when it is a directory.
fn run_hook_with(
    kind: &str,
    hook: &Hook,
    input: &[u8],
    cwd: Option<&Path>,
    pre_exec: Option<PreExec>,
) -> Result<()> {
    let fail = |message: String| Error::Hook {
        hook: kind.into(),
        path: hook.path().clone(),
        message,
    };
    let mut cmd = Command::new(hook.path());
    let args = hook.args().clone().unwrap_or_default();
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    if let Some(d) = cwd.filter(|d| d.is_dir()) {
        cmd.current_dir(d);
    }
    cmd.env_clear();
    for e in hook.env().iter().flatten() {
        match e.split_once('=') {
            Some((k, v)) => cmd.env(k, v),
            None => cmd.env(e, ""),
        };
    }
    // The state goes through a socket rather than a pipe, so that writing to a hook that
    // exits without reading never raises SIGPIPE in the runtime (MSG_NOSIGNAL), whatever the
    // caller's SIGPIPE disposition.
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(|e| fail(format!("socketpair: {e}")))?;
    cmd.stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // A hook must not keep the runtime's process group or terminal; it gets its own group so
    // that a timeout can kill whatever it started.
    cmd.process_group(0);
    if let Some(f) = pre_exec {
        // SAFETY: the closure only calls setns(2) and chdir(2), which are async-signal-safe.
        unsafe {
            cmd.pre_exec(f);
        }
    }
    let mut child = cmd.spawn().map_err(|e| fail(format!("cannot run: {e}")))?;
    // Drop our copy of the hook's end (held by `cmd`) so the hook sees EOF after the state.
    drop(cmd);
    let mut sent = 0;
    while sent < input.len() {
        match rustix::net::send(&ours, &input[sent..], rustix::net::SendFlags::NOSIGNAL) {
            Ok(n) => sent += n,
            Err(rustix::io::Errno::INTR) => continue,
            // A hook that does not read its stdin is fine.
            Err(_) => break,
        }
    }
    drop(ours);
    let mut stderr = child.stderr.take();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(STDERR_LIMIT as u64).read_to_end(&mut buf);
            let _ = tx.send(buf);
            // Drain the rest so the hook never blocks on a full pipe.
            let _ = std::io::copy(s, &mut std::io::sink());
        }
    });
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(fail(format!("wait: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let pgid = rustix::process::Pid::from_raw(child.id() as i32);
            if let Some(pgid) = pgid {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!(
                "timed out after {} seconds",
                hook.timeout().unwrap_or_default()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // A daemon started by the hook may keep stderr open: do not wait for it for long.
    let stderr = rx
        .recv_timeout(Duration::from_millis(500))
        .unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&stderr).trim().to_string();
    let how = match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => format!("killed by {status}"),
    };
    Err(fail(if stderr.is_empty() {
        how
    } else {
        format!("{how}: {stderr}")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{ContainerState, HookBuilder, StateBuilder};

    fn state() -> State {
        StateBuilder::default()
            .version("1.2.0")
            .id("hooked")
            .status(ContainerState::Created)
            .pid(42)
            .bundle("/bundle")
            .build()
            .unwrap()
    }

    fn sh(script: &str) -> Hook {
        HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".into(), "-c".into(), script.into()])
            .env(vec!["ONLY=this".into()])
            .build()
            .unwrap()
    }

    #[test]
    fn state_on_stdin_and_exact_env() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let script = format!(
            "cat > {0}; echo \"$ONLY:${{HOME:-unset}}\" >> {0}",
            out.display()
        );
        run_hooks("prestart", &[sh(&script)], &state()).unwrap();
        let text = std::fs::read_to_string(out).unwrap();
        let end = text.rfind('}').unwrap() + 1;
        let v: serde_json::Value = serde_json::from_str(&text[..end]).unwrap();
        assert_eq!(v["id"], "hooked");
        assert_eq!(v["pid"], 42);
        assert_eq!(
            text[end..].trim(),
            "this:unset",
            "only the hook's env is set"
        );
    }

    #[test]
    fn failures_stop_the_chain_and_say_why() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("ran");
        let hooks = [
            sh("echo boom >&2; exit 3"),
            sh(&format!("touch {}", marker.display())),
        ];
        let e = run_hooks("createRuntime", &hooks, &state()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("createRuntime") && msg.contains("status 3") && msg.contains("boom"),
            "{msg}"
        );
        assert!(!marker.exists(), "a failing hook stops the ones after it");
        let missing = HookBuilder::default()
            .path("/nonexistent/hook")
            .build()
            .unwrap();
        assert!(run_hooks("poststop", &[missing], &state()).is_err());
    }

    #[test]
    fn timeouts_kill_the_hook_and_its_children() {
        let mut h = sh("sleep 30 & sleep 30");
        h.set_timeout(Some(1));
        let start = Instant::now();
        let e = run_hooks("poststart", &[h], &state()).unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(20));
    }
}
