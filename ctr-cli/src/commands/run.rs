//! `ctr run`: a command in a new container, in the foreground or detached.

use crate::args::run::RunArgs;
use anyhow::Result;
use ctr_cli::container::run::{self, RunOutcome};
use ctr_cli::paths::Paths;

pub fn run(paths: &Paths, args: RunArgs) -> Result<i32> {
    match run::run(paths, args.into_request()?)? {
        RunOutcome::Started(id) => {
            println!("{id}");
            Ok(0)
        }
        RunOutcome::Detached => Ok(0),
        RunOutcome::Exited { exit_code, failure } => {
            if let Some(message) = failure {
                eprintln!("ctr: {message}");
            }
            Ok(exit_code)
        }
    }
}
