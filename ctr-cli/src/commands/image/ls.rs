//! `ctr images`: the image table.

use crate::output::images::print_table;
use anyhow::Result;
use ctr_cli::image::local::open_store;
use ctr_cli::paths::Paths;

pub fn ls(paths: &Paths) -> Result<i32> {
    let store = open_store(paths)?;
    print_table(&store.list()?, &mut std::io::stdout().lock())?;
    Ok(0)
}
