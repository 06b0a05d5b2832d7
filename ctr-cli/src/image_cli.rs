//! The image commands of the CLI (`ctr images`, `ctr image ...`), kept apart
//! from main.rs so that image work grows here and in `image/`.

use crate::image::{self, ImageConfig, ImportSource, Store};
use crate::paths::Paths;
use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;

/// Image commands that docker also has at the top level.
#[derive(Subcommand)]
pub enum TopLevel {
    /// List images (same as `ctr image ls`).
    Images,
}

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Import a root filesystem tarball (tar, gzip, zstd or xz; `-` for stdin) as an image.
    Import {
        /// The tarball, or `-` to read it from standard input.
        file: String,
        /// NAME[:TAG] to give the image (the tag defaults to `latest`).
        reference: String,
    },
    /// List images.
    #[command(alias = "list")]
    Ls,
}

pub fn top_level(paths: &Paths, command: TopLevel) -> Result<i32> {
    match command {
        TopLevel::Images => list(paths),
    }
}

pub fn image(paths: &Paths, command: ImageCommand) -> Result<i32> {
    match command {
        ImageCommand::Import { file, reference } => {
            let source = if file == "-" { ImportSource::Stdin } else { ImportSource::File(PathBuf::from(file)) };
            let record = Store::open(&paths.storage)?.import(source, &reference, ImageConfig::default())?;
            println!("{}", record.id);
            Ok(0)
        }
        ImageCommand::Ls => list(paths),
    }
}

fn list(paths: &Paths) -> Result<i32> {
    let store = Store::open(&paths.storage)?;
    image::print_table(&store.list()?, &mut std::io::stdout().lock())?;
    Ok(0)
}
