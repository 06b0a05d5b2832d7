//! A container's life: its recorded status and what the kernel says of it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Exited,
}

/// What a container is doing, as far as the kernel can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Created,
    Running,
    /// Exited; `None`: nobody recorded how (its monitor was killed, or the
    /// machine rebooted).
    Exited(Option<i32>),
}

impl RunState {
    /// The truth from a record and whether its init still runs: a record
    /// saying "running" whose init is gone is a stale one.
    pub fn classify(status: Status, exit_code: Option<i32>, init_alive: bool) -> Self {
        match (status, init_alive) {
            (Status::Created, _) => RunState::Created,
            (Status::Running, true) => RunState::Running,
            (Status::Running, false) => RunState::Exited(None),
            (Status::Exited, _) => RunState::Exited(exit_code),
        }
    }

    pub fn docker_name(self) -> &'static str {
        match self {
            RunState::Created => "created",
            RunState::Running => "running",
            RunState::Exited(_) => "exited",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_running_records_are_exited_with_unknown_code() {
        use RunState::*;
        assert_eq!(RunState::classify(Status::Running, None, true), Running);
        assert_eq!(RunState::classify(Status::Running, None, false), Exited(None));
        assert_eq!(RunState::classify(Status::Exited, Some(3), false), Exited(Some(3)));
        assert_eq!(RunState::classify(Status::Created, None, false), Created);
    }
}
