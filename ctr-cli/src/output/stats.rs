//! `ctr stats` rows, with docker's `--format` field names, and its table.

use super::listing::Listing;
use super::units::{binary_size, human_size};
use ctr_cli::stats::net::NetBytes;
use ctr_cli::stats::Reading;

/// `docker stats`'s own table.
pub const STATS: Listing = Listing {
    default: "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
    headers: &[
        ("ID", "CONTAINER ID"),
        ("Container", "CONTAINER"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ],
};

/// NET I/O: "--" for `--network host` (its counters would be the host's).
fn net_io(net: Option<NetBytes>) -> String {
    net.map_or_else(|| "--".to_owned(), |n| format!("{} / {}", human_size(n.rx), human_size(n.tx)))
}

/// One row of `ctr stats`, with docker's `--format json` keys.
pub fn row(r: &Reading) -> serde_json::Value {
    serde_json::json!({
        "ID": &r.id[..12.min(r.id.len())], "Container": &r.id[..12.min(r.id.len())], "Name": r.name, "CPUPerc": format!("{:.2}%", r.cpu_percent),
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
