//! `ctr history IMAGE`.

use crate::args::moving::HistoryArgs;
use anyhow::Result;
use ctr_cli::image::{history, local::open_store, short_id};
use ctr_cli::paths::Paths;
use ctr_cli::units::{human_duration, human_size};

pub fn history(paths: &Paths, args: &HistoryArgs) -> Result<i32> {
    let (id, entries) = history::history(&open_store(paths)?, &args.image)?;
    let image = if args.no_trunc { id.clone() } else { short_id(&id).to_owned() };
    if args.quiet {
        println!("{image}");
        return Ok(0);
    }
    let mut rows = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"].map(String::from).to_vec()];
    for (i, e) in entries.into_iter().enumerate() {
        let created =
            e.created.and_then(|t| t.elapsed().ok()).map_or("N/A".into(), |d| format!("{} ago", human_duration(d)));
        let mut by = e.created_by.replace('\n', " ");
        if !args.no_trunc && by.chars().count() > 45 {
            by = by.chars().take(44).collect::<String>() + "…";
        }
        let shown = if i == 0 { image.clone() } else { "<missing>".into() };
        rows.push(vec![shown, created, by, human_size(e.size), e.comment]);
    }
    crate::output::table::write_rows(&mut std::io::stdout().lock(), &rows)?;
    Ok(0)
}
