//! `ctr volume create|ls|inspect|rm|prune`.

use crate::args::volume::VolumeCommand;
use crate::output::listing::{print_each, print_list, Listing};
use anyhow::Result;
use ctr_cli::paths::Paths;
use ctr_cli::volume;

/// `docker volume ls`'s own table.
const VOLUMES: Listing = Listing { default: "table {{.Driver}}\t{{.Name}}", headers: &[("Name", "VOLUME NAME")] };

pub fn volume(paths: &Paths, command: VolumeCommand) -> Result<i32> {
    match command {
        VolumeCommand::Create { name } => {
            println!("{}", volume::create_named(paths, name.as_deref())?);
            Ok(0)
        }
        VolumeCommand::Ls { quiet, format } => {
            let names = volume::names(paths)?;
            if quiet {
                names.iter().for_each(|n| println!("{n}"));
                return Ok(0);
            }
            let rows = names.iter().map(|n| volume::info(paths, n)).collect::<Result<Vec<_>, _>>()?;
            print_list(&mut std::io::stdout().lock(), format.as_deref(), &VOLUMES, &rows)?;
            Ok(0)
        }
        VolumeCommand::Inspect { names, format } => {
            let mut all = Vec::new();
            let status = super::each(&names, |n| {
                all.push(volume::inspect(paths, n)?);
                Ok(())
            });
            print_each(&mut std::io::stdout().lock(), format.as_deref(), &all)?;
            Ok(status)
        }
        VolumeCommand::Rm { force, names } => Ok(super::each(&names, |n| {
            if volume::remove_named(paths, n, force)? {
                println!("{n}");
            }
            Ok(())
        })),
        VolumeCommand::Prune { force } => {
            if !super::confirm(force, "This will remove all local volumes not used by at least one container")? {
                return Ok(0);
            }
            let pruned = volume::prune(paths)?;
            for n in &pruned.removed {
                println!("{n}");
            }
            for e in &pruned.errors {
                eprintln!("ctr: {e:#}");
            }
            println!("Total reclaimed volumes: {}", pruned.removed.len());
            Ok(i32::from(!pruned.errors.is_empty()))
        }
    }
}
