//! `create`: everything `run` does before the start (the rootfs, the
//! record, the name, the writable layer, and the launch saved for every
//! later start), then stops; `ctr start` starts it.

use super::run::{prepare, Prepared, RunRequest};
use super::Result;
use ctr_core::ids::ContainerId;

pub fn create(paths: &crate::paths::Paths, request: &RunRequest) -> Result<ContainerId> {
    let Prepared { container, .. } = prepare(paths, request)?;
    Ok(container.id)
}
