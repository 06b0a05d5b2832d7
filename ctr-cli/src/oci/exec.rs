//! `exec`: another process in a running container, as runc's. ctr-oci
//! forks; the child moves itself into the container's cgroup, joins every
//! namespace of the container's process that differs from ours (through
//! its pidfd, so a reused pid is never joined), and forks again so that
//! the grandchild is inside the pid namespace. The grandchild takes the
//! process's settings as `create`'s does ([`super::init::become_process`],
//! with the container's seccomp filter kept at create), reports, and
//! executes. ctr-oci is its subreaper, so without `--detach` it waits for
//! it (passing signals on) and returns its exit status.

use super::init::{become_process, execute, Report};
use super::record::{Root, Status, SECCOMP_FILE};
use super::{OciContext, Result};
use ctr_core::frame;
use nix::sched::CloneFlags;
use nix::unistd::{ForkResult, Pid};
use oci_spec::runtime::Process;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// The process `exec` runs without `--process`: the container's own
/// (config.json's, as runc takes it) with these arguments.
pub fn process_from_bundle(
    root: &Root,
    id: &str,
    args: Vec<String>,
    env: &[String],
    cwd: Option<&str>,
    terminal: bool,
) -> Result<Process> {
    let record = root.load(id)?;
    let config = record.bundle.join("config.json");
    let spec: oci_spec::runtime::Spec =
        serde_json::from_slice(&std::fs::read(&config).with_context(|| format!("read {}", config.display()))?)
            .with_context(|| format!("parse {}", config.display()))?;
    let mut process = spec.process().clone().context("config.json has no process")?;
    process.set_args(Some(args));
    process.set_terminal(Some(terminal));
    let mut all_env = process.env().clone().unwrap_or_default();
    all_env.extend(env.iter().cloned());
    process.set_env(Some(all_env));
    if let Some(cwd) = cwd {
        process.set_cwd(cwd.into());
    }
    Ok(process)
}

pub struct ExecOptions {
    pub process: Process,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    /// Where to send the terminal's master end, with process.terminal.
    pub console_socket: Option<PathBuf>,
    /// `--preserve-fds N`: descriptors 3 to 3+N-1 reach the process.
    pub preserve_fds: u32,
}

const NAMESPACES: [(&str, CloneFlags); 7] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
];

/// Runs the process; returns its exit status, or 0 once started with `detach`.
pub fn exec(root: &Root, id: &str, options: &ExecOptions) -> Result<i32> {
    let terminal = options.process.terminal().unwrap_or(false);
    super::fds::check_open(3, options.preserve_fds, &format!("--preserve-fds {}", options.preserve_fds))?;
    let mut console = super::console::connect(terminal, options.console_socket.as_deref())?;
    let record = root.load(id)?;
    if root.status(&record) != Status::Running {
        refuse!("container not running");
    }
    let pidfd = crate::process::liveness::pidfd_open(record.init.pid).context("container not running")?;
    if !record.init.is_alive() {
        refuse!("container not running");
    }
    let mut join = CloneFlags::empty();
    for (name, flag) in NAMESPACES {
        let theirs = std::fs::read_link(format!("/proc/{}/ns/{name}", record.init.pid));
        let ours = std::fs::read_link(format!("/proc/self/ns/{name}"));
        if let (Ok(theirs), Ok(ours)) = (theirs, ours) {
            if theirs != ours {
                join |= flag;
            }
        }
    }
    // A container sharing our mount namespace has a root of its own only
    // by chroot: the process enters it as the container's did.
    let container_root = if join.contains(CloneFlags::CLONE_NEWNS) {
        None
    } else {
        let path = format!("/proc/{}/root", record.init.pid);
        let flags = nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC;
        let raw = nix::fcntl::open(path.as_str(), flags, nix::sys::stat::Mode::empty())
            .context("open the container's root")?;
        Some(crate::sys::adopt(raw))
    };
    let seccomp = match std::fs::read(root.dir(id).join(SECCOMP_FILE)) {
        Ok(program) => Some(program),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).context("read the container's seccomp filter"),
    };
    if !terminal && join.contains(CloneFlags::CLONE_NEWUSER) {
        super::fds::give_stdio_to_namespace_root(Pid::from_raw(record.init.pid))?;
    }
    nix::sys::prctl::set_child_subreaper(true).context("PR_SET_CHILD_SUBREAPER")?;
    let (mut ours, mut theirs) = UnixStream::pair().context("socketpair")?;
    // SAFETY: ctr-oci is single-threaded; the child only makes system
    // calls and exits.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        ForkResult::Child => {
            drop(ours);
            let code = match enter(&record.cgroups, &pidfd, join, container_root.as_ref()) {
                Ok(ForkResult::Parent { child }) => {
                    let _ = frame::write_frame(&mut theirs, &child.as_raw());
                    0
                }
                Ok(ForkResult::Child) => {
                    // ctr-oci has our pid before our report.
                    let mut go = [0u8; 1];
                    let _ = std::io::Read::read_exact(&mut theirs, &mut go);
                    let uid = options.process.user().uid();
                    let ready = nix::sys::prctl::set_dumpable(false)
                        .context("PR_SET_DUMPABLE")
                        .and_then(|()| match console.take() {
                            Some(socket) => Ok(super::console::attach(socket, uid)?),
                            None => Ok(()),
                        })
                        .and_then(|()| become_process(&options.process, seccomp.as_deref()));
                    match ready {
                        Err(e) => {
                            let _ = frame::write_frame(&mut theirs, &Report::Failed(format!("{e:#}")));
                            1
                        }
                        Ok(ready) => {
                            let _ = frame::write_frame(&mut theirs, &Report::Ready);
                            drop(theirs);
                            let Err(e) = execute(&options.process, seccomp.as_deref(), ready, options.preserve_fds);
                            eprintln!("ctr-oci: {e:#}");
                            1
                        }
                    }
                }
                Err(e) => {
                    let _ = frame::write_frame(&mut theirs, &-1i32);
                    let _ = frame::write_frame(&mut theirs, &Report::Failed(format!("{e:#}")));
                    1
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            drop(console);
            let pid: i32 = frame::read_frame(&mut ours).context("the exec'd process died while starting")?;
            let _ = std::io::Write::write_all(&mut ours, b"G");
            let report: Report = frame::read_frame(&mut ours).context("the exec'd process died while starting")?;
            let _ = nix::sys::wait::waitpid(child, None);
            if let Report::Failed(message) = report {
                if pid > 0 {
                    let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
                }
                return Err(super::OciError::Invalid(message));
            }
            let pid = Pid::from_raw(pid);
            if let Some(path) = &options.pid_file {
                std::fs::write(path, pid.to_string()).with_context(|| format!("write {}", path.display()))?;
            }
            if options.detach {
                return Ok(0);
            }
            super::create::wait_forwarding_signals(pid)
        }
    }
}

/// In the forked child: the cgroup, the namespaces (then the chroot of a
/// container sharing our mount namespace), then the fork into the pid
/// namespace.
fn enter(
    cgroups: &ctr_core::cgroup::ContainerCgroups,
    pidfd: &std::os::fd::OwnedFd,
    join: CloneFlags,
    container_root: Option<&std::os::fd::OwnedFd>,
) -> Result<ForkResult> {
    ctr_core::cgroup::attach(cgroups, nix::unistd::getpid(), true).map_err(|e| refused!("join the cgroup: {e}"))?;
    if !join.is_empty() {
        nix::sched::setns(pidfd, join).context("join the container's namespaces")?;
    }
    if let Some(root) = container_root {
        nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(root)).context("chdir into the container's root")?;
        nix::unistd::chroot(".").context("chroot into the container's root")?;
        nix::unistd::chdir("/").context("chdir /")?;
    }
    // SAFETY: still single-threaded, as above.
    unsafe { nix::unistd::fork() }.context("fork into the pid namespace")
}
