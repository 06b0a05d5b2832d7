//! `ctr create`: a container with every `run` flag, not started.

use crate::args::run::RunArgs;
use anyhow::Result;
use ctr_cli::paths::Paths;

pub fn create(paths: &Paths, args: RunArgs) -> Result<i32> {
    let id = ctr_cli::container::create::create(paths, &args.into_request()?)?;
    println!("{id}");
    Ok(0)
}
