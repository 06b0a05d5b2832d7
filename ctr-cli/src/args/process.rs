//! The flags that shape a container's process, shared by `ctr run` and
//! `ctr exec` (as docker's are): stdin, a terminal, environment, working
//! directory and user.

use ctr_cli::launch::ProcessOptions;

#[derive(clap::Args, Debug, Default)]
pub struct ProcessArgs {
    /// Keep stdin open and pass it to the process.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the process a pseudo-terminal of the container's (with -i: the
    /// caller's terminal in raw mode, restored at exit).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to pass on yours).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the container, absolute (default: the
    /// image's for run, the container's for exec).
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User inside the container: NAME|UID[:GROUP|GID] (default: the
    /// image's for run, the container's for exec).
    #[arg(short = 'u', long = "user", value_name = "USER[:GROUP]")]
    pub user: Option<String>,
}

impl From<ProcessArgs> for ProcessOptions {
    fn from(a: ProcessArgs) -> Self {
        Self { interactive: a.interactive, tty: a.tty, env: a.env, workdir: a.workdir, user: a.user }
    }
}
