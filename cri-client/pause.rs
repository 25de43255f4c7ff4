//! The pod sandbox's process for `scripts/cri-test`: what the kubelet's pause image does, in a
//! static binary built with plain `rustc -C target-feature=+crt-static` (std only, the libc
//! functions are declared here) so the image needs no dynamic loader and no base layer.
//!
//! It holds the pod's namespaces open by staying alive: it blocks SIGTERM, SIGINT and SIGCHLD
//! and waits for them with sigwait(3). SIGTERM or SIGINT ends it with status 0 (StopPodSandbox
//! sends SIGTERM first); SIGCHLD reaps every exited child, since it is pid 1 of the pod's pid
//! namespace when the pod shares one and orphans are re-parented to it.

use std::ffi::c_int;

/// glibc's `sigset_t`: 1024 bits.
#[repr(C)]
struct SigSet([u64; 16]);

extern "C" {
    fn sigemptyset(set: *mut SigSet) -> c_int;
    fn sigaddset(set: *mut SigSet, sig: c_int) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwait(set: *const SigSet, sig: *mut c_int) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
}

const SIG_BLOCK: c_int = 0;
const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;
const SIGCHLD: c_int = 17;
const WNOHANG: c_int = 1;

fn main() {
    let mut set = SigSet([0; 16]);
    // SAFETY: `set` is a valid, writable sigset_t; the pointers live for each call.
    unsafe {
        sigemptyset(&mut set);
        for sig in [SIGINT, SIGTERM, SIGCHLD] {
            sigaddset(&mut set, sig);
        }
        if sigprocmask(SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            eprintln!("pause: sigprocmask: {}", std::io::Error::last_os_error());
            std::process::exit(1);
        }
    }
    loop {
        let mut sig: c_int = 0;
        // SAFETY: `set` and `sig` are valid for the call.
        let rc = unsafe { sigwait(&set, &mut sig) };
        if rc != 0 {
            eprintln!("pause: sigwait: {}", std::io::Error::from_raw_os_error(rc));
            std::process::exit(1);
        }
        match sig {
            SIGCHLD => {
                let mut status: c_int = 0;
                // SAFETY: `status` is valid; WNOHANG never blocks.
                while unsafe { waitpid(-1, &mut status, WNOHANG) } > 0 {}
            }
            _ => std::process::exit(0),
        }
    }
}
