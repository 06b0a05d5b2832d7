//! Resource limits as a command asks for them, and their check against
//! this host. The front end only parses the flags; naming a block device
//! by its node and comparing CPUs with those online happen here, so that
//! parsing stays pure and the host is read once, by the engine.

use super::{ContainerError, Result};
use ctr_core::limits::{DeviceRate, HostCpus, ResourceLimits};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Limits before the host has been consulted: block devices still by path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitRequest {
    /// Every limit but the per-device rates, whose lists stay empty here.
    pub limits: ResourceLimits,
    pub device_read_bps: Vec<DeviceRateRequest>,
    pub device_write_bps: Vec<DeviceRateRequest>,
}

/// `--device-read-bps`/`--device-write-bps`: a rate for a device node.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRateRequest {
    pub device: PathBuf,
    pub bytes_per_second: u64,
}

impl LimitRequest {
    /// Names each device by number and checks every limit against this
    /// host: CPUs and memory nodes online, block devices present.
    pub fn resolve(&self) -> Result<ResourceLimits> {
        let mut limits = self.limits.clone();
        limits.device_read_bps = device_rates("--device-read-bps", &self.device_read_bps)?;
        limits.device_write_bps = device_rates("--device-write-bps", &self.device_write_bps)?;
        limits.validate(&HostCpus::read(), |major, minor| {
            Path::new(&format!("/sys/dev/block/{major}:{minor}")).exists()
        })?;
        Ok(limits)
    }
}

fn device_rates(flag: &'static str, requests: &[DeviceRateRequest]) -> Result<Vec<DeviceRate>> {
    requests
        .iter()
        .map(|request| {
            let device = &request.device;
            let meta = std::fs::metadata(device).map_err(|source| ContainerError::DeviceNotFound {
                flag,
                device: device.clone(),
                source,
            })?;
            if !meta.file_type().is_block_device() {
                return Err(ContainerError::NotABlockDevice { flag, device: device.clone() });
            }
            Ok(DeviceRate {
                major: nix::sys::stat::major(meta.rdev()) as u32,
                minor: nix::sys::stat::minor(meta.rdev()) as u32,
                bytes_per_second: request.bytes_per_second,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_a_block_device_is_refused_by_name() {
        let request = LimitRequest {
            device_write_bps: vec![DeviceRateRequest { device: "/etc/passwd".into(), bytes_per_second: 1 << 20 }],
            ..Default::default()
        };
        let err = request.resolve().unwrap_err().to_string();
        assert!(err.contains("--device-write-bps") && err.contains("/etc/passwd"), "{err}");
        let missing = LimitRequest {
            device_read_bps: vec![DeviceRateRequest { device: "/dev/no-such-disk".into(), bytes_per_second: 1 }],
            ..Default::default()
        };
        assert!(matches!(missing.resolve(), Err(ContainerError::DeviceNotFound { .. })));
    }

    #[test]
    fn more_cpus_than_online_are_refused() {
        let quota = ctr_core::limits::CpuQuota { quota_us: 100_000 * 4096, period_us: 100_000 };
        let request = LimitRequest {
            limits: ResourceLimits { cpu_quota: Some(quota), ..Default::default() },
            ..Default::default()
        };
        assert!(matches!(request.resolve(), Err(ContainerError::Limit(_))));
    }
}
