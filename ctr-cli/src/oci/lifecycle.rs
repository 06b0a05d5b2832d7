//! `start`, `kill`, `delete`, `state` and `list` on a created container,
//! with runc's semantics and the words callers look for in errors
//! ("does not exist", "container not running").

use super::hooks::{self, HOOKS_FILE};
use super::record::{Record, Root, Status, EXEC_FIFO};
use super::systemd_dbus::Systemd;
use super::{OciContext, Result};
use ctr_core::cgroup;
use nix::sys::signal::Signal;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Lets a created container's process go on to execute its command.
pub fn start(root: &Root, id: &str) -> Result<()> {
    let record = root.load(id)?;
    match root.status(&record) {
        Status::Created => {}
        Status::Stopped => refuse!("cannot start a container that has stopped"),
        Status::Running | Status::Paused => refuse!("cannot start an already running container"),
    }
    let fifo_path = root.dir(id).join(EXEC_FIFO);
    // Non-blocking, so that a process that died meanwhile cannot hang us:
    // it is waiting in open(2) for its writing end, and writes one byte.
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo_path)
        .with_context(|| format!("open {}", fifo_path.display()))?;
    let mut byte = [0u8; 1];
    loop {
        match fifo.read(&mut byte) {
            Ok(1) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e).context("read exec.fifo"),
        }
        if !record.init.is_alive() {
            refuse!("cannot start a container that has stopped");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    std::fs::remove_file(&fifo_path).with_context(|| format!("remove {}", fifo_path.display()))?;
    let hooks = kept_hooks(root, id)?;
    let state = root.state_json(&record);
    hooks::run_warning("poststart", hooks.as_ref().and_then(|h| h.poststart().as_ref()), &state);
    Ok(())
}

/// The hooks `create` kept in the state directory, if the spec had any.
fn kept_hooks(root: &Root, id: &str) -> Result<Option<oci_spec::runtime::Hooks>> {
    let path = root.dir(id).join(HOOKS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("parse {}", path.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// `SIGTERM`, `TERM` or `15`.
pub fn parse_signal(text: &str) -> Result<Signal> {
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| refused!("unknown signal {text}"));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    Signal::from_str(&name).map_err(|_| refused!("unknown signal {text}"))
}

/// Signals the container's process, or with `all` every process in its cgroup.
pub fn kill(root: &Root, id: &str, signal: Signal, all: bool) -> Result<()> {
    let record = root.load(id)?;
    // --all also reaches what a stopped container left in its cgroup, as
    // runc's does: containerd's shim sends it when the process of a
    // container without a pid namespace of its own (a CRI pod's, which
    // shares the pod's) exits, to end the children it left, which a
    // refusal let live on. Without a cgroup (--cgroup-manager=disabled)
    // --all has only the container's process to go by.
    if all && !record.cgroups.dirs.is_empty() {
        for pid in super::cgroups::pids(&record.cgroups) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
        return Ok(());
    }
    if root.status(&record) == Status::Stopped {
        refuse!("container not running");
    }
    signal_init(&record, signal)
}

/// Through a pidfd opened while the recorded process was alive, so a
/// reused pid is never signalled.
fn signal_init(record: &Record, signal: Signal) -> Result<()> {
    let pidfd = crate::process::liveness::pidfd_open(record.init.pid).map_err(|_| refused!("container not running"))?;
    if !record.init.is_alive() {
        refuse!("container not running");
    }
    crate::process::liveness::pidfd_send_signal(&pidfd, signal).map_err(|e| match e {
        nix::errno::Errno::ESRCH => refused!("container not running: no such process"),
        e => refused!("kill {}: {}", record.init.pid, e.desc()),
    })
}

/// Removes a stopped (or created) container; `force` kills a running one.
pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    let record = match root.load(id) {
        Ok(record) => record,
        // As runc: --force also clears a create that died before its
        // record, and is content with a container that is already gone
        // (containerd's shim deletes again when it cleans up).
        Err(e) if force && e.to_string().contains("does not exist") => {
            let _ = std::fs::remove_dir_all(root.dir(id));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let status = root.status(&record);
    if matches!(status, Status::Running | Status::Paused) && !force {
        refuse!("cannot delete container {id} that is not stopped: {}", status.as_str());
    }
    // Removing the cgroup thaws and kills whatever is left in it, the
    // container's process first among them.
    cgroup::kill_and_remove(&record.cgroups).map_err(|e| refused!("remove the container's cgroup: {e}"))?;
    // The scope is empty now (systemd may have stopped it already): stop
    // it so that no unit is left.
    if let Some(scope) = &record.scope {
        Systemd::connect(scope.user)?.stop_unit(&scope.name)?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while record.init.is_alive() {
        if Instant::now() > deadline {
            refuse!("the container's process {} did not die", record.init.pid);
        }
        let _ = signal_init(&record, Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(5));
    }
    super::shared_mounts::undo(&record.rootfs, &record.shared_mounts)?;
    let hooks = kept_hooks(root, id)?;
    let mut state = root.state_json(&record);
    let dir = root.dir(id);
    std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    state["status"] = "stopped".into();
    hooks::run_warning("poststop", hooks.as_ref().and_then(|h| h.poststop().as_ref()), &state);
    Ok(())
}

/// `pause` (`frozen`) and `resume`: the cgroup freezer, through the
/// cgroup manager (v1 freezer, else v2's cgroup.freeze).
pub fn freeze(root: &Root, id: &str, frozen: bool) -> Result<()> {
    let record = root.load(id)?;
    match (root.status(&record), frozen) {
        (Status::Running, true) | (Status::Paused, false) => {}
        (Status::Stopped | Status::Created, _) => refuse!("container not running"),
        (Status::Paused, true) => refuse!("container {id} is already paused"),
        (Status::Running, false) => refuse!("container {id} is not paused"),
    }
    if record.cgroups.dirs.is_empty() {
        refuse!("container {id} has no cgroup (--cgroup-manager=disabled): it cannot be paused");
    }
    cgroup::freeze(&record.cgroups, frozen).map_err(|e| refused!("{e}"))
}

/// `ps --format json`: the pids in the container's cgroup.
pub fn pids(root: &Root, id: &str) -> Result<Vec<i32>> {
    let record = root.load(id)?;
    let mut pids = super::cgroups::pids(&record.cgroups);
    if pids.is_empty() && record.init.is_alive() {
        pids.push(record.init.pid);
    }
    pids.sort_unstable();
    Ok(pids)
}

/// `update --resources`: new limits (the spec's `linux.resources` JSON)
/// written to the container's cgroup, checked as `create` checks them.
pub fn update(root: &Root, id: &str, resources: &[u8]) -> Result<()> {
    let record = root.load(id)?;
    if root.status(&record) == Status::Stopped {
        refuse!("container not running");
    }
    if record.cgroups.dirs.is_empty() {
        refuse!("container {id} has no cgroup (--cgroup-manager=disabled): its resources cannot be updated");
    }
    let resources: oci_spec::runtime::LinuxResources =
        serde_json::from_slice(resources).context("parse --resources (the runtime spec's linux.resources)")?;
    let limits = super::bundle::translate_resources(&resources)?;
    limits.validate(&ctr_core::limits::HostCpus::read(), |_, _| true).map_err(|e| refused!("--resources: {e}"))?;
    // systemd first, which would otherwise put its own values back when it
    // next touches the unit; then every file, as create writes them.
    if let Some(scope) = &record.scope {
        let properties = super::systemd_dbus::properties(&limits, &record.cgroups);
        Systemd::connect(scope.user)?.set_properties(&scope.name, properties)?;
    }
    cgroup::apply_limits(&record.cgroups, &limits).map_err(|e| refused!("update {id}: {e}"))?;
    let memory_v1 = super::bundle::memory_v1_files(&resources)?;
    // The devices made in the container stay allowed, as at create (v2's
    // program is replaced whole, and a v1 list may start with "deny all").
    super::cgroups::set_devices(&record.cgroups, &super::bundle::device_rules(&resources, &record.devices))
        .and_then(|()| super::cgroups::set_memory_v1(&record.cgroups, &memory_v1))
        .map_err(|e| refused!("update {id}: {e}"))
}

/// `events --stats`: one reading of the container's cgroup counters, in
/// runc's event shape (`{"type":"stats","id":...,"data":{...}}`).
pub fn stats(root: &Root, id: &str) -> Result<serde_json::Value> {
    let record = root.load(id)?;
    if root.status(&record) == Status::Stopped {
        refuse!("container not running");
    }
    let s = crate::stats::cgroup::sample(&record.cgroups.dirs);
    Ok(serde_json::json!({
        "type": "stats",
        "id": id,
        "data": {
            "cpu": { "usage": { "total": s.cpu_ns } },
            "memory": { "usage": { "usage": s.memory_bytes, "limit": s.memory_limit.unwrap_or(u64::MAX) } },
            "pids": { "current": s.pids },
            "blkio": { "ioServiceBytesRecursive": [
                { "op": "Read", "value": s.block_read_bytes },
                { "op": "Write", "value": s.block_write_bytes },
            ] },
        },
    }))
}

/// `state`: the runtime spec's JSON.
pub fn state(root: &Root, id: &str) -> Result<serde_json::Value> {
    Ok(root.state_json(&root.load(id)?))
}

/// `list`: every container's state.
pub fn list(root: &Root) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    for id in root.ids()? {
        if let Ok(record) = root.load(&id) {
            out.push(root.state_json(&record));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("SIGKILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("kill").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
