//! `exec`: a new process in a running container. The helper starts
//! `ctr init` as us in the container's cgroup (its record for our uid is
//! the only way in, so only our own containers), and that init joins every
//! namespace of the container's init by itself, without privilege, since
//! we own the container's user namespace ([`crate::init`]'s exec mode).

use super::record::Container;
use super::state::StateError;
use super::{invalid, ContainerError, Result};
use crate::error::IoContext;
use crate::helper_client::{Helper, ProcessStdio};
use crate::launch::{merge_env, ProcessOptions};
use crate::lock::ContainerLock;
use crate::paths::Paths;
use crate::process::liveness::{self, ProcessRef};
use crate::process::wait::{self, Console};
use crate::spec::{ExecSpec, InitMessage, InitTask, ProcessSpec, INIT_PROTOCOL_VERSION};
use ctr_core::frame;
use nix::unistd::Pid;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

/// A process to start in a running container.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The container's name, id or id prefix.
    pub container: String,
    /// COMMAND [ARG...]
    pub command: Vec<String>,
    /// Start it and return at once; its output is discarded.
    pub detach: bool,
    pub process: ProcessOptions,
}

/// How an exec ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ExecOutcome {
    /// The container does not run, or is paused (docker's status 1).
    Refused(StateError),
    /// The process's exit status (0 once a detached one runs), and what
    /// init reported if it could not execute the command.
    Exited { exit_code: i32, failure: Option<String> },
}

pub fn exec(paths: &Paths, request: ExecRequest) -> Result<ExecOutcome> {
    let prepared = crate::timing::time("exec.prepare", || prepare(paths, &request))?;
    let Prepared { container, lock, init, mut process, seccomp } = match prepared {
        Ok(prepared) => prepared,
        Err(refused) => return Ok(ExecOutcome::Refused(refused)),
    };
    crate::timing::ask_init(&mut process.env);
    let options = &request.process;
    let terminal = options.terminal();

    // The helper's child, our process, is re-parented to us when the
    // helper exits, so that we can wait for it.
    nix::sys::prctl::set_child_subreaper(true).io_context("PR_SET_CHILD_SUBREAPER")?;
    let (mut ours, theirs) = UnixStream::pair().io_context("socketpair for the init channel")?;
    let stdio = if request.detach { ProcessStdio::null() } else { options.stdio() };
    let helper = Helper::new(&paths.helper());
    let spawned = crate::timing::time("helper.exec", || helper.exec(&container.id, &OwnedFd::from(theirs), stdio))?;
    drop(lock);
    let pid = Pid::from_raw(spawned.pid);
    let helper_exit = spawned.helper;
    let spec = ExecSpec {
        target_pid: init.pid,
        target_start_time: init.start_time,
        process,
        terminal,
        interactive: options.interactive,
        seccomp,
    };
    let message = InitMessage { version: INIT_PROTOCOL_VERSION, task: InitTask::Exec(Box::new(spec)) };
    if let Err(e) = frame::write_frame(&mut ours, &message) {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        drop(helper_exit); // reaped: the process becomes ours to wait for
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(ContainerError::ExecHandoff(e));
    }
    let report = wait::read_init_report(&ours);
    drop(ours);
    // After init's report, so that the helper's exit is off the critical path.
    helper_exit.reap()?;
    let failure = report.failure.map(|f| f.message);
    // The process that runs the command, init's child: ours once init has
    // exited (right after forking it), since we are a subreaper. Without
    // one, init failed before forking and exits with its status.
    let (pid, pidfd) = match report.forked {
        Some(command) => {
            let pidfd = liveness::pidfd_open(command.as_raw()).io_context("pidfd_open of the exec's process")?;
            reap_init(pid)?;
            (command, pidfd)
        }
        None => (pid, spawned.pidfd),
    };
    // Detached, the command runs now (a failure to start it is reported):
    // it stays in the container's cgroup, and once we exit it is reaped by
    // whoever adopts it.
    if request.detach && failure.is_none() {
        return Ok(ExecOutcome::Exited { exit_code: 0, failure });
    }
    let console =
        report.console.map(|master| Console { master, stdin: options.interactive, log: None, show_output: true });
    let exit_code = crate::timing::time("exec.wait", || wait::wait(pid, &pidfd, console))?;
    Ok(ExecOutcome::Exited { exit_code, failure })
}

/// Waits for init, which exits as soon as it has forked the command's
/// process; then that process is our child.
fn reap_init(init: Pid) -> Result<()> {
    loop {
        match nix::sys::wait::waitpid(init, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => return other.map(drop).io_context("waiting for the exec's init").map_err(Into::into),
        }
    }
}

/// What an exec needs, read under the container's lock (still held).
struct Prepared {
    container: Container,
    lock: ContainerLock,
    init: ProcessRef,
    process: ProcessSpec,
    seccomp: Option<Vec<u8>>,
}

fn prepare(paths: &Paths, request: &ExecRequest) -> Result<std::result::Result<Prepared, StateError>> {
    let options = &request.process;
    options.check_terminal(false)?;
    if request.detach && (options.interactive || options.tty) {
        invalid!("-d cannot be combined with -i or -t: nothing would be there to read the process's input or terminal");
    }
    let (container, _) = Container::locate(paths, &request.container)?;
    // Held until the process is in the container's cgroup, so a concurrent
    // stop or rm cannot slip in between the check and the start.
    let key = &request.container;
    let not_running = || Ok(Err(StateError::NotRunning { name: key.clone() }));
    let Some(lock) = ContainerLock::acquire(&container.state_dir)? else { return not_running() };
    let Some(state) = container.read_state()? else { return not_running() };
    if let Err(refused) = state.run_state().check_exec(key) {
        return Ok(Err(refused));
    }
    let Some(init) = state.init.clone() else { return not_running() };
    let base = state.process.clone().ok_or(ContainerError::StartedByOlderCtr)?;
    if let Some(dir) = &options.workdir {
        if !dir.starts_with('/') {
            invalid!("the working directory {dir:?} is invalid: it must be an absolute path");
        }
    }
    let process = ProcessSpec {
        args: request.command.clone(),
        env: merge_env(&base.env, &options.env),
        cwd: options.workdir.clone().unwrap_or(base.cwd),
        user: options.user.clone().or(base.user),
        capabilities: base.capabilities,
        oom_score_adj: None,
        rlimits: base.rlimits,
        group_add: base.group_add,
    };
    let seccomp = crate::seccomp::program_for_exec(&container.state_dir, state.security.as_ref())?;
    Ok(Ok(Prepared { container, lock, init, process, seccomp }))
}
