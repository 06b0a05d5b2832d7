//! `ctr cp SRC DEST`.

use crate::args::moving::CpArgs;
use anyhow::Result;
use ctr_cli::container::copy::{self, Location};
use ctr_cli::paths::Paths;

pub fn cp(paths: &Paths, args: &CpArgs) -> Result<i32> {
    let request = args.request();
    let copied = copy::copy(paths, &request)?;
    // docker's line, on stderr so that a tar stream on stdout stays clean.
    if request.destination != Location::Stream {
        eprintln!("Successfully copied {} to {}", ctr_cli::units::human_size(copied.bytes), args.destination);
    }
    Ok(0)
}
