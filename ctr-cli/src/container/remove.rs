//! `rm`: a container's processes (with `force`), cgroup, writable layer,
//! log, state and name; then waits for its monitor to be gone, so that
//! nothing of it is left when it returns. A paused container needs no
//! thaw here: the helper thaws a frozen cgroup before it empties it.

use super::record::Container;
use super::Result;
use crate::helper_client::Helper;
use crate::launch;
use crate::paths::Paths;
use crate::process::liveness::{self, ProcessRef};
use nix::sys::signal::Signal;
use std::time::Duration;

/// How long the removed container's init and monitor may take to go.
const EXIT_WAIT: Duration = Duration::from_secs(10);

pub fn remove(paths: &Paths, key: &str, force: bool) -> Result<()> {
    let helper = Helper::new(&paths.helper());
    let (container, _) = Container::locate(paths, key)?;
    remove_located(&helper, &container, key, force)?;
    // The monitor removes its attach socket when it ends; a killed one
    // cannot.
    match std::fs::remove_file(crate::process::monitor::attach_socket(paths, &container.id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(crate::error::IoError::new("remove the container's attach socket", e).into())
        }
        _ => Ok(()),
    }
}

pub(super) fn remove_located(helper: &Helper, container: &Container, key: &str, force: bool) -> Result<()> {
    let (lock, state) = container.lock(key)?;
    state.run_state().check_remove(force, key)?;
    let init = state.init.as_ref().and_then(ProcessRef::pidfd);
    if let Some(pidfd) = &init {
        let _ = liveness::pidfd_send_signal(pidfd, Signal::SIGKILL);
    }
    // Kills whatever is left in the cgroup, even of a stale container.
    helper.remove_cgroup(&container.id)?;
    launch::remove_container(helper, container)?;
    drop(lock);
    for pidfd in init.iter().chain(state.monitor.as_ref().and_then(ProcessRef::pidfd).as_ref()) {
        liveness::wait_exit(pidfd, Some(EXIT_WAIT));
    }
    Ok(())
}
