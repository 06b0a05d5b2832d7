//! `pause` and `unpause`: every process of a running container frozen or
//! thawed through the cgroup freezer, which only the helper can write.

use super::record::{self, State};
use crate::helper_client::Helper;
use crate::paths::Paths;
use anyhow::{bail, Result};
use ctr_core::ids::ContainerId;

/// Freezes (`frozen`) or thaws the container; returns its state.
pub fn pause(paths: &Paths, key: &str, frozen: bool) -> Result<State> {
    let helper = Helper::new(&paths.helper());
    let state = record::find(paths, key)?;
    if !state.is_running() {
        bail!("container {} is not running", state.name);
    }
    helper.freeze(&ContainerId::parse(&state.id)?, frozen)?;
    Ok(state)
}
