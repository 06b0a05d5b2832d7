//! `ctr export CONTAINER [-o FILE]`.

use crate::args::moving::ExportArgs;
use anyhow::{bail, Context, Result};
use ctr_cli::paths::Paths;
use std::io::IsTerminal;

pub fn export(paths: &Paths, args: &ExportArgs) -> Result<i32> {
    match &args.output {
        Some(path) => {
            let mut file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            ctr_cli::container::layer::export(paths, &args.container, &mut file)?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("refusing to write a tar archive to a terminal: redirect it, or give -o FILE");
            }
            ctr_cli::container::layer::export(paths, &args.container, &mut std::io::stdout().lock())?;
        }
    }
    Ok(0)
}
