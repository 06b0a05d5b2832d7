//! `ctr exec`'s flags into an [`ExecRequest`].

use super::process::ProcessArgs;
use ctr_cli::container::exec::ExecRequest;

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Start the command and return at once; its output is discarded. It
    /// ends with the container.
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[command(flatten)]
    pub process: ProcessArgs,
    pub container: String,
    /// COMMAND [ARG...]: flags before it are ctr's, those after it the command's.
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

impl From<ExecArgs> for ExecRequest {
    fn from(a: ExecArgs) -> Self {
        Self { container: a.container, command: a.command, detach: a.detach, process: a.process.into() }
    }
}
