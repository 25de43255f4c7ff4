//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while turning a `Spec` into a process.
///
/// Variants carry the config field, path or syscall involved so that a caller can report the
/// failure without guessing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config asks for a setting this crate does not implement. Runtime-spec
    /// (runtime.md, "Errors") requires an error rather than a silent skip.
    #[error("unsupported config setting {field}")]
    Unsupported {
        /// The config field, in runtime-spec's JSON spelling (e.g. `linux.intelRdt`).
        field: &'static str,
    },
    /// The config is malformed or contradicts itself.
    #[error("invalid config field {field}: {reason}")]
    InvalidConfig {
        /// The config field, in runtime-spec's JSON spelling.
        field: &'static str,
        /// Why the value was refused.
        reason: String,
    },
    /// The config asks for a Linux security module the host does not run.
    #[error("{lsm} is requested by {field} but the host does not run it")]
    LsmUnavailable {
        /// `AppArmor` or `SELinux`.
        lsm: &'static str,
        /// The config field that asked for it.
        field: &'static str,
    },
    /// A syscall made by the runtime (the parent side) failed.
    #[error("{syscall} failed{}: {}", path.as_ref().map(|p| format!(" on {}", p.display())).unwrap_or_default(), errno_text(source))]
    Syscall {
        /// The syscall or operation name.
        syscall: &'static str,
        /// The path it acted on, when there was one.
        path: Option<PathBuf>,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A step of the container set-up, run in the child process, failed.
    #[error("container set-up step {step} failed{}: {}", if detail.is_empty() { String::new() } else { format!(" ({detail})") }, errno_text(source))]
    Child {
        /// The set-up step (e.g. `mount`, `pivot_root`, `capset`).
        step: &'static str,
        /// What the step acted on (a mount destination, a sysctl key...), when known.
        detail: String,
        /// The OS error reported by the child.
        #[source]
        source: io::Error,
    },
    /// `process.args[0]` could not be found, or is not executable (config.md "Process":
    /// "same semantics as IEEE Std 1003.1-2008 execvp's file"). Worded as runc (Go's
    /// `exec.LookPath`) words it, since engines match the text: Docker exits 127 on
    /// "executable file not found" or "no such file or directory" and 126 on "permission
    /// denied".
    #[error("exec: {name:?}: {}", lookup_text(name, *searched, source))]
    Executable {
        /// `process.args[0]` as given.
        name: String,
        /// Whether it was looked up in the container's PATH (it has no slash).
        searched: bool,
        /// Why the last candidate was not taken.
        #[source]
        source: io::Error,
    },
    /// execve(2) of the user's program failed after it was found (a missing interpreter, a
    /// binary for another architecture), worded as runc's `exec PATH: ERROR`.
    #[error("exec {path}: {}", errno_text(source))]
    Execve {
        /// The program's path in the container.
        path: String,
        /// What execve returned.
        #[source]
        source: io::Error,
    },
    /// A cgroup file or directory could not be created, written or removed.
    #[error("cgroup {}: {}", path.display(), errno_text(source))]
    Cgroup {
        /// The cgroup file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A cgroup update failed part way. The files it had written before the failure were
    /// put back, except those listed in `left` (each with its value now and before).
    #[error("cgroup update failed part way; {}", if left.is_empty() { "the files written before it were restored".to_string() } else { format!("left changed: {}", left.join("; ")) })]
    UpdateIncomplete {
        /// The write that failed.
        #[source]
        source: Box<Error>,
        /// The files that could not be put back.
        left: Vec<String>,
    },
    /// The seccomp profile could not be compiled to BPF.
    #[error("seccomp profile field {field}: {reason}")]
    Seccomp {
        /// The field of `linux.seccomp` at fault.
        field: &'static str,
        /// Why it could not be compiled.
        reason: String,
    },
    /// A caller-supplied hook callback failed; the container is torn down.
    #[error("{hook} hook failed: {reason}")]
    Hook {
        /// `createRuntime`, `createContainer` or `startContainer`.
        hook: &'static str,
        /// The message the callback returned.
        reason: String,
    },
    /// The container process exited or closed the sync channel before it was expected to.
    #[error("container process ended unexpectedly during {stage}")]
    ChildVanished {
        /// The lifecycle stage (`create` or `start`).
        stage: &'static str,
    },
    /// The container's process was killed by the OOM killer while it was being set up: the
    /// cgroup's memory limit is too low for the set-up itself.
    #[error("the container's process was killed by the OOM killer during {stage}: the memory limit ({limit}) is too low")]
    OomKilled {
        /// The lifecycle stage.
        stage: &'static str,
        /// `linux.resources.memory.limit`, as configured.
        limit: String,
    },
    /// A rootless container's user namespace maps could not be written by `newuidmap` or
    /// `newgidmap` (config-linux.md "User namespace mappings"): typically a range that is not
    /// the user's in `/etc/subuid` or `/etc/subgid`, or the helper is missing.
    #[error("{helper} {args} failed: {reason}")]
    IdMapHelper {
        /// `newuidmap` or `newgidmap`.
        helper: &'static str,
        /// Its arguments after the pid (container id, host id, size triples).
        args: String,
        /// What it said.
        reason: String,
    },
    /// A rootless container asks for resource limits but its cgroup cannot be created: the
    /// host has not delegated a cgroup subtree to the user.
    #[error("cgroup {}: {source}: {needed}", path.display())]
    RootlessCgroup {
        /// The cgroup directory that could not be created.
        path: PathBuf,
        /// The delegation the host needs.
        needed: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The operation is not valid in the container's current state (e.g. `start` twice).
    #[error("cannot {op}: container is {state}")]
    State {
        /// The operation asked for.
        op: &'static str,
        /// The state the container is in.
        state: &'static str,
    },
}

impl Error {
    /// The OS error that kept the container's process from being executed, when that is why
    /// this failed: `process.args[0]` was not found (`ENOENT`) or could not be executed
    /// (`EACCES`, `ENOEXEC`, ...). Engines report these as exit statuses 127 and 126.
    pub fn exec_error(&self) -> Option<&io::Error> {
        match self {
            Error::Executable { source, .. } | Error::Execve { source, .. } => Some(source),
            _ => None,
        }
    }

    pub(crate) fn sys(
        syscall: &'static str,
        path: impl Into<Option<PathBuf>>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Syscall {
            syscall,
            path,
            source,
        }
    }

    pub(crate) fn last_os(syscall: &'static str, path: impl Into<Option<PathBuf>>) -> Error {
        Error::Syscall {
            syscall,
            path: path.into(),
            source: io::Error::last_os_error(),
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
        Error::InvalidConfig {
            field,
            reason: reason.into(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An OS error as Go prints it (and so runc, and the engines that match runc's text): the
/// C library's message, lower case, without Rust's " (os error N)".
pub(crate) fn errno_text(e: &io::Error) -> String {
    let s = e.to_string();
    let s = match s.rfind(" (os error ") {
        Some(i) => &s[..i],
        None => &s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Go's `exec.LookPath` errors: not found in $PATH; for a path, stat's error or "permission
/// denied" (a directory, or no execute bit).
fn lookup_text(name: &str, searched: bool, e: &io::Error) -> String {
    if searched {
        "executable file not found in $PATH".into()
    } else if e.raw_os_error() == Some(libc::EACCES) {
        "permission denied".into()
    } else {
        format!("stat {name}: {}", errno_text(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OS error is worded once in the message, as Go words it (runc's text, which engines
    /// match), and is the `source()`: a printer that compares without case or Rust's
    /// " (os error N)" (examples' report) says it once.
    #[test]
    fn the_os_error_is_the_source_and_worded_once() {
        let enoent = || io::Error::from_raw_os_error(libc::ENOENT);
        let errors = [
            Error::Syscall {
                syscall: "open",
                path: Some("/x".into()),
                source: enoent(),
            },
            Error::Child {
                step: "mount",
                detail: "/proc".into(),
                source: enoent(),
            },
            Error::Cgroup {
                path: "/sys/fs/cgroup/x".into(),
                source: enoent(),
            },
        ];
        for e in errors {
            let msg = e.to_string();
            assert_eq!(msg.matches("no such file or directory").count(), 1, "{msg}");
            assert!(!msg.contains("os error"), "{msg}");
            let source = std::error::Error::source(&e).expect("a source");
            assert_eq!(source.to_string(), enoent().to_string());
        }
    }

    #[test]
    fn exec_errors_are_told_apart() {
        let mount = Error::Child {
            step: crate::sys::Step::Mount.name(),
            detail: "/proc".into(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert!(mount.exec_error().is_none());
        let e = Error::Executable {
            name: "x".into(),
            searched: true,
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(
            e.exec_error().and_then(io::Error::raw_os_error),
            Some(libc::ENOENT)
        );
        let e = Error::Execve {
            path: "/x".into(),
            source: io::Error::from_raw_os_error(libc::ENOEXEC),
        };
        assert!(e.exec_error().is_some());
    }
}
