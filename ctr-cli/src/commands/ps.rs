//! `ctr ps`: containers (running ones; -a or a status filter for all), as
//! docker lists them.

use crate::args::container::PsArgs;
use crate::output::containers::{ps_row, PS};
use crate::output::filter::{container_passes, Filters, CONTAINER_KEYS};
use crate::output::listing::print_list;
use anyhow::Result;
use ctr_cli::container::State;
use ctr_cli::image::local::open_store;
use ctr_cli::paths::Paths;
use std::io::Write;

pub fn ps(paths: &Paths, args: PsArgs) -> Result<i32> {
    let filters = Filters::parse(&args.filter, &CONTAINER_KEYS)?;
    let all = args.all || filters.has("status") || filters.has("exited");
    let store = if filters.has("ancestor") { Some(open_store(paths)?) } else { None };
    let find = |key: &str| ctr_cli::container::find(paths, key).map_err(anyhow::Error::from);
    let mut states: Vec<State> = Vec::new();
    for s in ctr_cli::container::list(paths)?.into_iter().filter(|s| all || s.is_up()) {
        let image_names = match (&store, &s.image_id) {
            (Some(store), Some(id)) => store.lookup(id)?.map(|r| r.references).unwrap_or_default(),
            _ => Vec::new(),
        };
        if container_passes(&filters, &s, &find, &image_names)? {
            states.push(s);
        }
    }
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for s in &states {
            writeln!(out, "{}", if args.no_trunc { &s.id } else { s.short_id() })?;
        }
        return Ok(0);
    }
    let rows: Vec<serde_json::Value> = states.iter().map(|s| ps_row(s, args.no_trunc)).collect();
    print_list(&mut out, args.format.as_deref(), &PS, &rows)?;
    Ok(0)
}
