//! `ctr pull`: an image from a registry.

use crate::args::image::PullArgs;
use anyhow::{anyhow, Result};
use ctr_cli::image::local::open_store;
use ctr_cli::image::oci::Platform;
use ctr_cli::image::progress::Progress;
use ctr_cli::image::registry::{self, PullOptions, RegistryError};
use ctr_cli::image::Reference;
use ctr_cli::paths::Paths;

pub fn pull(paths: &Paths, args: PullArgs) -> Result<i32> {
    let reference = Reference::parse(&args.reference)?;
    let options =
        PullOptions { platform: args.platform.as_deref().map(Platform::parse).transpose()?, insecure: args.insecure };
    let progress = if args.quiet { Progress::quiet() } else { Progress::new(true) };
    let store = open_store(paths)?;
    let record = registry::pull(&store, &reference, &options, &progress).map_err(|e| match e.registry() {
        Some(RegistryError::NotFound { .. }) => anyhow!("cannot pull {}: {e}", reference.familiar()),
        _ => anyhow::Error::from(e).context(format!("cannot pull {}", reference.familiar())),
    })?;
    if args.quiet {
        println!("{}", record.id);
    } else {
        progress.println(&format!("Status: Downloaded image for {}", reference.familiar()));
        println!("{}", reference.familiar());
    }
    Ok(0)
}
