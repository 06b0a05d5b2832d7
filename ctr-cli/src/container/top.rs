//! `top`: the processes of a running container, from its cgroup's
//! `cgroup.procs` (which `exec`'s processes join too) and each one's
//! world-readable /proc files. Host uids, as docker's `top` (host `ps`)
//! shows them.

use super::record::{find, RecordError};
use crate::error::{IoContext, IoError};
use crate::paths::Paths;

#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("container {0} is not running")]
    NotRunning(String),
}

/// One process, as `ps -ef` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopProcess {
    pub uid: u32,
    pub pid: i32,
    pub ppid: i32,
    /// Its command line (its name in brackets when it has none).
    pub command: String,
}

pub fn top(paths: &Paths, key: &str) -> Result<Vec<TopProcess>, TopError> {
    let state = find(paths, key)?;
    if !state.is_up() {
        return Err(TopError::NotRunning(key.to_owned()));
    }
    let cgroup = state.cgroups.first().ok_or_else(|| TopError::NotRunning(key.to_owned()))?;
    let procs = format!("{}/cgroup.procs", cgroup.path);
    let text = std::fs::read_to_string(&procs).with_io_context(|| format!("cannot read {procs}"))?;
    let mut processes: Vec<TopProcess> =
        text.lines().filter_map(|l| l.trim().parse().ok()).filter_map(process).collect();
    processes.sort_by_key(|p| p.pid);
    Ok(processes)
}

/// A process's row; None once it is gone.
fn process(pid: i32) -> Option<TopProcess> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let (name, ppid) = parse_stat(&stat)?;
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> =
        cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let command = if args.is_empty() { format!("[{name}]") } else { args.join(" ") };
    Some(TopProcess { uid, pid, ppid, command })
}

/// The name (between the parentheses, which it may itself contain) and
/// the parent pid of a /proc/PID/stat line.
fn parse_stat(stat: &str) -> Option<(String, i32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    Some((name, rest.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names() {
        assert_eq!(parse_stat("42 (sleep) S 7 42 42 0"), Some(("sleep".into(), 7)));
        assert_eq!(parse_stat("42 (a) b) R 1 0"), Some(("a) b".into(), 1)));
        assert_eq!(parse_stat("garbage"), None);
        let me = process(std::process::id() as i32).unwrap();
        assert_eq!(me.uid, nix::unistd::getuid().as_raw());
        assert!(!me.command.is_empty());
    }
}
