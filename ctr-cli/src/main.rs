//! `ctr`: a daemonless container engine. This binary is the command line
//! only: [`args`] parses it into the engine's requests, [`commands`] runs
//! each verb through the engine (the `ctr_cli` library) and [`output`]
//! prints what comes back. It is unprivileged; the only privileged steps
//! (namespace creation, cgroups) are done by `ctr-setuid-helper`, which the
//! engine starts for each such step.

mod args;
mod commands;
mod output;

use clap::Parser;
use std::process::ExitCode;

/// Exit status for errors of ctr itself, as docker uses it.
const EXIT_ENGINE_ERROR: u8 = 125;

/// Help and version go to stdout with status 0; any other usage error
/// (an unknown flag, a missing value) is docker's 125.
fn usage_error(e: clap::Error) -> ! {
    let _ = e.print();
    std::process::exit(if e.use_stderr() { EXIT_ENGINE_ERROR.into() } else { 0 })
}

fn main() -> ExitCode {
    // Image layer work in a user namespace (image::userns): first, while
    // the process is single-threaded, and kept off the parser and --help.
    if std::env::args_os().nth(1).is_some_and(|a| a == ctr_cli::image::userns::SUBCOMMAND) {
        ctr_cli::image::userns::child_main();
    }
    // `ctr cp`'s worker in a container's user namespace (container::copy):
    // first too, since setns into a user namespace needs a single thread.
    if std::env::args_os().nth(1).is_some_and(|a| a == ctr_cli::container::copy::SUBCOMMAND) {
        ctr_cli::container::copy::child_main();
    }
    // A detached container's monitor: kept off the argument parser, small.
    if std::env::args_os().nth(1).is_some_and(|a| a == "monitor") && std::env::args_os().count() == 3 {
        ctr_cli::process::monitor::main();
    }
    let cli = args::Cli::try_parse().unwrap_or_else(|e| usage_error(e));
    match commands::dispatch(cli.command) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(EXIT_ENGINE_ERROR)),
        Err(e) => {
            eprintln!("ctr: {e:#}");
            ExitCode::from(EXIT_ENGINE_ERROR)
        }
    }
}
