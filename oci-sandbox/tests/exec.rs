//! Exec into a running container (runc exec).
mod common;

use common::{leak_fd, Fixture};
use oci_sandbox::{Container, Error, ExecOptions, ExitStatus, Options, Sandbox};
use oci_spec::runtime::Process;
use serde_json::json;

fn process(script: &str) -> serde_json::Value {
    json!({
        "args": ["sh", "-c", script],
        "env": ["PATH=/bin"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0}
    })
}

fn proc_of(v: &serde_json::Value) -> Process {
    serde_json::from_value(v.clone()).unwrap()
}

/// A running `sleep 1000` container with its own cgroup.
fn running(f: &Fixture) -> Container {
    let mut v = f.spec_json("sleep 1000");
    v["linux"]["cgroupsPath"] = json!(common::unique("exec"));
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "cgroup"}));
    let mut c = f.create(&v, Options::new()).unwrap();
    c.start().unwrap();
    c
}

fn exec(c: &Container, p: &serde_json::Value) -> oci_sandbox::Result<oci_sandbox::Exec> {
    Sandbox::exec(
        c.pid(),
        &proc_of(p),
        ExecOptions::new().cgroup(c.cgroup().unwrap()),
    )
}

#[test]
fn exec_joins_every_namespace_and_the_cgroup() {
    let f = Fixture::new("exec");
    let c = running(&f);
    let mut p = process(
        "cat /proc/self/cgroup > /out/cg; hostname > /out/host; id > /out/id; echo $$ > /out/pid; \
         ps -o pid,args > /out/ps; for n in mnt pid net ipc uts cgroup; do readlink /proc/self/ns/$n; done > /out/ns",
    );
    p["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [7]});
    p["env"] = json!(["PATH=/bin", "HELLO=exec"]);
    let mut e = exec(&c, &p).unwrap();
    assert_eq!(e.wait().unwrap(), ExitStatus::Exited(0));
    assert_eq!(f.out("host").trim(), "sandbox");
    assert_eq!(f.out("id").trim(), "uid=1000 gid=1001 groups=7");
    // In the container's pid namespace: a small pid there, not the one we see.
    let inner: i32 = f.out("pid").trim().parse().unwrap();
    assert!(inner > 1 && inner != e.pid(), "{inner} vs {}", e.pid());
    let ps = f.out("ps");
    assert!(
        ps.lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("sleep 1000")),
        "{ps}"
    );
    // The container's namespaces, all of them.
    let ns: Vec<String> = f.out("ns").lines().map(String::from).collect();
    for (i, n) in ["mnt", "pid", "net", "ipc", "uts", "cgroup"]
        .iter()
        .enumerate()
    {
        let theirs = std::fs::read_link(format!("/proc/{}/ns/{n}", c.pid())).unwrap();
        assert_eq!(ns[i], theirs.to_str().unwrap(), "{n}");
    }
    // In the container's cgroup: at the root of its cgroup namespace in every hierarchy.
    let cg = f.out("cg");
    assert!(cg.lines().all(|l| l.ends_with(":/")), "{cg}");
    c.delete().unwrap();
}

#[test]
fn exec_exit_code_and_missing_program() {
    let f = Fixture::new("execrc");
    let c = running(&f);
    let mut e = exec(&c, &process("exit 42")).unwrap();
    assert_eq!(e.wait().unwrap(), ExitStatus::Exited(42));
    let mut p = process("");
    p["args"] = json!(["no-such-program"]);
    let err = exec(&c, &p).unwrap_err();
    // runc's words (Go's exec.LookPath), which engines match.
    assert!(
        matches!(&err, Error::Executable { name, searched: true, .. } if name == "no-such-program"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "exec: \"no-such-program\": executable file not found in $PATH"
    );
    c.delete().unwrap();
}

#[test]
fn exec_sees_no_host_fd_cve_2024_21626() {
    let f = Fixture::new("execfd");
    let c = running(&f);
    leak_fd("/etc", 210);
    let mut e = exec(
        &c,
        &process(
            "ls /proc/self/fd > /out/fds; test -e /proc/self/fd/210 && echo LEAK > /out/leak; true",
        ),
    )
    .unwrap();
    assert_eq!(e.wait().unwrap(), ExitStatus::Exited(0));
    assert!(!f.out.join("leak").exists());
    let fds: Vec<i32> = f
        .out("fds")
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(fds.iter().all(|&fd| fd <= 3), "fds seen inside: {fds:?}");
    // A cwd through a leaked fd is outside the container's root: refused.
    leak_fd("/etc", 211);
    let mut p = process("pwd > /out/cwd");
    p["cwd"] = json!("/proc/self/fd/211");
    let err = exec(&c, &p).unwrap_err();
    assert!(
        matches!(&err, Error::Child { step, .. } if step.contains("cwd")),
        "{err}"
    );
    assert!(!f.out.join("cwd").exists());
    c.delete().unwrap();
}

#[test]
fn exec_with_a_terminal() {
    let f = Fixture::new("exectty");
    let c = running(&f);
    let mut p = process("tty; echo from-exec");
    p["terminal"] = json!(true);
    let mut e = exec(&c, &p).unwrap();
    let master = e.take_console().expect("pty master");
    assert_eq!(e.wait().unwrap(), ExitStatus::Exited(0));
    let text = common::read_console(master);
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(
        lines.len() == 2 && lines[0].starts_with("/dev/pts/"),
        "{text:?}"
    );
    assert_eq!(lines[1], "from-exec");
    c.delete().unwrap();
}

#[test]
fn exec_applies_capabilities_and_no_new_privs() {
    let f = Fixture::new("execcaps");
    let c = running(&f);
    let mut p = process("cat /proc/self/status > /out/status");
    p["noNewPrivileges"] = json!(true);
    p["capabilities"] =
        json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]});
    let mut e = exec(&c, &p).unwrap();
    assert_eq!(e.wait().unwrap(), ExitStatus::Exited(0));
    let s = f.out("status");
    assert_eq!(common::status_field(&s, "NoNewPrivs"), "1");
    assert_eq!(
        common::status_field(&s, "CapEff"),
        format!("{:016x}", 1u64 << 5)
    );
    assert_eq!(
        common::status_field(&s, "CapBnd"),
        format!("{:016x}", 1u64 << 5)
    );
    c.delete().unwrap();
}

#[test]
fn exec_installs_the_container_seccomp_and_refuses_missing_lsm() {
    let f = Fixture::new("execsec");
    let c = running(&f);
    let profile: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    }))
    .unwrap();
    let opts = ExecOptions::new()
        .cgroup(c.cgroup().unwrap())
        .seccomp(Some(&profile));
    let p = process("mkdir /tmp/x 2> /out/err; echo $? > /out/rc");
    let mut e = Sandbox::exec(c.pid(), &proc_of(&p), opts).unwrap();
    assert_eq!(e.wait().unwrap(), ExitStatus::Exited(0));
    assert_eq!(f.out("rc").trim(), "1");
    assert!(
        f.out("err").contains("Operation not permitted"),
        "{}",
        f.out("err")
    );
    let mut p = process("true");
    p["apparmorProfile"] = json!("docker-default");
    assert!(matches!(
        exec(&c, &p).unwrap_err(),
        Error::LsmUnavailable { .. } | Error::Unsupported { .. }
    ));
    c.delete().unwrap();
}
