//! `start`: starts a created or exited container again, detached, through
//! a new monitor, from the launch saved when it was created: same rootfs
//! and writable layer, same mounts and limits, new namespaces and cgroups
//! (a new helper `Spawn`). The saved launch lives beside the record in the
//! data directory, so a container survives a reboot and starts again.

use super::record::Container;
use super::saved_launch::load_launch;
use super::settle::settle_stale;
use super::{invalid, Result};
use crate::helper_client::Helper;
use crate::paths::Paths;
use crate::process::liveness::ProcessRef;
use crate::process::monitor::{self, Detached};
use std::os::unix::net::UnixStream;

/// How a start went.
pub enum StartOutcome {
    /// Its command runs (or it already ran); with `attach`, a connection to
    /// its monitor that carries its output, made before it started.
    Started(Option<UnixStream>),
    /// It could not start: docker's status and why.
    Failed { exit_code: i32, message: String },
}

/// With `unless_stopped` (boot units of `unless-stopped` containers), a
/// container that `ctr stop` stopped stays stopped.
pub fn start(paths: &Paths, key: &str, attach: bool, unless_stopped: bool) -> Result<StartOutcome> {
    let helper = Helper::new(&paths.helper());
    let (container, _) = Container::locate(paths, key)?;
    // A record left "running" by a reboot or a killed monitor is settled
    // first: its cgroup removed, its exit recorded as unknown.
    settle_stale(paths, &helper, &container)?;
    let (lock, mut state) = container.lock(key)?;
    if state.is_running() {
        drop(lock);
        let connection = if attach { Some(super::attach::connect(paths, &container)?) } else { None };
        return Ok(StartOutcome::Started(connection));
    }
    if unless_stopped && state.stopped_by_user {
        return Ok(StartOutcome::Started(None));
    }
    if state.monitor.as_ref().is_some_and(ProcessRef::is_alive) {
        invalid!("container {key} is restarting (its restart policy's back-off): wait, or `ctr stop` it first");
    }
    let (launch, interactive) = load_launch(&container)?;
    state.stopped_by_user = false;
    state.restart_count = 0;
    state.oom_killed = false;
    state.error = None;
    // The lock is held until the monitor reports: a second start waits,
    // then finds the container running.
    let outcome = monitor::start_detached(paths, &container, state, launch, interactive, attach)?;
    drop(lock);
    Ok(match outcome {
        (Detached::Started, connection) => StartOutcome::Started(connection),
        (Detached::Failed { exit_code, message }, _) => StartOutcome::Failed { exit_code, message },
    })
}
