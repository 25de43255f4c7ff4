//! Linux security modules: `process.apparmorProfile`, `process.selinuxLabel` and
//! `linux.mountLabel`.
//!
//! Neither LSM is applied by this crate yet. config.md requires the runtime to fail rather than
//! run the process unconfined, so a config that asks for one is refused: with
//! [`Error::LsmUnavailable`] when the host does not run that LSM, and with
//! [`Error::Unsupported`] when it does.

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
    if process
        .apparmor_profile()
        .as_deref()
        .is_some_and(|p| !p.is_empty())
    {
        if !lsm_active("apparmor") {
            return Err(Error::LsmUnavailable {
                lsm: "AppArmor",
                field: "process.apparmorProfile",
            });
        }
        return Err(Error::Unsupported {
            field: "process.apparmorProfile",
        });
    }
    if process
        .selinux_label()
        .as_deref()
        .is_some_and(|p| !p.is_empty())
    {
        if !lsm_active("selinux") {
            return Err(Error::LsmUnavailable {
                lsm: "SELinux",
                field: "process.selinuxLabel",
            });
        }
        return Err(Error::Unsupported {
            field: "process.selinuxLabel",
        });
    }
    Ok(())
}
