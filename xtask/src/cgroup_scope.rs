//! A cgroup of the run's own: before the integration tests (or a benchmark)
//! start, the driver moves itself into a new child of its cgroup in every
//! hierarchy, so everything the tests start, and every cgroup the helper
//! creates for them (`cgroup_parent = "self"`), sits beneath it. Cleanup then
//! touches only this run's cgroups, even when another run shares the machine.

use anyhow::{Context, Result};
use ctr_tests::procfs;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct CgroupScope {
    /// (the cgroup we came from, the scope we made beneath it), per hierarchy.
    dirs: Vec<(PathBuf, PathBuf)>,
}

impl CgroupScope {
    /// Creates `name` beneath our cgroup in each hierarchy and moves this
    /// whole process (all threads) into it.
    pub fn enter(name: &str) -> Result<Self> {
        let read = |p: &str| std::fs::read_to_string(p).with_context(|| format!("cannot read {p}"));
        let own = procfs::own_cgroup_dirs(&read("/proc/self/cgroup")?, &read("/proc/self/mountinfo")?);
        let mut scope = Self { dirs: Vec::new() };
        for parent in own {
            let dir = parent.join(name);
            std::fs::create_dir(&dir).with_context(|| format!("cannot create cgroup {}", dir.display()))?;
            // Pushed before the move, so a failure still removes the directory.
            scope.dirs.push((parent.clone(), dir.clone()));
            inherit_cpuset(&parent, &dir)?;
            move_self(&dir)?;
        }
        Ok(scope)
    }

    /// Moves us back out, removes every cgroup left beneath the scope
    /// (killing what still runs there: only this run's tests could have put
    /// it there), then the scope itself. Returns one warning per leftover.
    pub fn leave(mut self) -> Vec<String> {
        self.leave_inner()
    }

    fn leave_inner(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        for (parent, dir) in std::mem::take(&mut self.dirs) {
            if let Err(e) = move_self(&parent) {
                warnings.push(format!("{e:#}"));
            }
            for leftover in procfs::subdirs_deepest_first(&dir) {
                if procfs::is_ctr_cgroup(&leftover) {
                    warnings.push(format!("a test leaked cgroup {}", leftover.display()));
                }
                warnings.extend(empty_and_remove(&leftover));
            }
            warnings.extend(empty_and_remove(&dir));
        }
        warnings
    }
}

impl Drop for CgroupScope {
    fn drop(&mut self) {
        for warning in self.leave_inner() {
            eprintln!("xtask: warning: {warning}");
        }
    }
}

/// A v1 cpuset cgroup starts with no CPUs and no memory nodes, and refuses
/// tasks until given some: copy the parent's.
fn inherit_cpuset(parent: &Path, dir: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let Ok(value) = std::fs::read_to_string(parent.join(file)) else { continue };
        if std::fs::read_to_string(dir.join(file)).is_ok_and(|v| v.trim().is_empty()) {
            std::fs::write(dir.join(file), value.trim())
                .with_context(|| format!("cannot set {}/{file}", dir.display()))?;
        }
    }
    Ok(())
}

fn move_self(dir: &Path) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string())
        .with_context(|| format!("cannot move xtask into {}", procs.display()))
}

/// Kills the processes left in `dir` (by pid, thawing a frozen v1 cgroup
/// first so they can die) and removes it, retrying while they exit. Returns
/// a warning for each thing that was left or could not be removed.
fn empty_and_remove(dir: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(5);
    loop {
        let pids: Vec<i32> = std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|p| p.trim().parse().ok())
            .collect();
        if !pids.is_empty() {
            if warnings.is_empty() {
                warnings.push(format!("killed processes {pids:?} left in cgroup {}", dir.display()));
            }
            let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
            let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => return warnings,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return warnings,
            Err(e) if Instant::now() >= give_up => {
                warnings.push(format!("cannot remove cgroup {}: {e}", dir.display()));
                return warnings;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
