//! `kill`: one signal to a running container's init, under its lock,
//! through a pidfd checked against the recorded start time, so it can
//! never reach a process that merely inherited the pid.

use super::record::Container;
use crate::paths::Paths;
use crate::process::liveness::{self, ProcessRef};
use anyhow::{anyhow, bail, Result};
use nix::sys::signal::Signal;

pub fn kill(paths: &Paths, key: &str, signal: Signal) -> Result<()> {
    let (container, _) = Container::locate(paths, key)?;
    let (_lock, state) = container.lock(key)?;
    let pidfd = state.init.as_ref().filter(|_| state.is_running()).and_then(ProcessRef::pidfd);
    let Some(pidfd) = pidfd else { bail!("container {key} is not running") };
    liveness::pidfd_send_signal(&pidfd, signal).map_err(|e| anyhow!("cannot send {signal} to {key}: {e}"))?;
    Ok(())
}
