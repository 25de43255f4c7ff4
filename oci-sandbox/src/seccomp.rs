//! Seccomp: config-linux.md "Seccomp" compiled to classic BPF in pure Rust.
//!
//! The compiler is [`seccompiler`] (rust-vmm, used by Firecracker and Cloud Hypervisor): pure
//! Rust with no libseccomp, so static builds work. Syscall names are mapped to numbers with the
//! [`syscalls`] crate's tables. seccompiler's filter has a single on-match action, while a
//! runtime-spec profile gives an action per rule, so a profile becomes several filters, all
//! installed; the kernel runs every filter and keeps the most restrictive result
//! (seccomp(2), "Filter return values"):
//!
//! * a "default" filter: every syscall named by any rule (with its argument conditions) is
//!   `ALLOW`, anything else gets `defaultAction`;
//! * one filter per other action: the syscalls of the rules with that action get it, anything
//!   else is `ALLOW`.
//!
//! A syscall that matches one rule thus gets that rule's action; one that matches none gets the
//! default. When rules with different actions match the same call, the most restrictive wins.
//!
//! Limits, each refused with [`Error::Unsupported`] rather than ignored: `SCMP_ACT_NOTIFY` and
//! `listenerPath`, the `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` flag. Architectures other than the
//! native one are accepted in `architectures` but a syscall made through another ABI (e.g.
//! `int 0x80`) is killed by the filters' architecture check. A syscall name unknown on this
//! architecture is skipped, as runc and libseccomp do, so that one profile serves every
//! architecture. Compiled filters are cached by a hash of the profile.

use crate::error::{Error, Result};
use crate::sys::{self, CResult, Step};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

/// A profile compiled to BPF programs, ready to install.
#[derive(Debug)]
pub(crate) struct Compiled {
    programs: Vec<BpfProgram>,
    flags: libc::c_ulong,
}

fn action(a: LinuxSeccompAction, errno: Option<u32>, field: &'static str) -> Result<SeccompAction> {
    use LinuxSeccompAction::*;
    Ok(match a {
        ScmpActKill | ScmpActKillThread => SeccompAction::KillThread,
        ScmpActKillProcess => SeccompAction::KillProcess,
        ScmpActTrap => SeccompAction::Trap,
        ScmpActErrno => SeccompAction::Errno(errno.unwrap_or(libc::EPERM as u32)),
        ScmpActTrace => SeccompAction::Trace(errno.unwrap_or(libc::EPERM as u32)),
        ScmpActAllow => SeccompAction::Allow,
        ScmpActLog => SeccompAction::Log,
        ScmpActNotify => {
            return Err(Error::Unsupported {
                field: if field == "defaultAction" {
                    "linux.seccomp.defaultAction (SCMP_ACT_NOTIFY)"
                } else {
                    "linux.seccomp.syscalls[].action (SCMP_ACT_NOTIFY)"
                },
            })
        }
    })
}

fn seccomp_err(field: &'static str) -> impl Fn(seccompiler::BackendError) -> Error {
    move |e| Error::Seccomp {
        field,
        reason: e.to_string(),
    }
}

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// Adds `rule` (None: unconditional) for `nr`; an unconditional rule absorbs conditional ones.
fn add_rule(rules: &mut Rules, nr: i64, rule: Option<SeccompRule>, unconditional: &mut Vec<i64>) {
    if unconditional.contains(&nr) {
        return;
    }
    match rule {
        None => {
            unconditional.push(nr);
            rules.insert(nr, Vec::new());
        }
        Some(r) => rules.entry(nr).or_default().push(r),
    }
}

fn compile_uncached(s: &LinuxSeccomp) -> Result<Compiled> {
    if s.listener_path().is_some() {
        return Err(Error::Unsupported {
            field: "linux.seccomp.listenerPath",
        });
    }
    if let Some(arches) = s.architectures() {
        if !arches.is_empty()
            && !arches
                .iter()
                .any(|a| matches!(a, Arch::ScmpArchX86_64 | Arch::ScmpArchNative))
            && cfg!(target_arch = "x86_64")
        {
            return Err(Error::Seccomp {
                field: "architectures",
                reason: "the native architecture is not listed".into(),
            });
        }
    }
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            // The set-up process is single-threaded: TSYNC is trivially satisfied.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(Error::Unsupported {
                    field: "linux.seccomp.flags (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)",
                })
            }
        };
    }
    let arch: TargetArch = std::env::consts::ARCH
        .try_into()
        .map_err(seccomp_err("architectures"))?;
    let default = action(s.default_action(), s.default_errno_ret(), "defaultAction")?;
    let mut all: Rules = BTreeMap::new();
    let mut all_uncond = Vec::new();
    let mut groups: Vec<(SeccompAction, Rules, Vec<i64>)> = Vec::new();
    for sc in s.syscalls().iter().flatten() {
        let act = action(sc.action(), sc.errno_ret(), "syscalls[].action")?;
        let mut conds = Vec::new();
        for a in sc.args().iter().flatten() {
            let index = u8::try_from(a.index()).map_err(|_| Error::Seccomp {
                field: "syscalls[].args[].index",
                reason: "out of range".into(),
            })?;
            let (op, value) = match a.op() {
                LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, a.value()),
                LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, a.value()),
                LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, a.value()),
                LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, a.value()),
                LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, a.value()),
                LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, a.value()),
                // libseccomp's SCMP_CMP_MASKED_EQ: (arg & value) == valueTwo.
                LinuxSeccompOperator::ScmpCmpMaskedEq => (
                    SeccompCmpOp::MaskedEq(a.value()),
                    a.value_two().unwrap_or(0),
                ),
            };
            conds.push(
                SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
                    .map_err(seccomp_err("syscalls[].args"))?,
            );
        }
        let rule = if conds.is_empty() {
            None
        } else {
            Some(SeccompRule::new(conds).map_err(seccomp_err("syscalls[].args"))?)
        };
        let gi = match groups.iter().position(|(a, _, _)| *a == act) {
            Some(i) => i,
            None => {
                groups.push((act.clone(), BTreeMap::new(), Vec::new()));
                groups.len() - 1
            }
        };
        for name in sc.names() {
            let Ok(nr) = syscalls::Sysno::from_str(name) else {
                continue;
            };
            let nr = nr.id() as i64;
            add_rule(&mut all, nr, rule.clone(), &mut all_uncond);
            let (_, g, u) = &mut groups[gi];
            add_rule(g, nr, rule.clone(), u);
        }
    }
    let mut programs = Vec::new();
    let mut push = |rules: Rules, mismatch: SeccompAction, matched: SeccompAction| -> Result<()> {
        let f =
            SeccompFilter::new(rules, mismatch, matched, arch).map_err(seccomp_err("syscalls"))?;
        let prog: BpfProgram = f.try_into().map_err(seccomp_err("syscalls"))?;
        if prog.len() > 4096 {
            return Err(Error::Seccomp {
                field: "syscalls",
                reason: format!(
                    "filter of {} instructions exceeds the kernel's 4096",
                    prog.len()
                ),
            });
        }
        programs.push(prog);
        Ok(())
    };
    if default != SeccompAction::Allow {
        push(all, default.clone(), SeccompAction::Allow)?;
    }
    for (act, rules, _) in groups {
        if act != SeccompAction::Allow && act != default && !rules.is_empty() {
            push(rules, SeccompAction::Allow, act)?;
        }
    }
    Ok(Compiled {
        programs,
        flags: flags as libc::c_ulong,
    })
}

/// Compiles `s`, reusing an earlier compilation of an identical profile.
pub(crate) fn compile(s: &LinuxSeccomp) -> Result<Arc<Compiled>> {
    static CACHE: OnceLock<Mutex<HashMap<u64, Arc<Compiled>>>> = OnceLock::new();
    let json = serde_json::to_string(s).map_err(|e| Error::Seccomp {
        field: "linux.seccomp",
        reason: e.to_string(),
    })?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut h);
    let key = h.finish();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(c) = cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(c);
    }
    let c = Arc::new(compile_uncached(s)?);
    if let Ok(mut m) = cache.lock() {
        if m.len() > 64 {
            m.clear();
        }
        m.insert(key, c.clone());
    }
    Ok(c)
}

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const seccompiler::sock_filter,
}

/// Child: installs the filters. Without no_new_privs this needs CAP_SYS_ADMIN (seccomp(2)).
pub(crate) fn install(c: &Compiled) -> CResult {
    for (i, p) in c.programs.iter().enumerate() {
        let prog = SockFprog {
            len: p.len() as u16,
            filter: p.as_ptr(),
        };
        // SAFETY: the kernel copies the program; `prog` and `p` outlive the call.
        sys::check(
            unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    c.flags,
                    &prog as *const SockFprog,
                )
            },
            Step::Seccomp,
            i,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_is_refused() {
        let s: LinuxSeccomp = serde_json::from_str(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#).unwrap();
        assert!(matches!(
            compile_uncached(&s),
            Err(Error::Unsupported { .. })
        ));
    }

    #[test]
    fn one_filter_per_non_default_action() {
        let s: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["read","write","no_such_syscall"],"action":"SCMP_ACT_ALLOW"},
                {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
                {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap();
        let c = compile_uncached(&s).unwrap();
        // default filter + ERRNO(13) filter (the default is ERRNO(EPERM)).
        assert_eq!(c.programs.len(), 2);
    }
}
