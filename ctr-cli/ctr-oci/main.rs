//! `ctr-oci`: an OCI runtime with runc's command line (issue 12), for
//! containerd (`--runc-binary`), podman (`--runtime`) and anything else
//! that drives runc. This file is the command line only; the work is the
//! engine's `ctr_cli::oci`. Errors go to stderr and, with `--log`, to that
//! file as text or as JSON lines (`{"level":"error","msg":...,"time":...}`),
//! which is where containerd and conmon look for them.

use clap::{Parser, Subcommand};
use ctr_cli::oci::create::{self, CreateOptions};
use ctr_cli::oci::record::Root;
use ctr_cli::oci::{default_spec, lifecycle};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ctr-oci", version, about = "ctr's OCI runtime, with runc's command line")]
struct Cli {
    /// Where container state lives (default /run/ctr-oci for root, else $XDG_RUNTIME_DIR/ctr-oci).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Also write errors to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// The --log file's format.
    #[arg(long, global = true, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    /// cgroupsPath is systemd's slice:prefix:name, made through cgroupfs (refused where systemd runs).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted for compatibility.
    #[arg(long, global = true)]
    debug: bool,
    /// crun's: cgroupfs (the default), disabled (podman's --cgroups=disabled: no cgroup at all), or systemd (as --systemd-cgroup).
    #[arg(long, global = true, value_parser = ["cgroupfs", "disabled", "systemd"], default_value = "cgroupfs")]
    cgroup_manager: String,
    /// true, false or auto (runc's); `spec --rootless` writes the rootless variant.
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct CreateArgs {
    /// The bundle directory (holding config.json).
    #[arg(long, short, default_value = ".")]
    bundle: PathBuf,
    /// Write the container process's pid here (no trailing newline).
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// A Unix socket to receive the terminal's master end (SCM_RIGHTS), with process.terminal.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Move the rootfs over / and chroot instead of pivot_root (for a rootfs on the initramfs).
    #[arg(long)]
    no_pivot: bool,
    /// Accepted: ctr-oci makes no session keyring.
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass this many extra descriptors (3 to 3+N-1) to the process; others are closed.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

#[derive(Subcommand)]
enum Command {
    /// Create a container from a bundle; its process waits for `start`.
    Create(CreateArgs),
    /// Let a created container's process run its command.
    Start { id: String },
    /// Create, start and wait for a container, then delete it.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once started.
        #[arg(long, short)]
        detach: bool,
    },
    /// Print a container's state (the runtime spec's JSON).
    State { id: String },
    /// Send a signal (default SIGTERM) to a container's process.
    Kill {
        /// Signal every process in the container's cgroup.
        #[arg(long, short)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Run another process in a running container.
    Exec {
        /// The process as JSON (the runtime spec's process object).
        #[arg(long, short)]
        process: Option<PathBuf>,
        /// Return once the process runs.
        #[arg(long, short)]
        detach: bool,
        #[arg(long)]
        pid_file: Option<PathBuf>,
        /// Add to the environment (KEY=VALUE), without --process.
        #[arg(long, short)]
        env: Vec<String>,
        /// The working directory, without --process.
        #[arg(long)]
        cwd: Option<String>,
        /// A terminal, without --process (with --console-socket).
        #[arg(long, short)]
        tty: bool,
        /// A Unix socket to receive the terminal's master end (SCM_RIGHTS).
        #[arg(long)]
        console_socket: Option<PathBuf>,
        /// Pass this many extra descriptors (3 to 3+N-1) to the process; others are closed.
        #[arg(long, default_value_t = 0)]
        preserve_fds: u32,
        id: String,
        /// The command, without --process.
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Change a running container's resources (the spec's linux.resources JSON, from FILE or - for stdin).
    Update {
        #[arg(long, short)]
        resources: PathBuf,
        id: String,
    },
    /// A container's cgroup counters (--stats: one reading, as JSON).
    Events {
        /// Print one reading and exit (the only mode ctr-oci has).
        #[arg(long)]
        stats: bool,
        /// Accepted for runc's command line; unused with --stats.
        #[arg(long)]
        interval: Option<String>,
        id: String,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// The processes of a container (--format json: their pids, as runc prints them).
    Ps {
        #[arg(long, short, value_parser = ["table", "json"], default_value = "table")]
        format: String,
        id: String,
    },
    /// Remove a container (stopped or created; --force kills a running one).
    Delete {
        #[arg(long, short)]
        force: bool,
        id: String,
    },
    /// List containers.
    #[command(alias = "ls")]
    List {
        #[arg(long, short, value_parser = ["table", "json"], default_value = "table")]
        format: String,
        #[arg(long, short)]
        quiet: bool,
    },
    /// What this runtime supports (the runtime spec's features JSON).
    Features,
    /// Write a default config.json into the bundle directory.
    Spec {
        #[arg(long, short, default_value = ".")]
        bundle: PathBuf,
    },
}

impl CreateArgs {
    fn options(&self, cli: &Cli) -> CreateOptions {
        let _ = self.no_new_keyring;
        CreateOptions {
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            preserve_fds: self.preserve_fds,
            no_cgroups: cli.cgroup_manager == "disabled",
            systemd_cgroup: cli.systemd_cgroup || cli.cgroup_manager == "systemd",
            rootless: match cli.rootless.as_deref() {
                Some("true") => Some(true),
                Some("false") => Some(false),
                _ => None,
            },
        }
    }
}

fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    let _ = cli.debug;
    let root = Root::choose(cli.root.clone())?;
    match &cli.command {
        Command::Create(args) => create::create(&root, &args.id, &args.options(cli)).map(|_| 0).map_err(Into::into),
        Command::Start { id } => lifecycle::start(&root, id).map(|_| 0).map_err(Into::into),
        Command::Run { create: args, detach } => {
            create::run(&root, &args.id, &args.options(cli), *detach).map_err(Into::into)
        }
        Command::State { id } => {
            println!("{}", serde_json::to_string_pretty(&lifecycle::state(&root, id)?)?);
            Ok(0)
        }
        Command::Kill { all, id, signal } => {
            let signal = lifecycle::parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            lifecycle::kill(&root, id, signal, *all).map(|()| 0).map_err(Into::into)
        }
        Command::Exec { process, detach, pid_file, env, cwd, tty, console_socket, preserve_fds, id, args } => {
            let process = match process {
                Some(path) => serde_json::from_slice(&std::fs::read(path)?)
                    .map_err(|e| anyhow::anyhow!("--process {}: {e}", path.display()))?,
                None if args.is_empty() => anyhow::bail!("exec needs --process FILE or a command"),
                None => ctr_cli::oci::exec::process_from_bundle(&root, id, args.clone(), env, cwd.as_deref(), *tty)?,
            };
            let options = ctr_cli::oci::exec::ExecOptions {
                process,
                detach: *detach,
                pid_file: pid_file.clone(),
                console_socket: console_socket.clone(),
                preserve_fds: *preserve_fds,
            };
            ctr_cli::oci::exec::exec(&root, id, &options).map_err(Into::into)
        }
        Command::Features => {
            println!("{}", serde_json::to_string_pretty(&ctr_cli::oci::features::features())?);
            Ok(0)
        }
        Command::Update { resources, id } => {
            let bytes = if resources.as_os_str() == "-" {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)?;
                bytes
            } else {
                std::fs::read(resources).map_err(|e| anyhow::anyhow!("--resources {}: {e}", resources.display()))?
            };
            lifecycle::update(&root, id, &bytes).map(|()| 0).map_err(Into::into)
        }
        Command::Events { stats, interval: _, id } => {
            if !stats {
                anyhow::bail!("events without --stats (a stream of events) is not supported yet: use --stats");
            }
            println!("{}", lifecycle::stats(&root, id)?);
            Ok(0)
        }
        Command::Pause { id } => lifecycle::freeze(&root, id, true).map(|_| 0).map_err(Into::into),
        Command::Resume { id } => lifecycle::freeze(&root, id, false).map(|_| 0).map_err(Into::into),
        Command::Ps { format, id } => {
            let pids = lifecycle::pids(&root, id)?;
            if format == "json" {
                println!("{}", serde_json::to_string(&pids)?);
            } else {
                println!("PID");
                pids.iter().for_each(|pid| println!("{pid}"));
            }
            Ok(0)
        }
        Command::Delete { force, id } => lifecycle::delete(&root, id, *force).map(|_| 0).map_err(Into::into),
        Command::List { format, quiet } => {
            let states = lifecycle::list(&root)?;
            if format == "json" {
                println!("{}", serde_json::Value::Array(states));
            } else if *quiet {
                states.iter().for_each(|s| println!("{}", s["id"].as_str().unwrap_or_default()));
            } else {
                println!("{:<20} {:<8} {:<10} {:<40} CREATED", "ID", "PID", "STATUS", "BUNDLE");
                for s in &states {
                    let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
                    println!(
                        "{:<20} {:<8} {:<10} {:<40} {}",
                        text("id"),
                        s["pid"].to_string(),
                        text("status"),
                        text("bundle"),
                        text("created")
                    );
                }
            }
            Ok(0)
        }
        Command::Spec { bundle } => {
            default_spec::write(bundle, cli.rootless.as_deref() == Some("true")).map(|_| 0).map_err(Into::into)
        }
    }
}

/// The error, on stderr and in the --log file.
fn report(cli: &Cli, message: &str) {
    eprintln!("ctr-oci: {message}");
    let Some(path) = &cli.log else { return };
    let time = ctr_cli::units::rfc3339_seconds(std::time::SystemTime::now());
    let line = if cli.log_format == "json" {
        serde_json::json!({ "level": "error", "msg": message, "time": time }).to_string()
    } else {
        format!("time=\"{time}\" level=error msg={message:?}")
    };
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(file, "{line}");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(&cli) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(255)),
        Err(e) => {
            report(&cli, &format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}
