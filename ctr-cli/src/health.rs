//! Health checks, as docker's: a command run in the container every
//! interval (`--health-cmd`, or the image's `HEALTHCHECK`), its status
//! (starting, healthy, unhealthy), the failing streak and the last five
//! results kept in the container's record under its lock, for `ps`,
//! `inspect` and `--filter health=`. The checks run in a thread of the
//! process that waits on the container (its monitor, or a foreground
//! `ctr run`): [`crate::process::health_check`].

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A health flag that cannot be used as given.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HealthError(String);

macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err(HealthError(format!($($arg)*)))
    };
}

const SECOND: u64 = 1_000_000_000;
/// Docker's defaults.
const DEFAULT_INTERVAL: u64 = 30 * SECOND;
const DEFAULT_TIMEOUT: u64 = 30 * SECOND;
const DEFAULT_RETRIES: u32 = 3;
/// Results kept, and bytes of output kept of each (docker's).
const KEPT_RESULTS: usize = 5;
pub const KEPT_OUTPUT: usize = 4096;

/// A health check in docker's form (the image config's `Healthcheck`):
/// `Test` is `["CMD", ARG...]`, `["CMD-SHELL", COMMAND]` or `["NONE"]`;
/// times in nanoseconds, 0 for the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default)]
    pub test: Vec<String>,
    #[serde(default)]
    pub interval: u64,
    #[serde(default)]
    pub timeout: u64,
    #[serde(default)]
    pub start_period: u64,
    #[serde(default)]
    pub retries: u32,
}

impl HealthConfig {
    /// The command a probe runs, or None for `NONE` (or nothing).
    pub fn command(&self) -> Option<Vec<String>> {
        match self.test.split_first() {
            Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
            Some((kind, [shell])) if kind == "CMD-SHELL" => Some(vec!["/bin/sh".into(), "-c".into(), shell.clone()]),
            _ => None,
        }
    }

    pub fn interval(&self) -> Duration {
        Duration::from_nanos(if self.interval == 0 { DEFAULT_INTERVAL } else { self.interval })
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_nanos(if self.timeout == 0 { DEFAULT_TIMEOUT } else { self.timeout })
    }

    pub fn retries(&self) -> u32 {
        if self.retries == 0 {
            DEFAULT_RETRIES
        } else {
            self.retries
        }
    }
}

/// `run`'s health flags, as given.
#[derive(Debug, Clone, Default)]
pub struct HealthFlags {
    pub cmd: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub retries: Option<u32>,
    pub none: bool,
}

/// Go's duration syntax, as docker takes it: `1m30s`, `500ms`, `2h`, `0`.
pub fn parse_duration(flag: &str, text: &str) -> Result<u64, HealthError> {
    let bad = || HealthError(format!("{flag} {text:?}: give a duration such as 30s, 1m30s or 500ms"));
    if text == "0" {
        return Ok(0);
    }
    let mut rest = text;
    let mut total: u128 = 0;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (number, after) = rest.split_at(digits);
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        let value: f64 = number.parse().map_err(|_| bad())?;
        total += (value * scale) as u128;
        rest = next;
    }
    u64::try_from(total).map_err(|_| bad())
}

/// The check a container gets: the image's, with each flag given in its
/// place (docker's per-field override), none with `--no-healthcheck` or
/// a `NONE` test.
pub fn resolve(image: Option<&HealthConfig>, flags: &HealthFlags) -> Result<Option<HealthConfig>, HealthError> {
    let any_flag = flags.cmd.is_some()
        || flags.interval.is_some()
        || flags.timeout.is_some()
        || flags.start_period.is_some()
        || flags.retries.is_some();
    if flags.none {
        if any_flag {
            invalid!("--no-healthcheck conflicts with the --health-* options");
        }
        return Ok(None);
    }
    let mut config = image.cloned().unwrap_or_default();
    if let Some(cmd) = &flags.cmd {
        if cmd.trim().is_empty() {
            invalid!("--health-cmd is empty: give the command that exits 0 when the container is healthy");
        }
        config.test = vec!["CMD-SHELL".into(), cmd.clone()];
    }
    let positive = |flag: &str, text: &Option<String>| -> Result<Option<u64>, HealthError> {
        let Some(text) = text else { return Ok(None) };
        let ns = parse_duration(flag, text)?;
        if ns != 0 && ns < 1_000_000 {
            invalid!("{flag} {text}: at least 1ms (or 0 for the default)");
        }
        Ok(Some(ns))
    };
    if let Some(ns) = positive("--health-interval", &flags.interval)? {
        config.interval = ns;
    }
    if let Some(ns) = positive("--health-timeout", &flags.timeout)? {
        config.timeout = ns;
    }
    if let Some(ns) = positive("--health-start-period", &flags.start_period)? {
        config.start_period = ns;
    }
    if let Some(retries) = flags.retries {
        config.retries = retries;
    }
    if config.command().is_none() {
        if any_flag && image.is_none_or(|i| i.command().is_none()) && flags.cmd.is_none() {
            invalid!("--health-* options need a check: give --health-cmd (the image has no HEALTHCHECK)");
        }
        return Ok(None);
    }
    Ok(Some(config))
}

/// Docker's health states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// One probe's result (docker's `.State.Health.Log` entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthResult {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// What the record keeps (docker's `.State.Health`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthState {
    pub status: HealthStatus,
    pub failing_streak: u32,
    pub log: Vec<HealthResult>,
}

impl HealthState {
    /// Takes a probe's result: a pass makes it healthy; a failure after
    /// the start period adds to the streak, which at `retries` makes it
    /// unhealthy (failures within the start period do not count).
    pub fn record(&mut self, result: HealthResult, config: &HealthConfig, in_start_period: bool) {
        if result.exit_code == 0 {
            self.status = HealthStatus::Healthy;
            self.failing_streak = 0;
        } else if !in_start_period {
            self.failing_streak += 1;
            if self.failing_streak >= config.retries() {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.log.push(result);
        if self.log.len() > KEPT_RESULTS {
            self.log.remove(0);
        }
    }
}

/// Docker's `ps` STATUS suffix: ` (healthy)`, ` (health: starting)`,
/// ` (unhealthy)`.
pub fn status_suffix(health: Option<&HealthState>) -> String {
    match health.map(|h| h.status) {
        None => String::new(),
        Some(HealthStatus::Starting) => " (health: starting)".into(),
        Some(status) => format!(" ({})", status.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("f", "30s").unwrap(), 30 * SECOND);
        assert_eq!(parse_duration("f", "1m30s").unwrap(), 90 * SECOND);
        assert_eq!(parse_duration("f", "500ms").unwrap(), SECOND / 2);
        assert_eq!(parse_duration("f", "1.5h").unwrap(), 5400 * SECOND);
        assert_eq!(parse_duration("f", "0").unwrap(), 0);
        for bad in ["", "30", "s", "1x", "-1s", "1m30"] {
            assert!(parse_duration("--health-interval", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_override_the_images_check_field_by_field() {
        let image = HealthConfig {
            test: vec!["CMD".into(), "/check".into()],
            interval: 5 * SECOND,
            retries: 7,
            ..HealthConfig::default()
        };
        let flags = HealthFlags { interval: Some("1s".into()), ..HealthFlags::default() };
        let got = resolve(Some(&image), &flags).unwrap().unwrap();
        assert_eq!((got.test, got.interval, got.retries), (image.test.clone(), SECOND, 7));
        let flags = HealthFlags { cmd: Some("true".into()), ..HealthFlags::default() };
        assert_eq!(resolve(None, &flags).unwrap().unwrap().command().unwrap(), ["/bin/sh", "-c", "true"]);
        assert_eq!(resolve(Some(&image), &HealthFlags { none: true, ..HealthFlags::default() }).unwrap(), None);
        let both = HealthFlags { none: true, cmd: Some("true".into()), ..HealthFlags::default() };
        assert!(resolve(None, &both).is_err());
        let no_cmd = HealthFlags { retries: Some(2), ..HealthFlags::default() };
        assert!(resolve(None, &no_cmd).unwrap_err().to_string().contains("--health-cmd"));
        let none = HealthConfig { test: vec!["NONE".into()], ..HealthConfig::default() };
        assert_eq!(resolve(Some(&none), &HealthFlags::default()).unwrap(), None);
        assert_eq!(resolve(None, &HealthFlags::default()).unwrap(), None);
    }

    #[test]
    fn streaks_start_period_and_kept_results() {
        let config = HealthConfig { retries: 2, ..HealthConfig::default() };
        let result =
            |code| HealthResult { start: String::new(), end: String::new(), exit_code: code, output: String::new() };
        let mut h = HealthState::default();
        h.record(result(1), &config, true);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        h.record(result(1), &config, false);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 1));
        h.record(result(1), &config, false);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 2));
        h.record(result(0), &config, false);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        for _ in 0..6 {
            h.record(result(0), &config, false);
        }
        assert_eq!(h.log.len(), KEPT_RESULTS);
        assert_eq!(status_suffix(Some(&h)), " (healthy)");
        assert_eq!(status_suffix(Some(&HealthState::default())), " (health: starting)");
        assert_eq!(status_suffix(None), "");
    }
}
