//! config.md "Process" `scheduler` and `ioPriority`, config-linux.md "Personality": set in the
//! container's init before exec, checked from the host on the running program.
mod common;

use common::Fixture;
use oci_sandbox::{Container, Error, ExecOptions, Options, Sandbox};
use serde_json::{json, Value};

/// Starts `exec sleep 1000` with `edit` applied to the config.
fn running(f: &Fixture, edit: impl FnOnce(&mut Value)) -> oci_sandbox::Result<Container> {
    let mut v = f.spec_json("exec sleep 1000");
    edit(&mut v);
    let mut c = f.create(&v, Options::new())?;
    c.start()?;
    // The program is `sleep` once /proc/PID/comm says so (the settings are from before exec).
    for _ in 0..200 {
        if std::fs::read_to_string(format!("/proc/{}/comm", c.pid())).unwrap() == "sleep\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Ok(c)
}

/// Fields of /proc/PID/stat, numbered from 1 as in proc(5) (the comm field has no spaces here).
fn stat_field(pid: i32, n: usize) -> i64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &s[s.rfind(')').unwrap() + 2..];
    // Fields 3.. follow the comm.
    after.split(' ').nth(n - 3).unwrap().parse().unwrap()
}

fn ioprio_get(pid: i32) -> i64 {
    // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, pid).
    let r = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, pid) };
    assert!(r >= 0, "ioprio_get: {}", std::io::Error::last_os_error());
    r
}

#[test]
fn scheduler_batch_with_nice() {
    let f = Fixture::new("sched-batch");
    let c = running(&f, |v| {
        v["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    })
    .unwrap();
    // proc(5): field 19 is nice, field 41 the policy (SCHED_BATCH = 3).
    assert_eq!(stat_field(c.pid(), 41), 3);
    assert_eq!(stat_field(c.pid(), 19), 7);
    c.delete().unwrap();
}

#[test]
fn scheduler_fifo_with_priority_and_reset_on_fork() {
    let f = Fixture::new("sched-fifo");
    let c = running(&f, |v| {
        // oci-spec 0.10 spells config.md's SCHED_FLAG_RESET_ON_FORK as SCHED_RESET_ON_FORK
        // (and SCHED_FLAG_DL_OVERRUN as SCHED_FLAG_D_L_OVERRUN): the spec's spelling does not
        // parse into a `Spec`.
        v["process"]["scheduler"] = json!({
            "policy": "SCHED_FIFO", "priority": 3, "flags": ["SCHED_RESET_ON_FORK"]
        });
    })
    .unwrap();
    // Field 40 is the realtime priority, 41 the policy (SCHED_FIFO = 1).
    assert_eq!(stat_field(c.pid(), 41), 1);
    assert_eq!(stat_field(c.pid(), 40), 3);
    // SAFETY: sched_getscheduler(2) of a pid; SCHED_RESET_ON_FORK is or-ed into the result.
    let pol = unsafe { libc::sched_getscheduler(c.pid()) };
    assert_eq!(pol, 1 | 0x4000_0000);
    c.delete().unwrap();
}

#[test]
fn scheduler_out_of_range_or_unmappable_is_refused() {
    let f = Fixture::new("sched-bad");
    for (sched, unsupported) in [
        (json!({"policy": "SCHED_ISO"}), true),
        (
            json!({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_UTIL_CLAMP_MIN"]}),
            true,
        ),
        (json!({"policy": "SCHED_OTHER", "nice": 20}), false),
        (json!({"policy": "SCHED_FIFO", "priority": 0}), false),
        (json!({"policy": "SCHED_BATCH", "priority": 5}), false),
    ] {
        let mut v = f.spec_json("true");
        v["process"]["scheduler"] = sched.clone();
        let e = f.create(&v, Options::new()).unwrap_err();
        match e {
            Error::Unsupported { .. } if unsupported => {}
            Error::InvalidConfig { .. } if !unsupported => {}
            e => panic!("{sched}: {e}"),
        }
    }
    // A deadline triple the kernel refuses (runtime > deadline) fails in the child's step.
    let mut v = f.spec_json("true");
    v["process"]["scheduler"] = json!({
        "policy": "SCHED_DEADLINE", "runtime": 20_000_000, "deadline": 10_000_000, "period": 30_000_000
    });
    match f.create(&v, Options::new()).unwrap_err() {
        Error::Child { step, source, .. } => {
            assert_eq!(step, "sched_setattr");
            assert_eq!(source.raw_os_error(), Some(libc::EINVAL));
        }
        e => panic!("{e}"),
    }
}

#[test]
fn io_priority_classes() {
    let f = Fixture::new("ioprio");
    for (class, level, expect) in [
        ("IOPRIO_CLASS_IDLE", 0, 3 << 13),
        ("IOPRIO_CLASS_BE", 6, (2 << 13) | 6),
        ("IOPRIO_CLASS_RT", 2, (1 << 13) | 2),
    ] {
        let c = running(&f, |v| {
            v["process"]["ioPriority"] = json!({"class": class, "priority": level});
        })
        .unwrap();
        assert_eq!(ioprio_get(c.pid()), expect, "{class} {level}");
        c.delete().unwrap();
    }
    let mut v = f.spec_json("true");
    v["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 8});
    assert!(matches!(
        f.create(&v, Options::new()).unwrap_err(),
        Error::InvalidConfig { .. }
    ));
}

#[test]
fn personality_linux32_and_flags_refused() {
    let f = Fixture::new("persona");
    let c = running(&f, |v| {
        v["linux"]["personality"] = json!({"domain": "LINUX32"});
    })
    .unwrap();
    let p = std::fs::read_to_string(format!("/proc/{}/personality", c.pid())).unwrap();
    assert_eq!(u64::from_str_radix(p.trim(), 16).unwrap(), 8, "PER_LINUX32");
    c.delete().unwrap();

    // uname -m inside says a 32-bit machine (config-linux.md "Personality").
    let mut v = f.spec_json("busybox uname -m > /out/m");
    v["linux"]["personality"] = json!({"domain": "LINUX32", "flags": []});
    f.run(&v);
    let m = f.out("m");
    if cfg!(target_arch = "x86_64") {
        assert_eq!(m.trim(), "i686");
    }

    let mut v = f.spec_json("true");
    v["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]});
    assert!(matches!(
        f.create(&v, Options::new()).unwrap_err(),
        Error::Unsupported {
            field: "linux.personality.flags"
        }
    ));
}

#[test]
fn exec_takes_the_personality_and_the_process_scheduler() {
    let f = Fixture::new("persona-exec");
    let c = running(&f, |_| {}).unwrap();
    let p: oci_spec::runtime::Process = serde_json::from_value(json!({
        "args": ["sh", "-c", "busybox uname -m > /out/e; cat /proc/self/personality > /out/p"],
        "env": ["PATH=/bin"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "scheduler": {"policy": "SCHED_IDLE"}
    }))
    .unwrap();
    let persona: oci_spec::runtime::LinuxPersonality =
        serde_json::from_value(json!({"domain": "LINUX32"})).unwrap();
    let mut e = Sandbox::exec(c.pid(), &p, ExecOptions::new().personality(Some(&persona))).unwrap();
    // SCHED_IDLE = 5, set before exec.
    assert_eq!(stat_field(e.pid(), 41), 5);
    e.wait().unwrap();
    assert_eq!(u64::from_str_radix(f.out("p").trim(), 16).unwrap(), 8);
    if cfg!(target_arch = "x86_64") {
        assert_eq!(f.out("e").trim(), "i686");
    }
    c.delete().unwrap();
}
