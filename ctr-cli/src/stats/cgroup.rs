//! Reading a container's cgroup files, which are world-readable: usage for
//! `ctr stats`, and whether the OOM killer struck. Works on v1 (each
//! controller in its hierarchy) and v2 (one directory).

use ctr_core::protocol::CgroupDir;
use std::path::{Path, PathBuf};

/// One reading of a container's counters.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Sample {
    /// Total CPU time used, in nanoseconds.
    pub cpu_ns: u64,
    pub memory_bytes: u64,
    /// None: no limit.
    pub memory_limit: Option<u64>,
    pub pids: u64,
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
}

fn dir_for(dirs: &[CgroupDir], controller: &str) -> Option<PathBuf> {
    dirs.iter()
        .find(|d| !d.v2 && d.controllers.iter().any(|c| c == controller))
        .or_else(|| dirs.iter().find(|d| d.v2 && Path::new(&d.path).join(format!("{controller}.stat")).exists()))
        .or_else(|| dirs.iter().find(|d| d.v2))
        .map(|d| PathBuf::from(&d.path))
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

fn number(dir: &Path, file: &str) -> Option<u64> {
    read(dir, file)?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file such as cpu.stat.
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A memory limit file's value; v1 writes "unlimited" as a huge number.
fn limit(text: &str) -> Option<u64> {
    let t = text.trim();
    if t == "max" {
        return None;
    }
    t.parse::<u64>().ok().filter(|&v| v < (1 << 60))
}

pub fn sample(dirs: &[CgroupDir]) -> Sample {
    let mut s = Sample::default();
    if let Some(d) = dir_for(dirs, "cpuacct") {
        s.cpu_ns = number(&d, "cpuacct.usage")
            .or_else(|| read(&d, "cpu.stat").and_then(|t| keyed(&t, "usage_usec")).map(|us| us * 1000))
            .unwrap_or(0);
    }
    if let Some(d) = dir_for(dirs, "memory") {
        s.memory_bytes = number(&d, "memory.usage_in_bytes").or_else(|| number(&d, "memory.current")).unwrap_or(0);
        s.memory_limit = read(&d, "memory.limit_in_bytes").or_else(|| read(&d, "memory.max")).and_then(|t| limit(&t));
    }
    if let Some(d) = dir_for(dirs, "pids") {
        s.pids = number(&d, "pids.current").unwrap_or(0);
    }
    if let Some(d) = dir_for(dirs, "blkio") {
        if let Some(text) = read(&d, "blkio.throttle.io_service_bytes") {
            for line in text.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                match (f.get(1), f.get(2).and_then(|v| v.parse::<u64>().ok())) {
                    (Some(&"Read"), Some(v)) => s.block_read_bytes += v,
                    (Some(&"Write"), Some(v)) => s.block_write_bytes += v,
                    _ => {}
                }
            }
        } else if let Some(text) = read(&d, "io.stat") {
            for field in text.split_whitespace() {
                if let Some(v) = field.strip_prefix("rbytes=").and_then(|v| v.parse::<u64>().ok()) {
                    s.block_read_bytes += v;
                }
                if let Some(v) = field.strip_prefix("wbytes=").and_then(|v| v.parse::<u64>().ok()) {
                    s.block_write_bytes += v;
                }
            }
        }
    }
    s
}

/// Whether the kernel's OOM killer killed a process in the container:
/// `oom_kill` in v1 memory.oom_control or v2 memory.events.
pub fn oom_killed(dirs: &[CgroupDir]) -> bool {
    let Some(d) = dir_for(dirs, "memory") else { return false };
    ["memory.oom_control", "memory.events"]
        .iter()
        .filter_map(|f| read(&d, f))
        .any(|text| keyed(&text, "oom_kill").is_some_and(|n| n > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(files: &[(&str, &str)], v2: bool, controllers: &[&str]) -> (tempfile::TempDir, CgroupDir) {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let d = CgroupDir {
            v2,
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
            path: dir.path().to_str().unwrap().into(),
        };
        (dir, d)
    }

    #[test]
    fn reads_v2_counters() {
        let (_t, d) = fake(
            &[
                ("cpu.stat", "usage_usec 1500\nuser_usec 1000\n"),
                ("memory.current", "4096\n"),
                ("memory.max", "max\n"),
                ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
                ("pids.current", "3\n"),
                ("io.stat", "7:0 rbytes=100 wbytes=200 rios=1 wios=2\n8:0 rbytes=1 wbytes=2\n"),
            ],
            true,
            &[],
        );
        let s = sample(std::slice::from_ref(&d));
        assert_eq!(
            s,
            Sample {
                cpu_ns: 1_500_000,
                memory_bytes: 4096,
                memory_limit: None,
                pids: 3,
                block_read_bytes: 101,
                block_write_bytes: 202
            }
        );
        assert!(oom_killed(&[d]));
    }

    #[test]
    fn reads_v1_counters() {
        let (_a, cpu) = fake(&[("cpuacct.usage", "123\n")], false, &["cpuacct"]);
        let (_b, mem) = fake(
            &[
                ("memory.usage_in_bytes", "10\n"),
                ("memory.limit_in_bytes", "33554432\n"),
                ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"),
            ],
            false,
            &["memory"],
        );
        let (_c, blk) = fake(
            &[("blkio.throttle.io_service_bytes", "7:0 Read 5\n7:0 Write 6\n7:0 Total 11\nTotal 11\n")],
            false,
            &["blkio"],
        );
        let dirs = [cpu, mem, blk];
        let s = sample(&dirs);
        assert_eq!(
            (s.cpu_ns, s.memory_bytes, s.memory_limit, s.block_read_bytes, s.block_write_bytes),
            (123, 10, Some(32 << 20), 5, 6)
        );
        assert!(!oom_killed(&dirs));
        assert_eq!(limit("9223372036854771712"), None);
    }
}
