//! Resource limits: docker's flags parsed into validated values, and the
//! cgroup files (v1 and v2) they become. The helper writes only files that
//! [`render`] names, so the set of files it can write is closed: there is no
//! "write this value to that file" request.
//!
//! Conversions follow docker and crun: `--cpus 1.5` is a quota of 150000 µs
//! per 100000 µs period; `--cpu-shares` becomes `cpu.weight` on v2 as
//! `1 + ((shares - 2) * 9999) / 262142`; `--memory-swap` is memory plus
//! swap (v1 `memory.memsw.limit_in_bytes`), so v2's `memory.swap.max` gets
//! the difference; `--blkio-weight` (10-1000) becomes `io.weight` (1-10000)
//! as `1 + (weight - 10) * 9999 / 990`.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Docker refuses less memory than this: a container could not start.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;
pub const DEFAULT_CPU_PERIOD_US: u64 = 100_000;
const MIN_CPU_PERIOD_US: u64 = 1_000;
const MAX_CPU_PERIOD_US: u64 = 1_000_000;
const MIN_CPU_QUOTA_US: u64 = 1_000;
const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;
/// Each cpuset list names at most this many ranges.
const MAX_CPU_RANGES: usize = 64;
const MAX_THROTTLED_DEVICES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum LimitError {
    #[error("{flag}: cannot parse {value:?}: {why}")]
    Parse { flag: String, value: String, why: String },
    #[error("--memory {0} bytes is below the minimum of 6MiB")]
    MemoryTooSmall(u64),
    #[error("--memory-swap must be at least --memory (it is memory plus swap), or -1 for unlimited")]
    SwapBelowMemory,
    #[error("--memory-swap needs --memory")]
    SwapWithoutMemory,
    #[error("--memory-reservation must not exceed --memory")]
    ReservationAboveMemory,
    #[error("--cpu-period must be between 1000 and 1000000 microseconds, got {0}")]
    CpuPeriod(u64),
    #[error("--cpu-quota must be at least 1000 microseconds, got {0}")]
    CpuQuota(u64),
    #[error("--cpus and --cpu-quota cannot be used together")]
    CpusAndQuota,
    #[error("--cpus {requested} is more than the {online} CPUs online")]
    TooManyCpus { requested: String, online: usize },
    #[error("--cpu-shares must be between 2 and 262144, got {0}")]
    Shares(u64),
    #[error("--blkio-weight must be between 10 and 1000, got {0}")]
    BlkioWeight(u64),
    #[error("--pids-limit must be positive, or -1 for unlimited, got {0}")]
    Pids(i64),
    #[error("{flag} {list}: CPUs or memory nodes outside the online set {online}")]
    CpusetOutside { flag: String, list: String, online: String },
    #[error("too many devices to throttle (at most {MAX_THROTTLED_DEVICES})")]
    TooManyDevices,
    #[error("device {major}:{minor} is not a block device on this host")]
    NoSuchDevice { major: u32, minor: u32 },
    #[error("this kernel's cgroups have no {file}: {flag} is not supported on this host")]
    Unsupported { flag: String, file: String },
}

fn parse_err(flag: &str, value: &str, why: impl Into<String>) -> LimitError {
    LimitError::Parse { flag: flag.into(), value: value.into(), why: why.into() }
}

/// Parses docker's sizes: a number of bytes with an optional b, k, m, g
/// suffix (powers of 1024, case-insensitive, an optional trailing `b`).
pub fn parse_bytes(flag: &str, value: &str) -> Result<u64, LimitError> {
    let lower = value.trim().to_ascii_lowercase();
    let split = lower.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        "t" | "tb" => 1 << 40,
        _ => return Err(parse_err(flag, value, "use a number with an optional k, m, g or t suffix")),
    };
    let number: f64 = digits.parse().map_err(|_| parse_err(flag, value, "not a number"))?;
    let bytes = number * multiplier as f64;
    if !(bytes.is_finite() && bytes < u64::MAX as f64) {
        return Err(parse_err(flag, value, "out of range"));
    }
    Ok(bytes as u64)
}

/// A validated list of CPU or memory-node numbers, like `0-3,6`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CpuList(Vec<(u32, u32)>);

impl CpuList {
    pub fn parse(flag: &str, s: &str) -> Result<Self, LimitError> {
        let mut ranges = Vec::new();
        for part in s.trim().split(',') {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let a: u32 = a.trim().parse().map_err(|_| parse_err(flag, s, "use a list like 0-3,6"))?;
            let b: u32 = b.trim().parse().map_err(|_| parse_err(flag, s, "use a list like 0-3,6"))?;
            if a > b || b > 8191 {
                return Err(parse_err(flag, s, "ranges go low-high, below 8192"));
            }
            // Checked as it grows: a 64 KiB frame of "0," would otherwise
            // build 32768 ranges before being refused.
            if ranges.len() == MAX_CPU_RANGES {
                return Err(parse_err(flag, s, "too many ranges"));
            }
            ranges.push((a, b));
        }
        Ok(Self(ranges))
    }

    pub fn contains(&self, n: u32) -> bool {
        self.0.iter().any(|&(a, b)| a <= n && n <= b)
    }

    /// Every member is also in `other`.
    pub fn is_subset_of(&self, other: &CpuList) -> bool {
        self.0.iter().all(|&(a, b)| (a..=b).all(|n| other.contains(n)))
    }

    pub fn count(&self) -> usize {
        let mut all: Vec<u32> = self.0.iter().flat_map(|&(a, b)| a..=b).collect();
        all.sort_unstable();
        all.dedup();
        all.len()
    }
}

impl TryFrom<String> for CpuList {
    type Error = LimitError;
    fn try_from(s: String) -> Result<Self, LimitError> {
        Self::parse("cpuset", &s)
    }
}

impl From<CpuList> for String {
    fn from(l: CpuList) -> String {
        l.to_string()
    }
}

impl std::fmt::Display for CpuList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> =
            self.0.iter().map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
        f.write_str(&parts.join(","))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRate {
    pub major: u32,
    pub minor: u32,
    pub bytes_per_second: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SwapLimit {
    /// Memory plus swap, in bytes.
    Total(u64),
    Unlimited,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuQuota {
    pub quota_us: u64,
    pub period_us: u64,
}

/// `pids_limit` for "no limit" (`--pids-limit -1`), where `None` means
/// "none asked for", which gets the helper's `default_pids_limit`.
pub const PIDS_UNLIMITED: u64 = u64::MAX;

/// Every limit a container can be given. `Default` asks for none (the
/// helper still applies its default pids limit).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceLimits {
    pub memory: Option<u64>,
    pub memory_swap: Option<SwapLimit>,
    pub memory_reservation: Option<u64>,
    pub cpu_quota: Option<CpuQuota>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<CpuList>,
    pub cpuset_mems: Option<CpuList>,
    pub pids_limit: Option<u64>,
    pub blkio_weight: Option<u16>,
    #[serde(deserialize_with = "crate::frame::bounded_vec")]
    pub device_read_bps: Vec<DeviceRate>,
    #[serde(deserialize_with = "crate::frame::bounded_vec")]
    pub device_write_bps: Vec<DeviceRate>,
}

/// What the host offers, against which limits are checked.
#[derive(Debug, Clone)]
pub struct HostCpus {
    pub online: CpuList,
    pub online_mems: CpuList,
}

impl HostCpus {
    /// Reads /sys/devices/system/{cpu,node}/online.
    pub fn read() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).ok().and_then(|s| CpuList::parse("online", s.trim()).ok());
        Self {
            online: read("/sys/devices/system/cpu/online").unwrap_or(CpuList(vec![(0, 0)])),
            online_mems: read("/sys/devices/system/node/online").unwrap_or(CpuList(vec![(0, 0)])),
        }
    }
}

/// `--cpus`: a decimal number of CPUs, as a quota over the default period.
pub fn cpus_to_quota(value: &str) -> Result<CpuQuota, LimitError> {
    let cpus: f64 = value.trim().parse().map_err(|_| parse_err("--cpus", value, "use a number like 0.5 or 2"))?;
    if !(cpus.is_finite() && cpus > 0.0) {
        return Err(parse_err("--cpus", value, "must be more than 0"));
    }
    let quota_us = (cpus * DEFAULT_CPU_PERIOD_US as f64).round() as u64;
    Ok(CpuQuota { quota_us, period_us: DEFAULT_CPU_PERIOD_US })
}

impl ResourceLimits {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Every rule that holds regardless of the cgroup version. The helper
    /// runs this again on what it receives; `block_device_exists` is asked
    /// about each throttled device.
    pub fn validate(&self, host: &HostCpus, block_device_exists: impl Fn(u32, u32) -> bool) -> Result<(), LimitError> {
        if let Some(m) = self.memory {
            if m < MIN_MEMORY {
                return Err(LimitError::MemoryTooSmall(m));
            }
        }
        match (self.memory_swap, self.memory) {
            (Some(SwapLimit::Total(_)), None) => return Err(LimitError::SwapWithoutMemory),
            (Some(SwapLimit::Total(total)), Some(m)) if total < m => return Err(LimitError::SwapBelowMemory),
            _ => {}
        }
        if let (Some(r), Some(m)) = (self.memory_reservation, self.memory) {
            if r > m {
                return Err(LimitError::ReservationAboveMemory);
            }
        }
        if let Some(q) = self.cpu_quota {
            if !(MIN_CPU_PERIOD_US..=MAX_CPU_PERIOD_US).contains(&q.period_us) {
                return Err(LimitError::CpuPeriod(q.period_us));
            }
            if q.quota_us < MIN_CPU_QUOTA_US {
                return Err(LimitError::CpuQuota(q.quota_us));
            }
            let online = host.online.count();
            if q.quota_us > q.period_us * online as u64 {
                let requested = format!("{:.2}", q.quota_us as f64 / q.period_us as f64);
                return Err(LimitError::TooManyCpus { requested, online });
            }
        }
        if let Some(s) = self.cpu_shares {
            if !(MIN_SHARES..=MAX_SHARES).contains(&s) {
                return Err(LimitError::Shares(s));
            }
        }
        for (flag, list, online) in [
            ("--cpuset-cpus", &self.cpuset_cpus, &host.online),
            ("--cpuset-mems", &self.cpuset_mems, &host.online_mems),
        ] {
            if let Some(list) = list {
                if !list.is_subset_of(online) {
                    return Err(LimitError::CpusetOutside {
                        flag: flag.into(),
                        list: list.to_string(),
                        online: online.to_string(),
                    });
                }
            }
        }
        if let Some(p) = self.pids_limit.filter(|&p| p != PIDS_UNLIMITED) {
            if p == 0 || p > i64::MAX as u64 {
                return Err(LimitError::Pids(p as i64));
            }
        }
        if let Some(w) = self.blkio_weight {
            if !(10..=1000).contains(&w) {
                return Err(LimitError::BlkioWeight(w.into()));
            }
        }
        if self.device_read_bps.len() + self.device_write_bps.len() > MAX_THROTTLED_DEVICES {
            return Err(LimitError::TooManyDevices);
        }
        for d in self.device_read_bps.iter().chain(&self.device_write_bps) {
            if !block_device_exists(d.major, d.minor) {
                return Err(LimitError::NoSuchDevice { major: d.major, minor: d.minor });
            }
        }
        Ok(())
    }
}

/// The only cgroup files the helper writes limits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitFile {
    // cgroup v1
    MemoryLimitInBytes,
    MemoryMemswLimitInBytes,
    MemorySoftLimitInBytes,
    CpuCfsPeriodUs,
    CpuCfsQuotaUs,
    CpuShares,
    CpusetCpus,
    CpusetMems,
    PidsMax,
    BlkioWeight,
    BlkioThrottleReadBps,
    BlkioThrottleWriteBps,
    // cgroup v2
    MemoryMax,
    MemorySwapMax,
    MemoryLow,
    CpuMax,
    CpuWeight,
    IoWeight,
    IoMax,
}

impl LimitFile {
    pub fn file_name(self) -> &'static str {
        use LimitFile::*;
        match self {
            MemoryLimitInBytes => "memory.limit_in_bytes",
            MemoryMemswLimitInBytes => "memory.memsw.limit_in_bytes",
            MemorySoftLimitInBytes => "memory.soft_limit_in_bytes",
            CpuCfsPeriodUs => "cpu.cfs_period_us",
            CpuCfsQuotaUs => "cpu.cfs_quota_us",
            CpuShares => "cpu.shares",
            CpusetCpus => "cpuset.cpus",
            CpusetMems => "cpuset.mems",
            PidsMax => "pids.max",
            BlkioWeight => "blkio.weight",
            BlkioThrottleReadBps => "blkio.throttle.read_bps_device",
            BlkioThrottleWriteBps => "blkio.throttle.write_bps_device",
            MemoryMax => "memory.max",
            MemorySwapMax => "memory.swap.max",
            MemoryLow => "memory.low",
            CpuMax => "cpu.max",
            CpuWeight => "cpu.weight",
            IoWeight => "io.weight",
            IoMax => "io.max",
        }
    }

    /// The controller the file belongs to (its v1 hierarchy).
    pub fn controller(self) -> &'static str {
        self.file_name().split('.').next().expect("every name has a dot")
    }

    /// The v1 controller that covers the same flags (v2's io is v1's blkio).
    pub fn v1_controller(self) -> &'static str {
        match self.controller() {
            "io" => "blkio",
            other => other,
        }
    }

    /// The flag a user would have to drop if the file is missing.
    pub fn flag(self) -> &'static str {
        use LimitFile::*;
        match self {
            MemoryLimitInBytes | MemoryMax => "--memory",
            MemoryMemswLimitInBytes | MemorySwapMax => "--memory-swap",
            MemorySoftLimitInBytes | MemoryLow => "--memory-reservation",
            CpuCfsPeriodUs | CpuCfsQuotaUs | CpuMax => "--cpus/--cpu-quota",
            CpuShares | CpuWeight => "--cpu-shares",
            CpusetCpus => "--cpuset-cpus",
            CpusetMems => "--cpuset-mems",
            PidsMax => "--pids-limit",
            BlkioWeight | IoWeight => "--blkio-weight",
            BlkioThrottleReadBps => "--device-read-bps",
            BlkioThrottleWriteBps => "--device-write-bps",
            IoMax => "--device-read-bps/--device-write-bps",
        }
    }
}

/// crun's conversion of cpu shares (2..262144) to cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + ((shares.clamp(MIN_SHARES, MAX_SHARES) - 2) * 9999) / 262_142
}

/// blkio.weight (10..1000) to io.weight (1..10000).
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight.clamp(10, 1000)) - 10) * 9999 / 990
}

/// The writes, in order, that apply `limits` on a v1 (`v2 == false`) or
/// v2 hierarchy. Order matters on v1: the memory limit goes before the
/// memory+swap limit, which may not be below it.
pub fn render(limits: &ResourceLimits, v2: bool) -> Vec<(LimitFile, String)> {
    use LimitFile::*;
    let mut w = Vec::new();
    if v2 {
        if let Some(m) = limits.memory {
            w.push((MemoryMax, m.to_string()));
        }
        match (limits.memory_swap, limits.memory) {
            (Some(SwapLimit::Total(total)), Some(m)) => w.push((MemorySwapMax, (total - m).to_string())),
            (Some(SwapLimit::Unlimited), _) => w.push((MemorySwapMax, "max".into())),
            // Docker's default: as much swap as memory.
            (None, Some(m)) => w.push((MemorySwapMax, m.to_string())),
            _ => {}
        }
        if let Some(r) = limits.memory_reservation {
            w.push((MemoryLow, r.to_string()));
        }
        if let Some(q) = limits.cpu_quota {
            w.push((CpuMax, format!("{} {}", q.quota_us, q.period_us)));
        }
        if let Some(s) = limits.cpu_shares {
            w.push((CpuWeight, shares_to_weight(s).to_string()));
        }
        if let Some(b) = limits.blkio_weight {
            w.push((IoWeight, format!("default {}", blkio_to_io_weight(b))));
        }
        for line in io_max_lines(&limits.device_read_bps, &limits.device_write_bps) {
            w.push((IoMax, line));
        }
    } else {
        if let Some(m) = limits.memory {
            w.push((MemoryLimitInBytes, m.to_string()));
        }
        match (limits.memory_swap, limits.memory) {
            (Some(SwapLimit::Total(total)), Some(_)) => w.push((MemoryMemswLimitInBytes, total.to_string())),
            (Some(SwapLimit::Unlimited), _) => w.push((MemoryMemswLimitInBytes, "-1".into())),
            _ => {}
        }
        if let Some(r) = limits.memory_reservation {
            w.push((MemorySoftLimitInBytes, r.to_string()));
        }
        if let Some(q) = limits.cpu_quota {
            w.push((CpuCfsPeriodUs, q.period_us.to_string()));
            w.push((CpuCfsQuotaUs, q.quota_us.to_string()));
        }
        if let Some(s) = limits.cpu_shares {
            w.push((CpuShares, s.to_string()));
        }
        if let Some(b) = limits.blkio_weight {
            w.push((BlkioWeight, b.to_string()));
        }
        for d in &limits.device_read_bps {
            w.push((BlkioThrottleReadBps, format!("{}:{} {}", d.major, d.minor, d.bytes_per_second)));
        }
        for d in &limits.device_write_bps {
            w.push((BlkioThrottleWriteBps, format!("{}:{} {}", d.major, d.minor, d.bytes_per_second)));
        }
    }
    // Same files in both versions.
    if let Some(c) = &limits.cpuset_cpus {
        w.push((CpusetCpus, c.to_string()));
    }
    if let Some(m) = &limits.cpuset_mems {
        w.push((CpusetMems, m.to_string()));
    }
    match limits.pids_limit {
        Some(PIDS_UNLIMITED) => w.push((PidsMax, "max".into())),
        Some(p) => w.push((PidsMax, p.to_string())),
        None => {}
    }
    w
}

/// One `io.max` line per device, with both directions where given.
fn io_max_lines(read: &[DeviceRate], write: &[DeviceRate]) -> Vec<String> {
    let mut devices: Vec<(u32, u32)> = read.iter().chain(write).map(|d| (d.major, d.minor)).collect();
    devices.sort_unstable();
    devices.dedup();
    devices
        .into_iter()
        .map(|(major, minor)| {
            let mut line = format!("{major}:{minor}");
            if let Some(r) = read.iter().find(|d| (d.major, d.minor) == (major, minor)) {
                let _ = write!(line, " rbps={}", r.bytes_per_second);
            }
            if let Some(w) = write.iter().find(|d| (d.major, d.minor) == (major, minor)) {
                let _ = write!(line, " wbps={}", w.bytes_per_second);
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostCpus {
        HostCpus { online: CpuList::parse("t", "0-1").unwrap(), online_mems: CpuList::parse("t", "0").unwrap() }
    }

    #[test]
    fn parses_docker_sizes() {
        assert_eq!(parse_bytes("--memory", "32m").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("--memory", "32M").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("--memory", "1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("--memory", "512k").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("--memory", "1048576").unwrap(), 1 << 20);
        assert_eq!(parse_bytes("--memory", "64mb").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("--memory", "1.5g").unwrap(), 3 << 29);
        assert!(parse_bytes("--memory", "lots").is_err());
        assert!(parse_bytes("--memory", "-5m").is_err());
        assert!(parse_bytes("--memory", "5q").is_err());
    }

    #[test]
    fn cpus_become_a_quota() {
        assert_eq!(cpus_to_quota("0.5").unwrap(), CpuQuota { quota_us: 50_000, period_us: 100_000 });
        assert_eq!(cpus_to_quota("2").unwrap().quota_us, 200_000);
        assert!(cpus_to_quota("0").is_err());
        assert!(cpus_to_quota("x").is_err());
    }

    #[test]
    fn refuses_impossible_values() {
        let v = |l: ResourceLimits| l.validate(&host(), |_, _| false);
        assert_eq!(
            v(ResourceLimits { memory: Some(5 << 20), ..Default::default() }),
            Err(LimitError::MemoryTooSmall(5 << 20))
        );
        assert!(v(ResourceLimits { memory: Some(6 << 20), ..Default::default() }).is_ok());
        let swap_low = ResourceLimits {
            memory: Some(64 << 20),
            memory_swap: Some(SwapLimit::Total(32 << 20)),
            ..Default::default()
        };
        assert_eq!(v(swap_low), Err(LimitError::SwapBelowMemory));
        let three_cpus = ResourceLimits { cpu_quota: Some(cpus_to_quota("3").unwrap()), ..Default::default() };
        assert!(matches!(v(three_cpus), Err(LimitError::TooManyCpus { online: 2, .. })));
        let outside = ResourceLimits { cpuset_cpus: Some(CpuList::parse("t", "0,5").unwrap()), ..Default::default() };
        assert!(matches!(v(outside), Err(LimitError::CpusetOutside { .. })));
        assert!(v(ResourceLimits { cpu_shares: Some(1), ..Default::default() }).is_err());
        assert!(v(ResourceLimits { blkio_weight: Some(5), ..Default::default() }).is_err());
        assert!(v(ResourceLimits { pids_limit: Some(0), ..Default::default() }).is_err());
        let dev = DeviceRate { major: 8, minor: 0, bytes_per_second: 1 << 20 };
        assert!(matches!(
            v(ResourceLimits { device_write_bps: vec![dev], ..Default::default() }),
            Err(LimitError::NoSuchDevice { major: 8, minor: 0 })
        ));
        let ok = ResourceLimits { device_write_bps: vec![dev], ..Default::default() };
        assert!(ok.validate(&host(), |major, minor| (major, minor) == (8, 0)).is_ok());
    }

    #[test]
    fn cpu_lists() {
        let l = CpuList::parse("t", "0-3,6").unwrap();
        assert_eq!(l.to_string(), "0-3,6");
        assert_eq!(l.count(), 5);
        assert!(l.contains(6) && !l.contains(5));
        assert!(CpuList::parse("t", "3-1").is_err());
        assert!(CpuList::parse("t", "a").is_err());
        let many = |n: usize| vec!["0"; n].join(",");
        assert!(CpuList::parse("t", &many(MAX_CPU_RANGES)).is_ok());
        assert!(CpuList::parse("t", &many(MAX_CPU_RANGES + 1)).is_err());
        assert!(CpuList::parse("t", "0").unwrap().is_subset_of(&l));
    }

    #[test]
    fn renders_v1_files_in_order() {
        let limits = ResourceLimits {
            memory: Some(32 << 20),
            memory_swap: Some(SwapLimit::Total(64 << 20)),
            cpu_quota: Some(cpus_to_quota("0.5").unwrap()),
            cpu_shares: Some(512),
            pids_limit: Some(32),
            device_write_bps: vec![DeviceRate { major: 7, minor: 0, bytes_per_second: 1 << 20 }],
            ..Default::default()
        };
        let got: Vec<(&str, String)> = render(&limits, false).into_iter().map(|(f, v)| (f.file_name(), v)).collect();
        assert_eq!(
            got,
            vec![
                ("memory.limit_in_bytes", "33554432".into()),
                ("memory.memsw.limit_in_bytes", "67108864".into()),
                ("cpu.cfs_period_us", "100000".into()),
                ("cpu.cfs_quota_us", "50000".into()),
                ("cpu.shares", "512".into()),
                ("blkio.throttle.write_bps_device", "7:0 1048576".into()),
                ("pids.max", "32".into()),
            ]
        );
    }

    #[test]
    fn unlimited_pids_is_valid_and_written_as_max() {
        let limits = ResourceLimits { pids_limit: Some(PIDS_UNLIMITED), ..Default::default() };
        assert!(limits.validate(&host(), |_, _| true).is_ok());
        for v2 in [false, true] {
            let got: Vec<(&str, String)> = render(&limits, v2).into_iter().map(|(f, v)| (f.file_name(), v)).collect();
            assert_eq!(got, vec![("pids.max", "max".to_owned())]);
        }
    }

    #[test]
    fn renders_v2_files_with_crun_conversions() {
        let limits = ResourceLimits {
            memory: Some(32 << 20),
            memory_swap: Some(SwapLimit::Total(64 << 20)),
            cpu_quota: Some(cpus_to_quota("1.5").unwrap()),
            cpu_shares: Some(1024),
            blkio_weight: Some(500),
            device_read_bps: vec![DeviceRate { major: 7, minor: 0, bytes_per_second: 2 }],
            device_write_bps: vec![DeviceRate { major: 7, minor: 0, bytes_per_second: 3 }],
            cpuset_cpus: Some(CpuList::parse("t", "0").unwrap()),
            ..Default::default()
        };
        let got: Vec<(&str, String)> = render(&limits, true).into_iter().map(|(f, v)| (f.file_name(), v)).collect();
        assert_eq!(
            got,
            vec![
                ("memory.max", "33554432".into()),
                ("memory.swap.max", "33554432".into()),
                ("cpu.max", "150000 100000".into()),
                ("cpu.weight", "39".into()),
                ("io.weight", "default 4950".into()),
                ("io.max", "7:0 rbps=2 wbps=3".into()),
                ("cpuset.cpus", "0".into()),
            ]
        );
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
    }

    #[test]
    fn memory_alone_gets_equal_swap_on_v2() {
        let limits = ResourceLimits { memory: Some(32 << 20), ..Default::default() };
        let files: Vec<&str> = render(&limits, true).into_iter().map(|(f, _)| f.file_name()).collect();
        assert_eq!(files, vec!["memory.max", "memory.swap.max"]);
        assert_eq!(LimitFile::MemoryMax.controller(), "memory");
        assert_eq!(LimitFile::BlkioThrottleWriteBps.controller(), "blkio");
        assert_eq!(LimitFile::IoMax.v1_controller(), "blkio");
    }
}
