//! `ctr load`: images from a `docker save` archive or an OCI layout.

use crate::args::image::LoadArgs;
use anyhow::{Context, Result};
use ctr_cli::image::archive::{self, LoadInput};
use ctr_cli::image::local::open_store;
use ctr_cli::image::progress::Progress;
use ctr_cli::paths::Paths;

pub fn load(paths: &Paths, args: LoadArgs) -> Result<i32> {
    let store = open_store(paths)?;
    let input = match args.input {
        Some(path) if path.as_os_str() != "-" => LoadInput::Path(path),
        _ => LoadInput::Stdin,
    };
    let progress = if args.quiet { Progress::quiet() } else { Progress::new(true) };
    let loaded = archive::load(&store, input, &progress).context("cannot load the images")?;
    for image in loaded {
        if image.references.is_empty() {
            println!("Loaded image ID: {}", image.id);
        }
        for reference in image.references {
            println!("Loaded image: {reference}");
        }
    }
    Ok(0)
}
