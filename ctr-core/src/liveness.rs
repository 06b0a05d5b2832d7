//! Whether a recorded process still lives: the owner of a lease or a
//! helper record, or a container's init in `ctr`'s state.
//!
//! A pid alone is not an identity: pids are reused. The key is the pid, the
//! process's start time (field 22 of `/proc/PID/stat`, in clock ticks since
//! boot) and the boot id: no two processes of one boot share a pid and a
//! start time, and the boot id tells a key from before a reboot. A process
//! that is gone, a zombie, or a different process under the same pid makes
//! the key dead; resources owned by a dead key are garbage for anyone to
//! clean, which is what lets a helper killed half-way be cleaned up after.

use serde::{Deserialize, Serialize};
use std::path::Path;

const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// The liveness key of one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Liveness {
    pub pid: i32,
    pub start_time: u64,
    pub boot_id: String,
}

impl Liveness {
    /// The key of process `pid`, which must be alive now.
    pub fn of(pid: i32) -> std::io::Result<Self> {
        let start_time = start_time(pid).ok_or_else(|| std::io::Error::other(format!("process {pid} is gone")))?;
        Ok(Self { pid, start_time, boot_id: boot_id()? })
    }

    /// Whether the same process still runs (a zombie has ended).
    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time) && boot_id().is_ok_and(|b| b == self.boot_id)
    }
}

/// This boot's id.
pub fn boot_id() -> std::io::Result<String> {
    Ok(std::fs::read_to_string(BOOT_ID)?.trim().to_owned())
}

/// The start time of `pid` if it is a live process (not a zombie).
pub fn start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?;
    parse_stat(&stat).filter(|(_, state)| !matches!(state, 'Z' | 'X' | 'x')).map(|(start, _)| start)
}

/// The start time (field 22) and state (field 3) from a `/proc/PID/stat`
/// line. The command name (field 2) is in parentheses and may hold spaces
/// and parentheses itself, so fields are counted after its *last* `)`.
pub fn parse_stat(stat: &str) -> Option<(u64, char)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); field 22 is 19 further on.
    let state = fields.first()?.chars().next()?;
    Some((fields.get(19)?.parse().ok()?, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_start_time_after_a_hostile_command_name() {
        let line = "4242 (a) b) c 1 2) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        assert_eq!(parse_stat(line), Some((987654, 'S')));
        assert_eq!(parse_stat("1 (x) Z 0"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn our_own_key_is_alive_and_a_changed_one_is_not() {
        let me = Liveness::of(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        assert!(!Liveness { start_time: me.start_time + 1, ..me.clone() }.is_alive());
        assert!(!Liveness { boot_id: "other-boot".into(), ..me.clone() }.is_alive());
        assert!(!Liveness { pid: i32::MAX, ..me.clone() }.is_alive());
        assert!(!Liveness { pid: -1, ..me }.is_alive());
    }

    #[test]
    fn a_zombie_has_ended() {
        // Not reaped until the end: a zombie, as an unreaped dead init is.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let stat = || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while parse_stat(&stat()).map(|(_, state)| state) != Some('Z') {
            assert!(std::time::Instant::now() < deadline, "child never became a zombie");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(parse_stat(&stat()).is_some());
        assert_eq!(start_time(pid), None);
        child.wait().unwrap();
    }
}
