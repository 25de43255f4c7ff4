//! Sysctls, hostname and domainname never reach the host's namespaces (issue 17, item 2).
//!
//! config-linux.md "Sysctl": "allows kernel parameters to be modified at runtime for the
//! container". A namespaced sysctl is the container's only when the namespace that owns it is
//! the container's: new, or joined by a path that is not the runtime's own namespace. A config
//! joining the host's network, UTS or IPC namespace by path (`/proc/1/ns/net` from a host
//! shell; here `/proc/<this test's pid>/ns/net`, pid 1 of this machine being out of reach) and
//! setting one of their sysctls would change the host: it is refused, with the host's value
//! unchanged.

mod common;

use common::Fixture;
use oci_sandbox::{Error, Options};
use serde_json::{json, Value};

fn sysctl(key: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{}", key.replace('.', "/")))
        .unwrap()
        .trim()
        .to_string()
}

/// The host's namespace `name` by a path that is not /proc/self.
fn host_ns(name: &str) -> String {
    format!("/proc/{}/ns/{name}", std::process::id())
}

/// The fixture's config with namespace `typ` joined from `path` instead of created.
fn joining(f: &Fixture, typ: &str, path: &str) -> Value {
    let mut v = f.spec_json("true");
    for ns in v["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == typ {
            ns["path"] = json!(path);
        }
    }
    v
}

/// A value different from the current one, so that a write would show.
fn other_than(current: &str) -> String {
    let n: u64 = current.split_whitespace().next().unwrap().parse().unwrap();
    (n + 1).to_string()
}

/// Creating `v` is refused for `field`, naming `words`; the host's values of `keys` are what
/// they were.
fn refused(f: &Fixture, v: &Value, field: &str, words: &[&str], keys: &[&str]) {
    let before: Vec<String> = keys.iter().map(|k| sysctl(k)).collect();
    let e = f.create(v, Options::new()).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(&e, Error::InvalidConfig { field: fl, .. } if *fl == field),
        "{msg}"
    );
    for w in words {
        assert!(msg.contains(w), "{w:?} not in: {msg}");
    }
    let after: Vec<String> = keys.iter().map(|k| sysctl(k)).collect();
    assert_eq!(before, after, "the host's values changed");
}

#[test]
fn a_net_sysctl_into_the_hosts_network_namespace_is_refused() {
    let f = Fixture::new("hostnet");
    let key = "net.ipv4.tcp_keepalive_time";
    let mut v = joining(&f, "network", &host_ns("net"));
    v["linux"]["sysctl"] = json!({ key: other_than(&sysctl(key)) });
    refused(
        &f,
        &v,
        "linux.sysctl",
        &[key, "net namespace", &host_ns("net"), "the runtime's own"],
        &[key],
    );
    // The same through this process's own path: the identity counts, not the path.
    let mut v = joining(&f, "network", "/proc/self/ns/net");
    v["linux"]["sysctl"] = json!({ key: other_than(&sysctl(key)) });
    refused(&f, &v, "linux.sysctl", &["/proc/self/ns/net"], &[key]);
    // Without a network namespace in the list, the container would share the runtime's.
    let mut v = f.spec_json("true");
    v["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}]);
    v.as_object_mut().unwrap().remove("hostname");
    v["linux"]["sysctl"] = json!({ key: other_than(&sysctl(key)) });
    refused(&f, &v, "linux.sysctl", &["no net namespace"], &[key]);
}

/// A namespace joined by path that is not the runtime's is the container's: the sysctl goes
/// there, and the host's value stays.
#[test]
fn a_net_sysctl_into_a_joined_namespace_of_another_is_applied_there() {
    let f = Fixture::new("othernet");
    let key = "net.ipv4.tcp_keepalive_time";
    let mut holder = std::process::Command::new("unshare")
        .args(["--net", "sleep", "1000"])
        .spawn()
        .unwrap();
    let path = format!("/proc/{}/ns/net", holder.id());
    // unshare(1) enters the namespace before it execs sleep.
    while std::fs::read_link(&path).ok() == std::fs::read_link("/proc/self/ns/net").ok() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let host = sysctl(key);
    let mut v = joining(&f, "network", &path);
    let want = other_than(&host);
    v["linux"]["sysctl"] = json!({ key: want });
    v["process"]["args"] = json!([
        "sh",
        "-c",
        format!("cat /proc/sys/{} > /out/v", key.replace('.', "/"))
    ]);
    let status = f.run(&v);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(status, oci_sandbox::ExitStatus::Exited(0));
    assert_eq!(f.out("v").trim(), want);
    assert_eq!(sysctl(key), host);
}

#[test]
fn uts_sysctls_hostname_and_domainname_into_the_hosts_uts_namespace_are_refused() {
    let f = Fixture::new("hostuts");
    let keys = ["kernel.hostname", "kernel.domainname"];
    for key in keys {
        let mut v = joining(&f, "uts", &host_ns("uts"));
        v.as_object_mut().unwrap().remove("hostname");
        v["linux"]["sysctl"] = json!({ key: "pwned" });
        refused(
            &f,
            &v,
            "linux.sysctl",
            &[key, "uts namespace", &host_ns("uts")],
            &keys,
        );
    }
    // config.md "Hostname" / "Domainname" through the host's UTS namespace.
    let mut v = joining(&f, "uts", &host_ns("uts"));
    v["hostname"] = json!("pwned");
    refused(&f, &v, "hostname", &["host's", &host_ns("uts")], &keys);
    let mut v = joining(&f, "uts", &host_ns("uts"));
    v.as_object_mut().unwrap().remove("hostname");
    v["domainname"] = json!("pwned");
    refused(&f, &v, "domainname", &["host's", &host_ns("uts")], &keys);
}

/// runc 1.1 writes these into the host's IPC namespace: refused here.
#[test]
fn ipc_sysctls_into_the_hosts_ipc_namespace_are_refused() {
    let f = Fixture::new("hostipc");
    let keys = [
        "kernel.shmmax",
        "kernel.shmall",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "fs.mqueue.msg_max",
        "fs.mqueue.queues_max",
    ];
    for key in keys {
        let mut v = joining(&f, "ipc", &host_ns("ipc"));
        let value = if key == "kernel.sem" {
            "251 32000 32 129".to_string()
        } else {
            other_than(&sysctl(key))
        };
        v["linux"]["sysctl"] = json!({ key: value });
        refused(
            &f,
            &v,
            "linux.sysctl",
            &[key, "ipc namespace", &host_ns("ipc")],
            &keys,
        );
    }
}
