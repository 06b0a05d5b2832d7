//! `restart`: `stop`, then `start` (a new monitor, the same writable layer).

use super::start::{start, StartOutcome};
use super::{invalid, Result};
use crate::paths::Paths;
use std::time::Duration;

pub fn restart(paths: &Paths, key: &str, grace: Duration) -> Result<()> {
    super::stop::stop(paths, key, Some(grace))?;
    match start(paths, key, false, false)? {
        StartOutcome::Started(_) => Ok(()),
        StartOutcome::Failed { message, .. } => invalid!("container {key} stopped but did not start again: {message}"),
    }
}
