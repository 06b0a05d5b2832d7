//! `stop`: SIGTERM (or the container's `--stop-signal`), then SIGKILL once
//! the grace period (given, else its `--stop-timeout`, else 10 s) is over,
//! under the container's lock ([`crate::lock`]); a paused container is
//! thawed first. Signals go only through a pidfd checked against the
//! recorded start time. Returns once the exit is recorded (or settled, for
//! a container nobody waits on any more).

use super::pause::thaw;
use super::record::Container;
use super::settle::await_record;
use super::Result;
use crate::helper_client::Helper;
use crate::paths::Paths;
use crate::process::liveness::{self, ProcessRef};
use nix::sys::signal::Signal;
use std::time::Duration;

/// How long SIGKILL may take before stop gives up waiting on the process.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// How long a stopped container's monitor may take to end.
const MONITOR_WAIT: Duration = Duration::from_secs(5);

/// The grace period when neither `ctr stop -t` nor `--stop-timeout` gives one.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

pub fn stop(paths: &Paths, key: &str, grace: Option<Duration>) -> Result<()> {
    let helper = Helper::new(&paths.helper());
    let (container, _) = Container::locate(paths, key)?;
    let (lock, mut state) = container.lock(key)?;
    let signal = state.options.stop_signal.as_deref().and_then(|s| s.parse().ok()).unwrap_or(Signal::SIGTERM);
    let grace = grace.or(state.options.stop_timeout.map(Duration::from_secs)).unwrap_or(DEFAULT_GRACE);
    // No restart policy brings back what the user stopped.
    if !state.stopped_by_user {
        state.stopped_by_user = true;
        container.write_state(&state)?;
    }
    if state.run_state().can_signal() {
        thaw(&helper, &container, &mut state)?;
    }
    if let Some(pidfd) = state.init.as_ref().filter(|_| state.status.is_live()).and_then(ProcessRef::pidfd) {
        let _ = liveness::pidfd_send_signal(&pidfd, signal);
        if !liveness::wait_exit(&pidfd, Some(grace)) {
            let _ = liveness::pidfd_send_signal(&pidfd, Signal::SIGKILL);
            liveness::wait_exit(&pidfd, Some(KILL_WAIT));
        }
    }
    drop(lock);
    let state = await_record(paths, &helper, &container, key)?;
    // The monitor sees the user's stop and ends just after recording the
    // exit; a `start` (or `restart`) in between would take it for one in
    // its restart back-off.
    if let Some(monitor) = state.monitor.as_ref().and_then(ProcessRef::pidfd) {
        liveness::wait_exit(&monitor, Some(MONITOR_WAIT));
    }
    Ok(())
}
