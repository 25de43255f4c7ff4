//! A console socket for tests: receives the pty master a runtime sends with SCM_RIGHTS
//! (runc's `--console-socket`). Included with `#[path = "support/console.rs"] mod console;`.

use std::path::Path;

/// Receives the pty master sent to a console socket at `sock` (runc's `--console-socket`).
pub fn receiver(sock: &Path) -> std::thread::JoinHandle<std::os::fd::OwnedFd> {
    let listener = std::os::unix::net::UnixListener::bind(sock).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut cmsg = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let mut buf = [0u8; 256];
        rustix::net::recvmsg(
            &stream,
            &mut [std::io::IoSliceMut::new(&mut buf)],
            &mut cmsg,
            rustix::net::RecvFlags::empty(),
        )
        .unwrap();
        let mut fd = None;
        for m in cmsg.drain() {
            if let rustix::net::RecvAncillaryMessage::ScmRights(mut fds) = m {
                fd = fds.next();
            }
        }
        fd.expect("a pty master")
    })
}
