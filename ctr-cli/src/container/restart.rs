//! `restart`: `stop`, then `start` (a new monitor, the same writable layer).

use super::start::{start, StartOutcome};
use crate::paths::Paths;
use anyhow::{bail, Result};
use std::time::Duration;

pub fn restart(paths: &Paths, key: &str, grace: Duration) -> Result<()> {
    super::stop::stop(paths, key, Some(grace))?;
    match start(paths, key, false, false)? {
        StartOutcome::Started(_) => Ok(()),
        StartOutcome::Failed { message, .. } => bail!("container {key} stopped but did not start again: {message}"),
    }
}
