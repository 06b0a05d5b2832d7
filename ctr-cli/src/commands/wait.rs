//! `ctr wait`: blocks until each container stops, then prints its exit code.

use crate::args::container::ContainersArgs;
use anyhow::Result;
use ctr_cli::paths::Paths;

pub fn wait(paths: &Paths, args: ContainersArgs) -> Result<i32> {
    Ok(super::each(&args.containers, |key| {
        println!("{}", ctr_cli::container::wait::wait(paths, key)?);
        Ok(())
    }))
}
