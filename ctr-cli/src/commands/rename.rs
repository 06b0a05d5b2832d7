//! `ctr rename OLD NEW`.

use crate::args::durable::RenameArgs;
use anyhow::Result;
use ctr_cli::paths::Paths;

pub fn rename(paths: &Paths, args: RenameArgs) -> Result<i32> {
    ctr_cli::container::rename::rename(paths, &args.container, &args.new_name)?;
    Ok(0)
}
