//! `ctr rm`: removes each container (running ones too with -f).

use crate::args::container::RmArgs;
use anyhow::Result;
use ctr_cli::paths::Paths;

pub fn rm(paths: &Paths, args: RmArgs) -> Result<i32> {
    Ok(super::each(&args.containers, |key| {
        ctr_cli::container::remove::remove(paths, key, args.force)?;
        println!("{key}");
        Ok(())
    }))
}
