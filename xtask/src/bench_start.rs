//! `cargo xtask bench start`: what starting a container costs, against
//! crun (an OCI runtime in C, as root), per issue 13's goals, reported and
//! never asserted:
//!
//! - start: `ctr run --rm alpine /bin/true` with `--network none`, on the
//!   default bridge, and on the bridge with a published port, against
//!   `crun run` of the same rootfs (and a bare `unshare` of the same
//!   namespaces, the floor). Every round runs each once, in an order that
//!   rotates from round to round, so drift in the machine's load hits all
//!   alike; each round's ratios and the overall medians, p90s and ratios
//!   are printed;
//! - where a start's time goes: every `ctr run` is traced
//!   (`CTR_TRACE_TIMINGS=1`), and its phases and the gaps between them,
//!   from the spawn to the exit (the after-exit work included), are laid
//!   on one time line, so that per run they add up to the total;
//! - exec: `ctr exec` into a running container against `crun exec`, in
//!   alternating rounds;
//! - concurrency: `--concurrent` detached containers on the default bridge
//!   started at once: the time until all of them run, and the failures
//!   (there must be none); then all removed at once, likewise.
//!
//! One summary line per goal closes the report. Containers are started as
//! the test user (`ctr` spawned directly with the user's ids, as crun is
//! spawned, without the tests' `setpriv` wrapper) through the installed
//! setuid helper, inside a network
//! namespace of the run's own (the bridge and its rules land there), by a
//! hidden child, `xtask bench start-inner`. crun runs in a child of its
//! own, `xtask bench crun-inner`, that hides the hybrid host's cgroup-v2
//! mount in a private mount namespace (crun refuses the host otherwise)
//! and takes one request per line on stdin.

use crate::bench::{caught, make_bundle, ms, stats};
use crate::bench_net::refuse_host_netns;
use crate::setup::TestRun;
use crate::test_driver::TEST_PACKAGES;
use crate::{host, interrupt};
use anyhow::{anyhow, bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "alpine";
/// The published port of the `bridge -p` variant (inside the run's netns).
const PUBLISHED: &str = "18080:80";
const EXEC_CONTAINER: &str = "bench-exec";
const CONCURRENT_PREFIX: &str = "bench-conc-";

/// What the outer and the inner process agree on.
#[derive(Debug, Clone, Copy)]
pub struct StartArgs {
    /// Rounds of the start and of the exec benchmark.
    pub runs: usize,
    /// Containers started at once (0: skip).
    pub concurrent: usize,
}

/// `cargo xtask bench start`: the run, its network namespace and the crun
/// bundles; the measuring happens in `start-inner`.
pub fn start(args: StartArgs) -> Result<()> {
    host::require_root("bench start")?;
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    interrupt::install()?;
    host::ensure_packages(TEST_PACKAGES)?;
    let mut run = TestRun::setup()?;
    let netns = run.add_netns()?;
    // The helper nests container cgroups beneath ours: keep them in a scope
    // that cleanup removes.
    run.enter_cgroup_scope()?;
    let bundle = run.root.join("bundle");
    make_bundle(&bundle, &run.env.alpine, &["/bin/true"])?;
    let exe = std::env::current_exe().context("cannot find the xtask binary")?;
    let mut inner = Command::new("nsenter");
    inner
        .arg(format!("--net=/run/netns/{netns}"))
        .arg("--")
        .arg(exe)
        .args(["bench", "start-inner", "--runs", &args.runs.to_string()])
        .args(["--concurrent", &args.concurrent.to_string(), "--bundle"])
        .arg(&bundle)
        .envs(run.test_vars());
    let result = host::run(&mut inner);
    drop(run);
    result
}

/// The variants of a start, in the order of a round's first turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Crun,
    CtrNone,
    CtrBridge,
    CtrPort,
    Floor,
}

const VARIANTS: [Variant; 5] = [Variant::Crun, Variant::CtrNone, Variant::CtrBridge, Variant::CtrPort, Variant::Floor];

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Crun => "crun run (root)",
            Variant::CtrNone => "ctr --network none",
            Variant::CtrBridge => "ctr --network bridge",
            Variant::CtrPort => "ctr bridge -p 18080:80",
            Variant::Floor => "unshare floor (user)",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Variant::Crun => "crun",
            Variant::CtrNone => "none",
            Variant::CtrBridge => "bridge",
            Variant::CtrPort => "bridge-p",
            Variant::Floor => "floor",
        }
    }

    fn ctr_args(self) -> Option<&'static [&'static str]> {
        match self {
            Variant::CtrNone => Some(&["--network", "none"]),
            Variant::CtrBridge => Some(&["--network", "bridge"]),
            Variant::CtrPort => Some(&["--network", "bridge", "-p", PUBLISHED]),
            Variant::Crun | Variant::Floor => None,
        }
    }
}

/// The hidden `xtask bench start-inner`, in the run's network namespace.
pub fn start_inner(args: StartArgs, bundle: &Path) -> Result<()> {
    interrupt::install()?;
    refuse_host_netns("bench start-inner", "bench start")?;
    let env = ctr_tests::env().context("run through `cargo xtask bench start`: the CTR_TEST_* variables are unset")?;
    env.ensure_alpine_image(IMAGE);
    let mut crun = CrunServer::spawn(bundle)?;
    let starts = caught(|| time_starts(&env, &mut crun, args.runs));
    let exec = caught(|| time_exec(&env, &mut crun, args.runs));
    let concurrent = if args.concurrent > 0 { Some(caught(|| concurrent(&env, args.concurrent))) } else { None };
    let oci = caught(|| time_oci_runs(&env, &mut crun, bundle, args.runs));
    crun.quit();
    if let Err(e) = strace_variants(&env) {
        println!("strace of the ctr variants failed: {e:#}");
    }
    println!();
    match &starts {
        Ok(s) => s.print(args.runs),
        Err(e) => println!("start benchmark failed: {e:#}"),
    }
    match &exec {
        Ok(e) => e.print(),
        Err(e) => println!("\nexec benchmark failed: {e:#}"),
    }
    match &concurrent {
        Some(Ok(c)) => c.print(),
        Some(Err(e)) => println!("\nconcurrency benchmark failed: {e:#}"),
        None => {}
    }
    match &oci {
        Ok(o) => o.print(),
        Err(e) => println!("\nctr-oci run benchmark failed: {e:#}"),
    }
    print_goals(starts.as_ref().ok(), exec.as_ref().ok(), concurrent.as_ref().and_then(|c| c.as_ref().ok()));
    Ok(())
}

/// `ctr-oci run` against `crun run` of the same bundle (`/bin/true`), both
/// as root: issue 12's goal is a median ratio of at most 1.0. Each round
/// runs both, alternating which goes first; ctr-oci is spawned here (its
/// cgroup, the bundle's id, goes beneath the run's scope), crun in its
/// child (`crun-inner`), each timed from spawn to exit.
struct OciRuns {
    ctr_oci: Vec<Duration>,
    crun: Vec<Duration>,
}

fn time_oci_runs(env: &ctr_tests::Env, crun: &mut CrunServer, bundle: &Path, runs: usize) -> Result<OciRuns> {
    let binary = env.prefix.join("bin/ctr-oci");
    let root = bundle.with_file_name("ctr-oci-state");
    let mut count = 0;
    let mut ctr_oci = || -> Result<Duration> {
        count += 1;
        let id = format!("xtask-bench-oci-{}-{count}", std::process::id());
        let started = Instant::now();
        let out = Command::new(&binary)
            .arg("--root")
            .arg(&root)
            .args(["run", "--bundle"])
            .arg(bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        let took = started.elapsed();
        if !out.status.success() {
            let _ = Command::new(&binary).arg("--root").arg(&root).args(["delete", "--force", &id]).output();
            bail!("`ctr-oci run` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(took)
    };
    ctr_oci().context("warm-up of ctr-oci run")?;
    crun.request("run").context("warm-up of crun run")?;
    let mut times = OciRuns { ctr_oci: Vec::new(), crun: Vec::new() };
    for round in 0..runs {
        interrupt::check()?;
        if round % 2 == 0 {
            times.ctr_oci.push(ctr_oci()?);
            times.crun.push(crun.request("run")?);
        } else {
            times.crun.push(crun.request("run")?);
            times.ctr_oci.push(ctr_oci()?);
        }
    }
    Ok(times)
}

impl OciRuns {
    fn print(&self) {
        println!(
            "\n`ctr-oci run` vs `crun run`, the same bundle (/bin/true), as root, {} rounds, alternating",
            self.crun.len()
        );
        println!("{:<24} {:>10} {:>10} {:>9}", "runtime", "median ms", "p90 ms", "vs crun");
        let (crun_median, crun_p90) = stats(&self.crun);
        let (oci_median, oci_p90) = stats(&self.ctr_oci);
        println!("{:<24} {:>10.2} {:>10.2} {:>8.2}x", "crun run", ms(crun_median), ms(crun_p90), 1.0);
        let ratio = ms(oci_median) / ms(crun_median);
        println!("{:<24} {:>10.2} {:>10.2} {:>8.2}x", "ctr-oci run", ms(oci_median), ms(oci_p90), ratio);
        let mut rounds: Vec<f64> = self.ctr_oci.iter().zip(&self.crun).map(|(o, c)| ms(*o) / ms(*c)).collect();
        rounds.sort_by(f64::total_cmp);
        let round_median = rounds.get(rounds.len() / 2).copied().unwrap_or(f64::NAN);
        println!(
            "median ratio ctr-oci/crun: {ratio:.2} (of medians), {round_median:.2} (per round); goal: at most 1.0, {}",
            if ratio <= 1.0 { "met" } else { "not met" }
        );
    }
}

/// The crun child: one request per line (`run`, `exec-start`, `exec`),
/// one answer per line (`ok <ms>` or `err <message>`).
struct CrunServer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl CrunServer {
    fn spawn(bundle: &Path) -> Result<Self> {
        let exe = std::env::current_exe().context("cannot find the xtask binary")?;
        let mut child = Command::new(exe)
            .args(["bench", "crun-inner", "--bundle"])
            .arg(bundle)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start `xtask bench crun-inner`")?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        Ok(Self { child, stdin, stdout })
    }

    fn request(&mut self, what: &str) -> Result<Duration> {
        let stdin = self.stdin.as_mut().context("crun-inner has quit")?;
        writeln!(stdin, "{what}").context("crun-inner is gone")?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).context("crun-inner is gone")?;
        match line.trim().split_once(' ') {
            Some(("ok", millis)) => Ok(Duration::from_secs_f64(millis.parse::<f64>()? / 1000.0)),
            Some(("err", message)) => Err(anyhow!("{message}")),
            _ => Err(anyhow!("crun-inner answered {line:?} to {what}")),
        }
    }

    /// Closes its stdin (it removes its exec container and exits) and reaps it.
    fn quit(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for CrunServer {
    fn drop(&mut self) {
        self.quit();
    }
}

/// The phases and gaps of one traced `ctr run`, in time-line order. Each
/// is named by the trace line whose phase it is, or by what happens in the
/// gap; consecutive boundaries make the segments, so they add up.
const SEGMENTS: [&str; 12] = [
    "exec of ctr, startup",
    "image.resolve",
    "ctr: security, spec",
    "rootfs.prepare",
    "ctr: state, id maps",
    "helper.spawn (helper)",
    "spec to init",
    "init.total",
    "init's report to ctr",
    "container runs, reaped",
    "finish (helper answered)",
    "ctr exits",
];

/// One timed run: its wall time, its segments if it was traced, and how
/// long the helper's detached teardown ran on after `ctr` returned.
struct Timed {
    wall: Duration,
    segments: Option<[Duration; SEGMENTS.len()]>,
    after_return: Option<Duration>,
}

/// The helper's records of the test user's containers: each is removed
/// last, by the helper's teardown (detached, for a bridged container).
const HELPER_RECORDS: &str = "/run/ctr-helper";

/// Waits, outside the timing, until the helper's teardown of the test
/// user's containers is done (their records gone), so that it never
/// overlaps the next round; returns how long that took after `ctr` exited.
/// `CTR_BENCH_SETTLE_MS=N` then idles N ms more (untimed), to check that
/// no kernel work a run leaves behind (a network namespace's dismantling)
/// is billed to the next run.
fn await_teardown(env: &ctr_tests::Env, exited: f64) -> Result<Duration> {
    let dir = std::path::PathBuf::from(format!("{HELPER_RECORDS}/{}", env.uid));
    let give_up = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        if Instant::now() > give_up {
            bail!("the helper's records in {} were not removed within 30 s", dir.display());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let took = Duration::from_secs_f64((monotonic_ms() - exited).max(0.0) / 1000.0);
    if let Some(ms) = std::env::var("CTR_BENCH_SETTLE_MS").ok().and_then(|v| v.parse().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    Ok(took)
}

/// The `ctr-timing PHASE 0.412ms @81234.567` lines of `stderr`, as
/// (phase, start, end) in ms of CLOCK_MONOTONIC.
fn parse_trace(stderr: &str) -> Vec<(String, f64, f64)> {
    stderr
        .lines()
        .filter_map(|l| {
            let mut words = l.strip_prefix("ctr-timing ")?.split(' ');
            let (phase, took, at) = (words.next()?, words.next()?, words.next()?);
            let took: f64 = took.strip_suffix("ms")?.parse().ok()?;
            let at: f64 = at.strip_prefix('@')?.parse().ok()?;
            Some((phase.to_owned(), at - took, at))
        })
        .collect()
}

/// The segments between `spawned` and `exited` (ms of CLOCK_MONOTONIC),
/// if every phase they need was traced.
fn segments(trace: &[(String, f64, f64)], spawned: f64, exited: f64) -> Option<[Duration; SEGMENTS.len()]> {
    let find = |name: &str| trace.iter().find(|(p, _, _)| p == name).map(|(_, s, e)| (*s, *e));
    let (resolve, prepare, spawn) = (find("image.resolve")?, find("rootfs.prepare")?, find("helper.spawn")?);
    let (init, exec, finish) = (find("init.total")?, find("exec.total")?, find("finish")?);
    let bounds = [
        spawned, resolve.0, resolve.1, prepare.0, prepare.1, spawn.0, spawn.1, init.0, init.1, exec.1, finish.0,
        finish.1, exited,
    ];
    let mut out = [Duration::ZERO; SEGMENTS.len()];
    for (i, pair) in bounds.windows(2).enumerate() {
        // A clock read a little out of order shows as zero, not negative.
        out[i] = Duration::from_secs_f64((pair[1] - pair[0]).max(0.0) / 1000.0);
    }
    Some(out)
}

fn monotonic_ms() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map_or(0.0, |t| Duration::from(t).as_secs_f64() * 1000.0)
}

/// `program` as the test user, started directly (as crun-inner starts
/// crun), not through the tests' `setpriv` and `env` wrapper, whose two
/// extra executions would be timed as ctr's: the user's ids (no
/// supplementary groups), the scratch directory, and a login-like
/// environment with the test's data directory.
fn as_test_user(env: &ctr_tests::Env, program: impl AsRef<std::ffi::OsStr>) -> Result<Command> {
    use std::os::unix::process::CommandExt;
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(env.uid))?
        .with_context(|| format!("no user with uid {}", env.uid))?;
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("HOME", &user.dir)
        .env("USER", &user.name)
        .env("LOGNAME", &user.name)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("XDG_DATA_HOME", env.data_home())
        .uid(env.uid)
        .gid(env.gid)
        .current_dir(&env.work)
        .stdin(Stdio::null());
    Ok(cmd)
}

/// Runs `cmd` to its end: its wall time, and what it printed.
fn timed_output(mut cmd: Command, what: &str) -> Result<(Duration, f64, f64, std::process::Output)> {
    let (spawned, started) = (monotonic_ms(), Instant::now());
    let out = cmd.output().with_context(|| format!("cannot start {what}"))?;
    let (wall, exited) = (started.elapsed(), monotonic_ms());
    if !out.status.success() {
        bail!("`{what}` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok((wall, spawned, exited, out))
}

fn ctr_run(env: &ctr_tests::Env, args: &[&str]) -> Result<Timed> {
    let mut cmd = as_test_user(env, env.ctr_path())?;
    cmd.args(["run", "--rm"]).args(args).args([IMAGE, "/bin/true"]).env("CTR_TRACE_TIMINGS", "1");
    let (wall, spawned, exited, out) = timed_output(cmd, &format!("ctr run --rm {}", args.join(" ")))?;
    let segments = segments(&parse_trace(&String::from_utf8_lossy(&out.stderr)), spawned, exited);
    Ok(Timed { wall, segments, after_return: Some(await_teardown(env, exited)?) })
}

fn floor(env: &ctr_tests::Env) -> Result<Timed> {
    let args = ["--user", "--map-root-user", "--pid", "--fork", "--mount", "--uts", "--ipc", "--net", "--mount-proc"];
    let mut cmd = as_test_user(env, "unshare")?;
    cmd.args(args).arg("/bin/true");
    let (wall, ..) = timed_output(cmd, "unshare")?;
    Ok(Timed { wall, segments: None, after_return: None })
}

fn run_variant(env: &ctr_tests::Env, crun: &mut CrunServer, v: Variant) -> Result<Timed> {
    match v {
        Variant::Crun => Ok(Timed { wall: crun.request("run")?, segments: None, after_return: None }),
        Variant::Floor => floor(env),
        _ => ctr_run(env, v.ctr_args().expect("a ctr variant")),
    }
}

/// With `CTR_BENCH_STRACE=DIR`, one untimed `ctr run --rm` of each ctr
/// variant under `strace -f -ttt -T`, as root with `-u` (so that the
/// setuid helper runs as it does untraced), into `DIR/<variant>.strace`:
/// where a phase's time goes, system call by system call.
fn strace_variants(env: &ctr_tests::Env) -> Result<()> {
    let Some(dir) = std::env::var_os("CTR_BENCH_STRACE") else { return Ok(()) };
    let home = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(env.uid))?
        .with_context(|| format!("no user with uid {}", env.uid))?
        .dir;
    for v in [Variant::CtrNone, Variant::CtrBridge, Variant::CtrPort] {
        let out = Path::new(&dir).join(format!("{}.strace", v.short()));
        let mut cmd = Command::new("strace");
        cmd.args(["-f", "-ttt", "-T", "-u", &env.user, "-o"])
            .arg(&out)
            .arg(env.ctr_path())
            .args(["run", "--rm"])
            .args(v.ctr_args().expect("a ctr variant"))
            .args([IMAGE, "/bin/true"])
            .env_clear()
            .env("HOME", &home)
            .env("USER", &env.user)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("XDG_DATA_HOME", env.data_home())
            .current_dir(&env.work)
            .stdin(Stdio::null());
        let (_, _, exited, _) = timed_output(cmd, &format!("strace of ctr {}", v.short()))?;
        await_teardown(env, exited)?;
    }
    Ok(())
}

/// Every variant's runs, round by round.
struct Starts {
    rounds: Vec<Vec<Timed>>,
}

fn time_starts(env: &ctr_tests::Env, crun: &mut CrunServer, runs: usize) -> Result<Starts> {
    // Untimed warm-up: the first bridged run also creates the bridge and its rules.
    for v in VARIANTS {
        run_variant(env, crun, v).with_context(|| format!("warm-up of {}", v.label()))?;
    }
    let mut rounds = Vec::new();
    for round in 0..runs {
        interrupt::check()?;
        let mut timed: Vec<Option<Timed>> = VARIANTS.iter().map(|_| None).collect();
        for turn in 0..VARIANTS.len() {
            let i = (round + turn) % VARIANTS.len();
            let t = run_variant(env, crun, VARIANTS[i])
                .with_context(|| format!("round {} of {runs}: {}", round + 1, VARIANTS[i].label()))?;
            timed[i] = Some(t);
        }
        rounds.push(timed.into_iter().map(|t| t.expect("every variant ran")).collect());
    }
    Ok(Starts { rounds })
}

impl Starts {
    fn walls(&self, v: Variant) -> Vec<Duration> {
        let i = VARIANTS.iter().position(|x| *x == v).expect("a variant");
        self.rounds.iter().map(|r| r[i].wall).collect()
    }

    fn median(&self, v: Variant) -> Duration {
        stats(&self.walls(v)).0
    }

    fn print(&self, runs: usize) {
        println!("container start (`/bin/true`, alpine), {runs} rounds, each variant once per round in rotating order");
        let crun = self.walls(Variant::Crun);
        print!("{:>5}", "round");
        for v in VARIANTS {
            print!(" {:>9}", v.short());
        }
        println!("   ctr/crun: none bridge bridge-p");
        for (n, round) in self.rounds.iter().enumerate() {
            print!("{:>5}", n + 1);
            for t in round {
                print!(" {:>9.2}", ms(t.wall));
            }
            let ratio = |i: usize| ms(round[i].wall) / ms(crun[n]);
            println!("   {:>13.2} {:>6.2} {:>8.2}", ratio(1), ratio(2), ratio(3));
        }
        println!("\n{:<24} {:>10} {:>10} {:>9} {:>16}", "variant", "median ms", "p90 ms", "vs crun", "round ratio med");
        let crun_median = self.median(Variant::Crun);
        for v in VARIANTS {
            let walls = self.walls(v);
            let (median, p90) = stats(&walls);
            let per_round: Vec<Duration> = walls
                .iter()
                .zip(&crun)
                .map(|(w, c)| Duration::from_secs_f64(w.as_secs_f64() / c.as_secs_f64()))
                .collect();
            let round_ratio = stats(&per_round).0.as_secs_f64();
            let ratio = ms(median) / ms(crun_median);
            println!("{:<24} {:>10.2} {:>10.2} {:>8.2}x {:>15.2}x", v.label(), ms(median), ms(p90), ratio, round_ratio);
        }
        self.print_phases();
    }

    /// Median and mean of every segment per ctr variant; per run the
    /// segments add up to the wall time, and so do the means.
    fn print_phases(&self) {
        let ctr = [Variant::CtrNone, Variant::CtrBridge, Variant::CtrPort];
        println!("\nwhere a `ctr run --rm` goes (CTR_TRACE_TIMINGS time line, spawn to exit), ms: median / mean");
        print!("{:<26}", "segment");
        for v in ctr {
            print!(" {:>17}", v.short());
        }
        println!();
        let traced: Vec<Vec<[Duration; SEGMENTS.len()]>> = ctr
            .iter()
            .map(|v| {
                let i = VARIANTS.iter().position(|x| x == v).expect("a variant");
                self.rounds.iter().filter_map(|r| r[i].segments).collect()
            })
            .collect();
        let cell = median_mean;
        for (s, name) in SEGMENTS.iter().enumerate() {
            print!("{name:<26}");
            for runs in &traced {
                print!("{}", cell(runs.iter().map(|r| r[s]).collect()));
            }
            println!();
        }
        print!("{:<26}", "total");
        for runs in &traced {
            print!("{}", cell(runs.iter().map(|r| r.iter().sum()).collect()));
        }
        println!();
        let counts: Vec<String> = traced.iter().map(|t| t.len().to_string()).collect();
        println!("(traced runs with every phase: {})", counts.join(" / "));
        // Not in the total: it runs after `ctr` returned, and the bench
        // waits for it between runs, untimed.
        print!("{:<26}", "helper teardown after exit");
        for v in ctr {
            let i = VARIANTS.iter().position(|x| *x == v).expect("a variant");
            print!("{}", cell(self.rounds.iter().filter_map(|r| r[i].after_return).collect()));
        }
        println!("\n(the helper's detached teardown (veth, rules, lease, record) after `ctr` returned; waited for between runs, untimed)");
    }
}

/// `ctr exec` and `crun exec` of /bin/true into a running container.
struct Exec {
    ctr: Vec<Duration>,
    crun: Vec<Duration>,
    /// The segments of each traced `ctr exec` with every phase.
    phases: Vec<[Duration; SEGMENTS.len()]>,
}

/// The phases and gaps of one traced `ctr exec`, as [`SEGMENTS`] for a run
/// (padded to the same length with empty names, which are not printed).
const EXEC_SEGMENTS: [&str; SEGMENTS.len()] = [
    "exec of ctr, startup",
    "exec.prepare",
    "ctr: to the helper",
    "helper.exec (helper)",
    "spec to init (its startup)",
    "exec.join (init)",
    "init: fork, user, seccomp",
    "init's report to ctr",
    "exec.wait (command runs)",
    "ctr exits",
    "",
    "",
];

fn exec_segments(trace: &[(String, f64, f64)], spawned: f64, exited: f64) -> Option<[Duration; SEGMENTS.len()]> {
    let find = |name: &str| trace.iter().find(|(p, _, _)| p == name).map(|(_, s, e)| (*s, *e));
    let (prepare, helper, join) = (find("exec.prepare")?, find("helper.exec")?, find("exec.join")?);
    let (init, wait) = (find("init.total")?, find("exec.wait")?);
    let bounds = [spawned, prepare.0, prepare.1, helper.0, helper.1, join.0, join.1, init.1, wait.0, wait.1, exited];
    let mut out = [Duration::ZERO; SEGMENTS.len()];
    for (i, pair) in bounds.windows(2).enumerate() {
        out[i] = Duration::from_secs_f64((pair[1] - pair[0]).max(0.0) / 1000.0);
    }
    Some(out)
}

fn time_exec(env: &ctr_tests::Env, crun: &mut CrunServer, runs: usize) -> Result<Exec> {
    let started =
        env.ctr().args(["run", "-d", "--network", "none", "--name", EXEC_CONTAINER, IMAGE, "sleep", "1000"]).output();
    if !started.success() {
        bail!("`ctr run -d --name {EXEC_CONTAINER}` failed ({}): {}", started.status, started.stderr.trim());
    }
    let result = (|| {
        crun.request("exec-start")?;
        let ctr_exec = || -> Result<Timed> {
            let mut cmd = as_test_user(env, env.ctr_path())?;
            cmd.args(["exec", EXEC_CONTAINER, "/bin/true"]).env("CTR_TRACE_TIMINGS", "1");
            let (wall, spawned, exited, out) = timed_output(cmd, "ctr exec")?;
            Ok(Timed {
                wall,
                segments: exec_segments(&parse_trace(&String::from_utf8_lossy(&out.stderr)), spawned, exited),
                after_return: None,
            })
        };
        ctr_exec().context("warm-up")?;
        crun.request("exec").context("warm-up")?;
        let mut exec = Exec { ctr: Vec::new(), crun: Vec::new(), phases: Vec::new() };
        let ctr = |exec: &mut Exec| -> Result<()> {
            let timed = ctr_exec()?;
            exec.ctr.push(timed.wall);
            exec.phases.extend(timed.segments);
            Ok(())
        };
        for round in 0..runs {
            interrupt::check()?;
            if round % 2 == 0 {
                ctr(&mut exec)?;
                exec.crun.push(crun.request("exec")?);
            } else {
                exec.crun.push(crun.request("exec")?);
                ctr(&mut exec)?;
            }
        }
        Ok(exec)
    })();
    let _ = env.ctr().args(["rm", "-f", EXEC_CONTAINER]).output();
    result
}

impl Exec {
    fn ratio(&self) -> f64 {
        ms(stats(&self.ctr).0) / ms(stats(&self.crun).0)
    }

    fn print(&self) {
        println!("\nexec of /bin/true into a running container, {} rounds, alternating", self.ctr.len());
        println!("{:<24} {:>10} {:>10} {:>9}", "name", "median ms", "p90 ms", "vs crun");
        for (name, t) in [("ctr exec (user)", &self.ctr), ("crun exec (root)", &self.crun)] {
            let (median, p90) = stats(t);
            println!(
                "{name:<24} {:>10.2} {:>10.2} {:>8.2}x",
                ms(median),
                ms(p90),
                ms(median) / ms(stats(&self.crun).0)
            );
        }
        let rounds: Vec<String> =
            self.ctr.iter().zip(&self.crun).map(|(c, r)| format!("{:.2}", ms(*c) / ms(*r))).collect();
        println!("per-round ctr/crun: {}", rounds.join(" "));
        println!("\nwhere a `ctr exec` goes (CTR_TRACE_TIMINGS time line, spawn to exit), ms: median / mean");
        for (i, name) in EXEC_SEGMENTS.iter().enumerate().filter(|(_, n)| !n.is_empty()) {
            println!("{name:<26} {}", median_mean(self.phases.iter().map(|p| p[i]).collect()));
        }
        println!("{:<26} {}", "total", median_mean(self.phases.iter().map(|p| p.iter().sum()).collect()));
        println!("(traced runs with every phase: {})", self.phases.len());
    }
}

/// "median / mean" in ms, or "-" for none.
fn median_mean(values: Vec<Duration>) -> String {
    if values.is_empty() {
        return format!("{:>17}", "-");
    }
    let mean = values.iter().map(|d| ms(*d)).sum::<f64>() / values.len() as f64;
    format!(" {:>8.2} / {:>6.2}", ms(stats(&values).0), mean)
}

/// `count` detached containers started at once, then removed at once.
struct Concurrent {
    count: usize,
    all_running: Duration,
    failures: Vec<String>,
    running: usize,
    removed_in: Duration,
    removal_failures: Vec<String>,
}

fn concurrent(env: &ctr_tests::Env, count: usize) -> Result<Concurrent> {
    let names: Vec<String> = (0..count).map(|i| format!("{CONCURRENT_PREFIX}{i}")).collect();
    let begun = Instant::now();
    let started: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                s.spawn(move || {
                    let out = env.ctr().args(["run", "-d", "--name", name, IMAGE, "sleep", "1000"]).output();
                    if out.success() {
                        Ok(())
                    } else {
                        Err(format!("{name}: {} {}", out.status, out.stderr.trim()))
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("panicked".to_owned()))).collect()
    });
    let all_running = begun.elapsed();
    // `ctr ps` lists running containers only.
    let ps = env.ctr().args(["ps", "--format", "json"]).output();
    let running = ps
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|c| c["Names"].as_str().is_some_and(|n| n.starts_with(CONCURRENT_PREFIX)))
        .count();
    let begun = Instant::now();
    let removed: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                s.spawn(move || {
                    let out = env.ctr().args(["rm", "-f", name]).output();
                    // A container that never started has nothing to remove.
                    if out.success() || out.stderr.contains("no such container") {
                        Ok(())
                    } else {
                        Err(format!("{name}: {} {}", out.status, out.stderr.trim()))
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("panicked".to_owned()))).collect()
    });
    Ok(Concurrent {
        count,
        all_running,
        failures: started.into_iter().filter_map(Result::err).collect(),
        running,
        removed_in: begun.elapsed(),
        removal_failures: removed.into_iter().filter_map(Result::err).collect(),
    })
}

impl Concurrent {
    fn print(&self) {
        println!("\n{} detached containers (`ctr run -d`, default bridge) started at once", self.count);
        println!(
            "all `ctr run -d` returned after {:.0} ms; {} failed; `ctr ps` shows {} running",
            ms(self.all_running),
            self.failures.len(),
            self.running
        );
        for f in self.failures.iter().take(5) {
            println!("  failure: {f}");
        }
        println!(
            "all removed at once (`ctr rm -f`) after {:.0} ms; {} failed",
            ms(self.removed_in),
            self.removal_failures.len()
        );
        for f in self.removal_failures.iter().take(5) {
            println!("  failure: {f}");
        }
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "MET"
    } else {
        "MISSED"
    }
}

fn print_goals(starts: Option<&Starts>, exec: Option<&Exec>, concurrent: Option<&Concurrent>) {
    println!("\ngoals (issue 13), ratios of medians from the same rounds:");
    if let Some(s) = starts {
        let crun = ms(s.median(Variant::Crun));
        for (v, goal, what) in [
            (Variant::CtrNone, 1.0, "none: ctr/crun"),
            (Variant::CtrBridge, 2.0, "bridge: ctr/crun (no network)"),
            (Variant::CtrPort, 2.0, "bridge -p: ctr/crun (no network)"),
        ] {
            let ratio = ms(s.median(v)) / crun;
            println!("{what:<36} = {ratio:.2}x (goal <= {goal:.1}x) {}", verdict(ratio <= goal));
        }
    }
    if let Some(e) = exec {
        let ratio = e.ratio();
        println!("{:<36} = {ratio:.2}x (goal <= 1.0x) {}", "exec: ctr exec/crun exec", verdict(ratio <= 1.0));
    }
    if let Some(c) = concurrent {
        let ok = c.failures.is_empty() && c.running == c.count && c.removal_failures.is_empty();
        println!(
            "{:<36} = {} of {} running after {:.0} ms, {} failures (goal: none) {}",
            format!("concurrent: {} detached", c.count),
            c.running,
            c.count,
            ms(c.all_running),
            c.failures.len() + c.removal_failures.len(),
            verdict(ok)
        );
    }
}

/// The hidden `xtask bench crun-inner`: in a private mount namespace
/// without the hybrid host's cgroup-v2 mount, serves the requests of
/// [`CrunServer`] until stdin closes, then removes its exec container.
pub fn crun_inner(bundle: &Path) -> Result<()> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).context("cannot unshare the mount namespace")?;
    // Private first, so the unmount below does not reach the host.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("cannot make / private")?;
    let unified = Path::new("/sys/fs/cgroup/unified");
    if unified.exists() {
        umount2(unified, MntFlags::empty()).context("cannot unmount /sys/fs/cgroup/unified")?;
    }
    let me = std::process::id();
    let exec_id = format!("xtask-bench-{me}-exec");
    let sleeper = bundle.with_file_name("bundle-sleep");
    let mut iteration = 0;
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading a request")?;
        iteration += 1;
        let answer = match line.as_str() {
            "run" => {
                let id = format!("xtask-bench-{me}-{iteration}");
                let result = crun(&["--cgroup-manager=cgroupfs", "run", "--bundle", path(bundle)?, &id]);
                // `crun run` removes the container when it exits; this is for a failed run.
                if result.is_err() {
                    let _ = crun(&["delete", "-f", &id]);
                }
                result
            }
            "exec-start" => sleeping_bundle(bundle, &sleeper).and_then(|()| {
                crun(&["--cgroup-manager=cgroupfs", "run", "-d", "--bundle", path(&sleeper)?, &exec_id])
            }),
            "exec" => crun(&["exec", &exec_id, "/bin/true"]),
            other => Err(anyhow!("unknown request {other:?}")),
        };
        let mut out = stdout.lock();
        match answer {
            Ok(d) => writeln!(out, "ok {:.3}", ms(d))?,
            Err(e) => writeln!(out, "err {}", format!("{e:#}").replace('\n', " "))?,
        }
        out.flush()?;
    }
    let _ = crun(&["delete", "-f", &exec_id]);
    Ok(())
}

fn path(p: &Path) -> Result<&str> {
    p.to_str().with_context(|| format!("{} is not UTF-8", p.display()))
}

/// Runs crun with `args`, its output discarded; how long it took.
fn crun(args: &[&str]) -> Result<Duration> {
    let started = Instant::now();
    // A blocking wait (not `host::run`'s polling one): this is what we time.
    let status = Command::new("crun").args(args).stdin(Stdio::null()).stdout(Stdio::null()).status();
    let took = started.elapsed();
    match status {
        Ok(s) if s.success() => Ok(took),
        Ok(s) => Err(anyhow!("`crun {}` failed ({s})", args.join(" "))),
        Err(e) => Err(e).context("cannot run crun: is it installed?"),
    }
}

/// A second bundle beside `bundle`, on its rootfs, whose process sleeps.
fn sleeping_bundle(bundle: &Path, sleeper: &Path) -> Result<()> {
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(bundle.join("config.json"))?)?;
    let mut config = config;
    config["process"]["args"] = serde_json::json!(["sleep", "1000"]);
    config["root"]["path"] = serde_json::json!(bundle.join("rootfs"));
    std::fs::create_dir_all(sleeper)?;
    std::fs::write(sleeper.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_lines_become_spans() {
        let stderr = "ctr-timing image.resolve 0.500ms @100.500\nctr: hello\nctr-timing exec.total 10ms @110\nbad\n";
        let parsed = parse_trace(stderr);
        assert_eq!(parsed, [("image.resolve".to_owned(), 100.0, 100.5), ("exec.total".to_owned(), 100.0, 110.0)]);
    }

    #[test]
    fn segments_add_up_to_the_wall_time() {
        let line = |p: &str, start: f64, end: f64| format!("ctr-timing {p} {:.3}ms @{end:.3}\n", end - start);
        let stderr = [
            line("image.resolve", 2.0, 3.0),
            line("rootfs.prepare", 4.0, 5.0),
            line("helper.spawn", 6.0, 20.0),
            line("init.total", 22.0, 25.0),
            line("exec.total", 2.0, 26.0),
            line("finish", 30.0, 40.0),
        ]
        .concat();
        let segs = segments(&parse_trace(&stderr), 0.0, 42.0).unwrap();
        let total: Duration = segs.iter().sum();
        assert!((ms(total) - 42.0).abs() < 1e-6, "{segs:?}");
        assert!((ms(segs[5]) - 14.0).abs() < 1e-6);
        assert!((ms(segs[9]) - 4.0).abs() < 1e-6);
        // Without the after-exit phase there is no time line.
        assert!(segments(&parse_trace(&stderr.replace("finish", "other")), 0.0, 42.0).is_none());
    }
}
