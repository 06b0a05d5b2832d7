//! `ctr network create|ls|inspect|rm|prune`: the caller's bridge networks,
//! one file each. The helper owns the registry (root-side, so no user can
//! take another's bridge or subnet); these ask for changes and show the
//! answers.

mod create;
mod inspect;
mod ls;
mod prune;
mod rm;

use crate::args::network::NetworkCommand;
use anyhow::Result;
use ctr_cli::helper_client::Helper;
use ctr_cli::paths::Paths;

pub fn network(paths: &Paths, command: NetworkCommand) -> Result<i32> {
    let helper = Helper::new(&paths.helper());
    match command {
        NetworkCommand::Create { subnet, name } => create::create(&helper, &name, subnet.as_deref()),
        NetworkCommand::Ls { quiet, format } => ls::ls(&helper, quiet, format.as_deref()),
        NetworkCommand::Inspect { names, format } => inspect::inspect(paths, &helper, &names, format.as_deref()),
        NetworkCommand::Rm { names } => rm::rm(&helper, &names),
        NetworkCommand::Prune { force } => prune::prune(&helper, force),
    }
}
