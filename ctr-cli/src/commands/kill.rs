//! `ctr kill`: a signal (default SIGKILL) to each container.

use crate::args::container::{parse_signal, KillArgs};
use anyhow::Result;
use ctr_cli::paths::Paths;

pub fn kill(paths: &Paths, args: KillArgs) -> Result<i32> {
    let signal = parse_signal(&args.signal)?;
    Ok(super::each(&args.containers, |key| {
        ctr_cli::container::kill::kill(paths, key, signal)?;
        println!("{key}");
        Ok(())
    }))
}
