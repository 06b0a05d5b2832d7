//! `ctr container prune|ls|rm`.

use crate::args::container::ContainerCommand;
use anyhow::Result;
use ctr_cli::paths::Paths;

pub fn container(paths: &Paths, command: ContainerCommand) -> Result<i32> {
    match command {
        ContainerCommand::Prune { force } => prune(paths, force),
        ContainerCommand::Ls(args) => super::ps::ps(paths, args),
        ContainerCommand::Rm(args) => super::rm::rm(paths, args),
    }
}

/// Removes every stopped container, after asking on a terminal.
fn prune(paths: &Paths, force: bool) -> Result<i32> {
    if !super::confirm(force, "This will remove all stopped containers")? {
        return Ok(0);
    }
    let pruned = ctr_cli::container::prune::prune(paths)?;
    println!("Deleted Containers:");
    for id in &pruned.removed {
        println!("{id}");
    }
    for e in &pruned.errors {
        eprintln!("ctr: {e:#}");
    }
    Ok(i32::from(!pruned.errors.is_empty()))
}
