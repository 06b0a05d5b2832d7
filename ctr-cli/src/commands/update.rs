//! `ctr update`: new resource limits for each container.

use crate::args::durable::UpdateArgs;
use anyhow::{bail, Result};
use ctr_cli::paths::Paths;

pub fn update(paths: &Paths, args: UpdateArgs) -> Result<i32> {
    if args.limits.oom_score_adj.is_some() {
        bail!("--oom-score-adj cannot be changed after the start: recreate the container");
    }
    let limits = args.limits.to_request()?.resolve()?;
    Ok(super::each(&args.containers, |key| {
        ctr_cli::container::update::update(paths, key, &limits)?;
        println!("{key}");
        Ok(())
    }))
}
