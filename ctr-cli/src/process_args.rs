//! The flags that shape a container's process, shared by `ctr run` and
//! `ctr exec` (as docker's are): stdin, a terminal, environment, working
//! directory and user.

use crate::helper_client::ProcessStdio;
use crate::spec::TerminalSize;
use anyhow::{bail, Result};
use std::io::IsTerminal;

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

impl ProcessArgs {
    /// `-it` needs a terminal to put in raw mode, unless nothing reads it
    /// here (`detached`).
    pub fn check_terminal(&self, detached: bool) -> Result<()> {
        if self.tty && self.interactive && !detached && !std::io::stdin().is_terminal() {
            bail!("the input device is not a TTY: drop -t, or run from a terminal");
        }
        Ok(())
    }

    /// The pseudo-terminal's first size: the caller's, or 24x80.
    pub fn terminal(&self) -> Option<TerminalSize> {
        self.tty.then(|| crate::tty::caller_size().unwrap_or(TerminalSize { rows: 24, cols: 80 }))
    }

    /// Our stdin for the process only with -i and no terminal (a terminal
    /// carries stdin itself).
    pub fn stdio(&self) -> ProcessStdio {
        if self.interactive && !self.tty {
            ProcessStdio::default()
        } else {
            ProcessStdio::no_stdin()
        }
    }
}
