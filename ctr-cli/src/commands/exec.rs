//! `ctr exec`: a command in a running container. Exit status: the
//! command's, 126/127 if it cannot be executed or found, 1 if the
//! container does not run.

use crate::args::exec::ExecArgs;
use anyhow::Result;
use ctr_cli::container::exec::{self, ExecOutcome};
use ctr_cli::container::state::StateError;
use ctr_cli::paths::Paths;

pub fn exec(paths: &Paths, args: ExecArgs) -> Result<i32> {
    let key = args.container.clone();
    match exec::exec(paths, args.into())? {
        ExecOutcome::Refused(StateError::NotRunning { .. }) => {
            eprintln!("ctr: container {key} is not running: exec needs a running container (see `ctr ps -a`)");
            Ok(1)
        }
        ExecOutcome::Refused(refused) => {
            eprintln!("ctr: {refused}");
            Ok(1)
        }
        ExecOutcome::Exited { exit_code, failure } => {
            if let Some(message) = failure {
                eprintln!("ctr: {message}");
            }
            Ok(exit_code)
        }
    }
}
