//! `wait`: blocks until a container stops and its exit is recorded, then
//! gives its exit code.

use super::record::Container;
use super::settle::await_record;
use super::state::RunState;
use super::{ContainerError, Result};
use crate::helper_client::Helper;
use crate::paths::Paths;
use crate::process::liveness::{self, ProcessRef};

pub fn wait(paths: &Paths, key: &str) -> Result<i32> {
    let helper = Helper::new(&paths.helper());
    let (container, state) = Container::locate(paths, key)?;
    if let Some(pidfd) = state.init.as_ref().filter(|_| state.status.is_live()).and_then(ProcessRef::pidfd) {
        liveness::wait_exit(&pidfd, None);
    }
    let state = await_record(paths, &helper, &container, key)?;
    match state.run_state() {
        RunState::Exited(Some(code)) => Ok(code),
        RunState::Created => Err(ContainerError::NeverStarted(key.to_owned())),
        _ => Err(ContainerError::UnknownExit(key.to_owned())),
    }
}
