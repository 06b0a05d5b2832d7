//! `kill`: one signal to a running container's init, under its lock,
//! through a pidfd checked against the recorded start time, so it can
//! never reach a process that merely inherited the pid. A paused
//! container is thawed first, so that the signal is acted on.

use super::pause::thaw;
use super::record::Container;
use super::state::StateError;
use super::{ContainerError, Result};
use crate::helper_client::Helper;
use crate::paths::Paths;
use crate::process::liveness::{self, ProcessRef};
use nix::sys::signal::Signal;

pub fn kill(paths: &Paths, key: &str, signal: Signal) -> Result<()> {
    let (container, _) = Container::locate(paths, key)?;
    let (_lock, mut state) = container.lock(key)?;
    let not_running = || StateError::NotRunning { name: key.to_owned() };
    if !state.run_state().can_signal() {
        return Err(not_running().into());
    }
    thaw(&Helper::new(&paths.helper()), &container, &mut state)?;
    let pidfd = state.init.as_ref().and_then(ProcessRef::pidfd).ok_or_else(not_running)?;
    liveness::pidfd_send_signal(&pidfd, signal).map_err(|errno| ContainerError::Signal {
        key: key.to_owned(),
        signal,
        errno,
    })?;
    Ok(())
}
