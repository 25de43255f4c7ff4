//! OCI runtime semantics on top of `oci-sandbox`.
//!
//! - [`spec_from_image`]: image config + user overrides to a runtime config
//!   (image-spec conversion.md), on top of [`default_spec`], a complete and safe default
//!   (Docker's capabilities, masked paths and seccomp profile).
//! - [`Bundle`], [`validate_spec`]: load, validate (runtime-spec rules, errors by JSON path)
//!   and write bundles.
//! - [`resolve_user`]: `Config.User` against the rootfs's own `/etc/passwd` and `/etc/group`,
//!   read with `openat2(RESOLVE_IN_ROOT)`.
//!
//! - [`Runtime`]: a state root and the lifecycle of runtime.md on the containers in it,
//!   across processes as runc does ([`Runtime::create`], [`Runtime::start`],
//!   [`Runtime::state`], [`Runtime::kill`], [`Runtime::delete`]), or in one
//!   ([`Runtime::run`], whose [`Running`] waits for the init), and [`Runtime::exec`],
//!   `pause`, `resume`, `update`, `ps`, `stats`. [`CreateOptions`] and [`ExecOptions`] choose
//!   the stdio of each stream ([`Stdio`]).
//!
//! Spec types come from [`oci_spec`], re-exported with [`oci_sandbox`], so values pass
//! between this crate, `oci-image`, `oci-sandbox` and users' code unchanged, with no
//! dependency of the user's own to keep in step.
//!
//! A container from [`default_spec`] in a bundle, its output captured (run by the tests, as
//! root):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use oci_runtime::{default_spec, Bundle, CreateOptions, Runtime, Stdio};
//! let dir = tempfile::tempdir()?;
//! let bin = dir.path().join("bundle/rootfs/bin");
//! std::fs::create_dir_all(&bin)?;
//! std::fs::copy("/bin/busybox", bin.join("sh"))?;
//! let mut spec = default_spec()?;
//! let mut process = spec.process().clone().unwrap();
//! process.set_args(Some(vec!["sh".into(), "-c".into(), "echo hello".into()]));
//! spec.set_process(Some(process));
//! Bundle::write(dir.path().join("bundle"), &spec)?;
//!
//! let rt = Runtime::new(dir.path().join("state"))?;
//! let opts = CreateOptions::new(dir.path().join("bundle")).stdout(Stdio::piped());
//! let mut running = rt.run("doc-example", &opts)?;
//! let out = std::io::read_to_string(running.take_stdout().unwrap())?;
//! assert_eq!(out, "hello\n");
//! assert_eq!(running.wait()?, 0);
//! rt.delete("doc-example", false)?;
//! # Ok(()) }
//! ```

mod bundle;
mod convert;
mod defaults;
mod error;
mod hooks;
mod lifecycle;
mod seccomp;
mod state;
mod user;
mod validate;

/// The sandbox this runtime drives: its types appear in this API ([`Stdio`],
/// [`oci_sandbox::cgroups::Stats`], [`Error::Sandbox`]).
pub use oci_sandbox;
pub use oci_sandbox::{ExitStatus, Stdio};
/// The runtime-spec and image-spec types this crate's API takes and returns, re-exported so
/// that users need no dependency of their own (nor a matching version) on `oci-spec`.
pub use oci_spec;
pub use oci_spec::image::ImageConfiguration;
pub use oci_spec::runtime::{LinuxResources, LinuxSeccomp, Process, Spec, State};

pub use bundle::Bundle;
pub use convert::{spec_from_image, Overrides, Volumes};
pub use defaults::{
    capability_name, default_device_rules, default_spec, DEFAULT_CAPABILITIES, DEFAULT_PATH,
    MASKED_PATHS, OCI_VERSION, READONLY_PATHS,
};
pub use error::{ConfigProblem, Error, Result};
pub use hooks::{run_hooks, run_hooks_in_namespaces};
pub use lifecycle::{
    listen_fds_from_env, CreateOptions, Exec, ExecOptions, KillScope, Running, Runtime, EXEC_FIFO,
};
pub use seccomp::{docker_default_seccomp, DOCKER_CAP_GATES, DOCKER_DENIED};
pub use state::{
    check_id, default_root, now_rfc3339, proc_stat, ContainerLock, ContainerRecord, Entry, Intent,
    StateStore, DEFAULT_ROOT,
};
pub use user::{read_in_root, resolve_user, ExecUser};
pub use validate::{parse_config, validate_spec};
