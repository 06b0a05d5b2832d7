//! The user's own settings: `$XDG_CONFIG_HOME/ctr/ctr.toml` (by default
//! `~/.config/ctr/ctr.toml`). Today it holds the bounds on unpacking images
//! ([`crate::image::guard`]); limits that protect the host from other users
//! belong to the helper's root-owned config instead. A missing file means
//! the defaults; a key that is not known is an error, so that a typo in a
//! limit is loud rather than silently ignored.
//!
//! ```toml
//! [image]
//! max_unpack_ratio = 100   # decompressed bytes per compressed byte of a layer
//! max_unpack_size = "64g"  # decompressed bytes of one pull, load or import
//! unpack_timeout = "1h"    # per layer
//! ```
//! Each takes 0 for no limit.

use crate::error::IoError;
use serde::Deserialize;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// What the user allows; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Decompressed bytes per compressed byte of a layer.
    pub max_ratio: Option<u64>,
    /// Decompressed bytes of one pull, load or import, all layers together.
    pub max_size: Option<u64>,
    /// How long one layer may take.
    pub timeout: Option<Duration>,
}

pub const DEFAULT_MAX_RATIO: u64 = 100;
pub const DEFAULT_MAX_SIZE: u64 = 64 << 30;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

impl Default for UnpackLimits {
    fn default() -> Self {
        Self { max_ratio: Some(DEFAULT_MAX_RATIO), max_size: Some(DEFAULT_MAX_SIZE), timeout: Some(DEFAULT_TIMEOUT) }
    }
}

const MAX_LEN: u64 = 64 * 1024;

/// What is wrong with the user's settings.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is larger than {MAX_LEN} bytes")]
    TooLarge(PathBuf),
    /// A bad file: where, and what.
    #[error("in {path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
    #[error(transparent)]
    Io(#[from] IoError),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    image: Option<RawImage>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawImage {
    max_unpack_ratio: Option<u64>,
    max_unpack_size: Option<Size>,
    unpack_timeout: Option<Size>,
}

/// A number, or a string with a unit ("64g", "90m" for a duration).
#[derive(Deserialize)]
#[serde(untagged)]
enum Size {
    Number(u64),
    Text(String),
}

/// The file's path, whether or not it exists.
pub fn path() -> Option<PathBuf> {
    let absolute = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute());
    absolute("XDG_CONFIG_HOME").or_else(|| absolute("HOME").map(|h| h.join(".config"))).map(|d| d.join("ctr/ctr.toml"))
}

/// The path as errors show it.
pub fn shown_path() -> String {
    path().map_or_else(|| "$XDG_CONFIG_HOME/ctr/ctr.toml".to_owned(), |p| p.display().to_string())
}

/// The unpacking limits from the user's file, or the defaults without one.
pub fn unpack_limits() -> Result<UnpackLimits, ConfigError> {
    let Some(path) = path() else { return Ok(UnpackLimits::default()) };
    let text = match std::fs::File::open(&path) {
        Ok(file) => {
            let mut text = String::new();
            file.take(MAX_LEN + 1)
                .read_to_string(&mut text)
                .map_err(|e| IoError::new(format!("cannot read {}", path.display()), e))?;
            if text.len() as u64 > MAX_LEN {
                return Err(ConfigError::TooLarge(path));
            }
            text
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(UnpackLimits::default()),
        Err(e) => return Err(IoError::new(format!("cannot open {}", path.display()), e).into()),
    };
    parse(&text).map_err(|problem| ConfigError::Invalid { path, problem })
}

/// The limits a file's text sets, or what is wrong with it.
fn parse(text: &str) -> Result<UnpackLimits, String> {
    let raw: Raw = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    let image = raw.image.unwrap_or_default();
    let mut limits = UnpackLimits::default();
    if let Some(ratio) = image.max_unpack_ratio {
        limits.max_ratio = (ratio != 0).then_some(ratio);
    }
    if let Some(size) = image.max_unpack_size {
        let bytes = match size {
            Size::Number(n) => n,
            Size::Text(t) => ctr_core::limits::parse_bytes("max_unpack_size", &t).map_err(|e| e.to_string())?,
        };
        limits.max_size = (bytes != 0).then_some(bytes);
    }
    if let Some(timeout) = image.unpack_timeout {
        let duration = match timeout {
            Size::Number(secs) => Duration::from_secs(secs),
            Size::Text(t) if t.trim() == "0" => Duration::ZERO,
            Size::Text(t) => humantime::parse_duration(&t)
                .map_err(|e| format!("unpack_timeout {t:?}: {e}: use a duration like \"90s\", \"30m\" or \"2h\""))?,
        };
        limits.timeout = (!duration.is_zero()).then_some(duration);
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_settings() {
        assert_eq!(parse("").unwrap(), UnpackLimits::default());
        assert_eq!(parse("[image]").unwrap(), UnpackLimits::default());
    }

    #[test]
    fn reads_each_setting_and_zero_as_none() {
        let l = parse("[image]\nmax_unpack_ratio = 2000\nmax_unpack_size = \"2g\"\nunpack_timeout = \"90s\"").unwrap();
        assert_eq!(
            l,
            UnpackLimits { max_ratio: Some(2000), max_size: Some(2 << 30), timeout: Some(Duration::from_secs(90)) }
        );
        let l = parse("[image]\nmax_unpack_ratio = 0\nmax_unpack_size = 0\nunpack_timeout = 0").unwrap();
        assert_eq!(l, UnpackLimits { max_ratio: None, max_size: None, timeout: None });
        assert_eq!(parse("[image]\nmax_unpack_size = 1024").unwrap().max_size, Some(1024));
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        for bad in [
            "max_unpack_ratio = 5",
            "[image]\nmax_unpack_raito = 5",
            "[images]\nmax_unpack_ratio = 5",
            "[image]\nmax_unpack_ratio = -1",
            "[image]\nmax_unpack_size = \"lots\"",
            "[image]\nunpack_timeout = \"soon\"",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
