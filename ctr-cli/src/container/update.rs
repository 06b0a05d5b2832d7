//! `update`: new resource limits for a container. A running one gets them
//! at once, through the helper's `Update` (the same closed set of cgroup
//! files and the same validation as at its start); every container keeps
//! them in its record and saved launch, for its later starts.

use super::record::Container;
use super::saved_launch::{load_launch, save_launch};
use super::Result;
use crate::helper_client::Helper;
use crate::paths::Paths;
use ctr_core::limits::ResourceLimits;

/// `limits` come from [`super::limits::LimitRequest::resolve`], once for
/// every container named, so a bad request touches none of them.
pub fn update(paths: &Paths, key: &str, limits: &ResourceLimits) -> Result<()> {
    let (container, _) = Container::locate(paths, key)?;
    let (_lock, mut state) = container.lock(key)?;
    if state.is_running() {
        Helper::new(&paths.helper()).update(&container.id, limits.clone())?;
    }
    merge(&mut state.limits, limits);
    let (mut launch, interactive) = load_launch(&container)?;
    merge(&mut launch.limits, limits);
    save_launch(&container, &launch, interactive)?;
    Ok(container.write_state(&state)?)
}

/// The limits given replace those in force; the others stay.
fn merge(into: &mut ResourceLimits, new: &ResourceLimits) {
    fn take<T: Clone>(into: &mut Option<T>, new: &Option<T>) {
        if new.is_some() {
            into.clone_from(new);
        }
    }
    take(&mut into.memory, &new.memory);
    take(&mut into.memory_swap, &new.memory_swap);
    take(&mut into.memory_reservation, &new.memory_reservation);
    take(&mut into.cpu_quota, &new.cpu_quota);
    take(&mut into.cpu_shares, &new.cpu_shares);
    take(&mut into.cpuset_cpus, &new.cpuset_cpus);
    take(&mut into.cpuset_mems, &new.cpuset_mems);
    take(&mut into.pids_limit, &new.pids_limit);
    take(&mut into.blkio_weight, &new.blkio_weight);
    if !new.device_read_bps.is_empty() {
        into.device_read_bps.clone_from(&new.device_read_bps);
    }
    if !new.device_write_bps.is_empty() {
        into.device_write_bps.clone_from(&new.device_write_bps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_given_limits_change() {
        let mut limits = ResourceLimits { memory: Some(64 << 20), pids_limit: Some(100), ..Default::default() };
        merge(&mut limits, &ResourceLimits { memory: Some(128 << 20), ..Default::default() });
        assert_eq!((limits.memory, limits.pids_limit), (Some(128 << 20), Some(100)));
    }
}
