//! `ctr volume`'s subcommands.

#[derive(clap::Subcommand, Debug)]
#[command(defer = true)]
pub enum VolumeCommand {
    /// Create a volume (a random name if none is given); creating an existing one is not an error.
    Create { name: Option<String> },
    /// List volumes.
    #[command(visible_alias = "list")]
    Ls {
        /// Only print volume names.
        #[arg(short, long)]
        quiet: bool,
        /// `json` (one JSON object per line), `table TEMPLATE`, or a Go template.
        /// Fields: .Name .Driver .Mountpoint .CreatedAt .Scope .Labels.
        #[arg(long, value_name = "FORMAT")]
        format: Option<String>,
    },
    /// Show volumes' details as JSON (Name, Mountpoint, CreatedAt).
    Inspect {
        /// `json` (the default), or a Go template, e.g. '{{.Mountpoint}}'.
        #[arg(short, long, value_name = "FORMAT")]
        format: Option<String>,
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
        /// Do not ask for confirmation (needed when standard input is not a terminal).
        #[arg(short, long)]
        force: bool,
    },
}
