//! `--log-opt`: how a container's json-file log rotates. Apart from
//! [`crate::logs`], which reads the container's record, so that the record
//! can hold these options.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// `--log-opt max-size=SIZE,max-file=N`: the log is rotated when it would
/// pass `max_size` bytes, keeping `max_files` files in all (json.log, then
/// json.log.1 and so on, oldest last). Bounded by default, unlike docker's
/// json-file: 10 MiB times 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOptions {
    pub max_size: u64,
    pub max_files: u32,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self { max_size: 10 << 20, max_files: 3 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --log-opt {0:?}: use max-size=SIZE (e.g. 10m, at least 1k) and max-file=N (1 to 100)")]
pub struct LogOptionError(String);

impl LogOptions {
    /// Docker's `--log-opt KEY=VALUE` items, each also a comma-separated list.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, LogOptionError> {
        let mut options = Self::default();
        for item in items.iter().flat_map(|i| i.as_ref().split(',')) {
            let bad = || LogOptionError(item.to_owned());
            match item.split_once('=').ok_or_else(bad)? {
                ("max-size", v) => {
                    options.max_size = ctr_core::limits::parse_bytes("--log-opt max-size", v).map_err(|_| bad())?;
                    if options.max_size < 1024 {
                        return Err(bad());
                    }
                }
                ("max-file", v) => {
                    options.max_files = v.parse().ok().filter(|n| (1..=100).contains(n)).ok_or_else(bad)?
                }
                _ => return Err(bad()),
            }
        }
        Ok(options)
    }
}

/// The rotated logs beside `path`, oldest first, then `path` itself.
pub fn log_files(path: &Path, options: LogOptions) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = (1..options.max_files).rev().map(|n| rotated(path, n)).filter(|p| p.exists()).collect();
    files.push(path.to_owned());
    files
}

pub(crate) fn rotated(path: &Path, n: u32) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    name.into()
}
