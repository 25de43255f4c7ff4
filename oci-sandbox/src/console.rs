//! `process.terminal` (config.md "Process"): a pseudo-terminal made in the container's own
//! devpts, its slave the process's controlling terminal and stdio and bound at `/dev/console`
//! (config-linux.md "/dev/console"), its master sent to the runtime over the sync socket with
//! SCM_RIGHTS (runc hands it on to `--console-socket`).
//!
//! Runs in the child after pivot_root, so that `/dev/ptmx` is the container's (the
//! `pts/ptmx` symlink of "Default Devices" into a `newinstance` devpts): the slave is then
//! `/dev/pts/N` of the container, as `tty` inside reports it.

use crate::sync::{self, Msg};
use crate::sys::{self, CResult, FdPath, Step};
use libc::c_int;

/// What each `Step::Console` index means, for errors.
pub(crate) const STAGES: &[&str] = &[
    "open /dev/ptmx",
    "unlock the pty",
    "open the pty slave",
    "set consoleSize",
    "create /dev/console",
    "bind the pty slave at /dev/console",
    "send the pty master",
    "make the pty the controlling terminal",
    "make the pty stdio",
];

fn fail(stage: usize) -> impl Fn(i32) -> sys::ChildError {
    move |e| sys::fail(Step::Console, stage, e)
}

fn check(r: c_int, stage: usize) -> CResult<c_int> {
    if r < 0 {
        Err(fail(stage)(sys::errno()))
    } else {
        Ok(r)
    }
}

/// Child: the whole console set-up. `size` is `process.consoleSize` as a winsize;
/// `bind_console` is false for a process exec'd into a running container (runc exec makes no
/// /dev/console either).
pub(crate) fn setup(size: Option<&libc::winsize>, sock: c_int, bind_console: bool) -> CResult {
    let master = sys::openat2(
        libc::AT_FDCWD,
        c"/dev/ptmx",
        libc::O_RDWR | libc::O_NOCTTY,
        0,
        sys::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(fail(0))?;
    let r = with_master(master, size, sock, bind_console);
    sys::close(master);
    r
}

fn with_master(
    master: c_int,
    size: Option<&libc::winsize>,
    sock: c_int,
    bind_console: bool,
) -> CResult {
    let unlock: c_int = 0;
    // SAFETY: ioctls on an fd we own, with pointers to live locals.
    unsafe {
        check(libc::ioctl(master, libc::TIOCSPTLCK, &unlock), 1)?;
    }
    // TIOCGPTPEER opens the slave from the master itself: no path lookup that a symlink in
    // the container's /dev/pts could redirect.
    // SAFETY: as above.
    let slave = check(
        unsafe {
            libc::ioctl(
                master,
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        },
        2,
    )?;
    let r = with_slave(master, slave, size, sock, bind_console);
    if slave > 2 {
        sys::close(slave);
    }
    r
}

fn with_slave(
    master: c_int,
    slave: c_int,
    size: Option<&libc::winsize>,
    sock: c_int,
    bind_console: bool,
) -> CResult {
    if let Some(ws) = size {
        check(
            // SAFETY: ioctl with a pointer to a winsize prepared before fork.
            unsafe { libc::ioctl(slave, libc::TIOCSWINSZ, ws as *const libc::winsize) },
            3,
        )?;
    }
    if bind_console {
        bind_at_dev_console(slave)?;
    }
    sync::send_fd(sock, Msg::Console, master).map_err(fail(6))?;
    // SAFETY: plain syscalls on fds we own.
    unsafe {
        // The process leads its own session already (sys::new_session).
        check(libc::ioctl(slave, libc::TIOCSCTTY, 0), 7)?;
        for fd in 0..3 {
            if fd != slave {
                check(libc::dup3(slave, fd, 0), 8)?;
            }
        }
    }
    Ok(())
}

/// config-linux.md "/dev/console": a bind mount of the slave over a file at /dev/console
/// (created if missing), both named by fds, so that no symlink in /dev is followed.
fn bind_at_dev_console(slave: c_int) -> CResult {
    let dev = sys::openat2(
        libc::AT_FDCWD,
        c"/dev",
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(fail(4))?;
    let r = (|| {
        // SAFETY: openat(2) with a static name in a directory fd we own.
        let f = unsafe {
            libc::openat(
                dev,
                c"console".as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600,
            )
        };
        if f >= 0 {
            sys::close(f);
        } else if sys::errno() != libc::EEXIST {
            return Err(fail(4)(sys::errno()));
        }
        let target = sys::openat2(
            dev,
            c"console",
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
            sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
        )
        .map_err(fail(4))?;
        let r = sys::mount(
            FdPath::new(slave).as_ptr(),
            FdPath::new(target).as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        );
        sys::close(target);
        r.map_err(fail(5))
    })();
    sys::close(dev);
    r
}
