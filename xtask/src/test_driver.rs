//! `cargo xtask test`: the project's whole test run, as CI runs it (root,
//! `CI=true`, no stdin). Order: packages, unit tests, then a throwaway
//! install, user and network namespace ([`TestRun`]) for the integration
//! tests, then cleanup, whatever happened. The last line it prints sums
//! cargo's `test result:` lines: `xtask test: N passed, N failed`.

use crate::setup::TestRun;
use crate::{host, interrupt, vm};
use anyhow::Result;
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};

/// Everything the tests need on the machine, installed with apt-get when missing.
pub const TEST_PACKAGES: &[&str] = &[
    "busybox-static",
    "uidmap",
    "iproute2",
    "util-linux",
    "libcap2-bin",
    "crun",
    // ctr-oci's tests drive it from podman (with conmon) and containerd.
    "podman",
    "conmon",
    "containerd",
    // The CRI test: containerd's CRI plugin driven over gRPC from Python
    // (the messages compiled by protoc), pods networked by CNI's bridge.
    "python3-grpcio",
    "python3-protobuf",
    "protobuf-compiler",
    "containernetworking-plugins",
    "tmux",
    "procps",
    "nftables",
    // Image tests: a real registry, independent OCI writers, a Debian rootfs.
    "docker-registry",
    "skopeo",
    "umoci",
    "mmdebstrap",
    "zstd",
    // xtask's own unit tests unpack an xz stream as the guest's kernel needs.
    "xz-utils",
    // ctr links libseccomp: the headers to build, the library to run.
    "libseccomp-dev",
    "libseccomp2",
    // The seccomp tests build small static programs to run in containers.
    "gcc",
    "libc6-dev",
];

/// A Debian trixie rootfs for the image tests, made once and kept: it needs
/// Debian's mirrors, which the tests' network namespace cannot reach.
const DEBIAN_ROOTFS: &str = "/var/cache/ctr-test/debian-trixie.tar";

/// Variables for the unit tests: ctr-net's root tests build their own
/// throwaway network namespaces.
pub const UNIT_TEST_ENV: &[(&str, &str)] = &[("CTR_NET_ROOT_TESTS", "1")];

/// What the integration tests need beyond [`TestRun::test_vars`], made
/// while the network is still reachable; returns their variables.
pub fn prepare_integration_extras() -> Result<Vec<(&'static str, &'static str)>> {
    ensure_debian_rootfs()?;
    Ok(vec![("CTR_TEST_DEBIAN", DEBIAN_ROOTFS)])
}

fn ensure_debian_rootfs() -> Result<()> {
    let done = std::path::Path::new(DEBIAN_ROOTFS);
    if done.exists() {
        return Ok(());
    }
    let partial = done.with_extension("partial.tar");
    std::fs::create_dir_all(done.parent().expect("an absolute path"))?;
    host::run(Command::new("mmdebstrap").args(["--variant=minbase", "--quiet", "trixie"]).arg(&partial))?;
    std::fs::rename(&partial, done)?;
    Ok(())
}

/// `cargo xtask test [--legs all|host|vm|systemd] [-- EXTRA]`.
/// Which legs of the test run to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Legs {
    /// This host, then the pure cgroup-v2 guest, then the systemd guest
    /// (what CI runs).
    All,
    Host,
    Vm,
    /// The guest with systemd as PID 1: ctr-oci's systemd cgroup driver.
    Systemd,
}

pub fn run(legs: Legs, extra: &[String]) -> Result<ExitCode> {
    host::require_root("test")?;
    interrupt::install()?;
    let tally = Tally::default();
    let result = match legs {
        Legs::Host => run_on_host(&tally, extra),
        Legs::Vm => vm::run_tests(&tally, extra),
        Legs::Systemd => vm::run_systemd_tests(&tally, extra),
        Legs::All => run_on_host(&tally, extra)
            .and_then(|()| vm::run_tests(&tally, extra))
            .and_then(|()| vm::run_systemd_tests(&tally, extra)),
    };
    if let Err(e) = &result {
        eprintln!("xtask test: error: {e:#}");
    }
    let failed_steps = tally.failed_steps.lock().map(|s| s.clone()).unwrap_or_default();
    if !failed_steps.is_empty() {
        eprintln!("xtask test: failed: {}", failed_steps.join(", "));
    }
    println!("{}", tally.summary());
    Ok(if result.is_ok() && failed_steps.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn run_on_host(tally: &Tally, extra: &[String]) -> Result<()> {
    host::ensure_packages(TEST_PACKAGES)?;
    // Lints first: a red lint is a red run, but the tests still run after it.
    tally.cargo_step("rustfmt", host::cargo().args(["fmt", "--all", "--check"]))?;
    tally
        .cargo_step("clippy", host::cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    tally.cargo_step(
        "unit tests",
        host::cargo()
            .args(["test", "--workspace", "--exclude", "ctr-tests", "--no-fail-fast"])
            .envs(UNIT_TEST_ENV.iter().copied()),
    )?;
    crate::fuzz::smoke(tally)?;

    let extras = prepare_integration_extras()?;
    let mut run = TestRun::setup()?;
    // Built out here: inside the namespace there is no network for cargo.
    host::run(host::cargo().args(["test", "-p", "ctr-tests", "--no-run"]))?;
    let netns = run.add_netns()?;
    run.enter_cgroup_scope()?;
    let mut cmd = integration_command(&netns, extra);
    cmd.envs(run.test_vars()).envs(extras);
    tally.cargo_step("integration tests", &mut cmd)?;
    drop(run);
    Ok(())
}

/// `cargo test` for ctr-tests inside the network namespace. `nsenter --net`
/// rather than `ip netns exec`: the latter also remounts /sys for the
/// namespace, which hides /sys/fs/cgroup from the tests and the helper.
fn integration_command(netns: &str, extra: &[String]) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/{netns}"))
        .arg("--")
        .arg(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["test", "-p", "ctr-tests", "--offline", "--no-fail-fast", "--", "--test-threads=2"])
        .args(extra)
        .current_dir(host::workspace_root());
    cmd
}

/// Passed and failed tests summed over cargo's `test result:` lines, and
/// the steps that failed.
#[derive(Default)]
pub struct Tally {
    counts: Arc<Mutex<(u64, u64)>>,
    failed_steps: Mutex<Vec<String>>,
}

impl Tally {
    /// Runs a `cargo test` (or anything printing its result lines), streaming
    /// its output and counting its results; a failure is recorded, not
    /// returned, so later steps still run. Errors only if it could not run.
    pub fn cargo_step(&self, name: &str, cmd: &mut Command) -> Result<()> {
        eprintln!("xtask test: {name}: {}", host::describe(cmd));
        let status = host::run_tee(cmd, self.line_counter())?;
        if !status.success() {
            self.fail(&format!("{name} ({status})"));
        }
        interrupt::check()
    }

    /// Counts the results of every `test result:` line it is handed.
    pub fn line_counter(&self) -> impl Fn(&str) + Send + Sync + 'static {
        let counts = Arc::clone(&self.counts);
        move |line| {
            if let Some((passed, failed)) = parse_test_result(line) {
                let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
                c.0 += passed;
                c.1 += failed;
            }
        }
    }

    pub fn fail(&self, step: &str) {
        self.failed_steps.lock().unwrap_or_else(|e| e.into_inner()).push(step.to_owned());
    }

    pub fn summary(&self) -> String {
        let (passed, failed) = *self.counts.lock().unwrap_or_else(|e| e.into_inner());
        format!("xtask-test: {passed} passed, {failed} failed")
    }
}

/// `(passed, failed)` from a libtest summary such as
/// `test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s`.
fn parse_test_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim_start().strip_prefix("test result: ")?;
    let count = |what: &str| {
        rest.split(';').find_map(|part| part.trim().strip_suffix(what)?.rsplit(' ').next()?.trim().parse::<u64>().ok())
    };
    Some((count(" passed")?, count(" failed")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libtest_summaries() {
        let ok = "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!(parse_test_result(ok), Some((12, 0)));
        let bad = "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.2s";
        assert_eq!(parse_test_result(bad), Some((3, 2)));
        assert_eq!(parse_test_result("   test result: ok. 0 passed; 0 failed; 0 ignored"), Some((0, 0)));
    }

    #[test]
    fn ignores_other_lines() {
        assert_eq!(parse_test_result("test foo ... ok"), None);
        assert_eq!(parse_test_result("xtask test: 3 passed, 0 failed"), None);
        assert_eq!(parse_test_result("test result: garbled"), None);
    }

    #[test]
    fn summary_is_the_plain_closing_line() {
        let tally = Tally::default();
        *tally.counts.lock().unwrap() = (5, 1);
        assert_eq!(tally.summary(), "xtask-test: 5 passed, 1 failed");
    }
}
