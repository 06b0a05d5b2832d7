//! `ctr stats`: live CPU, memory, network, block I/O and process counts.

use crate::args::container::StatsArgs;
use crate::output::listing::print_list;
use crate::output::stats::{row, STATS};
use anyhow::{bail, Result};
use ctr_cli::container::State;
use ctr_cli::paths::Paths;
use std::io::{IsTerminal, Write};
use std::time::Duration;

pub fn stats(paths: &Paths, args: StatsArgs) -> Result<i32> {
    let interval = if args.no_stream { Duration::from_millis(500) } else { Duration::from_secs(1) };
    let table = args.format.as_deref().is_none_or(|f| f.trim().starts_with("table"));
    let clear = table && !args.no_stream && std::io::stdout().is_terminal();
    loop {
        let states: Vec<State> = if args.containers.is_empty() {
            ctr_cli::container::list(paths)?.into_iter().filter(State::is_up).collect()
        } else {
            args.containers.iter().map(|k| running(paths, k)).collect::<Result<_>>()?
        };
        let rows: Vec<serde_json::Value> = ctr_cli::stats::measure(&states, interval).iter().map(row).collect();
        let mut out = std::io::stdout().lock();
        if clear {
            write!(out, "\x1b[2J\x1b[H")?;
        }
        print_list(&mut out, args.format.as_deref(), &STATS, &rows)?;
        out.flush()?;
        if args.no_stream {
            return Ok(0);
        }
    }
}

fn running(paths: &Paths, key: &str) -> Result<State> {
    let state = ctr_cli::container::find(paths, key)?;
    if !state.is_up() {
        bail!("container {} is not running", state.name);
    }
    Ok(state)
}
