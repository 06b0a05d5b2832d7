//! Starting a container's first process: the helper spawns it in new
//! namespaces and cgroups ([`start`]), this side holds its published ports
//! and hands its `ctr init` the spec over the init channel, then reads
//! what init reports before it executes the command. [`finish`] records
//! how it ended and removes its cgroup; [`remove_container`] removes what
//! is left of it, from inside a user namespace where it must. Used by
//! `ctr run` in the foreground and by the detached monitor alike.

use crate::container::record::{now_rfc3339, Container, RecordError, State};
use crate::container::state::{RunState, StateError, Transition};
use crate::error::{IoContext, IoError};
use crate::helper_client::CallError;
use crate::helper_client::{Helper, HelperExit, ProcessStdio};
use crate::idmap::id_maps;
use crate::lock::ContainerLock;
use crate::network;
use crate::paths::Paths;
use crate::ports::HeldPorts;
use crate::ports::PortError;
use crate::process::liveness::ProcessRef;
use crate::process::liveness::Vanished;
use crate::process::wait::{self, InitReport};
use crate::spec::{ContainerSpec, InitMessage, InitReply, InitTask, TerminalSize, INIT_PROTOCOL_VERSION};
use ctr_core::frame;
use ctr_core::frame::FrameError;
use ctr_core::ids::{ContainerId, ContainerName};
use ctr_core::limits::ResourceLimits;
use ctr_core::net::NetworkRequest;
use ctr_core::protocol::SpawnRequest;
use ctr_net::link::ContainerEnd;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::io::IsTerminal;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Why a container's process could not be started, or its end recorded.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("the input device is not a TTY: drop -t, or run from a terminal")]
    NotATerminal,
    #[error(transparent)]
    Helper(#[from] CallError),
    #[error("removing the container's cgroup")]
    RemoveCgroup(#[source] CallError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("the container's init did not take its spec: {0}")]
    Handoff(FrameError),
    /// `ctr init` could not remove a tree of subordinate ids' files.
    #[error("removing {path}: {message}")]
    RemoveTree { path: PathBuf, message: String },
    #[error("removing {path}: cleanup process ended with {status}")]
    CleanupEnded { path: PathBuf, status: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Vanished(#[from] Vanished),
    #[error(transparent)]
    Id(#[from] ctr_core::ids::IdError),
    #[error(transparent)]
    Io(#[from] IoError),
    /// A keep-id container whose maps /etc/subuid or /etc/subgid no longer give.
    #[error("{}", crate::image::userns::KEEP_ID_RANGES)]
    KeepIdRanges,
}

type Result<T, E = LaunchError> = std::result::Result<T, E>;

/// What shapes a container's process, shared by `run` and `exec` (as
/// docker's flags are): stdin, a terminal, environment, working directory
/// and user.
#[derive(Debug, Clone, Default)]
pub struct ProcessOptions {
    /// Keep stdin open and pass it to the process.
    pub interactive: bool,
    /// Give the process a pseudo-terminal of the container's.
    pub tty: bool,
    /// KEY=VALUE, or KEY to pass on ours.
    pub env: Vec<String>,
    /// Absolute; default: the image's for run, the container's for exec.
    pub workdir: Option<String>,
    /// NAME|UID[:GROUP|GID]; default: the image's for run, the container's for exec.
    pub user: Option<String>,
}

impl ProcessOptions {
    /// `-it` needs a terminal to put in raw mode, unless nothing reads it
    /// here (`detached`).
    pub fn check_terminal(&self, detached: bool) -> Result<()> {
        if self.tty && self.interactive && !detached && !std::io::stdin().is_terminal() {
            return Err(LaunchError::NotATerminal);
        }
        Ok(())
    }

    /// The pseudo-terminal's first size: the caller's, or 24x80.
    pub fn terminal(&self) -> Option<TerminalSize> {
        self.tty.then(|| crate::process::tty::caller_size().unwrap_or(TerminalSize { rows: 24, cols: 80 }))
    }

    /// Our stdin for the process only with -i and no terminal (a terminal
    /// carries stdin itself).
    pub fn stdio(&self) -> ProcessStdio {
        if self.interactive && !self.tty {
            ProcessStdio::default()
        } else {
            ProcessStdio::no_stdin()
        }
    }
}

/// The environment a container's command starts from, as docker's: with
/// a terminal, `TERM=xterm`, which the image's own `TERM` overrides.
pub fn base_env(image_env: &[String], tty: bool) -> Vec<String> {
    let has_term = image_env.iter().any(|e| e.split('=').next() == Some("TERM"));
    let term = (tty && !has_term).then(|| "TERM=xterm".to_owned());
    term.into_iter().chain(image_env.iter().cloned()).collect()
}

/// The image's environment, then `-e` on top (KEY alone copies ours).
pub fn merge_env(image_env: &[String], cli: &[String]) -> Vec<String> {
    let mut env: Vec<String> = image_env.to_vec();
    for item in cli {
        let entry = match item.split_once('=') {
            Some(_) => item.clone(),
            None => match std::env::var(item) {
                Ok(value) => format!("{item}={value}"),
                Err(_) => continue,
            },
        };
        let key = entry.split('=').next().unwrap_or_default().to_owned();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(entry);
    }
    env
}

/// A fresh random container id.
pub fn new_container_id() -> Result<ContainerId, IoError> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .io_context("reading /dev/urandom")?;
    Ok(ContainerId::from_bytes(&bytes))
}

/// What the container is started with.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Launch {
    pub spec: ContainerSpec,
    pub network: NetworkRequest,
    pub limits: ResourceLimits,
    /// `--userns keep-id`: the caller's own ids at their own place.
    #[serde(default)]
    pub keep_id: bool,
}

/// A container whose command runs (or whose init reported why not).
pub struct Started {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    pub report: InitReport,
    /// Its published host ports, bound until it is gone ([`crate::ports`]).
    pub ports: HeldPorts,
}

/// Records how a container ended, under its lock: whether the OOM killer
/// struck (read before the cgroup goes), then the cgroup removed whatever
/// happened, then the exit in its state, or with `rm` the container gone.
/// Idempotent, and a no-op for a container removed meanwhile (`rm -f`).
pub fn finish(
    paths: &Paths,
    helper: &Helper,
    container: &Container,
    state: &mut State,
    exit_code: Option<i32>,
    started: bool,
    rm: bool,
) -> Result<()> {
    let lock = ContainerLock::acquire(&container.state_dir)?;
    state.oom_killed |= crate::stats::cgroup::oom_killed(&state.cgroups);
    if let Some(info) = &state.network {
        network::announce(paths, state, info, false);
    }
    let cgroup_removed = helper.remove_cgroup(&container.id).map_err(LaunchError::RemoveCgroup);
    if lock.is_none() {
        return cgroup_removed;
    }
    // `ctr stop` may have marked it meanwhile; that mark must survive.
    // So may the health checks (`crate::health`), whose results are kept.
    if let Ok(Some(recorded)) = container.read_state() {
        state.stopped_by_user |= recorded.stopped_by_user;
        if recorded.init == state.init {
            state.health = recorded.health;
        }
    }
    if rm {
        remove_container(helper, container)?;
    } else {
        let before = if started { state.run_state() } else { RunState::Created };
        state.status = before.after(Transition::Exit, &state.name)?;
        state.exit_code = exit_code;
        state.finished_at = Some(now_rfc3339());
        container.write_state(state)?;
    }
    cgroup_removed
}

/// Asks the helper for the container's first process, records it, hands
/// `ctr init` its spec and reads what it reports before executing.
pub fn start(
    paths: &Paths,
    helper: &Helper,
    container: &Container,
    state: &mut State,
    launch: Launch,
    stdio: ProcessStdio,
) -> Result<Started> {
    let Launch { mut spec, network, limits, keep_id } = launch;
    let (uid_map, gid_map) = match keep_id {
        true => crate::idmap::keep_id_maps().ok_or(LaunchError::KeepIdRanges)?,
        false => id_maps(),
    };
    let request = SpawnRequest {
        id: container.id.clone(),
        name: container.name.clone(),
        user_namespace: true,
        network,
        uid_map,
        gid_map,
        limits,
    };
    // Once the helper exits, its child (the container) is re-parented to
    // us, so that we can wait for it.
    nix::sys::prctl::set_child_subreaper(true).io_context("PR_SET_CHILD_SUBREAPER")?;
    let (mut ours, theirs) = UnixStream::pair().io_context("socketpair for the init channel")?;
    let spawned = crate::timing::time("helper.spawn", || helper.spawn(request, &OwnedFd::from(theirs), stdio))?;
    let pid = Pid::from_raw(spawned.pid);
    let helper_exit = spawned.helper;
    // Kills the process before its command runs; reaped once it is ours.
    let abandon = |helper_exit: HelperExit| {
        let _ = kill(pid, Signal::SIGKILL);
        drop(helper_exit);
        let _ = waitpid(pid, None);
    };
    // Before the command runs (init waits for its spec): if another
    // program bound a port since the helper checked it, nothing started.
    let ports = match HeldPorts::hold(spawned.network.as_ref()) {
        Ok(ports) => ports,
        Err(e) => {
            abandon(helper_exit);
            return Err(e.into());
        }
    };
    state.status = state.run_state().after(Transition::Start, &state.name)?;
    state.pid = Some(spawned.pid);
    // Our unreaped child now, so its pid cannot be reused before this.
    state.init = Some(ProcessRef::of(spawned.pid)?);
    state.started_at = Some(now_rfc3339());
    state.cgroups = spawned.cgroups.clone();
    if state.limits.pids_limit.is_none() {
        // What the helper's default_pids_limit gave, so inspect shows it.
        state.limits.pids_limit = pids_limit_in_force(&state.cgroups);
    }
    state.network = spawned.network.clone();
    container.write_state(state)?;
    if let Some(info) = &spawned.network {
        spec.network = Some(ContainerEnd::eth0(info.address, info.prefix, info.gateway));
        let hosts = network::hosts_file(paths, state, &spec.hostname, Some(info));
        network::rewrite_in_place(&container.state_dir.join("hosts"), &hosts)
            .io_context("rewrite the container's /etc/hosts")?;
    }

    let message = InitMessage { version: INIT_PROTOCOL_VERSION, task: InitTask::Run(Box::new(spec)) };
    if let Err(e) = frame::write_frame(&mut ours, &message) {
        abandon(helper_exit);
        return Err(LaunchError::Handoff(e));
    }
    let report = wait::read_init_report(&ours);
    // The helper has long exited by now: the process becomes our child.
    crate::timing::time("helper.reap", || helper_exit.reap())?;
    // Only now that init has configured its address do peers learn its name.
    if let Some(info) = spawned.network.as_ref().filter(|_| report.failure.is_none()) {
        network::announce(paths, state, info, true);
    }
    Ok(Started { pid, pidfd: spawned.pidfd, report, ports })
}

/// pids.max of the container's cgroup (v1 pids hierarchy, else v2), if it
/// is a number.
fn pids_limit_in_force(cgroups: &[ctr_core::protocol::CgroupDir]) -> Option<u64> {
    let dir = cgroups
        .iter()
        .find(|d| !d.v2 && d.controllers.iter().any(|c| c == "pids"))
        .or_else(|| cgroups.iter().find(|d| d.v2))?;
    std::fs::read_to_string(Path::new(&dir.path).join("pids.max")).ok()?.trim().parse().ok()
}

/// Removes the container's layer and state. Files that the container made
/// as a subordinate id cannot be removed by us directly; a throwaway
/// `ctr init` in a new user namespace with our mapping removes them.
pub fn remove_container(helper: &Helper, container: &Container) -> Result<()> {
    if container.remove_local()? {
        return Ok(());
    }
    remove_in_user_namespace(helper, &container.layer_dir)?;
    container.remove_local()?;
    Ok(())
}

pub fn remove_in_user_namespace(helper: &Helper, path: &Path) -> Result<()> {
    let id = new_container_id()?;
    let (uid_map, gid_map) = id_maps();
    let request = SpawnRequest {
        id: id.clone(),
        name: ContainerName::parse(&format!("rm-{}", id.short()))?,
        user_namespace: true,
        network: NetworkRequest::None,
        uid_map,
        gid_map,
        limits: ResourceLimits::default(),
    };
    nix::sys::prctl::set_child_subreaper(true).io_context("PR_SET_CHILD_SUBREAPER")?;
    let (mut ours, theirs) = UnixStream::pair().io_context("socketpair for the init channel")?;
    let spawned = helper.spawn(request, &OwnedFd::from(theirs), ProcessStdio::no_stdin())?;
    let message = InitMessage { version: INIT_PROTOCOL_VERSION, task: InitTask::RemoveTree { path: path.to_owned() } };
    frame::write_frame(&mut ours, &message).map_err(LaunchError::Handoff)?;
    let failure = match frame::read_frame::<InitReply>(&mut ours) {
        Ok(InitReply::Failed(f)) => Some(f),
        _ => None,
    };
    spawned.helper.reap()?;
    let status = waitpid(Pid::from_raw(spawned.pid), None);
    helper.remove_cgroup(&id)?;
    match (failure, status) {
        (None, Ok(WaitStatus::Exited(_, 0))) => Ok(()),
        (Some(f), _) => Err(LaunchError::RemoveTree { path: path.to_owned(), message: f.message }),
        (None, other) => Err(LaunchError::CleanupEnded { path: path.to_owned(), status: format!("{other:?}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_by_key() {
        let merged = merge_env(&["PATH=/bin".into(), "A=1".into()], &["A=2".into(), "B=3".into()]);
        assert_eq!(merged, ["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn a_terminal_gets_term_xterm_unless_the_image_or_e_says_otherwise() {
        let image = ["PATH=/bin".to_owned()];
        assert_eq!(base_env(&image, true), ["TERM=xterm", "PATH=/bin"]);
        assert_eq!(base_env(&image, false), ["PATH=/bin"]);
        assert_eq!(base_env(&["TERM=vt100".into()], true), ["TERM=vt100"]);
        assert_eq!(merge_env(&base_env(&image, true), &["TERM=dumb".into()]), ["PATH=/bin", "TERM=dumb"]);
    }
}
