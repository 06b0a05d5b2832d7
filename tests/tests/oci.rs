//! `ctr-oci`, the OCI runtime (issue 12), driven as containerd and podman
//! drive runc: as root, on a bundle made from the test's Alpine rootfs
//! with `ctr-oci spec`'s config.json. Each test checks what the kernel
//! shows (the process's cgroup file, its exit status, its hostname) and
//! what `state` reports, and leaves no state directory or cgroup behind.
//! The first also runs the same bundle under crun for comparison.

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
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
        self.create_with(&[], id, pid_file)
    }

    /// `create` after the global flags `global`.
    fn create_with(&self, global: &[&str], id: &str, pid_file: &Path) -> (bool, String) {
        let err = self.dir.join(format!("{id}.create.err"));
        let status = Command::new(&self.ctr_oci)
            .arg("--root")
            .arg(&self.root)
            .args(global)
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
    let crun = env.crun().args(["run", "--bundle"]).arg(&bundle.dir).arg(format!("{id}-crun")).output();
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
    // update --resources (from stdin) rewrites the kernel's files; events
    // --stats reads them back.
    bundle
        .ctr_oci(&env)
        .args(["update", "--resources", "-", &id])
        .stdin(format!(r#"{{"memory":{{"limit":{}}},"pids":{{"limit":42}}}}"#, 2 * MIB_64))
        .ok();
    assert_eq!((memory_limit_of(pid), pids_limit_of(pid).as_str()), (2 * MIB_64, "42"));
    let stats: serde_json::Value =
        serde_json::from_str(&bundle.ctr_oci(&env).args(["events", "--stats", &id]).ok().stdout).unwrap();
    assert_eq!((stats["type"].as_str(), stats["id"].as_str()), (Some("stats"), Some(id.as_str())));
    assert_eq!(stats["data"]["memory"]["usage"]["limit"], 2 * MIB_64);
    assert_eq!(stats["data"]["pids"]["current"], 1);
    assert!(stats["data"]["memory"]["usage"]["usage"].as_u64().is_some_and(|u| u > 0), "{stats}");
    let refused = bundle
        .ctr_oci(&env)
        .args(["update", "--resources", "-", &id])
        .stdin(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":1}]}"#)
        .output();
    assert!(!refused.success() && refused.stderr.contains("hugepageLimits is not supported"), "{}", refused.stderr);
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
            "echo $(id -u) $(id -g) $(id -G); pwd; ulimit -n; mkdir /tmp/x 2>/dev/null || echo mkdir refused; \
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
    // Numbers, not names: the test image's /etc/group may be Alpine's or
    // Debian's busybox rootfs's.
    assert_eq!(lines[0], "65534 65534 65534 10");
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

    let unsupported = Bundle::new(&env, |c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({ "type": "time" }));
    });
    let out = unsupported.ctr_oci(&env).args(["run", "--bundle"]).arg(&unsupported.dir).arg(&id).output();
    assert!(!out.success() && out.stderr.contains("time namespace is not supported"), "{}", out.stderr);
}

/// A throwaway rootful podman (Debian's 4.3) with `--runtime ctr-oci` and
/// podman's defaults otherwise (cgroups through cgroupfs, its default
/// ulimits and pids limit), offline: the test's Alpine rootfs imported into
/// a store of its own (vfs, so no mount is left), no network. Its
/// containers' cgroups, and conmon's, go beneath `parent`, a path below the
/// test's own memory cgroup (podman's default, /libpod_parent, would leave
/// it); what podman and ctr-oci leave of that path in any hierarchy is
/// removed on drop.
struct Podman<'a> {
    env: &'a ctr_tests::Env,
    dir: PathBuf,
    runtime: String,
    parent: String,
    /// Per hierarchy, the directories of `parent` that did not exist yet.
    made: Vec<PathBuf>,
}

const PODMAN_IMAGE: &str = "localhost/ctr-oci-alpine";

impl<'a> Podman<'a> {
    fn new(env: &'a ctr_tests::Env) -> Self {
        let dir = std::env::temp_dir().join(ctr_tests::unique_name("ctr-oci-podman-"));
        std::fs::create_dir_all(&dir).unwrap();
        let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let memberships = ctr_tests::procfs::parse_proc_cgroup(&text);
        let own = memberships
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == "memory"))
            .or_else(|| memberships.iter().find(|m| m.hierarchy == 0))
            .map(|m| m.path.trim_end_matches('/').to_owned())
            .unwrap();
        let parent = format!("{own}/{}", ctr_tests::unique_name("ctr-oci-podman-cg-"));
        let mut made = Vec::new();
        for mount_point in cgroup_mount_points() {
            let mut at = mount_point;
            for component in parent.split('/').filter(|c| !c.is_empty()) {
                at.push(component);
                if !at.exists() {
                    made.push(at.clone());
                }
            }
        }
        let runtime = env.prefix.join("bin/ctr-oci").to_str().unwrap().to_owned();
        Self { env, dir, runtime, parent, made }
    }

    fn cmd(&self, args: &[&str]) -> ctr_tests::CtrCommand {
        self.env
            .as_root("podman", ["--root"])
            .arg(self.dir.join("storage"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(["--storage-driver", "vfs", "--events-backend", "none", "--runtime", &self.runtime])
            .args(args)
            .timeout(Duration::from_secs(120))
    }

    /// `podman run` with the test's network and cgroup parent, then `args`.
    fn run(&self, args: &[&str]) -> ctr_tests::CtrCommand {
        self.cmd(&["run", "--network", "none", "--cgroup-parent", &self.parent]).args(args)
    }

    /// What is left of the cgroup parent in any hierarchy, deepest first.
    fn cgroups_left(&self) -> Vec<PathBuf> {
        let mut left = Vec::new();
        for mount_point in cgroup_mount_points() {
            let dir = mount_point.join(self.parent.trim_start_matches('/'));
            left.extend(ctr_tests::procfs::subdirs_deepest_first(&dir));
        }
        left
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-a", "-f"]).output();
        let _ = self.cmd(&["rmi", "-a", "-f"]).output();
        for dir in self.cgroups_left().iter().chain(self.made.iter().rev()) {
            let _ = std::fs::remove_dir(dir);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every mounted cgroup hierarchy's mount point (each once).
fn cgroup_mount_points() -> Vec<PathBuf> {
    let mounts = ctr_tests::procfs::parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap());
    let mut points: Vec<PathBuf> = mounts
        .iter()
        .filter(|m| (m.fstype == "cgroup" || m.fstype == "cgroup2") && m.root == "/")
        .map(|m| m.mount_point.clone())
        .collect();
    points.sort();
    points.dedup();
    points
}

/// The pids limit of a process's cgroup, read on the host.
fn pids_limit_of(pid: i32) -> String {
    let dirs = ctr_tests::procfs::own_cgroup_dirs(
        &std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
        &std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
    );
    let file = dirs.iter().map(|d| d.join("pids.max")).find(|f| f.exists()).expect("no pids.max for the container");
    std::fs::read_to_string(file).unwrap().trim().to_owned()
}

/// podman with its defaults (cgroups on, its ulimits, no `--cgroups` or
/// `--ulimit` flag): run --rm; run -d with --memory and --pids-limit (the
/// kernel's files for the container's cgroup hold them), exec, exec -t,
/// stop and rm; a terminal (-t, and -i -t with input); and nothing left.
#[test]
fn podman_runs_execs_stops_and_removes_through_ctr_oci() {
    let Some(env) = ctr_tests::env() else { return };
    let podman = Podman::new(&env);
    podman.cmd(&["import", env.alpine.to_str().unwrap(), PODMAN_IMAGE]).ok();
    let out = podman
        .run(&["--rm", "--hostname", "via-podman", PODMAN_IMAGE, "sh", "-c", "echo hi; hostname; exit 3"])
        .output();
    assert_eq!(out.code(), Some(3), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "hi\nvia-podman\n", "stderr:\n{}", out.stderr);

    let started = podman.run(&["-d", "--memory", "64m", "--pids-limit", "50", PODMAN_IMAGE, "sleep", "300"]).output();
    assert!(started.success(), "podman run -d: {}", started.stderr);
    let container = started.stdout.trim().to_owned();
    let pid: i32 =
        podman.cmd(&["inspect", "--format", "{{.State.Pid}}", &container]).ok().stdout.trim().parse().unwrap();
    assert_eq!(memory_limit_of(pid), MIB_64);
    assert_eq!(pids_limit_of(pid), "50");
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let leaf = format!("{}/libpod-{container}", podman.parent);
    assert!(
        cgroup.lines().any(|l| l.contains(":memory:") && l.ends_with(&leaf)) || cgroup.contains(&format!("0::{leaf}")),
        "{cgroup}"
    );
    let exec = podman.cmd(&["exec", &container, "sh", "-c", "echo from exec; exit 4"]).output();
    assert_eq!((exec.code(), exec.stdout.as_str()), (Some(4), "from exec\n"), "podman exec: {}", exec.stderr);
    let exec_tty = podman.cmd(&["exec", "-t", &container, "tty"]).output();
    assert!(
        exec_tty.success() && exec_tty.stdout.starts_with("/dev/pts/"),
        "podman exec -t: {}\n{}",
        exec_tty.stdout,
        exec_tty.stderr
    );
    let stopped = podman.cmd(&["stop", "-t", "1", &container]).output();
    let removed = podman.cmd(&["rm", &container]).output();
    assert!(stopped.success() && removed.success(), "podman stop: {}\npodman rm: {}", stopped.stderr, removed.stderr);
    assert!(
        !podman.cgroups_left().iter().any(|d| d.ends_with(format!("libpod-{container}"))),
        "rm left the container's cgroup"
    );

    let tty = podman.run(&["--rm", "-t", PODMAN_IMAGE, "tty"]).output();
    assert_eq!((tty.code(), tty.stdout.as_str()), (Some(0), "/dev/pts/0\r\n"), "podman run -t: {}", tty.stderr);
    let interactive = podman
        .run(&["--rm", "-i", "-t", PODMAN_IMAGE, "sh", "-c", "read line; echo got:$line"])
        .stdin("hello\n")
        .output();
    assert!(
        interactive.success() && interactive.stdout.contains("got:hello"),
        "podman run -it: {}\n{}",
        interactive.stdout,
        interactive.stderr
    );
    let listed = podman.cmd(&["ps", "-a", "-q"]).ok();
    assert_eq!(listed.stdout.trim(), "", "podman left a container");
}

/// A private containerd (its own root, state and socket under a new
/// directory, no CRI) and the Alpine rootfs beside it: (directory,
/// rootfs, socket, process). The caller kills it and removes the directory.
fn private_containerd(env: &ctr_tests::Env) -> (PathBuf, PathBuf, PathBuf, std::process::Child) {
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
    let containerd = Command::new("containerd")
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
    (dir, rootfs, socket, containerd)
}

/// containerd's runc shim with `--runc-systemd-cgroup` (its runc options'
/// `SystemdCgroup = true`): ctr-oci gets `--systemd-cgroup` and a
/// `slice:prefix:name` path; with no systemd running it makes the scope
/// through cgroupfs, and where systemd is PID 1 (the systemd guest)
/// systemd makes it over D-Bus, and shows it active while the container
/// runs. The container runs in it, and it is gone after.
/// Pure cgroup v2 only (the VM legs), as the path is from the root.
#[test]
fn containerd_runs_ctr_oci_with_the_systemd_cgroup_driver() {
    let Some(env) = ctr_tests::env() else { return };
    if !pure_cgroup_v2() {
        eprintln!("skipped: runs in the pure cgroup v2 guest (cargo xtask test --legs vm)");
        return;
    }
    let (dir, rootfs, socket, mut containerd) = private_containerd(&env);
    let id = ctr_tests::unique_name("ctrdsd");
    let unit = format!("ctrd-{id}.scope");
    let run = env
        .as_root("/usr/bin/ctr", ["--address"])
        .arg(&socket)
        .args(["run", "--rm", "--runc-systemd-cgroup", "--runc-binary"])
        .arg(env.prefix.join("bin/ctr-oci"))
        .args(["--cgroup", &format!("system.slice:ctrd:{id}"), "--rootfs"])
        .arg(&rootfs)
        .args([&id, "/bin/sh", "-c", "cat /proc/self/cgroup; while [ ! -e /go ]; do sleep 0.1; done; exit 5"])
        .timeout(Duration::from_secs(120));
    let running = std::thread::spawn(move || run.output());
    // Where systemd runs, it knows the scope while the container runs.
    let mut seen = Vec::new();
    if systemd_is_pid_1() {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && !running.is_finished() {
            seen = systemctl_show(&unit, &["ActiveState", "ControlGroup", "Delegate"]);
            if seen.first().is_some_and(|s| s == "ActiveState=active") {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    std::fs::write(rootfs.join("go"), "").unwrap();
    let out = running.join().unwrap();
    let _ = containerd.kill();
    let _ = containerd.wait();
    let containerd_log = std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.code(), Some(5), "stdout:\n{}\nstderr:\n{}\ncontainerd:\n{containerd_log}", out.stdout, out.stderr);
    assert_eq!(out.stdout, format!("0::/system.slice/{unit}\n"), "{}", out.stderr);
    if systemd_is_pid_1() {
        assert_eq!(
            seen,
            ["ActiveState=active".to_owned(), format!("ControlGroup=/system.slice/{unit}"), "Delegate=yes".to_owned()]
        );
        assert_eq!(systemctl_show(&unit, &["LoadState"]), ["LoadState=not-found"], "containerd's delete left {unit}");
    }
    let scope = format!("/sys/fs/cgroup/system.slice/{unit}");
    assert!(!Path::new(&scope).exists(), "containerd's delete left {scope}");
}

/// containerd 1.6 (Debian's) with `ctr run --runc-binary ctr-oci`: its
/// runc shim drives create, start, state, kill and delete with runc's
/// flags (`--root`, `--log`, `--log-format json`), and `--console-socket`
/// for `ctr run -t`. A private containerd
/// (its own root, state and socket, no CRI) is started for the test and
/// killed after it; `--rootfs` needs no image or snapshot. The relative
/// `--cgroup` keeps the container beneath the test's own cgroup.
#[test]
fn containerd_runs_a_container_through_ctr_oci() {
    let Some(env) = ctr_tests::env() else { return };
    let (dir, rootfs, socket, mut containerd) = private_containerd(&env);
    let cgroup_name = ctr_tests::unique_name("ctr-oci-ctrd-cg-");
    let id = ctr_tests::unique_name("ctrd");
    let out = env
        .as_root("/usr/bin/ctr", ["--address"])
        .arg(&socket)
        .args(["run", "--rm", "--runc-binary"])
        .arg(env.prefix.join("bin/ctr-oci"))
        .args(["--cgroup", &cgroup_name, "--rootfs"])
        .arg(&rootfs)
        .args([&id, "/bin/sh", "-c", "echo hi; grep :memory: /proc/self/cgroup || grep ^0:: /proc/self/cgroup; exit 5"])
        .timeout(Duration::from_secs(60))
        .output();
    // `ctr run -t` wants a terminal of its own: script(1) gives it one. The
    // shim receives the container's terminal over its console socket.
    let tty_command = format!(
        "/usr/bin/ctr --address {} run --rm -t --runc-binary {} --cgroup {cgroup_name} --rootfs {} {id}-tty /bin/sh -c 'tty; echo ok'",
        socket.display(),
        env.prefix.join("bin/ctr-oci").display(),
        rootfs.display()
    );
    let tty = env.as_root("script", ["-qec", &tty_command, "/dev/null"]).timeout(Duration::from_secs(60)).output();
    let _ = containerd.kill();
    let _ = containerd.wait();
    let containerd_log = std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.code(), Some(5), "stdout:\n{}\nstderr:\n{}\ncontainerd:\n{containerd_log}", out.stdout, out.stderr);
    assert!(
        tty.success() && tty.stdout.contains("/dev/pts/0\r") && tty.stdout.contains("ok\r"),
        "ctr run -t: {:?}\n{}",
        tty.stdout,
        tty.stderr
    );
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

/// The terminal master a runtime sends over a console socket (SCM_RIGHTS),
/// as containerd's shim and conmon receive it.
fn receive_terminal(listener: &UnixListener) -> OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    // Polled, so that a runtime that fails before connecting fails the
    // test instead of hanging it.
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("no connection on the console socket: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    let mut name = [0u8; 256];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut name)];
    let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC).unwrap();
    let fd = msg
        .cmsgs()
        .unwrap()
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .expect("the console socket carried no descriptor");
    // SAFETY: the kernel just installed this descriptor for us; nothing
    // else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `process.terminal` with `--console-socket`: the master end arrives over
/// the socket; in the container the slave is the standard streams and the
/// controlling terminal (its tty_nr in /proc/PID/stat), owned by the
/// process's user (uid 65534 reads and writes it); what we type arrives.
#[test]
fn oci_terminal_goes_over_the_console_socket() {
    let Some(env) = ctr_tests::env() else { return };
    let bundle = Bundle::new(&env, |c| {
        c["process"]["terminal"] = serde_json::json!(true);
        c["process"]["user"] = serde_json::json!({ "uid": 65534, "gid": 65534 });
        c["process"]["args"] = serde_json::json!([
            "sh",
            "-c",
            "tty; test -t 0 && test -t 1 && test -t 2 && echo all-tty; echo ctty=$(cut -d' ' -f7 /proc/$$/stat); \
             read line; echo got:$line"
        ]);
    });
    let socket = bundle.dir.join("console.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let id = ctr_tests::unique_name("tty-");
    let run = bundle
        .ctr_oci(&env)
        .args(["run", "--console-socket"])
        .arg(&socket)
        .arg("--bundle")
        .arg(&bundle.dir)
        .arg(&id)
        .spawn();
    let master = receive_terminal(&listener);
    let mut terminal = std::fs::File::from(master);
    terminal.write_all(b"hello\n").unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    // The master reads EIO once the last slave descriptor is closed.
    while let Ok(n @ 1..) = terminal.read(&mut chunk) {
        seen.extend_from_slice(&chunk[..n]);
    }
    let out = run.wait();
    let seen = String::from_utf8_lossy(&seen).replace('\r', "");
    assert!(out.success(), "stdout:\n{}\nstderr:\n{}\nterminal:\n{seen}", out.stdout, out.stderr);
    let pts0 = (136 << 8).to_string();
    for line in ["/dev/pts/0", "all-tty", &format!("ctty={pts0}"), "got:hello"] {
        assert!(seen.lines().any(|l| l == line), "no line {line:?} on the terminal:\n{seen}");
    }
    assert_eq!(out.stdout, "", "the process wrote to ctr-oci's stdout, not the terminal");

    // Without a socket, a terminal is refused by name.
    let refused = bundle.ctr_oci(&env).args(["run", "--bundle"]).arg(&bundle.dir).arg(&id).output();
    assert!(!refused.success() && refused.stderr.contains("--console-socket"), "{}", refused.stderr);
    assert!(!bundle.root.join(&id).exists() && bundle.cgroup_dirs().is_empty(), "run left its container");
}

/// A systemd cgroupsPath that is not `slice:prefix:name` with a real
/// slice name, or `--systemd-cgroup` with a plain path, is refused by name
/// before anything is made (a well-formed one makes a cgroup from the
/// hierarchies' roots, so it is tested only in the pure cgroup-v2 guest:
/// `oci_systemd_cgroups_path_is_a_scope_in_its_slice`).
#[test]
fn oci_refuses_malformed_systemd_cgroups_paths_clearly() {
    let Some(env) = ctr_tests::env() else { return };
    let id = ctr_tests::unique_name("sd-");
    let bundle = Bundle::new(&env, |_| {});
    let config = bundle.dir.join("config.json");
    for (path, flag) in [("machine:libpod:abc", false), ("a-.slice:p:abc", false), ("x:y", false), ("plain", true)] {
        let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
        c["linux"]["cgroupsPath"] = serde_json::json!(path);
        std::fs::write(&config, serde_json::to_vec(&c).unwrap()).unwrap();
        let mut run = bundle.ctr_oci(&env);
        if flag {
            run = run.arg("--systemd-cgroup");
        }
        let out = run.args(["run", "--bundle"]).arg(&bundle.dir).arg(&id).output();
        assert!(!out.success() && out.stderr.contains(&format!("{path:?}")), "{path}: {}", out.stderr);
        assert!(!bundle.root.join(&id).exists(), "a refused create left its state directory");
    }
}

/// Whether this is a pure cgroup v2 machine (the VM leg's guest), where a
/// cgroup from the hierarchy's root does not leave a v1 memory cgroup.
fn pure_cgroup_v2() -> bool {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists() && own.lines().all(|l| l.starts_with("0::"))
}

/// runc's systemd naming without a systemd: `system.slice:ctr:ID` is the
/// cgroup /sys/fs/cgroup/system.slice/ctr-ID.scope, holding the process,
/// and delete removes it; `--systemd-cgroup` with no slice means
/// system.slice. Pure cgroup v2 only (the VM leg): on the hybrid host the
/// path would leave the test's memory cgroup.
#[test]
fn oci_systemd_cgroups_path_is_a_scope_in_its_slice() {
    let Some(env) = ctr_tests::env() else { return };
    if !pure_cgroup_v2() {
        eprintln!("skipped: runs in the pure cgroup v2 guest (cargo xtask test --legs vm)");
        return;
    }
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    for (flags, named) in [(&[][..], "system.slice:ctr:{id}"), (&["--systemd-cgroup"][..], ":ctr:{id}")] {
        let id = ctr_tests::unique_name("scope-");
        let bundle = Bundle::new(&env, |c| {
            c["process"]["args"] = serde_json::json!(["sleep", "300"]);
            c["linux"]["cgroupsPath"] = serde_json::json!(named.replace("{id}", &id));
            c["linux"]["resources"]["pids"] = serde_json::json!({ "limit": 33 });
        });
        let pid_file = bundle.dir.join("pid");
        let (created, stderr) = bundle.create_with(flags, &id, &pid_file);
        assert!(created, "create {named}: {stderr}");
        let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
        let scope = PathBuf::from(format!("/sys/fs/cgroup/system.slice/ctr-{id}.scope"));
        assert_eq!(
            std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
            format!("0::/system.slice/ctr-{id}.scope\n")
        );
        assert_eq!(std::fs::read_to_string(scope.join("cgroup.procs")).unwrap(), format!("{pid}\n"));
        assert_eq!(std::fs::read_to_string(scope.join("pids.max")).unwrap(), "33\n");
        bundle.ctr_oci(&env).args(["delete", "--force", &id]).ok();
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        assert!(!scope.exists(), "delete left {}", scope.display());
    }
}

/// Whether systemd is PID 1 and manages the cgroups (sd_booted(3)'s test):
/// the systemd guest (`cargo xtask test --legs systemd`).
fn systemd_is_pid_1() -> bool {
    Path::new("/run/systemd/system").is_dir()
        && std::fs::read_to_string("/proc/1/comm").is_ok_and(|comm| comm.trim() == "systemd")
}

/// `systemctl show` of `unit`'s properties `names`, as `Name=value` lines.
fn systemctl_show(unit: &str, names: &[&str]) -> Vec<String> {
    let mut show = Command::new("systemctl");
    show.args(["show", unit]);
    for name in names {
        show.args(["-p", name]);
    }
    let out = show.output().expect("systemctl");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// Where systemd is PID 1, `--systemd-cgroup` with `system.slice:ctr:ID`
/// makes systemd's transient scope `ctr-ID.scope` over D-Bus: the process
/// is in its cgroup, systemd shows the scope with the bundle's limits
/// (MemoryMax, TasksMax) and Delegate=yes, and memory.max holds the limit;
/// `update` changes both systemd's properties and the file; after delete
/// neither the unit nor its cgroup is left.
#[test]
fn oci_systemd_cgroup_driver_makes_a_scope_through_systemd() {
    let Some(env) = ctr_tests::env() else { return };
    if !systemd_is_pid_1() {
        eprintln!("skipped: runs where systemd is PID 1 (cargo xtask test --legs systemd)");
        return;
    }
    // No subreaper: it is process-wide, and would take containerd's shims
    // from systemd in the test that runs beside this one.
    let id = ctr_tests::unique_name("sdscope-");
    let unit = format!("ctr-{id}.scope");
    let bundle = Bundle::new(&env, |c| {
        c["process"]["args"] = serde_json::json!(["sleep", "300"]);
        c["linux"]["cgroupsPath"] = serde_json::json!(format!("system.slice:ctr:{id}"));
        c["linux"]["resources"]["memory"] = serde_json::json!({ "limit": MIB_64 });
        c["linux"]["resources"]["pids"] = serde_json::json!({ "limit": 33 });
    });
    let pid_file = bundle.dir.join("pid");
    let (created, stderr) = bundle.create_with(&["--systemd-cgroup"], &id, &pid_file);
    assert!(created, "create: {stderr}");
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let scope = PathBuf::from(format!("/sys/fs/cgroup/system.slice/{unit}"));
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(), format!("0::/system.slice/{unit}\n"));
    assert_eq!(
        systemctl_show(&unit, &["ActiveState", "ControlGroup", "Delegate", "MemoryMax", "Slice", "TasksMax"]),
        [
            "ActiveState=active".to_owned(),
            format!("ControlGroup=/system.slice/{unit}"),
            "Delegate=yes".to_owned(),
            format!("MemoryMax={MIB_64}"),
            "Slice=system.slice".to_owned(),
            "TasksMax=33".to_owned(),
        ]
    );
    assert_eq!(std::fs::read_to_string(scope.join("memory.max")).unwrap(), format!("{MIB_64}\n"));
    assert_eq!(std::fs::read_to_string(scope.join("pids.max")).unwrap(), "33\n");
    assert_eq!(bundle.state(&env, &id)["status"], "created");

    let resources = bundle.dir.join("resources.json");
    std::fs::write(&resources, serde_json::json!({ "memory": { "limit": MIB_64 / 2 } }).to_string()).unwrap();
    bundle.ctr_oci(&env).args(["update", "--resources"]).arg(&resources).arg(&id).ok();
    assert_eq!(systemctl_show(&unit, &["MemoryMax"]), [format!("MemoryMax={}", MIB_64 / 2)]);
    assert_eq!(std::fs::read_to_string(scope.join("memory.max")).unwrap(), format!("{}\n", MIB_64 / 2));

    bundle.ctr_oci(&env).args(["delete", "--force", &id]).ok();
    assert!(!scope.exists(), "delete left {}", scope.display());
    // Killed by delete, then reaped by systemd (its parent since create exited).
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "delete left the process {pid}");
    assert_eq!(
        systemctl_show(&unit, &["ActiveState", "LoadState"]),
        ["ActiveState=inactive", "LoadState=not-found"],
        "delete left the unit"
    );
}

/// The device cgroup from `linux.resources.devices` (ctr-oci spec's deny
/// all, then the test's rules, then the devices every container gets),
/// from inside the container on nodes the test made in its rootfs: a
/// default device (/dev/full's 1:7) reads; loop-control (10:237), allowed
/// `r`, opens for reading but not for writing; loop0 (block 7:0), not
/// allowed, does not open (EPERM from the device cgroup, before any
/// driver). `update` with "deny all" then a rule for block 7:* lets loop0
/// open, and /dev/kmsg, made from linux.devices, still opens for writing
/// (update allows the container's own devices again, as create did). On
/// the hybrid host that is v1's devices.allow/deny; in the pure cgroup v2
/// guest, the BPF device program (replaced by `update`).
#[test]
fn oci_device_rules_hold_inside_the_container() {
    let Some(env) = ctr_tests::env() else { return };
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    const PROBE: &str = "probe() { e=$( (exec 3<\"$1\") 2>&1 ) && echo \"$1 r ok\" || echo \"$1 r ${e##*: }\"; \
        e=$( (exec 3>\"$1\") 2>&1 ) && echo \"$1 w ok\" || echo \"$1 w ${e##*: }\"; }; \
        head -c1 /dev/null && echo null ok; head -c1 /nodes/full | od -An -tx1; \
        probe /nodes/loopctl; probe /nodes/loop0; \
        e=$( (exec 3>/dev/kmsg) 2>&1 ) && echo \"kmsg w ok\" || echo \"kmsg w ${e##*: }\"";
    let bundle = Bundle::new(&env, |c| {
        c["process"]["args"] = serde_json::json!(["sh", "-c", format!("{PROBE}; exec sleep 300")]);
        let devices = c["linux"]["resources"]["devices"].as_array_mut().unwrap();
        devices.push(serde_json::json!({ "allow": true, "type": "c", "major": 10, "minor": 237, "access": "r" }));
        // Write-only opens of kmsg need no privilege: only the device cgroup decides.
        c["linux"]["devices"] =
            serde_json::json!([{ "path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o666 }]);
    });
    let nodes = bundle.dir.join("rootfs/nodes");
    std::fs::create_dir(&nodes).unwrap();
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    for (name, kind, major, minor) in
        [("full", SFlag::S_IFCHR, 1, 7), ("loopctl", SFlag::S_IFCHR, 10, 237), ("loop0", SFlag::S_IFBLK, 7, 0)]
    {
        mknod(&nodes.join(name), kind, Mode::from_bits_truncate(0o666), makedev(major, minor)).unwrap();
        std::fs::set_permissions(nodes.join(name), std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    }
    let id = ctr_tests::unique_name("dev-");
    let pid_file = bundle.dir.join("pid");
    let (created, stderr) = bundle.create(&id, &pid_file);
    assert!(created, "create failed: {stderr}");
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    bundle.ctr_oci(&env).args(["start", &id]).ok();
    let out_file = bundle.dir.join(format!("{id}.out"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&out_file).unwrap_or_default().lines().count() < 7 {
        assert!(Instant::now() < deadline, "the probe did not finish: {:?}", std::fs::read_to_string(&out_file));
        std::thread::sleep(Duration::from_millis(20));
    }
    let denied = "Operation not permitted";
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        format!(
            "null ok\n 00\n/nodes/loopctl r ok\n/nodes/loopctl w {denied}\n/nodes/loop0 r {denied}\n/nodes/loop0 w {denied}\nkmsg w ok\n"
        )
    );
    bundle
        .ctr_oci(&env)
        .args(["update", "--resources", "-", &id])
        .stdin(r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"b","major":7,"access":"r"}]}"#)
        .ok();
    let after = bundle.ctr_oci(&env).args(["exec", &id, "sh", "-c", PROBE]).output();
    assert!(after.success(), "{}", after.stderr);
    let lines: Vec<&str> = after.stdout.lines().collect();
    assert_eq!(lines[..2], ["null ok", " 00"], "{}", after.stdout);
    assert_eq!(
        lines[4..],
        ["/nodes/loop0 r ok".to_owned(), format!("/nodes/loop0 w {denied}"), "kmsg w ok".to_owned()],
        "{}",
        after.stdout
    );
    bundle.ctr_oci(&env).args(["delete", "--force", &id]).ok();
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    assert!(bundle.cgroup_dirs().is_empty(), "delete left the cgroup: {:?}", bundle.cgroup_dirs());
}

/// Every hook kind runs once, in order, with the state on stdin: the host
/// ones write where the test reads, startContainer (inside the container's
/// root) where the container's command reads. A hook past its timeout is
/// killed and fails create, which leaves nothing.
#[test]
fn oci_hooks_run_with_the_state_on_stdin() {
    let Some(env) = ctr_tests::env() else { return };
    let out_dir = std::env::temp_dir().join(ctr_tests::unique_name("ctr-oci-hooks-"));
    std::fs::create_dir_all(&out_dir).unwrap();
    let on_host = |kind: &str| {
        let file = out_dir.join(format!("{kind}.json"));
        serde_json::json!([{ "path": "/bin/sh", "args": ["sh", "-c", "cat > \"$0\"", file] }])
    };
    let bundle = Bundle::new(&env, |c| {
        c["root"]["readonly"] = serde_json::json!(false);
        c["process"]["args"] = serde_json::json!(["cat", "/tmp/startContainer.json"]);
        c["annotations"] = serde_json::json!({ "test": "hooks" });
        c["hooks"] = serde_json::json!({
            "prestart": on_host("prestart"),
            "createRuntime": on_host("createRuntime"),
            "createContainer": on_host("createContainer"),
            "startContainer": [{ "path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/startContainer.json"] }],
            "poststart": on_host("poststart"),
            "poststop": on_host("poststop"),
        });
    });
    let id = ctr_tests::unique_name("hooks-");
    let out = bundle.ctr_oci(&env).args(["run", "--bundle"]).arg(&bundle.dir).arg(&id).output();
    let read = |kind: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(out_dir.join(format!("{kind}.json")))
            .unwrap_or_else(|e| panic!("no {kind} state ({e}); ctr-oci said: {}", out.stderr));
        serde_json::from_str(&text).unwrap()
    };
    assert!(out.success(), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    let start: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let states =
        [read("prestart"), read("createRuntime"), read("createContainer"), start, read("poststart"), read("poststop")];
    let _ = std::fs::remove_dir_all(&out_dir);
    let pid = states[1]["pid"].as_i64().unwrap();
    assert!(pid > 0);
    for (state, status) in states.iter().zip(["created", "created", "created", "created", "running", "stopped"]) {
        assert_eq!((state["id"].as_str(), state["status"].as_str()), (Some(id.as_str()), Some(status)), "{state}");
        assert_eq!(state["annotations"]["test"], "hooks", "{state}");
    }
    assert!(states[..5].iter().all(|s| s["pid"].as_i64() == Some(pid)), "{states:?}");

    let slow = Bundle::new(&env, |c| {
        c["hooks"] =
            serde_json::json!({ "createRuntime": [{ "path": "/bin/sleep", "args": ["sleep", "60"], "timeout": 1 }] });
    });
    let started = Instant::now();
    let out = slow.ctr_oci(&env).args(["run", "--bundle"]).arg(&slow.dir).arg(&id).output();
    assert!(!out.success() && out.stderr.contains("timeout of 1s"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(30), "the timeout did not stop the hook");
    assert!(!slow.root.join(&id).exists() && slow.cgroup_dirs().is_empty(), "a failed create left something");
}

/// `--preserve-fds N` (runc's): the caller's descriptors 3 to 3+N-1 reach
/// the container's process at the same numbers; any other descriptor the
/// caller left open does not, with or without the flag. A count beyond
/// what is open is refused before anything is made.
#[test]
fn oci_preserve_fds_passes_exactly_the_descriptors_asked_for() {
    let Some(env) = ctr_tests::env() else { return };
    let bundle = Bundle::new(&env, |c| {
        c["process"]["args"] = serde_json::json!([
            "sh",
            "-c",
            "for fd in 3 4; do [ -e /proc/$$/fd/$fd ] && echo fd$fd-open || echo fd$fd-closed; done; \
             [ -e /proc/$$/fd/3 ] && cat <&3; exit 0"
        ]);
    });
    std::fs::write(bundle.dir.join("passed.txt"), "through fd 3\n").unwrap();
    let run = |preserve: &str, id: &str| {
        // The shell opens 3 and 4 (not close-on-exec), then becomes ctr-oci.
        let script = format!(
            "exec 3<\"$0/passed.txt\" 4<\"$0/passed.txt\"; exec \"$1\" --root \"$0/state\" run {preserve} --bundle \"$0\" {id}"
        );
        env.as_root("sh", ["-c".as_ref(), script.as_ref(), bundle.dir.as_os_str(), bundle.ctr_oci.as_os_str()]).output()
    };
    let one = run("--preserve-fds 1", &ctr_tests::unique_name("fds-"));
    assert!(one.success(), "stdout:\n{}\nstderr:\n{}", one.stdout, one.stderr);
    assert_eq!(one.stdout, "fd3-open\nfd4-closed\nthrough fd 3\n", "stderr:\n{}", one.stderr);
    let none = run("", &ctr_tests::unique_name("fds-"));
    assert!(none.success(), "{}", none.stderr);
    assert_eq!(none.stdout, "fd3-closed\nfd4-closed\n", "stderr:\n{}", none.stderr);
    let id = ctr_tests::unique_name("fds-");
    let too_many = run("--preserve-fds 50", &id);
    assert!(
        !too_many.success()
            && too_many.stderr.contains("--preserve-fds 50: descriptor")
            && too_many.stderr.contains("is not open"),
        "{}",
        too_many.stderr
    );
    assert!(!bundle.root.join(&id).exists() && bundle.cgroup_dirs().is_empty(), "a refused create left something");
}

/// `--no-pivot` (runc's, for a rootfs where pivot_root cannot work): the
/// rootfs is moved over `/` and chrooted into; the container sees its own
/// root and the spec's mounts, and none of the host's other mounts.
#[test]
fn oci_no_pivot_runs_in_the_rootfs_without_the_hosts_mounts() {
    let Some(env) = ctr_tests::env() else { return };
    let bundle = Bundle::new(&env, |c| {
        c["process"]["args"] =
            serde_json::json!(["sh", "-c", "cat /marker; hostname; awk '{ print $5 }' /proc/self/mountinfo"]);
        c["hostname"] = serde_json::json!("no-pivot");
    });
    std::fs::write(bundle.dir.join("rootfs/marker"), "rootfs\n").unwrap();
    let id = ctr_tests::unique_name("nopivot-");
    let out = bundle.ctr_oci(&env).args(["run", "--no-pivot", "--bundle"]).arg(&bundle.dir).arg(&id).output();
    assert!(out.success(), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..2], ["rootfs", "no-pivot"], "{}", out.stdout);
    // The spec's mounts are what is visible: /, /proc, /dev, /sys and
    // what lies beneath them, no host path such as the bundle's own.
    let allowed = ["/", "/proc", "/dev", "/sys"];
    for point in &lines[2..] {
        assert!(
            allowed.iter().any(|a| point == a || point.starts_with(&format!("{a}/"))),
            "a mount the spec does not make is visible: {point}\n{}",
            out.stdout
        );
    }
    assert!(lines[2..].contains(&"/proc"), "{}", out.stdout);
    assert!(!bundle.root.join(&id).exists() && bundle.cgroup_dirs().is_empty(), "run left its container");
}

/// Rootless podman (Debian's 4.3) as the test user, with `--runtime
/// ctr-oci`: podman runs conmon and ctr-oci in a user namespace of its own
/// (the user's subordinate ids), where ctr-oci is root of that namespace
/// and keeps its state under $XDG_RUNTIME_DIR. A store of its own in a
/// directory the user owns (vfs), no network; its pause process is ended
/// on drop.
struct RootlessPodman<'a> {
    env: &'a ctr_tests::Env,
    dir: PathBuf,
    runtime: String,
}

impl<'a> RootlessPodman<'a> {
    fn new(env: &'a ctr_tests::Env) -> Self {
        let dir = std::env::temp_dir().join(ctr_tests::unique_name("ctr-oci-rootless-"));
        for sub in ["", "run", "home"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).unwrap();
            nix::unistd::chown(&d, Some(env.uid.into()), Some(env.gid.into())).unwrap();
        }
        std::fs::set_permissions(dir.join("run"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let runtime = env.prefix.join("bin/ctr-oci").to_str().unwrap().to_owned();
        Self { env, dir, runtime }
    }

    fn cmd(&self, args: &[&str]) -> ctr_tests::CtrCommand {
        self.env
            .as_user("podman", ["--root"])
            .arg(self.dir.join("storage"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(["--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs"])
            .args(["--runtime", &self.runtime])
            .args(args)
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env("HOME", self.dir.join("home"))
            .timeout(Duration::from_secs(120))
    }

    fn run(&self, args: &[&str]) -> ctr_tests::CtrCommand {
        self.cmd(&["run", "--network", "none"]).args(args)
    }
}

impl Drop for RootlessPodman<'_> {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-a", "-f"]).output();
        // podman's pause process holds its user namespace between commands.
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("tmp/pause.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
        // The store's files belong to the user's subordinate ids: removed as
        // root.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Rootless podman with ctr-oci, as the test user: run --rm, -i -t, -d then
/// exec, stop and rm; nothing left. Limits cannot apply here: on this
/// hybrid host no cgroup v2 subtree is delegated to the user, so a
/// rootless ctr-oci makes no cgroup, and a spec with limits is refused by
/// name (the issue's "cgroups through a delegated v2 subtree where there
/// is one, else none").
#[test]
fn podman_rootless_runs_execs_stops_and_removes_through_ctr_oci() {
    let Some(env) = ctr_tests::env() else { return };
    let podman = RootlessPodman::new(&env);
    podman.cmd(&["import", env.alpine.to_str().unwrap(), PODMAN_IMAGE]).ok();
    let out = podman
        .run(&["--rm", "--hostname", "rootless", PODMAN_IMAGE, "sh", "-c", "echo hi; hostname; id -u; exit 3"])
        .output();
    assert_eq!(out.code(), Some(3), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "hi\nrootless\n0\n", "stderr:\n{}", out.stderr);

    let interactive = podman
        .run(&["--rm", "-i", "-t", PODMAN_IMAGE, "sh", "-c", "tty; read line; echo got:$line"])
        .stdin("hello\n")
        .output();
    assert!(
        interactive.success() && interactive.stdout.contains("/dev/pts/0") && interactive.stdout.contains("got:hello"),
        "podman run -it: {}\n{}",
        interactive.stdout,
        interactive.stderr
    );

    let started = podman.run(&["-d", PODMAN_IMAGE, "sleep", "300"]).output();
    assert!(started.success(), "podman run -d: {}", started.stderr);
    let container = started.stdout.trim().to_owned();
    let pid: i32 =
        podman.cmd(&["inspect", "--format", "{{.State.Pid}}", &container]).ok().stdout.trim().parse().unwrap();
    // The container's process runs as the user's subordinate ids, in a user
    // namespace other than the host's.
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert!(!uid_map.trim_start().starts_with("0 0 "), "not in a user namespace: {uid_map}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(!status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")), "{status}");
    let exec = podman.cmd(&["exec", &container, "sh", "-c", "echo from exec; exit 4"]).output();
    assert_eq!((exec.code(), exec.stdout.as_str()), (Some(4), "from exec\n"), "podman exec: {}", exec.stderr);
    let stopped = podman.cmd(&["stop", "-t", "1", &container]).output();
    let removed = podman.cmd(&["rm", &container]).output();
    assert!(stopped.success() && removed.success(), "podman stop: {}\npodman rm: {}", stopped.stderr, removed.stderr);
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "the container's process is left");
    // Limits: with the memory controller on cgroup v1 (this hybrid host)
    // podman itself drops them rootless and says so; on cgroup v2 they
    // reach ctr-oci, which applies them in a delegated subtree or refuses
    // them by name.
    let limited = podman.run(&["--rm", "--memory", "64m", PODMAN_IMAGE, "echo", "ran"]).output();
    let said = if Path::new("/sys/fs/cgroup/memory").exists() {
        limited.success() && limited.stdout == "ran\n" && limited.stderr.contains("Resource limits are not supported")
    } else {
        limited.success() || limited.stderr.contains("only uses a cgroup v2 subtree delegated")
    };
    assert!(said, "podman run --memory, rootless: {}\n{}", limited.stdout, limited.stderr);
    let listed = podman.cmd(&["ps", "-a", "-q"]).ok();
    assert_eq!(listed.stdout.trim(), "", "podman left a container");
    let state: Vec<_> = std::fs::read_dir(podman.dir.join("run/ctr-oci"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(state.is_empty(), "ctr-oci left state under XDG_RUNTIME_DIR: {state:?}");

    // ctr-oci itself, rootless (root of a user namespace the user made):
    // a spec without limits runs in no cgroup of its own; one with a
    // memory limit is refused by name, leaving nothing.
    // `spec --rootless`'s config (a user namespace mapping the caller's
    // root, no network namespace, /sys bound), as the user's own bundle.
    let bundle = Bundle::new(&env, |_| {});
    std::fs::remove_file(bundle.dir.join("config.json")).unwrap();
    env.as_root(&bundle.ctr_oci, ["spec", "--rootless", "--bundle"]).arg(&bundle.dir).ok();
    let path = bundle.dir.join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["process"]["args"] = serde_json::json!(["sh", "-c", "grep -c ctr-oci-cg- /proc/self/cgroup || true"]);
    config["linux"]["cgroupsPath"] = serde_json::json!(bundle.cgroup_name);
    let root_only = serde_json::json!([{ "containerID": 0, "hostID": 0, "size": 1 }]);
    config["linux"]["uidMappings"] = root_only.clone();
    config["linux"]["gidMappings"] = root_only;
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    chown_tree(&bundle.dir, env.uid, env.gid);
    let as_user_root = |id: &str| {
        env.as_user("unshare", ["--user", "--map-root-user", "--mount", "--"])
            .arg(&bundle.ctr_oci)
            .arg("--root")
            .arg(&bundle.root)
            .args(["run", "--bundle"])
            .arg(&bundle.dir)
            .arg(id)
            .output()
    };
    let free = as_user_root(&ctr_tests::unique_name("rl-"));
    assert!(free.success(), "rootless ctr-oci run: {}\n{}", free.stdout, free.stderr);
    assert_eq!(free.stdout.trim(), "0", "a rootless container got a cgroup of its own");
    config["linux"]["resources"] = serde_json::json!({ "memory": { "limit": MIB_64 } });
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let id = ctr_tests::unique_name("rl-");
    let limited = as_user_root(&id);
    assert!(
        !limited.success() && limited.stderr.contains("rootless ctr-oci only uses a cgroup v2 subtree delegated"),
        "{}",
        limited.stderr
    );
    assert!(!bundle.root.join(&id).exists(), "a refused rootless create left its state");
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    let status = Command::new("chown").arg("-R").arg(format!("{uid}:{gid}")).arg(dir).status().unwrap();
    assert!(status.success());
}

/// An ambient capability is raised only where the kernel allows it, in
/// both the permitted and the inheritable set; the others are skipped, as
/// runc and crun skip them (`crun spec` lists three ambient capabilities
/// with an empty inheritable set, and both run it).
#[test]
fn oci_ambient_capabilities_outside_the_inheritable_set_are_skipped() {
    let Some(env) = ctr_tests::env() else { return };
    let three = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    for (inheritable, ambient_mask) in
        [(serde_json::json!([]), "0000000000000000"), (serde_json::json!(["CAP_KILL"]), "0000000000000020")]
    {
        let bundle = Bundle::new(&env, |c| {
            c["process"]["args"] = serde_json::json!(["sh", "-c", "grep -E '^Cap(Eff|Amb)' /proc/self/status"]);
            c["process"]["capabilities"] = serde_json::json!({
                "bounding": three, "effective": three, "permitted": three,
                "inheritable": inheritable, "ambient": three,
            });
        });
        let id = ctr_tests::unique_name("amb-");
        let out = bundle.ctr_oci(&env).args(["run", "--bundle"]).arg(&bundle.dir).arg(&id).output();
        assert!(out.success(), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
        assert_eq!(out.stdout, format!("CapEff:\t0000000020000420\nCapAmb:\t{ambient_mask}\n"), "{}", out.stderr);
    }
}

/// A created container, deleted (`delete --force`) and reaped when
/// dropped, so that a failed assertion leaves no process or cgroup behind.
/// The test must be the subreaper of `create`'s orphan.
struct Created<'a> {
    bundle: &'a Bundle,
    env: &'a ctr_tests::Env,
    id: String,
    pid: i32,
}

impl<'a> Created<'a> {
    fn start(bundle: &'a Bundle, env: &'a ctr_tests::Env, prefix: &str) -> Self {
        nix::sys::prctl::set_child_subreaper(true).unwrap();
        let id = ctr_tests::unique_name(prefix);
        let pid_file = bundle.dir.join(format!("{id}.pid"));
        let (created, stderr) = bundle.create(&id, &pid_file);
        assert!(created, "create failed: {stderr}");
        let pid = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
        let container = Self { bundle, env, id, pid };
        bundle.ctr_oci(env).args(["start", &container.id]).ok();
        container
    }
}

impl Drop for Created<'_> {
    fn drop(&mut self) {
        let _ = self.bundle.ctr_oci(self.env).args(["delete", "--force", &self.id]).output();
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
    }
}

/// `kill --all` after the container's process exited still reaches what it
/// left in the cgroup, as runc's does: containerd's shim sends it when the
/// process of a container sharing a pod's pid namespace exits. Refused, the
/// children lived on (and a CRI pod's stop waited on them).
#[test]
fn oci_kill_all_reaches_what_an_exited_process_left_in_its_cgroup() {
    let Some(env) = ctr_tests::env() else { return };
    let bundle = Bundle::new(&env, |c| {
        c["process"]["args"] = serde_json::json!(["sh", "-c", "sleep 300 & exit 0"]);
        let namespaces = c["linux"]["namespaces"].as_array_mut().unwrap();
        namespaces.retain(|ns| ns["type"] != "pid");
    });
    let container = Created::start(&bundle, &env, "killall-");
    let procs = || -> Vec<i32> {
        let dirs = bundle.cgroup_dirs();
        assert!(!dirs.is_empty(), "the container has no cgroup");
        let text = std::fs::read_to_string(dirs[0].join("cgroup.procs")).unwrap_or_default();
        text.lines().filter_map(|l| l.parse().ok()).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while bundle.state(&env, &container.id)["status"] != "stopped" || procs().is_empty() {
        assert!(Instant::now() < deadline, "never saw the process exit and leave sleep behind: {:?}", procs());
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = procs();
    let plain = bundle.ctr_oci(&env).args(["kill", &container.id, "KILL"]).output();
    assert!(!plain.success() && plain.stderr.contains("not running"), "{plain:?}");
    bundle.ctr_oci(&env).args(["kill", "--all", &container.id, "KILL"]).ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !procs().is_empty() {
        assert!(Instant::now() < deadline, "kill --all left {:?} running", procs());
        std::thread::sleep(Duration::from_millis(20));
    }
    // The orphaned sleep came to us, the subreaper (`Created::start`).
    for pid in left {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    }
}

/// The owner and mode of the host's /dev/null, which no runtime may change.
fn dev_null_owner_and_mode() -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata("/dev/null").unwrap();
    (meta.uid(), meta.gid(), meta.mode() & 0o7777)
}

/// In a user namespace (0 -> 100000), the container's root can reopen its
/// stdout pipe through /proc/self/fd/1 (runc's behaviour: ctr-oci gives
/// the pipe to the namespace's root, 100000, which the container sees as
/// 0), for `run` and for `exec`; the host's /dev/null, given to `run` and
/// `create` as stdin, stays root's and 0666.
#[test]
fn oci_user_namespace_root_reopens_its_stdio_pipes_and_dev_null_stays_the_hosts() {
    let Some(env) = ctr_tests::env() else { return };
    assert_eq!(dev_null_owner_and_mode(), (0, 0, 0o666), "/dev/null was changed before this test");
    let reopen = "echo hi > /proc/self/fd/1 && echo reopened; cat /proc/self/fd/0 && echo stdin-reopened; \
                  stat -L -c %u:%g /proc/self/fd/1";
    let bundle = Bundle::new(&env, |c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({ "type": "user" }));
        let map = serde_json::json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
        c["process"]["args"] =
            serde_json::json!(["sh", "-c", format!("[ \"$1\" = run ] && {{ {reopen}; }} || sleep 60"), "sh", "run"]);
    });
    // run: stdin the host's /dev/null, stdout and stderr pipes.
    let id = ctr_tests::unique_name("stdio-");
    let run = bundle.ctr_oci(&env).args(["run", "--bundle"]).arg(&bundle.dir).arg(&id).output();
    assert!(run.success(), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "hi\nreopened\nstdin-reopened\n0:0\n", "stderr:\n{}", run.stderr);
    assert_eq!(dev_null_owner_and_mode(), (0, 0, 0o666), "ctr-oci run changed the host's /dev/null");

    // exec, into a container created with /dev/null as stdin.
    std::fs::write(
        bundle.dir.join("config.json"),
        std::fs::read_to_string(bundle.dir.join("config.json")).unwrap().replace("\"run\"", "\"create\""),
    )
    .unwrap();
    let container = Created::start(&bundle, &env, "stdio-");
    assert_eq!(dev_null_owner_and_mode(), (0, 0, 0o666), "ctr-oci create changed the host's /dev/null");
    let exec = bundle.ctr_oci(&env).args(["exec", &container.id, "sh", "-c", reopen]).output();
    assert!(exec.success(), "stdout:\n{}\nstderr:\n{}", exec.stdout, exec.stderr);
    assert_eq!(exec.stdout, "hi\nreopened\nstdin-reopened\n0:0\n", "stderr:\n{}", exec.stderr);
    assert_eq!(dev_null_owner_and_mode(), (0, 0, 0o666), "ctr-oci exec changed the host's /dev/null");
}

/// systemd's socket activation, as runc passes it: with `LISTEN_PID` our
/// pid and `LISTEN_FDS=2`, descriptors 3 and 4 reach the container's
/// process, which is told `LISTEN_FDS=2` and `LISTEN_PID=1`; those of
/// `--preserve-fds 1` follow them (5); nothing else does. With
/// `LISTEN_PID` another process's, or unset, nothing is passed or told.
/// Sockets that are not open are refused before anything is made.
#[test]
fn oci_listen_fds_pass_before_the_preserved_descriptors() {
    let Some(env) = ctr_tests::env() else { return };
    let bundle = Bundle::new(&env, |c| {
        c["process"]["args"] = serde_json::json!([
            "sh",
            "-c",
            "echo \"LISTEN_FDS=$LISTEN_FDS LISTEN_PID=$LISTEN_PID\"; \
             for fd in 3 4 5 6; do [ -e /proc/$$/fd/$fd ] && echo fd$fd-open || echo fd$fd-closed; done; \
             [ -e /proc/$$/fd/3 ] && cat <&3 && cat <&4 && cat <&5; exit 0"
        ]);
    });
    for (name, text) in [("a", "first socket\n"), ("b", "second socket\n"), ("c", "preserved\n")] {
        std::fs::write(bundle.dir.join(name), text).unwrap();
    }
    let run = |listen: &str, preserve: &str| {
        // The shell opens 3 to 6 (not close-on-exec), then becomes ctr-oci,
        // keeping its pid ($$).
        let id = ctr_tests::unique_name("listen-");
        let script = format!(
            "exec 3<\"$0/a\" 4<\"$0/b\" 5<\"$0/c\" 6<\"$0/c\"; {listen} \
             exec \"$1\" --root \"$0/state\" run {preserve} --bundle \"$0\" {id}"
        );
        env.as_root("sh", ["-c".as_ref(), script.as_ref(), bundle.dir.as_os_str(), bundle.ctr_oci.as_os_str()]).output()
    };
    let ours = run("export LISTEN_PID=$$ LISTEN_FDS=2;", "--preserve-fds 1");
    assert!(ours.success(), "stdout:\n{}\nstderr:\n{}", ours.stdout, ours.stderr);
    assert_eq!(
        ours.stdout,
        "LISTEN_FDS=2 LISTEN_PID=1\nfd3-open\nfd4-open\nfd5-open\nfd6-closed\nfirst socket\nsecond socket\npreserved\n",
        "stderr:\n{}",
        ours.stderr
    );
    for other in ["export LISTEN_PID=1 LISTEN_FDS=2;", "export LISTEN_FDS=2;"] {
        let out = run(other, "");
        assert!(out.success(), "{other}: {}", out.stderr);
        assert_eq!(out.stdout, "LISTEN_FDS= LISTEN_PID=\nfd3-closed\nfd4-closed\nfd5-closed\nfd6-closed\n", "{other}");
    }
    let too_many = run("export LISTEN_PID=$$ LISTEN_FDS=9;", "");
    assert!(
        !too_many.success() && too_many.stderr.contains("LISTEN_FDS=9: descriptor 7 is not open"),
        "{}",
        too_many.stderr
    );
    let past_them = run("export LISTEN_PID=$$ LISTEN_FDS=2;", "--preserve-fds 3");
    assert!(
        !past_them.success() && past_them.stderr.contains("--preserve-fds 3: descriptor 7 is not open"),
        "{}",
        past_them.stderr
    );
    assert!(bundle.cgroup_dirs().is_empty(), "a refused create left a cgroup");
}

/// `exec --preserve-fds N` (runc's): descriptors 3 to 3+N-1 reach the
/// exec'd process, no other the caller left open does; a count beyond
/// what is open is refused.
#[test]
fn oci_exec_preserve_fds_passes_exactly_the_descriptors_asked_for() {
    let Some(env) = ctr_tests::env() else { return };
    let bundle = Bundle::new(&env, |c| c["process"]["args"] = serde_json::json!(["sleep", "60"]));
    std::fs::write(bundle.dir.join("passed.txt"), "through fd 3\n").unwrap();
    let container = Created::start(&bundle, &env, "execfds-");
    let exec = |preserve: &str| {
        let script = format!(
            "exec 3<\"$0/passed.txt\" 4<\"$0/passed.txt\"; exec \"$1\" --root \"$0/state\" exec {preserve} {} \
             sh -c 'for fd in 3 4; do [ -e /proc/$$/fd/$fd ] && echo fd$fd-open || echo fd$fd-closed; done; \
             [ -e /proc/$$/fd/3 ] && cat <&3; exit 0'",
            container.id
        );
        env.as_root("sh", ["-c".as_ref(), script.as_ref(), bundle.dir.as_os_str(), bundle.ctr_oci.as_os_str()]).output()
    };
    let one = exec("--preserve-fds 1");
    assert!(one.success(), "stdout:\n{}\nstderr:\n{}", one.stdout, one.stderr);
    assert_eq!(one.stdout, "fd3-open\nfd4-closed\nthrough fd 3\n", "stderr:\n{}", one.stderr);
    let none = exec("");
    assert!(none.success(), "{}", none.stderr);
    assert_eq!(none.stdout, "fd3-closed\nfd4-closed\n", "stderr:\n{}", none.stderr);
    let too_many = exec("--preserve-fds 9");
    assert!(
        !too_many.success() && too_many.stderr.contains("--preserve-fds 9: descriptor 5 is not open"),
        "{}",
        too_many.stderr
    );
}

/// runtime-tools' memory test: swappiness, disableOOMKiller and kernelTCP
/// reach the v1 memory cgroup, as the container sees it, and the
/// deprecated memory.kernel is accepted (ignored, as runc and crun do). On
/// pure cgroup v2, which has no such files, they are refused by name.
#[test]
fn oci_memory_swappiness_oom_killer_and_kernel_tcp_reach_the_v1_memory_cgroup() {
    let Some(env) = ctr_tests::env() else { return };
    let bundle = Bundle::new(&env, |c| {
        let script = "cd /sys/fs/cgroup/memory && cat memory.swappiness memory.kmem.tcp.limit_in_bytes && \
            grep oom_kill_disable memory.oom_control";
        c["process"]["args"] = serde_json::json!(["sh", "-c", script]);
        c["linux"]["resources"]["memory"] = serde_json::json!({ "limit": MIB_64, "kernel": MIB_64,
            "kernelTCP": 8 << 20, "swappiness": 17, "disableOOMKiller": true });
    });
    let id = ctr_tests::unique_name("mem-");
    let out = bundle.ctr_oci(&env).args(["run", "--bundle"]).arg(&bundle.dir).arg(&id).output();
    if pure_cgroup_v2() {
        assert!(!out.success() && out.stderr.contains("memory.swappiness"), "{}", out.stderr);
        assert!(out.stderr.contains("v1 memory controller"), "{}", out.stderr);
    } else {
        assert!(out.success(), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
        assert_eq!(out.stdout, format!("17\n{}\noom_kill_disable 1\n", 8 << 20), "{}", out.stderr);
    }
    assert!(bundle.cgroup_dirs().is_empty(), "run left its cgroup: {:?}", bundle.cgroup_dirs());
}

/// A hostname with a UTS namespace joined by path (runtime-tools'
/// linux_ns_path): set in that namespace, which another process holds.
#[test]
fn oci_hostname_is_set_in_a_uts_namespace_joined_by_path() {
    let Some(env) = ctr_tests::env() else { return };
    let mut holder = Command::new("unshare").args(["--uts", "sleep", "120"]).stdin(Stdio::piped()).spawn().unwrap();
    let ns = format!("/proc/{}/ns/uts", holder.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_link(&ns).ok() == std::fs::read_link("/proc/self/ns/uts").ok() {
        assert!(Instant::now() < deadline, "unshare made no UTS namespace");
        std::thread::sleep(Duration::from_millis(10));
    }
    let bundle = Bundle::new(&env, |c| {
        c["process"]["args"] = serde_json::json!(["hostname"]);
        c["hostname"] = serde_json::json!("joined-uts");
        let namespaces = c["linux"]["namespaces"].as_array_mut().unwrap();
        namespaces.retain(|n| n["type"] != "uts");
        namespaces.push(serde_json::json!({ "type": "uts", "path": ns }));
    });
    let id = ctr_tests::unique_name("uts-");
    let out = bundle.ctr_oci(&env).args(["run", "--bundle"]).arg(&bundle.dir).arg(&id).output();
    let held = Command::new("nsenter").arg(format!("--uts={ns}")).arg("hostname").output().unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(out.success(), "stderr:\n{}", out.stderr);
    assert_eq!(out.stdout, "joined-uts\n");
    assert_eq!(String::from_utf8_lossy(&held.stdout), "joined-uts\n", "the holder's namespace kept its name");
}

/// Runs `script` with sh in a private mount namespace of its own (so that
/// whatever a container sharing it mounts dies with it), `OCI`, `STATE`,
/// `BUNDLE` and `ID` set; returns its output.
fn in_private_mount_namespace(bundle: &Bundle, id: &str, script: &str) -> std::process::Output {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("OCI", &bundle.ctr_oci)
        .env("STATE", &bundle.root)
        .env("BUNDLE", &bundle.dir)
        .env("ID", id)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// No mount namespace in linux.namespaces: the container shares the
/// runtime's (the spec's rule for a namespace not listed), here a private
/// one of the test's. From inside: its mount namespace is the caller's,
/// its root is the bundle's rootfs (chrooted: the marker file), /proc is
/// mounted there, and `exec` lands in the same root. Its mounts are in
/// the caller's namespace beneath the rootfs only, and `delete` leaves
/// none. What would change the runtime's own mounts (root.readonly,
/// rootfsPropagation) is refused by name.
#[test]
fn oci_without_a_mount_namespace_shares_the_runtimes_chrooted_and_delete_undoes_its_mounts() {
    let Some(env) = ctr_tests::env() else { return };
    let marker = ctr_tests::unique_name("marker-");
    let bundle = Bundle::new(&env, |c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "mount");
        c["process"]["args"] = serde_json::json!([
            "sh",
            "-c",
            "readlink /proc/self/ns/mnt; cat /marker; test -r /proc/self/status && echo proc; exec sleep 300"
        ]);
    });
    std::fs::write(bundle.dir.join("rootfs/marker"), format!("{marker}\n")).unwrap();
    let id = ctr_tests::unique_name("sharedmnt-");
    const SCRIPT: &str = r#"
        oci() { "$OCI" --root "$STATE" "$@"; }
        beneath() { grep -c " $BUNDLE/rootfs[/ ]" /proc/self/mountinfo; }
        echo "ns $(readlink /proc/self/ns/mnt)"
        oci create --bundle "$BUNDLE" "$ID" </dev/null >"$BUNDLE/out" 2>"$BUNDLE/err" || { cat "$BUNDLE/err"; exit 1; }
        echo "made $(beneath)"
        oci start "$ID" || exit 1
        for i in $(seq 300); do [ "$(wc -l <"$BUNDLE/out")" -ge 3 ] && break; sleep 0.1; done
        sed 's/^/container /' "$BUNDLE/out"
        oci exec "$ID" sh -c 'echo "exec $(cat /marker) $(readlink /proc/self/ns/mnt)"'
        oci delete --force "$ID" || exit 1
        echo "left $(beneath)"
    "#;
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let path = bundle.dir.join("config.json");
        let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut config);
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    };
    // `ctr-oci spec`'s root is read-only: that remount would hit the host's filesystem.
    let out = in_private_mount_namespace(&bundle, &id, SCRIPT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("root.readonly") && stdout.contains("add a mount namespace"), "{stdout}");
    edit(&|c| {
        c["root"]["readonly"] = serde_json::json!(false);
        c["linux"]["rootfsPropagation"] = serde_json::json!("rslave");
    });
    let out = in_private_mount_namespace(&bundle, &id, SCRIPT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("linux.rootfsPropagation"), "{stdout}");
    assert!(!bundle.root.join(&id).exists(), "a refused create left its state");
    edit(&|c| {
        c["linux"].as_object_mut().unwrap().remove("rootfsPropagation");
    });

    let out = in_private_mount_namespace(&bundle, &id, SCRIPT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let field = |key: &str| -> String {
        let prefix = format!("{key} ");
        let line = stdout.lines().find_map(|l| l.strip_prefix(prefix.as_str()));
        line.unwrap_or_else(|| panic!("no {key:?} line in:\n{stdout}")).to_owned()
    };
    let caller_ns = field("ns");
    let container: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("container ")).collect();
    assert_eq!(container, [caller_ns.as_str(), marker.as_str(), "proc"], "{stdout}");
    assert_eq!(field("exec"), format!("{marker} {caller_ns}"), "{stdout}");
    // /proc, /dev and its mounts, /sys, the cgroup tree, the masks.
    assert!(field("made").parse::<u32>().unwrap() >= 5, "{stdout}");
    assert_eq!(field("left"), "0", "delete left mounts beneath the rootfs:\n{stdout}");
    assert!(!bundle.root.join(&id).exists() && bundle.cgroup_dirs().is_empty(), "delete left state or a cgroup");
}

/// A mount namespace joined by path (one `unshare` holds): the container
/// is in it, its rootfs is pivoted into there (the marker from inside,
/// and from `exec`), and none of its mounts reach the caller's namespace,
/// where nothing beneath the rootfs is mounted while it runs.
#[test]
fn oci_mount_namespace_joined_by_path_gets_the_mounts_and_the_callers_does_not() {
    let Some(env) = ctr_tests::env() else { return };
    let mut holder = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sleep", "600"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let ns_path = format!("/proc/{}/ns/mnt", holder.id());
    let own = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_link(&ns_path).ok().is_none_or(|ns| ns == own) {
        assert!(Instant::now() < deadline, "unshare did not make its mount namespace");
        std::thread::sleep(Duration::from_millis(10));
    }
    let joined = std::fs::read_link(&ns_path).unwrap();
    let marker = ctr_tests::unique_name("marker-");
    let bundle = Bundle::new(&env, |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "mount");
        ns.push(serde_json::json!({ "type": "mount", "path": ns_path }));
        c["process"]["args"] =
            serde_json::json!(["sh", "-c", "readlink /proc/self/ns/mnt; cat /marker; exec sleep 300"]);
    });
    std::fs::write(bundle.dir.join("rootfs/marker"), format!("{marker}\n")).unwrap();
    let id = ctr_tests::unique_name("joinmnt-");
    let pid_file = bundle.dir.join("pid");
    let (created, stderr) = bundle.create(&id, &pid_file);
    let beneath_here = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&format!(" {}/rootfs", bundle.dir.display())))
        .count();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert!(created, "create failed: {stderr}");
        bundle.ctr_oci(&env).args(["start", &id]).ok();
        let out_file = bundle.dir.join(format!("{id}.out"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::read_to_string(&out_file).unwrap_or_default().lines().count() < 2 {
            assert!(Instant::now() < deadline, "no output: {:?}", std::fs::read_to_string(&out_file));
            std::thread::sleep(Duration::from_millis(20));
        }
        let inside = std::fs::read_to_string(&out_file).unwrap();
        assert_eq!(inside, format!("{}\n{marker}\n", joined.display()));
        let exec = bundle.ctr_oci(&env).args(["exec", &id, "sh", "-c", "cat /marker; readlink /proc/self/ns/mnt"]).ok();
        assert_eq!(exec.stdout, format!("{marker}\n{}\n", joined.display()));
        assert_eq!(beneath_here, 0, "the container's mounts reached the caller's mount namespace");
    }));
    let _ = bundle.ctr_oci(&env).args(["delete", "--force", &id]).output();
    let _ = holder.kill();
    let _ = holder.wait();
    outcome.unwrap_or_else(|e| std::panic::resume_unwind(e));
    assert!(!bundle.root.join(&id).exists() && bundle.cgroup_dirs().is_empty(), "delete left state or a cgroup");
}
