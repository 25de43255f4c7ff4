//! config-linux.md "Allowed Device list" on cgroup v2: there is no `devices.allow` file, the
//! list becomes an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the cgroup
//! with `BPF_CGROUP_DEVICE` (Documentation/admin-guide/cgroup-v2.rst, "Device controller").
//!
//! The program is generated like runc's devicefilter: the rules are tried from the last to the
//! first, so that the last matching rule wins (the order in which runtime-spec says entries
//! are applied), and an access no rule matches is denied. An allow rule matches when it covers
//! every requested access bit, a deny rule when it covers any of them. It is attached with
//! `BPF_F_ALLOW_MULTI`; the programs this crate attached before (an update) are then detached,
//! so the new list replaces the old one without a window where none applies.

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

// include/uapi/linux/bpf.h
const BPF_PROG_LOAD: i64 = 5;
const BPF_PROG_ATTACH: i64 = 8;
const BPF_PROG_DETACH: i64 = 9;
const BPF_PROG_GET_FD_BY_ID: i64 = 13;
const BPF_OBJ_GET_INFO_BY_FD: i64 = 15;
const BPF_PROG_QUERY: i64 = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
// struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 | type); u32 major; u32 minor; }
const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;
const BPF_DEVCG_ACC_MKNOD: i32 = 1;
const BPF_DEVCG_ACC_READ: i32 = 2;
const BPF_DEVCG_ACC_WRITE: i32 = 4;

/// The program name (at most 15 bytes), by which an update recognises this crate's programs.
const PROG_NAME: &[u8] = b"ocisb_devices";

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    /// dst register in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

// Opcodes (include/uapi/linux/bpf_common.h, bpf.h).
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_W | BPF_MEM
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU32_MOV_X: u8 = 0xbc;
const ALU64_MOV_K: u8 = 0xb7;
const JEQ_K: u8 = 0x15;
const JNE_K: u8 = 0x55;
const JSET_K: u8 = 0x45;
const EXIT: u8 = 0x95;

/// Compiles a device list to a `BPF_PROG_TYPE_CGROUP_DEVICE` program (see the module docs).
/// Registers: r2 device type, r3 requested access, r4 major, r5 minor.
pub(crate) fn compile(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => None,
            LinuxDeviceType::C | LinuxDeviceType::U => Some(BPF_DEVCG_DEV_CHAR),
            LinuxDeviceType::B => Some(BPF_DEVCG_DEV_BLOCK),
            LinuxDeviceType::P => {
                // FIFOs are not device nodes: the kernel never asks about them.
                continue;
            }
        };
        let mut access = 0;
        for c in rule.access().as_deref().unwrap_or("rwm").chars() {
            access |= match c {
                'r' => BPF_DEVCG_ACC_READ,
                'w' => BPF_DEVCG_ACC_WRITE,
                'm' => BPF_DEVCG_ACC_MKNOD,
                _ => {
                    return Err(Error::invalid(
                        "linux.resources.devices.access",
                        format!("{c:?} is not one of r, w, m"),
                    ))
                }
            };
        }
        let num = |v: Option<i64>, field| -> Result<Option<i32>> {
            match v {
                None | Some(-1) => Ok(None),
                Some(n) => u32::try_from(n)
                    .map(|n| Some(n as i32))
                    .map_err(|_| Error::invalid(field, format!("{n} is out of range"))),
            }
        };
        // Type `a` is every device, whatever the numbers (as the v1 devices controller reads it).
        let (major, minor) = match typ {
            None => (None, None),
            Some(_) => (
                num(rule.major(), "linux.resources.devices.major")?,
                num(rule.minor(), "linux.resources.devices.minor")?,
            ),
        };
        // The block's checks, each jumping to the next block on a mismatch: offsets are
        // filled in once the block's length is known.
        let mut block: Vec<Insn> = Vec::new();
        let mut skips = Vec::new();
        if let Some(t) = typ {
            skips.push(block.len());
            block.push(insn(JNE_K, 2, 0, 0, t));
        }
        if access != 7 {
            if rule.allow() {
                // Any requested bit outside the rule: no match.
                skips.push(block.len());
                block.push(insn(JSET_K, 3, 0, 0, !access & 7));
            } else {
                // No requested bit inside the rule: no match.
                block.push(insn(ALU32_MOV_X, 1, 3, 0, 0));
                block.push(insn(ALU32_AND_K, 1, 0, 0, access));
                skips.push(block.len());
                block.push(insn(JEQ_K, 1, 0, 0, 0));
            }
        }
        if let Some(m) = major {
            skips.push(block.len());
            block.push(insn(JNE_K, 4, 0, 0, m));
        }
        if let Some(m) = minor {
            skips.push(block.len());
            block.push(insn(JNE_K, 5, 0, 0, m));
        }
        block.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(rule.allow())));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        let matches_all = skips.is_empty();
        for i in skips {
            block[i].off = (len - i - 1) as i16;
        }
        p.extend(block);
        if matches_all {
            // Earlier rules and the default cannot be reached: the verifier refuses
            // unreachable instructions.
            return Ok(p);
        }
    }
    // No rule matched: denied.
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    if p.len() > 1_000_000 {
        return Err(Error::invalid("linux.resources.devices", "too many rules"));
    }
    Ok(p)
}

/// `union bpf_attr`, as far as the commands used here go.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Attr {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Attr {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.0[off..off + 4].try_into().unwrap_or_default())
    }
}

fn bpf(cmd: i64, attr: &mut Attr) -> std::io::Result<i64> {
    // SAFETY: bpf(2) with an attr buffer of the size passed, and pointers in it that outlive
    // the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            attr.0.len() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_from(r: i64) -> OwnedFd {
    // SAFETY: bpf(2) returned a new fd we own.
    unsafe { OwnedFd::from_raw_fd(r as i32) }
}

/// Loads `prog` (BPF_PROG_LOAD). The verifier's log is in the error when it refuses.
pub(crate) fn load(prog: &[Insn]) -> std::io::Result<OwnedFd> {
    let license = b"Apache-2.0\0";
    let mut attr = Attr::new();
    attr.u32(0, BPF_PROG_TYPE_CGROUP_DEVICE)
        .u32(4, prog.len() as u32)
        .u64(8, prog.as_ptr() as u64)
        .u64(16, license.as_ptr() as u64);
    // prog_name at offset 48 (after log_*, kern_version and prog_flags).
    attr.0[48..48 + PROG_NAME.len()].copy_from_slice(PROG_NAME);
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(fd_from(fd)),
        Err(e) => {
            // Again with the verifier's log, for the message.
            let mut log = vec![0u8; 64 * 1024];
            attr.u32(24, 1)
                .u32(28, log.len() as u32)
                .u64(32, log.as_mut_ptr() as u64);
            let _ = bpf(BPF_PROG_LOAD, &mut attr).map(fd_from);
            let end = log.iter().position(|b| *b == 0).unwrap_or(0);
            if end == 0 {
                Err(e)
            } else {
                Err(std::io::Error::new(
                    e.kind(),
                    format!("{e}: {}", String::from_utf8_lossy(&log[..end])),
                ))
            }
        }
    }
}

/// The ids of the device programs attached to the cgroup `dir` (BPF_PROG_QUERY).
fn attached(cgroup: &OwnedFd) -> std::io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = Attr::new();
    attr.u32(0, cgroup.as_raw_fd() as u32)
        .u32(4, BPF_CGROUP_DEVICE)
        .u64(16, ids.as_mut_ptr() as u64)
        .u32(24, ids.len() as u32);
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(attr.get_u32(24) as usize);
    Ok(ids)
}

/// The program's id and name (BPF_OBJ_GET_INFO_BY_FD, `struct bpf_prog_info`).
fn info(prog: &OwnedFd) -> std::io::Result<(u32, [u8; 16])> {
    // struct bpf_prog_info: id at 4, name at 64 (after tag, jited/xlated lengths and
    // pointers, load_time, created_by_uid, nr_map_ids, map_ids).
    let mut buf = [0u8; 256];
    let mut attr = Attr::new();
    attr.u32(0, prog.as_raw_fd() as u32)
        .u32(4, buf.len() as u32)
        .u64(8, buf.as_mut_ptr() as u64);
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    let id = u32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let mut name = [0u8; 16];
    name.copy_from_slice(&buf[64..80]);
    Ok((id, name))
}

/// Compiles `rules`, loads the program and attaches it to the cgroup2 directory `dir`
/// (BPF_PROG_ATTACH, `BPF_F_ALLOW_MULTI`), then detaches the device programs this crate had
/// attached there before. Programs attached by others stay (all must allow an access).
pub(crate) fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let err = |syscall| Error::sys(syscall, dir.to_path_buf());
    let prog = compile(rules)?;
    let cgroup: OwnedFd = std::fs::File::open(dir).map_err(err("open cgroup"))?.into();
    let fd = load(&prog).map_err(err("bpf(BPF_PROG_LOAD)"))?;
    let before = attached(&cgroup).unwrap_or_default();
    let mut attr = Attr::new();
    attr.u32(0, cgroup.as_raw_fd() as u32)
        .u32(4, fd.as_raw_fd() as u32)
        .u32(8, BPF_CGROUP_DEVICE)
        .u32(12, BPF_F_ALLOW_MULTI);
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(err("bpf(BPF_PROG_ATTACH)"))?;
    let (new_id, _) = info(&fd).map_err(err("bpf(BPF_OBJ_GET_INFO_BY_FD)"))?;
    for id in before.into_iter().filter(|i| *i != new_id) {
        let mut a = Attr::new();
        a.u32(0, id);
        let Ok(old) = bpf(BPF_PROG_GET_FD_BY_ID, &mut a).map(fd_from) else {
            continue; // gone meanwhile
        };
        let mut name = PROG_NAME.to_vec();
        name.resize(16, 0);
        if info(&old).map(|(_, n)| n.to_vec()).ok() != Some(name) {
            continue;
        }
        let mut d = Attr::new();
        d.u32(0, cgroup.as_raw_fd() as u32)
            .u32(4, old.as_raw_fd() as u32)
            .u32(8, BPF_CGROUP_DEVICE);
        bpf(BPF_PROG_DETACH, &mut d).map_err(err("bpf(BPF_PROG_DETACH)"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: serde_json::Value) -> LinuxDeviceCgroup {
        serde_json::from_value(v).unwrap()
    }

    /// A cgroup directory under the host's cgroup2 mount, removed on drop (after its process).
    struct TempCgroup {
        dir: std::path::PathBuf,
        pid: i32,
    }

    impl Drop for TempCgroup {
        fn drop(&mut self) {
            if self.pid > 0 {
                // SAFETY: kill and reap our own child.
                unsafe {
                    libc::kill(self.pid, libc::SIGKILL);
                    libc::waitpid(self.pid, std::ptr::null_mut(), 0);
                }
            }
            for _ in 0..100 {
                if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }

    /// Forks a child that joins `cg`, opens `path` write-only then read-only, and exits with
    /// bit 0 = the write-only open failed with EPERM, bit 1 = the read-only open succeeded.
    fn probe(cg: &mut TempCgroup, path: &std::ffi::CStr) -> i32 {
        use std::io::Write;
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(cg.dir.join("cgroup.procs"))
            .unwrap();
        // SAFETY: the child runs only raw syscalls on memory prepared before the fork.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: as above.
            unsafe {
                let me = b"0";
                if libc::write(procs.as_raw_fd(), me.as_ptr().cast(), 1) != 1 {
                    libc::_exit(100);
                }
                let mut code = 0;
                let w = libc::open(path.as_ptr(), libc::O_WRONLY);
                if w < 0 && *libc::__errno_location() == libc::EPERM {
                    code |= 1;
                }
                if libc::open(path.as_ptr(), libc::O_RDONLY) >= 0 {
                    code |= 2;
                }
                libc::_exit(code);
            }
        }
        cg.pid = pid;
        let mut status = 0;
        // SAFETY: reap our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        cg.pid = 0;
        let _ = std::io::stderr().flush();
        assert!(libc::WIFEXITED(status));
        libc::WEXITSTATUS(status)
    }

    #[test]
    fn compiled_shape() {
        let p = compile(&[rule(serde_json::json!({"allow": true, "access": "rwm"}))]).unwrap();
        // 6 loads, the allow-all block (mov, exit); nothing after it is reachable.
        assert_eq!(p.len(), 8);
        let p = compile(&[rule(
            serde_json::json!({"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}),
        )])
        .unwrap();
        // type, 3 for the access overlap, major, minor, mov, exit: skips land on the default.
        assert_eq!(p.len(), 6 + 8 + 2);
        assert_eq!(p[6].off, 7);
        assert_eq!(p[9].off, 4);
        assert!(compile(&[rule(serde_json::json!({"allow": true, "access": "x"}))]).is_err());
    }

    /// config-linux.md "Allowed Device list" as an eBPF program on the host's cgroup2 mount
    /// (on this hybrid host it has no controllers; device programs do not need one).
    #[test]
    fn program_denies_writes_to_dev_null_for_real() {
        let mount = Path::new("/sys/fs/cgroup/unified");
        let mut cg = TempCgroup {
            dir: mount.join(format!("ocisb-devbpf-{}", std::process::id())),
            pid: 0,
        };
        std::fs::create_dir(&cg.dir).unwrap();
        let rules = [
            rule(serde_json::json!({"allow": true, "access": "rwm"})),
            rule(
                serde_json::json!({"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}),
            ),
        ];
        apply(&cg.dir, &rules).unwrap();
        let dev_null = c"/dev/null";
        assert_eq!(probe(&mut cg, dev_null), 3, "write denied, read allowed");
        // Another device is untouched by the deny rule.
        assert_eq!(probe(&mut cg, c"/dev/zero"), 2, "write and read allowed");
        // An update replaces the program instead of stacking on it.
        apply(&cg.dir, &rules[..1]).unwrap();
        let cgroup: OwnedFd = std::fs::File::open(&cg.dir).unwrap().into();
        assert_eq!(attached(&cgroup).unwrap().len(), 1);
        assert_eq!(probe(&mut cg, dev_null), 2, "write allowed again");
        // Deny all: the read-only open fails too.
        apply(
            &cg.dir,
            &[rule(serde_json::json!({"allow": false, "access": "rwm"}))],
        )
        .unwrap();
        assert_eq!(probe(&mut cg, dev_null), 1, "both denied");
    }
}
