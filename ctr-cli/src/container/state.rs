//! A container's life, in one place:
//!
//! ```text
//!            start          pause
//!  Created ────────▶ Running ◀──────▶ Paused
//!     │              ▲  │   unpause     │
//!     │        start │  │ exit          │ exit (killed while frozen)
//!     │              │  ▼               │
//!     │              Exited ◀───────────┘
//!     │ rm              │ rm
//!     ▼                 ▼
//!  Removed ◀────────────┘      (rm -f: from any state)
//! ```
//!
//! The record keeps a [`Status`]; what a container is *doing* is a
//! [`RunState`], the record checked against the kernel (a record saying
//! running whose init is gone is a stale one, exited with an unknown
//! code). Every verb asks its `can_*` question of the `RunState` and
//! records the [`Status`] that [`RunState::after`] gives, while it holds
//! the container's lock ([`crate::lock`]); nothing else writes a status.
//! A paused container is thawed before it is stopped, killed or removed:
//! on the cgroup-v1 freezer a signal to a frozen process waits until it
//! is thawed, and the helper could not empty its cgroup.

use serde::{Deserialize, Serialize};

/// What the record says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Exited,
}

impl Status {
    /// Started and not yet recorded as exited: its init may still run.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// What a container is doing, as far as the kernel can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Created,
    Running,
    /// Every process frozen by the cgroup freezer.
    Paused,
    /// Exited; `None`: nobody recorded how (its monitor was killed, or the
    /// machine rebooted).
    Exited(Option<i32>),
}

/// What a verb does to a container's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Its first process was started.
    Start,
    Pause,
    Unpause,
    /// Thawed so that a signal reaches it (`stop`, `kill`, `rm -f`).
    Thaw,
    /// Its first process ended (or never got to run its command).
    Exit,
}

/// A verb refused in the container's present state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("container {name} is not running")]
    NotRunning { name: String },
    #[error("container {name} is paused: unpause it first (`ctr unpause {name}`)")]
    Paused { name: String },
    #[error("container {name} is not paused")]
    NotPaused { name: String },
    #[error("container {name} was already started")]
    AlreadyStarted { name: String },
    #[error("cannot remove container {name}: it is {state}; stop it first or use `ctr rm -f`")]
    Live { name: String, state: &'static str },
}

impl RunState {
    /// The truth from a record and whether its init still runs: a record
    /// saying running (or paused) whose init is gone is a stale one.
    pub fn classify(status: Status, exit_code: Option<i32>, init_alive: bool) -> Self {
        match (status, init_alive) {
            (Status::Created, _) => RunState::Created,
            (Status::Running, true) => RunState::Running,
            (Status::Paused, true) => RunState::Paused,
            (Status::Running | Status::Paused, false) => RunState::Exited(None),
            (Status::Exited, _) => RunState::Exited(exit_code),
        }
    }

    /// Docker's name of the state (`State.Status` of inspect).
    pub fn docker_name(self) -> &'static str {
        match self {
            RunState::Created => "created",
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Exited(_) => "exited",
        }
    }

    /// Its processes exist: running or paused (docker's `ps` lists both).
    pub fn is_up(self) -> bool {
        matches!(self, RunState::Running | RunState::Paused)
    }

    /// A created container, or an exited one: `ctr start`, `restart` and
    /// restart policies start it again on its writable layer.
    pub fn can_start(self) -> bool {
        matches!(self, RunState::Created | RunState::Exited(_))
    }

    pub fn can_pause(self) -> bool {
        self == RunState::Running
    }

    pub fn can_unpause(self) -> bool {
        self == RunState::Paused
    }

    /// `stop` and `kill`: a paused container is thawed first.
    pub fn can_signal(self) -> bool {
        self.is_up()
    }

    /// A frozen container takes no new process (docker refuses too).
    pub fn can_exec(self) -> bool {
        self == RunState::Running
    }

    /// Without `force`, only a container whose processes are gone.
    pub fn can_remove(self, force: bool) -> bool {
        force || !self.is_up()
    }

    /// The status to record after `transition`, or why it is refused
    /// (`name` names the container in the message).
    pub fn after(self, transition: Transition, name: &str) -> Result<Status, StateError> {
        let name = name.to_owned();
        match (transition, self) {
            (Transition::Start, RunState::Created | RunState::Exited(_)) => Ok(Status::Running),
            (Transition::Start, _) => Err(StateError::AlreadyStarted { name }),
            (Transition::Pause, RunState::Running) => Ok(Status::Paused),
            (Transition::Pause, RunState::Paused) => Err(StateError::Paused { name }),
            (Transition::Pause, _) => Err(StateError::NotRunning { name }),
            (Transition::Unpause, RunState::Paused) => Ok(Status::Running),
            (Transition::Unpause, RunState::Running) => Err(StateError::NotPaused { name }),
            (Transition::Unpause, _) => Err(StateError::NotRunning { name }),
            (Transition::Thaw, RunState::Running | RunState::Paused) => Ok(Status::Running),
            (Transition::Thaw, _) => Err(StateError::NotRunning { name }),
            (Transition::Exit, RunState::Running | RunState::Paused | RunState::Exited(_)) => Ok(Status::Exited),
            // Its init failed before the command ran: it stays created.
            (Transition::Exit, RunState::Created) => Ok(Status::Created),
        }
    }

    /// Whether `rm` may remove it, or why not.
    pub fn check_remove(self, force: bool, name: &str) -> Result<(), StateError> {
        if self.can_remove(force) {
            return Ok(());
        }
        let state = if self == RunState::Paused { "paused" } else { "running" };
        Err(StateError::Live { name: name.to_owned(), state })
    }

    /// Whether `exec` may start a process in it, or why not.
    pub fn check_exec(self, name: &str) -> Result<(), StateError> {
        match self {
            RunState::Running => Ok(()),
            RunState::Paused => Err(StateError::Paused { name: name.to_owned() }),
            _ => Err(StateError::NotRunning { name: name.to_owned() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [RunState; 5] =
        [RunState::Created, RunState::Running, RunState::Paused, RunState::Exited(Some(0)), RunState::Exited(None)];

    #[test]
    fn stale_running_records_are_exited_with_unknown_code() {
        use RunState::*;
        assert_eq!(RunState::classify(Status::Running, None, true), Running);
        assert_eq!(RunState::classify(Status::Running, None, false), Exited(None));
        assert_eq!(RunState::classify(Status::Paused, None, true), Paused);
        assert_eq!(RunState::classify(Status::Paused, None, false), Exited(None));
        assert_eq!(RunState::classify(Status::Exited, Some(3), false), Exited(Some(3)));
        assert_eq!(RunState::classify(Status::Created, None, false), Created);
    }

    /// Every transition from every state: the legal ones and what they
    /// record, and that every other one is refused.
    #[test]
    fn every_transition_legal_and_illegal() {
        use RunState::*;
        use Transition::*;
        let legal = |t: Transition, s: RunState| -> Option<Status> {
            match (t, s) {
                (Start, Created | Exited(_)) => Some(Status::Running),
                (Pause, Running) => Some(Status::Paused),
                (Unpause, Paused) => Some(Status::Running),
                (Thaw, Running | Paused) => Some(Status::Running),
                (Exit, Running | Paused | Exited(_)) => Some(Status::Exited),
                (Exit, Created) => Some(Status::Created),
                _ => None,
            }
        };
        let mut refused = 0;
        for t in [Start, Pause, Unpause, Thaw, Exit] {
            for s in ALL {
                match (legal(t, s), s.after(t, "web")) {
                    (Some(want), Ok(got)) => assert_eq!(got, want, "{t:?} from {s:?}"),
                    (None, Err(e)) => {
                        refused += 1;
                        assert!(e.to_string().contains("container web"), "{t:?} from {s:?}: {e}");
                    }
                    (want, got) => panic!("{t:?} from {s:?}: expected {want:?}, got {got:?}"),
                }
            }
        }
        assert_eq!(refused, 13);
    }

    #[test]
    fn the_can_checks_agree_with_the_transitions() {
        for s in ALL {
            assert_eq!(s.can_start(), s.after(Transition::Start, "c").is_ok(), "{s:?}");
            assert_eq!(s.can_pause(), s.after(Transition::Pause, "c").is_ok(), "{s:?}");
            assert_eq!(s.can_unpause(), s.after(Transition::Unpause, "c").is_ok(), "{s:?}");
            assert_eq!(s.can_signal(), s.after(Transition::Thaw, "c").is_ok(), "{s:?}");
            assert_eq!(s.can_exec(), s.check_exec("c").is_ok(), "{s:?}");
            assert_eq!(s.can_remove(false), s.check_remove(false, "c").is_ok(), "{s:?}");
            assert!(s.can_remove(true) && s.check_remove(true, "c").is_ok(), "rm -f removes {s:?}");
        }
    }

    #[test]
    fn refusals_say_what_to_do() {
        let paused = RunState::Paused;
        assert_eq!(
            paused.check_exec("web").unwrap_err().to_string(),
            "container web is paused: unpause it first (`ctr unpause web`)"
        );
        assert_eq!(
            RunState::Running.check_remove(false, "web").unwrap_err().to_string(),
            "cannot remove container web: it is running; stop it first or use `ctr rm -f`"
        );
        assert!(paused.check_remove(false, "web").unwrap_err().to_string().contains("it is paused"));
        assert_eq!(
            RunState::Exited(None).after(Transition::Pause, "web").unwrap_err().to_string(),
            "container web is not running"
        );
    }

    #[test]
    fn docker_names() {
        let names: Vec<&str> = ALL.iter().map(|s| s.docker_name()).collect();
        assert_eq!(names, ["created", "running", "paused", "exited", "exited"]);
        let json = serde_json::to_string(&Status::Paused).unwrap();
        assert_eq!(json, "\"paused\"");
    }
}
