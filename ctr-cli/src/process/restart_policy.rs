//! `--restart`: docker's restart policies, carried out by the container's
//! monitor ([`crate::process::monitor`]), with docker's back-off: 100 ms
//! before the first restart, doubled each time up to a minute, and back to
//! 100 ms once the container has run for 10 s. No daemon: after a reboot
//! nothing restarts containers, unless a `ctr generate systemd` unit does.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run this long counts as a success for the back-off.
const RESET_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "name")]
pub enum RestartPolicy {
    /// Never restart (the default).
    #[default]
    No,
    /// Restart after a non-zero exit, at most `max_retries` times (no
    /// bound when `None`).
    OnFailure { max_retries: Option<u32> },
    /// Restart whatever the exit, until `ctr stop`.
    Always,
    /// As `always`; differs only in what `ctr generate systemd` brings back
    /// at boot (not a container that was stopped).
    UnlessStopped,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid restart policy {0:?}: use no, on-failure[:MAX-RETRIES], always or unless-stopped")]
pub struct RestartPolicyError(String);

impl FromStr for RestartPolicy {
    type Err = RestartPolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RestartPolicyError(s.to_owned());
        let (name, count) = match s.split_once(':') {
            Some((name, count)) => (name, Some(count.parse::<u32>().map_err(|_| bad())?)),
            None => (s, None),
        };
        match (name, count) {
            ("no", None) => Ok(Self::No),
            ("always", None) => Ok(Self::Always),
            ("unless-stopped", None) => Ok(Self::UnlessStopped),
            // docker: on-failure:0 means no bound.
            ("on-failure", n) => Ok(Self::OnFailure { max_retries: n.filter(|&n| n > 0) }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::No => f.write_str("no"),
            Self::OnFailure { max_retries: None } => f.write_str("on-failure"),
            Self::OnFailure { max_retries: Some(n) } => write!(f, "on-failure:{n}"),
            Self::Always => f.write_str("always"),
            Self::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

impl RestartPolicy {
    /// Whether a container that exited with `exit_code` after `restarts`
    /// restarts is started again. `stopped` says `ctr stop` ended it,
    /// which no policy overrides.
    pub fn should_restart(self, exit_code: Option<i32>, restarts: u32, stopped: bool) -> bool {
        if stopped {
            return false;
        }
        match self {
            Self::No => false,
            Self::Always | Self::UnlessStopped => true,
            Self::OnFailure { max_retries } => exit_code != Some(0) && max_retries.is_none_or(|max| restarts < max),
        }
    }
}

/// The delay before the next restart.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST_DELAY }
    }
}

impl Backoff {
    /// The delay after a run that lasted `ran`.
    pub fn after_run(&mut self, ran: Duration) -> Duration {
        if ran >= RESET_AFTER {
            self.next = FIRST_DELAY;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_spellings() {
        assert_eq!("no".parse(), Ok(RestartPolicy::No));
        assert_eq!("always".parse(), Ok(RestartPolicy::Always));
        assert_eq!("unless-stopped".parse(), Ok(RestartPolicy::UnlessStopped));
        assert_eq!("on-failure".parse(), Ok(RestartPolicy::OnFailure { max_retries: None }));
        assert_eq!("on-failure:3".parse(), Ok(RestartPolicy::OnFailure { max_retries: Some(3) }));
        for bad in ["", "sometimes", "always:3", "on-failure:x", "on-failure:-1", "no:1"] {
            assert!(bad.parse::<RestartPolicy>().is_err(), "{bad}");
        }
        assert_eq!(RestartPolicy::OnFailure { max_retries: Some(3) }.to_string(), "on-failure:3");
    }

    #[test]
    fn on_failure_counts_and_stop_wins() {
        let p = RestartPolicy::OnFailure { max_retries: Some(3) };
        assert!(p.should_restart(Some(1), 0, false));
        assert!(p.should_restart(Some(1), 2, false));
        assert!(!p.should_restart(Some(1), 3, false), "exactly three restarts");
        assert!(!p.should_restart(Some(0), 0, false), "a success is not a failure");
        assert!(p.should_restart(None, 0, false), "an unknown exit counts as a failure");
        assert!(RestartPolicy::Always.should_restart(Some(0), 100, false));
        assert!(!RestartPolicy::Always.should_restart(Some(137), 0, true), "ctr stop ends it");
        assert!(!RestartPolicy::No.should_restart(Some(1), 0, false));
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::default();
        let short = Duration::from_millis(5);
        let delays: Vec<u128> = (0..4).map(|_| b.after_run(short).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800]);
        for _ in 0..20 {
            b.after_run(short);
        }
        assert_eq!(b.after_run(short), MAX_DELAY);
        assert_eq!(b.after_run(Duration::from_secs(11)), FIRST_DELAY, "a long run resets it");
    }
}
