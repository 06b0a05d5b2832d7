//! `ctr stop`: SIGTERM (or the container's stop signal), then SIGKILL after
//! the grace period, for each container.

use crate::args::container::StopArgs;
use anyhow::Result;
use ctr_cli::paths::Paths;
use std::time::Duration;

pub fn stop(paths: &Paths, args: StopArgs) -> Result<i32> {
    Ok(super::each(&args.containers, |key| {
        ctr_cli::container::stop::stop(paths, key, args.time.map(Duration::from_secs))?;
        println!("{key}");
        Ok(())
    }))
}
