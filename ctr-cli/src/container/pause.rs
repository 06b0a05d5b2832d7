//! `pause` and `unpause`: every process of a running container frozen or
//! thawed through the cgroup freezer, which only the helper can write;
//! under the container's lock, as every change of its life is
//! ([`super::state`]).

use super::record::{Container, State};
use super::state::{RunState, Transition};
use super::Result;
use crate::helper_client::Helper;
use crate::paths::Paths;

/// Freezes (`frozen`) or thaws the container; returns its state.
pub fn pause(paths: &Paths, key: &str, frozen: bool) -> Result<State> {
    let helper = Helper::new(&paths.helper());
    let (container, _) = Container::locate(paths, key)?;
    let (_lock, mut state) = container.lock(key)?;
    let transition = if frozen { Transition::Pause } else { Transition::Unpause };
    let status = state.run_state().after(transition, &state.name)?;
    helper.freeze(&container.id, frozen)?;
    state.status = status;
    container.write_state(&state)?;
    Ok(state)
}

/// Thaws a paused container before it is signalled or removed (the
/// caller holds its lock): on the cgroup-v1 freezer a signal to a frozen
/// process waits until it is thawed, and its cgroup could not be emptied.
pub(super) fn thaw(helper: &Helper, container: &Container, state: &mut State) -> Result<()> {
    if state.run_state() != RunState::Paused {
        return Ok(());
    }
    helper.freeze(&container.id, false)?;
    state.status = state.run_state().after(Transition::Thaw, &state.name)?;
    container.write_state(state)?;
    Ok(())
}
