//! `inspect`: everything ctr knows of a container, in the shape and with
//! the names of `docker inspect`. Its life comes from
//! [`State::run_state`](super::record::State::run_state), which checks the
//! kernel, never from the record alone.

use super::record::{self, Container, State};
use super::state::RunState;
use super::Result;
use crate::paths::Paths;
use crate::process::restart_policy::RestartPolicy;
use ctr_core::limits::{DeviceRate, ResourceLimits, SwapLimit, PIDS_UNLIMITED};
use ctr_core::net::NetworkInfo;

/// The container named `key`, as docker's inspect shows it.
pub fn inspect(paths: &Paths, key: &str) -> Result<serde_json::Value> {
    inspect_state(paths, &record::find(paths, key)?)
}

/// A container's record, as docker's inspect shows it.
pub fn inspect_state(paths: &Paths, s: &State) -> Result<serde_json::Value> {
    let container = Container::from_state(paths, s)?;
    let run_state = s.run_state();
    let up = run_state.is_up();
    // Docker's 0 for a container that has not exited; null only when
    // nobody recorded how it exited.
    let exit_code = match run_state {
        RunState::Exited(code) => code,
        _ => Some(0),
    };
    let process = s.process.as_ref();
    let mut host_config = serde_json::Value::Object(limits_json(&s.limits));
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
        host.insert("UsernsMode".into(), if s.options.keep_id { "keep-id" } else { "" }.into());
        host.insert("Devices".into(), crate::devices::inspect_json(&s.options.devices));
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
            "Image": s.image,
            "StopSignal": s.options.stop_signal.as_deref().unwrap_or("SIGTERM"),
            "StopTimeout": s.options.stop_timeout,
            "GroupAdd": process.map(|p| p.group_add.clone()),
            "Healthcheck": s.options.health,
            "AttachStdin": s.options.attach.is_some_and(|a| a.stdin),
            "AttachStdout": s.options.attach.is_some_and(|a| a.stdout),
            "AttachStderr": s.options.attach.is_some_and(|a| a.stderr),
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
            "Health": s.health,
        },
        "HostConfig": host_config,
        "Seccomp": seccomp,
        "AutoRemove": s.auto_remove,
        "RestartCount": s.restart_count,
        "Mounts": crate::mounts::inspect_json(&s.mounts),
        "NetworkSettings": network_settings(s.network.as_ref()),
        "CgroupPaths": s.cgroups.iter().map(|c| c.path.clone()).collect::<Vec<_>>(),
        "Cgroups": s.cgroups,
        "LogPath": container.log_path(),
    }))
}

/// The limits under docker's `HostConfig` names: 0 for "none set", as
/// docker shows them; `PidsLimit` -1 and `MemorySwap` -1 for unlimited.
fn limits_json(l: &ResourceLimits) -> serde_json::Map<String, serde_json::Value> {
    let (quota, period) = l.cpu_quota.map_or((0, 0), |q| (q.quota_us, q.period_us));
    let nano_cpus = quota.saturating_mul(1_000_000_000).checked_div(period).unwrap_or(0);
    let swap: i64 = match l.memory_swap {
        None => 0,
        Some(SwapLimit::Unlimited) => -1,
        Some(SwapLimit::Total(bytes)) => i64::try_from(bytes).unwrap_or(i64::MAX),
    };
    let pids: i64 = match l.pids_limit {
        None => 0,
        Some(PIDS_UNLIMITED) => -1,
        Some(n) => i64::try_from(n).unwrap_or(-1),
    };
    let rates = |rates: &[DeviceRate]| -> Vec<serde_json::Value> {
        let rate = |r: &DeviceRate| serde_json::json!({"Path": format!("{}:{}", r.major, r.minor), "Rate": r.bytes_per_second});
        rates.iter().map(rate).collect()
    };
    let value = serde_json::json!({
        "Memory": l.memory.unwrap_or(0),
        "MemorySwap": swap,
        "MemoryReservation": l.memory_reservation.unwrap_or(0),
        "NanoCpus": nano_cpus,
        "CpuQuota": quota,
        "CpuPeriod": period,
        "CpuShares": l.cpu_shares.unwrap_or(0),
        "CpusetCpus": l.cpuset_cpus.as_ref().map(ToString::to_string).unwrap_or_default(),
        "CpusetMems": l.cpuset_mems.as_ref().map(ToString::to_string).unwrap_or_default(),
        "PidsLimit": pids,
        "BlkioWeight": l.blkio_weight.unwrap_or(0),
        "BlkioDeviceReadBps": rates(&l.device_read_bps),
        "BlkioDeviceWriteBps": rates(&l.device_write_bps),
    });
    match value {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// Docker's `NetworkSettings`: the address on top and under `Networks`,
/// and `Ports` as `{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}`;
/// empty for `--network none` and `host`.
fn network_settings(network: Option<&NetworkInfo>) -> serde_json::Value {
    let Some(n) = network else {
        return serde_json::json!({"IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": "", "Ports": {}, "Networks": {}});
    };
    let mut ports = serde_json::Map::new();
    for p in &n.ports {
        let host_ip = p.host_ip.map_or_else(|| "0.0.0.0".to_owned(), |ip| ip.to_string());
        let binding = serde_json::json!({"HostIp": host_ip, "HostPort": p.host_port.to_string()});
        let key = format!("{}/{}", p.container_port, p.protocol);
        if let Some(serde_json::Value::Array(list)) = ports.get_mut(&key) {
            list.push(binding);
        } else {
            ports.insert(key, serde_json::json!([binding]));
        }
    }
    let endpoint = serde_json::json!({
        "IPAddress": n.address.to_string(), "IPPrefixLen": n.prefix, "Gateway": n.gateway.to_string(), "MacAddress": n.mac,
    });
    let mut settings = endpoint.clone();
    if let Some(map) = settings.as_object_mut() {
        map.insert("Ports".into(), ports.into());
        map.insert("Networks".into(), serde_json::json!({ n.network.clone(): endpoint }));
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctr_core::limits::CpuQuota;
    use ctr_core::net::{PortSpec, Protocol};

    #[test]
    fn limits_under_dockers_names() {
        let limits = ResourceLimits {
            memory: Some(128 << 20),
            cpu_quota: Some(CpuQuota { quota_us: 50_000, period_us: 100_000 }),
            pids_limit: Some(PIDS_UNLIMITED),
            ..ResourceLimits::default()
        };
        let json = serde_json::Value::Object(limits_json(&limits));
        assert_eq!(json["Memory"], 128u64 << 20);
        assert_eq!(json["NanoCpus"], 500_000_000u64);
        assert_eq!(json["PidsLimit"], -1);
        assert_eq!(json["MemorySwap"], 0);
    }

    #[test]
    fn network_settings_as_docker_shows_them() {
        let info = NetworkInfo {
            network: "bridge".into(),
            address: "10.88.0.5".parse().unwrap(),
            prefix: 16,
            gateway: "10.88.0.1".parse().unwrap(),
            mac: "02:00:00:00:00:01".into(),
            ports: vec![PortSpec { host_ip: None, host_port: 8080, container_port: 80, protocol: Protocol::Tcp }],
        };
        let json = network_settings(Some(&info));
        assert_eq!(json["IPAddress"], "10.88.0.5");
        assert_eq!(json["Networks"]["bridge"]["Gateway"], "10.88.0.1");
        assert_eq!(json["Ports"]["80/tcp"][0]["HostPort"], "8080");
        assert_eq!(network_settings(None)["IPAddress"], "");
    }
}
