//! `linux.resources` through runc and ocirun side by side: the same config is created by each
//! (and then updated with the same input, as `docker update` and containerd send it), and the
//! cgroup v1 files each leaves are read back and compared, with whether each command succeeded.
//!
//! config-linux.md, "Control groups": "You can configure a container's cgroups via the
//! `resources` field of the Linux configuration." Engines send every field, unset ones as 0
//! (Docker's `"blockIO": {"weight": 0}`, `"cpu": {"shares": 0}`, `"memory": {"kernel": 0}`), and
//! runc reads those zeros as "not set"; so must a runtime that takes runc's place. The cases
//! cover zeros, absent fields, files this kernel lacks (CFQ's `blkio.weight` and
//! `blkio.leaf_weight`: only `blkio.bfq.*` and `blkio.throttle.*` are left), values the
//! kernel refuses, and generated combinations.

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

const RUNC: &str = "/usr/sbin/runc";
const OCIRUN: &str = env!("CARGO_BIN_EXE_ocirun");
const MI: i64 = 1 << 20;

/// The files compared, per v1 hierarchy. `memory.oom_control` is reduced to its flag.
const FILES: &[(&str, &str)] = &[
    ("memory", "memory.limit_in_bytes"),
    ("memory", "memory.soft_limit_in_bytes"),
    ("memory", "memory.memsw.limit_in_bytes"),
    ("memory", "memory.swappiness"),
    ("memory", "memory.oom_control"),
    ("memory", "memory.kmem.limit_in_bytes"),
    ("cpu", "cpu.shares"),
    ("cpu", "cpu.cfs_period_us"),
    ("cpu", "cpu.cfs_quota_us"),
    ("cpu", "cpu.rt_period_us"),
    ("cpu", "cpu.rt_runtime_us"),
    ("cpuset", "cpuset.cpus"),
    ("cpuset", "cpuset.mems"),
    ("pids", "pids.max"),
    ("blkio", "blkio.bfq.weight"),
    ("blkio", "blkio.bfq.weight_device"),
    ("blkio", "blkio.throttle.read_bps_device"),
    ("blkio", "blkio.throttle.write_iops_device"),
];

/// The block device the throttle cases name: the one holding this test's files.
fn block_device() -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata("/sys/dev/block").ok().and_then(|_| {
        // The whole disk under the root filesystem (a partition's parent, if any).
        let d = std::fs::metadata("/").unwrap().dev();
        let (ma, mi) = (libc::major(d), libc::minor(d));
        let link = std::fs::canonicalize(format!("/sys/dev/block/{ma}:{mi}")).ok()?;
        let disk = if link.join("partition").exists() {
            link.parent()?.to_path_buf()
        } else {
            link
        };
        let t = std::fs::read_to_string(disk.join("dev")).ok()?;
        let (a, b) = t.trim().split_once(':')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    });
    dev.unwrap_or((1, 3))
}

/// What one runtime did with a case: each step's success and the files after each step.
#[derive(Debug, PartialEq)]
struct Outcome {
    steps: Vec<(String, bool, BTreeMap<String, String>)>,
}

/// A created container (`sleep`) whose cgroup is read; deleted on drop.
struct Container<'a> {
    rt: &'a str,
    dir: tempfile::TempDir,
    id: String,
}

impl<'a> Container<'a> {
    fn new(rt: &'a str, name: &str, resources: &Value) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ocirun-res-")
            .tempdir()
            .unwrap();
        let short = if rt == RUNC { "runc" } else { "ocirun" };
        let id = format!("res-{name}-{short}-{}", std::process::id());
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "dev", "proc", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("busybox-static (./scripts/test installs it)");
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sleep")).unwrap();
        let mut spec = serde_json::to_value(oci_runtime::default_spec().unwrap()).unwrap();
        spec["process"]["args"] = json!(["sleep", "1000"]);
        spec["process"]["terminal"] = json!(false);
        spec["linux"]["cgroupsPath"] = json!(format!("/ocirun-res/{id}"));
        let devices = spec["linux"]["resources"]["devices"].clone();
        let mut res = resources.clone();
        if res.is_object() && !devices.is_null() {
            res["devices"] = devices;
        }
        spec["linux"]["resources"] = res;
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_vec(&spec).unwrap(),
        )
        .unwrap();
        Container { rt, dir, id }
    }

    /// Runs the runtime with its output in files (a created container inherits them).
    fn run(&self, args: &[&str], stdin: Option<&Value>) -> (bool, String) {
        let input = self.dir.path().join("input.json");
        let mut cmd = Command::new(self.rt);
        cmd.arg("--root")
            .arg(self.dir.path().join("state"))
            .args(args);
        if let Some(v) = stdin {
            std::fs::write(&input, serde_json::to_vec(v).unwrap()).unwrap();
            cmd.stdin(std::fs::File::open(&input).unwrap());
        } else {
            cmd.stdin(Stdio::null());
        }
        let err = self.dir.path().join("stderr");
        let status = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        (
            status.success(),
            std::fs::read_to_string(&err).unwrap_or_default(),
        )
    }

    fn create(&self) -> (bool, String) {
        let b = self.dir.path().to_str().unwrap().to_string();
        self.run(&["create", "--bundle", &b, &self.id], None)
    }

    fn update(&self, resources: &Value) -> (bool, String) {
        self.run(&["update", "--resources", "-", &self.id], Some(resources))
    }

    fn files(&self) -> BTreeMap<String, String> {
        FILES
            .iter()
            .map(|(ctrl, f)| {
                let p = format!("/sys/fs/cgroup/{ctrl}/ocirun-res/{}/{f}", self.id);
                let v = match std::fs::read_to_string(&p) {
                    Ok(t) if *f == "memory.oom_control" => t.lines().next().unwrap_or("").into(),
                    Ok(t) => t.trim().to_string(),
                    Err(_) => "(absent)".into(),
                };
                (f.to_string(), v)
            })
            .collect()
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["delete", "--force", &self.id], None);
    }
}

/// Creates `create` with both runtimes, applies each update in turn, and returns every
/// difference between runc's outcome and ocirun's as "case: step: what".
fn differences(name: &str, create: &Value, updates: &[Value]) -> BTreeSet<String> {
    compare(name, create, updates).0
}

/// runc's outcome of a step: whether it succeeded, and the file `f` after it.
fn runc_step(o: &Outcome, step: usize, f: &str) -> (bool, String) {
    let (_, ok, files) = &o.steps[step];
    (*ok, files[f].clone())
}

/// [`differences`], and runc's own outcome (to check that a case tests what it says).
fn compare(name: &str, create: &Value, updates: &[Value]) -> (BTreeSet<String>, Outcome) {
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut errors = Vec::new();
    for rt in [RUNC, OCIRUN] {
        let c = Container::new(rt, name, create);
        let mut steps = Vec::new();
        let (ok, err) = c.create();
        errors.push(err);
        steps.push(("create".to_string(), ok, c.files()));
        if ok {
            for (i, u) in updates.iter().enumerate() {
                let (ok, err) = c.update(u);
                errors.push(err);
                steps.push((format!("update {i}"), ok, c.files()));
            }
        }
        outcomes.push(Outcome { steps });
    }
    let mut d = BTreeSet::new();
    let (runc, ours) = (&outcomes[0].steps, &outcomes[1].steps);
    if runc.len() != ours.len() {
        d.insert(format!(
            "{name}: runc took {} steps, ocirun {} ({errors:?})",
            runc.len(),
            ours.len()
        ));
    }
    for ((step, r_ok, r_files), (_, o_ok, o_files)) in runc.iter().zip(ours) {
        if r_ok != o_ok {
            d.insert(format!(
                "{name}: {step}: runc succeeded {r_ok}, ocirun {o_ok} ({errors:?})"
            ));
        }
        for (f, rv) in r_files {
            let ov = &o_files[f];
            if rv != ov {
                d.insert(format!("{name}: {step}: {f}: runc {rv:?} ocirun {ov:?}"));
            }
        }
    }
    let runc = outcomes.swap_remove(0);
    (d, runc)
}

fn assert_same(d: BTreeSet<String>) {
    assert!(d.is_empty(), "differences from runc:\n{}", {
        let v: Vec<String> = d.into_iter().collect();
        v.join("\n")
    });
}

/// What Docker 20.10 writes for `docker run` with no limit: every field present, unset ones
/// as 0.
fn docker_unset() -> Value {
    json!({
        "memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0},
        "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0,
                "realtimePeriod": 0, "cpus": "", "mems": ""},
        "pids": {"limit": 0},
        "blockIO": {"weight": 0, "leafWeight": 0, "weightDevice": [{"major": 1, "minor": 3, "weight": 0}]},
        "network": {"classID": 0}
    })
}

/// `docker update`'s input (daemon `toContainerdResources`): memory limit, reservation and
/// kernel always (0 when not given), swap only when positive, cpu shares, period, quota,
/// cpus and mems always, blockIO only with a weight, pids always.
fn docker_update(edit: &dyn Fn(&mut Value)) -> Value {
    let mut v = json!({
        "memory": {"limit": 0, "reservation": 0, "kernel": 0},
        "cpu": {"shares": 0, "period": 0, "quota": 0, "cpus": "", "mems": ""},
        "pids": {"limit": 0}
    });
    edit(&mut v);
    v
}

/// A container with limits in place, to be updated.
fn limited() -> Value {
    json!({
        "memory": {"limit": 128 * MI, "reservation": 64 * MI, "swap": 256 * MI},
        "cpu": {"shares": 512, "period": 100000, "quota": 50000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 100},
        "blockIO": {"weight": 200}
    })
}

#[test]
fn zeros_and_absent_fields_are_not_set() {
    let (mut d, runc) = compare("docker-zeros", &docker_unset(), &[]);
    // The kernel's defaults, untouched: shares 1024 (not 2), weight 100, no pids limit.
    assert_eq!(runc_step(&runc, 0, "cpu.shares"), (true, "1024".into()));
    assert_eq!(
        runc_step(&runc, 0, "blkio.bfq.weight"),
        (true, "100".into())
    );
    assert_eq!(runc_step(&runc, 0, "pids.max"), (true, "max".into()));
    d.extend(differences("none", &json!(null), &[]));
    d.extend(differences("empty", &json!({}), &[]));
    d.extend(differences(
        "empty-parts",
        &json!({"memory": {}, "cpu": {}, "blockIO": {}}),
        &[],
    ));
    // Docker's "unset" swappiness (-1) arrives as 2^64-1; an unlimited memory with no swap
    // makes memory+swap unlimited too (runc).
    d.extend(differences(
        "unlimited",
        &json!({"memory": {"limit": -1, "swappiness": u64::MAX}, "pids": {"limit": -1}}),
        &[],
    ));
    d.extend(differences(
        "zeros-with-values",
        &json!({"memory": {"limit": 64 * MI, "swap": 0, "reservation": 0, "kernel": 0},
                "cpu": {"shares": 0, "quota": 30000, "period": 0, "cpus": ""},
                "blockIO": {"weight": 0}, "pids": {"limit": 0}}),
        &[],
    ));
    assert_same(d);
}

/// "runc writes the blkio weight to blkio.bfq.weight when blkio.weight is absent": with CFQ
/// gone, this kernel's v1 blkio has only `blkio.bfq.*` and `blkio.throttle.*`.
#[test]
fn block_io_on_a_kernel_without_cfq() {
    let (ma, mi) = block_device();
    let mut d = BTreeSet::new();
    for (name, r) in [
        ("weight", json!({"blockIO": {"weight": 300}})),
        ("weight-min", json!({"blockIO": {"weight": 10}})),
        ("weight-max", json!({"blockIO": {"weight": 1000}})),
        ("weight-too-big", json!({"blockIO": {"weight": 1001}})),
        // CFQ's leaf weights have no file on this kernel: both refuse.
        ("leaf", json!({"blockIO": {"leafWeight": 500}})),
        (
            "leaf-device",
            json!({"blockIO": {"weightDevice": [{"major": ma, "minor": mi, "leafWeight": 500}]}}),
        ),
        (
            "throttle",
            json!({"blockIO": {"throttleReadBpsDevice": [{"major": ma, "minor": mi, "rate": 1048576}],
                               "throttleWriteIOPSDevice": [{"major": ma, "minor": mi, "rate": 100}]}}),
        ),
        (
            "throttle-zero",
            json!({"blockIO": {"throttleReadBpsDevice": [{"major": ma, "minor": mi, "rate": 0}]}}),
        ),
    ] {
        let (diff, runc) = compare(name, &r, &[]);
        d.extend(diff);
        match name {
            "weight" => assert_eq!(
                runc_step(&runc, 0, "blkio.bfq.weight"),
                (true, "300".into())
            ),
            "leaf" => assert!(!runc.steps[0].1, "runc has no blkio.leaf_weight to write"),
            _ => {}
        }
    }
    assert_same(d);
}

/// Values the kernel refuses or that have no controller here fail in both.
#[test]
fn refused_values_fail_in_both() {
    let mut d = BTreeSet::new();
    for (name, r) in [
        ("shares-1", json!({"cpu": {"shares": 1}})),
        (
            "period-small",
            json!({"cpu": {"period": 500, "quota": 1000}}),
        ),
        ("quota-small", json!({"cpu": {"quota": 10}})),
        (
            "swap-below-limit",
            json!({"memory": {"limit": 128 * MI, "swap": 64 * MI}}),
        ),
        ("swappiness-101", json!({"memory": {"swappiness": 101}})),
        ("cpus-absent", json!({"cpu": {"cpus": "0-1023"}})),
        ("cpus-garbage", json!({"cpu": {"cpus": "zero"}})),
        (
            "rt",
            json!({"cpu": {"realtimePeriod": 1000000, "realtimeRuntime": 950000}}),
        ),
        ("classid", json!({"network": {"classID": 5}})),
    ] {
        d.extend(differences(name, &r, &[]));
    }
    assert_same(d);
}

/// A kernel memory limit: runc 1.1 accepts it and ignores it with a warning; this kernel
/// (6.x) also accepts the write and ignores it. ocirun refuses a limit that would not hold
/// (DESIGN: "A config that asks for something the kernel lacks is an error, not a silent
/// skip"). A zero is "not set" in both.
#[test]
fn kernel_memory_is_refused_deliberately() {
    let d = differences(
        "kmem",
        &json!({"memory": {"limit": 64 * MI, "kernel": 32 * MI}}),
        &[],
    );
    let want: BTreeSet<String> = d
        .iter()
        .filter(|l| l.starts_with("kmem: create: runc succeeded true, ocirun false"))
        .cloned()
        .collect();
    assert_eq!(want.len(), 1, "{d:#?}");
    // Only that: the files compared are those of a runc container against none.
    assert!(d.iter().all(|l| l.starts_with("kmem: create:")), "{d:#?}");
}

/// Tiny deterministic generator (xorshift), so that a failure names a reproducible case.
struct Gen(u64);

impl Gen {
    fn pick<T: Clone>(&mut self, v: &[T]) -> T {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        v[(self.0 % v.len() as u64) as usize].clone()
    }
}

/// Sets `v[a][b]` unless `x` is `None` (the field absent).
fn put(v: &mut Value, a: &str, b: &str, x: Option<Value>) {
    if let Some(x) = x {
        v[a][b] = x;
    }
}

#[test]
fn generated_combinations_on_create() {
    let mut g = Gen(0x0c1_2014);
    let (ma, mi) = block_device();
    let mut d = BTreeSet::new();
    let mut created = 0;
    for i in 0..14 {
        let mut r = json!({});
        let n = |x: i64| Some(json!(x));
        put(
            &mut r,
            "memory",
            "limit",
            g.pick(&[None, n(0), n(-1), n(64 * MI), n(128 * MI)]),
        );
        put(
            &mut r,
            "memory",
            "reservation",
            g.pick(&[None, n(0), n(32 * MI)]),
        );
        put(
            &mut r,
            "memory",
            "swap",
            g.pick(&[None, n(0), n(-1), n(256 * MI)]),
        );
        put(&mut r, "memory", "swappiness", g.pick(&[None, n(0), n(60)]));
        put(&mut r, "memory", "kernel", g.pick(&[None, n(0)]));
        put(
            &mut r,
            "memory",
            "disableOOMKiller",
            g.pick(&[None, Some(json!(false)), Some(json!(true))]),
        );
        put(
            &mut r,
            "cpu",
            "shares",
            g.pick(&[None, n(0), n(2), n(512), n(262144)]),
        );
        put(
            &mut r,
            "cpu",
            "quota",
            g.pick(&[None, n(0), n(-1), n(50000)]),
        );
        put(
            &mut r,
            "cpu",
            "period",
            g.pick(&[None, n(0), n(100000), n(250000)]),
        );
        put(
            &mut r,
            "cpu",
            "cpus",
            g.pick(&[None, Some(json!("")), Some(json!("0"))]),
        );
        put(
            &mut r,
            "cpu",
            "mems",
            g.pick(&[None, Some(json!("")), Some(json!("0"))]),
        );
        if let Some(l) = g.pick(&[None, n(0), n(-1), n(100)]) {
            r["pids"] = json!({ "limit": l });
        }
        put(
            &mut r,
            "blockIO",
            "weight",
            g.pick(&[None, n(0), n(10), n(300)]),
        );
        put(
            &mut r,
            "blockIO",
            "throttleReadBpsDevice",
            g.pick(&[
                None,
                Some(json!([{"major": ma, "minor": mi, "rate": 1048576}])),
            ]),
        );
        put(&mut r, "network", "classID", g.pick(&[None, n(0)]));
        eprintln!("gen{i}: {r}");
        let (diff, runc) = compare(&format!("gen{i}"), &r, &[]);
        d.extend(diff);
        created += usize::from(runc.steps[0].1);
        if !d.is_empty() {
            d.insert(format!("gen{i} was {r}"));
            break;
        }
    }
    assert_same(d);
    eprintln!("{created} of 14 created");
    // Most combinations are valid: the comparison is of files, not only of refusals.
    assert!(
        created >= 7,
        "only {created} of 14 generated configs were valid"
    );
}

/// `docker update` (every field, unset ones as 0): zero leaves a value unchanged.
#[test]
fn docker_updates() {
    let updates = [
        // --pids-limit 50
        docker_update(&|v| v["pids"]["limit"] = json!(50)),
        // --memory 200m (below the memory+swap limit)
        docker_update(&|v| v["memory"]["limit"] = json!(200 * MI)),
        // --memory 300m --memory-swap 600m (memory+swap grows first)
        docker_update(&|v| {
            v["memory"]["limit"] = json!(300 * MI);
            v["memory"]["swap"] = json!(600 * MI);
        }),
        // --cpus 1.5
        docker_update(&|v| {
            v["cpu"]["period"] = json!(100000);
            v["cpu"]["quota"] = json!(150000);
        }),
        // --cpu-shares 1024 --blkio-weight 500
        docker_update(&|v| {
            v["cpu"]["shares"] = json!(1024);
            v["blockIO"] = json!({"weight": 500});
        }),
        // --cpu-period 50000 alone: the quota stays
        docker_update(&|v| v["cpu"]["period"] = json!(50000)),
        // --memory-reservation 32m
        docker_update(&|v| v["memory"]["reservation"] = json!(32 * MI)),
        // --memory -1 (unlimited; memory+swap with it)
        docker_update(&|v| v["memory"]["limit"] = json!(-1)),
        // --pids-limit -1
        docker_update(&|v| v["pids"]["limit"] = json!(-1)),
        // nothing at all
        docker_update(&|_| {}),
    ];
    let (d, runc) = compare("docker-update", &limited(), &updates);
    // --pids-limit 50 left the memory limit and the shares as they were.
    assert_eq!(runc_step(&runc, 1, "pids.max"), (true, "50".into()));
    assert_eq!(
        runc_step(&runc, 1, "memory.limit_in_bytes"),
        (true, (128 * MI).to_string())
    );
    assert_eq!(runc_step(&runc, 1, "cpu.shares"), (true, "512".into()));
    // --cpu-period alone left the quota.
    assert_eq!(
        runc_step(&runc, 6, "cpu.cfs_quota_us"),
        (true, "150000".into())
    );
    assert_same(d);
}

/// Updates that fail: a memory limit above memory+swap, shares below the minimum, a cpu
/// that is not there. Nothing may change in either (runc writes the subsystems in turn,
/// cpuset and memory before cpu and pids, and these fail at their first write).
#[test]
fn refused_updates_change_nothing() {
    let updates = [
        docker_update(&|v| {
            v["memory"]["limit"] = json!(512 * MI);
            v["pids"]["limit"] = json!(7);
        }),
        docker_update(&|v| v["cpu"]["cpus"] = json!("0-1023")),
        json!({"memory": {"swap": 64 * MI}}),
        json!({"memory": {"kernel": 0, "limit": 0}, "cpu": {"shares": 0}}),
    ];
    assert_same(differences("refused-update", &limited(), &updates));
}

/// A write that fails after others succeeded: runc leaves the earlier ones (here the cpuset,
/// written before the memory limit); ocirun refuses the whole update before writing, since
/// the memory limit would exceed memory+swap. The one deliberate difference of updates.
#[test]
fn an_update_refused_part_way_changes_nothing() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        // Needs a second cpu to move the cpuset to; every CI machine here has two.
        panic!("this test needs two cpus");
    }
    let update = docker_update(&|v| {
        v["cpu"]["cpus"] = json!("1");
        v["memory"]["limit"] = json!(512 * MI);
    });
    let d = differences("partial", &limited(), &[update]);
    let want: BTreeSet<String> =
        ["partial: update 0: cpuset.cpus: runc \"1\" ocirun \"0\"".to_string()].into();
    assert_eq!(d, want);
}

#[test]
fn generated_docker_updates() {
    let mut g = Gen(0x0c1_2015);
    let mut updates = Vec::new();
    for _ in 0..10 {
        let lim = g.pick(&[0, 64 * MI, 200 * MI]);
        let res = g.pick(&[0, 32 * MI]);
        let swap = g.pick(&[0, 300 * MI, -1]);
        let shares = g.pick(&[0, 1024, 2048]);
        let (period, quota) = g.pick(&[(0, 0), (100000, 150000), (50000, 0), (0, 20000)]);
        let pids = g.pick(&[0, 50, -1]);
        let weight = g.pick(&[0, 500]);
        updates.push(docker_update(&|v| {
            v["memory"]["limit"] = json!(lim);
            v["memory"]["reservation"] = json!(res);
            if swap != 0 {
                v["memory"]["swap"] = json!(swap);
            }
            v["cpu"]["shares"] = json!(shares);
            v["cpu"]["period"] = json!(period);
            v["cpu"]["quota"] = json!(quota);
            v["pids"]["limit"] = json!(pids);
            if weight != 0 {
                v["blockIO"] = json!({ "weight": weight });
            }
        }));
    }
    let (d, runc) = compare("gen-update", &limited(), &updates);
    let applied = runc.steps.iter().filter(|s| s.1).count();
    eprintln!("{applied} of {} steps applied", runc.steps.len());
    assert!(
        applied >= 6,
        "only {applied} of the generated updates were valid"
    );
    if !d.is_empty() {
        panic!(
            "differences from runc:\n{}\nupdates: {updates:#?}",
            d.into_iter().collect::<Vec<_>>().join("\n")
        );
    }
}
