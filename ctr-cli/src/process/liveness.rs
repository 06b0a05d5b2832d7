//! Whether a process recorded in a state file is still the one we started.
//! A pid alone proves nothing (pids are reused, and a reboot reuses them
//! all), so a [`ProcessRef`] is a pid plus its start time in clock ticks
//! since boot (/proc/PID/stat field 22) and the boot id. Signals go through
//! a pidfd opened and then re-checked against the start time, so they can
//! never reach a process that merely inherited the pid.

use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;

/// A process that was gone before ctr could record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("process {0} vanished before it was recorded")]
pub struct Vanished(pub i32);

/// A process as ctr recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    pub pid: i32,
    /// Field 22 of /proc/PID/stat.
    pub start_time: u64,
    /// /proc/sys/kernel/random/boot_id when it was recorded.
    pub boot_id: String,
}

impl ProcessRef {
    /// Describes a process that exists now (ours, or our unreaped child).
    pub fn of(pid: i32) -> Result<Self, Vanished> {
        let start_time = start_time(pid).ok_or(Vanished(pid))?;
        Ok(Self { pid, start_time, boot_id: boot_id() })
    }

    pub fn current() -> Result<Self, Vanished> {
        Self::of(std::process::id() as i32)
    }

    /// True while the recorded process runs (a zombie counts as gone).
    pub fn is_alive(&self) -> bool {
        self.boot_id == boot_id() && start_time(self.pid) == Some(self.start_time)
    }

    /// A pidfd for the recorded process, or None if it is gone. The start
    /// time is checked after opening, so the pidfd cannot name a newcomer.
    pub fn pidfd(&self) -> Option<OwnedFd> {
        if self.boot_id != boot_id() {
            return None;
        }
        let fd = pidfd_open(self.pid).ok()?;
        self.is_alive().then_some(fd)
    }
}

/// The start time of a live process (ctr-core's, shared with the helper).
pub use ctr_core::liveness::start_time;

pub fn boot_id() -> String {
    ctr_core::liveness::boot_id().unwrap_or_default()
}

pub use crate::sys::pidfd::{open as pidfd_open, send_signal as pidfd_send_signal};

/// Waits until the process behind `pidfd` exits, at most `timeout`
/// (None: forever). Returns whether it exited.
pub fn wait_exit(pidfd: &OwnedFd, timeout: Option<std::time::Duration>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let left = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let ms =
                    d.saturating_duration_since(std::time::Instant::now()).as_millis().min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, left) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcessRef::current().unwrap();
        assert!(me.is_alive());
        assert!(me.pidfd().is_some());
        assert!(!ProcessRef { start_time: me.start_time + 1, ..me.clone() }.is_alive());
        assert!(!ProcessRef { boot_id: "another-boot".into(), ..me.clone() }.is_alive());
        assert!(!ProcessRef { pid: -1, ..me }.is_alive());
    }
}
