//! `ctr restart`: stop, then start, each container.

use crate::args::durable::RestartArgs;
use anyhow::Result;
use ctr_cli::paths::Paths;
use std::time::Duration;

pub fn restart(paths: &Paths, args: RestartArgs) -> Result<i32> {
    Ok(super::each(&args.containers, |key| {
        ctr_cli::container::restart::restart(paths, key, Duration::from_secs(args.time))?;
        println!("{key}");
        Ok(())
    }))
}
