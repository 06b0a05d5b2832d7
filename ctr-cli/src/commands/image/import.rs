//! `ctr image import FILE NAME[:TAG]`: a root filesystem tarball as an image.

use anyhow::Result;
use ctr_cli::image::local::open_store;
use ctr_cli::image::{ImageConfig, ImportSource};
use ctr_cli::paths::Paths;
use std::path::PathBuf;

pub fn import(paths: &Paths, file: &str, reference: &str) -> Result<i32> {
    let source = if file == "-" { ImportSource::Stdin } else { ImportSource::File(PathBuf::from(file)) };
    let record = open_store(paths)?.import(source, reference, ImageConfig::default())?;
    println!("{}", record.id);
    Ok(0)
}
