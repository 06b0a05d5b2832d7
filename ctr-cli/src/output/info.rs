//! `ctr info --format`'s object: what `ctr info` prints, with docker's
//! names where docker has the same fact (`KernelVersion`,
//! `ContainersRunning`, `Images`...).

use anyhow::Result;
use ctr_cli::container::RunState;
use ctr_cli::info::HostInfo;
use ctr_cli::paths::Paths;
use ctr_core::idmap::to_proc_format;

pub fn info_json(paths: &Paths, i: &HostInfo) -> Result<serde_json::Value> {
    let states = ctr_cli::container::list(paths)?;
    let count = |wanted: fn(RunState) -> bool| states.iter().filter(|s| wanted(s.run_state())).count();
    let images = ctr_cli::image::local::open_store(paths).and_then(|s| s.list()).map_or(0, |l| l.len());
    let lines = |map: &str| map.lines().map(str::to_owned).collect::<Vec<_>>();
    Ok(serde_json::json!({
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "OSType": "linux",
        "Architecture": ctr_cli::seccomp::native_arch_name(),
        "KernelVersion": i.kernel,
        "Cgroups": i.cgroups,
        "CgroupVersion": if i.cgroups.starts_with("v2") { "2" } else { "1" },
        "Containers": states.len(),
        "ContainersRunning": count(|r| r == RunState::Running),
        "ContainersPaused": count(|r| r == RunState::Paused),
        "ContainersStopped": count(|r| !r.is_up()),
        "Images": images,
        "Helper": i.helper,
        "HelperMode": i.helper_mode,
        "MaxUserNamespaces": i.max_user_namespaces,
        "UnprivilegedUsernsClone": i.unprivileged_userns_clone,
        "UidMap": lines(&to_proc_format(&i.uid_map)),
        "GidMap": lines(&to_proc_format(&i.gid_map)),
        "ImageFileOwners": i.image_owners,
        "Seccomp": i.seccomp,
        "StateDir": i.state,
        "StorageDir": i.storage,
        "BuiltinImages": i.builtin_images,
    }))
}
