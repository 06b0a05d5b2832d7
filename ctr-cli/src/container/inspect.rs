//! `inspect`: everything ctr knows of a container, in the shape and with
//! the names of `docker inspect`. Its life comes from
//! [`State::run_state`](super::record::State::run_state), which checks the
//! kernel, never from the record alone.

use super::record::{self, Container, State};
use super::state::RunState;
use super::Result;
use crate::paths::Paths;
use crate::process::restart_policy::RestartPolicy;

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
    if let Some(host) = host_config.as_object_mut() {
        host.extend(crate::dns::inspect_json(&s.dns));
        let ulimits = process.map(|p| p.rlimits.clone()).unwrap_or_default();
        let ulimits: Vec<_> = ulimits
            .iter()
            .map(|u| serde_json::json!({"Name": u.name, "Soft": u.soft as i64, "Hard": u.hard as i64}))
            .collect();
        let sysctls: serde_json::Map<_, _> =
            s.options.sysctls.iter().map(|c| (c.name.clone(), serde_json::Value::from(c.value.clone()))).collect();
        host.insert("Ulimits".into(), ulimits.into());
        host.insert("Sysctls".into(), sysctls.into());
        host.insert("ShmSize".into(), s.options.shm_size.unwrap_or(64 << 20).into());
        host.insert("Init".into(), s.options.init.into());
    }
    let seccomp = s.security.as_ref().map(|security| {
        let (host, seccomp) = security.inspect_json();
        if let (Some(to), serde_json::Value::Object(from)) = (host_config.as_object_mut(), host) {
            to.extend(from);
        }
        seccomp
    });
    if let Some(host) = host_config.as_object_mut() {
        let (name, max) = match s.restart_policy {
            RestartPolicy::OnFailure { max_retries } => ("on-failure".to_owned(), max_retries.unwrap_or(0)),
            other => (other.to_string(), 0),
        };
        host.insert("RestartPolicy".into(), serde_json::json!({ "Name": name, "MaximumRetryCount": max }));
    }
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
            "Labels": s.options.labels,
            "StopSignal": s.options.stop_signal.as_deref().unwrap_or("SIGTERM"),
            "StopTimeout": s.options.stop_timeout,
            "GroupAdd": process.map(|p| p.group_add.clone()),
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
        "RestartCount": s.restart_count,
        "Mounts": crate::mounts::inspect_json(&s.mounts),
        "NetworkSettings": s.network,
        "CgroupPaths": s.cgroups.iter().map(|c| c.path.clone()).collect::<Vec<_>>(),
        "Cgroups": s.cgroups,
        "LogPath": container.log_path(),
    }))
}
