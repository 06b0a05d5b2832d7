//! The command line: clap's definitions, and their conversion into the
//! engine's request types. Nothing here acts; parsing is pure, so every
//! rule about flags is unit-tested without a container.

pub mod container;
pub mod durable;
pub mod exec;
pub mod image;
pub mod limits;
pub mod mount;
pub mod moving;
pub mod network;
pub mod process;
#[cfg(test)]
mod readme_table;
pub mod run;
pub mod volume;

use clap::{Parser, Subcommand};

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
ctr run -d --restart always --name db alpine sleep 1d   restarted when it dies, until `ctr stop`\n  \
ctr create --name app alpine sleep 1d && ctr start app   create now, start later\n  \
ctr stop web && ctr rm web                stop it (SIGTERM, then SIGKILL after 10s) and remove it\n  \
ctr info                                  show the helper, cgroups and your id mapping"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// `defer` here and on every nested subcommand enum: only the subcommand
// being run gets its arguments built, not the whole tree (a third of a
// start's page faults). A flattened struct must not carry a doc comment:
// deferred, it would replace the subcommand's about.
#[derive(Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Run a command in a new container.
    #[command(after_help = "Exit status: the command's own; 125 if ctr failed, 126 if the command \
cannot be executed, 127 if it was not found, 128+N if it was killed by signal N.")]
    Run(Box<run::RunArgs>),
    /// Create a container without starting it (every `run` flag); then `ctr start`.
    #[command(
        after_help = "Examples:\n  ctr create --name web -p 8080:80 alpine httpd -f    create, then `ctr start web`\n  \
ctr create -it --name box alpine sh                 then `ctr start -ai box` for its shell"
    )]
    Create(Box<run::RunArgs>),
    /// Start created or stopped containers again (same writable layer, new namespaces).
    #[command(after_help = "Examples:\n  ctr start web            start it in the background\n  \
ctr start -ai box        start it and attach to its terminal (Ctrl-P Ctrl-Q detaches)")]
    Start(durable::StartArgs),
    /// Stop containers, then start them again.
    Restart(durable::RestartArgs),
    /// Rename a container.
    Rename(durable::RenameArgs),
    /// Attach to a running container's output and input (Ctrl-P Ctrl-Q detaches from a terminal).
    #[command(after_help = "Examples:\n  ctr attach web             watch its output until it exits\n  \
echo hi | ctr attach app   send input to a container started with -i")]
    Attach(durable::AttachArgs),
    /// Change the resource limits of containers (running ones at once).
    #[command(
        after_help = "Examples:\n  ctr update -m 256m web                 raise (or lower) its memory limit now\n  \
ctr update --cpus 0.5 --pids-limit 200 web   and its CPU quota and process limit"
    )]
    Update(durable::UpdateArgs),
    /// Generate files for other tools: systemd units that start containers at boot.
    #[command(subcommand)]
    Generate(durable::GenerateCommand),
    /// Manage images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Manage named volumes.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    #[command(flatten)]
    Images(image::TopLevel),
    #[command(flatten)]
    Moving(moving::TopLevel),
    /// Run a command in a running container.
    #[command(after_help = "Exit status: the command's own; 126 if it cannot be executed, 127 if it was \
not found, 1 if the container is not running, 125 if ctr failed.")]
    Exec(exec::ExecArgs),
    /// List containers (running ones; -a for all).
    Ps(container::PsArgs),
    /// Print a container's output (stdout and stderr, as logged by its monitor).
    Logs(container::LogsArgs),
    /// Stop containers: SIGTERM, then SIGKILL after the grace period (a paused one is thawed first).
    Stop(container::StopArgs),
    /// Send a signal to containers (default SIGKILL; a paused one is thawed first).
    Kill(container::KillArgs),
    /// Wait for containers to stop, then print their exit codes.
    Wait(container::ContainersArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(container::ContainerCommand),
    /// Live CPU, memory, block I/O and process counts of containers.
    Stats(container::StatsArgs),
    /// Freeze every process of containers (cgroup freezer); `ps` shows them as Paused.
    Pause(container::ContainersArgs),
    /// Resume paused containers.
    Unpause(container::ContainersArgs),
    /// Remove containers (running or paused ones with -f).
    Rm(container::RmArgs),
    /// Show containers' configuration, state, mounts and cgroups as JSON.
    Inspect(container::InspectArgs),
    /// List a container's published ports.
    Port { container: String },
    /// Manage your bridge networks (create, ls, inspect, rm).
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Show what ctr found on this host: kernel, cgroups, helper, id maps, paths.
    Info(InfoArgs),
    /// Show ctr's version, git commit, Rust compiler and OS/architecture.
    Version(VersionArgs),
    /// Print a shell completion script: `source <(ctr completion bash)`.
    #[command(after_help = "Installed by `cargo xtask install` under the prefix's share/bash-completion, \
share/zsh/site-functions and share/fish/vendor_completions.d.")]
    Completion(CompletionArgs),
}

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// `json`, or a Go template, e.g. '{{.KernelVersion}} {{.ContainersRunning}}'.
    /// Fields: .ServerVersion .KernelVersion .CgroupVersion .Containers
    /// .ContainersRunning .ContainersPaused .ContainersStopped .Images
    /// .Helper .UidMap .Seccomp .StateDir .StorageDir and more (see `json`).
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct VersionArgs {
    /// `json`, or a Go template, e.g. '{{.Client.Version}}'. Fields: .Client.Version
    /// .Client.GitCommit .Client.RustVersion .Client.Os .Client.Arch.
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct CompletionArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// The directory to write ctr.1, ctr-run.1, ... in (created if missing).
    #[arg(long, value_name = "DIR")]
    pub dir: std::path::PathBuf,
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Building a deferred subcommand (for its own parse, `--help`, the
    /// completions and man pages) keeps the about that `ctr --help` shows.
    #[test]
    fn deferred_subcommands_keep_their_about() {
        let about = |c: &clap::Command| c.get_about().map(|a| a.to_string());
        let lazy = Cli::command();
        let mut built = Cli::command();
        built.build();
        let mut checked = 0;
        for sub in lazy.get_subcommands() {
            let full = built.find_subcommand(sub.get_name()).expect("the same subcommands");
            assert_eq!(about(full), about(sub), "ctr {}", sub.get_name());
            checked += 1;
        }
        assert!(checked > 30);
        assert_eq!(built.find_subcommand("run").and_then(about).as_deref(), Some("Run a command in a new container"));
    }
}
