//! `ctr push IMAGE [DESTINATION]`.

use crate::args::moving::PushArgs;
use anyhow::{Context, Result};
use ctr_cli::image::local::open_store;
use ctr_cli::image::progress::Progress;
use ctr_cli::image::push::{self, PushOptions};
use ctr_cli::image::Reference;
use ctr_cli::paths::Paths;

pub fn push(paths: &Paths, args: &PushArgs) -> Result<i32> {
    let target = Reference::parse(args.destination.as_deref().unwrap_or(&args.image))?;
    let progress = if args.quiet { Progress::quiet() } else { Progress::new(true) };
    let store = open_store(paths)?;
    let options = PushOptions { insecure: args.insecure };
    let pushed = push::push(&store, &args.image, &target, &options, &progress)
        .with_context(|| format!("cannot push {}", target.familiar()))?;
    if args.quiet {
        println!("{}", pushed.digest);
    }
    Ok(0)
}
