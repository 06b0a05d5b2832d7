//! The flags of the verbs of durable containers: `create` (run's flags),
//! `start`, `restart`, `rename` and `attach`.

#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// Attach to its output (and exit with its exit code).
    #[arg(short, long)]
    pub attach: bool,
    /// Attach our stdin too (the container must have been created with -i).
    #[arg(short, long)]
    pub interactive: bool,
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
    pub container: String,
}
