//! A container's on-disk presence, all in storage (the data directory), so
//! that it survives logout and reboot: its record (state.json, the launch
//! it is started from, the generated /etc files, its log, its name
//! reservation) and, below that, its writable layer. State is written atomically (write, fsync, rename); removal is
//! idempotent. Whether a container runs is decided from its init's pid
//! *and* start time ([`crate::process::liveness`]), never from the status field
//! alone: a killed monitor or a reboot leaves "running" records behind.

use super::state::{RunState, Status};
use crate::error::{IoContext, IoError};
use crate::lock::ContainerLock;
use crate::paths::Paths;
use crate::process::liveness::ProcessRef;
use crate::spec::ProcessSpec;
use ctr_core::ids::{ContainerId, ContainerName};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a container's record could not be found, made or read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("no such container: {0} (see `ctr ps -a`)")]
    NotFound(String),
    #[error("{key} matches {count} containers: give more of the id")]
    Ambiguous { key: String, count: usize },
    #[error("no such container: {0} (it was removed meanwhile)")]
    Removed(String),
    #[error("the container name {0:?} is already in use: remove that container or choose another name")]
    NameInUse(String),
    #[error("parse {path}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
    #[error(transparent)]
    Id(#[from] ctr_core::ids::IdError),
    #[error(transparent)]
    Io(#[from] IoError),
}

type Result<T, E = RecordError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub name: String,
    /// The image as the user named it, and its id (none with --rootfs).
    pub image: String,
    pub image_id: Option<String>,
    pub command: Vec<String>,
    pub created: u64,
    pub status: Status,
    pub pid: Option<i32>,
    pub exit_code: Option<i32>,
    pub cgroups: Vec<ctr_core::protocol::CgroupDir>,
    /// The kernel's OOM killer killed a process of the container.
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub limits: ctr_core::limits::ResourceLimits,
    /// `-v` and `--tmpfs` mounts; `ctr volume rm` finds volumes in use here.
    #[serde(default)]
    pub mounts: Vec<crate::mounts::MountSpec>,
    #[serde(default)]
    pub hostname: String,
    /// What the container got on a bridge network.
    #[serde(default)]
    pub network: Option<ctr_core::net::NetworkInfo>,
    /// The container's init as started (pid and start time).
    #[serde(default)]
    pub init: Option<ProcessRef>,
    /// The process waiting on it: `ctr run` in the foreground or the
    /// detached monitor.
    #[serde(default)]
    pub monitor: Option<ProcessRef>,
    /// RFC 3339 times.
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    /// What `ctr exec` inherits: environment, user, working directory and
    /// capability set of the container's command.
    #[serde(default)]
    pub process: Option<ProcessSpec>,
    #[serde(default)]
    pub tty: bool,
    /// Started with --rm: removed when it exits.
    #[serde(default)]
    pub auto_remove: bool,
    /// Why the monitor could not do its work, if it could not.
    #[serde(default)]
    pub error: Option<String>,
    /// Seccomp and the security options; none for a container started by
    /// a ctr without them.
    #[serde(default)]
    pub security: Option<crate::seccomp::SecurityConfig>,
    /// `--restart`, carried out by the monitor.
    #[serde(default)]
    pub restart_policy: crate::process::restart_policy::RestartPolicy,
    /// Restarts by the policy since the last `ctr start`.
    #[serde(default)]
    pub restart_count: u32,
    /// `ctr stop` ended it, so no policy restarts it (until `ctr start`).
    #[serde(default)]
    pub stopped_by_user: bool,
    /// `--log-opt`: how its log rotates.
    #[serde(default)]
    pub log_options: crate::log_options::LogOptions,
    /// `--dns`, `--dns-search`, `--dns-option` and `--add-host`.
    #[serde(default)]
    pub dns: crate::dns::DnsConfig,
    /// Labels, stop signal and timeout.
    #[serde(default)]
    pub options: crate::run_options::KeptOptions,
    /// The health checks' state (with a check only), reset at each start.
    #[serde(default)]
    pub health: Option<crate::health::HealthState>,
}

impl State {
    /// What the container is doing: the record checked against the
    /// kernel ([`RunState::classify`]).
    pub fn run_state(&self) -> RunState {
        let alive = self.status.is_live() && self.init.as_ref().is_some_and(ProcessRef::is_alive);
        RunState::classify(self.status, self.exit_code, alive)
    }

    /// Running, not paused.
    pub fn is_running(&self) -> bool {
        self.run_state() == RunState::Running
    }

    /// Running or paused: its processes exist.
    pub fn is_up(&self) -> bool {
        self.run_state().is_up()
    }

    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

#[derive(Clone)]
pub struct Container {
    pub id: ContainerId,
    pub name: ContainerName,
    /// The container's directory: record, generated files, log.
    pub state_dir: PathBuf,
    /// Writable layer and mount point, inside `state_dir`.
    pub layer_dir: PathBuf,
    /// Its files are synced to disk as they are written: not for `--rm`
    /// containers, which no reboot needs to find again (and whose start
    /// time fsyncs would cost).
    pub durable: bool,
    name_file: PathBuf,
}

fn create_private_dir(path: &Path) -> Result<(), IoError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_io_context(|| format!("create {}", path.display()))
}

impl Container {
    /// Reserves `name` (exactly one of two concurrent runs with the same
    /// name wins: O_EXCL) and creates the container's directories.
    pub fn create(paths: &Paths, id: ContainerId, name: ContainerName) -> Result<Self> {
        let name_file = reserve_name(paths, &name, &id)?;
        let state_dir = paths.containers().join(id.as_str());
        let container = Self { layer_dir: state_dir.join("layer"), state_dir, id, name, name_file, durable: true };
        let made = create_private_dir(&container.state_dir).and_then(|()| {
            for sub in ["upper", "work", "rootfs"] {
                create_private_dir(&container.layer_dir.join(sub))?;
            }
            // The upper dir's mode becomes that of the container's `/`, which
            // every user in the container must be able to traverse. The
            // layer dir above it stays private on the host.
            std::fs::set_permissions(container.layer_dir.join("upper"), std::fs::Permissions::from_mode(0o755))
                .io_context("chmod the writable layer")
        });
        if let Err(e) = made {
            let _ = container.remove_local();
            return Err(e.into());
        }
        Ok(container)
    }

    /// The container a state file describes.
    pub fn from_state(paths: &Paths, state: &State) -> Result<Self> {
        let id = ContainerId::parse(&state.id)?;
        let name = ContainerName::parse(&state.name)?;
        let state_dir = paths.containers().join(id.as_str());
        Ok(Self {
            layer_dir: state_dir.join("layer"),
            name_file: paths.names().join(name.as_str()),
            state_dir,
            id,
            name,
            durable: !state.auto_remove,
        })
    }

    /// The container named `key` (name, id or unique id prefix) and its
    /// state as last read.
    pub fn locate(paths: &Paths, key: &str) -> Result<(Self, State)> {
        let state = find(paths, key)?;
        Ok((Self::from_state(paths, &state)?, state))
    }

    /// Takes the container's lock and reads its state under it; an error
    /// if it was removed meanwhile.
    pub fn lock(&self, key: &str) -> Result<(ContainerLock, State)> {
        let no_such = || RecordError::Removed(key.to_owned());
        let lock = ContainerLock::acquire(&self.state_dir)?.ok_or_else(no_such)?;
        let state = self.read_state()?.ok_or_else(no_such)?;
        Ok((lock, state))
    }

    /// The container's log (docker's json-file format).
    pub fn log_path(&self) -> PathBuf {
        self.state_dir.join("json.log")
    }

    /// The state as recorded now; `None` once the container is removed.
    pub fn read_state(&self) -> Result<Option<State>> {
        let path = self.state_dir.join("state.json");
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(state) => Ok(Some(state)),
                Err(source) => Err(RecordError::Corrupt { path, source }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IoError::new(format!("read {}", path.display()), e).into()),
        }
    }

    pub fn write_state(&self, state: &State) -> Result<(), IoError> {
        let json = serde_json::to_vec_pretty(state).expect("a state serializes");
        write_replacing(&self.state_dir.join("state.json"), &json, self.durable)
    }

    /// Writes a generated file (hosts, hostname) into the state directory.
    pub fn write_generated(&self, file: &str, content: &str) -> Result<PathBuf, IoError> {
        let path = self.state_dir.join(file);
        write_replacing(&path, content.as_bytes(), self.durable)?;
        Ok(path)
    }

    /// Removes everything the caller can remove itself; returns false if
    /// the writable layer holds files of subordinate ids (which then need
    /// removing from inside a user namespace).
    pub fn remove_local(&self) -> Result<bool, IoError> {
        // overlayfs leaves its work/work directory with mode 0: ours, but
        // unreadable until we give ourselves access again.
        let _ = std::fs::set_permissions(self.layer_dir.join("work/work"), std::fs::Permissions::from_mode(0o700));
        // The layer first: if it holds files we cannot remove, the record
        // stays, so the container is still listed and `rm` can finish.
        if remove_tree(&self.layer_dir).is_err() {
            return Ok(false);
        }
        remove_tree(&self.state_dir).with_io_context(|| format!("remove {}", self.state_dir.display()))?;
        match std::fs::remove_file(&self.name_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(IoError::new(format!("remove {}", self.name_file.display()), e))
            }
            _ => {}
        }
        Ok(true)
    }
}

/// Reserves `name` for `id`: of two concurrent reservations exactly one
/// wins (O_EXCL). Returns the reservation's path.
pub(super) fn reserve_name(paths: &Paths, name: &ContainerName, id: &ContainerId) -> Result<PathBuf> {
    let names = paths.names();
    create_private_dir(&names)?;
    let name_file = names.join(name.as_str());
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&name_file) {
        Ok(mut f) => {
            f.write_all(id.as_str().as_bytes()).with_io_context(|| format!("write {}", name_file.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(RecordError::NameInUse(name.to_string()))
        }
        Err(e) => return Err(IoError::new(format!("reserve name in {}", name_file.display()), e).into()),
    }
    Ok(name_file)
}

fn remove_tree(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Write to a temporary file beside `path`, fsync, then rename over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    write_replacing(path, bytes, true)
}

/// Write to a temporary file beside `path` and rename it over `path`; with
/// `sync`, the file and the rename are on disk when it returns.
pub fn write_replacing(path: &Path, bytes: &[u8], sync: bool) -> Result<(), IoError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    ctr_core::fs::replace(&tmp, path, bytes, sync).with_io_context(|| format!("write {}", path.display()))
}

/// Every container of this user whose state can be read, newest first.
pub fn list(paths: &Paths) -> Result<Vec<State>> {
    let dir = paths.containers();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(IoError::new(format!("read {}", dir.display()), e).into()),
    };
    let mut states: Vec<State> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("state.json")).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect();
    states.sort_by_key(|s| std::cmp::Reverse(s.created));
    Ok(states)
}

/// Finds a container by name, full id, or unique id prefix, as docker does.
pub fn find(paths: &Paths, key: &str) -> Result<State> {
    let all = list(paths)?;
    if let Some(s) = all.iter().find(|s| s.name == key || s.id == key) {
        return Ok(s.clone());
    }
    let matches: Vec<&State> = all.iter().filter(|s| !key.is_empty() && s.id.starts_with(key)).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(RecordError::NotFound(key.to_owned())),
        _ => Err(RecordError::Ambiguous { key: key.to_owned(), count: matches.len() }),
    }
}

/// Now, as RFC 3339 with nanoseconds in UTC (docker's format).
pub use crate::units::now_rfc3339;

pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_with_a_dead_or_reused_pid_is_not_running() {
        let me = ProcessRef::current().unwrap();
        let mut state =
            State { id: "a".repeat(64), status: Status::Running, init: Some(me.clone()), ..State::default() };
        assert!(state.is_running());
        state.init = Some(ProcessRef { start_time: me.start_time + 7, ..me });
        assert_eq!(state.run_state(), RunState::Exited(None));
        state.init = None;
        assert!(!state.is_running(), "a pid alone is never trusted");
    }
    /// A container lives across an upgrade: a record with fields this
    /// release does not know (a removed one, or a newer release's) still
    /// parses, unlike the helper's strict records.
    #[test]
    fn a_record_with_fields_of_another_release_parses() {
        let mut json = serde_json::to_value(State { id: "b".repeat(64), ..State::default() }).unwrap();
        json["ports"] = serde_json::json!([["Tcp", 8080]]);
        json["a_later_field"] = serde_json::json!({ "x": 1 });
        let state: State = serde_json::from_value(json).unwrap();
        assert_eq!(state.id, "b".repeat(64));
    }
}
