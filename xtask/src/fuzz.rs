//! `cargo xtask fuzz`: builds the libFuzzer targets in `fuzz/` and runs
//! them; `cargo xtask test` runs a short smoke of each ([`smoke`]).
//!
//! No cargo-fuzz: installing it costs CI a minute or more, and its default
//! AddressSanitizer needs nightly. The targets are built with plain cargo
//! and the sanitizer-coverage flags cargo-fuzz passes (all stable), for the
//! host triple named explicitly so build scripts and proc macros stay
//! uninstrumented. ASan would add little: ctr-core forbids `unsafe`, and the
//! targets look for panics, overflows, memory growth and broken invariants.
//!
//! Each run first has the target write its seeds (generated from real
//! requests, see fuzz/src/seeds.rs) into `fuzz/corpus/TARGET`, which grows
//! across runs, and replays `fuzz/regressions/TARGET` (inputs that once
//! crashed). A crash leaves its input in `fuzz/artifacts/TARGET/` and fails
//! the run. libFuzzer's chatter is filtered down to its periodic status
//! lines, anything after a crash, and a one-line summary per target.

use crate::host;
use crate::test_driver::Tally;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};

pub const TARGETS: &[&str] = &["frame", "validate"];

/// Per target in `cargo xtask test`: with the build (about a minute on a
/// cold two-core machine) this keeps the smoke near two minutes.
const SMOKE_SECONDS: u64 = 20;

/// cargo-fuzz's instrumentation, plus checks a release build leaves out.
const RUSTFLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "--cfg=fuzzing",
    "-Cdebug-assertions",
    "-Coverflow-checks",
    "-Cforce-frame-pointers=yes",
];

#[derive(Debug, Clone, Copy)]
pub enum Budget {
    Runs(u64),
    Seconds(u64),
}

/// What libFuzzer reported for one target.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    pub execs: u64,
    pub seconds: u64,
    pub execs_per_second: u64,
    pub coverage: u64,
    pub features: u64,
    pub corpus: String,
    pub peak_rss_mb: u64,
    pub crash_input: Option<String>,
}

impl Outcome {
    /// Reads one line of libFuzzer's output into the tally.
    fn read(&mut self, line: &str) {
        let word_after = |key: &str| line.split(key).nth(1)?.split_whitespace().next();
        let number_after = |key: &str| word_after(key)?.parse::<u64>().ok();
        if line.starts_with('#') {
            if let (Some(cov), Some(ft)) = (number_after("cov: "), number_after("ft: ")) {
                (self.coverage, self.features) = (cov, ft);
            }
            if let Some(corp) = word_after("corp: ") {
                self.corpus = corp.to_owned();
            }
        } else if let Some(rest) = line.strip_prefix("Done ") {
            let mut words = rest.split_whitespace();
            self.execs = words.next().and_then(|n| n.parse().ok()).unwrap_or(self.execs);
            self.seconds = words.nth(2).and_then(|n| n.parse().ok()).unwrap_or(self.seconds);
        } else if let Some(n) = number_after("stat::number_of_executed_units:") {
            self.execs = n;
        } else if let Some(n) = number_after("stat::average_exec_per_sec:") {
            self.execs_per_second = n;
        } else if let Some(n) = number_after("stat::peak_rss_mb:") {
            self.peak_rss_mb = n;
        } else if let Some(path) = line.split("Test unit written to ").nth(1) {
            self.crash_input = Some(path.trim().to_owned());
        }
    }

    pub fn summary(&self, target: &str) -> String {
        format!(
            "{target}: {} execs in {} s ({} execs/s), cov {} ft {}, corpus {}, peak rss {} MB{}",
            self.execs,
            self.seconds,
            self.execs_per_second,
            self.coverage,
            self.features,
            self.corpus,
            self.peak_rss_mb,
            self.crash_input.as_deref().map(|p| format!(", CRASH: {p}")).unwrap_or_default()
        )
    }
}

/// Whether a line of libFuzzer's output is worth showing: status lines
/// only at startup, at its power-of-two pulses and at the end; not every
/// new corpus entry, nor the dictionary it recommends, nor its complaint
/// that no sanitizer runtime is linked (there is none by choice).
fn worth_showing(line: &str) -> bool {
    if line.starts_with('#') {
        return ["INITED", "pulse", "DONE"].iter().any(|w| line.contains(w));
    }
    !(line.starts_with('"')
        || line.starts_with("###### ")
        || line.trim_start().starts_with("NEW_FUNC")
        || line.contains("Failed to find function \"__sanitizer"))
}

fn fuzz_dir() -> PathBuf {
    host::workspace_root().join("fuzz")
}

fn host_triple() -> Result<String> {
    let info = host::stdout_of(Command::new("rustc").arg("-vV"))?;
    info.lines().find_map(|l| l.strip_prefix("host: ")).map(str::to_owned).context("`rustc -vV` names no host triple")
}

/// Builds every target; returns the directory holding their binaries.
pub fn build() -> Result<PathBuf> {
    // libfuzzer-sys compiles libFuzzer itself, which is C++.
    if Command::new("c++").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        host::ensure_packages(&["g++"])?;
    }
    let triple = host_triple()?;
    let target_dir = fuzz_dir().join("target");
    let mut cmd = host::cargo();
    cmd.args(["build", "--release", "--bins", "--target", &triple, "--manifest-path"])
        .arg(fuzz_dir().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", RUSTFLAGS.join(" "))
        // Would take precedence over RUSTFLAGS, if cargo xtask was given some.
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    host::run(&mut cmd).context("building the fuzz targets failed")?;
    Ok(target_dir.join(triple).join("release"))
}

/// Runs one target within `budget`, streaming filtered output.
pub fn fuzz_one(bin_dir: &Path, target: &str, budget: Budget, extra: &[String]) -> Result<Outcome> {
    let bin = bin_dir.join(target);
    let corpus = fuzz_dir().join("corpus").join(target);
    let regressions = fuzz_dir().join("regressions").join(target);
    let artifacts = fuzz_dir().join("artifacts").join(target);
    std::fs::create_dir_all(&regressions).with_context(|| format!("cannot create {}", regressions.display()))?;
    std::fs::create_dir_all(&artifacts).with_context(|| format!("cannot create {}", artifacts.display()))?;
    host::stdout_of(Command::new(&bin).env("CTR_FUZZ_WRITE_SEEDS", &corpus))
        .context("writing the seed corpus failed")?;

    let mut cmd = Command::new(&bin);
    cmd.arg(&corpus).arg(&regressions).arg(format!("-artifact_prefix={}/", artifacts.display())).args([
        "-print_final_stats=1",
        "-timeout=10",
        "-rss_limit_mb=1024",
    ]);
    match budget {
        Budget::Runs(n) => cmd.arg(format!("-runs={n}")),
        Budget::Seconds(s) => cmd.arg(format!("-max_total_time={s}")),
    };
    cmd.args(extra).stdout(Stdio::piped()).stderr(Stdio::piped());
    let what = host::describe(&cmd);
    eprintln!("xtask fuzz: {what}");
    let mut child = host::spawn(&mut cmd)?;
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let readers = [
        echo_thread(child.stdout.take().expect("piped"), Arc::clone(&outcome)),
        echo_thread(child.stderr.take().expect("piped"), Arc::clone(&outcome)),
    ];
    let status = host::wait(&mut child, &what)?;
    for reader in readers {
        let _ = reader.join();
    }
    let outcome = outcome.lock().unwrap_or_else(|e| e.into_inner()).clone();
    eprintln!("xtask fuzz: {}", outcome.summary(target));
    if !status.success() {
        let input = outcome.crash_input.as_deref().unwrap_or("(no input saved)");
        bail!("fuzz target {target} failed ({status}) on {input}: reproduce with `{} {input}`", bin.display());
    }
    Ok(outcome)
}

/// Shows the lines [`worth_showing`], and every line once the target has
/// crashed (its panic message and stack), while reading the statistics.
fn echo_thread(pipe: impl std::io::Read + Send + 'static, outcome: Arc<Mutex<Outcome>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut crashed = false;
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            crashed |= line.contains("panicked at") || line.contains("ERROR: libFuzzer");
            if crashed || worth_showing(&line) {
                eprintln!("{line}");
            }
            outcome.lock().unwrap_or_else(|e| e.into_inner()).read(&line);
        }
    })
}

/// `cargo xtask fuzz [--target T] [--runs N | --seconds S] [-- ARGS]`.
pub fn run(targets: &[String], budget: Budget, extra: &[String]) -> Result<ExitCode> {
    let unknown: Vec<&String> = targets.iter().filter(|t| !TARGETS.contains(&t.as_str())).collect();
    if !unknown.is_empty() {
        bail!("no fuzz target {unknown:?}: the targets are {}", TARGETS.join(", "));
    }
    let chosen: Vec<&str> =
        if targets.is_empty() { TARGETS.to_vec() } else { targets.iter().map(String::as_str).collect() };
    let bin_dir = build()?;
    let mut summaries = Vec::new();
    for target in chosen {
        let outcome = fuzz_one(&bin_dir, target, budget, extra)?;
        summaries.push(outcome.summary(target));
    }
    for s in summaries {
        println!("xtask fuzz: {s}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The step in `cargo xtask test`: every target for [`SMOKE_SECONDS`]. A
/// crash or a failed build is a failed step. It prints no `test result:`
/// line, so the driver's pass/fail count is the tests' alone.
pub fn smoke(tally: &Tally) -> Result<()> {
    eprintln!("xtask test: fuzz smoke: {SMOKE_SECONDS} s per target ({})", TARGETS.join(", "));
    let result = build().and_then(|bin_dir| {
        TARGETS.iter().try_for_each(|t| fuzz_one(&bin_dir, t, Budget::Seconds(SMOKE_SECONDS), &[]).map(drop))
    });
    crate::interrupt::check()?;
    if let Err(e) = result {
        eprintln!("xtask test: fuzz smoke: {e:#}");
        tally.fail("fuzz smoke");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_statistics() {
        let mut o = Outcome::default();
        for line in [
            "#445\tINITED cov: 1099 ft: 2417 corp: 333/45Kb exec/s: 0 rss: 28Mb",
            "#325606\tDONE   cov: 1101 ft: 2418 corp: 334/45Kb lim: 3348 exec/s: 29600 rss: 30Mb",
            "Done 325606 runs in 11 second(s)",
            "stat::number_of_executed_units: 325606",
            "stat::average_exec_per_sec:     29600",
            "stat::peak_rss_mb:              30",
        ] {
            o.read(line);
        }
        let want = Outcome {
            execs: 325_606,
            seconds: 11,
            execs_per_second: 29_600,
            coverage: 1101,
            features: 2418,
            corpus: "334/45Kb".into(),
            peak_rss_mb: 30,
            crash_input: None,
        };
        assert_eq!(o, want);
        o.read("artifact_prefix='fuzz/artifacts/frame/'; Test unit written to fuzz/artifacts/frame/crash-af0c");
        assert_eq!(o.crash_input.as_deref(), Some("fuzz/artifacts/frame/crash-af0c"));
        assert!(o.summary("frame").contains("CRASH: fuzz/artifacts/frame/crash-af0c"));
    }

    #[test]
    fn filters_chatter_but_not_errors() {
        assert!(worth_showing("#65536\tpulse  cov: 1099 ft: 2417 corp: 333/45Kb"));
        assert!(!worth_showing("#686254\tNEW    cov: 1862 ft: 5663 corp: 945/107Kb"));
        assert!(!worth_showing("\"\\377\\377\" # Uses: 1950"));
        assert!(!worth_showing("\tNEW_FUNC[1/5]: 0x5559de0ba941"));
        assert!(!worth_showing("WARNING: Failed to find function \"__sanitizer_print_stack_trace\"."));
        assert!(worth_showing("==21828== ERROR: libFuzzer: deadly signal"));
        // Never a libtest summary, which the test driver would count.
        assert!(!Outcome::default().summary("frame").contains("test result"));
    }
}
