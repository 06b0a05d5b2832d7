//! `ctr pause` and `ctr unpause`: freezes or thaws each container.

use crate::args::container::ContainersArgs;
use anyhow::Result;
use ctr_cli::paths::Paths;

pub fn pause(paths: &Paths, args: ContainersArgs, frozen: bool) -> Result<i32> {
    Ok(super::each(&args.containers, |key| {
        let state = ctr_cli::container::pause::pause(paths, key, frozen)?;
        println!("{}", state.name);
        Ok(())
    }))
}
