//! `ctr commit [--change ...] CONTAINER [REPO[:TAG]]`.

use crate::args::moving::CommitArgs;
use anyhow::Result;
use ctr_cli::paths::Paths;

pub fn commit(paths: &Paths, args: CommitArgs) -> Result<i32> {
    let image = ctr_cli::container::layer::commit(paths, &args.request())?;
    // docker's answer: the new image's id.
    println!("{}", image.id);
    Ok(0)
}
