//! `ctr rmi`: removes images (untags, and deletes what no name keeps).

use crate::args::image::RmiArgs;
use anyhow::Result;
use ctr_cli::image::local::{containers_using, open_store};
use ctr_cli::paths::Paths;

pub fn rmi(paths: &Paths, args: RmiArgs) -> Result<i32> {
    let store = open_store(paths)?;
    let users = containers_using(paths);
    Ok(crate::commands::each(&args.images, |name| {
        super::print_removal(&store.remove(name, args.force, &users)?);
        Ok(())
    }))
}
