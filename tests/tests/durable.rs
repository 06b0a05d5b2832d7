//! Durable containers, as the unprivileged test user through the installed
//! helper: `create` then `start`, a writable layer that survives stop and
//! start, restart policies carried out by the monitor, `attach`, `rename`,
//! and a simulated reboot (runtime directory cleared, monitors and
//! containers killed) after which containers are listed, started and
//! removed. Every test removes what it made, even when it fails.

use ctr_tests::{env, unique_name, Env, Output};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Containers a test made, removed with `rm -f` when it ends.
struct Made<'a> {
    env: &'a Env,
    names: Vec<String>,
    runtime_dir: Option<PathBuf>,
}

impl<'a> Made<'a> {
    fn new(env: &'a Env) -> Self {
        env.ensure_alpine_image("alpine");
        Self { env, names: Vec::new(), runtime_dir: None }
    }

    /// A fresh name, removed at the end.
    fn name(&mut self, prefix: &str) -> String {
        let name = unique_name(prefix);
        self.names.push(name.clone());
        name
    }

    /// `ctr ARGS`, with this test's own runtime directory if it has one.
    fn ctr(&self, args: &[&str]) -> Output {
        self.command(args).output()
    }

    fn command(&self, args: &[&str]) -> ctr_tests::CtrCommand {
        let command = self.env.ctr().args(args);
        match &self.runtime_dir {
            Some(dir) => command.env("XDG_RUNTIME_DIR", dir),
            None => command,
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(out.success(), "ctr {args:?} failed ({:?}):\n{}\n{}", out.code(), out.stdout, out.stderr);
        out.stdout
    }

    fn inspect(&self, name: &str, template: &str) -> String {
        self.ok(&["inspect", "--format", template, name]).trim().to_owned()
    }

    /// Waits until `check` holds of the inspected `template`.
    #[track_caller]
    fn await_inspect(&self, name: &str, template: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30) * ctr_tests::timeout_scale();
        loop {
            let value = self.inspect(name, template);
            if check(&value) {
                return value;
            }
            assert!(Instant::now() < deadline, "{name}: {template} is still {value:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Made<'_> {
    fn drop(&mut self) {
        if !self.names.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(self.names.iter().map(String::as_str));
            let _ = self.ctr(&args);
        }
        if let Some(dir) = &self.runtime_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn durable_create_start_stop_start_keeps_the_writable_layer() {
    let Some(env) = env() else { return };
    let mut made = Made::new(&env);
    let name = made.name("durable-keep");
    let script = "echo run >> /kept; echo runs $(wc -l < /kept); exec sleep 300";
    let id = made.ok(&["create", "--network", "none", "--name", &name, "alpine", "sh", "-c", script]);
    assert_eq!(id.trim().len(), 64, "create prints the id: {id}");
    assert_eq!(made.inspect(&name, "{{.State.Status}}"), "created");
    assert!(made.ok(&["ps", "-a"]).lines().any(|l| l.ends_with(&name) && l.contains("Created")));

    made.ok(&["start", &name]);
    made.await_inspect(&name, "{{.State.Status}}", |s| s == "running");
    assert_eq!(made.ok(&["exec", &name, "wc", "-l", "/kept"]).trim(), "1 /kept");
    made.ok(&["stop", "-t", "1", &name]);
    assert_eq!(made.inspect(&name, "{{.State.Status}}"), "exited");
    made.ok(&["start", &name]);
    assert_eq!(made.ok(&["exec", &name, "wc", "-l", "/kept"]).trim(), "2 /kept", "the layer survived stop and start");
    made.ok(&["restart", "-t", "1", &name]);
    assert_eq!(made.ok(&["exec", &name, "wc", "-l", "/kept"]).trim(), "3 /kept", "and restart");
    let logs = made.ok(&["logs", &name]);
    assert!(logs.contains("runs 1\n") && logs.contains("runs 3\n"), "one log across starts:\n{logs}");
}

#[test]
fn durable_on_failure_3_restarts_exactly_three_times() {
    let Some(env) = env() else { return };
    let mut made = Made::new(&env);
    let name = made.name("durable-fail");
    made.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--restart",
        "on-failure:3",
        "--name",
        &name,
        "alpine",
        "sh",
        "-c",
        "echo attempt; exit 3",
    ]);
    // The back-off is 100, 200 and 400 ms; then the monitor gives up.
    made.await_inspect(&name, "{{.State.MonitorPid}}", |pid| pid == "<no value>");
    assert_eq!(made.inspect(&name, "{{.RestartCount}}"), "3");
    assert_eq!(made.inspect(&name, "{{.State.Status}} {{.State.ExitCode}}"), "exited 3");
    assert_eq!(made.inspect(&name, "{{.HostConfig.RestartPolicy.MaximumRetryCount}}"), "3");
    std::thread::sleep(Duration::from_secs(1));
    let logs = made.ok(&["logs", &name]);
    assert_eq!(logs.matches("attempt").count(), 4, "one run and three restarts:\n{logs}");
}

#[test]
fn durable_always_restarts_after_a_kill_but_not_after_stop() {
    let Some(env) = env() else { return };
    let mut made = Made::new(&env);
    let name = made.name("durable-always");
    made.ok(&["run", "-d", "--network", "none", "--restart", "always", "--name", &name, "alpine", "sleep", "300"]);
    let first = made.inspect(&name, "{{.State.Pid}}");
    made.ok(&["kill", &name]);
    let second = made.await_inspect(&name, "{{.State.Pid}}", |pid| pid != first && pid != "0");
    assert_eq!(made.inspect(&name, "{{.State.Status}} {{.RestartCount}}"), "running 1");
    // Killed from outside ctr too (the OOM killer, a stray kill).
    let pid: i32 = second.parse().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    made.await_inspect(&name, "{{.RestartCount}}", |n| n == "2");
    made.await_inspect(&name, "{{.State.Status}}", |s| s == "running");

    made.ok(&["stop", "-t", "1", &name]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(made.inspect(&name, "{{.State.Status}} {{.RestartCount}}"), "exited 2", "stop is final");
    made.await_inspect(&name, "{{.State.MonitorPid}}", |pid| pid == "<no value>");
}

#[test]
fn durable_attach_sees_output_and_sends_input() {
    let Some(env) = env() else { return };
    let mut made = Made::new(&env);
    let name = made.name("durable-attach");
    let script = "echo ready; read line; echo got $line; exit 7";
    made.ok(&["run", "-d", "-i", "--network", "none", "--name", &name, "alpine", "sh", "-c", script]);
    let attached = made.command(&["attach", &name]).stdin("hello\n").output();
    assert_eq!(attached.stdout, "got hello\n", "stderr: {}", attached.stderr);
    assert_eq!(attached.code(), Some(7), "attach returns the container's exit code");

    // start -a attaches before the command runs: nothing is missed.
    let once = made.name("durable-start-a");
    made.ok(&["create", "--network", "none", "--name", &once, "alpine", "echo", "first words"]);
    let out = made.ctr(&["start", "-a", &once]);
    assert_eq!((out.stdout.as_str(), out.code()), ("first words\n", Some(0)), "{}", out.stderr);
    let refused = made.ctr(&["attach", &once]);
    assert!(refused.code() != Some(0) && refused.stderr.contains("not running"), "{}", refused.stderr);
}

#[test]
fn durable_rename_moves_the_name() {
    let Some(env) = env() else { return };
    let mut made = Made::new(&env);
    let (old, new) = (made.name("durable-old"), made.name("durable-new"));
    let id = made.ok(&["run", "-d", "--network", "none", "--name", &old, "alpine", "sleep", "300"]);
    made.ok(&["rename", &old, &new]);
    assert_eq!(made.inspect(&new, "{{.Id}}"), id.trim());
    assert!(made.ctr(&["inspect", &old]).code() != Some(0), "the old name is gone");
    let taken = made.ctr(&["rename", &new, &new]);
    assert!(!taken.success(), "{}", taken.stdout);
    // The old name is free again.
    made.ok(&["create", "--network", "none", "--name", &old, "alpine", "true"]);
}

#[test]
fn durable_containers_survive_a_simulated_reboot() {
    let Some(env) = env() else { return };
    let mut made = Made::new(&env);
    // A runtime directory of this test's own, so that clearing it touches
    // no other test.
    // Short: the monitor's attach socket lives there.
    let runtime = PathBuf::from("/tmp").join(unique_name("ctr-dr"));
    env.as_user("mkdir", ["-m", "700"]).arg(&runtime).ok();
    made.runtime_dir = Some(runtime.clone());
    let name = made.name("durable-reboot");
    // A file of a subordinate id too, which only a user namespace can remove.
    let script = "echo precious > /data; mkdir -p /home/n && chown nobody /home/n && \
                  su -s /bin/sh nobody -c 'mkdir -m 700 /home/n/p && touch /home/n/p/f'; exec sleep 300";
    let id = made.ok(&["run", "-d", "--network", "none", "--name", &name, "alpine", "sh", "-c", script]);
    let id = id.trim().to_owned();
    made.await_inspect(&name, "{{.State.Status}}", |s| s == "running");
    let wait_file = Instant::now() + Duration::from_secs(10);
    while made.ctr(&["exec", &name, "test", "-e", "/home/n/p/f"]).code() != Some(0) {
        assert!(Instant::now() < wait_file, "the container never wrote its files");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The reboot: every process gone, the runtime directory empty.
    let monitor: i32 = made.inspect(&name, "{{.State.MonitorPid}}").parse().unwrap();
    let init: i32 = made.inspect(&name, "{{.State.Pid}}").parse().unwrap();
    for pid in [monitor, init] {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    std::fs::remove_dir_all(&runtime).unwrap();
    env.as_user("mkdir", ["-m", "700"]).arg(&runtime).ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{init}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }

    let ps = made.ok(&["ps", "-a"]);
    assert!(ps.lines().any(|l| l.ends_with(&name) && l.contains("Exited")), "listed as exited:\n{ps}");
    made.ok(&["start", &name]);
    made.await_inspect(&name, "{{.State.Status}}", |s| s == "running");
    assert_eq!(made.ok(&["exec", &name, "cat", "/data"]), "precious\n", "the writable layer came back");

    let container_dir = env.data_home().join("ctr/containers").join(&id);
    assert!(container_dir.exists());
    made.ok(&["rm", "-f", &name]);
    assert!(!container_dir.exists(), "rm removed the layer, subordinate-owned files included");
    assert!(!made.ok(&["ps", "-a"]).contains(&name));
}

/// The container's memory limit as the kernel has it: the v1 memory
/// controller's `memory.limit_in_bytes` (the hybrid host), else v2's
/// `memory.max`.
fn kernel_memory_limit(made: &Made, name: &str) -> String {
    let dirs: Vec<String> = serde_json::from_str(&made.inspect(name, "{{json .CgroupPaths}}")).unwrap();
    let read = |file: &str| dirs.iter().find_map(|d| std::fs::read_to_string(PathBuf::from(d).join(file)).ok());
    read("memory.limit_in_bytes").or_else(|| read("memory.max")).expect("no memory limit file").trim().to_owned()
}

#[test]
fn durable_update_raises_a_running_containers_memory_limit() {
    let Some(env) = env() else { return };
    let mut made = Made::new(&env);
    let name = made.name("durable-update");
    made.ok(&["run", "-d", "--network", "none", "-m", "64m", "--name", &name, "alpine", "sleep", "300"]);
    assert_eq!(kernel_memory_limit(&made, &name), (64u64 << 20).to_string());
    made.ok(&["update", "-m", "128m", &name]);
    assert_eq!(kernel_memory_limit(&made, &name), (128u64 << 20).to_string(), "the kernel has the new limit");
    assert_eq!(made.inspect(&name, "{{.HostConfig.memory}}"), (128u64 << 20).to_string());
    // Kept for the next start.
    made.ok(&["restart", "-t", "0", &name]);
    assert_eq!(kernel_memory_limit(&made, &name), (128u64 << 20).to_string(), "and after a restart");
    let refused = made.ctr(&["update", "--cpuset-cpus", "999", &name]);
    assert_eq!(refused.code(), Some(125), "{}", refused.stderr);
}

#[test]
fn durable_foreground_runs_are_logged_and_logs_rotate() {
    let Some(env) = env() else { return };
    let mut made = Made::new(&env);
    let name = made.name("durable-fg");
    let out = made.ctr(&["run", "--network", "none", "--name", &name, "alpine", "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str(), out.code()), ("out\n", "err\n", Some(0)));
    let logs = made.ctr(&["logs", &name]);
    assert_eq!((logs.stdout.as_str(), logs.stderr.as_str()), ("out\n", "err\n"), "docker logs works for any container");

    let rotated = made.name("durable-rotate");
    let script = "for i in $(seq 1 200); do echo line $i; done";
    let flags = ["run", "--network", "none", "--log-opt", "max-size=1k,max-file=2", "--name", &rotated, "alpine"];
    let out = made.command(&flags).args(["sh", "-c", script]).output();
    assert_eq!(out.stdout.lines().count(), 200, "all of it reaches the terminal");
    let id = made.inspect(&rotated, "{{.Id}}");
    let dir = env.data_home().join("ctr/containers").join(id);
    for file in ["json.log", "json.log.1"] {
        let size = std::fs::metadata(dir.join(file)).map(|m| m.len()).unwrap_or(u64::MAX);
        assert!(size <= 1024, "{file}: {size} bytes");
    }
    assert!(!dir.join("json.log.2").exists(), "max-file=2 keeps two files");
    let logs = made.ok(&["logs", "--tail", "1", &rotated]);
    assert_eq!(logs, "line 200\n");
    let all = made.ok(&["logs", &rotated]);
    assert!(!all.contains("line 1\n") && all.ends_with("line 200\n"), "the oldest entries are gone:\n{all}");
}

#[test]
fn durable_generate_systemd_starts_what_the_policy_would() {
    let Some(env) = env() else { return };
    let mut made = Made::new(&env);
    let name = made.name("durable-unit");
    let id = made.ok(&[
        "create",
        "--network",
        "none",
        "--restart",
        "unless-stopped",
        "--name",
        &name,
        "alpine",
        "sleep",
        "300",
    ]);
    let id = id.trim();
    let unit = made.ok(&["generate", "systemd", &name]);
    let ctr = env.ctr_path();
    assert!(unit.contains(&format!("ExecStart={} start --unless-stopped {id}\n", ctr.display())), "{unit}");
    assert!(unit.contains(&format!("ExecStop={} stop -t 10 {id}\n", ctr.display())), "{unit}");
    assert!(unit.contains("WantedBy=default.target") && !unit.contains("User="), "{unit}");
    let system = made.ok(&["generate", "systemd", "--system", &name]);
    assert!(
        system.contains(&format!("User={}\n", env.user)) && system.contains("WantedBy=multi-user.target"),
        "{system}"
    );

    // What the unit runs at boot: a stopped unless-stopped container stays stopped.
    made.ok(&["start", "--unless-stopped", &name]);
    made.await_inspect(&name, "{{.State.Status}}", |s| s == "running");
    made.ok(&["stop", "-t", "0", &name]);
    made.ok(&["start", "--unless-stopped", &name]);
    assert_eq!(made.inspect(&name, "{{.State.Status}}"), "exited");
    made.ok(&["start", &name]);
    assert_eq!(made.inspect(&name, "{{.State.Status}}"), "running", "a plain start still starts it");
}
