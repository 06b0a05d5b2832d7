//! `ctr run`'s resource flags, named and parsed as docker's, turned into the
//! validated limits that the helper writes to the container's cgroup.

use anyhow::{bail, Context, Result};
use ctr_cli::container::limits::{DeviceRateRequest, LimitRequest};
use ctr_core::limits::{
    cpus_to_quota, parse_bytes, CpuList, CpuQuota, ResourceLimits, SwapLimit, DEFAULT_CPU_PERIOD_US,
};

#[derive(clap::Args, Debug, Default)]
pub struct LimitArgs {
    /// Memory limit (e.g. 32m, 1g; at least 6m).
    #[arg(short = 'm', long, value_name = "BYTES", help_heading = "Resources")]
    pub memory: Option<String>,
    /// Memory plus swap (-1: unlimited swap).
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true, help_heading = "Resources")]
    pub memory_swap: Option<String>,
    /// Soft memory limit, reclaimed first under pressure.
    #[arg(long, value_name = "BYTES", help_heading = "Resources")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs (e.g. 0.5): a CFS quota over a 100ms period.
    #[arg(long, value_name = "N", help_heading = "Resources")]
    pub cpus: Option<String>,
    /// CFS period in microseconds (with --cpu-quota).
    #[arg(long, value_name = "US", help_heading = "Resources")]
    pub cpu_period: Option<u64>,
    /// CFS quota in microseconds per period.
    #[arg(long, value_name = "US", help_heading = "Resources")]
    pub cpu_quota: Option<u64>,
    /// Relative CPU weight (2-262144, default 1024; cpu.weight on cgroup v2).
    #[arg(short = 'c', long, value_name = "SHARES", help_heading = "Resources")]
    pub cpu_shares: Option<u64>,
    /// CPUs the container may run on (e.g. 0-1,3).
    #[arg(long, value_name = "LIST", help_heading = "Resources")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use (e.g. 0).
    #[arg(long, value_name = "LIST", help_heading = "Resources")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long, value_name = "N", allow_hyphen_values = true, help_heading = "Resources")]
    pub pids_limit: Option<i64>,
    /// Relative block I/O weight (10-1000).
    #[arg(long, value_name = "WEIGHT", help_heading = "Resources")]
    pub blkio_weight: Option<u16>,
    /// Limit reads from a block device: DEVICE:RATE, e.g. /dev/sda:1mb.
    #[arg(long, value_name = "DEVICE:RATE", help_heading = "Resources")]
    pub device_read_bps: Vec<String>,
    /// Limit writes to a block device: DEVICE:RATE, e.g. /dev/loop0:10mb.
    #[arg(long, value_name = "DEVICE:RATE", help_heading = "Resources")]
    pub device_write_bps: Vec<String>,
    /// Adjust the container's OOM-killer preference (-1000 to 1000; lowering needs privilege).
    #[arg(long, value_name = "N", allow_hyphen_values = true, help_heading = "Resources")]
    pub oom_score_adj: Option<i32>,
}

impl LimitArgs {
    /// Parses every flag; what needs the host (block devices by node, CPUs
    /// online) is checked by the engine when the limits are applied.
    pub fn to_request(&self) -> Result<LimitRequest> {
        let bytes = |flag: &str, v: &Option<String>| v.as_deref().map(|v| parse_bytes(flag, v)).transpose();
        let memory_swap = match self.memory_swap.as_deref() {
            None => None,
            Some("-1") => Some(SwapLimit::Unlimited),
            Some(v) => Some(SwapLimit::Total(parse_bytes("--memory-swap", v)?)),
        };
        let cpu_quota = match (&self.cpus, self.cpu_quota) {
            (Some(_), Some(_)) => bail!("--cpus and --cpu-quota cannot be used together"),
            (Some(cpus), None) => Some(cpus_to_quota(cpus)?),
            (None, Some(quota_us)) => {
                Some(CpuQuota { quota_us, period_us: self.cpu_period.unwrap_or(DEFAULT_CPU_PERIOD_US) })
            }
            (None, None) if self.cpu_period.is_some() => bail!("--cpu-period needs --cpu-quota"),
            (None, None) => None,
        };
        let pids_limit = match self.pids_limit {
            None => None,
            // Overrides the helper's default_pids_limit.
            Some(-1) => Some(ctr_core::limits::PIDS_UNLIMITED),
            Some(n) if n > 0 => Some(n as u64),
            Some(n) => bail!("--pids-limit must be positive, or -1 for unlimited, got {n}"),
        };
        if let Some(adj) = self.oom_score_adj {
            if !(-1000..=1000).contains(&adj) {
                bail!("--oom-score-adj must be between -1000 and 1000, got {adj}");
            }
        }
        let limits = ResourceLimits {
            memory: bytes("--memory", &self.memory)?,
            memory_swap,
            memory_reservation: bytes("--memory-reservation", &self.memory_reservation)?,
            cpu_quota,
            cpu_shares: self.cpu_shares,
            cpuset_cpus: self.cpuset_cpus.as_deref().map(|l| CpuList::parse("--cpuset-cpus", l)).transpose()?,
            cpuset_mems: self.cpuset_mems.as_deref().map(|l| CpuList::parse("--cpuset-mems", l)).transpose()?,
            pids_limit,
            blkio_weight: self.blkio_weight,
            device_read_bps: Vec::new(),
            device_write_bps: Vec::new(),
        };
        let rates = |flag: &str, values: &[String]| values.iter().map(|v| device_rate(flag, v)).collect::<Result<_>>();
        Ok(LimitRequest {
            limits,
            device_read_bps: rates("--device-read-bps", &self.device_read_bps)?,
            device_write_bps: rates("--device-write-bps", &self.device_write_bps)?,
        })
    }
}

/// DEVICE:RATE, the device named by its node.
fn device_rate(flag: &str, value: &str) -> Result<DeviceRateRequest> {
    let (device, rate) =
        value.rsplit_once(':').with_context(|| format!("{flag} {value}: use DEVICE:RATE, e.g. /dev/sda:1mb"))?;
    if !device.starts_with('/') {
        bail!("{flag} {value}: name the device by its path, e.g. /dev/sda:1mb");
    }
    Ok(DeviceRateRequest { device: device.into(), bytes_per_second: parse_bytes(flag, rate)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_flags_without_reading_the_host() {
        let args = LimitArgs {
            memory: Some("32m".into()),
            cpus: Some("0.5".into()),
            pids_limit: Some(32),
            device_write_bps: vec!["/dev/sdz:1mb".into()],
            ..Default::default()
        };
        let request = args.to_request().unwrap();
        let l = &request.limits;
        assert_eq!(l.memory, Some(32 << 20));
        assert_eq!(l.cpu_quota, Some(CpuQuota { quota_us: 50_000, period_us: 100_000 }));
        assert_eq!(l.pids_limit, Some(32));
        // A device this host may not have is still parsed; the engine checks it.
        assert_eq!(
            request.device_write_bps,
            vec![DeviceRateRequest { device: "/dev/sdz".into(), bytes_per_second: 1 << 20 }]
        );
        assert!(LimitArgs { cpus: Some("1".into()), cpu_quota: Some(5000), ..Default::default() }
            .to_request()
            .is_err());
        assert!(LimitArgs { device_write_bps: vec!["sda:1mb".into()], ..Default::default() }.to_request().is_err());
        assert!(LimitArgs { device_read_bps: vec!["/dev/sda".into()], ..Default::default() }.to_request().is_err());
        assert!(LimitArgs { pids_limit: Some(0), ..Default::default() }.to_request().is_err());
        let unlimited =
            LimitArgs { pids_limit: Some(-1), ..Default::default() }.to_request().unwrap().limits.pids_limit;
        assert_eq!(unlimited, Some(ctr_core::limits::PIDS_UNLIMITED));
    }
}
