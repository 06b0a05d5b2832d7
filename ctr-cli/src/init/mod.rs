//! `ctr init`: the container's first process, executed by the helper's
//! child inside the new namespaces as root of the user namespace (the
//! caller's own ids on the host, no host capability, no_new_privs set). It
//! reads its task from fd 3, configures the container's end of its veth
//! ([`network`]), builds the container's filesystem, becomes the requested
//! user and executes the command as pid 1. If anything fails it
//! reports on fd 3 and exits with docker's status (125, 126 or 127); on
//! success fd 3 closes at exec, which is how `ctr` knows the command runs.
//! With `-t` it first sends back the master end of the container's
//! terminal. For `ctr exec` it joins a running container instead
//! ([`exec`]).
//!
//! Two protections start before anything else, for every task:
//! - `ctr init` runs the host's `ctr` binary. Made non-dumpable, no
//!   process of the container can open it through /proc/PID/exe, nor read
//!   or write its memory (CVE-2019-5736): the kernel then wants
//!   CAP_SYS_PTRACE over the binary's owner's user namespace (the host's),
//!   which nothing in a container holds. The final execve makes the
//!   container's command dumpable again, as any process of the caller.
//! - It leaves the caller's session (setsid), so that without `-t` the
//!   container has no controlling terminal: TIOCSTI on a stdout that is
//!   the caller's terminal then fails with EPERM (CVE-2017-5226), and
//!   /dev/tty cannot name that terminal. With `-t`, the container's own
//!   pty becomes the controlling terminal of this new session.

/// Why `ctr init` could not start the container's command. It travels
/// to `ctr` as the message of an [`InitFailure`] (exit status 125).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A step failed; the message says which, the source why.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A system call failed, in a step that says nothing more.
    #[error(transparent)]
    Sys(#[from] nix::errno::Errno),
    #[error(transparent)]
    Os(#[from] std::io::Error),
    /// The spec or the image asks for something init refuses; the
    /// message says what.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Capabilities(#[from] caps::errors::CapsError),
    #[error(transparent)]
    Nul(#[from] std::ffi::NulError),
    #[error(transparent)]
    Number(#[from] std::num::ParseIntError),
    #[error(transparent)]
    Channel(#[from] ctr_core::frame::FrameError),
    #[error(transparent)]
    Link(#[from] ctr_net::link::LinkError),
    /// What was being done when `source` failed.
    #[error("{what}")]
    Context { what: String, source: Box<InitError> },
}

crate::error::module_error_context!(trait InitContext for InitError);

type Result<T, E = InitError> = std::result::Result<T, E>;

/// An [`InitError::Refused`] with a formatted message.
macro_rules! refused {
    ($($arg:tt)*) => {
        $crate::init::InitError::Refused(format!($($arg)*))
    };
}

/// Returns an [`InitError::Refused`] with a formatted message.
macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err(refused!($($arg)*))
    };
}

mod console;
mod exec;
mod keep_id;
pub(crate) mod mounts;
mod network;
pub(crate) mod process;
mod reaper;
mod tuning;

use crate::error::IoError;
use crate::spec::{ContainerSpec, InitFailure, InitMessage, InitReply, InitTask, INIT_PROTOCOL_VERSION};
use crate::timing;
use ctr_core::frame;
use ctr_core::protocol::INIT_CHANNEL_FD_IN_INIT;
use process::ExecFailure;
use std::os::unix::net::UnixStream;

use mounts::Kind;

const EXIT_ENGINE_ERROR: i32 = 125;

pub fn main() -> ! {
    // Opened while we are still dumpable: once we are not, /proc/self
    // belongs to host root and the write `--oom-score-adj` needs is refused.
    let oom_score_adj = std::fs::OpenOptions::new().write(true).open("/proc/self/oom_score_adj");
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        eprintln!("ctr init: PR_SET_DUMPABLE: {e}");
        std::process::exit(EXIT_ENGINE_ERROR);
    }
    // We are never a process group leader here (the helper forked us), so
    // this cannot fail; checked all the same, as it is a security boundary.
    if let Err(e) = nix::unistd::setsid() {
        eprintln!("ctr init: setsid: {e}");
        std::process::exit(EXIT_ENGINE_ERROR);
    }
    // Fd 3 is the init channel the helper placed there for us before exec.
    let mut channel = UnixStream::from(crate::sys::adopt(INIT_CHANNEL_FD_IN_INIT));
    let outcome = match frame::read_frame::<InitMessage>(&mut channel) {
        Err(e) => Err(engine_failure(refused!("reading the container spec: {e}"))),
        Ok(m) if m.version != INIT_PROTOCOL_VERSION => Err(engine_failure(refused!(
            "ctr init speaks version {INIT_PROTOCOL_VERSION}, ctr sent {}: reinstall ctr",
            m.version
        ))),
        Ok(InitMessage { task: InitTask::RemoveTree { path }, .. }) => {
            let removed = std::fs::remove_dir_all(&path).or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            });
            removed.map_err(|e| engine_failure(refused!("remove {}: {e}", path.display())))
        }
        Ok(InitMessage { task: InitTask::Run(mut spec), .. }) => {
            timing::take_init_request(&mut spec.process.env);
            Err(run(&spec, &channel, oom_score_adj))
        }
        Ok(InitMessage { task: InitTask::Exec(mut spec), .. }) => {
            timing::take_init_request(&mut spec.process.env);
            drop(oom_score_adj);
            exec::main(&spec, channel)
        }
    };
    let code = match outcome {
        Ok(()) => 0,
        Err(failure) => report_failure(&mut channel, failure),
    };
    std::process::exit(code)
}

/// Tells ctr why the command could not run; returns the exit status.
fn report_failure(channel: &mut UnixStream, failure: ExecFailure) -> i32 {
    let code = failure.exit_code;
    let _ = frame::write_frame(
        channel,
        &InitReply::Failed(InitFailure { exit_code: failure.exit_code, message: failure.message }),
    );
    code
}

fn engine_failure(e: InitError) -> ExecFailure {
    ExecFailure { exit_code: EXIT_ENGINE_ERROR, message: crate::error::chain(&e) }
}

/// Sets up the container and executes its command; returns only on failure.
fn run(spec: &ContainerSpec, channel: &UnixStream, oom_score_adj: std::io::Result<std::fs::File>) -> ExecFailure {
    let (user, env) = match prepare(spec, channel, oom_score_adj) {
        Ok(ready) => ready,
        Err(e) => return engine_failure(e),
    };
    if spec.init_reaper {
        match reaper::split(INIT_CHANNEL_FD_IN_INIT, spec.terminal.is_some()) {
            Ok(reaper::Role::Command) => {}
            Ok(reaper::Role::Reaper(command)) => {
                // The reaper runs under the command's filter too.
                if crate::seccomp::load(&spec.seccomp).is_err() {
                    let _ = nix::sys::signal::kill(command, nix::sys::signal::Signal::SIGKILL);
                }
                reaper::reap(command)
            }
            Err(e) => return engine_failure(refused!("--init: starting the command as pid 1's child: {e}")),
        }
    }
    execute(&spec.process, &user, &env, Some(&spec.seccomp))
}

/// Becomes `user`, enters the working directory and executes the
/// command; returns only on failure, with docker's exit status.
fn execute(
    process: &crate::spec::ProcessSpec,
    user: &process::ResolvedUser,
    env: &[String],
    seccomp: Option<&[u8]>,
) -> ExecFailure {
    let Some(program) = process.args.first() else { return engine_failure(refused!("no command given")) };
    let path = match process::lookup_executable(program, &process::path_of(env)) {
        Ok(path) => path,
        Err(f) => return f,
    };
    let exec_args = (|| -> Result<_> {
        process::switch_user(user)?;
        std::env::set_current_dir(&process.cwd)
            .with_context(|| format!("chdir to working directory {}", process.cwd))?;
        // A directory outside our root (reached through a leaked descriptor,
        // CVE-2024-21626) has no path from it: getcwd fails with ENOENT.
        nix::unistd::getcwd().with_context(|| format!("working directory {} is outside the container", process.cwd))?;
        let path =
            std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).context("NUL byte in the program path")?;
        // Closes at exec: the end of file tells ctr the command is running.
        nix::fcntl::fcntl(INIT_CHANNEL_FD_IN_INIT, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
        Ok((path, process::to_cstrings(&process.args)?, process::to_cstrings(env)?))
    })();
    let (path, argv, envp) = match exec_args {
        Ok(args) => args,
        Err(e) => return engine_failure(e),
    };
    // Last, so that no setup step runs under the container's filter; the
    // filter must allow the execve below.
    if let Err(e) = seccomp.map_or(Ok(()), |program| timing::time("seccomp.load", || crate::seccomp::load(program))) {
        return engine_failure(e.into());
    }
    timing::total("init.total");
    let Err(errno) = nix::unistd::execve(&path, &argv, &envp);
    let exit_code =
        if errno == nix::errno::Errno::ENOENT { process::EXIT_NOT_FOUND } else { process::EXIT_NOT_EXECUTABLE };
    ExecFailure { exit_code, message: format!("exec {program}: {}", errno.desc()) }
}

/// Everything up to the point of no return, as root of the user namespace.
fn prepare(
    spec: &ContainerSpec,
    channel: &UnixStream,
    oom_score_adj: std::io::Result<std::fs::File>,
) -> Result<(process::ResolvedUser, Vec<String>)> {
    timing::time("network.configure", || network::configure(spec.network.as_ref()))?;
    mounts::make_private()?;
    let root = timing::time("rootfs.mount", || mounts::mount_rootfs(&spec.rootfs))?;
    // On the bare overlay: nothing else is mounted over /etc yet.
    if let (Some(user), crate::spec::RootfsSpec::Overlay { .. }) = (&spec.keep_id_user, &spec.rootfs) {
        keep_id::add_entries(&root, user)?;
    }
    mounts::mount_system(&root, spec.terminal.is_some(), spec.shm_size)?;
    // Before any volume can cover /dev: the masks bind this very node.
    let null = mounts::open_dev_null(&root)?;
    mounts::bind_devices(&root, &spec.devices)?;
    for (host_file, inside) in &spec.etc_files {
        mounts::bind_into(&root, host_file, inside)?;
    }
    mounts::mount_volumes(&root, &spec.mounts)?;
    nix::unistd::sethostname(&spec.hostname).context("sethostname")?;
    timing::time("rootfs.pivot", || mounts::pivot(&root))?;
    // Before /proc/sys becomes read-only; only namespaced ones get here.
    tuning::write_sysctls(&spec.sysctls)?;
    if !spec.system_paths_unconfined {
        mounts::restrict_kernel_paths(&null)?;
    }
    drop(null);
    if let Some(size) = spec.terminal {
        console::setup(channel, size, true)?;
    }

    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let mut user = process::resolve_user(spec.process.user.as_deref(), &read("/etc/passwd"), &read("/etc/group"))?;
    tuning::add_groups(&mut user, &spec.process.group_add, &read("/etc/group"), process::setgroups_allowed())?;
    // Docker creates a missing working directory.
    mounts::secure_target(std::path::Path::new("/"), &spec.process.cwd, Kind::Dir)?;
    if spec.read_only_rootfs {
        mounts::read_only_root()?;
    }
    if let Some(adj) = spec.process.oom_score_adj {
        use std::io::Write;
        oom_score_adj
            .and_then(|mut f| f.write_all(adj.to_string().as_bytes()))
            .with_context(|| format!("--oom-score-adj {adj}: lowering the score below your own needs privilege"))?;
    }
    let env = process::build_env(&spec.process, &spec.hostname, &user.home);
    tuning::set_rlimits(&spec.process.rlimits)?;
    process::limit_capabilities(&spec.process.capabilities)?;
    Ok((user, env))
}
