//! Shared pieces of the benchmarks, and `cargo xtask bench monitor` and
//! `bench image`; `bench start` is in [`crate::bench_start`], `bench net`
//! in [`crate::bench_net`].

use crate::setup::TestRun;
use crate::test_driver::TEST_PACKAGES;
use crate::{host, interrupt};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const IMAGE: &str = "alpine";

/// An OCI bundle: the minirootfs, and `crun spec`'s config running `args`.
pub fn make_bundle(bundle: &Path, alpine: &Path, args: &[&str]) -> Result<()> {
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs).with_context(|| format!("cannot create {}", rootfs.display()))?;
    host::run(Command::new("tar").arg("-xzf").arg(alpine).arg("-C").arg(&rootfs))?;
    host::run(Command::new("crun").arg("spec").current_dir(bundle))?;
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?)?;
    config["process"]["args"] = serde_json::json!(args);
    config["process"]["terminal"] = serde_json::json!(false);
    std::fs::write(&path, serde_json::to_vec_pretty(&config)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The harness panics on a timeout or a missing program; a benchmark should
/// still report the others, so a panic becomes this row's error.
pub fn caught<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| bail!("panicked (see the message above)"))
}

/// (median, 90th percentile) by nearest rank.
pub fn stats(timings: &[Duration]) -> (Duration, Duration) {
    let mut sorted = timings.to_vec();
    sorted.sort();
    let rank = |p: usize| sorted[((p * sorted.len()).div_ceil(100)).clamp(1, sorted.len()) - 1];
    (rank(50), rank(90))
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p90_by_nearest_rank() {
        let t: Vec<Duration> = (1..=10).rev().map(Duration::from_millis).collect();
        assert_eq!(stats(&t), (Duration::from_millis(5), Duration::from_millis(9)));
        assert_eq!(stats(&[Duration::from_millis(7)]), (Duration::from_millis(7), Duration::from_millis(7)));
    }
}

/// `cargo xtask bench monitor`: the resident memory of the per-container
/// monitor (`ctr run -d`), read from /proc/PID/status (VmRSS) and
/// /proc/PID/smaps_rollup (Pss) with `count` containers running.
pub fn monitor(count: usize) -> Result<()> {
    host::require_root("bench monitor")?;
    interrupt::install()?;
    host::ensure_packages(TEST_PACKAGES)?;
    let mut run = TestRun::setup()?;
    run.enter_cgroup_scope()?;
    let env = &run.env;
    env.ensure_alpine_image(IMAGE);
    let names: Vec<String> = (0..count).map(|i| format!("bench-monitor-{i}")).collect();
    let result = (|| -> Result<(Vec<u64>, Vec<u64>)> {
        for name in &names {
            let out =
                env.ctr().args(["run", "-d", "--network", "none", "--name", name, IMAGE, "sleep", "600"]).output();
            if !out.success() {
                bail!("`ctr run -d` failed ({}): {}", out.status, out.stderr.trim());
            }
        }
        // Let each monitor settle into its steady state.
        std::thread::sleep(Duration::from_secs(2));
        let (mut rss, mut pss) = (Vec::new(), Vec::new());
        for name in &names {
            let pid = env.ctr().args(["inspect", "--format", "{{.State.MonitorPid}}", name]).output().stdout;
            let pid = pid.trim();
            let kb = |file: &str, key: &str| -> Option<u64> {
                let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
                text.lines().find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
            };
            rss.push(
                kb("status", "VmRSS:").with_context(|| format!("no VmRSS for the monitor of {name} (pid {pid:?})"))?,
            );
            pss.push(kb("smaps_rollup", "Pss:").unwrap_or(0));
        }
        Ok((rss, pss))
    })();
    for name in &names {
        let _ = env.ctr().args(["rm", "-f", name]).output();
    }
    let (rss, pss) = result?;
    let avg = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
    println!("monitor memory with {count} containers running (release build)");
    println!(
        "VmRSS: average {:.0} kB, max {} kB (target: under 2048 kB)",
        avg(&rss),
        rss.iter().max().copied().unwrap_or(0)
    );
    println!("Pss:   average {:.0} kB, max {} kB", avg(&pss), pss.iter().max().copied().unwrap_or(0));
    drop(run);
    Ok(())
}

/// `cargo xtask bench image`: the image store's unpack benchmark, which
/// lives beside the code it measures (ctr-cli/src/image/bench.rs); then a
/// cached `ctr run`, phase by phase, as the test user through the installed
/// helper ([`cached_run`]).
pub fn image(mb: u32) -> Result<()> {
    host::require_root("bench image")?;
    interrupt::install()?;
    host::ensure_packages(&["gzip", "zstd", "umoci"])?;
    host::ensure_packages(TEST_PACKAGES)?;
    host::run(
        host::cargo()
            .args(["test", "--release", "-p", "ctr-cli", "image::bench", "--", "--ignored", "--nocapture"])
            .env("CTR_BENCH_MB", mb.to_string()),
    )?;
    let mut run = TestRun::setup()?;
    run.enter_cgroup_scope()?;
    let phases = cached_run(&run, CACHED_RUNS)?;
    print_phases(&phases, CACHED_RUNS);
    drop(run);
    Ok(())
}

const CACHED_RUNS: usize = 30;
/// Issue 4's bar for setting up the rootfs of a cached image.
const CACHED_SETUP_BAR: Duration = Duration::from_millis(5);
const CACHED_SETUP: &str = "cached rootfs set-up";
const WALL: &str = "ctr run wall";
/// The phases `CTR_TRACE_TIMINGS=1 ctr run` prints (ctr-cli/src/timing.rs),
/// as the table names them; the first four make up the cached set-up.
const PHASES: [(&str, &str); 6] = [
    ("image.resolve", "image.resolve (ctr)"),
    ("rootfs.prepare", "rootfs.prepare (ctr dirs)"),
    ("rootfs.mount", "rootfs.mount (init overlay)"),
    ("rootfs.pivot", "rootfs.pivot (init)"),
    ("init.total", "init.total (spec to exec)"),
    ("exec.total", "exec.total (ctr to exec)"),
];

/// A second `ctr run --rm --network none alpine /bin/true` of an imported
/// image, `runs` times after an untimed warm-up, with
/// `CTR_TRACE_TIMINGS=1`: each phase's durations, the cached set-up (the
/// sum of the first four phases, per run) and each run's wall time.
fn cached_run(run: &TestRun, runs: usize) -> Result<Vec<(&'static str, Vec<Duration>)>> {
    let env = &run.env;
    let import = env.ctr().args(["image".as_ref(), "import".as_ref(), env.alpine.as_os_str(), IMAGE.as_ref()]).output();
    if !import.success() {
        bail!("`ctr image import` failed ({}): {}", import.status, import.stderr.trim());
    }
    let ctr_run = |args: &[&str], trace: bool| {
        let cmd = env.ctr().args(["run", "--rm", "--network", "none", IMAGE]).args(args);
        let out = if trace { cmd.env("CTR_TRACE_TIMINGS", "1") } else { cmd }.output();
        if !out.success() {
            bail!("`ctr run` failed ({}): {}", out.status, out.stderr.trim());
        }
        Ok(out)
    };
    // The warm-up, untraced: nothing may be printed then.
    let out = ctr_run(&["/bin/true"], false)?;
    if out.stderr.contains("ctr-timing") {
        bail!("`ctr run` printed timings without CTR_TRACE_TIMINGS: {}", out.stderr.trim());
    }
    // Traced, the container's environment must not carry the request.
    let out = ctr_run(&["env"], true)?;
    if out.stdout.contains("trace-timings") || out.stdout.contains("CTR_TRACE_TIMINGS") {
        bail!("the timing request leaked into the container's environment:\n{}", out.stdout.trim());
    }
    let mut table: Vec<(&'static str, Vec<Duration>)> =
        PHASES.iter().map(|(_, label)| *label).chain([CACHED_SETUP, WALL]).map(|l| (l, Vec::new())).collect();
    for i in 0..runs {
        interrupt::check()?;
        let started = Instant::now();
        let out = ctr_run(&["/bin/true"], true).with_context(|| format!("run {} of {runs}", i + 1))?;
        let wall = started.elapsed();
        let timings = parse_timings(&out.stderr);
        for (n, (phase, _)) in PHASES.iter().enumerate() {
            let d = timings.iter().find(|(p, _)| p == phase).map(|(_, d)| *d);
            table[n].1.push(d.with_context(|| format!("run {}: no `ctr-timing {phase}` in:\n{}", i + 1, out.stderr))?);
        }
        let setup = table[..4].iter().map(|(_, t)| t[i]).sum();
        table[PHASES.len()].1.push(setup);
        table[PHASES.len() + 1].1.push(wall);
    }
    Ok(table)
}

/// The `ctr-timing PHASE 0.412ms` lines of `stderr`.
fn parse_timings(stderr: &str) -> Vec<(String, Duration)> {
    stderr
        .lines()
        .filter_map(|l| {
            let mut words = l.strip_prefix("ctr-timing ")?.split(' ');
            let (phase, value) = (words.next()?, words.next()?);
            let ms: f64 = value.strip_suffix("ms")?.parse().ok()?;
            Some((phase.to_owned(), Duration::from_secs_f64(ms / 1000.0)))
        })
        .collect()
}

fn print_phases(table: &[(&str, Vec<Duration>)], runs: usize) {
    println!("\ncached `ctr run --rm --network none {IMAGE} /bin/true` (test user, setuid helper), {runs} runs");
    println!("{:<28} {:>10} {:>10}", "phase", "median ms", "p90 ms");
    for (label, timings) in table {
        let (median, p90) = stats(timings);
        let bar = if *label == CACHED_SETUP {
            format!(
                "  {:.2}x of the {} ms bar",
                median.as_secs_f64() / CACHED_SETUP_BAR.as_secs_f64(),
                CACHED_SETUP_BAR.as_millis()
            )
        } else {
            String::new()
        };
        println!("{label:<28} {:>10.3} {:>10.3}{bar}", ms(median), ms(p90));
    }
}

#[cfg(test)]
mod image_tests {
    use super::*;

    #[test]
    fn timing_lines_are_parsed_and_other_lines_ignored() {
        let stderr =
            "ctr-timing rootfs.mount 0.412ms\nctr: something\nctr-timing exec.total 12.5ms\nctr-timing bad x\n";
        let parsed = parse_timings(stderr);
        assert_eq!(
            parsed,
            [
                ("rootfs.mount".to_owned(), Duration::from_micros(412)),
                ("exec.total".to_owned(), Duration::from_micros(12500))
            ]
        );
    }
}
