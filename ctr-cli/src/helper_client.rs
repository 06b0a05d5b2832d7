//! The unprivileged end of the helper protocol: start the setuid helper
//! with the channel on fd 3 (and, for spawns, the init channel on fd 4),
//! say Hello, send one request, read the answer and any pidfd with it.
//! Hello and the request go out together, in one write before the helper
//! has even started: the helper still reads them one at a time, in order,
//! and answers Hello first, but no round trip waits for its Hello.

use crate::error::{IoContext, IoError};
use ctr_core::frame::{self, FrameError};
use ctr_core::ids::ContainerId;
use ctr_core::limits::ResourceLimits;
use ctr_core::net::{Cidr, NetworkName, NetworkSummary};
use ctr_core::protocol::{
    CgroupDir, Request, Response, SpawnRequest, HELPER_CHANNEL_FD, INIT_CHANNEL_FD_IN_HELPER, PROTOCOL_VERSION,
};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Helper {
    path: PathBuf,
}

/// What went wrong talking to the helper.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot run the helper {path}: install ctr with `sudo cargo xtask install`")]
    NotRunnable { path: PathBuf, source: std::io::Error },
    /// The helper said no; `what` names the request.
    #[error("the helper refused{what}: {error}")]
    Refused { what: String, error: ctr_core::protocol::HelperError },
    #[error("the helper closed the channel without answering (see its message above)")]
    Closed,
    #[error("helper channel: {0}")]
    Channel(FrameError),
    #[error("the helper answered {request} with {answer}")]
    Unexpected { request: &'static str, answer: String },
    #[error("the helper sent no pidfd with Spawned")]
    NoPidfd,
    #[error("the helper exited with {0} after spawning")]
    Exited(std::process::ExitStatus),
    #[error(transparent)]
    Io(#[from] IoError),
}

impl From<FrameError> for CallError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Closed => CallError::Closed,
            e => CallError::Channel(e),
        }
    }
}

type Result<T, E = CallError> = std::result::Result<T, E>;

fn unexpected(request: &'static str, answer: &Response) -> CallError {
    CallError::Unexpected { request, answer: format!("{answer:?}") }
}

/// Where a spawned process's stdin, stdout and stderr go: the helper hands
/// its own to the process it starts. `None`: ours.
#[derive(Default)]
pub struct ProcessStdio {
    pub stdin: Option<Stdio>,
    pub stdout: Option<Stdio>,
    pub stderr: Option<Stdio>,
}

impl ProcessStdio {
    /// stdin from /dev/null, the rest ours.
    pub fn no_stdin() -> Self {
        Self { stdin: Some(Stdio::null()), ..Self::default() }
    }

    /// All three on /dev/null (`exec -d`).
    pub fn null() -> Self {
        Self { stdin: Some(Stdio::null()), stdout: Some(Stdio::null()), stderr: Some(Stdio::null()) }
    }
}

/// What `Spawn` hands back: the container's first process.
pub struct SpawnedProcess {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub cgroups: Vec<CgroupDir>,
    pub network: Option<ctr_core::net::NetworkInfo>,
    /// The helper, which exits once it has answered.
    pub helper: HelperExit,
}

/// A helper that has answered a spawn and is exiting. Until it is reaped
/// the spawned process is its child, not ours (a subreaper's): reap it
/// ([`HelperExit::reap`]) before waiting for that process, and after the
/// process's init has reported, so that its exit is off a start's critical
/// path. Dropped, it is reaped too. The spawned process's pid cannot be
/// reused meanwhile: the helper never waits for it, so it is reaped by us
/// alone, after it has been re-parented.
pub struct HelperExit(Child);

impl HelperExit {
    /// Waits for the helper to exit; an exit other than success is an error.
    pub fn reap(mut self) -> Result<()> {
        let status = self.0.wait().io_context("waiting for the helper")?;
        if !status.success() {
            return Err(CallError::Exited(status));
        }
        Ok(())
    }
}

impl Drop for HelperExit {
    fn drop(&mut self) {
        // A second wait after `reap` returns the status already collected.
        let _ = self.0.wait();
    }
}

impl Helper {
    pub fn new(path: &Path) -> Self {
        Self { path: path.to_owned() }
    }

    /// Starts the helper, its channel on fd 3 and `init_channel` (if any)
    /// on fd 4, sends Hello and `request`, and reads the answer to Hello.
    fn start(
        &self,
        init_channel: Option<&OwnedFd>,
        stdio: ProcessStdio,
        request: &Request,
    ) -> Result<(Child, UnixStream)> {
        let (ours, theirs) = UnixStream::pair().io_context("socketpair for the helper channel")?;
        // Above the numbers they are moved to, so one dup2 cannot clobber the other.
        let theirs = dup_high(&theirs)?;
        let init_channel = init_channel.map(dup_high).transpose()?;
        let theirs_fd = theirs.as_raw_fd();
        let init_fd = init_channel.as_ref().map(AsRawFd::as_raw_fd);
        let mut command = Command::new(&self.path);
        if let Some(s) = stdio.stdin {
            command.stdin(s);
        }
        if let Some(s) = stdio.stdout {
            command.stdout(s);
        }
        if let Some(s) = stdio.stderr {
            command.stderr(s);
        }
        // SAFETY: the closure runs in the forked child before exec and only
        // calls dup2, which is async-signal-safe; it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                move_fd(theirs_fd, HELPER_CHANNEL_FD)?;
                if let Some(fd) = init_fd {
                    move_fd(fd, INIT_CHANNEL_FD_IN_HELPER)?;
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|source| CallError::NotRunnable { path: self.path.clone(), source })?;
        drop((theirs, init_channel));
        let mut channel = ours;
        let mut frames = frame::encode(&Request::Hello { version: PROTOCOL_VERSION })?;
        frames.extend(frame::encode(request)?);
        // A helper that refuses Hello exits without reading the request;
        // its refusal, read below, is what to report.
        let _ = channel.write_all(&frames);
        match frame::read_frame(&mut channel)? {
            Response::Hello { version } if version == PROTOCOL_VERSION => Ok((child, channel)),
            Response::Refused(error) => Err(CallError::Refused { what: String::new(), error }),
            other => Err(unexpected("Hello", &other)),
        }
    }

    /// Spawns a container's first process; `init_channel` becomes its fd 3
    /// and `stdio` its fds 0 to 2.
    pub fn spawn(&self, request: SpawnRequest, init_channel: &OwnedFd, stdio: ProcessStdio) -> Result<SpawnedProcess> {
        self.start_process(Request::Spawn(request), init_channel, stdio)
    }

    /// Starts a process of ours in the cgroup of running container `id`,
    /// running `ctr init` with `init_channel` as fd 3 (for `ctr exec`).
    pub fn exec(&self, id: &ContainerId, init_channel: &OwnedFd, stdio: ProcessStdio) -> Result<SpawnedProcess> {
        self.start_process(Request::Exec { id: id.clone() }, init_channel, stdio)
    }

    fn start_process(&self, request: Request, init_channel: &OwnedFd, stdio: ProcessStdio) -> Result<SpawnedProcess> {
        let (child, channel) = self.start(Some(init_channel), stdio, &request)?;
        // Reaped when dropped (on an error or a refusal), or by the caller
        // once it has heard from the process (see HelperExit).
        let helper = HelperExit(child);
        let (response, fd) = crate::fdpass::recv_with_fd(&channel)?;
        match response {
            Response::Spawned { pid, cgroups, network } => {
                let pidfd = fd.ok_or(CallError::NoPidfd)?;
                Ok(SpawnedProcess { pid, pidfd, cgroups, network, helper })
            }
            Response::Refused(error) => Err(CallError::Refused { what: String::new(), error }),
            other => Err(unexpected("a spawn", &other)),
        }
    }

    /// Sends one request that starts no process and returns the answer;
    /// a refusal becomes an error that says `what` was refused.
    fn call(&self, request: Request, what: &str) -> Result<Response> {
        let (mut child, mut channel) = self.start(None, ProcessStdio::default(), &request)?;
        let response = frame::read_frame(&mut channel);
        let _ = child.wait();
        match response? {
            Response::Refused(error) => Err(CallError::Refused { what: format!(" {what}"), error }),
            answer => Ok(answer),
        }
    }

    /// Pauses (`frozen`) or resumes a container through the freezer.
    pub fn freeze(&self, id: &ContainerId, frozen: bool) -> Result<()> {
        let what = if frozen { "to pause the container" } else { "to unpause the container" };
        match self.call(Request::Freeze { id: id.clone(), frozen }, what)? {
            Response::Frozen { .. } => Ok(()),
            other => Err(unexpected("Freeze", &other)),
        }
    }

    /// Writes new limits to a running container's cgroups.
    pub fn update(&self, id: &ContainerId, limits: ResourceLimits) -> Result<()> {
        match self.call(Request::Update { id: id.clone(), limits }, "to update the container's limits")? {
            Response::Updated => Ok(()),
            other => Err(unexpected("Update", &other)),
        }
    }

    /// Kills what is left in a container's cgroup and removes it.
    pub fn remove_cgroup(&self, id: &ContainerId) -> Result<()> {
        match self.call(Request::RemoveCgroup { id: id.clone() }, "to remove the cgroup")? {
            Response::Removed => Ok(()),
            other => Err(unexpected("RemoveCgroup", &other)),
        }
    }

    /// Has the helper remove what our dead containers left on the host
    /// (cgroups, veths, rules, leases, records); returns how many.
    pub fn reconcile(&self) -> Result<u32> {
        match self.call(Request::Reconcile, "to clean up after dead containers")? {
            Response::Reconciled { containers } => Ok(containers),
            other => Err(unexpected("Reconcile", &other)),
        }
    }

    /// Registers a network of ours; the helper picks its bridge (and its
    /// subnet, when none is given).
    pub fn network_create(&self, name: NetworkName, subnet: Option<Cidr>) -> Result<NetworkSummary> {
        match self.call(Request::NetworkCreate { name, subnet }, "to create the network")? {
            Response::Networks(mut created) if created.len() == 1 => Ok(created.remove(0)),
            other => Err(unexpected("NetworkCreate", &other)),
        }
    }

    pub fn network_remove(&self, name: NetworkName) -> Result<()> {
        match self.call(Request::NetworkRemove { name }, "to remove the network")? {
            Response::NetworkRemoved => Ok(()),
            other => Err(unexpected("NetworkRemove", &other)),
        }
    }

    /// The default network and ours.
    pub fn network_list(&self) -> Result<Vec<NetworkSummary>> {
        match self.call(Request::NetworkList, "to list networks")? {
            Response::Networks(networks) => Ok(networks),
            other => Err(unexpected("NetworkList", &other)),
        }
    }
}

/// A close-on-exec duplicate numbered 10 or above.
fn dup_high(fd: &impl AsRawFd) -> Result<OwnedFd> {
    let raw = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10)).io_context("dup")?;
    Ok(crate::sys::adopt(raw))
}

/// dup2 that also works when `from == to` (clearing close-on-exec).
fn move_fd(from: RawFd, to: RawFd) -> std::io::Result<()> {
    if from == to {
        nix::fcntl::fcntl(to, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))?;
    } else {
        nix::unistd::dup2(from, to)?;
    }
    Ok(())
}
