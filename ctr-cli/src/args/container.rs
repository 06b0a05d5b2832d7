//! The flags of the verbs that act on existing containers, and the pure
//! parsers they need (signals, `--tail`).

use anyhow::{anyhow, Result};
use nix::sys::signal::Signal;
use std::str::FromStr;

#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// Show every container, not only running ones.
    #[arg(short, long)]
    pub all: bool,
    /// Only print container ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// `json` (one JSON object per line), `table TEMPLATE`, or a Go template
    /// such as '{{.ID}} {{.Names}}'. Fields: .ID .Names .Image .Command
    /// .CreatedAt .RunningFor .Status .State .Ports .Labels .Label "KEY"
    /// .Mounts .Networks .Pid.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Only containers that match: status=, name=, id=, label=KEY[=VALUE],
    /// ancestor=IMAGE, before=/since=CONTAINER, exited=CODE. Repeated
    /// filters of one key match any; of different keys, all.
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Do not shorten ids and commands.
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// Print one reading and exit.
    #[arg(long)]
    pub no_stream: bool,
    /// `json` (one JSON object per container and reading), `table TEMPLATE`
    /// or a Go template. Fields: .ID .Name .Container .CPUPerc .MemUsage
    /// .MemPerc .NetIO .BlockIO .PIDs.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Containers (default: all running ones).
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// `json` (the default), or a Go template, e.g. '{{.State.Pid}}',
    /// '{{json .Config.Env}}', '{{range .Mounts}}{{.Source}} {{end}}'.
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait after the stop signal before SIGKILL (default: the
    /// container's --stop-timeout, else 10).
    #[arg(short = 't', long = "time", value_name = "SECS")]
    pub time: Option<u64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// The signal to send (name or number).
    #[arg(short = 's', long = "signal", value_name = "SIGNAL", default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ContainersArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Kill and remove running containers too.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// Keep printing new output until the container stops.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines (or `all`).
    #[arg(short = 'n', long, value_name = "N", default_value = "all")]
    pub tail: String,
    /// Prefix each line with its RFC 3339 timestamp.
    #[arg(short, long)]
    pub timestamps: bool,
    pub container: String,
}

#[derive(clap::Subcommand, Debug)]
#[command(defer = true)]
pub enum ContainerCommand {
    /// Remove every stopped container.
    Prune {
        /// Do not ask for confirmation (needed when standard input is not a terminal).
        #[arg(short, long)]
        force: bool,
    },
    /// List containers (as `ctr ps`).
    #[command(alias = "list")]
    Ls(PsArgs),
    /// Remove containers (as `ctr rm`).
    Rm(RmArgs),
}

/// Docker's signal names: KILL, SIGKILL, kill or a number.
pub fn parse_signal(text: &str) -> Result<Signal> {
    let upper = text.trim().to_ascii_uppercase();
    if let Ok(n) = upper.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| anyhow!("invalid signal {text:?}: no signal number {n}"));
    }
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    Signal::from_str(&name)
        .map_err(|_| anyhow!("invalid signal {text:?}: use a name such as TERM, KILL, HUP or a number"))
}

/// `--tail`: a number of lines, or `all` (also any negative number).
pub fn parse_tail(tail: &str) -> Result<Option<usize>> {
    if tail == "all" {
        return Ok(None);
    }
    match tail.parse::<i64>() {
        Ok(n) if n < 0 => Ok(None),
        Ok(n) => Ok(Some(n as usize)),
        Err(_) => anyhow::bail!("--tail {tail:?}: give a number of lines or `all`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("hup").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), Signal::SIGUSR1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
        assert!(parse_signal("").is_err());
    }

    #[test]
    fn tails() {
        assert_eq!(parse_tail("all").unwrap(), None);
        assert_eq!(parse_tail("-1").unwrap(), None);
        assert_eq!(parse_tail("3").unwrap(), Some(3));
        assert!(parse_tail("x").is_err());
    }
}
