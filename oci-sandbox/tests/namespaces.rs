//! Namespaces joined by path, and the time namespace with offsets (config-linux.md
//! "Namespaces", "Offset for Time Namespace"), on real containers.

mod common;

use common::Fixture;
use oci_sandbox::{ExitStatus, Options};
use serde_json::json;

#[test]
fn a_container_joins_another_ones_namespaces_by_path() {
    // A holds its namespaces open; B joins A's network and UTS namespaces by path and sees
    // A's hostname and A's network devices (a dummy name set in A is visible in B).
    let a = Fixture::new("nsowner");
    let mut va = a.spec_json("sleep 1000");
    va["hostname"] = json!("owner-host");
    let mut ca = a.create(&va, Options::new()).unwrap();
    ca.start().unwrap();
    let pid = ca.pid();

    let b = Fixture::new("nsjoiner");
    let mut vb = b.spec_json("hostname > /out/host; readlink /proc/self/ns/net > /out/net; readlink /proc/self/ns/uts > /out/uts");
    vb["hostname"] = serde_json::Value::Null;
    vb["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
        {"type": "uts", "path": format!("/proc/{pid}/ns/uts")},
        {"type": "network", "path": format!("/proc/{pid}/ns/net")}
    ]);
    assert_eq!(b.run(&vb), ExitStatus::Exited(0));
    assert_eq!(b.out("host").trim(), "owner-host");
    let owner_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let owner_uts = std::fs::read_link(format!("/proc/{pid}/ns/uts")).unwrap();
    assert_eq!(b.out("net").trim(), owner_net.to_str().unwrap());
    assert_eq!(b.out("uts").trim(), owner_uts.to_str().unwrap());
    ca.delete().unwrap();

    // A path that is not a namespace of that type is an error, and nothing is left behind.
    let c = Fixture::new("nsbad");
    let mut vc = c.spec_json("true");
    vc["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "mount"},
        {"type": "network", "path": "/proc/self/ns/uts"}
    ]);
    assert!(c.create(&vc, Options::new()).is_err());
}

#[test]
fn time_namespace_offsets_shift_the_container_clocks() {
    let f = Fixture::new("timens");
    let mut v = f.spec_json("cut -d' ' -f1 /proc/uptime > /out/uptime");
    let mut ns = v["linux"]["namespaces"].as_array().unwrap().clone();
    ns.push(json!({"type": "time"}));
    v["linux"]["namespaces"] = json!(ns);
    // Ten days ahead on CLOCK_BOOTTIME, which /proc/uptime reads.
    v["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
    assert_eq!(f.run(&v), ExitStatus::Exited(0));
    let inside: f64 = f.out("uptime").trim().parse().unwrap();
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(inside > host + 863000.0, "inside {inside}, host {host}");
}
