//! `ctr system df` and `ctr system prune`.

use crate::args::image::ImageCommand;
use crate::args::moving::SystemCommand;
use crate::args::network::NetworkCommand;
use crate::args::volume::VolumeCommand;
use anyhow::Result;
use ctr_cli::paths::Paths;
use ctr_cli::units::human_size;

pub fn system(paths: &Paths, command: SystemCommand) -> Result<i32> {
    match command {
        SystemCommand::Df => {
            let mut rows = vec![["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"].map(String::from).to_vec()];
            for u in ctr_cli::container::usage::disk_usage(paths)? {
                let share = (u.reclaimable * 100).checked_div(u.size).unwrap_or(0);
                let reclaimable = format!("{} ({share}%)", human_size(u.reclaimable));
                rows.push(vec![
                    u.kind.into(),
                    u.total.to_string(),
                    u.active.to_string(),
                    human_size(u.size),
                    reclaimable,
                ]);
            }
            crate::output::table::write_rows(&mut std::io::stdout().lock(), &rows)?;
            Ok(0)
        }
        SystemCommand::Prune { all, force, volumes } => {
            let mut what = vec!["all stopped containers", "all networks not used by at least one container"];
            if volumes {
                what.push("all volumes not used by at least one container");
            }
            what.push(if all {
                "all images without at least one container associated to them"
            } else {
                "all dangling images"
            });
            let warning = format!("This will remove:\n  - {}\n", what.join("\n  - "));
            if !crate::commands::confirm(force, warning.trim_end())? {
                return Ok(0);
            }
            let mut failed = super::super::container::container(
                paths,
                crate::args::container::ContainerCommand::Prune { force: true },
            )?;
            failed |= super::super::network::network(paths, NetworkCommand::Prune { force: true })?;
            if volumes {
                failed |= super::super::volume::volume(paths, VolumeCommand::Prune { force: true })?;
            }
            failed |= super::super::image::image(paths, ImageCommand::Prune { all, force: true })?;
            Ok(failed)
        }
    }
}
