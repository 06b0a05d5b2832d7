//! The launch a container is started from (spec, network request,
//! limits, and whether it keeps stdin open), saved beside its record at
//! `create` for every later start: by `ctr start`, and by its monitor's
//! restarts.

use super::record::{write_replacing, Container, RecordError};
use crate::error::{IoContext, IoError};
use crate::launch::Launch;
use serde::Deserialize;

const LAUNCH_FILE: &str = "launch.json";

#[derive(Deserialize)]
struct SavedLaunch {
    launch: Launch,
    /// Started with -i: its stdin stays open for `ctr attach`.
    interactive: bool,
}

/// Writes what the container is started from, for every later start.
pub(crate) fn save_launch(container: &Container, launch: &Launch, interactive: bool) -> Result<(), IoError> {
    let saved = serde_json::json!({ "launch": launch, "interactive": interactive });
    let bytes = serde_json::to_vec(&saved).expect("a launch serializes");
    write_replacing(&container.state_dir.join(LAUNCH_FILE), &bytes, container.durable)
}

/// The saved launch and whether the container keeps stdin open.
pub(crate) fn load_launch(container: &Container) -> Result<(Launch, bool), RecordError> {
    let path = container.state_dir.join(LAUNCH_FILE);
    let bytes = std::fs::read(&path).with_io_context(|| {
        format!("read {}: the container was made by an older ctr and cannot be started again", path.display())
    })?;
    let saved: SavedLaunch =
        serde_json::from_slice(&bytes).map_err(|source| RecordError::Corrupt { path: path.clone(), source })?;
    Ok((saved.launch, saved.interactive))
}
