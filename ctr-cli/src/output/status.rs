//! Docker's phrases for a container's life: the STATUS column ("Up 5
//! seconds", "Exited (0) 2 minutes ago") and CREATED ("3 weeks ago").

use super::units::human_duration;
use ctr_cli::container::record::now_unix;
use ctr_cli::container::{RunState, State};
use std::time::Duration;

fn seconds_since(rfc3339: Option<&str>) -> Option<u64> {
    let then = humantime::parse_rfc3339(rfc3339?).ok()?;
    Some(std::time::SystemTime::now().duration_since(then).map(|d| d.as_secs()).unwrap_or(0))
}

fn human(secs: u64) -> String {
    human_duration(Duration::from_secs(secs))
}

/// Docker's STATUS column: "Up 5 seconds", "Exited (0) 2 minutes ago",
/// "Exited (unknown)" for a container whose exit nobody recorded.
pub fn status_text(state: &State) -> String {
    match state.run_state() {
        RunState::Created => "Created".into(),
        RunState::Running => {
            let health = ctr_cli::health::status_suffix(state.health.as_ref());
            match seconds_since(state.started_at.as_deref()) {
                Some(s) => format!("Up {}{health}", human(s)),
                None => format!("Up{health}"),
            }
        }
        RunState::Paused => match seconds_since(state.started_at.as_deref()) {
            Some(s) => format!("Up {} (Paused)", human(s)),
            None => "Up (Paused)".into(),
        },
        RunState::Exited(Some(code)) => match seconds_since(state.finished_at.as_deref()) {
            Some(s) => format!("Exited ({code}) {} ago", human(s)),
            None => format!("Exited ({code})"),
        },
        RunState::Exited(None) => "Exited (unknown)".into(),
    }
}

/// Docker's CREATED column: "2 weeks ago".
pub fn created_text(state: &State) -> String {
    format!("{} ago", human(now_unix().saturating_sub(state.created)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctr_cli::container::Status;
    use ctr_cli::process::liveness::{boot_id, ProcessRef};

    #[test]
    fn a_stale_record_shows_exited_unknown() {
        let state = State {
            id: "b".repeat(64),
            status: Status::Running,
            init: Some(ProcessRef { pid: i32::MAX, start_time: 1, boot_id: boot_id() }),
            ..State::default()
        };
        assert_eq!(status_text(&state), "Exited (unknown)");
        let exited = State { status: Status::Exited, exit_code: Some(3), ..state };
        assert_eq!(status_text(&exited), "Exited (3)");
    }

    #[test]
    fn ages_read_like_images_and_docker() {
        let created = now_unix() - 20 * 86_400;
        assert_eq!(created_text(&State { created, ..State::default() }), "2 weeks ago");
    }
}
