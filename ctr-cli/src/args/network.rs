//! `ctr network`'s subcommands.

#[derive(clap::Subcommand, Debug)]
#[command(defer = true)]
pub enum NetworkCommand {
    /// Create a bridge network of yours. Containers join it with
    /// `ctr run --network NAME`; they reach each other by name, and cannot
    /// reach containers on other networks.
    Create {
        /// Its subnet, inside the pool the helper's config allows (default
        /// 10.89.0.0/16) and at most a /24 unless you are root; the next
        /// free /24 of the pool if not given.
        #[arg(long, value_name = "CIDR")]
        subnet: Option<String>,
        /// 1 to 64 characters from [A-Za-z0-9_.-]; yours alone (other users may use the same name).
        name: String,
    },
    /// List networks: the default `bridge`, yours, and `host` and `none`.
    #[command(visible_alias = "list")]
    Ls {
        /// Only print network names (ctr's networks have no other id).
        #[arg(short, long)]
        quiet: bool,
        /// `json` (one JSON object per line), `table TEMPLATE`, or a Go template.
        /// Fields: .Name .ID .Driver .Bridge .Subnet .Gateway .Containers .CreatedAt.
        #[arg(long, value_name = "FORMAT")]
        format: Option<String>,
    },
    /// Show networks' details as JSON (subnet, gateway, bridge, your containers on it).
    Inspect {
        /// `json` (the default), or a Go template, e.g. '{{(index .IPAM.Config 0).Subnet}}'.
        #[arg(short, long, value_name = "FORMAT")]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks of yours (refused while a container is on one).
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every network of yours that no container is on.
    Prune {
        /// Do not ask for confirmation (needed when standard input is not a terminal).
        #[arg(short, long)]
        force: bool,
    },
}
