//! `ctr-oci`, the OCI runtime (issue 12), driven as containerd and podman
//! drive runc: as root, on a bundle made from the test's Alpine rootfs
//! with `ctr-oci spec`'s config.json. Each test checks what the kernel
//! shows (the process's cgroup file, its exit status, its hostname) and
//! what `state` reports, and leaves no state directory or cgroup behind.
//! The first also runs the same bundle under crun for comparison.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MIB_64: u64 = 64 << 20;

struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    ctr_oci: PathBuf,
    cgroup_name: String,
}

impl Bundle {
    /// A bundle with the Alpine rootfs and `ctr-oci spec`'s config, changed
    /// by `edit`; its cgroup is beneath the test's own (a relative
    /// cgroupsPath), so nothing leaves the test's memory cgroup.
    fn new(env: &ctr_tests::Env, edit: impl FnOnce(&mut serde_json::Value)) -> Self {
        let dir = std::env::temp_dir().join(ctr_tests::unique_name("ctr-oci-test-"));
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        let status = Command::new("tar").arg("-xzf").arg(&env.alpine).arg("-C").arg(&rootfs).status().unwrap();
        assert!(status.success(), "unpacking {} failed", env.alpine.display());
        let ctr_oci = env.prefix.join("bin/ctr-oci");
        env.as_root(&ctr_oci, ["spec", "--bundle"]).arg(&dir).ok();
        let cgroup_name = ctr_tests::unique_name("ctr-oci-cg-");
        let path = dir.join("config.json");
        let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        config["linux"]["cgroupsPath"] = serde_json::json!(cgroup_name);
        edit(&mut config);
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        Self { root: dir.join("state"), dir, ctr_oci, cgroup_name }
    }

    fn ctr_oci(&self, env: &ctr_tests::Env) -> ctr_tests::CtrCommand {
        env.as_root(&self.ctr_oci, ["--root"]).arg(&self.root)
    }

    /// `create`, whose container keeps its stdio: files here, not the
    /// harness's pipes, which would stay open after create exits.
    fn create(&self, id: &str, pid_file: &Path) -> (bool, String) {
        let err = self.dir.join(format!("{id}.create.err"));
        let status = Command::new(&self.ctr_oci)
            .arg("--root")
            .arg(&self.root)
            .args(["create", "--bundle"])
            .arg(&self.dir)
            .arg("--pid-file")
            .arg(pid_file)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(self.dir.join(format!("{id}.out"))).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        (status.success(), std::fs::read_to_string(err).unwrap())
    }

    fn state(&self, env: &ctr_tests::Env, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.ctr_oci(env).args(["state", id]).ok().stdout).unwrap()
    }

    /// Every directory named after this bundle's cgroup, in any hierarchy.
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let own = ctr_tests::procfs::own_cgroup_dirs(
            &std::fs::read_to_string("/proc/self/cgroup").unwrap(),
            &std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        );
        own.iter().map(|d| d.join(&self.cgroup_name)).filter(|d| d.exists()).collect()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The memory limit a process's cgroup holds, read on the host.
fn memory_limit_of(pid: i32) -> u64 {
    let dirs = ctr_tests::procfs::own_cgroup_dirs(
        &std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
        &std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
    );
    let file = dirs
        .iter()
        .flat_map(|d| [d.join("memory.limit_in_bytes"), d.join("memory.max")])
        .find(|f| f.exists())
        .expect("no memory limit file for the container's cgroup");
    std::fs::read_to_string(file).unwrap().trim().parse().unwrap()
}

/// What the kernel's freezer says of a process's cgroup: the v1 freezer's
/// state, else v2's cgroup.freeze.
fn freezer_of(pid: i32) -> &'static str {
    let dirs = ctr_tests::procfs::own_cgroup_dirs(
        &std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
        &std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
    );
    let read = |file: &str| dirs.iter().find_map(|d| std::fs::read_to_string(d.join(file)).ok());
    match (read("freezer.state").as_deref().map(str::trim), read("cgroup.freeze").as_deref().map(str::trim)) {
        (Some("FROZEN"), _) | (None, Some("1")) => "frozen",
        (Some("THAWED"), _) | (None, Some("0")) => "thawed",
        other => panic!("no freezer for process {pid}: {other:?}"),
    }
}

/// The script both runtimes run: hostname, the memory limit the container
/// sees in its own /sys/fs/cgroup, and an exit status of 7.
const SCRIPT: &str =
    "hostname; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null; \
echo uid=$(id -u); exit 7";

#[test]
fn oci_run_gives_output_status_hostname_and_memory_limit_as_crun_does() {
    let Some(env) = ctr_tests::env() else { return };
    let bundle = Bundle::new(&env, |c| {
        c["process"]["args"] = serde_json::json!(["sh", "-c", SCRIPT]);
        c["hostname"] = serde_json::json!("oci-test");
        c["linux"]["resources"]["memory"] = serde_json::json!({ "limit": MIB_64 });
    });
    let id = ctr_tests::unique_name("run-");
    let out = bundle.ctr_oci(&env).args(["run", "--bundle"]).arg(&bundle.dir).arg(&id).output();
    assert_eq!(out.code(), Some(7), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, format!("oci-test\n{MIB_64}\nuid=0\n"), "stderr:\n{}", out.stderr);
    assert!(bundle.cgroup_dirs().is_empty(), "run left its cgroup: {:?}", bundle.cgroup_dirs());
    assert!(!bundle.root.join(&id).exists(), "run left its state directory");

    // crun on the same bundle, without the cgroup (crun's manager would
    // put it outside the test's memory cgroup), so without the limit; crun
    // refuses this hybrid host unless the v2 tree is hidden, in a private
    // mount namespace of its own.
    let path = bundle.dir.join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["linux"]["resources"]["memory"] = serde_json::Value::Null;
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let crun = env
        .as_root(
            "unshare",
            [
                "-m",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                "umount /sys/fs/cgroup/unified 2>/dev/null; exec crun --cgroup-manager=disabled run --bundle \"$1\" \"$2\"",
                "sh",
            ],
        )
        .arg(&bundle.dir)
        .arg(format!("{id}-crun"))
        .output();
    assert_eq!(crun.code(), Some(7), "crun: {}", crun.stderr);
    assert!(crun.stdout.starts_with("oci-test\n") && crun.stdout.ends_with("uid=0\n"), "crun printed {}", crun.stdout);
}

#[test]
fn oci_create_start_exec_pause_state_kill_delete() {
    let Some(env) = ctr_tests::env() else { return };
    // Orphaned by `create`, the container's process comes to us: reaped below.
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let bundle = Bundle::new(&env, |c| {
        c["process"]["args"] = serde_json::json!(["sleep", "300"]);
        c["hostname"] = serde_json::json!("oci-life");
        c["linux"]["resources"]["memory"] = serde_json::json!({ "limit": MIB_64 });
    });
    let id = ctr_tests::unique_name("life-");
    let pid_file = bundle.dir.join("pid");
    let (created, stderr) = bundle.create(&id, &pid_file);
    assert!(created, "create failed: {stderr}");
    let pid_text = std::fs::read_to_string(&pid_file).unwrap();
    assert!(!pid_text.ends_with('\n'), "the pid file has a trailing newline");
    let pid: i32 = pid_text.parse().unwrap();

    let state = bundle.state(&env, &id);
    assert_eq!(state["status"], "created");
    assert_eq!(state["pid"], pid);
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["ociVersion"].as_str().map(|v| v.starts_with("1.")), Some(true));
    assert_eq!(Path::new(state["bundle"].as_str().unwrap()), std::fs::canonicalize(&bundle.dir).unwrap());
    assert_eq!(memory_limit_of(pid), MIB_64);
    // Created, not started: the process waits, still ctr-oci.
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap().trim(), "ctr-oci");

    bundle.ctr_oci(&env).args(["start", &id]).ok();
    assert_eq!(bundle.state(&env, &id)["status"], "running");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().starts_with("sleep") {
        assert!(Instant::now() < deadline, "the process never executed sleep");
        std::thread::sleep(Duration::from_millis(10));
    }
    let ps = bundle.ctr_oci(&env).args(["ps", "--format", "json", &id]).ok();
    assert_eq!(serde_json::from_str::<Vec<i32>>(&ps.stdout).unwrap(), vec![pid]);
    // exec: the container's namespaces (its hostname, pid 1 is sleep),
    // its cgroup, the exit status; and the words for a missing program.
    let exec = bundle.ctr_oci(&env).args(["exec", &id, "sh", "-c", "hostname; cat /proc/1/comm; exit 6"]).output();
    assert_eq!(exec.code(), Some(6), "{}", exec.stderr);
    assert_eq!(exec.stdout, "oci-life\nsleep\n");
    let missing = bundle.ctr_oci(&env).args(["exec", &id, "no-such-program"]).output();
    assert!(!missing.success() && missing.stderr.contains("executable file not found in $PATH"), "{}", missing.stderr);
    bundle.ctr_oci(&env).args(["pause", &id]).ok();
    assert_eq!(bundle.state(&env, &id)["status"], "paused");
    assert_eq!(freezer_of(pid), "frozen");
    bundle.ctr_oci(&env).args(["resume", &id]).ok();
    assert_eq!(bundle.state(&env, &id)["status"], "running");
    assert_eq!(freezer_of(pid), "thawed");
    let refused = bundle.ctr_oci(&env).args(["delete", &id]).output();
    assert!(!refused.success() && refused.stderr.contains("not stopped"), "{}", refused.stderr);
    let refused = bundle.ctr_oci(&env).args(["start", &id]).output();
    assert!(!refused.success() && refused.stderr.contains("already running"), "{}", refused.stderr);

    bundle.ctr_oci(&env).args(["kill", &id, "KILL"]).ok();
    let waited = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    assert_eq!(
        waited,
        nix::sys::wait::WaitStatus::Signaled(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL, false)
    );
    let state = bundle.state(&env, &id);
    assert_eq!((state["status"].as_str(), state["pid"].as_i64()), (Some("stopped"), Some(0)));
    let not_running = bundle.ctr_oci(&env).args(["kill", &id]).output();
    assert!(!not_running.success() && not_running.stderr.contains("container not running"), "{}", not_running.stderr);

    bundle.ctr_oci(&env).args(["delete", &id]).ok();
    assert!(bundle.cgroup_dirs().is_empty(), "delete left the cgroup: {:?}", bundle.cgroup_dirs());
    for verb in ["state", "kill", "delete", "start"] {
        let gone = bundle.ctr_oci(&env).args([verb, &id]).output();
        assert!(!gone.success() && gone.stderr.contains("does not exist"), "{verb}: {}", gone.stderr);
    }
    let listed = bundle.ctr_oci(&env).args(["list", "--format", "json"]).ok();
    assert_eq!(listed.stdout.trim(), "[]");
}

#[test]
fn oci_process_user_rlimits_seccomp_and_masks_from_the_spec() {
    let Some(env) = ctr_tests::env() else { return };
    let bundle = Bundle::new(&env, |c| {
        c["process"]["args"] = serde_json::json!([
            "sh",
            "-c",
            "id; pwd; ulimit -n; mkdir /tmp/x 2>/dev/null || echo mkdir refused; \
             wc -c < /proc/keys; awk '$2 == \"/proc/sys\" { print substr($4, 1, 2) }' /proc/mounts; grep CapEff /proc/self/status | cut -f2; echo $GREETING"
        ]);
        c["process"]["user"] = serde_json::json!({ "uid": 65534, "gid": 65534, "additionalGids": [10] });
        c["process"]["cwd"] = serde_json::json!("/tmp");
        c["process"]["env"] = serde_json::json!(["PATH=/bin:/usr/bin", "GREETING=hello"]);
        c["process"]["rlimits"] = serde_json::json!([{ "type": "RLIMIT_NOFILE", "hard": 4096, "soft": 2048 }]);
        c["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 }]
        });
    });
    let id = ctr_tests::unique_name("proc-");
    let out = bundle.ctr_oci(&env).args(["run", "--bundle"]).arg(&bundle.dir).arg(&id).output();
    assert!(out.success(), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "uid=65534(nobody) gid=65534(nobody) groups=10(wheel)");
    assert_eq!(
        &lines[1..],
        ["/tmp", "2048", "mkdir refused", "0", "ro", "0000000020000420", "hello"],
        "stderr:\n{}",
        out.stderr
    );
}

#[test]
fn oci_errors_carry_the_words_callers_look_for() {
    let Some(env) = ctr_tests::env() else { return };
    let bundle = Bundle::new(&env, |c| c["process"]["args"] = serde_json::json!(["no-such-program"]));
    let id = ctr_tests::unique_name("err-");
    let log = bundle.dir.join("log.json");
    let out = env
        .as_root(&bundle.ctr_oci, ["--log"])
        .arg(&log)
        .args(["--log-format=json", "--root"])
        .arg(&bundle.root)
        .args(["run", "--bundle"])
        .arg(&bundle.dir)
        .arg(&id)
        .output();
    assert!(!out.success() && out.stderr.contains("executable file not found in $PATH"), "{}", out.stderr);
    let line: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("executable file not found in $PATH"));
    assert!(line["time"].as_str().is_some_and(|t| t.ends_with('Z') && t.contains('T')));
    assert!(!bundle.root.join(&id).exists() && bundle.cgroup_dirs().is_empty(), "a failed create left something");

    let unsupported = Bundle::new(&env, |c| c["hooks"] = serde_json::json!({ "prestart": [{ "path": "/bin/true" }] }));
    let out = unsupported.ctr_oci(&env).args(["run", "--bundle"]).arg(&unsupported.dir).arg(&id).output();
    assert!(!out.success() && out.stderr.contains("hooks are not supported"), "{}", out.stderr);
}

/// Debian's podman (4.3) with `--runtime ctr-oci`, rootful, offline: the
/// test's Alpine rootfs imported into a throwaway store (vfs, so no mount
/// is left), no network, no cgroup (`--cgroups=disabled`, which podman
/// allows only for runtimes listed in containers.conf's
/// `runtime_supports_nocgroup`; a podman cgroup would leave the test's
/// memory cgroup). The ulimits are explicit because podman asks for a
/// nofile and nproc above this host's hard limits, which root here cannot
/// raise (crun fails the same way). With no cgroup, nothing minds the
/// hybrid host, so unlike crun this needs no private mount namespace.
#[test]
fn podman_runs_execs_stops_and_removes_through_ctr_oci() {
    let Some(env) = ctr_tests::env() else { return };
    let dir = std::env::temp_dir().join(ctr_tests::unique_name("ctr-oci-podman-"));
    std::fs::create_dir_all(&dir).unwrap();
    let ctr_oci = env.prefix.join("bin/ctr-oci");
    let conf = dir.join("containers.conf");
    // Podman looks the runtime up in that list by its file name.
    std::fs::write(&conf, "[engine]\nruntime_supports_nocgroup = [\"ctr-oci\"]\n").unwrap();
    let podman = |args: &[&str]| {
        env.as_root("podman", ["--root"])
            .arg(dir.join("storage"))
            .arg("--runroot")
            .arg(dir.join("run"))
            .arg("--tmpdir")
            .arg(dir.join("tmp"))
            .args(["--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs"])
            .args(args)
            .env("CONTAINERS_CONF", &conf)
            .timeout(Duration::from_secs(120))
    };
    let alpine = env.alpine.to_str().unwrap();
    podman(&["import", alpine, "localhost/ctr-oci-alpine"]).ok();
    let runtime = ctr_oci.to_str().unwrap();
    let out = podman(&[
        "--runtime",
        runtime,
        "run",
        "--rm",
        "--network",
        "none",
        "--cgroups=disabled",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "--hostname",
        "via-podman",
        "localhost/ctr-oci-alpine",
        "sh",
        "-c",
        "echo hi; hostname; exit 3",
    ])
    .output();
    // A detached container, podman exec into it (conmon runs `ctr-oci exec
    // --detach --process FILE`), then podman stop and rm.
    let limits = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];
    let mut detached = vec!["--runtime", runtime, "run", "-d", "--network", "none", "--cgroups=disabled"];
    detached.extend(limits);
    detached.extend(["localhost/ctr-oci-alpine", "sleep", "300"]);
    let started = podman(&detached).output();
    let container = started.stdout.trim().to_owned();
    let exec = podman(&["--runtime", runtime, "exec", &container, "sh", "-c", "echo from exec; exit 4"]).output();
    let stopped = podman(&["--runtime", runtime, "stop", "-t", "1", &container]).output();
    let removed = podman(&["--runtime", runtime, "rm", &container]).output();
    let listed = podman(&["ps", "-a", "-q"]).ok();
    let _ = podman(&["rmi", "-a", "-f"]).output();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.code(), Some(3), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "hi\nvia-podman\n", "stderr:\n{}", out.stderr);
    assert!(started.success(), "podman run -d: {}", started.stderr);
    assert_eq!((exec.code(), exec.stdout.as_str()), (Some(4), "from exec\n"), "podman exec: {}", exec.stderr);
    assert!(stopped.success() && removed.success(), "podman stop: {}\npodman rm: {}", stopped.stderr, removed.stderr);
    assert_eq!(listed.stdout.trim(), "", "podman left a container");
}

/// containerd 1.6 (Debian's) with `ctr run --runc-binary ctr-oci`: its
/// runc shim drives create, start, state, kill and delete with runc's
/// flags (`--root`, `--log`, `--log-format json`). A private containerd
/// (its own root, state and socket, no CRI) is started for the test and
/// killed after it; `--rootfs` needs no image or snapshot. The relative
/// `--cgroup` keeps the container beneath the test's own cgroup.
#[test]
fn containerd_runs_a_container_through_ctr_oci() {
    let Some(env) = ctr_tests::env() else { return };
    let dir = std::env::temp_dir().join(ctr_tests::unique_name("ctr-oci-ctrd-"));
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let status = Command::new("tar").arg("-xzf").arg(&env.alpine).arg("-C").arg(&rootfs).status().unwrap();
    assert!(status.success());
    let socket = dir.join("sock");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "version = 2\nroot = {:?}\nstate = {:?}\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = {:?}\n",
            dir.join("root").display().to_string(),
            dir.join("state").display().to_string(),
            socket.display().to_string()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
    let mut containerd = Command::new("containerd")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("containerd (Debian's containerd package) is not installed");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let cgroup_name = ctr_tests::unique_name("ctr-oci-ctrd-cg-");
    let id = ctr_tests::unique_name("ctrd");
    let out = env
        .as_root("/usr/bin/ctr", ["--address"])
        .arg(&socket)
        .args(["run", "--rm", "--runc-binary"])
        .arg(env.prefix.join("bin/ctr-oci"))
        .args(["--cgroup", &cgroup_name, "--rootfs"])
        .arg(&rootfs)
        .args([&id, "/bin/sh", "-c", "echo hi; grep :memory: /proc/self/cgroup; exit 5"])
        .timeout(Duration::from_secs(60))
        .output();
    let _ = containerd.kill();
    let _ = containerd.wait();
    let containerd_log = std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.code(), Some(5), "stdout:\n{}\nstderr:\n{}\ncontainerd:\n{containerd_log}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "hi");
    assert!(lines[1].ends_with(&format!("/{cgroup_name}")), "the container ran in {}", lines[1]);
    let own = ctr_tests::procfs::own_cgroup_dirs(
        &std::fs::read_to_string("/proc/self/cgroup").unwrap(),
        &std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
    );
    let left: Vec<PathBuf> = own.iter().map(|d| d.join(&cgroup_name)).filter(|d| d.exists()).collect();
    assert!(left.is_empty(), "containerd's delete left the cgroup {left:?}");
}

#[test]
fn oci_run_passes_signals_to_the_container() {
    let Some(env) = ctr_tests::env() else { return };
    let bundle = Bundle::new(&env, |c| {
        c["process"]["args"] = serde_json::json!([
            "sh",
            "-c",
            "trap 'echo got TERM; exit 9' TERM; echo ready; while :; do sleep 0.1; done"
        ]);
    });
    let id = ctr_tests::unique_name("sig-");
    let mut run = bundle.ctr_oci(&env).args(["run", "--bundle"]).arg(&bundle.dir).arg(&id).spawn();
    run.wait_for_stdout("ready", Duration::from_secs(30));
    run.signal(nix::sys::signal::Signal::SIGTERM);
    let out = run.wait();
    assert_eq!(out.code(), Some(9), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert!(out.stdout.ends_with("got TERM\n"), "{}", out.stdout);
    assert!(!bundle.root.join(&id).exists() && bundle.cgroup_dirs().is_empty(), "run left its container");
}
