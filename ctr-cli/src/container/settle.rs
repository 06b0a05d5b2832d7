//! After a container's init is gone, its exit must be recorded by whoever
//! waits on it (its monitor, or `ctr run`); if that is gone too (killed,
//! or the machine rebooted), the record is settled here: exited with an
//! unknown code, cgroup removed, and with --rm the container removed, as
//! its monitor would have done. Every step is idempotent.

use super::record::{Container, State};
use super::{ContainerError, Result};
use crate::helper_client::Helper;
use crate::launch;
use crate::paths::Paths;
use crate::process::liveness::ProcessRef;
use std::time::{Duration, Instant};

/// Waits for the exit to be recorded, or settles it ourselves once nobody
/// is left to record it. Returns the final state.
pub(super) fn await_record(paths: &Paths, helper: &Helper, container: &Container, key: &str) -> Result<State> {
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        let Some(state) = container.read_state()? else {
            return Err(ContainerError::RemovedWhileWaiting(key.to_owned()));
        };
        if !state.status.is_live() {
            return Ok(state);
        }
        let monitor_alive = state.monitor.as_ref().is_some_and(ProcessRef::is_alive);
        if !monitor_alive || Instant::now() > give_up {
            settle_stale(paths, helper, container)?;
            return container.read_state()?.ok_or_else(|| ContainerError::RemovedWhileWaiting(key.to_owned()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A container recorded as running whose init and monitor are both gone:
/// record it as exited with an unknown code and remove its cgroup (and
/// with --rm, the container), as its monitor would have.
pub(super) fn settle_stale(paths: &Paths, helper: &Helper, container: &Container) -> Result<()> {
    let Some(mut state) = container.read_state()? else { return Ok(()) };
    let init_alive = state.init.as_ref().is_some_and(ProcessRef::is_alive);
    let monitor_alive = state.monitor.as_ref().is_some_and(ProcessRef::is_alive);
    if !state.status.is_live() || init_alive || monitor_alive {
        return Ok(());
    }
    let rm = state.auto_remove;
    Ok(launch::finish(paths, helper, container, &mut state, None, true, rm)?)
}
