//! `ctr image prune`: untagged images (every unused one with -a) and unused layers.

use crate::output::units::human_size;
use anyhow::Result;
use ctr_cli::image::local::{containers_using, open_store};
use ctr_cli::paths::Paths;

pub fn prune(paths: &Paths, all: bool, force: bool) -> Result<i32> {
    let warning = if all {
        "This will remove all images without at least one container associated to them"
    } else {
        "This will remove all dangling images"
    };
    if !crate::commands::confirm(force, warning)? {
        return Ok(0);
    }
    let removal = open_store(paths)?.prune(all, &containers_using(paths))?;
    super::print_removal(&removal);
    println!("Total reclaimed space: {}", human_size(removal.reclaimed));
    Ok(0)
}
