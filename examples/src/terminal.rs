//! Terminals and signals for the foreground commands (`ocirun run`, `ocirun exec`,
//! `ocibox run`): proxy a container's pty to ours in raw mode, forward signals to its init.

/// Forwards the signals a shell sends to the container's init (and resizes its terminal on
/// SIGWINCH). Returns the handle that stops forwarding when dropped.
pub fn forward_signals(pid: i32, tty: Option<i32>) -> Option<Forwarder> {
    use signal_hook::consts::*;
    let mut signals = signal_hook::iterator::Signals::new([
        SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH,
    ])
    .ok()?;
    let handle = signals.handle();
    if let Some(fd) = tty {
        resize(fd);
    }
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if sig == SIGWINCH {
                if let Some(fd) = tty {
                    resize(fd);
                }
                continue;
            }
            // SAFETY: kill(2) with plain integers.
            unsafe { libc::kill(pid, sig) };
        }
    });
    Some(Forwarder(handle))
}

/// Stops forwarding signals when dropped.
pub struct Forwarder(signal_hook::iterator::Handle);

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Copies our terminal's size to the container's pty.
pub fn resize(master: i32) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a valid winsize.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Proxies stdin/stdout to the pty master (foreground `run -t` without a console socket), with
/// our terminal in raw mode while it runs.
pub fn proxy(master: &std::os::fd::OwnedFd) -> RawTerminal {
    use std::os::fd::AsRawFd;
    let raw = RawTerminal::enable();
    let fd = master.as_raw_fd();
    // Duplicate so the threads own their fds.
    // SAFETY: dup(2) of a valid fd.
    let (rfd, wfd) = unsafe { (libc::dup(fd), libc::dup(fd)) };
    std::thread::spawn(move || {
        // SAFETY: rfd is ours.
        let mut from: std::fs::File = unsafe { std::os::fd::FromRawFd::from_raw_fd(rfd) };
        let _ = std::io::copy(&mut from, &mut std::io::stdout());
    });
    std::thread::spawn(move || {
        // SAFETY: wfd is ours.
        let mut to: std::fs::File = unsafe { std::os::fd::FromRawFd::from_raw_fd(wfd) };
        let _ = std::io::copy(&mut std::io::stdin(), &mut to);
    });
    raw
}

/// Puts stdin in raw mode while alive (if it is a terminal).
pub struct RawTerminal(Option<libc::termios>);

impl RawTerminal {
    /// Saves the terminal attributes of stdin and switches it to raw mode.
    pub fn enable() -> Self {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with valid termios structs.
        unsafe {
            if libc::isatty(0) == 0 {
                return Self(None);
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return Self(None);
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(0, libc::TCSANOW, &t);
            Self(Some(saved))
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            // SAFETY: restoring the saved attributes.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        }
    }
}
