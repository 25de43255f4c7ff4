//! Our seccomp compiler decides like libseccomp: the same profiles are compiled by both
//! (libseccomp driven as runc drives it), and both programs run in a classic-BPF interpreter
//! over a matrix of (architecture, syscall number, arguments); every return value must agree.
//! Then Docker's default profile in a real container.
#![cfg(target_arch = "x86_64")]
mod common;

use oci_sandbox::seccomp::{compile, SockFilter};
use oci_sandbox::ExitStatus;
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use serde_json::json;
use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd};

#[repr(C)]
struct ScmpArgCmp {
    arg: c_uint,
    op: c_int,
    datum_a: u64,
    datum_b: u64,
}

#[link(name = "seccomp")]
extern "C" {
    fn seccomp_init(def_action: u32) -> *mut c_void;
    fn seccomp_release(ctx: *mut c_void);
    fn seccomp_arch_add(ctx: *mut c_void, arch: u32) -> c_int;
    fn seccomp_syscall_resolve_name(name: *const c_char) -> c_int;
    fn seccomp_rule_add_array(
        ctx: *mut c_void,
        action: u32,
        syscall: c_int,
        arg_cnt: c_uint,
        args: *const ScmpArgCmp,
    ) -> c_int;
    fn seccomp_export_bpf(ctx: *mut c_void, fd: c_int) -> c_int;
}

const X86_64: u32 = 0xc000_003e;
const I386: u32 = 0x4000_0003;
const AARCH64: u32 = 0xc000_00b7;
const X32_BIT: u32 = 0x4000_0000;

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> u32 {
    use LinuxSeccompAction::*;
    let e = errno.unwrap_or(1) & 0xffff;
    match a {
        ScmpActKill | ScmpActKillThread => 0,
        ScmpActKillProcess => 0x8000_0000,
        ScmpActTrap => 0x0003_0000,
        ScmpActErrno => 0x0005_0000 | e,
        ScmpActTrace => 0x7ff0_0000 | e,
        ScmpActLog => 0x7ffc_0000,
        ScmpActAllow => 0x7fff_0000,
        ScmpActNotify => 0x7fc0_0000,
    }
}

/// libseccomp's program for `s`, built the way runc's `InitSeccomp` does.
fn libseccomp_bpf(s: &LinuxSeccomp) -> Vec<SockFilter> {
    let default = action(s.default_action(), s.default_errno_ret());
    // SAFETY: plain libseccomp calls on a context we own.
    unsafe {
        let ctx = seccomp_init(default);
        assert!(!ctx.is_null());
        for a in s.architectures().iter().flatten() {
            let token = match serde_json::to_value(a).unwrap().as_str().unwrap() {
                "SCMP_ARCH_X86_64" => X86_64,
                "SCMP_ARCH_X86" => I386,
                "SCMP_ARCH_X32" => 0x4000_003e,
                other => panic!("{other}"),
            };
            let r = seccomp_arch_add(ctx, token);
            assert!(r == 0 || r == -libc::EEXIST, "arch {r}");
        }
        for sc in s.syscalls().iter().flatten() {
            let act = action(sc.action(), sc.errno_ret());
            if act == default {
                continue;
            }
            let conds: Vec<ScmpArgCmp> = sc
                .args()
                .iter()
                .flatten()
                .map(|a| ScmpArgCmp {
                    arg: a.index() as c_uint,
                    op: match a.op() {
                        LinuxSeccompOperator::ScmpCmpNe => 1,
                        LinuxSeccompOperator::ScmpCmpLt => 2,
                        LinuxSeccompOperator::ScmpCmpLe => 3,
                        LinuxSeccompOperator::ScmpCmpEq => 4,
                        LinuxSeccompOperator::ScmpCmpGe => 5,
                        LinuxSeccompOperator::ScmpCmpGt => 6,
                        LinuxSeccompOperator::ScmpCmpMaskedEq => 7,
                    },
                    datum_a: a.value(),
                    datum_b: a.value_two().unwrap_or(0),
                })
                .collect();
            let repeated = (0..6).any(|i| conds.iter().filter(|c| c.arg == i).count() > 1);
            for name in sc.names() {
                let cname = CString::new(name.as_str()).unwrap();
                let nr = seccomp_syscall_resolve_name(cname.as_ptr());
                if nr == -1 {
                    continue;
                }
                let add = |c: &[ScmpArgCmp]| {
                    let r = seccomp_rule_add_array(ctx, act, nr, c.len() as c_uint, c.as_ptr());
                    if r != 0 {
                        eprintln!("libseccomp refused a rule for {name}: {r} {:?}", sc.args());
                    }
                };
                if repeated {
                    for c in &conds {
                        add(std::slice::from_ref(c));
                    }
                } else {
                    add(&conds);
                }
            }
        }
        let fd = libc::memfd_create(c"bpf".as_ptr(), 0);
        assert!(fd >= 0);
        let mut f = std::fs::File::from_raw_fd(fd);
        assert_eq!(seccomp_export_bpf(ctx, f.as_raw_fd()), 0);
        seccomp_release(ctx);
        f.rewind().unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        bytes
            .chunks(8)
            .map(|c| SockFilter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect()
    }
}

/// A classic-BPF interpreter for seccomp programs (the subset seccomp allows).
fn run(prog: &[SockFilter], data: &[u8; 64]) -> u32 {
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        let word = |off: u32| {
            let o = off as usize;
            u32::from_ne_bytes(data[o..o + 4].try_into().unwrap())
        };
        let src = if i.code & 0x08 != 0 { x } else { i.k };
        match i.code {
            0x20 => a = word(i.k),
            0x00 => a = i.k,
            0x01 => x = i.k,
            0x60 => a = mem[i.k as usize],
            0x61 => x = mem[i.k as usize],
            0x02 => mem[i.k as usize] = a,
            0x03 => mem[i.k as usize] = x,
            0x07 => x = a,
            0x87 => a = x,
            0x06 => return i.k,
            0x16 => return a,
            0x05 => pc += i.k as usize,
            c if c & 0x07 == 0x04 => {
                a = match c & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.wrapping_shl(src),
                    0x70 => a.wrapping_shr(src),
                    0x80 => a.wrapping_neg(),
                    0xa0 => a ^ src,
                    _ => panic!("alu {c:#x}"),
                }
            }
            c if c & 0x07 == 0x05 => {
                let t = match c & 0xf0 {
                    0x10 => a == src,
                    0x20 => a > src,
                    0x30 => a >= src,
                    0x40 => a & src != 0,
                    _ => panic!("jmp {c:#x}"),
                };
                pc += if t { i.jt } else { i.jf } as usize;
            }
            c => panic!("opcode {c:#x}"),
        }
    }
}

fn data(arch: u32, nr: u32, args: [u64; 6]) -> [u8; 64] {
    let mut d = [0u8; 64];
    d[0..4].copy_from_slice(&nr.to_ne_bytes());
    d[4..8].copy_from_slice(&arch.to_ne_bytes());
    d[8..16].copy_from_slice(&0x7fff_1234u64.to_ne_bytes());
    for (i, v) in args.iter().enumerate() {
        d[16 + 8 * i..24 + 8 * i].copy_from_slice(&v.to_ne_bytes());
    }
    d
}

/// Every (arch, nr) worth asking: all numbers of the three x86 ABIs and around them, numbers
/// with the x32 bit seen as i386, a foreign architecture and the ends of the range.
fn calls() -> Vec<(u32, u32)> {
    let mut v = Vec::new();
    for nr in (0..600).chain([0x3fff_ffff, 0xffff_ffff, 0x7fff_ffff, 0x8000_0000]) {
        v.push((X86_64, nr));
        v.push((I386, nr));
        v.push((X86_64, nr | X32_BIT));
        v.push((I386, nr | X32_BIT));
    }
    v.extend([(AARCH64, 0), (AARCH64, 63), (0, 0), (u32::MAX, 1)]);
    v
}

/// Compares both programs over `calls` x `args`; returns the number of inputs checked.
fn assert_same(s: &LinuxSeccomp, args: &[[u64; 6]]) -> usize {
    let ours = compile(s).expect("our compiler").instructions().to_vec();
    let theirs = libseccomp_bpf(s);
    let mut n = 0;
    for (arch, nr) in calls() {
        for a in args {
            let d = data(arch, nr, *a);
            let (o, t) = (run(&ours, &d), run(&theirs, &d));
            assert_eq!(
                o, t,
                "arch {arch:#x} nr {nr:#x} args {a:x?}: ours {o:#x}, libseccomp {t:#x}"
            );
            n += 1;
        }
    }
    n
}

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).unwrap()
}

const EDGES: [u64; 12] = [
    0,
    1,
    7,
    8,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0007,
    0xffff_ffff_0000_0008,
    0x8000_0000_0000_0000,
    u64::MAX,
];

#[test]
fn docker_default_profile_decides_like_libseccomp() {
    let s: LinuxSeccomp =
        serde_json::from_str(include_str!("fixtures/docker-default-seccomp.json")).unwrap();
    // personality values, clone flags (CLONE_NEWUSER, CLONE_NEWNS, plain thread flags), socket
    // domains and types, with and without garbage in the high words.
    let mut args: Vec<[u64; 6]> = [
        0u64,
        8,
        0x20000,
        0x20008,
        0xffff_ffff,
        0x1_0000_0008,
        0x1000_0000,
        0x0002_0000,
        0x003d_0f00,
        16,
        9,
        u64::MAX,
    ]
    .iter()
    .map(|v| [*v; 6])
    .collect();
    args.push([16, 3, 9, 0, 0, 0]);
    args.push([1, 0x7e02_0000, 0, 0, 0, 0]);
    let n = assert_same(&s, &args);
    eprintln!("docker default profile: {n} inputs agree");
}

#[test]
fn every_syscall_name_maps_like_libseccomp_on_each_abi() {
    // One rule per known name, each with its own errno: the return value names the rule, so
    // numbers must agree name by name on x86_64, i386 (socketcall/ipc included) and x32.
    let mut names: Vec<String> = syscalls::x86_64::Sysno::iter()
        .map(|s| s.name().to_string())
        .chain(syscalls::x86::Sysno::iter().map(|s| s.name().to_string()))
        .chain(["send", "recv"].map(String::from))
        .collect();
    names.sort();
    names.dedup();
    // Calls newer than this libseccomp (2.5.4) are skipped by it (and runc), filtered by us.
    names.retain(|n| {
        let c = CString::new(n.as_str()).unwrap();
        // SAFETY: a NUL-terminated name.
        unsafe { seccomp_syscall_resolve_name(c.as_ptr()) != -1 }
    });
    let args: Vec<[u64; 6]> = (0..22).map(|c| [c, 0, 0, 0, 0, 0]).collect();
    let mut n = 0;
    // In chunks: a return value per syscall makes programs long.
    for chunk in names.chunks(200) {
        let rules: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, n)| json!({"names": [n], "action": "SCMP_ACT_ERRNO", "errnoRet": i + 2}))
            .collect();
        let s = profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": rules}));
        n += assert_same(&s, &args);
    }
    eprintln!("{} names: {n} inputs agree", names.len());
}

#[test]
fn every_operator_at_boundaries_decides_like_libseccomp() {
    let ops = [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    let mut total = 0;
    for arches in [json!([]), json!(["SCMP_ARCH_X86", "SCMP_ARCH_X32"])] {
        for op in ops {
            for (vi, v) in EDGES.iter().enumerate() {
                let v2 = EDGES[(vi + 5) % EDGES.len()];
                // lseek: 3 args on every ABI; the comparison on argument 1, and a second,
                // ANDed, on argument 2; a second rule (OR) for the same syscall on argument 0
                // with another action; an errno default.
                let s = profile(
                    json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                    "architectures": arches, "listenerPath": "/agent.sock",
                    "syscalls": [
                        {"names": ["lseek", "personality"], "action": "SCMP_ACT_ALLOW",
                         "args": [{"index": 1, "value": v, "valueTwo": v2, "op": op},
                                  {"index": 2, "value": 7, "op": "SCMP_CMP_LE"}]},
                        {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
                         "args": [{"index": 0, "value": v, "valueTwo": v2, "op": op},
                                  {"index": 2, "value": 7, "op": "SCMP_CMP_GT"}]},
                        {"names": ["read"], "action": "SCMP_ACT_TRACE",
                         "args": [{"index": 0, "value": v, "valueTwo": v, "op": op}]},
                        {"names": ["write"], "action": "SCMP_ACT_LOG", "args": [{"index": 5, "value": v, "op": op}]},
                        {"names": ["close"], "action": "SCMP_ACT_KILL_PROCESS"},
                        {"names": ["dup"], "action": "SCMP_ACT_KILL_THREAD"},
                        {"names": ["dup2"], "action": "SCMP_ACT_TRAP"},
                        {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
                        {"names": ["getpid"], "action": "SCMP_ACT_KILL"},
                        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": v, "op": op}]},
                        {"names": ["bind"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4094, "args": [{"index": 1, "value": v, "op": op}]}
                    ]}),
                );
                let mut args = Vec::new();
                for x in EDGES
                    .iter()
                    .flat_map(|e| [*e, e.wrapping_add(1), e.wrapping_sub(1)])
                    .chain([v.wrapping_sub(1), *v, v.wrapping_add(1), v2])
                {
                    args.push([x, x, 7, 0, 0, x]);
                    args.push([x, x, 8, 0, 0, x]);
                }
                total += assert_same(&s, &args);
            }
        }
    }
    // Two comparisons of one argument: split into ORed rules, as runc does.
    let s = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 1, "value": 10, "op": "SCMP_CMP_GE"}, {"index": 1, "value": 20, "op": "SCMP_CMP_LE"}]}]}));
    let args: Vec<[u64; 6]> = EDGES
        .iter()
        .chain(&[9, 10, 20, 21])
        .map(|v| [0, *v, 0, 0, 0, 0])
        .collect();
    total += assert_same(&s, &args);
    eprintln!("operators: {total} inputs agree");
}

#[test]
fn docker_default_profile_in_a_real_container() {
    let f = common::Fixture::new("dockerseccomp");
    let mut v = f.spec_json(
        "unshare -U true 2> /out/unshare; echo $? > /out/unshare_rc; \
         ls / > /out/ls; echo $? > /out/ls_rc; grep Seccomp: /proc/self/status > /out/mode",
    );
    std::os::unix::fs::symlink("busybox", f.rootfs.join("bin/unshare")).unwrap();
    v["process"]["noNewPrivileges"] = json!(true);
    v["linux"]["seccomp"] =
        serde_json::from_str(include_str!("fixtures/docker-default-seccomp.json")).unwrap();
    assert_eq!(f.run(&v), ExitStatus::Exited(0));
    assert_ne!(f.out("unshare_rc").trim(), "0");
    assert!(
        f.out("unshare").contains("not permitted"),
        "unshare(CLONE_NEWUSER) gets EPERM: {}",
        f.out("unshare")
    );
    assert_eq!(f.out("ls_rc").trim(), "0");
    assert!(f.out("ls").contains("bin"));
    assert!(f.out("mode").contains('2'), "{}", f.out("mode"));
}

/// An agent at `listenerPath`: receives the state and the listener, answers every notified
/// call with EXDEV until the container is gone; returns the state.
fn agent(listener: std::os::unix::net::UnixListener) -> serde_json::Value {
    let (conn, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 65536];
    let mut cbuf = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: recvmsg into buffers of this frame.
    let (n, fd) = unsafe {
        let mut m: libc::msghdr = std::mem::zeroed();
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        m.msg_control = cbuf.as_mut_ptr().cast();
        m.msg_controllen = std::mem::size_of_val(&cbuf);
        let n = libc::recvmsg(conn.as_raw_fd(), &mut m, 0);
        assert!(n > 0);
        let c = libc::CMSG_FIRSTHDR(&m);
        assert!(!c.is_null() && (*c).cmsg_type == libc::SCM_RIGHTS);
        (
            n as usize,
            std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>()),
        )
    };
    let mut body = buf[..n].to_vec();
    (&conn).read_to_end(&mut body).unwrap();
    let state: serde_json::Value = serde_json::from_slice(&body).unwrap();
    // struct seccomp_notif (80 bytes) and seccomp_notif_resp (24 bytes).
    const RECV: libc::c_ulong = 0xc050_2100;
    const SEND: libc::c_ulong = 0xc018_2101;
    loop {
        let mut req = [0u64; 10];
        // SAFETY: ioctls on the listener with buffers of the kernel's sizes.
        if unsafe { libc::ioctl(fd, RECV, req.as_mut_ptr()) } < 0 {
            break;
        }
        let resp: [u64; 3] = [req[0], 0, (-libc::EXDEV) as u32 as u64];
        // SAFETY: as above.
        unsafe { libc::ioctl(fd, SEND, resp.as_ptr()) };
    }
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
    state
}

#[test]
fn notify_sends_the_listener_to_the_agent_which_answers() {
    let f = common::Fixture::new("notify");
    let sock = f.dir.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || agent(listener));
    let mut v = f.spec_json(
        "mkdir /tmp/d 2> /out/err; echo $? > /out/rc; touch /tmp/f; echo $? > /out/touch",
    );
    v["process"]["noNewPrivileges"] = json!(true);
    v["annotations"] = json!({"k": "v"});
    v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock.to_str().unwrap(), "listenerMetadata": "hello",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]});
    let mut c = f
        .create(&v, oci_sandbox::Options::new().id(f.id.clone()))
        .unwrap();
    let pid = c.pid();
    c.start().unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0));
    c.delete().unwrap();
    let state = agent.join().unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["pid"], json!(pid));
    assert_eq!(state["metadata"], json!("hello"));
    assert_eq!(state["state"]["id"], json!(f.id));
    assert_eq!(state["state"]["status"], json!("creating"));
    assert_eq!(state["state"]["annotations"], json!({"k": "v"}));
    assert_ne!(f.out("rc").trim(), "0");
    assert!(f.out("err").contains("cross-device"), "{}", f.out("err"));
    assert_eq!(f.out("touch").trim(), "0");
}
