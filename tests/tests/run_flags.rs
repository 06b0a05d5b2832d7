//! `ctr run`'s command line as docker's behaves (issue 14, item 2), as the
//! unprivileged test user through the setuid helper: flags before the
//! image must be known, flags after it are the command's, usage errors
//! exit 125, and `-t` sets TERM=xterm.

use ctr_tests::env;
use std::time::Duration;

#[test]
fn unknown_flags_are_refused_with_status_125_and_flags_after_the_image_are_the_commands() {
    let Some(env) = env() else { return };
    let out = env.ctr().args(["run", "--rm", "--no-such-flag", "always", "busybox", "true"]).output();
    assert_eq!(out.code(), Some(125), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("--no-such-flag"), "{}", out.stderr);
    assert!(!out.stderr.contains("image"), "an unknown flag was read as the image: {}", out.stderr);
    for line in [&["ps", "--bogus"][..], &["run"][..], &["run", "--memory"][..], &["frobnicate"][..]] {
        let out = env.ctr().args(line).output();
        assert_eq!(out.code(), Some(125), "{line:?}: {}", out.stderr);
    }
    let help = env.ctr().args(["run", "--help"]).output();
    assert_eq!(help.code(), Some(0), "{}", help.stderr);
    assert!(help.stdout.contains("--dns"), "{}", help.stdout);

    let out = env
        .ctr()
        .args(["run", "--rm", "busybox", "sh", "-c", "echo args: \"$@\"", "sh", "-la", "--rm", "-e", "X=1"])
        .output();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "args: -la --rm -e X=1");
}

#[test]
fn a_terminal_sets_term_xterm_unless_the_user_sets_term() {
    let Some(env) = env() else { return };
    let term = |flags: &[&str]| {
        let out =
            env.ctr().args(["run", "--rm"]).args(flags).args(["busybox", "sh", "-c", "echo term=$TERM."]).output();
        assert_eq!(out.code(), Some(0), "{flags:?}: {}", out.stderr);
        out.stdout.trim().to_owned()
    };
    assert_eq!(term(&["-t"]), "term=xterm.");
    assert_eq!(term(&[]), "term=.");
    assert_eq!(term(&["-t", "-e", "TERM=vt100"]), "term=vt100.");
}

/// A directory of the test user's, removed on drop.
struct UserDir(std::path::PathBuf);

impl UserDir {
    fn new(env: &ctr_tests::Env, tag: &str) -> Self {
        let path = env.work.join(format!("{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        nix::unistd::chown(&path, Some(env.uid.into()), Some(env.gid.into())).unwrap();
        Self(path)
    }

    fn file(&self, name: &str, content: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for UserDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn env_file_labels_and_cidfile() {
    let Some(env) = env() else { return };
    let dir = UserDir::new(&env, "runflags");
    let env_file = dir.file("env", "# settings\nA=from-file\nB=two words\n\nC=file\n");
    let label_file = dir.file("labels", "tier=web\nowner=file\n");
    let cidfile = dir.0.join("cid");
    let name = ctr_tests::unique_name("flags");
    let out = env
        .ctr()
        .args(["run", "--name", &name, "--env-file"])
        .arg(&env_file)
        .args(["-e", "C=flag", "-l", "owner=flag", "--label", "team=ops", "--label-file"])
        .arg(&label_file)
        .arg("--cidfile")
        .arg(&cidfile)
        .args(["busybox", "sh", "-c", "echo \"$A|$B|$C\""])
        .output();
    let inspect = env.ctr().args(["inspect", &name]).output();
    let _ = env.ctr().args(["rm", "-f", &name]).output();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "from-file|two words|flag");
    let json: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    let json = if json.is_array() { json[0].clone() } else { json };
    let labels = &json["Config"]["Labels"];
    assert_eq!(labels, &serde_json::json!({"owner": "flag", "team": "ops", "tier": "web"}), "{}", inspect.stdout);
    let id = std::fs::read_to_string(&cidfile).unwrap();
    assert_eq!(json["Id"], id.as_str());
    // A cidfile that exists is refused before anything starts.
    let again = env.ctr().args(["run", "--rm", "--cidfile"]).arg(&cidfile).args(["busybox", "true"]).output();
    assert_eq!(again.code(), Some(125), "{}", again.stderr);
    assert!(again.stderr.contains("--cidfile"), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(&cidfile).unwrap(), id);
    let missing = env.ctr().args(["run", "--rm", "--env-file", "/nonexistent/env", "busybox", "true"]).output();
    assert_eq!(missing.code(), Some(125), "{}", missing.stderr);
}

#[test]
fn stop_sends_the_stop_signal_and_waits_the_stop_timeout() {
    let Some(env) = env() else { return };
    let name = ctr_tests::unique_name("stopsig");
    // The shell reports SIGUSR1 and ignores SIGTERM: only the stop signal
    // shows, and stop's SIGKILL comes after the container's own timeout.
    let script = "trap 'echo got-usr1' USR1; trap '' TERM; echo ready; while true; do sleep 0.1; done";
    env.ctr()
        .args(["run", "-d", "--name", &name, "--stop-signal", "USR1", "--stop-timeout", "2", "busybox", "sh", "-c"])
        .arg(script)
        .ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !env.ctr().args(["logs", &name]).output().stdout.contains("ready") {
        assert!(std::time::Instant::now() < deadline, "the container never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let inspect = env.ctr().args(["inspect", &name]).ok().stdout;
    let started = std::time::Instant::now();
    let stop = env.ctr().args(["stop", &name]).output();
    let took = started.elapsed();
    let logs = env.ctr().args(["logs", &name]).output().stdout;
    let _ = env.ctr().args(["rm", "-f", &name]).output();
    assert_eq!(stop.code(), Some(0), "{}", stop.stderr);
    assert!(logs.contains("got-usr1"), "{logs}");
    assert!(took >= std::time::Duration::from_secs(2) && took < std::time::Duration::from_secs(9), "{took:?}");
    assert!(inspect.contains("\"StopSignal\": \"SIGUSR1\""), "{inspect}");
    assert!(inspect.contains("\"StopTimeout\": 2"), "{inspect}");
    let bad = env.ctr().args(["run", "--rm", "--stop-signal", "NOPE", "busybox", "true"]).output();
    assert_eq!(bad.code(), Some(125), "{}", bad.stderr);
}

#[test]
fn ulimit_sysctl_shm_size_and_group_add_reach_the_command_and_only_the_container() {
    let Some(env) = env() else { return };
    let host_shmmni = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    let wanted_shmmni = if host_shmmni.trim() == "1000" { "1001" } else { "1000" };
    let out = env
        .ctr()
        .args(["run", "--rm", "--ulimit", "nofile=512:1024", "--sysctl", "net.ipv4.ip_unprivileged_port_start=80"])
        .args(["--sysctl", &format!("kernel.shmmni={wanted_shmmni}"), "--shm-size", "128m", "--group-add", "4242"])
        .args(["busybox", "sh", "-c"])
        .arg(
            "echo nofile=$(ulimit -n):$(ulimit -Hn); \
             echo port_start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start); \
             echo shmmni=$(cat /proc/sys/kernel/shmmni); \
             echo shm=$(df -k /dev/shm | awk 'NR==2 {print $2}'); \
             echo groups=$(id -G)",
        )
        .output();
    assert_eq!(out.code(), Some(0), "{}\n{}", out.stdout, out.stderr);
    let line =
        |key: &str| out.stdout.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_default().to_owned();
    assert_eq!(line("nofile"), "512:1024", "{}", out.stdout);
    assert_eq!(line("port_start"), "80", "{}", out.stdout);
    assert_eq!(line("shmmni"), wanted_shmmni, "{}", out.stdout);
    assert_eq!(line("shm"), "131072", "{}", out.stdout);
    assert!(line("groups").split_whitespace().any(|g| g == "4242"), "{}", out.stdout);
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(), host_shmmni, "the host's sysctl changed");

    for (flags, why) in [
        (&["--sysctl", "kernel.hostname=x"][..], "not a namespaced sysctl"),
        (&["--sysctl", "vm.swappiness=1"][..], "not a namespaced sysctl"),
        (&["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"][..], "--network host"),
        (&["--ulimit", "nofile=1024:1099511627776"][..], "above yours"),
        (&["--ulimit", "bogus=1"][..], "unknown limit"),
        (&["--shm-size", "lots"][..], "--shm-size"),
    ] {
        let out = env.ctr().args(["run", "--rm"]).args(flags).args(["busybox", "true"]).output();
        assert_eq!(out.code(), Some(125), "{flags:?}: {}", out.stderr);
        assert!(out.stderr.contains(why), "{flags:?}: {}", out.stderr);
    }
}

#[test]
fn init_reaps_orphans_forwards_signals_and_keeps_the_commands_status() {
    let Some(env) = env() else { return };
    let script = "(sleep 0.2 &); sleep 1; echo pid=$$; echo pid1=$(cat /proc/1/comm); \
                  echo zombies=$(grep -l 'State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l); exit 3";
    let out = env.ctr().args(["run", "--rm", "--init", "busybox", "sh", "-c", script]).output();
    assert_eq!(out.code(), Some(3), "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("pid=1\n"), "the command is pid 1: {}", out.stdout);
    assert!(out.stdout.contains("pid1=ctr"), "{}", out.stdout);
    assert!(out.stdout.contains("zombies=0"), "an orphan was not reaped: {}", out.stdout);

    // SIGTERM reaches a command that, as pid 1, would ignore it.
    let name = ctr_tests::unique_name("reaper");
    env.ctr().args(["run", "-d", "--init", "--name", &name, "busybox", "sleep", "100"]).ok();
    let started = std::time::Instant::now();
    let stop = env.ctr().args(["stop", "-t", "20", &name]).output();
    let took = started.elapsed();
    let inspect = env.ctr().args(["inspect", &name]).output().stdout;
    let _ = env.ctr().args(["rm", "-f", &name]).output();
    assert_eq!(stop.code(), Some(0), "{}", stop.stderr);
    assert!(took < std::time::Duration::from_secs(10), "stop waited for SIGKILL: {took:?}");
    assert!(inspect.contains("\"ExitCode\": 143"), "{inspect}");
    assert!(inspect.contains("\"Init\": true"), "{inspect}");
}

#[test]
fn pull_policy_and_platform_decide_which_image_runs() {
    let Some(env) = env() else { return };
    let run = |flags: &[&str], image: &str| {
        env.ctr().args(["run", "--rm"]).args(flags).args([image, "true"]).timeout(Duration::from_secs(60)).output()
    };
    let here = run(&["--pull", "never"], "busybox");
    assert_eq!(here.code(), Some(0), "{}", here.stderr);
    let missing = run(&["--pull", "never"], "ctr-test-no-such-image");
    assert_eq!(missing.code(), Some(125), "{}", missing.stderr);
    assert!(missing.stderr.contains("--pull never"), "{}", missing.stderr);
    assert!(!missing.stderr.contains("Pulling from"), "{}", missing.stderr);
    // The test's network namespace reaches no registry: `always` shows it
    // goes there even for an image that is here.
    let always = run(&["--pull", "always"], "busybox");
    assert_eq!(always.code(), Some(125), "{}", always.stderr);
    assert!(always.stderr.contains("--pull always: pulling"), "{}", always.stderr);
    let bad = run(&["--pull", "sometimes"], "busybox");
    assert_eq!(bad.code(), Some(125), "{}", bad.stderr);

    let amd64 = run(&["--platform", "linux/amd64"], "busybox");
    assert_eq!(amd64.code(), Some(0), "{}", amd64.stderr);
    let arm64 = run(&["--platform", "linux/arm64"], "busybox");
    assert_eq!(arm64.code(), Some(125), "{}", arm64.stderr);
    assert!(arm64.stderr.contains("not linux/arm64"), "{}", arm64.stderr);
    let nonsense = run(&["--platform", "amd64"], "busybox");
    assert_eq!(nonsense.code(), Some(125), "{}", nonsense.stderr);
}

#[test]
fn mount_long_form_binds_read_only_mounts_tmpfs_and_keeps_volumes() {
    let Some(env) = env() else { return };
    let dir = UserDir::new(&env, "mountflag");
    dir.file("f", "from-host\n");
    let volume = ctr_tests::unique_name("mvol");
    let out = env
        .ctr()
        .args(["run", "--rm", "--mount"])
        .arg(format!("type=bind,source={},target=/data,readonly", dir.0.display()))
        .args(["--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m", "--mount"])
        .arg(format!("type=volume,source={volume},target=/v"))
        .args(["busybox", "sh", "-c"])
        .arg(
            "cat /data/f; touch /data/x 2>/dev/null || echo read-only; \
             echo scratch=$(df -k /scratch | awk 'NR==2 {print $2}'); echo kept > /v/k",
        )
        .output();
    let reread = env.ctr().args(["run", "--rm", "-v", &format!("{volume}:/v"), "busybox", "cat", "/v/k"]).output();
    let _ = env.ctr().args(["volume", "rm", &volume]).output();
    assert_eq!(out.code(), Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("from-host\nread-only\nscratch=1024\n"), "{}", out.stdout);
    assert!(!dir.0.join("x").exists());
    assert_eq!(reread.stdout.trim(), "kept", "{}", reread.stderr);
    let bad = env.ctr().args(["run", "--rm", "--mount", "type=bind,target=/x", "busybox", "true"]).output();
    assert_eq!(bad.code(), Some(125), "{}", bad.stderr);
    assert!(bad.stderr.contains("source=ABSOLUTE-PATH"), "{}", bad.stderr);
}
