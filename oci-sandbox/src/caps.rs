//! The five capability sets of config.md "Linux Process" (`process.capabilities`).
//!
//! Names are mapped to numbers with the `caps` crate (kept by the Linux capabilities
//! community, no C library) before fork; the child applies them with raw prctl(2) and
//! capset(2) calls, because the `caps` crate's setters allocate `HashSet`s, which is not
//! allowed between fork and exec in a multithreaded parent.

use crate::error::{Error, Result};
use crate::sys::{self, CResult, Step};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};
use std::str::FromStr;

#[derive(Debug, Default, Clone)]
pub(crate) struct Plan {
    bounding: u64,
    effective: u64,
    permitted: u64,
    inheritable: u64,
    ambient: u64,
    last_cap: u32,
}

fn mask(set: &Option<Capabilities>, field: &'static str, last: u32) -> Result<u64> {
    let mut m = 0u64;
    for c in set.iter().flatten() {
        let name = format!("CAP_{c}");
        let cap = caps::Capability::from_str(&name)
            .map_err(|_| Error::invalid(field, format!("unknown capability {name}")))?;
        let idx = cap.index() as u32;
        if idx > last {
            // config.md "capabilities": a value that cannot be mapped to the kernel MUST fail.
            return Err(Error::invalid(
                field,
                format!("{name} is not known to the running kernel"),
            ));
        }
        m |= 1 << idx;
    }
    Ok(m)
}

fn last_cap() -> Result<u32> {
    let p = "/proc/sys/kernel/cap_last_cap";
    let text =
        std::fs::read_to_string(p).map_err(Error::sys("read", std::path::PathBuf::from(p)))?;
    text.trim().parse().map_err(|_| {
        Error::sys("parse", std::path::PathBuf::from(p))(std::io::ErrorKind::InvalidData.into())
    })
}

/// `None` when the config has no `capabilities`: the process keeps the runtime's sets.
pub(crate) fn plan(c: Option<&LinuxCapabilities>) -> Result<Option<Plan>> {
    let Some(c) = c else { return Ok(None) };
    let last = last_cap()?;
    Ok(Some(Plan {
        bounding: mask(c.bounding(), "process.capabilities.bounding", last)?,
        effective: mask(c.effective(), "process.capabilities.effective", last)?,
        permitted: mask(c.permitted(), "process.capabilities.permitted", last)?,
        inheritable: mask(c.inheritable(), "process.capabilities.inheritable", last)?,
        ambient: mask(c.ambient(), "process.capabilities.ambient", last)?,
        last_cap: last,
    }))
}

/// Child, while still root with all capabilities: drop the bounding set (needs CAP_SETPCAP).
pub(crate) fn drop_bounding(p: &Plan) -> CResult {
    for i in 0..=p.last_cap {
        if p.bounding & (1 << i) == 0 {
            sys::check(
                // SAFETY: plain prctl.
                unsafe { libc::prctl(libc::PR_CAPBSET_DROP, i as libc::c_ulong, 0, 0, 0) } as i64,
                Step::CapBounding,
                i as usize,
            )?;
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Child, after the uid switch (made with PR_SET_KEEPCAPS): effective, permitted,
/// inheritable, then ambient (which needs the capability in permitted and inheritable).
pub(crate) fn apply(p: &Plan) -> CResult {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |m: u64| [m as u32, (m >> 32) as u32];
    let (e, pm, i) = (split(p.effective), split(p.permitted), split(p.inheritable));
    let data = [
        CapData {
            effective: e[0],
            permitted: pm[0],
            inheritable: i[0],
        },
        CapData {
            effective: e[1],
            permitted: pm[1],
            inheritable: i[1],
        },
    ];
    sys::check(
        // SAFETY: header and two data structs as capset(2) v3 expects.
        unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) },
        Step::Capset,
        0,
    )?;
    sys::check(
        // SAFETY: plain prctl.
        unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            )
        } as i64,
        Step::CapAmbient,
        0,
    )?;
    for c in 0..=p.last_cap {
        if p.ambient & (1 << c) != 0 {
            // An ambient capability must also be permitted and inheritable; runc's default
            // config asks for ambient caps it leaves out of the inheritable set. config.md
            // ("POSIX process", capabilities): what cannot be granted is a warning, and runtimes
            // SHOULD NOT fail, so a refused raise is skipped, as runc skips it.
            // SAFETY: plain prctl.
            unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    c as libc::c_ulong,
                    0,
                    0,
                )
            };
        }
    }
    Ok(())
}
