//! `ctr exec`: a new process in a running container. The helper starts
//! `ctr init` as us in the container's cgroup (its record for our uid is
//! the only way in, so only our own containers), and that init joins every
//! namespace of the container's init by itself, without privilege, since
//! we own the container's user namespace ([`crate::init`]'s exec mode).
//! Exit status: the command's, 126/127 if it cannot be executed or found,
//! 1 if the container does not run.

use crate::container::{self, Container};
use crate::foreground::{self, Console};
use crate::helper_client::{Helper, ProcessStdio};
use crate::lock::ContainerLock;
use crate::paths::Paths;
use crate::spec::{ExecSpec, InitMessage, InitTask, ProcessSpec, INIT_PROTOCOL_VERSION};
use anyhow::{bail, Context, Result};
use ctr_core::frame;
use nix::unistd::Pid;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Start the command and return at once; its output is discarded. It
    /// ends with the container.
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[command(flatten)]
    pub process: crate::process_args::ProcessArgs,
    pub container: String,
    /// COMMAND [ARG...]
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn exec(paths: &Paths, args: ExecArgs) -> Result<i32> {
    args.process.check_terminal(false)?;
    if args.detach && (args.process.interactive || args.process.tty) {
        bail!("-d cannot be combined with -i or -t: nothing would be there to read the process's input or terminal");
    }
    let found = container::find(paths, &args.container)?;
    let container = Container::from_state(paths, &found)?;
    let not_running = || {
        eprintln!("ctr: container {} is not running: exec needs a running container (see `ctr ps -a`)", args.container);
        Ok(1)
    };
    // Held until the process is in the container's cgroup, so a concurrent
    // stop or rm cannot slip in between the check and the start.
    let Some(lock) = ContainerLock::acquire(&container.state_dir)? else { return not_running() };
    let Some(state) = container.read_state()?.filter(|s| s.is_running()) else { return not_running() };
    let Some(init) = state.init.clone() else { return not_running() };
    let base = state.process.clone().context("the container was started by an older ctr; exec needs a newer one")?;
    if let Some(dir) = &args.process.workdir {
        if !dir.starts_with('/') {
            bail!("the working directory {dir:?} is invalid: it must be an absolute path");
        }
    }
    let process = ProcessSpec {
        args: args.command.clone(),
        env: crate::run::merge_env(&base.env, &args.process.env),
        cwd: args.process.workdir.clone().unwrap_or(base.cwd),
        user: args.process.user.clone().or(base.user),
        capabilities: base.capabilities,
        oom_score_adj: None,
    };
    let terminal = args.process.terminal();
    let seccomp = crate::seccomp::program_for_exec(&container.state_dir, state.security.as_ref())?;

    // The helper's child, our process, is re-parented to us when the
    // helper exits, so that we can wait for it.
    nix::sys::prctl::set_child_subreaper(true).context("PR_SET_CHILD_SUBREAPER")?;
    let (mut ours, theirs) = UnixStream::pair().context("socketpair for the init channel")?;
    let stdio = if args.detach { ProcessStdio::null() } else { args.process.stdio() };
    let helper = Helper::new(&paths.helper());
    let spawned = helper.exec(&container.id, &OwnedFd::from(theirs), stdio)?;
    drop(lock);
    let pid = Pid::from_raw(spawned.pid);
    let spec = ExecSpec {
        target_pid: init.pid,
        target_start_time: init.start_time,
        process,
        terminal,
        interactive: args.process.interactive,
        seccomp,
    };
    let message = InitMessage { version: INIT_PROTOCOL_VERSION, task: InitTask::Exec(Box::new(spec)) };
    if let Err(e) = frame::write_frame(&mut ours, &message) {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        bail!("the exec process did not take its task: {e}");
    }
    let report = foreground::read_init_report(&ours);
    drop(ours);
    if let Some(failure) = &report.failure {
        eprintln!("ctr: {}", failure.message);
    }
    // Detached, the command runs now (a failure to start it was reported):
    // it stays in the container's cgroup, and its parent, no longer ours,
    // is reaped by whoever adopts it.
    if args.detach && report.failure.is_none() {
        return Ok(0);
    }
    let console = report.console.map(|master| Console { master, stdin: args.process.interactive });
    foreground::wait(pid, &spawned.pidfd, console)
}
