//! `cargo xtask`: the project's own tooling, in Rust so it runs wherever
//! cargo does. `install` puts ctr and its setuid helper under a prefix,
//! `test` is the whole test run (what CI runs), `bench start` times
//! container start and exec against crun (issue 13's goals), `bench net` measures
//! the bridge network's throughput and start cost, `fuzz` runs the
//! libFuzzer targets on the helper's frame decoder and request validation,
//! `helper-size` counts the code that runs as root through the helper.

mod bench;
mod bench_net;
mod bench_start;
mod busybox_image;
mod cgroup_scope;
mod cleanup;
mod demo;
mod fuzz;
mod guest;
mod helper_size;
mod host;
mod install;
mod interrupt;
mod setup;
mod subid;
mod test_driver;
mod test_image;
mod vm;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Install, test and benchmark ctr")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build in release mode and install ctr, the setuid helper, its config
    /// and the built-in busybox image (as root).
    Install {
        #[arg(long, default_value = "/usr/local")]
        prefix: PathBuf,
        #[arg(long, value_enum, default_value_t = install::Mode::Setuid)]
        mode: install::Mode,
        /// Remove what install put there (keeps an edited config and /etc/subuid).
        #[arg(long)]
        uninstall: bool,
    },
    /// Run every test: unit tests, then the integration tests against a
    /// throwaway install, as an unprivileged user, in a network namespace (as root).
    /// Needs nothing beside the clone: packages come from apt, the base image is
    /// Alpine's minirootfs from ../shared/images if there, else a busybox rootfs
    /// made from Debian's busybox-static.
    Test {
        /// `all`: this host, then the isolation, limits, cleanup and helper suites
        /// in a pure cgroup-v2 QEMU guest (Debian's kernel, kept in
        /// ~/.cache/ctr-xtask/vm); or only one.
        #[arg(long, value_enum, default_value_t = test_driver::Legs::All)]
        legs: test_driver::Legs,
        /// Passed to the integration test binaries, e.g. a test name filter.
        #[arg(last = true)]
        extra: Vec<String>,
    },
    /// Show the assignment's three core functions at work, commands and
    /// outputs side by side (as root; runs a throwaway install).
    Demo,
    /// Fuzz the helper's frame decoder and request validation with libFuzzer
    /// (fuzz/; corpus in fuzz/corpus, crashes in fuzz/artifacts).
    Fuzz {
        /// Only this target (repeatable): frame, validate. Default: both, in turn.
        #[arg(long = "target")]
        targets: Vec<String>,
        /// Stop each target after this many executions.
        #[arg(long, conflicts_with = "seconds")]
        runs: Option<u64>,
        /// Stop each target after this many seconds (default 300).
        #[arg(long)]
        seconds: Option<u64>,
        /// Passed to libFuzzer, e.g. `-max_len=70000` or `-jobs=2`.
        #[arg(last = true)]
        extra: Vec<String>,
    },
    /// Count the code that runs as root through the setuid helper (non-blank,
    /// non-comment lines outside tests) at issue 10's filing commit and now.
    HelperSize {
        /// A commit to count instead of the work tree.
        #[arg(long)]
        rev: Option<String>,
    },
    /// Benchmarks (as root).
    Bench {
        #[command(subcommand)]
        bench: BenchCmd,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Time `ctr run --rm` of /bin/true (no network, bridge, published
    /// port) against `crun run` and a bare `unshare`, in alternating rounds,
    /// with a phase breakdown; `ctr exec` against `crun exec`; many
    /// detached containers started at once; and `ctr-oci run` against
    /// `crun run` of the same bundle, as root.
    Start {
        /// Rounds of the start and of the exec benchmark.
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// Detached containers started at once (0 skips this part).
        #[arg(long, default_value_t = 50)]
        concurrent: usize,
    },
    /// Internal: the start benchmark, inside its network namespace.
    #[command(hide = true)]
    StartInner {
        #[arg(long)]
        runs: usize,
        #[arg(long)]
        concurrent: usize,
        #[arg(long)]
        bundle: PathBuf,
    },
    /// Unpacking a large layer (gzip, zstd, three layers) against tar and
    /// umoci, then a cached `ctr run` phase by phase (rootfs set-up against
    /// its 5 ms bar).
    Image {
        /// Size of the generated layer in MB.
        #[arg(long, default_value_t = 300)]
        mb: u32,
    },
    /// Resident memory of the per-container monitor of `ctr run -d`.
    Monitor {
        #[arg(long, default_value_t = 10)]
        containers: usize,
    },
    /// TCP throughput between two containers on the bridge against a bare
    /// veth pair (iperf3), and the start time `--network bridge` adds.
    Net {
        /// Timed `ctr run --rm` starts per network mode.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// iperf3 runs per path.
        #[arg(long, default_value_t = 3)]
        iperf_runs: usize,
        /// Length of each iperf3 run in seconds.
        #[arg(long, default_value_t = 5)]
        seconds: u32,
    },
    /// Internal: the network benchmark, inside its network namespace.
    #[command(hide = true)]
    NetInner {
        #[arg(long)]
        runs: usize,
        #[arg(long)]
        iperf_runs: usize,
        #[arg(long)]
        seconds: u32,
        #[arg(long)]
        bare_server_netns: String,
        #[arg(long)]
        bare_client_netns: String,
    },
    /// Internal: runs crun on request, in a mount namespace without the cgroup-v2 mount.
    #[command(hide = true)]
    CrunInner {
        #[arg(long)]
        bundle: PathBuf,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Cmd::Install { prefix, mode, uninstall } => install::run(&prefix, mode, uninstall).map(|()| ExitCode::SUCCESS),
        Cmd::Test { legs, extra } => test_driver::run(legs, &extra),
        Cmd::Demo => demo::run().map(|()| ExitCode::SUCCESS),
        Cmd::Fuzz { targets, runs, seconds, extra } => {
            let budget = runs.map_or(fuzz::Budget::Seconds(seconds.unwrap_or(300)), fuzz::Budget::Runs);
            fuzz::run(&targets, budget, &extra)
        }
        Cmd::HelperSize { rev } => helper_size::run(rev.as_deref()).map(|()| ExitCode::SUCCESS),
        Cmd::Bench { bench: BenchCmd::Start { runs, concurrent } } => {
            bench_start::start(bench_start::StartArgs { runs, concurrent }).map(|()| ExitCode::SUCCESS)
        }
        Cmd::Bench { bench: BenchCmd::StartInner { runs, concurrent, bundle } } => {
            bench_start::start_inner(bench_start::StartArgs { runs, concurrent }, &bundle).map(|()| ExitCode::SUCCESS)
        }
        Cmd::Bench { bench: BenchCmd::Image { mb } } => bench::image(mb).map(|()| ExitCode::SUCCESS),
        Cmd::Bench { bench: BenchCmd::Monitor { containers } } => {
            bench::monitor(containers).map(|()| ExitCode::SUCCESS)
        }
        Cmd::Bench { bench: BenchCmd::Net { runs, iperf_runs, seconds } } => {
            bench_net::net(bench_net::NetBenchArgs { start_runs: runs, iperf_runs, seconds })
                .map(|()| ExitCode::SUCCESS)
        }
        Cmd::Bench {
            bench: BenchCmd::NetInner { runs, iperf_runs, seconds, bare_server_netns, bare_client_netns },
        } => {
            let args = bench_net::NetBenchArgs { start_runs: runs, iperf_runs, seconds };
            bench_net::net_inner(args, &bare_server_netns, &bare_client_netns).map(|()| ExitCode::SUCCESS)
        }
        Cmd::Bench { bench: BenchCmd::CrunInner { bundle } } => {
            bench_start::crun_inner(&bundle).map(|()| ExitCode::SUCCESS)
        }
    };
    // `{:#}`: the whole chain of context on one line, without a backtrace.
    result.unwrap_or_else(|e| {
        eprintln!("xtask: error: {e:#}");
        ExitCode::FAILURE
    })
}
