//! `ctr`: a daemonless container engine. This binary is unprivileged; the
//! only privileged steps (namespace creation, cgroups) are done by
//! `ctr-setuid-helper`, which it starts for each such step.

mod cgroup_stats;
mod container;
mod control;
mod exec;
mod fdpass;
mod foreground;
mod helper_client;
mod image;
mod image_cli;
mod info;
mod init;
mod lifecycle;
mod limits;
mod liveness;
mod lock;
mod logs;
mod monitor;
mod mount_args;
mod net_stats;
mod network;
mod network_cli;
mod paths;
mod ports;
mod process_args;
mod run;
mod seccomp;
mod spec;
mod timing;
mod tty;
mod user_config;
mod volume;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit status for errors of ctr itself, as docker uses it.
const EXIT_ENGINE_ERROR: u8 = 125;

#[derive(Parser)]
#[command(
    name = "ctr",
    version,
    about = "A daemonless container engine: real namespaces, cgroups and images, for unprivileged users.",
    long_about = "A daemonless container engine. `ctr run` starts a container in its own user, mount, pid, UTS, IPC, \
network and cgroup namespaces, through a small setuid helper that does only the privileged steps.",
    after_help = "Examples:\n  ctr run --rm busybox echo hello          run a command in the built-in busybox image\n  \
ctr image import alpine.tar.gz alpine     import a rootfs tarball as image `alpine`\n  \
ctr run --rm -e A=1 -w /tmp alpine env    set the environment and working directory\n  \
ctr run --rm --rootfs ./rootfs /bin/sh    run from a directory instead of an image\n  \
ctr run -it --rm alpine sh                an interactive shell on a terminal\n  \
ctr run -d --name web alpine sleep 1d     run in the background; then `ctr ps`, `ctr logs -f web`\n  \
ctr exec -it web sh                       a shell inside the running container\n  \
ctr stop web && ctr rm web                stop it (SIGTERM, then SIGKILL after 10s) and remove it\n  \
ctr info                                  show the helper, cgroups and your id mapping"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in a new container.
    #[command(after_help = "Exit status: the command's own; 125 if ctr failed, 126 if the command \
cannot be executed, 127 if it was not found, 128+N if it was killed by signal N.")]
    Run(Box<run::RunArgs>),
    /// Manage images.
    #[command(subcommand)]
    Image(image_cli::ImageCommand),
    /// Manage named volumes.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    #[command(flatten)]
    Images(image_cli::TopLevel),
    /// Run a command in a running container.
    #[command(after_help = "Exit status: the command's own; 126 if it cannot be executed, 127 if it was \
not found, 1 if the container is not running, 125 if ctr failed.")]
    Exec(exec::ExecArgs),
    /// List containers (running ones; -a for all).
    Ps(lifecycle::PsArgs),
    /// Print a container's output (stdout and stderr, as logged by its monitor).
    Logs(logs::LogsArgs),
    /// Stop containers: SIGTERM, then SIGKILL after the grace period.
    Stop(control::StopArgs),
    /// Send a signal to containers (default SIGKILL).
    Kill(control::KillArgs),
    /// Wait for containers to stop, then print their exit codes.
    Wait(control::WaitArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(control::ContainerCommand),
    /// Live CPU, memory, block I/O and process counts of containers.
    Stats(lifecycle::StatsArgs),
    /// Freeze every process of containers (cgroup freezer).
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Resume paused containers.
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers (running ones with -f).
    Rm(control::RmArgs),
    /// Show containers' configuration, state, mounts and cgroups as JSON.
    Inspect(lifecycle::InspectArgs),
    /// List a container's published ports.
    Port { container: String },
    /// Manage your bridge networks (create, ls, inspect, rm).
    #[command(subcommand)]
    Network(network_cli::NetworkCommand),
    /// Show what ctr found on this host: kernel, cgroups, helper, id maps, paths.
    Info,
    /// Internal: the container's first process (started by the helper).
    #[command(hide = true)]
    Init,
}

fn main() -> ExitCode {
    // `ctr init` runs inside the container before anything else; it never returns.
    if std::env::args_os().nth(1).is_some_and(|a| a == "init") && std::env::args_os().count() == 2 {
        init::main();
    }
    // Image layer work in a user namespace (image::userns): first, while
    // the process is single-threaded, and kept off the parser and --help.
    if std::env::args_os().nth(1).is_some_and(|a| a == image::userns::SUBCOMMAND) {
        image::userns::child_main();
    }
    // A detached container's monitor: kept off the argument parser, small.
    if std::env::args_os().nth(1).is_some_and(|a| a == "monitor") && std::env::args_os().count() == 3 {
        monitor::main();
    }
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(EXIT_ENGINE_ERROR)),
        Err(e) => {
            eprintln!("ctr: {e:#}");
            ExitCode::from(EXIT_ENGINE_ERROR)
        }
    }
}

fn dispatch(command: Command) -> Result<i32> {
    let paths = paths::Paths::discover()?;
    match command {
        Command::Run(args) => run::run(&paths, *args),
        Command::Image(command) => image_cli::image(&paths, command),
        Command::Volume(command) => volume::volume(&paths, command),
        Command::Images(command) => image_cli::top_level(&paths, command),
        Command::Exec(args) => exec::exec(&paths, args),
        Command::Ps(args) => lifecycle::ps(&paths, args),
        Command::Logs(args) => logs::logs(&paths, args),
        Command::Stop(args) => control::stop(&paths, args),
        Command::Kill(args) => control::kill(&paths, args),
        Command::Wait(args) => control::wait(&paths, args),
        Command::Container(command) => control::container(&paths, command),
        Command::Stats(args) => lifecycle::stats(&paths, args),
        Command::Pause { containers } => lifecycle::pause(&paths, &containers, true),
        Command::Unpause { containers } => lifecycle::pause(&paths, &containers, false),
        Command::Rm(args) => control::rm(&paths, args),
        Command::Inspect(args) => lifecycle::inspect(&paths, args),
        Command::Port { container } => network::port(&paths, &container),
        Command::Network(command) => network_cli::network(&paths, command),
        Command::Info => info::print(&paths).map(|()| 0),
        Command::Init => init::main(),
    }
}
