//! Seccomp: config-linux.md "Seccomp" compiled to one classic-BPF program in pure Rust.
//!
//! # Why our own compiler
//! The crate used to drive `seccompiler` (rust-vmm). Its filters have one on-match action per
//! filter, 64-bit argument comparisons only and a single architecture, so a profile became
//! several stacked filters, 32-bit (`int 0x80`) and x32 syscalls were killed instead of
//! filtered, and NOTIFY could not be expressed. The code generator here is small (one
//! instruction pattern per operator, a binary search over syscall numbers) and is proven to
//! decide like libseccomp 2.5 — which runc and crun use — by `tests/seccomp_equivalence.rs`,
//! which runs both programs in a BPF interpreter over Docker's default profile and every
//! operator at boundary values. No C library is linked, so static builds work. Syscall names
//! come from the [`syscalls`] crate's kernel tables (x86_64 and i386; x32 is derived from
//! x86_64 as the kernel's `syscall_64.tbl` does).
//!
//! # Semantics (libseccomp's, as runc drives it)
//! * The program checks `seccomp_data.arch` first: the native architecture is always filtered
//!   (libseccomp's `seccomp_init` adds it), and on x86_64 `SCMP_ARCH_X86` and `SCMP_ARCH_X32`
//!   add their own blocks with their own syscall numbers; x32 calls arrive as
//!   `AUDIT_ARCH_X86_64` with `__X32_SYSCALL_BIT`. Calls from an architecture that is not
//!   filtered are killed (libseccomp's default bad-architecture action, `SCMP_ACT_KILL`).
//!   Other listed architectures are accepted and ignored: this kernel never reports them.
//! * Per syscall, rules are kept in profile order. The first unconditional rule decides alone
//!   (libseccomp drops the conditional rules it covers and ignores later ones); otherwise the
//!   first rule whose comparisons all hold decides, and none holding means `defaultAction`.
//!   Rules whose action equals the default are dropped, as runc does. Where two conditional
//!   rules of one syscall overlap with different actions, libseccomp answers by its internal
//!   tree order (not defined by the spec); we answer by profile order.
//! * A rule's comparisons are ANDed; a rule comparing the same argument twice is split into one
//!   rule per comparison (ORed), as runc does because libseccomp refuses such rules.
//! * 64-bit architectures compare all 64 bits (high word, then low word); 32-bit ones (i386,
//!   x32, as libseccomp sizes them) compare the low 32 bits of the argument with the low 32
//!   bits of the value. `SCMP_CMP_MASKED_EQ` is `(arg & value) == (valueTwo & value)`: libseccomp
//!   masks the datum too.
//! * On i386, a rule for a socket or SysV IPC call also matches the multiplexed form:
//!   `socketcall(SYS_x, ..)` / `ipc(x, ..)`, with argument 0 compared to the call number
//!   instead of the rule's own argument-0 comparisons, as libseccomp does.
//! * A syscall name unknown on one architecture is skipped there (one profile serves every
//!   architecture); a name no architecture's table knows (the [`syscalls`] crate's tables, of
//!   Linux [`TABLE_LINUX`]) is an error naming it.
//! * A rule whose action equals `defaultAction` is dropped (see above): to deny a syscall
//!   that a deny-by-default profile allows, use [`deny_syscall`].
//! * `errnoRet`/`defaultErrnoRet` on an action that takes no errno is an error (the spec's
//!   MUST); `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` default to `EPERM`. Actions the kernel does
//!   not know (`SECCOMP_GET_ACTION_AVAIL`) are an error.
//! * `flags` map to `seccomp(2)` flags; an unknown flag fails when the config is parsed.
//!   `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` needs a NOTIFY action.
//!
//! # NOTIFY
//! A profile using `SCMP_ACT_NOTIFY` needs `listenerPath`. The filter is installed with
//! `SECCOMP_FILTER_FLAG_NEW_LISTENER` before the container reports ready (with
//! `noNewPrivileges` set just before it), the child sends the listener fd to the runtime
//! over a socketpair made for it (`SCM_RIGHTS`, no allocation), closes its copy, and the
//! runtime connects to `listenerPath` and sends the container process state (config-linux.md
//! "The Container Process State") with the fd, then closes both. A NOTIFY action that could
//! apply to the syscalls the child makes between the install and its ready message
//! (`sendmsg`, `close`, `newfstatat`, `faccessat2`, `sendto`...) is refused: nobody could
//! answer them yet.
//!
//! Compiled programs are cached in memory by a hash of the profile.

use crate::error::{Error, Result};
use crate::sys::{self, CResult, Step};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

/// One classic-BPF instruction, as `struct sock_filter` of `<linux/filter.h>`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

/// `SECCOMP_RET_*` values (seccomp(2), "Filter return values").
pub mod ret {
    /// Kill the process.
    pub const KILL_PROCESS: u32 = 0x8000_0000;
    /// Kill the thread (`SCMP_ACT_KILL`, `SCMP_ACT_KILL_THREAD`).
    pub const KILL_THREAD: u32 = 0;
    /// Send SIGSYS.
    pub const TRAP: u32 = 0x0003_0000;
    /// Fail with the errno in the low 16 bits.
    pub const ERRNO: u32 = 0x0005_0000;
    /// Ask the user-space notifier.
    pub const USER_NOTIF: u32 = 0x7fc0_0000;
    /// Notify a ptrace tracer (errno in the low 16 bits if none).
    pub const TRACE: u32 = 0x7ff0_0000;
    /// Allow and log.
    pub const LOG: u32 = 0x7ffc_0000;
    /// Allow.
    pub const ALLOW: u32 = 0x7fff_0000;
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 1 << 1;
const FLAG_SPEC_ALLOW: u32 = 1 << 2;
const FLAG_NEW_LISTENER: u32 = 1 << 3;
const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// The `linux.seccomp.flags` this compiler recognizes (runtime-spec features-linux.md
/// `knownFlags`), with their `seccomp(2)` values.
pub const KNOWN_FLAGS: &[(&str, u32)] = &[
    ("SECCOMP_FILTER_FLAG_TSYNC", FLAG_TSYNC),
    ("SECCOMP_FILTER_FLAG_LOG", FLAG_LOG),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", FLAG_SPEC_ALLOW),
    (
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        FLAG_WAIT_KILLABLE_RECV,
    ),
];

/// The [`KNOWN_FLAGS`] this kernel supports (features-linux.md `supportedFlags`): each is
/// probed with `seccomp(SECCOMP_SET_MODE_FILTER, flag, NULL)`, which fails with EFAULT (the
/// missing program) for a flag the kernel knows and EINVAL for one it does not, as runc
/// probes. Nothing is installed.
pub fn supported_flags() -> Vec<&'static str> {
    KNOWN_FLAGS
        .iter()
        .filter(|(_, flag)| {
            // WAIT_KILLABLE_RECV is only valid together with NEW_LISTENER.
            let flag = if *flag == FLAG_WAIT_KILLABLE_RECV {
                flag | FLAG_NEW_LISTENER
            } else {
                *flag
            };
            // SAFETY: a NULL program: the kernel reads no memory and installs nothing.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    flag as libc::c_ulong,
                    std::ptr::null::<u8>(),
                )
            };
            r < 0 && sys::errno() == libc::EFAULT
        })
        .map(|(name, _)| *name)
        .collect()
}

// BPF opcodes (linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20;
const ALU_AND_K: u16 = 0x54;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;
/// The kernel's BPF_MAXINSNS for classic BPF.
const MAX_INSNS: usize = 4096;

/// A syscall ABI a program filters: its `AUDIT_ARCH_*` token, its syscall numbers and the
/// size libseccomp gives its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Abi {
    X86_64,
    X32,
    X86,
    Aarch64,
}

impl Abi {
    fn native() -> Option<Abi> {
        if cfg!(target_arch = "x86_64") {
            Some(Abi::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Abi::Aarch64)
        } else {
            None
        }
    }

    fn bits32(self) -> bool {
        matches!(self, Abi::X32 | Abi::X86)
    }

    fn token(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::X86 => AUDIT_ARCH_I386,
            Abi::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// The syscall numbers of `name` on this ABI (two on i386 for multiplexed calls: the
    /// direct one and the `socketcall`/`ipc` one, with its call number).
    fn resolve(self, name: &str) -> Option<u32> {
        match self {
            Abi::X86_64 | Abi::Aarch64 => {
                syscalls::Sysno::from_str(name).ok().map(|s| s.id() as u32)
            }
            Abi::X86 => x86_nr(name),
            Abi::X32 => x32_nr(name),
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn x86_nr(name: &str) -> Option<u32> {
    syscalls::x86::Sysno::from_str(name)
        .ok()
        .map(|s| s.id() as u32)
}

#[cfg(not(target_arch = "x86_64"))]
fn x86_nr(_: &str) -> Option<u32> {
    None
}

/// x32's own entry points (arch/x86/entry/syscalls/syscall_64.tbl, 512..547), replacing the
/// x86_64 ones that are marked "64".
const X32_SPECIAL: [&str; 36] = [
    "rt_sigaction",
    "rt_sigreturn",
    "ioctl",
    "readv",
    "writev",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "execve",
    "ptrace",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "sigaltstack",
    "timer_create",
    "mq_notify",
    "kexec_load",
    "waitid",
    "set_robust_list",
    "get_robust_list",
    "vmsplice",
    "move_pages",
    "preadv",
    "pwritev",
    "rt_tgsigqueueinfo",
    "recvmmsg",
    "sendmmsg",
    "process_vm_readv",
    "process_vm_writev",
    "setsockopt",
    "getsockopt",
    "io_setup",
    "io_submit",
    "execveat",
    "preadv2",
    "pwritev2",
];

/// The kernel release whose syscall tables the [`syscalls`] crate carries.
pub const TABLE_LINUX: &str = "6.17";

/// Whether any architecture's table knows `name`: a profile serves every architecture, so a
/// name of another one (`arm_fadvise64_64`) is skipped here as libseccomp skips it, while a
/// name of none is a mistake in the config (a typo, or a syscall newer than the table),
/// reported rather than silently leaving the syscall to the default action.
fn known_anywhere(name: &str) -> bool {
    use syscalls::*;
    x86_64::Sysno::from_str(name).is_ok()
        || x86::Sysno::from_str(name).is_ok()
        || aarch64::Sysno::from_str(name).is_ok()
        || arm::Sysno::from_str(name).is_ok()
        || loongarch64::Sysno::from_str(name).is_ok()
        || mips::Sysno::from_str(name).is_ok()
        || mips64::Sysno::from_str(name).is_ok()
        || powerpc::Sysno::from_str(name).is_ok()
        || powerpc64::Sysno::from_str(name).is_ok()
        || riscv32::Sysno::from_str(name).is_ok()
        || riscv64::Sysno::from_str(name).is_ok()
        || s390x::Sysno::from_str(name).is_ok()
        || sparc::Sysno::from_str(name).is_ok()
        || sparc64::Sysno::from_str(name).is_ok()
        || X32_SPECIAL.contains(&name)
}

/// Denies `name` in `profile` with `errno`, whatever the profile says of it now: the name is
/// taken out of every rule that allows it (`SCMP_ACT_ALLOW`, `SCMP_ACT_LOG`; a rule left with
/// no name goes), and a rule returning `errno` is added unless the default action already
/// returns that.
///
/// Use it instead of only appending a deny rule: a rule whose action equals the profile's
/// default action is dropped (libseccomp and runc do the same), so with a deny-by-default
/// profile such as Docker's the allow rule that lists the syscall still decides.
///
/// ```
/// use oci_spec::runtime::LinuxSeccomp;
/// let mut profile: LinuxSeccomp = serde_json::from_str(r#"{
///     "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
///     "syscalls": [{"names": ["mkdir", "read"], "action": "SCMP_ACT_ALLOW"}]}"#).unwrap();
/// oci_sandbox::seccomp::deny_syscall(&mut profile, "mkdir", libc::EACCES as u32);
/// let rules = profile.syscalls().as_ref().unwrap();
/// assert_eq!(rules[0].names(), &["read"]);
/// assert_eq!(rules[1].names(), &["mkdir"]);
/// assert_eq!(rules[1].errno_ret(), Some(libc::EACCES as u32));
/// ```
pub fn deny_syscall(profile: &mut LinuxSeccomp, name: &str, errno: u32) {
    use oci_spec::runtime::LinuxSyscallBuilder;
    let mut rules = profile.syscalls().clone().unwrap_or_default();
    for r in &mut rules {
        if matches!(
            r.action(),
            LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
        ) {
            let names: Vec<String> = r.names().iter().filter(|n| *n != name).cloned().collect();
            r.set_names(names);
        }
    }
    rules.retain(|r| !r.names().is_empty());
    let default_denies = profile.default_action() == LinuxSeccompAction::ScmpActErrno
        && profile.default_errno_ret().unwrap_or(libc::EPERM as u32) == errno;
    if !default_denies {
        if let Ok(rule) = LinuxSyscallBuilder::default()
            .names(vec![name.to_string()])
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(errno)
            .build()
        {
            rules.push(rule);
        }
    }
    profile.set_syscalls(Some(rules));
}

/// x86_64 entries marked "64" in syscall_64.tbl that x32 has no form of.
const X86_64_ONLY: [&str; 12] = [
    "uselib",
    "_sysctl",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "nfsservctl",
    "set_thread_area",
    "get_thread_area",
    "epoll_ctl_old",
    "epoll_wait_old",
    "vserver",
    "map_shadow_stack",
];

#[cfg(target_arch = "x86_64")]
fn x32_nr(name: &str) -> Option<u32> {
    if let Some(i) = X32_SPECIAL.iter().position(|n| *n == name) {
        return Some(X32_SYSCALL_BIT | (512 + i as u32));
    }
    if X86_64_ONLY.contains(&name) {
        return None;
    }
    syscalls::x86_64::Sysno::from_str(name)
        .ok()
        .map(|s| X32_SYSCALL_BIT | s.id() as u32)
}

#[cfg(not(target_arch = "x86_64"))]
fn x32_nr(_: &str) -> Option<u32> {
    None
}

/// i386 calls also reachable through socketcall(2) and ipc(2): (name, multiplexer, call).
const X86_MULTIPLEXED: [(&str, u32, u64); 32] = [
    ("socket", 102, 1),
    ("bind", 102, 2),
    ("connect", 102, 3),
    ("listen", 102, 4),
    ("accept", 102, 5),
    ("getsockname", 102, 6),
    ("getpeername", 102, 7),
    ("socketpair", 102, 8),
    ("send", 102, 9),
    ("recv", 102, 10),
    ("sendto", 102, 11),
    ("recvfrom", 102, 12),
    ("shutdown", 102, 13),
    ("setsockopt", 102, 14),
    ("getsockopt", 102, 15),
    ("sendmsg", 102, 16),
    ("recvmsg", 102, 17),
    ("accept4", 102, 18),
    ("recvmmsg", 102, 19),
    ("sendmmsg", 102, 20),
    ("semop", 117, 1),
    ("semget", 117, 2),
    ("semctl", 117, 3),
    ("semtimedop", 117, 4),
    ("msgsnd", 117, 11),
    ("msgrcv", 117, 12),
    ("msgget", 117, 13),
    ("msgctl", 117, 14),
    ("shmat", 117, 21),
    ("shmdt", 117, 22),
    ("shmget", 117, 23),
    ("shmctl", 117, 24),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// (arg & mask) == value
    Masked(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cond {
    arg: u8,
    op: Op,
    value: u64,
}

#[derive(Clone, Debug)]
struct Rule {
    conds: Vec<Cond>,
    action: u32,
}

#[derive(Clone, Debug)]
enum Entry {
    Always(u32),
    When(Vec<Rule>),
}

fn add_rule(table: &mut BTreeMap<u32, Entry>, nr: u32, rule: Rule) {
    match table.get_mut(&nr) {
        Some(Entry::Always(_)) => {}
        Some(Entry::When(rules)) if !rule.conds.is_empty() => rules.push(rule),
        _ if rule.conds.is_empty() => {
            table.insert(nr, Entry::Always(rule.action));
        }
        _ => {
            table.insert(nr, Entry::When(vec![rule]));
        }
    }
}

/// A profile compiled to one BPF program: what [`compile`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    insns: Vec<SockFilter>,
    flags: u32,
    notify: bool,
}

impl Program {
    /// The instructions, ready for `SECCOMP_SET_MODE_FILTER`.
    pub fn instructions(&self) -> &[SockFilter] {
        &self.insns
    }

    /// The `seccomp(2)` flags it is installed with.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether it returns `SECCOMP_RET_USER_NOTIF` for some call.
    pub fn notifies(&self) -> bool {
        self.notify
    }
}

fn bad(field: &'static str, reason: impl Into<String>) -> Error {
    Error::Seccomp {
        field,
        reason: reason.into(),
    }
}

fn action(a: LinuxSeccompAction, errno: Option<u32>, field: &'static str) -> Result<u32> {
    use LinuxSeccompAction::*;
    if errno.is_some_and(|e| e >= 4095) {
        // The kernel caps the errno at MAX_ERRNO (4095) and libseccomp refuses 4095 and up.
        return Err(bad(field, "errno must be below 4095"));
    }
    let with_errno = |base: u32| base | errno.unwrap_or(libc::EPERM as u32);
    let v = match a {
        ScmpActErrno => return Ok(with_errno(ret::ERRNO)),
        ScmpActTrace => return Ok(with_errno(ret::TRACE)),
        ScmpActKill | ScmpActKillThread => ret::KILL_THREAD,
        ScmpActKillProcess => ret::KILL_PROCESS,
        ScmpActTrap => ret::TRAP,
        ScmpActAllow => ret::ALLOW,
        ScmpActLog => ret::LOG,
        ScmpActNotify => ret::USER_NOTIF,
    };
    if errno.is_some() {
        // config-linux.md "Seccomp": "When the action doesn't support an errno, the runtime
        // MUST print and error and fail."
        return Err(bad(field, format!("{a:?} takes no errno")));
    }
    Ok(v)
}

/// The abis a profile filters: the native one first, then the listed x86 sub-architectures.
fn abis(s: &LinuxSeccomp) -> Result<Vec<Abi>> {
    let native = Abi::native().ok_or_else(|| {
        bad(
            "architectures",
            format!("no seccomp support for {}", std::env::consts::ARCH),
        )
    })?;
    let mut v = vec![native];
    for a in s.architectures().iter().flatten() {
        let abi = match (native, a) {
            (Abi::X86_64, Arch::ScmpArchX86) => Abi::X86,
            (Abi::X86_64, Arch::ScmpArchX32) => Abi::X32,
            _ => continue,
        };
        if !v.contains(&abi) {
            v.push(abi);
        }
    }
    v.sort();
    Ok(v)
}

fn cond(a: &oci_spec::runtime::LinuxSeccompArg) -> Result<Cond> {
    if a.index() >= 6 {
        return Err(bad("syscalls[].args[].index", "syscalls have 6 arguments"));
    }
    let op = match a.op() {
        LinuxSeccompOperator::ScmpCmpNe => Op::Ne,
        LinuxSeccompOperator::ScmpCmpLt => Op::Lt,
        LinuxSeccompOperator::ScmpCmpLe => Op::Le,
        LinuxSeccompOperator::ScmpCmpEq => Op::Eq,
        LinuxSeccompOperator::ScmpCmpGe => Op::Ge,
        LinuxSeccompOperator::ScmpCmpGt => Op::Gt,
        // libseccomp's SCMP_CMP_MASKED_EQ: (arg & value) == valueTwo.
        LinuxSeccompOperator::ScmpCmpMaskedEq => Op::Masked(a.value()),
    };
    let value = match op {
        Op::Masked(m) => a.value_two().unwrap_or(0) & m,
        _ => a.value(),
    };
    Ok(Cond {
        arg: a.index() as u8,
        op,
        value,
    })
}

/// Compiles `s` to BPF (no caching; see the module docs for the semantics).
///
/// ```
/// let s: oci_spec::runtime::LinuxSeccomp = serde_json::from_str(
///     r#"{"defaultAction": "SCMP_ACT_ALLOW",
///         "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#).unwrap();
/// let p = oci_sandbox::seccomp::compile(&s).unwrap();
/// assert!(p.instructions().len() < 32);
/// ```
pub fn compile(s: &LinuxSeccomp) -> Result<Program> {
    let abis = abis(s)?;
    let mut unknown: Vec<&str> = s
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|sc| sc.names().iter().map(String::as_str))
        .filter(|n| !known_anywhere(n))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        unknown.dedup();
        return Err(bad(
            "syscalls[].names",
            format!(
                "unknown syscall {} (in no architecture's table of Linux {TABLE_LINUX})",
                unknown.join(", ")
            ),
        ));
    }
    let default = action(s.default_action(), s.default_errno_ret(), "defaultErrnoRet")?;
    let mut tables: Vec<BTreeMap<u32, Entry>> = vec![BTreeMap::new(); abis.len()];
    let mut used = vec![default];
    for sc in s.syscalls().iter().flatten() {
        let act = action(sc.action(), sc.errno_ret(), "syscalls[].errnoRet")?;
        if act == default {
            continue;
        }
        used.push(act);
        let conds: Vec<Cond> = sc
            .args()
            .iter()
            .flatten()
            .map(cond)
            .collect::<Result<_>>()?;
        let repeated = (0..6u8).any(|i| conds.iter().filter(|c| c.arg == i).count() > 1);
        let rules: Vec<Vec<Cond>> = if repeated {
            conds.iter().map(|c| vec![*c]).collect()
        } else {
            vec![conds]
        };
        for name in sc.names() {
            for (abi, table) in abis.iter().zip(tables.iter_mut()) {
                for conds in &rules {
                    if let Some(nr) = abi.resolve(name) {
                        add_rule(
                            table,
                            nr,
                            Rule {
                                conds: conds.clone(),
                                action: act,
                            },
                        );
                    }
                    if *abi != Abi::X86 {
                        continue;
                    }
                    if let Some((_, mux, call)) = X86_MULTIPLEXED.iter().find(|(n, _, _)| n == name)
                    {
                        let mut c = vec![Cond {
                            arg: 0,
                            op: Op::Eq,
                            value: *call,
                        }];
                        c.extend(conds.iter().filter(|c| c.arg != 0));
                        add_rule(
                            table,
                            *mux,
                            Rule {
                                conds: c,
                                action: act,
                            },
                        );
                    }
                }
            }
        }
    }
    let notify = used.contains(&ret::USER_NOTIF);
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            // The set-up process is single-threaded: TSYNC is trivially satisfied.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                if !notify {
                    return Err(bad(
                        "flags",
                        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs an SCMP_ACT_NOTIFY action",
                    ));
                }
                FLAG_WAIT_KILLABLE_RECV
            }
        };
    }
    if notify {
        flags |= FLAG_NEW_LISTENER;
        if flags & FLAG_TSYNC != 0 {
            // seccomp(2): TSYNC with NEW_LISTENER needs TSYNC_ESRCH.
            flags |= FLAG_TSYNC_ESRCH;
        }
        if s.listener_path().is_none() {
            return Err(bad(
                "listenerPath",
                "SCMP_ACT_NOTIFY needs a listenerPath to send the listener to",
            ));
        }
        let native = &tables[0];
        for name in CHILD_SYSCALLS {
            let Some(nr) = abis[0].resolve(name) else {
                continue;
            };
            let hit = match native.get(&nr) {
                None => default == ret::USER_NOTIF,
                Some(Entry::Always(a)) => *a == ret::USER_NOTIF,
                Some(Entry::When(r)) => {
                    default == ret::USER_NOTIF || r.iter().any(|r| r.action == ret::USER_NOTIF)
                }
            };
            if hit {
                return Err(bad(
                    "syscalls",
                    format!("SCMP_ACT_NOTIFY for {name}, which the runtime makes after installing the filter and before the listener is delivered"),
                ));
            }
        }
    }
    if s.listener_metadata().is_some() && s.listener_path().is_none() {
        return Err(bad("listenerMetadata", "set without listenerPath"));
    }
    let insns = Gen::program(&abis, &tables, default)?;
    Ok(Program {
        insns,
        flags,
        notify,
    })
}

/// What the child runs between installing a NOTIFY filter and reporting ready.
const CHILD_SYSCALLS: [&str; 9] = [
    "sendmsg",
    "close",
    "newfstatat",
    "stat",
    "faccessat",
    "faccessat2",
    "sendto",
    "recvfrom",
    "exit_group",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Label(usize);

enum Item {
    Insn(SockFilter),
    Ja(Label),
    Here(Label),
}

/// Code generation: every conditional jump goes 0 or 1 instructions ahead (over a `ja`), so
/// the 8-bit jump offsets never overflow; `ja` has 32 bits and targets labels placed later.
struct Gen {
    items: Vec<Item>,
    labels: usize,
    rets: HashMap<u32, Label>,
}

impl Gen {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    fn insn(&mut self, code: u16, k: u32, jt: u8, jf: u8) {
        self.items.push(Item::Insn(SockFilter { code, jt, jf, k }));
    }
    fn ja(&mut self, l: Label) {
        self.items.push(Item::Ja(l));
    }
    fn here(&mut self, l: Label) {
        self.items.push(Item::Here(l));
    }
    fn ret(&mut self, action: u32) -> Label {
        if let Some(l) = self.rets.get(&action) {
            return *l;
        }
        let l = self.label();
        self.rets.insert(action, l);
        l
    }
    fn load(&mut self, off: u32) {
        self.insn(LD_W_ABS, off, 0, 0);
    }
    /// Goes to `to` if the jump `code k` is taken.
    fn goto_if(&mut self, code: u16, k: u32, to: Label) {
        self.insn(code, k, 0, 1);
        self.ja(to);
    }
    /// Goes to `to` unless the jump `code k` is taken.
    fn goto_unless(&mut self, code: u16, k: u32, to: Label) {
        self.insn(code, k, 1, 0);
        self.ja(to);
    }

    /// Goes to `fail` unless `c` holds.
    fn cond(&mut self, c: &Cond, bits32: bool, fail: Label) {
        let lo_off = 16 + 8 * c.arg as u32;
        let hi_off = lo_off + 4;
        let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
        if bits32 {
            self.load(lo_off);
            match c.op {
                Op::Eq => self.goto_unless(JEQ_K, vl, fail),
                Op::Ne => self.goto_if(JEQ_K, vl, fail),
                Op::Gt => self.goto_unless(JGT_K, vl, fail),
                Op::Ge => self.goto_unless(JGE_K, vl, fail),
                Op::Lt => self.goto_if(JGE_K, vl, fail),
                Op::Le => self.goto_if(JGT_K, vl, fail),
                Op::Masked(m) => {
                    self.insn(ALU_AND_K, m as u32, 0, 0);
                    self.goto_unless(JEQ_K, vl, fail);
                }
            }
            return;
        }
        let ok = self.label();
        self.load(hi_off);
        match c.op {
            Op::Eq => {
                self.goto_unless(JEQ_K, vh, fail);
                self.load(lo_off);
                self.goto_unless(JEQ_K, vl, fail);
            }
            Op::Ne => {
                self.goto_unless(JEQ_K, vh, ok);
                self.load(lo_off);
                self.goto_if(JEQ_K, vl, fail);
            }
            Op::Gt | Op::Ge => {
                self.goto_if(JGT_K, vh, ok);
                self.goto_unless(JEQ_K, vh, fail);
                self.load(lo_off);
                let code = if c.op == Op::Gt { JGT_K } else { JGE_K };
                self.goto_unless(code, vl, fail);
            }
            Op::Lt | Op::Le => {
                self.goto_unless(JGE_K, vh, ok);
                self.goto_unless(JEQ_K, vh, fail);
                self.load(lo_off);
                let code = if c.op == Op::Lt { JGE_K } else { JGT_K };
                self.goto_if(code, vl, fail);
            }
            Op::Masked(m) => {
                self.insn(ALU_AND_K, (m >> 32) as u32, 0, 0);
                self.goto_unless(JEQ_K, vh, fail);
                self.load(lo_off);
                self.insn(ALU_AND_K, m as u32, 0, 0);
                self.goto_unless(JEQ_K, vl, fail);
            }
        }
        self.here(ok);
    }

    /// A binary search over `iv` (sorted, contiguous (first nr, target) intervals) with the
    /// syscall number in the accumulator.
    fn tree(&mut self, iv: &[(u32, Label)]) {
        if iv.len() == 1 {
            self.ja(iv[0].1);
            return;
        }
        let mid = iv.len() / 2;
        let right = self.label();
        self.goto_if(JGE_K, iv[mid].0, right);
        self.tree(&iv[..mid]);
        self.here(right);
        self.tree(&iv[mid..]);
    }

    /// The dispatch of one ABI's numbers in [lo, hi]; returns the bodies still to emit.
    fn dispatch(
        &mut self,
        table: &BTreeMap<u32, Entry>,
        lo: u32,
        hi: u32,
        default: Label,
        bodies: &mut Vec<(Label, Vec<Rule>)>,
    ) {
        let mut iv: Vec<(u32, Label)> = Vec::new();
        let push = |iv: &mut Vec<(u32, Label)>, nr: u32, l: Label| {
            if iv.last().map(|x| x.1) != Some(l) {
                iv.push((nr, l));
            }
        };
        let mut next = Some(lo);
        for (&nr, e) in table.range(lo..=hi) {
            if next.is_some_and(|n| nr > n) {
                push(&mut iv, next.unwrap_or(lo), default);
            }
            let l = match e {
                Entry::Always(a) => self.ret(*a),
                Entry::When(rules) => {
                    let l = self.label();
                    bodies.push((l, rules.clone()));
                    l
                }
            };
            push(&mut iv, nr, l);
            next = nr.checked_add(1);
        }
        if let Some(n) = next.filter(|n| *n <= hi) {
            push(&mut iv, n, default);
        }
        self.tree(&iv);
    }

    fn program(
        abis: &[Abi],
        tables: &[BTreeMap<u32, Entry>],
        default: u32,
    ) -> Result<Vec<SockFilter>> {
        let mut g = Gen {
            items: Vec::new(),
            labels: 0,
            rets: HashMap::new(),
        };
        let bad_arch = g.ret(ret::KILL_THREAD);
        let default_l = g.ret(default);
        let starts: Vec<Label> = abis.iter().map(|_| g.label()).collect();
        g.load(4);
        let mut tokens = Vec::new();
        for (abi, l) in abis.iter().zip(&starts) {
            // x32 shares x86_64's token and is reached from its block.
            if *abi == Abi::X32 && abis.contains(&Abi::X86_64) {
                continue;
            }
            if !tokens.contains(&abi.token()) {
                tokens.push(abi.token());
                g.goto_if(JEQ_K, abi.token(), *l);
            }
        }
        g.ja(bad_arch);
        let mut bodies = Vec::new();
        for (i, abi) in abis.iter().enumerate() {
            g.here(starts[i]);
            match abi {
                Abi::X86_64 => {
                    g.load(0);
                    if let Some(j) = abis.iter().position(|a| *a == Abi::X32) {
                        g.goto_if(JGE_K, X32_SYSCALL_BIT, starts[j]);
                        g.dispatch(&tables[i], 0, X32_SYSCALL_BIT - 1, default_l, &mut bodies);
                    } else {
                        // An x32 call is a bad architecture, but -1 (a syscall skipped by a
                        // tracer) gets the default, as libseccomp does.
                        let native = g.label();
                        g.goto_unless(JGE_K, X32_SYSCALL_BIT, native);
                        g.goto_unless(JEQ_K, u32::MAX, bad_arch);
                        g.here(native);
                        g.dispatch(&tables[i], 0, u32::MAX, default_l, &mut bodies);
                    }
                }
                Abi::X32 => {
                    // Reached with the number loaded and at least X32_SYSCALL_BIT.
                    g.dispatch(
                        &tables[i],
                        X32_SYSCALL_BIT,
                        u32::MAX,
                        default_l,
                        &mut bodies,
                    );
                }
                _ => {
                    g.load(0);
                    g.dispatch(&tables[i], 0, u32::MAX, default_l, &mut bodies);
                }
            }
            for (l, rules) in std::mem::take(&mut bodies) {
                g.here(l);
                for r in &rules {
                    let next = g.label();
                    for c in &r.conds {
                        g.cond(c, abi.bits32(), next);
                    }
                    let to = g.ret(r.action);
                    g.ja(to);
                    g.here(next);
                }
                g.ja(default_l);
            }
        }
        let mut rets: Vec<(u32, Label)> = g.rets.iter().map(|(a, l)| (*a, *l)).collect();
        rets.sort();
        for (a, l) in rets {
            g.here(l);
            g.insn(RET_K, a, 0, 0);
        }
        g.assemble()
    }

    fn assemble(self) -> Result<Vec<SockFilter>> {
        let mut at = vec![usize::MAX; self.labels];
        let mut n = 0;
        for it in &self.items {
            match it {
                Item::Here(l) => at[l.0] = n,
                _ => n += 1,
            }
        }
        let mut out = Vec::with_capacity(n);
        for it in &self.items {
            match it {
                Item::Insn(i) => out.push(*i),
                Item::Ja(l) => {
                    let pos = out.len();
                    // Every label is placed after its jumps (the layout above); a jump to the
                    // next instruction is a no-op that the verifier accepts.
                    debug_assert!(at[l.0] != usize::MAX && at[l.0] > pos);
                    out.push(SockFilter {
                        code: JA,
                        jt: 0,
                        jf: 0,
                        k: (at[l.0] - pos - 1) as u32,
                    });
                }
                Item::Here(_) => {}
            }
        }
        if out.len() > MAX_INSNS {
            return Err(bad(
                "syscalls",
                format!(
                    "filter of {} instructions exceeds the kernel's {MAX_INSNS}",
                    out.len()
                ),
            ));
        }
        Ok(out)
    }
}

/// Checks that the running kernel knows every action of `p` (SECCOMP_GET_ACTION_AVAIL).
fn check_actions(p: &Program) -> Result<()> {
    let mut seen = Vec::new();
    for i in &p.insns {
        if i.code == RET_K && !seen.contains(&(i.k & 0xffff_0000)) {
            let a: u32 = i.k & 0xffff_0000;
            seen.push(a);
            // SAFETY: the kernel reads one u32.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    2, /* GET_ACTION_AVAIL */
                    0,
                    &a as *const u32,
                )
            };
            if r < 0 {
                return Err(bad(
                    "syscalls[].action",
                    format!("the kernel does not support seccomp action {a:#x}"),
                ));
            }
        }
    }
    Ok(())
}

/// Compiles `s`, reusing an earlier compilation of an identical profile (in memory, keyed
/// by a hash of its JSON).
pub(crate) fn compile_cached(s: &LinuxSeccomp) -> Result<Arc<Program>> {
    static CACHE: OnceLock<Mutex<HashMap<u64, Arc<Program>>>> = OnceLock::new();
    let json = serde_json::to_string(s).map_err(|e| bad("linux.seccomp", e.to_string()))?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut h);
    let key = h.finish();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(c) = cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(c);
    }
    let c = compile(s)?;
    check_actions(&c)?;
    let c = Arc::new(c);
    if let Ok(mut m) = cache.lock() {
        if m.len() > 64 {
            m.clear();
        }
        m.insert(key, c.clone());
    }
    Ok(c)
}

/// A container's filter: the (shared) program and, for NOTIFY, the child's end of the
/// socketpair that carries the listener to the runtime.
#[derive(Debug)]
pub(crate) struct Compiled {
    program: Arc<Program>,
    listener_sock: RawFd,
}

impl Compiled {
    /// Whether the filter must be installed before the container reports ready (NOTIFY).
    pub(crate) fn notifies(&self) -> bool {
        self.program.notify
    }
}

/// The runtime's side of a NOTIFY filter: receives the listener from the child and passes it
/// to the agent at `listenerPath`.
#[derive(Debug)]
pub(crate) struct Notifier {
    parent: OwnedFd,
    child: Option<OwnedFd>,
    listener_path: PathBuf,
    metadata: Option<String>,
}

/// Compiles the config's profile for one container; with NOTIFY, also makes the socketpair
/// whose child end (at an fd number of at least `min_fd`) the child keeps.
pub(crate) fn prepare(
    s: Option<&LinuxSeccomp>,
    min_fd: RawFd,
) -> Result<(Option<Arc<Compiled>>, Option<Notifier>)> {
    let Some(s) = s else {
        return Ok((None, None));
    };
    let program = compile_cached(s)?;
    if !program.notify {
        return Ok((
            Some(Arc::new(Compiled {
                program,
                listener_sock: -1,
            })),
            None,
        ));
    }
    let mut fds = [0; 2];
    // SAFETY: fds is a valid 2-element array.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } < 0
    {
        return Err(Error::last_os("socketpair", None));
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    let (parent, child) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd that we own.
    let moved = unsafe { libc::fcntl(child.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min_fd) };
    if moved < 0 {
        return Err(Error::last_os("fcntl", None));
    }
    // SAFETY: `moved` is a fresh fd.
    let child = unsafe { OwnedFd::from_raw_fd(moved) };
    let listener_path = s.listener_path().clone().unwrap_or_default();
    Ok((
        Some(Arc::new(Compiled {
            program,
            listener_sock: child.as_raw_fd(),
        })),
        Some(Notifier {
            parent,
            child: Some(child),
            listener_path,
            metadata: s.listener_metadata().clone(),
        }),
    ))
}

impl Notifier {
    /// The fd the child must keep open.
    pub(crate) fn child_fd(&self) -> RawFd {
        self.child.as_ref().map_or(-1, |c| c.as_raw_fd())
    }

    /// Closes the parent's copy of the child's end (after the fork).
    pub(crate) fn forked(&mut self) {
        self.child = None;
    }

    /// After the child reported ready: takes the listener it sent and sends it to the agent
    /// with the container process state (config-linux.md "The Container Process State").
    pub(crate) fn forward(
        self,
        spec: &oci_spec::runtime::Spec,
        id: Option<&str>,
        bundle: Option<&Path>,
        pid: i32,
    ) -> Result<()> {
        let mut state = serde_json::json!({
            "ociVersion": spec.version(),
            "id": id.unwrap_or_default(),
            "status": "creating",
            "pid": pid,
            "bundle": bundle.map(|b| b.to_string_lossy().into_owned()).unwrap_or_default(),
        });
        if let Some(a) = spec.annotations().as_ref().filter(|a| !a.is_empty()) {
            state["annotations"] = serde_json::json!(a);
        }
        let listener = recv_fd(self.parent.as_raw_fd()).map_err(|e| Error::Syscall {
            syscall: "recvmsg (seccomp listener)",
            path: None,
            source: e,
        })?;
        let pid = state["pid"].clone();
        let mut msg = serde_json::json!({
            "ociVersion": state["ociVersion"].clone(),
            "fds": ["seccompFd"],
            "pid": pid,
            "state": state,
        });
        if let Some(m) = &self.metadata {
            msg["metadata"] = m.clone().into();
        }
        let body = serde_json::to_vec(&msg).map_err(|e| bad("listenerPath", e.to_string()))?;
        send_to_agent(&self.listener_path, &body, listener.as_raw_fd())
    }
}

fn send_to_agent(path: &Path, body: &[u8], fd: RawFd) -> Result<()> {
    let err = |e: std::io::Error| Error::Syscall {
        syscall: "send seccomp listener",
        path: Some(path.to_path_buf()),
        source: e,
    };
    let stream = std::os::unix::net::UnixStream::connect(path).map_err(err)?;
    let sent = send_fd(stream.as_raw_fd(), body, fd);
    if sent < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    // config-linux.md "The Container Process State": the fd goes with the first sendmsg only.
    use std::io::Write;
    (&stream).write_all(&body[sent as usize..]).map_err(err)
}

/// sendmsg(2) of `bytes` with `fd` as SCM_RIGHTS; allocation-free (used in the child).
fn send_fd(sock: RawFd, bytes: &[u8], fd: RawFd) -> isize {
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr with valid pointers into this frame; the cmsg buffer is large and aligned
    // enough for one fd, and CMSG_* compute offsets inside it.
    unsafe {
        let mut m: libc::msghdr = std::mem::zeroed();
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        m.msg_control = cbuf.as_mut_ptr().cast();
        m.msg_controllen = libc::CMSG_SPACE(4) as usize;
        let h = libc::CMSG_FIRSTHDR(&m);
        (*h).cmsg_level = libc::SOL_SOCKET;
        (*h).cmsg_type = libc::SCM_RIGHTS;
        (*h).cmsg_len = libc::CMSG_LEN(4) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(h).cast::<i32>(), fd);
        libc::sendmsg(sock, &m, libc::MSG_NOSIGNAL)
    }
}

fn recv_fd(sock: RawFd) -> std::io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cbuf = [0u64; 8];
    // SAFETY: as in `send_to_agent`; MSG_DONTWAIT: the child sent before reporting ready.
    unsafe {
        let mut m: libc::msghdr = std::mem::zeroed();
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        m.msg_control = cbuf.as_mut_ptr().cast();
        m.msg_controllen = std::mem::size_of_val(&cbuf);
        let r = libc::recvmsg(sock, &mut m, libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC);
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let c = libc::CMSG_FIRSTHDR(&m);
        if c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
            return Err(std::io::Error::from_raw_os_error(libc::EPROTO));
        }
        Ok(OwnedFd::from_raw_fd(std::ptr::read_unaligned(
            libc::CMSG_DATA(c).cast::<i32>(),
        )))
    }
}

/// Child: sets no_new_privs (for a NOTIFY filter installed early; see process.rs).
pub(crate) fn set_no_new_privs() -> CResult {
    // SAFETY: plain prctl.
    sys::check(
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } as i64,
        Step::NoNewPrivs,
        0,
    )
    .map(|_| ())
}

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

/// Child: installs the filter (allocation-free). Without no_new_privs this needs
/// CAP_SYS_ADMIN (seccomp(2)). With NOTIFY, sends the listener to the runtime and closes it.
pub(crate) fn install(c: &Compiled) -> CResult {
    let p = &c.program;
    let prog = SockFprog {
        len: p.insns.len() as u16,
        filter: p.insns.as_ptr(),
    };
    // SAFETY: the kernel copies the program; `prog` and `p` outlive the call.
    let fd = sys::check(
        unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                p.flags as libc::c_ulong,
                &prog as *const SockFprog,
            )
        },
        Step::Seccomp,
        0,
    )?;
    if !p.notify {
        return Ok(());
    }
    let r = send_fd(c.listener_sock, &[0], fd as RawFd);
    let e = sys::errno();
    sys::close(fd as i32);
    sys::close(c.listener_sock);
    if r < 0 {
        return Err(sys::fail(Step::Seccomp, 1, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_kernel_supports_every_known_flag() {
        // Kernel 6.x: all four (WAIT_KILLABLE_RECV is 5.19).
        let names: Vec<&str> = KNOWN_FLAGS.iter().map(|(n, _)| *n).collect();
        assert_eq!(supported_flags(), names);
    }

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn errno_on_an_action_without_errno_is_refused() {
        let s = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_KILL","errnoRet":1}]}"#,
        );
        assert!(matches!(compile(&s), Err(Error::Seccomp { .. })));
        let s = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":70000}]}"#,
        );
        assert!(matches!(compile(&s), Err(Error::Seccomp { .. })));
    }

    #[test]
    fn notify_needs_a_listener_and_spares_the_runtime_syscalls() {
        let s = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(matches!(
            compile(&s),
            Err(Error::Seccomp {
                field: "listenerPath",
                ..
            })
        ));
        let s = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x","flags":["SECCOMP_FILTER_FLAG_TSYNC"],"syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        let p = compile(&s).unwrap();
        assert!(p.notifies());
        assert_eq!(p.flags(), FLAG_TSYNC | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH);
        let s = profile(
            r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/x","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        assert!(matches!(
            compile(&s),
            Err(Error::Seccomp {
                field: "syscalls",
                ..
            })
        ));
        let s = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}],"flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
        );
        assert!(matches!(
            compile(&s),
            Err(Error::Seccomp { field: "flags", .. })
        ));
    }

    /// Syscalls of Linux 6.10-6.17 are in the table; a name no architecture knows is the
    /// config's error, naming it; a name of another architecture only is skipped.
    #[test]
    fn new_syscalls_are_known_and_unknown_names_are_reported() {
        for n in [
            "mseal",
            "setxattrat",
            "getxattrat",
            "listxattrat",
            "removexattrat",
            "file_getattr",
        ] {
            assert!(abis_native_resolves(n), "{n}");
        }
        let v = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdri", "arm_fadvise64_64", "no_such_call"], "action": "SCMP_ACT_ERRNO"}]});
        let s: LinuxSeccomp = serde_json::from_value(v).unwrap();
        match compile(&s) {
            Err(Error::Seccomp { field, reason }) => {
                assert_eq!(field, "syscalls[].names");
                assert!(reason.contains("mkdri, no_such_call"), "{reason}");
                assert!(!reason.contains("arm_fadvise64_64"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    fn abis_native_resolves(name: &str) -> bool {
        Abi::native().and_then(|a| a.resolve(name)).is_some()
    }

    #[test]
    fn big_profiles_keep_jumps_in_range() {
        // Every x86_64 syscall with its own conditional rule: far more than 255 instructions
        // between a jump and its target.
        let names: Vec<String> = (0..460)
            .filter_map(syscalls::Sysno::new)
            .map(|s| s.name().to_string())
            .collect();
        let v = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": names, "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 7, "op": "SCMP_CMP_GT"}]}]});
        let s: LinuxSeccomp = serde_json::from_value(v).unwrap();
        match compile(&s) {
            Ok(p) => assert!(p.instructions().len() <= MAX_INSNS),
            Err(e) => assert!(e.to_string().contains("exceeds"), "{e}"),
        }
    }
}
