//! `ctr save`: images to a `docker save` archive or an OCI layout tar.

use crate::args::image::SaveArgs;
use anyhow::{bail, Result};
use ctr_cli::image::archive;
use ctr_cli::image::local::{for_save, open_store};
use ctr_cli::paths::Paths;
use std::io::IsTerminal;

pub fn save(paths: &Paths, args: SaveArgs) -> Result<i32> {
    let store = open_store(paths)?;
    let images = for_save(&store, &args.images)?;
    match &args.output {
        Some(path) if path.as_os_str() != "-" => archive::save_to_file(&store, &images, args.format.into(), path)?,
        _ => {
            if std::io::stdout().is_terminal() {
                bail!("refusing to write an archive to a terminal: use -o FILE or redirect the output");
            }
            archive::save(&store, &images, args.format.into(), std::io::BufWriter::new(std::io::stdout().lock()))?;
        }
    }
    Ok(0)
}
