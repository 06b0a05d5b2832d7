//! `ctr inspect`: containers as JSON, or through a `--format` Go template.

use crate::args::container::InspectArgs;
use crate::output::listing::print_each;
use anyhow::Result;
use ctr_cli::paths::Paths;

pub fn inspect(paths: &Paths, args: InspectArgs) -> Result<i32> {
    let mut all = Vec::new();
    let status = super::each(&args.containers, |key| {
        all.push(ctr_cli::container::inspect::inspect(paths, key)?);
        Ok(())
    });
    print_each(&mut std::io::stdout().lock(), args.format.as_deref(), &all)?;
    Ok(status)
}
