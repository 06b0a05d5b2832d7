//! The image verbs (`ctr images`, `ctr pull`, `ctr image ...`) over the
//! engine's image store, one file each.

mod import;
mod inspect;
mod load;
mod ls;
mod prune;
mod pull;
mod rmi;
mod save;
mod tag;

use crate::args::image::{ImageCommand, TopLevel};
use anyhow::Result;
use ctr_cli::image::Removal;
use ctr_cli::paths::Paths;

pub fn top_level(paths: &Paths, command: TopLevel) -> Result<i32> {
    match command {
        TopLevel::Images(args) => ls::ls(paths, args),
        TopLevel::Pull(args) => pull::pull(paths, args),
        TopLevel::Load(args) => load::load(paths, args),
        TopLevel::Save(args) => save::save(paths, args),
        TopLevel::Rmi(args) => rmi::rmi(paths, args),
        TopLevel::Tag(args) => tag::tag(paths, args),
    }
}

pub fn image(paths: &Paths, command: ImageCommand) -> Result<i32> {
    match command {
        ImageCommand::Import { file, reference } => import::import(paths, &file, &reference),
        ImageCommand::Ls(args) => ls::ls(paths, args),
        ImageCommand::Pull(args) => pull::pull(paths, args),
        ImageCommand::Load(args) => load::load(paths, args),
        ImageCommand::Save(args) => save::save(paths, args),
        ImageCommand::Rm(args) => rmi::rmi(paths, args),
        ImageCommand::Tag(args) => tag::tag(paths, args),
        ImageCommand::Inspect { images, format } => inspect::inspect(paths, &images, format.as_deref()),
        ImageCommand::Prune { all, force } => prune::prune(paths, all, force),
    }
}

/// docker's lines for what a removal did.
fn print_removal(removal: &Removal) {
    for r in &removal.untagged {
        println!("Untagged: {r}");
    }
    for d in &removal.deleted {
        println!("Deleted: {d}");
    }
}
