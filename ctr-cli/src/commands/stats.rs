//! `ctr stats`: live CPU, memory, network, block I/O and process counts.

use crate::args::container::StatsArgs;
use crate::output::table::write_table;
use crate::output::units::{binary_size, human_size};
use anyhow::{bail, Result};
use ctr_cli::container::State;
use ctr_cli::paths::Paths;
use ctr_cli::stats::net::NetBytes;
use ctr_cli::stats::Reading;
use std::io::{IsTerminal, Write};
use std::time::Duration;

pub fn stats(paths: &Paths, args: StatsArgs) -> Result<i32> {
    let interval = if args.no_stream { Duration::from_millis(500) } else { Duration::from_secs(1) };
    let json = args.format.as_deref() == Some("json");
    let clear = !json && !args.no_stream && std::io::stdout().is_terminal();
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
        if json {
            for r in &rows {
                writeln!(out, "{r}")?;
            }
        } else {
            let header =
                ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"];
            let mut table = vec![header.map(String::from)];
            for r in &rows {
                let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
                table.push([
                    s("ID"),
                    s("Name"),
                    s("CPUPerc"),
                    s("MemUsage"),
                    s("MemPerc"),
                    s("NetIO"),
                    s("BlockIO"),
                    r["PIDs"].to_string(),
                ]);
            }
            write_table(&mut out, &table)?;
        }
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

/// NET I/O: "--" for `--network host` (its counters would be the host's).
fn net_io(net: Option<NetBytes>) -> String {
    net.map_or_else(|| "--".to_owned(), |n| format!("{} / {}", human_size(n.rx), human_size(n.tx)))
}

/// One row of `ctr stats`, with docker's `--format json` keys.
fn row(r: &Reading) -> serde_json::Value {
    serde_json::json!({
        "ID": &r.id[..12.min(r.id.len())], "Name": r.name, "CPUPerc": format!("{:.2}%", r.cpu_percent),
        "MemUsage": format!("{} / {}", binary_size(r.memory_bytes), binary_size(r.memory_limit)),
        "MemPerc": format!("{:.2}%", r.memory_percent),
        "NetIO": net_io(r.net), "NetRxBytes": r.net.map(|n| n.rx), "NetTxBytes": r.net.map(|n| n.tx),
        "BlockIO": format!("{} / {}", human_size(r.block_read_bytes), human_size(r.block_write_bytes)),
        "PIDs": r.pids, "CPUNanos": r.cpu_ns, "MemBytes": r.memory_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_io_reads_like_dockers_or_dashes_for_host() {
        assert_eq!(net_io(Some(NetBytes { rx: 1200, tx: 648 })), "1.2kB / 648B");
        assert_eq!(net_io(Some(NetBytes::default())), "0B / 0B");
        assert_eq!(net_io(None), "--");
    }
}
