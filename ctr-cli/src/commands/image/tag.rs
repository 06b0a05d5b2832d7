//! `ctr tag SOURCE TARGET[:TAG]`: another name for an image.

use crate::args::image::TagArgs;
use anyhow::Result;
use ctr_cli::image::local::open_store;
use ctr_cli::paths::Paths;

pub fn tag(paths: &Paths, args: TagArgs) -> Result<i32> {
    open_store(paths)?.tag(&args.source, &args.target)?;
    Ok(0)
}
