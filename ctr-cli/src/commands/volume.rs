//! `ctr volume create|ls|inspect|rm|prune`.

use crate::args::volume::VolumeCommand;
use crate::output::table::write_table;
use anyhow::{bail, Result};
use ctr_cli::paths::Paths;
use ctr_cli::volume;

pub fn volume(paths: &Paths, command: VolumeCommand) -> Result<i32> {
    match command {
        VolumeCommand::Create { name } => {
            println!("{}", volume::create_named(paths, name.as_deref())?);
            Ok(0)
        }
        VolumeCommand::Ls { quiet, format } => {
            let json = match format.as_deref() {
                None | Some("table") => false,
                Some("json") => true,
                Some(other) => bail!("unsupported --format {other:?}: use json or table"),
            };
            let names = volume::names(paths)?;
            if quiet {
                names.iter().for_each(|n| println!("{n}"));
            } else if json {
                for n in &names {
                    let i = volume::info(paths, n)?;
                    println!(
                        "{}",
                        serde_json::json!({"Driver": "local", "Name": n, "Mountpoint": i["Mountpoint"], "CreatedAt": i["CreatedAt"]})
                    );
                }
            } else {
                let mut rows = vec![["DRIVER".to_owned(), "VOLUME NAME".to_owned()]];
                rows.extend(names.iter().map(|n| ["local".to_owned(), n.clone()]));
                write_table(&mut std::io::stdout().lock(), &rows)?;
            }
            Ok(0)
        }
        VolumeCommand::Inspect { names } => {
            let mut all = Vec::new();
            let status = super::each(&names, |n| {
                all.push(volume::inspect(paths, n)?);
                Ok(())
            });
            println!("{}", serde_json::to_string_pretty(&all)?);
            Ok(status)
        }
        VolumeCommand::Rm { force, names } => Ok(super::each(&names, |n| {
            if volume::remove_named(paths, n, force)? {
                println!("{n}");
            }
            Ok(())
        })),
        VolumeCommand::Prune { force: _ } => {
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
