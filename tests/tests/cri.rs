//! The Kubernetes path (issue 12): containerd's CRI plugin with `ctr-oci`
//! as its runtime, driven as kubelet drives it, over the CRI v1 gRPC API.
//!
//! The test starts a containerd of its own (root, state, socket, runtime
//! root and CNI configuration in a temporary directory; its CRI plugin's
//! default runtime is the runc shim with `BinaryName` = ctr-oci), imports an
//! image made from the test's Alpine rootfs with `/usr/bin/ctr -n k8s.io
//! images import`, and calls the API through `cri_support/cri_call.py`
//! (Debian's python3-grpcio; the messages from `cri_support/cri.proto`, a
//! subset of the CRI written for the test, compiled by protoc). CNI is
//! Debian's bridge plugin, on a bridge in the test's own network namespace.
//!
//! A pod sandbox and two containers: a server listening on the pod's
//! localhost and a client that reaches it; ExecSync in each; then stop and
//! remove, after which no container process, cgroup, mount, network
//! namespace, veth or runtime state may be left.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "docker.io/library/ctr-oci-cri:test";
const SUBNET: &str = "10.254.77.0/24";

struct Containerd<'a> {
    env: &'a ctr_tests::Env,
    dir: PathBuf,
    socket: PathBuf,
    pb_dir: PathBuf,
    bridge: String,
    daemon: Option<Child>,
    /// The pods' network namespaces as containerd reported them.
    netns: Vec<PathBuf>,
}

impl<'a> Containerd<'a> {
    fn start(env: &'a ctr_tests::Env) -> Self {
        let dir = std::env::temp_dir().join(ctr_tests::unique_name("ctr-oci-cri-"));
        let cni = dir.join("cni");
        let pb_dir = dir.join("pb");
        for d in [&dir, &cni, &pb_dir, &dir.join("logs")] {
            std::fs::create_dir_all(d).unwrap();
        }
        let support = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cri_support");
        let protoc = Command::new("protoc")
            .arg(format!("--python_out={}", pb_dir.display()))
            .arg("-I")
            .arg(&support)
            .arg("cri.proto")
            .status()
            .expect("protoc (Debian's protobuf-compiler) is not installed");
        assert!(protoc.success(), "protoc failed on cri.proto");
        // A bridge name of at most 15 bytes, unique to this process.
        let bridge = format!("cri{}", std::process::id() % 100_000_000);
        std::fs::write(
            cni.join("10-ctr-oci-test.conflist"),
            serde_json::to_vec_pretty(&serde_json::json!({
                "cniVersion": "1.0.0",
                "name": "ctr-oci-cri-test",
                "plugins": [{
                    "type": "bridge",
                    "bridge": bridge,
                    "isGateway": true,
                    "ipMasq": false,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{ "subnet": SUBNET }]],
                        "dataDir": dir.join("ipam"),
                    },
                }],
            }))
            .unwrap(),
        )
        .unwrap();
        let socket = dir.join("containerd.sock");
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{socket}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "ctr-oci"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.ctr-oci]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.ctr-oci.options]
        BinaryName = "{ctr_oci}"
        Root = "{runtime_root}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
"#,
            root = dir.join("root").display(),
            state = dir.join("state").display(),
            socket = socket.display(),
            opt = dir.join("opt").display(),
            ctr_oci = env.prefix.join("bin/ctr-oci").display(),
            runtime_root = dir.join("runtime-root").display(),
            cni = cni.display(),
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd (Debian's containerd package) is not installed");
        let this = Self { env, dir, socket, pb_dir, bridge, daemon: Some(daemon), netns: Vec::new() };
        // The CRI service answers once its plugin is up.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match this.try_call("Version", serde_json::json!({})) {
                Ok(version) => {
                    assert_eq!(version["runtime_api_version"], "v1", "{version}");
                    break;
                }
                Err(e) if Instant::now() > deadline => panic!("containerd's CRI never answered: {e}\n{}", this.log()),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        this
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// One CRI call: the response as JSON, or gRPC's code and message.
    fn try_call(&self, method: &str, request: serde_json::Value) -> Result<serde_json::Value, String> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cri_support/cri_call.py");
        let out = self
            .env
            .as_root("/usr/bin/python3", [script.as_os_str(), self.socket.as_os_str(), method.as_ref()])
            .env("CRI_PB_DIR", &self.pb_dir)
            .stdin(request.to_string())
            .timeout(Duration::from_secs(150))
            .output();
        if !out.success() {
            return Err(out.stderr);
        }
        serde_json::from_str(&out.stdout).map_err(|e| format!("{method} printed {:?}: {e}", out.stdout))
    }

    #[track_caller]
    fn call(&self, method: &str, request: serde_json::Value) -> serde_json::Value {
        self.try_call(method, request)
            .unwrap_or_else(|e| panic!("{method} failed: {e}\ncontainerd's log:\n{}", self.log()))
    }

    /// The image: an OCI layout whose one layer is the test's Alpine
    /// tarball, with `sleep` as its command (the sandbox's, in place of a
    /// pause image), imported into the k8s.io namespace the CRI plugin uses.
    fn import_image(&self) {
        use sha2::Digest;
        let layout = self.dir.join("layout");
        let blobs = layout.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |bytes: &[u8]| -> (String, usize) {
            let digest = format!("{:x}", sha2::Sha256::digest(bytes));
            std::fs::write(blobs.join(&digest), bytes).unwrap();
            (format!("sha256:{digest}"), bytes.len())
        };
        let layer = std::fs::read(&self.env.alpine).unwrap();
        let mut unpacked = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&layer[..]), &mut unpacked).unwrap();
        let diff_id = format!("sha256:{:x}", sha2::Sha256::digest(&unpacked));
        let (layer_digest, layer_size) = put(&layer);
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["sleep", "1000000"],
            },
            "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        });
        let (config_digest, config_size) = put(&serde_json::to_vec(&config).unwrap());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_size,
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_digest,
                "size": layer_size,
            }],
        });
        let (manifest_digest, manifest_size) = put(&serde_json::to_vec(&manifest).unwrap());
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": { "io.containerd.image.name": IMAGE, "org.opencontainers.image.ref.name": "test" },
            }],
        });
        std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        std::fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let archive = self.dir.join("image.tar");
        let tar = Command::new("tar")
            .arg("-C")
            .arg(&layout)
            .arg("-cf")
            .arg(&archive)
            .args(["oci-layout", "index.json", "blobs"])
            .status()
            .unwrap();
        assert!(tar.success());
        self.env
            .as_root("/usr/bin/ctr", ["--address".as_ref(), self.socket.as_os_str()])
            .args(["-n", "k8s.io", "images", "import"])
            .arg(&archive)
            .timeout(Duration::from_secs(120))
            .ok();
        let status = self.call("ImageStatus", serde_json::json!({ "image": { "image": IMAGE } }));
        assert_eq!(status["image"]["repo_tags"][0], IMAGE, "the CRI plugin does not see the image: {status}");
    }

    /// Processes whose command line names this containerd's socket: the
    /// shims, which exit once their last container is deleted.
    fn shims(&self) -> Vec<i32> {
        let needle = self.socket.to_str().unwrap().as_bytes().to_vec();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if cmdline.windows(needle.len()).any(|w| w == needle.as_slice()) {
                found.push(pid);
            }
        }
        found
    }

    /// Mount points beneath the temporary directory or at a pod's netns.
    fn mounts_left(&self) -> Vec<String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mounts = ctr_tests::procfs::parse_mountinfo(&mountinfo);
        mounts
            .iter()
            .filter(|m| m.mount_point.starts_with(&self.dir) || self.netns.contains(&m.mount_point))
            .map(|m| m.mount_point.display().to_string())
            .collect()
    }

    /// The veths on the test's bridge (one per running pod).
    fn veths(&self) -> Vec<String> {
        let out = Command::new("ip").args(["-o", "link", "show", "master", &self.bridge]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    }
}

impl Drop for Containerd<'_> {
    fn drop(&mut self) {
        // Whatever a failed test left running: pods first, through the API,
        // so that their shims, mounts and netns go the normal way.
        if let Ok(pods) = self.try_call("ListPodSandbox", serde_json::json!({})) {
            for pod in pods["items"].as_array().into_iter().flatten() {
                let id = serde_json::json!({ "pod_sandbox_id": pod["id"] });
                let _ = self.try_call("StopPodSandbox", id.clone());
                let _ = self.try_call("RemovePodSandbox", id);
            }
        }
        if let Some(mut daemon) = self.daemon.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(daemon.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while daemon.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        for pid in self.shims() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let mut left = self.mounts_left();
        left.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in left {
            let _ = nix::mount::umount2(mount.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        for netns in &self.netns {
            let _ = std::fs::remove_file(netns);
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The cgroup directories named `name` beneath the test's own, in every
/// hierarchy.
fn cgroup_parent_dirs(name: &str) -> Vec<PathBuf> {
    let own = ctr_tests::procfs::own_cgroup_dirs(
        &std::fs::read_to_string("/proc/self/cgroup").unwrap(),
        &std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
    );
    own.iter().map(|d| d.join(name)).filter(|d| d.exists()).collect()
}

/// Removes the pod's cgroup parent (made by ctr-oci for its containers)
/// when the test ends, failed or not.
struct CgroupParent(String);

impl Drop for CgroupParent {
    fn drop(&mut self) {
        for dir in cgroup_parent_dirs(&self.0) {
            for sub in ctr_tests::procfs::subdirs_deepest_first(&dir) {
                let _ = std::fs::remove_dir(sub);
            }
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn cri_pod_with_two_containers_on_localhost_runs_and_leaves_nothing() {
    let Some(env) = ctr_tests::env() else { return };
    let cgroup_parent = CgroupParent(ctr_tests::unique_name("ctr-oci-cri-cg-"));
    let mut cri = Containerd::start(&env);
    cri.import_image();

    // The pod: its own network namespace (CNI's bridge), ipc and uts; a
    // relative cgroup parent, so its cgroups are beneath the test's own.
    let sandbox_config = serde_json::json!({
        "metadata": { "name": "pod", "uid": ctr_tests::unique_name("uid-"), "namespace": "ctr-oci-test" },
        "hostname": "cri-pod",
        "log_directory": cri.dir.join("logs"),
        "linux": { "cgroup_parent": cgroup_parent.0 },
    });
    let pod = cri.call("RunPodSandbox", serde_json::json!({ "config": sandbox_config }))["pod_sandbox_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = cri.call("PodSandboxStatus", serde_json::json!({ "pod_sandbox_id": pod, "verbose": true }));
    assert_eq!(status["status"]["state"], "SANDBOX_READY", "{status}");
    let ip = status["status"]["network"]["ip"].as_str().unwrap_or_default();
    assert!(ip.starts_with("10.254.77."), "the pod has no address from the bridge's subnet: {status}");
    let info: serde_json::Value = serde_json::from_str(status["info"]["info"].as_str().unwrap()).unwrap();
    let netns = info["runtimeSpec"]["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "network")
        .and_then(|n| n["path"].as_str())
        .map(PathBuf::from)
        .expect("the sandbox's spec names no network namespace path");
    cri.netns.push(netns.clone());
    let sandbox_pid = info["pid"].as_i64().unwrap();
    assert_eq!(cri.veths().len(), 1, "the pod's veth is not on the test's bridge");

    // The server answers on the pod's localhost; the client reaches it
    // there, prints what it got (to its log) and stays.
    let container = |name: &str, command: &[&str]| -> String {
        let created = cri.call(
            "CreateContainer",
            serde_json::json!({
                "pod_sandbox_id": pod,
                "sandbox_config": sandbox_config,
                "config": {
                    "metadata": { "name": name },
                    "image": { "image": IMAGE },
                    "command": command,
                    "log_path": format!("{name}.log"),
                },
            }),
        );
        let id = created["container_id"].as_str().unwrap().to_owned();
        cri.call("StartContainer", serde_json::json!({ "container_id": id }));
        id
    };
    // busybox's nc (Alpine's or Debian's): one answer per connection, so
    // the server listens again after each.
    let server = container("server", &["sh", "-c", "while :; do nc -l -p 8080 -e echo hello-from-server; done"]);
    let client = container("client", &["sh", "-c", "until nc 127.0.0.1 8080; do sleep 0.1; done; exec sleep 1000"]);
    let log = cri.dir.join("logs/client.log");
    wait_until("the client's log shows the server's answer", Duration::from_secs(30), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("stdout F hello-from-server"))
    });

    // ExecSync: the output and exit status of a command run in a container
    // (ctr-oci exec), which shares the pod's network and uts namespaces.
    let exec = |id: &str, cmd: &[&str]| {
        cri.call("ExecSync", serde_json::json!({ "container_id": id, "cmd": cmd, "timeout": 60 }))
    };
    let out = exec(
        &client,
        &["sh", "-c", "until nc 127.0.0.1 8080; do sleep 0.1; done; hostname; readlink /proc/self/ns/net; exit 3"],
    );
    let lines: Vec<&str> = out["stdout"].as_str().unwrap().lines().collect();
    assert_eq!(out["exit_code"], 3, "{out}");
    assert_eq!(lines[..2], ["hello-from-server", "cri-pod"], "{out}");
    let server_ns = exec(&server, &["readlink", "/proc/self/ns/net"]);
    assert_eq!(server_ns["exit_code"], 0, "{server_ns}");
    let pod_ns = std::fs::read_link(format!("/proc/{sandbox_pid}/ns/net")).unwrap();
    assert_eq!(lines[2], pod_ns.to_str().unwrap(), "the client is not in the pod's network namespace");
    assert_eq!(server_ns["stdout"].as_str().unwrap().trim(), lines[2], "the containers' network namespaces differ");
    let missing = cri.try_call("ExecSync", serde_json::json!({ "container_id": client, "cmd": ["no-such-program"] }));
    assert!(
        missing.as_ref().is_err_and(|e| e.contains("executable file not found in $PATH")),
        "ExecSync of a missing program: {missing:?}"
    );

    // Each container's process is in a cgroup named after it beneath the
    // pod's parent, as ctr-oci placed it.
    let mut pids = vec![sandbox_pid];
    for id in [&server, &client] {
        let status = cri.call("ContainerStatus", serde_json::json!({ "container_id": id, "verbose": true }));
        assert_eq!(status["status"]["state"], "CONTAINER_RUNNING", "{status}");
        let info: serde_json::Value = serde_json::from_str(status["info"]["info"].as_str().unwrap()).unwrap();
        let pid = info["pid"].as_i64().unwrap();
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let leaf = format!("/{}/{id}", cgroup_parent.0);
        assert!(cgroup.lines().any(|l| l.contains(":memory:") && l.ends_with(&leaf)), "{cgroup}");
        pids.push(pid);
    }

    for id in [&server, &client] {
        cri.call("StopContainer", serde_json::json!({ "container_id": id, "timeout": 2 }));
        let status = cri.call("ContainerStatus", serde_json::json!({ "container_id": id }));
        assert_eq!(status["status"]["state"], "CONTAINER_EXITED", "{status}");
        cri.call("RemoveContainer", serde_json::json!({ "container_id": id }));
    }
    cri.call("StopPodSandbox", serde_json::json!({ "pod_sandbox_id": pod }));
    cri.call("RemovePodSandbox", serde_json::json!({ "pod_sandbox_id": pod }));
    assert_eq!(cri.call("ListPodSandbox", serde_json::json!({}))["items"], serde_json::json!([]));
    assert_eq!(cri.call("ListContainers", serde_json::json!({}))["containers"], serde_json::json!([]));

    // Nothing left: processes, shims, cgroups, mounts, the netns, the veth,
    // ctr-oci's state.
    wait_until("the shims exit", Duration::from_secs(20), || cri.shims().is_empty());
    for pid in pids {
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "process {pid} of the pod is still there");
    }
    let cgroups: Vec<PathBuf> =
        cgroup_parent_dirs(&cgroup_parent.0).iter().flat_map(|d| ctr_tests::procfs::subdirs_deepest_first(d)).collect();
    assert!(cgroups.is_empty(), "cgroups left beneath the pod's parent: {cgroups:?}");
    assert_eq!(cri.mounts_left(), Vec::<String>::new(), "mounts left");
    assert!(!netns.exists(), "the pod's network namespace {} is left", netns.display());
    assert_eq!(cri.veths(), Vec::<String>::new(), "veths left on the bridge");
    let state = cri.dir.join("runtime-root/k8s.io");
    let entries: Vec<_> =
        std::fs::read_dir(&state).map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect()).unwrap_or_default();
    assert!(entries.is_empty(), "ctr-oci's state left: {entries:?}");
}
