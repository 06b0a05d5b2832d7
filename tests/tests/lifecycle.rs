//! The docker lifecycle without a daemon, as an unprivileged user through
//! the installed helper: `run -d` and its monitor, `ps`, `logs -f`, `exec`,
//! `stop`, `kill`, `wait`, `rm -f` leaving nothing behind, a killed
//! monitor, 20 containers in parallel, unique names, `container prune`.
//! (A paused container's life is in `limits.rs`, which the cgroup-v2 guest
//! runs too.)
//! Every test removes what it started, even when it fails
//! ([`ctr_tests::Started`]).
//!
//! The tests run one at a time: `container prune` removes every stopped
//! container of the user, so parallel tests would see each other's vanish.

use ctr_tests::{env, Env, Output};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn ctr(env: &Env, args: &[&str]) -> Output {
    env.ctr().args(args).output()
}

fn inspect(env: &Env, name: &str, template: &str) -> String {
    env.ctr().args(["inspect", "--format", template, name]).ok().stdout.trim().to_owned()
}

/// What a container has on the host, to check that removal leaves none of it.
struct Footprint {
    pids: Vec<i32>,
    cgroups: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

fn footprint(env: &Env, name: &str) -> Footprint {
    let id = inspect(env, name, "{{.Id}}");
    let pids = ["{{.State.Pid}}", "{{.State.MonitorPid}}"]
        .iter()
        .filter_map(|t| inspect(env, name, t).parse::<i32>().ok())
        .filter(|&p| p > 0)
        .collect();
    let cgroups: Vec<String> = serde_json::from_str(&inspect(env, name, "{{json .CgroupPaths}}")).unwrap();
    let dirs = vec![
        env.data_home().join("ctr/containers").join(&id),
        PathBuf::from(format!("/tmp/ctr-run-{}/ctr/attach/{}", env.uid, &id[..16])),
        env.data_home().join("ctr/container-names").join(name),
    ];
    Footprint { pids, cgroups: cgroups.into_iter().map(PathBuf::from).collect(), dirs }
}

/// A process that is gone or only waits to be reaped by whoever adopted it.
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(')').next().and_then(|r| r.split_whitespace().next()) == Some("Z"),
    }
}

fn assert_nothing_left(env: &Env, fp: &Footprint, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while fp.pids.iter().any(|&p| !gone(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for &pid in &fp.pids {
        assert!(gone(pid), "{what}: process {pid} is still there");
    }
    assert!(!fp.cgroups.is_empty(), "{what}: the container had no cgroup");
    for dir in fp.cgroups.iter().chain(&fp.dirs) {
        assert!(!dir.exists(), "{what}: {} is still there", dir.display());
    }
    assert_eq!(ctr_tests::mounts_under(env.data_home()), Vec::<String>::new(), "{what}: mounts left");
}

fn running_names(env: &Env) -> String {
    env.ctr().args(["ps", "--format", "json"]).ok().stdout
}

#[test]
fn detached_container_through_its_whole_life() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut started = ctr_tests::Started::new(&env);
    let script = "echo secret > /marker; trap 'echo bye; exit 0' TERM; i=0; while :; do echo tick $i; echo warn $i >&2; i=$((i+1)); sleep 0.2; done";
    let t = Instant::now();
    let id = started.run_d("life-main", &["--network", "none", "alpine", "sh", "-c", script]);
    assert!(t.elapsed() < Duration::from_secs(10), "run -d took {:?}", t.elapsed());

    // ps: running, by short id, with -q and as JSON.
    let ps = ctr(&env, &["ps"]).stdout;
    let row = ps.lines().find(|l| l.ends_with("life-main")).unwrap_or_else(|| panic!("not in ps:\n{ps}"));
    assert!(row.starts_with(&id[..12]) && row.contains("Up"), "{row}");
    assert!(ctr(&env, &["ps", "-q"]).stdout.lines().any(|l| l == &id[..12]));
    let json = running_names(&env);
    let mine: serde_json::Value = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["Names"] == "life-main")
        .unwrap();
    assert_eq!(mine["State"], "running");
    assert_eq!(inspect(&env, &id[..8], "{{.Name}}"), "life-main", "a unique id prefix finds it");

    // logs -f sees new lines as they come, stdout and stderr apart.
    let mut follow = env.ctr().args(["logs", "-f", "life-main"]).spawn();
    follow.wait_for_stdout("tick 1\n", Duration::from_secs(20));
    let seen = follow.stdout_so_far().matches("tick").count();
    follow.wait_for_stdout(&format!("tick {}\n", seen + 3), Duration::from_secs(20));
    assert!(follow.stderr_so_far().contains("warn 0\n"), "stderr: {}", follow.stderr_so_far());
    let tail = ctr(&env, &["logs", "--tail", "2", "-t", "life-main"]);
    let lines: Vec<&str> = tail.stdout.lines().chain(tail.stderr.lines()).collect();
    assert!(lines.len() <= 2 && !lines.is_empty(), "{lines:?}");
    assert!(lines[0].contains('T') && lines[0].contains("Z "), "timestamps: {lines:?}");

    // exec: the container's pid namespace, hostname and files.
    let out = env
        .ctr()
        .args(["exec", "life-main", "sh", "-c", "echo $$ $(hostname); cat /marker; ls /proc | grep -cE '^[0-9]+$'"])
        .ok();
    let mut lines = out.stdout.lines();
    let first: Vec<&str> = lines.next().unwrap().split(' ').collect();
    assert!(first[0].parse::<u32>().unwrap() < 100, "a pid of the container's namespace: {}", out.stdout);
    assert_eq!(first[1], &id[..12], "the container's hostname");
    assert_eq!(lines.next(), Some("secret"));
    assert!(lines.next().unwrap().parse::<u32>().unwrap() < 20, "only the container's processes: {}", out.stdout);
    assert_eq!(ctr(&env, &["exec", "life-main", "sh", "-c", "exit 5"]).code(), Some(5));
    let missing = ctr(&env, &["exec", "life-main", "no-such-command"]);
    assert_eq!(missing.code(), Some(127), "{}", missing.stderr);
    let piped = env
        .ctr()
        .args(["exec", "-i", "-e", "GREETING=hi", "-w", "/tmp", "life-main", "sh", "-c", "cat; echo $GREETING; pwd"])
        .stdin("from stdin\n")
        .ok();
    assert_eq!(piped.stdout, "from stdin\nhi\n/tmp\n");
    // exec -d returns at once; its command keeps running in the container
    // (and ends with it, at the stop below).
    let detached =
        env.ctr().args(["exec", "-d", "life-main", "sh", "-c", "echo started > /tmp/detached; exec sleep 300"]).ok();
    assert!(detached.stdout.is_empty(), "{}", detached.stdout);
    let probe = "cat /tmp/detached 2>/dev/null; pidof sleep >/dev/null && echo sleeping";
    let running = (0..50).any(|_| {
        let out = ctr(&env, &["exec", "life-main", "sh", "-c", probe]);
        let both = out.stdout.contains("started") && out.stdout.contains("sleeping");
        if !both {
            std::thread::sleep(Duration::from_millis(100));
        }
        both
    });
    assert!(running, "the detached command is not running in the container");
    let with_tty = ctr(&env, &["exec", "-d", "-t", "life-main", "true"]);
    assert_eq!(with_tty.code(), Some(125), "{}", with_tty.stderr);

    // stop: SIGTERM is handled, so well within the grace period.
    let t = Instant::now();
    env.ctr().args(["stop", "-t", "20", "life-main"]).ok();
    assert!(t.elapsed() < Duration::from_secs(10), "stop took {:?}", t.elapsed());
    let followed = follow.wait();
    assert!(followed.stdout.contains("bye\n"), "logs -f ends with the container:\n{}", followed.stdout);
    assert_eq!(env.ctr().args(["wait", "life-main"]).ok().stdout, "0\n");
    assert_eq!(
        inspect(&env, "life-main", "{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}"),
        "exited 0 false"
    );
    assert!(ctr(&env, &["ps", "-a"]).stdout.lines().any(|l| l.ends_with("life-main") && l.contains("Exited (0)")));

    // exec into a stopped container is a clear error.
    let refused = ctr(&env, &["exec", "life-main", "true"]);
    assert_eq!(refused.code(), Some(1), "{}", refused.stderr);
    assert!(refused.stderr.contains("not running"), "{}", refused.stderr);

    let fp = footprint(&env, "life-main");
    env.ctr().args(["rm", "life-main"]).ok();
    assert!(!ctr(&env, &["ps", "-a"]).stdout.contains("life-main"));
    assert_nothing_left(&env, &fp, "rm");
}

#[test]
fn stop_kills_after_the_grace_period_and_wait_returns_the_code() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut started = ctr_tests::Started::new(&env);
    // pid 1 ignores SIGTERM it does not handle: SIGKILL after -t.
    started.run_d("life-stubborn", &["--network", "none", "alpine", "sleep", "600"]);
    let t = Instant::now();
    env.ctr().args(["stop", "-t", "1", "life-stubborn"]).ok();
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(8), "stop took {took:?}");
    assert_eq!(env.ctr().args(["wait", "life-stubborn"]).ok().stdout, "137\n");

    started.run_d("life-code", &["--network", "none", "alpine", "sh", "-c", "sleep 1; exit 7"]);
    assert_eq!(env.ctr().args(["wait", "life-code"]).ok().stdout, "7\n");

    started.run_d(
        "life-signal",
        &["--network", "none", "alpine", "sh", "-c", "trap 'echo got usr1' USR1; while :; do sleep 0.1; done"],
    );
    std::thread::sleep(Duration::from_millis(300));
    env.ctr().args(["kill", "-s", "USR1", "life-signal"]).ok();
    let mut logs = env.ctr().args(["logs", "-f", "life-signal"]).spawn();
    logs.wait_for_stdout("got usr1", Duration::from_secs(10));
    env.ctr().args(["kill", "life-signal"]).ok();
    assert_eq!(env.ctr().args(["wait", "life-signal"]).ok().stdout, "137\n");
    let _ = logs.wait();
    assert_eq!(ctr(&env, &["kill", "life-signal"]).code(), Some(1), "kill of a stopped container fails");
    assert_ne!(ctr(&env, &["kill", "-s", "NOPE", "life-signal"]).code(), Some(0));
}

#[test]
fn rm_f_of_a_running_container_leaves_nothing() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut started = ctr_tests::Started::new(&env);
    started.run_d("life-rmf", &["--network", "none", "alpine", "sh", "-c", "sleep 600 & sleep 600"]);
    let fp = footprint(&env, "life-rmf");
    assert_eq!(fp.pids.len(), 2, "init and monitor");
    assert_ne!(ctr(&env, &["rm", "life-rmf"]).code(), Some(0), "rm without -f refuses a running container");
    env.ctr().args(["rm", "-f", "life-rmf"]).ok();
    assert_nothing_left(&env, &fp, "rm -f");
    env.ctr().args(["rm", "-f", "life-rmf"]).output(); // idempotent: just "no such container"
}

#[test]
fn a_killed_monitor_does_not_make_ps_lie() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut started = ctr_tests::Started::new(&env);
    started.run_d("life-orphan", &["--network", "none", "alpine", "sleep", "600"]);
    let fp = footprint(&env, "life-orphan");
    let monitor: i32 = inspect(&env, "life-orphan", "{{.State.MonitorPid}}").parse().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{monitor}/status")).unwrap();
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    eprintln!("monitor VmRSS: {rss_kib} KiB");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(monitor), nix::sys::signal::Signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let ps = ctr(&env, &["ps"]).stdout;
    assert!(
        ps.lines().any(|l| l.ends_with("life-orphan") && l.contains("Up")),
        "still running without its monitor:\n{ps}"
    );
    env.ctr().args(["exec", "life-orphan", "true"]).ok();
    env.ctr().args(["rm", "-f", "life-orphan"]).ok();
    assert_nothing_left(&env, &fp, "rm -f after the monitor was killed");

    // Both gone: exited, code unknown; rm cleans up.
    started.run_d("life-stale", &["--network", "none", "alpine", "sleep", "600"]);
    let fp = footprint(&env, "life-stale");
    for template in ["{{.State.MonitorPid}}", "{{.State.Pid}}"] {
        let pid: i32 = inspect(&env, "life-stale", template).parse().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ps = ctr(&env, &["ps", "-a"]).stdout;
        if ps.lines().any(|l| l.ends_with("life-stale") && l.contains("Exited (unknown)")) {
            break;
        }
        assert!(Instant::now() < deadline, "a container whose monitor and init died shows:\n{ps}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!running_names(&env).contains("life-stale"));
    env.ctr().args(["rm", "life-stale"]).ok();
    assert_nothing_left(&env, &fp, "rm of a stale container");
}

#[test]
fn twenty_containers_in_parallel() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut started = ctr_tests::Started::new(&env);
    let names: Vec<String> = (0..20).map(|i| format!("life-par-{i}")).collect();
    started.names.extend(names.iter().cloned());
    let ids: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = names
            .iter()
            .map(|n| {
                let env = &env;
                s.spawn(move || {
                    env.ctr()
                        .args(["run", "-d", "--network", "none", "--name", n, "alpine", "sleep", "600"])
                        .timeout(Duration::from_secs(120))
                        .ok()
                        .stdout
                        .trim()
                        .to_owned()
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let ps = ctr(&env, &["ps"]).stdout;
    for (name, id) in names.iter().zip(&ids) {
        assert!(
            ps.lines().any(|l| l.starts_with(&id[..12]) && l.ends_with(name.as_str()) && l.contains("Up")),
            "{name} missing:\n{ps}"
        );
    }
    let prints: Vec<Footprint> = names.iter().map(|n| footprint(&env, n)).collect();
    std::thread::scope(|s| {
        for n in &names {
            let env = &env;
            s.spawn(move || env.ctr().args(["rm", "-f", n]).timeout(Duration::from_secs(120)).ok());
        }
    });
    for (fp, name) in prints.iter().zip(&names) {
        assert_nothing_left(&env, fp, name);
    }
    let after = ctr(&env, &["ps", "-a"]).stdout;
    assert!(!after.contains("life-par-"), "{after}");
}

#[test]
fn of_two_runs_with_one_name_exactly_one_wins() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut started = ctr_tests::Started::new(&env);
    started.names.push("life-dup".into());
    let outs: Vec<Output> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    env.ctr()
                        .args(["run", "-d", "--network", "none", "--name", "life-dup", "alpine", "sleep", "600"])
                        .output()
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let won: Vec<&Output> = outs.iter().filter(|o| o.success()).collect();
    assert_eq!(won.len(), 1, "{outs:?}");
    let lost = outs.iter().find(|o| !o.success()).unwrap();
    assert_eq!(lost.code(), Some(125));
    assert!(lost.stderr.contains("already in use"), "{}", lost.stderr);
}

#[test]
fn prune_removes_stopped_containers_only() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut started = ctr_tests::Started::new(&env);
    started.run_d("life-prune-done", &["--network", "none", "alpine", "true"]);
    started.run_d("life-prune-up", &["--network", "none", "alpine", "sleep", "600"]);
    env.ctr().args(["wait", "life-prune-done"]).ok();
    let out = env.ctr().args(["container", "prune", "-f"]).ok();
    assert!(out.stdout.contains("Deleted Containers:"), "{}", out.stdout);
    let all = ctr(&env, &["ps", "-a"]).stdout;
    assert!(!all.contains("life-prune-done"), "{all}");
    assert!(all.contains("life-prune-up"), "{all}");
}

#[test]
fn detached_run_with_rm_and_a_missing_command() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut started = ctr_tests::Started::new(&env);
    started.names.push("life-missing".into());
    let out = env
        .ctr()
        .args(["run", "-d", "--network", "none", "--name", "life-missing", "alpine", "no-such-command"])
        .output();
    assert_eq!(out.code(), Some(127), "{}", out.stderr);
    assert!(out.stderr.contains("not found"), "{}", out.stderr);

    started.run_d("life-autorm", &["--network", "none", "--rm", "alpine", "sh", "-c", "sleep 0.5"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while ctr(&env, &["ps", "-a"]).stdout.contains("life-autorm") {
        assert!(Instant::now() < deadline, "--rm container not removed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_monitor_records_an_oom_kill() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut started = ctr_tests::Started::new(&env);
    let allocate_64m = r#"BEGIN { s = sprintf("%67108864s", ""); print length(s) }"#;
    started.run_d("life-oom", &["--network", "none", "--memory", "32m", "alpine", "awk", allocate_64m]);
    assert_eq!(env.ctr().args(["wait", "life-oom"]).ok().stdout, "137\n");
    assert_eq!(inspect(&env, "life-oom", "{{.State.OOMKilled}} {{.State.ExitCode}}"), "true 137");
}

/// `ctr stats --no-stream --format json NAME`: its one row.
fn stats_row(env: &Env, name: &str) -> serde_json::Value {
    let out = env.ctr().args(["stats", "--no-stream", "--format", "json", name]).ok();
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("stats printed {:?}: {e}", out.stdout))
}

#[test]
fn stats_counts_network_bytes_of_bridge_containers_only() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut started = ctr_tests::Started::new(&env);
    let (bridged, isolated, host) = (
        ctr_tests::unique_name("stats-br"),
        ctr_tests::unique_name("stats-none"),
        ctr_tests::unique_name("stats-host"),
    );
    started.names.extend([bridged.clone(), isolated.clone(), host.clone()]);
    for (name, network) in [(&bridged, "bridge"), (&isolated, "none"), (&host, "host")] {
        env.ctr().args(["run", "-d", "--network", network, "--name", name, "alpine", "sleep", "600"]).ok();
    }

    let before = stats_row(&env, &bridged);
    let (rx0, tx0) = (before["NetRxBytes"].as_u64().unwrap(), before["NetTxBytes"].as_u64().unwrap());
    // Traffic that stays in the test's namespace: the bridge's own address.
    let gateway = inspect(&env, &bridged, "{{.NetworkSettings.Gateway}}");
    assert!(gateway.starts_with("10."), "gateway {gateway:?}");
    env.ctr()
        .args(["exec", &bridged, "ping", "-q", "-c", "20", "-i", "0.2", "-s", "1000", "-W", "2", &gateway])
        .timeout(Duration::from_secs(60))
        .ok();
    let after = stats_row(&env, &bridged);
    let (rx, tx) = (after["NetRxBytes"].as_u64().unwrap(), after["NetTxBytes"].as_u64().unwrap());
    // 20 echo requests and replies of 1000 bytes each way.
    assert!(rx >= rx0 + 20_000 && tx >= tx0 + 20_000, "rx {rx0} -> {rx}, tx {tx0} -> {tx}: {after}");
    let net_io = after["NetIO"].as_str().unwrap();
    let parts: Vec<&str> = net_io.split(" / ").collect();
    assert!(
        parts.len() == 2 && parts.iter().all(|p| p.ends_with("kB")),
        "a few kB each way, in docker's units: {net_io}"
    );

    // Loopback only: nothing to count. The host's network: not its own.
    let none = stats_row(&env, &isolated);
    assert_eq!(
        (none["NetIO"].as_str(), none["NetRxBytes"].as_u64(), none["NetTxBytes"].as_u64()),
        (Some("0B / 0B"), Some(0), Some(0)),
        "{none}"
    );
    let shared = stats_row(&env, &host);
    assert_eq!(shared["NetIO"], "--", "{shared}");
    assert!(shared["NetRxBytes"].is_null() && shared["NetTxBytes"].is_null(), "{shared}");
}
