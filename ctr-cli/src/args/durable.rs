//! The flags of the verbs of durable containers: `create` (run's flags),
//! `start`, `restart`, `rename`, `attach` and `update`.

#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// Attach to its output (and exit with its exit code).
    #[arg(short, long)]
    pub attach: bool,
    /// Attach our stdin too (the container must have been created with -i).
    #[arg(short, long)]
    pub interactive: bool,
    /// Leave a container that `ctr stop` stopped as it is (what the boot
    /// units of `unless-stopped` containers use).
    #[arg(long)]
    pub unless_stopped: bool,
    /// With -a: the keys that detach (default: the container's
    /// --detach-keys, else ctrl-p,ctrl-q).
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RestartArgs {
    /// Seconds to wait after SIGTERM before SIGKILL.
    #[arg(short = 't', long = "time", value_name = "SECS", default_value_t = 10)]
    pub time: u64,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(clap::Args, Debug)]
pub struct AttachArgs {
    /// Do not send our stdin (only watch the output).
    #[arg(long)]
    pub no_stdin: bool,
    /// The keys that detach from a -t container (default: the container's
    /// --detach-keys, else ctrl-p,ctrl-q; "" turns detaching off).
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Subcommand, Debug)]
#[command(defer = true)]
pub enum GenerateCommand {
    /// A systemd unit that starts a container at boot and stops it at
    /// shutdown (ctr has no daemon to do it).
    #[command(after_help = "Examples:\n  \
ctr generate systemd --files web     write ctr-web.service here; then\n  \
  mkdir -p ~/.config/systemd/user && mv ctr-web.service ~/.config/systemd/user/\n  \
  systemctl --user daemon-reload && systemctl --user enable ctr-web\n  \
  loginctl enable-linger $USER       so that your units start at boot, before you log in\n  \
ctr generate systemd --system --files web && sudo mv ctr-web.service /etc/systemd/system/\n  \
                                     a system unit that runs ctr as you (User=), no lingering needed")]
    Systemd(SystemdArgs),
    /// Manual pages for ctr and each of its subcommands (section 1).
    #[command(after_help = "Example:\n  ctr generate man --dir ~/.local/share/man/man1 && man ctr-run")]
    Man(crate::args::ManArgs),
}

#[derive(clap::Args, Debug)]
pub struct SystemdArgs {
    /// A system unit (runs as you, with User=) instead of a user unit.
    #[arg(long)]
    pub system: bool,
    /// Write ctr-NAME.service in the current directory instead of printing it.
    #[arg(long)]
    pub files: bool,
    /// Seconds `ctr stop` waits before SIGKILL when the unit stops.
    #[arg(short = 't', long = "time", value_name = "SECS", default_value_t = 10)]
    pub time: u64,
    pub container: String,
}
