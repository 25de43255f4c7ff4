//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in `oci-runtime`; each variant names what failed and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{}", path.display())]
    Io {
        /// The path it was on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// `config.json` does not parse as a runtime-spec config.
    #[error("{file}: {field}: {message}")]
    Json {
        /// The file.
        file: PathBuf,
        /// JSON path of the field (`linux.namespaces[2].type`), `.` for the document.
        field: String,
        /// What is wrong.
        message: String,
    },

    /// The config parses but breaks a rule of the runtime-spec; all problems are listed.
    #[error("invalid config: {}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
    InvalidConfig(Vec<ConfigProblem>),

    /// `process.terminal` is true, but the container is created for someone else to wait on
    /// (`create`, `run --detach`, `exec --detach`) and no console socket was given to receive
    /// the terminal's master end. runc refuses this the same way.
    #[error("cannot allocate tty if the runtime will detach without setting console socket (process.terminal is true)")]
    ConsoleSocketRequired,

    /// The image config cannot be converted (conversion.md).
    #[error("image config: {field}: {message}")]
    Conversion {
        /// The image config field (`Config.User`, `Config.Entrypoint`).
        field: &'static str,
        /// What is wrong.
        message: String,
    },

    /// A user or group named in `Config.User` does not exist in the rootfs.
    #[error("user {spec:?}: {message}")]
    User {
        /// The user spec as given (`name`, `uid:gid`, `name:group`).
        spec: String,
        /// What is wrong.
        message: String,
    },

    /// The bundle cannot be used as given.
    #[error("bundle {}: {reason}", path.display())]
    Bundle {
        /// The bundle path as given.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A container id is malformed.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId {
        /// The id.
        id: String,
        /// Why.
        reason: &'static str,
    },

    /// No container with this id exists in the state root.
    #[error("container {id} does not exist")]
    NotFound {
        /// The id.
        id: String,
    },

    /// A container with this id already exists.
    #[error("container {id} already exists")]
    Exists {
        /// The id.
        id: String,
    },

    /// The operation is not allowed in the container's current state (runtime.md).
    #[error("container {id} is {status}: cannot {operation}")]
    WrongState {
        /// The id.
        id: String,
        /// Its status.
        status: String,
        /// The operation refused.
        operation: &'static str,
    },

    /// A signal was sent to a container that is neither created nor running (runtime.md,
    /// "Kill"). The text is runc's, word for word: engines match it to tell an exit that
    /// already happened from a failure (containerd accepts "container not running").
    #[error("container not running")]
    NotRunning {
        /// The id.
        id: String,
    },

    /// The sandbox could not create, start or enter the container.
    #[error(transparent)]
    Sandbox(#[from] oci_sandbox::Error),

    /// `delete --force` of a container could not remove everything of it.
    #[error("container {id}: could not remove {}", .remains.join(", "))]
    Leftover {
        /// The id.
        id: String,
        /// What is left: processes, cgroup directories, the state directory.
        remains: Vec<String>,
    },

    /// A hook failed: it could not run, exited non-zero, or timed out.
    #[error("{hook} hook {path}: {message}")]
    Hook {
        /// The hook kind (`prestart`, `createRuntime`, …).
        hook: String,
        /// Its path.
        path: PathBuf,
        /// What happened (exit status, timeout, stderr).
        message: String,
    },
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The OS error that kept the container's process from being executed (its
    /// `process.args[0]` not found, or not executable), when that is why this failed: see
    /// [`oci_sandbox::Error::exec_error`].
    pub fn exec_error(&self) -> Option<&io::Error> {
        match self {
            Error::Sandbox(e) => e.exec_error(),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// One rule of the runtime-spec that a config breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// JSON path of the field (`mounts[3].destination`).
    pub field: String,
    /// What is wrong, with the spec section it comes from.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[cfg(test)]
mod display_tests {
    use super::*;

    /// Each error names its own part and leaves its cause to `source()`, so that a printer
    /// walking the chain says every OS error once.
    #[test]
    fn the_os_error_is_the_source_not_part_of_the_message() {
        let text = io::Error::from_raw_os_error(2).to_string();
        let e = Error::Io {
            path: "/x".into(),
            source: io::Error::from_raw_os_error(2),
        };
        assert_eq!(e.to_string(), "/x");
        assert_eq!(
            std::error::Error::source(&e).map(|s| s.to_string()),
            Some(text)
        );
    }
}
