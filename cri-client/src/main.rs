//! The CRI client of `scripts/cri-test`: drives containerd's CRI plugin through the kubelet's
//! sequence once per runtime handler (`runc` first: it is the oracle) and fails unless every
//! step's result with each other handler equals runc's.
//!
//! Each step's result (a CRI response, or the gRPC error) is turned into JSON and normalised:
//! ids, the handler's name and its per-handler paths become placeholders, timestamps become
//! "set" or 0. Some steps also carry an expectation (a substring the normalised result must
//! hold), checked for every handler, so that two equal failures do not pass.
//!
//! The sequence (CRI v1, `runtime.v1.RuntimeService`): Version; Status; RunPodSandbox with the
//! host's network (privileged, with a privileged container), then one with a network namespace
//! of its own (CNI) and sysctls, each followed by PodSandboxStatus; a container with a security
//! context and a device; CreateContainer with a log path and resources; StartContainer;
//! ContainerStatus; ListContainers; ExecSync with a zero and a non-zero exit; Exec through the
//! streaming server (WebSocket, `v4.channel.k8s.io`); ContainerStats; UpdateContainerResources
//! read back from the cgroup files inside the container; a second container that must share
//! the pod's pid, network, IPC and UTS namespaces; a container exiting 3; one killed by its
//! memory limit (OOMKilled, 137); StopContainer with a grace period that the process honours
//! and one it ignores (137); the container logs; RemoveContainer; StopPodSandbox;
//! RemovePodSandbox; then what is left behind: the runtime's state directories, cgroups,
//! mounts, network namespaces, shims, containerd's sandbox and container directories and the
//! CNI results cached for the sandboxes.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerFilter, ContainerMetadata, ContainerState, ContainerStatsRequest,
    ContainerStatusRequest, CreateContainerRequest, ExecRequest, ExecSyncRequest, ImageSpec,
    LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, ListContainersRequest,
    ListContainersResponse, ListPodSandboxRequest, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxFilter, PodSandboxMetadata, PodSandboxStatusRequest,
    RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest,
    StatusRequest, StopContainerRequest, StopPodSandboxRequest, UpdateContainerResourcesRequest,
    VersionRequest,
};
use serde::Serialize;
use serde_json::{json, Value};
use tonic::transport::{Channel, Endpoint, Uri};

type Client = RuntimeServiceClient<Channel>;

/// The command line: `--socket PATH --image REF --pause-image REF --work DIR
/// --cgroup-parent NAME --handlers runc,ocirun`.
struct Args {
    socket: PathBuf,
    image: String,
    work: PathBuf,
    cgroup_parent: String,
    handlers: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut map = BTreeMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        map.insert(flag, value);
    }
    let mut take = |name: &str| {
        map.remove(name)
            .ok_or_else(|| format!("missing {name} (usage: --socket PATH --image REF --pause-image REF --work DIR --cgroup-parent NAME --handlers runc,ocirun)"))
    };
    let args = Args {
        socket: take("--socket")?.into(),
        image: take("--image")?,
        work: take("--work")?.into(),
        cgroup_parent: take("--cgroup-parent")?,
        handlers: take("--handlers")?.split(',').map(str::to_owned).collect(),
    };
    // The pause image is containerd's `sandbox_image`; it is accepted for the record.
    take("--pause-image")?;
    if let Some(extra) = map.keys().next() {
        return Err(format!("unknown flag {extra}"));
    }
    Ok(args)
}

/// One step's normalised result, and what it must hold.
struct Step {
    name: String,
    result: Value,
    expect: Vec<String>,
    /// The whole result it must be, when that is known.
    want: Option<Value>,
}

/// One handler's pass through the sequence.
struct Run<'a> {
    args: &'a Args,
    handler: String,
    client: Client,
    steps: Vec<Step>,
    /// Handler-specific strings and their placeholders, longest first when applied.
    replace: Vec<(String, String)>,
    /// The ids this run created (sandboxes and containers), to look for leftovers.
    ids: Vec<String>,
    /// A call of this run had no answer in time.
    hung: bool,
}

/// How long one CRI call may take: a runtime that hangs makes a step fail, not the test hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long once a call of the run has had no answer: the run has failed already, the rest of
/// the sequence only records how far it gets.
const CALL_TIMEOUT_AFTER_HANG: Duration = Duration::from_secs(5);
/// How long a container may take to reach the state a step waits for.
const STATE_TIMEOUT: Duration = Duration::from_secs(20);

macro_rules! call {
    ($run:expr, $method:ident, $req:expr) => {{
        let mut client = $run.client.clone();
        let limit = if $run.hung {
            CALL_TIMEOUT_AFTER_HANG
        } else {
            CALL_TIMEOUT
        };
        match tokio::time::timeout(limit, client.$method($req)).await {
            Ok(Ok(resp)) => Ok(resp.into_inner()),
            Ok(Err(status)) => Err(format!("error {:?}: {}", status.code(), status.message())),
            Err(_) => {
                $run.hung = true;
                Err(format!("no answer within {} s", limit.as_secs()))
            }
        }
    }};
}

impl<'a> Run<'a> {
    fn new(args: &'a Args, handler: &str, client: Client) -> Self {
        let mut run = Run {
            args,
            handler: handler.to_owned(),
            client,
            steps: Vec::new(),
            replace: Vec::new(),
            ids: Vec::new(),
            hung: false,
        };
        run.alias(&run.log_dir(""), "<logs>");
        run.alias(&format!("cri-test-{handler}"), "cri-test-<handler>");
        run
    }

    fn alias(&mut self, from: &str, to: &str) {
        self.replace.push((from.to_owned(), to.to_owned()));
        self.replace
            .sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    }

    /// Remembers an id made by this run under a stable name.
    fn id(&mut self, id: &str, name: &str) {
        self.alias(id, &format!("<{name}-id>"));
        self.ids.push(id.to_owned());
    }

    fn log_dir(&self, pod: &str) -> String {
        let dir = self.args.work.join("logs").join(&self.handler);
        if pod.is_empty() {
            dir.display().to_string()
        } else {
            dir.join(pod).display().to_string()
        }
    }

    fn normalise(&self, value: Value) -> Value {
        match value {
            Value::String(mut s) => {
                for (from, to) in &self.replace {
                    s = s.replace(from.as_str(), to);
                }
                Value::String(s)
            }
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| self.normalise(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        let v = match k.as_str() {
                            "created_at" | "started_at" | "finished_at" | "timestamp" => {
                                if v.as_i64().unwrap_or(0) != 0 {
                                    json!("set")
                                } else {
                                    json!(0)
                                }
                            }
                            "runtime_handler" if v == json!(self.handler) => json!("<handler>"),
                            _ => self.normalise(v),
                        };
                        (k, v)
                    })
                    .collect(),
            ),
            other => other,
        }
    }

    /// Records a step's result; `expect` lists substrings its normalised JSON must contain.
    fn record<T: Serialize>(&mut self, name: &str, result: &Result<T, String>, expect: &[&str]) {
        let value = match result {
            Ok(v) => {
                serde_json::to_value(v).unwrap_or_else(|e| json!(format!("unserialisable: {e}")))
            }
            Err(e) => json!({ "error": e }),
        };
        let result = self.normalise(value);
        self.steps.push(Step {
            name: name.to_owned(),
            result,
            expect: expect.iter().map(|s| (*s).to_owned()).collect(),
            want: None,
        });
    }

    fn sandbox_config(
        &self,
        name: &str,
        network: NamespaceMode,
        hostname: &str,
    ) -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.to_owned(),
                uid: format!("{name}-uid"),
                namespace: format!("cri-test-{}", self.handler),
                attempt: 0,
            }),
            hostname: hostname.to_owned(),
            log_directory: self.log_dir(name),
            labels: [("pod".to_owned(), name.to_owned())].into(),
            annotations: [("cri-test".to_owned(), "yes".to_owned())].into(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: format!("/{}/{}-{name}", self.args.cgroup_parent, self.handler),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: network as i32,
                        pid: NamespaceMode::Pod as i32,
                        ipc: NamespaceMode::Pod as i32,
                        target_id: String::new(),
                    }),
                    ..Default::default()
                }),
                sysctls: Default::default(),
            }),
            ..Default::default()
        }
    }

    async fn run_pod(
        &mut self,
        name: &str,
        config: &PodSandboxConfig,
        expect: &[&str],
    ) -> Option<String> {
        let res = call!(
            self,
            run_pod_sandbox,
            RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: self.handler.clone()
            }
        );
        let id = res.as_ref().ok().map(|r| r.pod_sandbox_id.clone());
        if let Some(id) = &id {
            self.id(id, name);
        }
        self.record(&format!("RunPodSandbox {name}"), &res, &[]);
        let id = id?;
        let res = call!(
            self,
            pod_sandbox_status,
            PodSandboxStatusRequest {
                pod_sandbox_id: id.clone(),
                verbose: false
            }
        );
        self.record(&format!("PodSandboxStatus {name}"), &res, expect);
        Some(id)
    }

    fn container_config(&self, name: &str, script: &str, memory: i64) -> ContainerConfig {
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.to_owned(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: self.args.image.clone(),
                annotations: Default::default(),
            }),
            command: vec!["sh".into(), "-c".into(), script.into()],
            envs: vec![k8s_cri::v1::KeyValue {
                key: "CRI_TEST".into(),
                value: name.into(),
            }],
            log_path: format!("{name}.log"),
            labels: [("container".to_owned(), name.to_owned())].into(),
            linux: Some(LinuxContainerConfig {
                resources: Some(LinuxContainerResources {
                    memory_limit_in_bytes: memory,
                    cpu_shares: 512,
                    cpu_period: 100_000,
                    cpu_quota: 50_000,
                    ..Default::default()
                }),
                security_context: Some(Default::default()),
            }),
            working_dir: "/tmp".into(),
            ..Default::default()
        }
    }

    /// CreateContainer then StartContainer of [`Run::container_config`]; the id, when created.
    async fn start(
        &mut self,
        pod_id: &str,
        pod: &PodSandboxConfig,
        name: &str,
        script: &str,
        memory: i64,
    ) -> Option<String> {
        let config = self.container_config(name, script, memory);
        self.start_with(pod_id, pod, config).await
    }

    /// CreateContainer then StartContainer; the id, when created.
    async fn start_with(
        &mut self,
        pod_id: &str,
        pod: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> Option<String> {
        let name = config
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let name = name.as_str();
        let res = call!(
            self,
            create_container,
            CreateContainerRequest {
                pod_sandbox_id: pod_id.to_owned(),
                config: Some(config),
                sandbox_config: Some(pod.clone()),
            }
        );
        let id = res.as_ref().ok().map(|r| r.container_id.clone());
        if let Some(id) = &id {
            self.id(id, name);
        }
        self.record(&format!("CreateContainer {name}"), &res, &[]);
        let id = id?;
        let res = call!(
            self,
            start_container,
            StartContainerRequest {
                container_id: id.clone()
            }
        );
        self.record(&format!("StartContainer {name}"), &res, &[]);
        Some(id)
    }

    /// The container's state, polled until it is `want` (at most [`STATE_TIMEOUT`]: a bound,
    /// not a timed assertion; the state is what is compared).
    async fn wait_state(&mut self, id: &str, want: ContainerState) -> i32 {
        let mut state = -1;
        let deadline = tokio::time::Instant::now() + STATE_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            let res = call!(
                self,
                container_status,
                ContainerStatusRequest {
                    container_id: id.to_owned(),
                    verbose: false
                }
            );
            state = res
                .ok()
                .and_then(|r| r.status)
                .map(|s| s.state)
                .unwrap_or(-1);
            if state == want as i32 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        state
    }

    async fn status(&mut self, step: &str, id: &str, expect: &[&str]) {
        let res = call!(
            self,
            container_status,
            ContainerStatusRequest {
                container_id: id.to_owned(),
                verbose: false
            }
        );
        self.record(step, &res, expect);
    }

    /// ListContainers of one pod.
    async fn list_containers(&mut self, pod: &str) -> Result<ListContainersResponse, String> {
        let filter = ContainerFilter {
            pod_sandbox_id: pod.to_owned(),
            ..Default::default()
        };
        call!(
            self,
            list_containers,
            ListContainersRequest {
                filter: Some(filter)
            }
        )
    }

    /// ExecSync of `sh -c SCRIPT`: the exit code, stdout and stderr (as text).
    async fn exec_sync(&mut self, id: &str, script: &str) -> Result<Value, String> {
        let res = call!(
            self,
            exec_sync,
            ExecSyncRequest {
                container_id: id.to_owned(),
                cmd: vec!["sh".into(), "-c".into(), script.into()],
                timeout: 30
            }
        )?;
        Ok(json!({
            "exit_code": res.exit_code,
            "stdout": String::from_utf8_lossy(&res.stdout),
            "stderr": String::from_utf8_lossy(&res.stderr),
        }))
    }

    /// The streaming Exec: the URL from the Exec call, then the WebSocket session on it.
    async fn exec_stream(&mut self, id: &str, script: &str) -> Result<Value, String> {
        let res = call!(
            self,
            exec,
            ExecRequest {
                container_id: id.to_owned(),
                cmd: vec!["sh".into(), "-c".into(), script.into()],
                tty: false,
                stdin: false,
                stdout: true,
                stderr: true,
            }
        )?;
        let url = res.url;
        tokio::task::spawn_blocking(move || websocket_exec(&url))
            .await
            .map_err(|e| format!("exec task: {e}"))?
    }

    /// Everything under the handler's pods that is still there: the runtime's state
    /// directories, cgroups, mounts and shims naming one of this run's ids, network
    /// namespaces, containerd's CRI directories.
    fn leftovers(&self) -> Value {
        let mut left = BTreeMap::<&str, Vec<String>>::new();
        let root = self.args.work.join(format!("{}-root", self.handler));
        left.insert("runtime state", list_tree(&root, 2, false));
        let mut cgroups = Vec::new();
        if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in hierarchies.flatten() {
                for pod in ["host", "net"] {
                    let dir = h
                        .path()
                        .join(&self.args.cgroup_parent)
                        .join(format!("{}-{pod}", self.handler));
                    cgroups.extend(
                        list_tree(&dir, 1, true)
                            .into_iter()
                            .map(|c| format!("{}/{pod}/{c}", h.file_name().to_string_lossy())),
                    );
                }
            }
        }
        left.insert("cgroups", cgroups);
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let work = self.args.work.display().to_string();
        left.insert(
            "mounts",
            mountinfo
                .lines()
                .filter(|l| {
                    self.ids.iter().any(|id| l.contains(id.as_str()))
                        || (l.contains(&work) && l.contains(" nsfs "))
                })
                .map(str::to_owned)
                .collect(),
        );
        let mut shims = Vec::new();
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for p in procs.flatten() {
                let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if self.ids.iter().any(|id| cmdline.contains(id.as_str())) {
                    shims.push(cmdline);
                }
            }
        }
        left.insert("processes", shims);
        let cri_state = self.args.work.join("state/io.containerd.grpc.v1.cri");
        let cri_root = self.args.work.join("root/io.containerd.grpc.v1.cri");
        let mut cri = Vec::new();
        for dir in [
            cri_state.join("sandboxes"),
            cri_state.join("containers"),
            cri_root.join("sandboxes"),
            cri_root.join("containers"),
        ] {
            cri.extend(
                list_tree(&dir, 1, false)
                    .into_iter()
                    .filter(|e| self.ids.iter().any(|id| e.contains(id.as_str()))),
            );
        }
        left.insert("containerd CRI directories", cri);
        // libcni's cache of each network's result for a sandbox, removed by its DEL.
        left.insert(
            "CNI results",
            list_tree(Path::new("/var/lib/cni/results"), 1, false)
                .into_iter()
                .filter(|e| self.ids.iter().any(|id| e.contains(id.as_str())))
                .collect(),
        );
        self.normalise(serde_json::to_value(left).unwrap_or(Value::Null))
    }
}

/// The entries of `dir` (only its subdirectories when `dirs_only`), and below each
/// subdirectory `depth - 1` more levels (as `sub/entry`; a subdirectory with nothing below is
/// listed itself); empty when `dir` does not exist.
fn list_tree(dir: &Path, depth: usize, dirs_only: bool) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !is_dir && dirs_only {
            continue;
        }
        let below = if is_dir && depth > 1 {
            list_tree(&e.path(), depth - 1, dirs_only)
        } else {
            Vec::new()
        };
        if below.is_empty() {
            out.push(name);
        } else {
            out.extend(below.into_iter().map(|b| format!("{name}/{b}")));
        }
    }
    out.sort();
    out
}

/// One exec session through the CRI streaming server: the WebSocket handshake (RFC 6455
/// section 4.1) with the `v4.channel.k8s.io` subprotocol, then binary frames whose first byte is
/// the channel (1 stdout, 2 stderr, 3 the exit status as a JSON `Status`) until the server
/// closes. Returns what each channel carried.
fn websocket_exec(url: &str) -> Result<Value, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("exec URL {url} is not http://"))?;
    let (host, path) = rest
        .split_once('/')
        .ok_or_else(|| format!("exec URL {url} has no path"))?;
    let mut stream = TcpStream::connect(host).map_err(|e| format!("connect {host}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    // The key's value does not matter to the server (it only hashes it back).
    let request = format!(
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: Y3JpLXRlc3Qgd2Vic29ja2V0\r\n\
         Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut data = Vec::new();
    stream
        .read_to_end(&mut data)
        .map_err(|e| format!("read: {e}"))?;
    let head_end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no HTTP response head: {}", String::from_utf8_lossy(&data)))?;
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    if !head.starts_with("HTTP/1.1 101") {
        return Err(format!("no upgrade: {head}"));
    }
    let mut channels: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    let mut frames = &data[head_end + 4..];
    while frames.len() >= 2 {
        let opcode = frames[0] & 0x0f;
        let masked = frames[1] & 0x80 != 0;
        let (len, mut at) = match frames[1] & 0x7f {
            126 if frames.len() >= 4 => (u16::from_be_bytes([frames[2], frames[3]]) as usize, 4),
            127 if frames.len() >= 10 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&frames[2..10]);
                (u64::from_be_bytes(b) as usize, 10)
            }
            n if n < 126 => (n as usize, 2),
            _ => return Err("truncated frame header".into()),
        };
        let mut mask = [0u8; 4];
        if masked {
            mask.copy_from_slice(frames.get(at..at + 4).ok_or("truncated mask")?);
            at += 4;
        }
        let payload: Vec<u8> = frames
            .get(at..at + len)
            .ok_or("truncated frame")?
            .iter()
            .enumerate()
            .map(|(i, b)| if masked { b ^ mask[i % 4] } else { *b })
            .collect();
        frames = &frames[at + len..];
        match opcode {
            0x8 => break,
            0x1 | 0x2 if !payload.is_empty() => {
                channels
                    .entry(payload[0])
                    .or_default()
                    .extend_from_slice(&payload[1..]);
            }
            _ => {}
        }
    }
    let text = |c: u8| {
        String::from_utf8_lossy(channels.get(&c).map(Vec::as_slice).unwrap_or(&[])).into_owned()
    };
    let status: Value = serde_json::from_str(&text(3)).unwrap_or_else(|_| json!(text(3)));
    Ok(json!({ "stdout": text(1), "stderr": text(2), "status": status }))
}

async fn connect(socket: &Path) -> Result<Client, String> {
    let path = socket.to_owned();
    let channel = Endpoint::try_from("http://[::]:50051")
        .map_err(|e| e.to_string())?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            tokio::net::UnixStream::connect(path.clone())
        }))
        .await
        .map_err(|e| format!("connect {}: {e}", socket.display()))?;
    Ok(RuntimeServiceClient::new(channel))
}

/// The namespaces a process is in, and its hostname, as read inside a container.
const NAMESPACES: &str = "for n in pid net ipc uts mnt; do echo \"$n $(readlink /proc/self/ns/$n)\"; done; echo \"hostname $(hostname)\"; echo \"pid1 $(tr '\\0' ' ' </proc/1/cmdline)\"";

/// What a privileged container sees (cgroup v1 host: /sys is sysfs, rw when privileged).
const PRIVILEGED: &str = "grep -E '^(CapEff|Seccomp):' /proc/self/status; grep -E '^sysfs /sys ' /proc/self/mounts | cut -d' ' -f2,4 | cut -d, -f1; test -c /dev/kmsg && echo has-kmsg";

/// What a container with a security context sees.
const SECURE: &str = "id; touch /cri-test-x 2>&1; grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status; stat -c '%F %t:%T %a' /dev/cri-null; echo x >/dev/cri-null && echo dev-ok; echo sysctl $(cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced)";

/// The container's cgroup limits, as read inside it (cgroup v1).
const LIMITS: &str = "cd /sys/fs/cgroup && cat memory/memory.limit_in_bytes cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us";

async fn sequence(run: &mut Run<'_>) {
    let res = call!(
        run,
        version,
        VersionRequest {
            version: "v1".into()
        }
    );
    run.record("Version", &res, &["\"runtime_name\":\"containerd\""]);
    let res = call!(run, status, StatusRequest { verbose: false });
    run.record("Status", &res, &["RuntimeReady", "NetworkReady"]);

    // A privileged pod in the host's network namespace.
    let mut host_cfg = run.sandbox_config("host", NamespaceMode::Node, "");
    if let Some(sc) = host_cfg
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
    {
        sc.privileged = true;
    }
    let host_pod = run.run_pod("host", &host_cfg, &["\"state\":0"]).await;
    if let Some(pod) = &host_pod {
        if let Some(c) = run
            .start(pod, &host_cfg, "hostnet", "echo up; exec sleep 1000", 0)
            .await
        {
            run.wait_state(&c, ContainerState::ContainerRunning).await;
            let res = run.exec_sync(&c, "readlink /proc/self/ns/net").await;
            let host_net = std::fs::read_link("/proc/self/ns/net")
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let same = res.map(|r| r["stdout"].as_str().unwrap_or("").trim() == host_net);
            run.record(
                "host network: the container is in the host's network namespace",
                &same,
                &["true"],
            );
        }
        // A privileged container: every capability the runtime has, /sys writable, the host's
        // devices, no seccomp filter.
        let mut config = run.container_config("privileged", "exec sleep 1000", 0);
        if let Some(l) = config.linux.as_mut() {
            l.security_context = Some(LinuxContainerSecurityContext {
                privileged: true,
                ..Default::default()
            });
        }
        if let Some(c) = run.start_with(pod, &host_cfg, config).await {
            run.wait_state(&c, ContainerState::ContainerRunning).await;
            let res = run.exec_sync(&c, PRIVILEGED).await;
            let runtime_caps = std::fs::read_to_string("/proc/self/status")
                .unwrap_or_default()
                .lines()
                .find(|l| l.starts_with("CapBnd:"))
                .map(|l| l.replace("CapBnd:", "CapEff:"))
                .unwrap_or_default();
            let expect_caps = runtime_caps.replace('\t', "\\t");
            run.record(
                "privileged container: capabilities, /sys, devices, seccomp",
                &res,
                &[&expect_caps, "Seccomp:\\t0", "/sys rw", "has-kmsg"],
            );
        }
    }

    // A pod with a network namespace of its own (CNI: loopback only).
    let mut pod_cfg = run.sandbox_config("net", NamespaceMode::Pod, "cri-pod");
    if let Some(l) = pod_cfg.linux.as_mut() {
        // A network sysctl (the pod's own network namespace) and an IPC one.
        l.sysctls = [
            (
                "net.ipv4.ip_unprivileged_port_start".to_owned(),
                "900".to_owned(),
            ),
            ("kernel.shm_rmid_forced".to_owned(), "1".to_owned()),
        ]
        .into();
    }
    let Some(pod) = run
        .run_pod("net", &pod_cfg, &["\"state\":0", "\"ip\":\"127.0.0.1\""])
        .await
    else {
        return;
    };
    let main_script = "echo started; echo to-stderr >&2; trap 'echo got-term; exit 0' TERM; while :; do sleep 1; done";
    let main = run
        .start(&pod, &pod_cfg, "main", main_script, 64 << 20)
        .await;
    if let Some(main) = &main {
        run.wait_state(main, ContainerState::ContainerRunning).await;
        run.status(
            "ContainerStatus main (running)",
            main,
            &["\"state\":1", "\"log_path\":\"<logs>/net/main.log\""],
        )
        .await;
        let res = run.list_containers(&pod).await;
        run.record("ListContainers (pod net)", &res, &["\"name\":\"main\""]);
        let res = run
            .exec_sync(main, "echo out $CRI_TEST $(pwd); echo err >&2")
            .await;
        run.record(
            "ExecSync exit 0",
            &res,
            &[
                "\"exit_code\":0",
                "\"stdout\":\"out main /tmp\\n\"",
                "\"stderr\":\"err\\n\"",
            ],
        );
        let res = run.exec_sync(main, "echo failing; exit 3").await;
        run.record("ExecSync exit 3", &res, &["\"exit_code\":3", "failing"]);
        let res = run
            .exec_stream(
                main,
                "echo stream-out $(hostname); echo stream-err >&2; exit 0",
            )
            .await;
        run.record(
            "Exec (streaming) exit 0",
            &res,
            &["stream-out cri-pod", "Success"],
        );
        let res = run.exec_stream(main, "echo stream-out; exit 4").await;
        run.record(
            "Exec (streaming) exit 4",
            &res,
            &["NonZeroExitCode", "\"message\":\"4\""],
        );
        let res = call!(
            run,
            container_stats,
            ContainerStatsRequest {
                container_id: main.clone()
            }
        );
        let stats = res.map(|r| {
            let s = r.stats.unwrap_or_default();
            let set = |v: Option<k8s_cri::v1::UInt64Value>| v.map(|v| v.value > 0).unwrap_or(false);
            json!({
                "cpu usage": s.cpu.map(|c| set(c.usage_core_nano_seconds)),
                "memory working set": s.memory.map(|m| set(m.working_set_bytes)),
                "writable layer": s.writable_layer.is_some(),
                "attributes": s.attributes,
            })
        });
        run.record(
            "ContainerStats main",
            &stats,
            &["\"cpu usage\":true", "\"memory working set\":true"],
        );
        let res = run.exec_sync(main, LIMITS).await;
        // 64 MiB, 512 shares, 50 ms per 100 ms.
        run.record(
            "cgroup limits of main",
            &res,
            &["\"stdout\":\"67108864\\n512\\n50000\\n100000\\n\""],
        );
        let res = call!(
            run,
            update_container_resources,
            UpdateContainerResourcesRequest {
                container_id: main.clone(),
                linux: Some(LinuxContainerResources {
                    memory_limit_in_bytes: 96 << 20,
                    cpu_shares: 256,
                    cpu_period: 100_000,
                    cpu_quota: 20_000,
                    ..Default::default()
                }),
                ..Default::default()
            }
        );
        run.record("UpdateContainerResources main", &res, &[]);
        let res = run.exec_sync(main, LIMITS).await;
        run.record(
            "cgroup limits of main after the update",
            &res,
            &["\"stdout\":\"100663296\\n256\\n20000\\n100000\\n\""],
        );
    }

    // A second container joins the pod's namespaces.
    let side = run
        .start(&pod, &pod_cfg, "sidecar", "exec sleep 1000", 0)
        .await;
    if let (Some(main), Some(side)) = (&main, &side) {
        run.wait_state(side, ContainerState::ContainerRunning).await;
        let a = run.exec_sync(main, NAMESPACES).await;
        let b = run.exec_sync(side, NAMESPACES).await;
        let shared = match (a, b) {
            (Ok(a), Ok(b)) => {
                let a = a["stdout"].as_str().unwrap_or("").to_owned();
                let b = b["stdout"].as_str().unwrap_or("").to_owned();
                let same: BTreeMap<String, Value> = a
                    .lines()
                    .zip(b.lines())
                    .filter_map(|(x, y)| {
                        let (k, xv) = x.split_once(' ')?;
                        let (_, yv) = y.split_once(' ')?;
                        Some((
                            k.to_owned(),
                            if k == "hostname" || k == "pid1" {
                                json!([xv, yv])
                            } else {
                                json!(xv == yv)
                            },
                        ))
                    })
                    .collect();
                Ok(same)
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        run.record(
            "sidecar shares the pod's namespaces",
            &shared,
            &[
                "\"pid\":true",
                "\"net\":true",
                "\"ipc\":true",
                "\"uts\":true",
                "\"mnt\":false",
                "[\"cri-pod\",\"cri-pod\"]",
                "/pause",
            ],
        );
    }

    // A container with a security context: user, group, supplementary group, read-only root,
    // no_new_privs, capabilities dropped but one, a device from the host; and the pod's sysctls.
    let mut config = run.container_config("secure", "exec sleep 1000", 0);
    config.devices = vec![k8s_cri::v1::Device {
        container_path: "/dev/cri-null".into(),
        host_path: "/dev/null".into(),
        permissions: "rwm".into(),
    }];
    if let Some(l) = config.linux.as_mut() {
        l.security_context = Some(LinuxContainerSecurityContext {
            run_as_user: Some(k8s_cri::v1::Int64Value { value: 1000 }),
            run_as_group: Some(k8s_cri::v1::Int64Value { value: 1000 }),
            supplemental_groups: vec![2000],
            readonly_rootfs: true,
            no_new_privs: true,
            capabilities: Some(k8s_cri::v1::Capability {
                add_capabilities: vec!["NET_BIND_SERVICE".into()],
                drop_capabilities: vec!["ALL".into()],
            }),
            ..Default::default()
        });
    }
    if let Some(c) = run.start_with(&pod, &pod_cfg, config).await {
        run.wait_state(&c, ContainerState::ContainerRunning).await;
        let res = run.exec_sync(&c, SECURE).await;
        // CAP_NET_BIND_SERVICE is bit 10; a non-root user's permitted and effective sets
        // are empty unless ambient (CRI does not set ambient capabilities).
        run.record(
            "security context, device and sysctls",
            &res,
            &[
                "uid=1000 gid=1000",
                "2000",
                "Read-only file system",
                "NoNewPrivs:\\t1",
                "CapBnd:\\t0000000000000400",
                "character special file 1:3",
                "dev-ok",
                "sysctl 900 1",
            ],
        );
    }

    // A container that exits 3, and one killed by its memory limit.
    if let Some(c) = run
        .start(&pod, &pod_cfg, "fails", "echo failing >&2; exit 3", 0)
        .await
    {
        run.wait_state(&c, ContainerState::ContainerExited).await;
        run.status(
            "ContainerStatus fails (exited)",
            &c,
            &["\"state\":2", "\"exit_code\":3", "\"reason\":\"Error\""],
        )
        .await;
    }
    if let Some(c) = run
        .start(
            &pod,
            &pod_cfg,
            "oom",
            "exec dd if=/dev/zero of=/dev/null bs=64M count=1",
            16 << 20,
        )
        .await
    {
        run.wait_state(&c, ContainerState::ContainerExited).await;
        run.status(
            "ContainerStatus oom (OOM-killed)",
            &c,
            &[
                "\"state\":2",
                "\"exit_code\":137",
                "\"reason\":\"OOMKilled\"",
            ],
        )
        .await;
    }
    // StopContainer: a process that ends on SIGTERM, one that ignores it (SIGKILL after the
    // grace period).
    if let Some(main) = &main {
        let res = call!(
            run,
            stop_container,
            StopContainerRequest {
                container_id: main.clone(),
                timeout: 10
            }
        );
        run.record(
            "StopContainer main (timeout 10, ends on SIGTERM)",
            &res,
            &[],
        );
        run.status(
            "ContainerStatus main (stopped)",
            main,
            &["\"state\":2", "\"exit_code\":0", "\"reason\":\"Completed\""],
        )
        .await;
        let log = std::fs::read_to_string(Path::new(&run.log_dir("net")).join("main.log"));
        // CRI log lines are "TIME STREAM TAG TEXT"; stdout and stderr come through two pipes,
        // so only the order within each stream is fixed (a stable sort by stream keeps it).
        let log = log.map(|l| {
            let mut lines: Vec<String> = l
                .lines()
                .filter_map(|line| line.split_once(' ').map(|(_, rest)| rest.to_owned()))
                .collect();
            lines.sort_by(|a, b| a.split(' ').next().cmp(&b.split(' ').next()));
            lines
        });
        run.record(
            "log of main (time stamps cut, stderr then stdout)",
            &log.map_err(|e| e.to_string()),
            &[
                "stdout F started",
                "stderr F to-stderr",
                "stdout F got-term",
            ],
        );
    }
    if let Some(c) = run
        .start(
            &pod,
            &pod_cfg,
            "stubborn",
            "trap '' TERM; echo ready; while :; do sleep 1; done",
            0,
        )
        .await
    {
        run.wait_state(&c, ContainerState::ContainerRunning).await;
        let res = call!(
            run,
            stop_container,
            StopContainerRequest {
                container_id: c.clone(),
                timeout: 1
            }
        );
        run.record(
            "StopContainer stubborn (timeout 1, ignores SIGTERM)",
            &res,
            &[],
        );
        run.status(
            "ContainerStatus stubborn (killed)",
            &c,
            &["\"state\":2", "\"exit_code\":137"],
        )
        .await;
    }

    // Remove everything.
    let list = run.list_containers(&pod).await;
    let mut names: Vec<(String, String)> = list
        .map(|l| {
            l.containers
                .into_iter()
                .map(|c| (c.metadata.map(|m| m.name).unwrap_or_default(), c.id))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for (name, id) in names {
        let res = call!(
            run,
            remove_container,
            RemoveContainerRequest { container_id: id }
        );
        run.record(&format!("RemoveContainer {name}"), &res, &[]);
    }
    let res = run.list_containers(&pod).await;
    run.record(
        "ListContainers (pod net) after RemoveContainer",
        &res,
        &["\"containers\":[]"],
    );
    for (name, id) in [("host", host_pod), ("net", Some(pod))] {
        let Some(id) = id else { continue };
        let res = call!(
            run,
            stop_pod_sandbox,
            StopPodSandboxRequest {
                pod_sandbox_id: id.clone()
            }
        );
        run.record(&format!("StopPodSandbox {name}"), &res, &[]);
        let res = call!(
            run,
            pod_sandbox_status,
            PodSandboxStatusRequest {
                pod_sandbox_id: id.clone(),
                verbose: false
            }
        );
        run.record(
            &format!("PodSandboxStatus {name} (stopped)"),
            &res,
            &["\"state\":1"],
        );
        let res = call!(
            run,
            remove_pod_sandbox,
            RemovePodSandboxRequest {
                pod_sandbox_id: id.clone()
            }
        );
        run.record(&format!("RemovePodSandbox {name}"), &res, &[]);
    }
    let filter = PodSandboxFilter {
        label_selector: Default::default(),
        ..Default::default()
    };
    let res = call!(
        run,
        list_pod_sandbox,
        ListPodSandboxRequest {
            filter: Some(filter)
        }
    );
    let mine = res.map(|r| {
        let ns = format!("cri-test-{}", run.handler);
        r.items
            .into_iter()
            .filter(|p| {
                p.metadata
                    .as_ref()
                    .map(|m| m.namespace == ns)
                    .unwrap_or(false)
            })
            .count()
    });
    run.record(
        "ListPodSandbox after RemovePodSandbox (this handler's pods)",
        &mine,
        &[],
    );
    let left = run.leftovers();
    run.steps.push(Step {
        name: "nothing left behind".into(),
        result: left,
        expect: vec![],
        want: Some(json!({
            "CNI results": [], "cgroups": [], "containerd CRI directories": [], "mounts": [],
            "processes": [],
            "runtime state": ["k8s.io"]
        })),
    });
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cri-client: {e}");
            std::process::exit(2);
        }
    };
    let client = match connect(&args.socket).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cri-client: {e}");
            std::process::exit(1);
        }
    };
    let mut runs = Vec::new();
    for handler in &args.handlers {
        eprintln!("== handler {handler}");
        let mut run = Run::new(&args, handler, client.clone());
        sequence(&mut run).await;
        runs.push(run);
    }
    let mut failures = 0;
    // CRI_CLIENT_SHOW=1 prints every result, not only those that differ.
    let show = std::env::var_os("CRI_CLIENT_SHOW").is_some();
    let oracle = &runs[0];
    for run in &runs[1..] {
        println!("== {} against {}", run.handler, oracle.handler);
        let len = oracle.steps.len().max(run.steps.len());
        for i in 0..len {
            let (a, b) = (oracle.steps.get(i), run.steps.get(i));
            let name = a.or(b).map(|s| s.name.as_str()).unwrap_or("?");
            let mut problems = Vec::new();
            match (a, b) {
                (Some(a), Some(b)) => {
                    if a.name != b.name {
                        problems.push(format!("steps differ: {} / {}", a.name, b.name));
                    } else if a.result != b.result {
                        problems.push("results differ".to_owned());
                    }
                }
                _ => problems.push("one handler stopped early".to_owned()),
            }
            for (step, who) in [(a, &oracle.handler), (b, &run.handler)] {
                let Some(step) = step else { continue };
                let text = step.result.to_string();
                for want in &step.expect {
                    if !text.contains(want.as_str()) {
                        problems.push(format!("{who}'s result lacks {want}"));
                    }
                }
                if step.want.as_ref().is_some_and(|w| *w != step.result) {
                    problems.push(format!(
                        "{who}'s result is not {}",
                        step.want.as_ref().unwrap_or(&Value::Null)
                    ));
                }
            }
            if problems.is_empty() {
                println!("  ok    {name}");
                if show {
                    if let Some(a) = a {
                        println!("        {:>7}: {}", oracle.handler, a.result);
                    }
                }
            } else {
                failures += 1;
                println!("  FAIL  {name}: {}", problems.join("; "));
                for (step, who) in [(a, &oracle.handler), (b, &run.handler)] {
                    if let Some(step) = step {
                        println!("        {who:>7}: {}", step.result);
                    }
                }
            }
        }
    }
    if failures > 0 {
        println!("{failures} step(s) failed");
        std::process::exit(1);
    }
}
