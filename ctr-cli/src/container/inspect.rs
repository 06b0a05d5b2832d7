//! `inspect`: everything ctr knows of a container, in the shape and with
//! the names of `docker inspect`. Its life comes from
//! [`State::run_state`](super::record::State::run_state), which checks the
//! kernel, never from the record alone.

use super::record::{self, Container, State};
use super::state::RunState;
use super::Result;
use crate::paths::Paths;

/// The container named `key`, as docker's inspect shows it.
pub fn inspect(paths: &Paths, key: &str) -> Result<serde_json::Value> {
    inspect_state(paths, &record::find(paths, key)?)
}

/// A container's record, as docker's inspect shows it.
pub fn inspect_state(paths: &Paths, s: &State) -> Result<serde_json::Value> {
    let container = Container::from_state(paths, s)?;
    let run_state = s.run_state();
    let up = run_state.is_up();
    let exit_code = match run_state {
        RunState::Exited(code) => code,
        _ => None,
    };
    let process = s.process.as_ref();
    let mut host_config = serde_json::to_value(&s.limits).unwrap_or_default();
    let seccomp = s.security.as_ref().map(|security| {
        let (host, seccomp) = security.inspect_json();
        if let (Some(to), serde_json::Value::Object(from)) = (host_config.as_object_mut(), host) {
            to.extend(from);
        }
        seccomp
    });
    Ok(serde_json::json!({
        "Id": s.id,
        "Name": s.name,
        "Created": s.created,
        "Image": s.image,
        "ImageId": s.image_id,
        "Path": s.command.first(),
        "Args": s.command.get(1..).unwrap_or_default(),
        "Config": {
            "Cmd": s.command,
            "Env": process.map(|p| p.env.clone()),
            "WorkingDir": process.map(|p| p.cwd.clone()),
            "User": process.and_then(|p| p.user.clone()),
            "Hostname": s.hostname,
            "Tty": s.tty,
            "CapAdd": process.map(|p| p.capabilities.clone()),
        },
        "State": {
            "Status": run_state.docker_name(),
            "Running": up,
            "Paused": run_state == RunState::Paused,
            "Pid": s.init.as_ref().filter(|_| up).map_or(0, |p| p.pid),
            "ExitCode": exit_code,
            "OOMKilled": s.oom_killed,
            "StartedAt": s.started_at,
            "FinishedAt": s.finished_at,
            "Error": s.error,
            "MonitorPid": s.monitor.as_ref().filter(|m| m.is_alive()).map(|m| m.pid),
        },
        "HostConfig": host_config,
        "Seccomp": seccomp,
        "AutoRemove": s.auto_remove,
        "Mounts": crate::mounts::inspect_json(&s.mounts),
        "NetworkSettings": s.network,
        "CgroupPaths": s.cgroups.iter().map(|c| c.path.clone()).collect::<Vec<_>>(),
        "Cgroups": s.cgroups,
        "LogPath": container.log_path(),
    }))
}
