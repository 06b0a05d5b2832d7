//! Resource limits, measured on the real kernel rather than read back from
//! the files the helper wrote: CPU time from the cgroup's own accounting,
//! OOM kills, the pids limit against a fork bomb, write throttling timed
//! inside the container, and the freezer stopping a counter. Tests in this
//! file run one at a time so that their CPU measurements do not disturb
//! each other.

use ctr_tests::{env, Child, Env};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The container's id, from `ctr inspect` as the test user.
fn container_id(env: &Env, name: &str) -> String {
    let out = env.ctr().args(["inspect", name]).ok().stdout;
    out.lines()
        .find_map(|l| l.trim().strip_prefix("\"Id\": \"")?.strip_suffix("\",").map(str::to_owned))
        .unwrap_or_else(|| panic!("no Id in inspect output:\n{out}"))
}

/// The container's cgroup directories beneath the test's own cgroups.
fn cgroup_dirs(env: &Env, name: &str) -> Vec<PathBuf> {
    cgroup_dirs_of_id(env, &container_id(env, name))
}

fn cgroup_dirs_of_id(env: &Env, id: &str) -> Vec<PathBuf> {
    let leaf = format!("ctr-{}-{id}", env.uid);
    ctr_tests::cgroup_leftovers().into_iter().filter(|d| d.ends_with(&leaf)).collect()
}

/// CPU time the kernel charged to the cgroup, in nanoseconds.
fn cpu_usage_ns(dirs: &[PathBuf]) -> u64 {
    for d in dirs {
        if let Ok(t) = std::fs::read_to_string(d.join("cpuacct.usage")) {
            return t.trim().parse().unwrap();
        }
        if let Ok(t) = std::fs::read_to_string(d.join("cpu.stat")) {
            if let Some(us) = t.lines().find_map(|l| l.strip_prefix("usage_usec ")) {
                return us.trim().parse::<u64>().unwrap() * 1000;
            }
        }
    }
    panic!("no CPU accounting in {dirs:?}");
}

fn read_in(dirs: &[PathBuf], file: &str) -> Option<String> {
    dirs.iter().find_map(|d| std::fs::read_to_string(d.join(file)).ok())
}

/// Starts a detached-in-the-test container that prints `ready` and then
/// runs `script`.
fn start(env: &Env, name: &str, flags: &[&str], script: &str) -> Child {
    let mut child = env
        .ctr()
        .args(["run", "--name", name])
        .args(flags)
        .args(["alpine", "sh", "-c", &format!("echo ready; {script}")])
        .timeout(Duration::from_secs(120))
        .spawn();
    child.wait_for_stdout("ready", Duration::from_secs(30));
    child
}

/// `ctr rm -f`, then the container's cgroups must be gone.
fn remove(env: &Env, name: &str, child: Child) {
    let dirs = cgroup_dirs(env, name);
    env.ctr().args(["rm", "-f", name]).ok();
    let _ = child.wait();
    for d in dirs {
        assert!(!d.exists(), "{} survived `ctr rm -f`", d.display());
    }
}

/// CPUs used over `window`, from the cgroup's accounting.
fn cpus_used(dirs: &[PathBuf], window: Duration) -> f64 {
    let before = cpu_usage_ns(dirs);
    let start = Instant::now();
    std::thread::sleep(window);
    let used = cpu_usage_ns(dirs) - before;
    used as f64 / start.elapsed().as_nanos() as f64
}

const BUSY: &str = "while :; do :; done";

#[test]
fn half_a_cpu_is_half_a_cpu() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let name = ctr_tests::unique_name("cpus");
    let child = start(&env, &name, &["--cpus", "0.5"], BUSY);
    let dirs = cgroup_dirs(&env, &name);
    std::thread::sleep(Duration::from_millis(500));
    let used = cpus_used(&dirs, Duration::from_secs(3));
    remove(&env, &name, child);
    assert!((0.4..=0.6).contains(&used), "--cpus 0.5 used {used:.3} CPUs");
}

#[test]
fn cpu_shares_split_one_cpu_two_to_one() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let (heavy, light) = (ctr_tests::unique_name("shares1024"), ctr_tests::unique_name("shares512"));
    let a = start(&env, &heavy, &["--cpu-shares", "1024", "--cpuset-cpus", "0"], BUSY);
    let b = start(&env, &light, &["--cpu-shares", "512", "--cpuset-cpus", "0"], BUSY);
    let (da, db) = (cgroup_dirs(&env, &heavy), cgroup_dirs(&env, &light));
    std::thread::sleep(Duration::from_millis(500));
    let (a0, b0) = (cpu_usage_ns(&da), cpu_usage_ns(&db));
    std::thread::sleep(Duration::from_secs(3));
    let (a1, b1) = (cpu_usage_ns(&da), cpu_usage_ns(&db));
    remove(&env, &heavy, a);
    remove(&env, &light, b);
    let ratio = (a1 - a0) as f64 / (b1 - b0) as f64;
    assert!((1.7..=2.3).contains(&ratio), "1024:512 shares gave a CPU split of {ratio:.3}");
}

const ALLOCATE_64M: &str = r#"BEGIN { s = sprintf("%67108864s", ""); print length(s) }"#;

#[test]
fn a_memory_limit_oom_kills_and_inspect_says_so() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let name = ctr_tests::unique_name("oom");
    let killed = env.ctr().args(["run", "--name", &name, "--memory", "32m", "alpine", "awk", ALLOCATE_64M]).output();
    assert_eq!(killed.code(), Some(137), "{}", killed.stderr);
    let inspect = env.ctr().args(["inspect", &name]).ok().stdout;
    assert!(inspect.contains("\"OOMKilled\": true"), "{inspect}");
    env.ctr().args(["rm", &name]).ok();

    let fits = env.ctr().args(["run", "--rm", "--memory", "128m", "alpine", "awk", ALLOCATE_64M]).ok();
    assert_eq!(fits.stdout.trim(), "67108864");
}

#[test]
fn a_fork_bomb_hits_the_pids_limit() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let name = ctr_tests::unique_name("bomb");
    let child = start(&env, &name, &["--pids-limit", "32"], "bomb() { bomb | bomb & }; bomb; sleep 60");
    let dirs = cgroup_dirs(&env, &name);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut peak = 0u64;
    let mut refused = 0u64;
    while Instant::now() < deadline && refused == 0 {
        peak = peak.max(read_in(&dirs, "pids.current").and_then(|t| t.trim().parse().ok()).unwrap_or(0));
        refused = read_in(&dirs, "pids.events")
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("max ")?.trim().parse().ok()))
            .unwrap_or(0);
        std::thread::sleep(Duration::from_millis(50));
    }
    // The host still starts processes promptly while the bomb runs.
    let started = Instant::now();
    std::process::Command::new("true").status().unwrap();
    let host_spawn = started.elapsed();
    remove(&env, &name, child);
    assert!(refused > 0, "the kernel never refused a fork (peak {peak} pids)");
    assert!(peak <= 32, "the container reached {peak} pids with --pids-limit 32");
    eprintln!("fork bomb: peak {peak} pids, {refused} forks refused, host spawn took {host_spawn:?}");
}

/// The block device holding `path`, as a node path under /dev/block.
fn device_of(path: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).unwrap().dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    PathBuf::from(format!("/dev/block/{major}:{minor}"))
}

#[test]
fn write_throttling_holds_the_rate() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    // The container's writable layer lives in the user's storage.
    let device = device_of(&env.data_home());
    if !device.exists() {
        eprintln!("skipped: {} has no block device node (overlay or network filesystem)", env.data_home().display());
        return;
    }
    let rate = 4u64 << 20;
    let size_mb = 12u64;
    // O_DIRECT, so that the writes are the container's own I/O (v1
    // throttles only direct I/O); dd times them itself, inside.
    let script = format!("dd if=/dev/zero of=/tmp/f bs=1M count={size_mb} oflag=direct 2>&1");
    let throttle = format!("{}:{}", device.display(), rate);
    let out = env.ctr().args(["run", "--rm", "--device-write-bps", &throttle, "alpine", "sh", "-c", &script]).ok();
    // busybox dd: "12582912 bytes (12.0MB) copied, 3.000513 seconds, 4.0MB/s"
    let seconds: f64 = out
        .stdout
        .split("copied, ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no timing from dd:\n{}", out.stdout));
    let measured = (size_mb << 20) as f64 / seconds;
    assert!(
        (0.8..=1.2).contains(&(measured / rate as f64)),
        "writes ran at {:.2} MiB/s under a {} MiB/s limit\n{}",
        measured / (1 << 20) as f64,
        rate >> 20,
        out.stdout
    );
}

#[test]
fn pause_stops_progress_and_unpause_resumes_it() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let name = ctr_tests::unique_name("pause");
    let mut child = start(&env, &name, &[], "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done");
    child.wait_for_stdout("tick 3", Duration::from_secs(10));
    env.ctr().args(["pause", &name]).ok();
    let frozen_at = child.stdout_so_far().lines().count();
    std::thread::sleep(Duration::from_secs(2));
    let after_pause = child.stdout_so_far().lines().count();
    env.ctr().args(["unpause", &name]).ok();
    std::thread::sleep(Duration::from_secs(1));
    let after_unpause = child.stdout_so_far().lines().count();
    remove(&env, &name, child);
    assert_eq!(frozen_at, after_pause, "the counter advanced while paused");
    assert!(after_unpause > after_pause + 3, "the counter did not resume ({after_pause} -> {after_unpause})");
}

/// Containers a test started, removed with `rm -f` however it ends.
struct RemoveAtEnd<'a>(&'a Env, Vec<String>);

impl Drop for RemoveAtEnd<'_> {
    fn drop(&mut self) {
        let _ = self.0.ctr().args(["rm", "-f"]).args(&self.1).output();
    }
}

/// A paused container on this host's freezer (v1 on a hybrid host, v2 in
/// the guest): `ps` and `inspect` say so, exec and a plain rm are refused,
/// a verb given several containers goes on past a failing one, and stop
/// and kill thaw it first, so that its own TERM handler runs (on the v1
/// freezer the signal would otherwise wait, and stop would end with
/// SIGKILL after its grace period); rm -f removes one outright.
#[test]
fn a_paused_container_shows_paused_and_can_be_stopped_and_removed() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let ctr = |args: &[&str]| env.ctr().args(args).output();
    let inspect = |name: &str, template: &str| {
        env.ctr().args(["inspect", "--format", template, name]).ok().stdout.trim().to_owned()
    };
    let (name, killed, forced) =
        (ctr_tests::unique_name("paused"), ctr_tests::unique_name("paused-kill"), ctr_tests::unique_name("paused-rmf"));
    let _cleanup = RemoveAtEnd(&env, vec![name.clone(), killed.clone(), forced.clone()]);
    let script = "trap 'exit 7' TERM; while :; do sleep 0.2; done";
    let run_d = |n: &str, command: &[&str]| {
        env.ctr().args(["run", "-d", "--network", "none", "--name", n, "alpine"]).args(command).ok();
    };
    run_d(&name, &["sh", "-c", script]);
    assert_eq!(env.ctr().args(["pause", &name]).ok().stdout, format!("{name}\n"));

    let ps = ctr(&["ps", "--format", "json"]).stdout;
    let row: serde_json::Value = ps
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["Names"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} is not in ps:\n{ps}"));
    assert_eq!(row["State"], "paused", "{row}");
    assert!(row["Status"].as_str().unwrap().ends_with("(Paused)"), "{row}");
    let table = ctr(&["ps"]).stdout;
    assert!(table.lines().any(|l| l.ends_with(name.as_str()) && l.contains("(Paused)")), "{table}");
    assert_eq!(inspect(&name, "{{.State.Status}} {{.State.Running}} {{.State.Paused}}"), "paused true true");
    assert_ne!(inspect(&name, "{{.State.Pid}}"), "0");

    let again = ctr(&["pause", &name]);
    assert_eq!(again.code(), Some(1), "{}", again.stderr);
    assert!(again.stderr.contains("is paused"), "{}", again.stderr);
    let exec = ctr(&["exec", &name, "true"]);
    assert_eq!(exec.code(), Some(1), "{}", exec.stderr);
    assert!(exec.stderr.contains("paused") && exec.stderr.contains("unpause"), "{}", exec.stderr);
    let rm = ctr(&["rm", &name]);
    assert_eq!(rm.code(), Some(1), "{}", rm.stderr);
    assert!(rm.stderr.contains("it is paused"), "{}", rm.stderr);

    // Several containers: the missing one is reported, the next one done.
    let both = ctr(&["unpause", "paused-no-such", &name]);
    assert_eq!(both.code(), Some(1), "{both:?}");
    assert!(both.stderr.contains("paused-no-such") && both.stdout == format!("{name}\n"), "{both:?}");
    assert_eq!(inspect(&name, "{{.State.Status}} {{.State.Paused}}"), "running false");
    env.ctr().args(["pause", &name]).ok();

    let t = Instant::now();
    env.ctr().args(["stop", "-t", "30", &name]).ok();
    assert!(t.elapsed() < Duration::from_secs(15), "stop took {:?}: the signal waited", t.elapsed());
    assert_eq!(inspect(&name, "{{.State.Status}} {{.State.ExitCode}}"), "exited 7");
    let dirs = cgroup_dirs_of_id(&env, &inspect(&name, "{{.Id}}"));
    env.ctr().args(["rm", &name]).ok();
    assert!(!ctr(&["ps", "-a"]).stdout.contains(name.as_str()));
    assert!(dirs.iter().all(|d| !d.exists()), "cgroups left: {dirs:?}");

    // kill thaws too; rm -f removes a paused container outright.
    run_d(&killed, &["sh", "-c", script]);
    env.ctr().args(["pause", &killed]).ok();
    env.ctr().args(["kill", "-s", "TERM", &killed]).ok();
    assert_eq!(env.ctr().args(["wait", &killed]).ok().stdout, "7\n");
    run_d(&forced, &["sleep", "600"]);
    env.ctr().args(["pause", &forced]).ok();
    let dirs = cgroup_dirs_of_id(&env, &inspect(&forced, "{{.Id}}"));
    assert!(!dirs.is_empty(), "no cgroups found for {forced}");
    env.ctr().args(["rm", "-f", &forced]).ok();
    assert!(dirs.iter().all(|d| !d.exists()), "cgroups left after rm -f of a paused container: {dirs:?}");
}

#[test]
fn impossible_limits_are_refused_before_anything_starts() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    for (flags, says) in [
        (vec!["--memory", "4m"], "minimum of 6MiB"),
        (vec!["--cpus", "4096"], "CPUs online"),
        (vec!["--cpuset-cpus", "0-4095"], "outside the online set"),
        (vec!["--device-write-bps", "/etc/passwd:1mb"], "not a block device"),
        (vec!["--pids-limit", "0"], "--pids-limit"),
        (vec!["--blkio-weight", "5000"], "between 10 and 1000"),
    ] {
        let out = env.ctr().args(["run", "--rm"]).args(&flags).args(["alpine", "true"]).output();
        assert_eq!(out.code(), Some(125), "{flags:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{flags:?}: {}", out.stderr);
    }
    // A limit this kernel cannot enforce is an error, never a silent no-op:
    // a v1 blkio hierarchy without blkio.weight (as on the CI host) must refuse.
    let weighted = env.ctr().args(["run", "--rm", "--blkio-weight", "300", "alpine", "true"]).output();
    let v1_blkio = Path::new("/sys/fs/cgroup/blkio");
    if v1_blkio.exists() && !v1_blkio.join("blkio.weight").exists() {
        assert_eq!(weighted.code(), Some(125), "{}", weighted.stderr);
        assert!(weighted.stderr.contains("not supported on this host"), "{}", weighted.stderr);
    } else {
        let refused = weighted.code() == Some(125) && weighted.stderr.contains("not supported on this host");
        assert!(weighted.success() || refused, "{}", weighted.stderr);
    }
}
