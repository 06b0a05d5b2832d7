//! `ctr volume`'s subcommands.

#[derive(clap::Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume (a random name if none is given); creating an existing one is not an error.
    Create { name: Option<String> },
    /// List volumes.
    #[command(visible_alias = "list")]
    Ls {
        /// Only print volume names.
        #[arg(short, long)]
        quiet: bool,
        /// `json` prints one JSON object per volume.
        #[arg(long, value_name = "FORMAT")]
        format: Option<String>,
    },
    /// Show volumes' details as JSON (Name, Mountpoint, CreatedAt).
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes; refused while a container (running or not) uses one.
    #[command(visible_alias = "remove")]
    Rm {
        /// Do not fail on volumes that do not exist.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every volume that no container uses.
    Prune {
        /// Accepted for docker compatibility: ctr never asks.
        #[arg(short, long)]
        force: bool,
    },
}
