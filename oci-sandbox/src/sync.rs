//! The sync channel between the runtime (parent) and the container's set-up process.
//!
//! A `SOCK_SEQPACKET` socketpair carrying fixed 16-byte messages, so that the child never
//! allocates to speak. The child's end is close-on-exec: a successful `execve` of the user's
//! program is seen by the parent as end-of-file.

use crate::sys::{self, ChildError, Step};
use libc::c_int;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Msg {
    /// child → parent: write the uid/gid maps of this (stage-1) pid, then answer `Continue`.
    NeedIdMap,
    /// child → parent: the container init's pid (in the parent's pid namespace).
    InitPid(i32),
    /// child → parent: run the createRuntime and createContainer hooks, then `Continue`.
    Hooks,
    /// child → parent: set-up done, waiting for `Start`.
    Ready,
    /// child → parent: a set-up step failed; the child exits.
    Error(ChildError),
    /// parent → child.
    Continue,
    /// parent → child: run the user's program.
    Start,
    /// child → parent: the pty master of `process.terminal`, attached with SCM_RIGHTS.
    Console,
}

impl Msg {
    fn encode(self) -> [u8; 16] {
        let (k, a, b, c): (u32, u32, u32, i32) = match self {
            Msg::NeedIdMap => (1, 0, 0, 0),
            Msg::InitPid(p) => (2, p as u32, 0, 0),
            Msg::Hooks => (3, 0, 0, 0),
            Msg::Ready => (4, 0, 0, 0),
            Msg::Error(e) => (5, e.step.to_u32(), e.index, e.errno),
            Msg::Continue => (6, 0, 0, 0),
            Msg::Start => (7, 0, 0, 0),
            Msg::Console => (8, 0, 0, 0),
        };
        let mut out = [0u8; 16];
        out[0..4].copy_from_slice(&k.to_ne_bytes());
        out[4..8].copy_from_slice(&a.to_ne_bytes());
        out[8..12].copy_from_slice(&b.to_ne_bytes());
        out[12..16].copy_from_slice(&c.to_ne_bytes());
        out
    }

    fn decode(buf: &[u8; 16]) -> Option<Msg> {
        let word = |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        Some(match word(0) {
            1 => Msg::NeedIdMap,
            2 => Msg::InitPid(word(4) as i32),
            3 => Msg::Hooks,
            4 => Msg::Ready,
            5 => Msg::Error(ChildError {
                step: Step::from_u32(word(4))?,
                index: word(8),
                errno: word(12) as i32,
            }),
            6 => Msg::Continue,
            7 => Msg::Start,
            8 => Msg::Console,
            _ => return None,
        })
    }
}

/// Sends one message; usable in the child (no allocation).
pub(crate) fn send(fd: c_int, msg: Msg) -> Result<(), i32> {
    send_fd(fd, msg, -1)
}

/// Room for one `cmsghdr` carrying one fd (CMSG_SPACE(4) is 24 on 64-bit Linux), aligned.
#[repr(C, align(8))]
struct CmsgBuf([u8; 32]);

/// Sends one message with `fd` attached (SCM_RIGHTS), or alone when `fd` is -1; usable in the
/// child (no allocation).
pub(crate) fn send_fd(sock: c_int, msg: Msg, fd: c_int) -> Result<(), i32> {
    let buf = msg.encode();
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let mut cmsg = CmsgBuf([0; 32]);
    // SAFETY: msghdr is plain data; every pointer in it refers to the buffers above, which
    // outlive the call; the CMSG_* macros stay inside `cmsg` (CMSG_SPACE(4) <= 32).
    unsafe {
        let mut mh: libc::msghdr = std::mem::zeroed();
        mh.msg_iov = &mut iov;
        mh.msg_iovlen = 1;
        if fd >= 0 {
            let space = libc::CMSG_SPACE(std::mem::size_of::<c_int>() as u32) as usize;
            mh.msg_control = cmsg.0.as_mut_ptr().cast();
            mh.msg_controllen = space.min(cmsg.0.len()) as _;
            let c = libc::CMSG_FIRSTHDR(&mh);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<c_int>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<c_int>(), fd);
        }
        loop {
            // MSG_NOSIGNAL: a dead peer is EPIPE, not SIGPIPE.
            let r = libc::sendmsg(sock, &mh, libc::MSG_NOSIGNAL);
            if r < 0 && sys::errno() == libc::EINTR {
                continue;
            }
            return if r == buf.len() as isize {
                Ok(())
            } else if r < 0 {
                Err(sys::errno())
            } else {
                Err(libc::EIO)
            };
        }
    }
}

/// Parent side: receives one message and the fd attached to it, if any (close-on-exec).
pub(crate) fn recv_with_fd(sock: c_int) -> Result<(Option<Msg>, Option<OwnedFd>), i32> {
    let mut buf = [0u8; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cmsg = CmsgBuf([0; 32]);
    // SAFETY: as in `send_fd`; the kernel writes at most msg_controllen bytes of control data.
    unsafe {
        let mut mh: libc::msghdr = std::mem::zeroed();
        mh.msg_iov = &mut iov;
        mh.msg_iovlen = 1;
        mh.msg_control = cmsg.0.as_mut_ptr().cast();
        mh.msg_controllen = cmsg.0.len() as _;
        let r = loop {
            let r = libc::recvmsg(sock, &mut mh, libc::MSG_CMSG_CLOEXEC);
            if r < 0 && sys::errno() == libc::EINTR {
                continue;
            }
            break r;
        };
        if r < 0 {
            return Err(sys::errno());
        }
        let mut fd = None;
        let mut c = libc::CMSG_FIRSTHDR(&mh);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let raw = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<c_int>());
                fd = Some(OwnedFd::from_raw_fd(raw));
            }
            c = libc::CMSG_NXTHDR(&mh, c);
        }
        if r == 0 {
            return Ok((None, fd));
        }
        if r != 16 {
            return Err(libc::EPROTO);
        }
        Ok((Some(Msg::decode(&buf).ok_or(libc::EPROTO)?), fd))
    }
}

/// Receives one message; `Ok(None)` is end-of-file (the peer closed or exec'd).
pub(crate) fn recv(fd: c_int) -> Result<Option<Msg>, i32> {
    let mut buf = [0u8; 16];
    loop {
        // SAFETY: valid buffer.
        let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if r < 0 {
            let e = sys::errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Ok(None);
        }
        if r != 16 {
            return Err(libc::EPROTO);
        }
        return Msg::decode(&buf).map(Some).ok_or(libc::EPROTO);
    }
}

/// Child side: waits for `want`; anything else (or EOF: the parent gave up) is an error.
pub(crate) fn expect(fd: c_int, want: Msg, step: Step) -> sys::CResult {
    match recv(fd) {
        Ok(Some(m)) if m == want => Ok(()),
        Ok(_) => Err(sys::fail(step, 0, libc::EPIPE)),
        Err(e) => Err(sys::fail(step, 0, e)),
    }
}

/// A connected pair: (parent end, child end). The child end is placed at an fd number of at
/// least `min_fd`, so that it never collides with the fds the caller asked to preserve.
pub(crate) fn pair(min_fd: c_int) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: fds is a valid 2-element array.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    let (parent, child) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    if child.as_raw_fd() >= min_fd {
        return Ok((parent, child));
    }
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd we own.
    let moved = unsafe { libc::fcntl(child.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min_fd) };
    if moved < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `moved` is a fresh fd.
    Ok((parent, unsafe { OwnedFd::from_raw_fd(moved) }))
}
