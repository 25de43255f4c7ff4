//! The container's stdin, stdout and stderr, chosen per stream by the caller.
//!
//! By default a container's process inherits the caller's fds 0, 1 and 2. [`Stdio`] picks
//! something else per stream without touching the caller's own fds: the set-up process puts
//! the chosen fd at 0, 1 or 2 in itself (dup2) before anything else, and the user's program
//! inherits it from there.

use crate::error::{Error, Result};
use libc::c_int;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// What one of the container's standard streams is connected to, as
/// [`std::process::Stdio`] for a command.
///
/// ```
/// use oci_sandbox::{Options, Stdio};
/// let log = std::fs::File::create(std::env::temp_dir().join("oci-sandbox-doc.log"))?;
/// let options = Options::new()
///     .stdin(Stdio::null())
///     .stdout(Stdio::piped()) // read it from Container::take_stdout
///     .stderr(Stdio::from(log));
/// # let _ = options;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub enum Stdio {
    /// The caller's own fd 0, 1 or 2 (the default).
    #[default]
    Inherit,
    /// `/dev/null` (of the host, opened by the caller).
    Null,
    /// This fd (a file, a socket, one end of the caller's own pipe...). The container gets a
    /// copy; the caller's stays open in the caller until the options are dropped.
    Fd(OwnedFd),
    /// A new pipe: the container gets one end, the caller the other, taken from
    /// [`crate::Container::take_stdout`] (and `take_stdin`, `take_stderr`, or the same on
    /// [`crate::Exec`]).
    Piped,
}

impl Stdio {
    /// The caller's own stream.
    pub fn inherit() -> Stdio {
        Stdio::Inherit
    }

    /// `/dev/null`.
    pub fn null() -> Stdio {
        Stdio::Null
    }

    /// A pipe, whose other end the caller takes from the container handle.
    pub fn piped() -> Stdio {
        Stdio::Piped
    }

    /// This fd.
    pub fn fd(fd: impl Into<OwnedFd>) -> Stdio {
        Stdio::Fd(fd.into())
    }
}

impl Stdio {
    /// The same choice again: a duplicate of the fd for [`Stdio::Fd`], a new pipe for
    /// [`Stdio::Piped`] (for callers that keep options and use them more than once).
    pub fn try_clone(&self) -> std::io::Result<Stdio> {
        Ok(match self {
            Stdio::Inherit => Stdio::Inherit,
            Stdio::Null => Stdio::Null,
            Stdio::Piped => Stdio::Piped,
            Stdio::Fd(fd) => Stdio::Fd(fd.try_clone()?),
        })
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio::Fd(fd)
    }
}

impl From<File> for Stdio {
    fn from(f: File) -> Stdio {
        Stdio::Fd(f.into())
    }
}

/// The three streams, prepared before the fork: the fds the child puts at 0-2, and the
/// caller's ends of the pipes.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// For the child, close-on-exec, at numbers of at least the `min_fd` given to `prepare`
    /// (never among 0-2 or the preserved fds). Dropped by the parent once it has forked.
    pub child: [Option<OwnedFd>; 3],
    /// The caller's end of each piped stream.
    pub parent: [Option<File>; 3],
}

impl Prepared {
    /// The raw fds for the child (`-1`: inherit).
    pub fn raw(&self) -> [c_int; 3] {
        let f = |o: &Option<OwnedFd>| o.as_ref().map_or(-1, |fd| fd.as_raw_fd());
        [f(&self.child[0]), f(&self.child[1]), f(&self.child[2])]
    }

    /// Whether any stream is other than inherited.
    pub fn any(&self) -> bool {
        self.child.iter().any(Option::is_some)
    }
}

/// A duplicate of `fd`, close-on-exec, at `min_fd` or above.
fn dup_above(fd: c_int, min_fd: c_int, what: &'static str) -> Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd we own, or -1.
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min_fd) };
    if r < 0 {
        return Err(Error::last_os(what, None));
    }
    // SAFETY: a fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// Opens, duplicates or makes (pipes) what each of stdin, stdout and stderr is connected to.
pub(crate) fn prepare(streams: [Stdio; 3], min_fd: c_int) -> Result<Prepared> {
    let mut out = Prepared::default();
    for (i, s) in streams.into_iter().enumerate() {
        match s {
            Stdio::Inherit => {}
            Stdio::Null => {
                let f = std::fs::OpenOptions::new()
                    .read(i == 0)
                    .write(i != 0)
                    .open("/dev/null")
                    .map_err(crate::Error::sys(
                        "open",
                        std::path::PathBuf::from("/dev/null"),
                    ))?;
                out.child[i] = Some(dup_above(f.as_raw_fd(), min_fd, "dup stdio")?);
            }
            Stdio::Fd(fd) => out.child[i] = Some(dup_above(fd.as_raw_fd(), min_fd, "dup stdio")?),
            Stdio::Piped => {
                let mut fds = [0 as c_int; 2];
                // SAFETY: pipe2(2) into a valid 2-element array.
                if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
                    return Err(Error::last_os("pipe2", None));
                }
                // SAFETY: two fresh fds we own.
                let (r, w) =
                    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
                let (child, parent) = if i == 0 { (r, w) } else { (w, r) };
                out.child[i] = Some(dup_above(child.as_raw_fd(), min_fd, "dup stdio")?);
                out.parent[i] = Some(File::from(parent));
            }
        }
    }
    Ok(out)
}
