//! Linux security modules: `process.apparmorProfile`, `process.selinuxLabel` and
//! `linux.mountLabel`.
//!
//! The process's label is written to `/proc/self/attr/apparmor/exec` (or the older
//! `/proc/self/attr/exec`) as `exec PROFILE` for AppArmor, or to `/proc/self/attr/exec` as the
//! context for SELinux, just before the set-up drops its privileges; the kernel applies it at
//! the user program's execve. config.md requires the runtime to fail rather than run the
//! process unconfined, so a config that asks for an LSM the host does not run is refused with
//! [`Error::LsmUnavailable`]. `linux.mountLabel` is refused ([`Error::Unsupported`]).

use crate::error::{Error, Result};
use oci_spec::runtime::Process;
use std::path::Path;

fn lsm_active(name: &str) -> bool {
    std::fs::read_to_string("/sys/kernel/security/lsm")
        .map(|l| l.split(',').any(|x| x.trim() == name))
        .unwrap_or(false)
        || Path::new("/sys/kernel/security").join(name).exists()
}

pub(crate) fn check(process: &Process) -> Result<()> {
    let asks = |v: &Option<String>| v.as_deref().is_some_and(|p| !p.is_empty());
    if asks(process.apparmor_profile()) && !lsm_active("apparmor") {
        return Err(Error::LsmUnavailable {
            lsm: "AppArmor",
            field: "process.apparmorProfile",
        });
    }
    if asks(process.selinux_label()) && !lsm_active("selinux") {
        return Err(Error::LsmUnavailable {
            lsm: "SELinux",
            field: "process.selinuxLabel",
        });
    }
    Ok(())
}

/// What the child writes to set its label for the next execve.
#[derive(Debug)]
pub(crate) struct ExecLabel {
    paths: Vec<std::ffi::CString>,
    data: Vec<u8>,
}

/// The label write a process needs (after [`check`] accepted it), prepared before fork.
pub(crate) fn exec_label(process: &Process) -> Result<Option<ExecLabel>> {
    let c = |s: &str| std::ffi::CString::new(s).map_err(|_| Error::invalid("process", "NUL byte"));
    if let Some(p) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if p.contains('\0') || p.contains('\n') {
            return Err(Error::invalid("process.apparmorProfile", "NUL or newline"));
        }
        return Ok(Some(ExecLabel {
            paths: vec![
                c("/proc/self/attr/apparmor/exec")?,
                c("/proc/self/attr/exec")?,
            ],
            data: format!("exec {p}").into_bytes(),
        }));
    }
    if let Some(l) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        if l.contains('\0') {
            return Err(Error::invalid("process.selinuxLabel", "NUL byte"));
        }
        return Ok(Some(ExecLabel {
            paths: vec![c("/proc/self/attr/exec")?],
            data: l.as_bytes().to_vec(),
        }));
    }
    Ok(None)
}

/// Child side: the first path that opens gets the label (raw syscalls only).
pub(crate) fn apply(l: &ExecLabel) -> crate::sys::CResult {
    let mut last = libc::ENOENT;
    for path in &l.paths {
        // SAFETY: open/write/close with buffers prepared before fork.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            last = crate::sys::errno();
            continue;
        }
        // SAFETY: fd is open for writing; the buffer was prepared before fork.
        let n = unsafe { libc::write(fd, l.data.as_ptr().cast(), l.data.len()) };
        let err = crate::sys::errno();
        // SAFETY: fd is ours and closed once.
        unsafe { libc::close(fd) };
        if n < 0 || n as usize != l.data.len() {
            return Err(crate::sys::fail(
                crate::sys::Step::Lsm,
                0,
                if n < 0 { err } else { libc::EIO },
            ));
        }
        return Ok(());
    }
    Err(crate::sys::fail(crate::sys::Step::Lsm, 0, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_prepared_as_the_kernel_reads_them() {
        let mut p = Process::default();
        assert!(exec_label(&p).unwrap().is_none());
        p.set_apparmor_profile(Some("docker-default".into()));
        let l = exec_label(&p).unwrap().unwrap();
        assert_eq!(l.data, b"exec docker-default");
        assert_eq!(
            l.paths[0].to_str().unwrap(),
            "/proc/self/attr/apparmor/exec"
        );
        p.set_apparmor_profile(None);
        p.set_selinux_label(Some("system_u:system_r:container_t:s0:c1,c2".into()));
        let l = exec_label(&p).unwrap().unwrap();
        assert_eq!(l.data, b"system_u:system_r:container_t:s0:c1,c2");
        p.set_apparmor_profile(Some("bad\nprofile".into()));
        assert!(exec_label(&p).is_err());
    }
}
