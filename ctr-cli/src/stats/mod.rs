//! `ctr stats`: a container's CPU, memory, block I/O, network and process
//! counts over an interval, from its world-readable cgroup files
//! ([`cgroup`]) and its init's /proc/PID/net/dev ([`net`]). The numbers
//! only: how they read is the command line's business.

pub mod cgroup;
pub mod net;

use crate::container::record::State;
use cgroup::Sample;
use net::NetBytes;
use std::time::{Duration, Instant};

/// One container's use over one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub id: String,
    pub name: String,
    /// Of one CPU: 200.0 is two CPUs busy throughout.
    pub cpu_percent: f64,
    /// Total CPU time used, in nanoseconds.
    pub cpu_ns: u64,
    pub memory_bytes: u64,
    /// The container's limit, or the host's memory without one (docker's).
    pub memory_limit: u64,
    pub memory_percent: f64,
    /// `None` for `--network host`, whose counters would be the host's.
    pub net: Option<NetBytes>,
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
    pub pids: u64,
}

/// Samples every container, waits `interval`, samples again.
pub fn measure(states: &[State], interval: Duration) -> Vec<Reading> {
    let before: Vec<Sample> = states.iter().map(|s| cgroup::sample(&s.cgroups)).collect();
    let start = Instant::now();
    std::thread::sleep(interval);
    let elapsed = start.elapsed();
    states
        .iter()
        .zip(&before)
        .map(|(s, b)| reading(s, b, &cgroup::sample(&s.cgroups), net::sample(s), elapsed))
        .collect()
}

/// One reading from two samples `elapsed` apart and the network counters
/// at the second.
fn reading(state: &State, before: &Sample, after: &Sample, net: Option<NetBytes>, elapsed: Duration) -> Reading {
    let cpu_percent = (after.cpu_ns.saturating_sub(before.cpu_ns)) as f64 / elapsed.as_nanos().max(1) as f64 * 100.0;
    let memory_limit = after.memory_limit.unwrap_or_else(host_memory);
    let memory_percent = if memory_limit > 0 { after.memory_bytes as f64 / memory_limit as f64 * 100.0 } else { 0.0 };
    Reading {
        id: state.id.clone(),
        name: state.name.clone(),
        cpu_percent,
        cpu_ns: after.cpu_ns,
        memory_bytes: after.memory_bytes,
        memory_limit,
        memory_percent,
        net,
        block_read_bytes: after.block_read_bytes,
        block_write_bytes: after.block_write_bytes,
        pids: after.pids,
    }
}

/// The host's memory, docker's "limit" for a container without one.
fn host_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    mem_total(&text)
}

/// `MemTotal:  24684284 kB` in /proc/meminfo, in bytes.
fn mem_total(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:")?.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_total() {
        assert_eq!(mem_total("MemTotal:       24684284 kB\nMemFree: 1 kB\n"), 24684284 * 1024);
        assert_eq!(mem_total(""), 0);
    }

    #[test]
    fn cpu_and_memory_shares() {
        let state = State { id: "c".repeat(64), name: "web".into(), ..State::default() };
        let before = Sample { cpu_ns: 1_000_000_000, ..Sample::default() };
        let after = Sample { cpu_ns: 1_500_000_000, memory_bytes: 25, memory_limit: Some(100), ..Sample::default() };
        let r = reading(&state, &before, &after, None, Duration::from_secs(1));
        assert!((r.cpu_percent - 50.0).abs() < 1e-9, "{}", r.cpu_percent);
        assert!((r.memory_percent - 25.0).abs() < 1e-9);
        assert_eq!((r.memory_limit, r.net), (100, None));
    }
}
