//! config.md "POSIX process" `rlimits`, applied with setrlimit(2) in the child.

use crate::error::{Error, Result};
use crate::sys::{self, CResult, Step};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

#[derive(Debug, Default)]
pub(crate) struct Plan(Vec<(libc::__rlimit_resource_t, libc::rlimit)>);

fn resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub(crate) fn plan(limits: &[PosixRlimit]) -> Result<Plan> {
    let mut out: Vec<(libc::__rlimit_resource_t, libc::rlimit)> = Vec::new();
    for l in limits {
        let r = resource(l.typ());
        if out.iter().any(|(x, _)| *x == r) {
            // config.md: duplicated entries with the same type MUST be an error.
            return Err(Error::invalid(
                "process.rlimits",
                format!("{:?} listed twice", l.typ()),
            ));
        }
        if l.soft() > l.hard() {
            return Err(Error::invalid(
                "process.rlimits",
                format!("{:?}: soft limit above hard limit", l.typ()),
            ));
        }
        out.push((
            r,
            libc::rlimit {
                rlim_cur: l.soft(),
                rlim_max: l.hard(),
            },
        ));
    }
    Ok(Plan(out))
}

/// Child. Raising a hard limit needs CAP_SYS_RESOURCE in the initial user namespace.
pub(crate) fn apply(p: &Plan) -> CResult {
    for (i, (res, lim)) in p.0.iter().enumerate() {
        sys::check(
            // SAFETY: valid pointer to an rlimit.
            unsafe { libc::setrlimit(*res, lim) } as i64,
            Step::Rlimit,
            i,
        )?;
    }
    Ok(())
}
