//! `ctr images`: the image table, ids, or rows through `--format`.

use crate::args::image::ImagesArgs;
use crate::output::filter::{image_passes, keep_matching_references, Filters, IMAGE_KEYS};
use crate::output::images::{image_rows, shown_id, IMAGES};
use crate::output::listing::print_list;
use anyhow::{anyhow, Result};
use ctr_cli::image::local::open_store;
use ctr_cli::paths::Paths;
use std::io::Write;

pub fn ls(paths: &Paths, args: ImagesArgs) -> Result<i32> {
    let filters = Filters::parse(&args.filter, &IMAGE_KEYS)?;
    let store = open_store(paths)?;
    let find = |name: &str| store.lookup(name)?.ok_or_else(|| anyhow!("--filter: no such image: {name}"));
    let mut records = Vec::new();
    for mut record in store.list()? {
        if image_passes(&filters, &record, &find)? {
            keep_matching_references(&filters, &mut record);
            records.push(record);
        }
    }
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for record in &records {
            writeln!(out, "{}", shown_id(record, args.no_trunc))?;
        }
        return Ok(0);
    }
    print_list(&mut out, args.format.as_deref(), &IMAGES, &image_rows(&records, args.no_trunc))?;
    Ok(0)
}
