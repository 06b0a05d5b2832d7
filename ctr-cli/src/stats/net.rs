//! A container's network counters for `ctr stats` (docker's NET I/O):
//! bytes received and transmitted by its interfaces other than `lo`, read
//! from `/proc/<init pid>/net/dev`, which shows the network namespace of
//! that process and is readable by the user who owns the container.

use crate::container::record::State;
use crate::process::liveness::ProcessRef;
use std::os::unix::fs::MetadataExt;

/// Bytes received and transmitted, summed over interfaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetBytes {
    pub rx: u64,
    pub tx: u64,
}

/// Sums the receive and transmit bytes of every interface but `lo` in the
/// text of /proc/net/dev: two header lines, then `name: rx_bytes rx_packets
/// ... (8 receive fields) tx_bytes ...`. Interface names cannot contain ':'
/// or spaces; lines that do not parse are skipped.
pub fn parse_net_dev(text: &str) -> NetBytes {
    let mut total = NetBytes::default();
    for line in text.lines() {
        let Some((name, counters)) = line.split_once(':') else { continue };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<u64> = match counters.split_whitespace().map(str::parse).collect() {
            Ok(fields) => fields,
            Err(_) => continue,
        };
        if let (Some(rx), Some(tx)) = (fields.first(), fields.get(8)) {
            total.rx = total.rx.saturating_add(*rx);
            total.tx = total.tx.saturating_add(*tx);
        }
    }
    total
}

/// The network namespace of a process, as (device, inode) of its ns link.
fn netns_of(pid: &str) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(format!("/proc/{pid}/ns/net")).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// Whether the container's init lives in the network namespace of whoever
/// started it (`--network host`). Every other mode gets a namespace of its
/// own, so its init's namespace differs from that of its monitor (`ctr run`
/// in the foreground, or the detached monitor), which stays in the
/// starter's; without a live monitor, ours is the best guess.
fn shares_starters_netns(state: &State, init: &ProcessRef) -> Option<bool> {
    let theirs = netns_of(&init.pid.to_string())?;
    let starter = state
        .monitor
        .as_ref()
        .filter(|m| m.is_alive())
        .and_then(|m| netns_of(&m.pid.to_string()))
        .or_else(|| netns_of("self"))?;
    Some(theirs == starter)
}

/// The container's counters now. `None` for `--network host`, whose
/// counters would be the host's; zero for a container whose counters
/// cannot be read (gone, or never started).
pub fn sample(state: &State) -> Option<NetBytes> {
    let Some(init) = state.init.as_ref() else { return Some(NetBytes::default()) };
    // A container on a bridge network always has a namespace of its own;
    // without one recorded it is `none` or `host`.
    if state.network.is_none() && shares_starters_netns(state, init) == Some(true) {
        return None;
    }
    let Ok(text) = std::fs::read_to_string(format!("/proc/{}/net/dev", init.pid)) else {
        return Some(NetBytes::default());
    };
    // The pid may have been reused while we read: then these counters are
    // someone else's.
    if !init.is_alive() {
        return Some(NetBytes::default());
    }
    Some(parse_net_dev(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    6386      58    0    0    0     0          0         0     6386      58    0    0    0     0       0          0
  ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  ifb1:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 324402765   11463    0    0    0     0          0         0   631073    6689    0    0    0     0       0          0
";

    #[test]
    fn sums_every_interface_but_lo() {
        assert_eq!(parse_net_dev(HOST), NetBytes { rx: 324_402_765, tx: 631_073 });
    }

    #[test]
    fn a_container_with_only_loopback_has_nothing() {
        let none = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     840      10    0    0    0     0          0         0      840      10    0    0    0     0       0          0
";
        assert_eq!(parse_net_dev(none), NetBytes::default());
        assert_eq!(parse_net_dev(""), NetBytes::default());
    }

    #[test]
    fn tolerates_glued_counters_and_skips_garbage() {
        // Old kernels printed large counters right after the colon.
        let text = "eth0:1234567890 5 0 0 0 0 0 0 42 1 0 0 0 0 0 0\n\
                    eth1: 10 1 0 0 0 0 0 0 20 1 0 0 0 0 0 0\n\
                    bad0: x y z\n\
                    short: 1 2 3\n";
        assert_eq!(parse_net_dev(text), NetBytes { rx: 1_234_567_900, tx: 62 });
    }

    #[test]
    fn a_container_that_never_started_reads_zero() {
        assert_eq!(sample(&State::default()), Some(NetBytes::default()));
    }
}
