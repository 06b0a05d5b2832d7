//! `ctr init` for `ctr exec`: joins every namespace of a running
//! container's init, without privilege. The helper started us in the
//! container's cgroup, as the caller, with no capability; the caller owns
//! the container's user namespace, so `setns` through a pidfd of the
//! container's init gives us exactly the container's view and powers. A new
//! pid namespace applies to children only, so we fork: the child becomes
//! the requested user and executes the command inside. We tell ctr the
//! child's pid ([`InitReply::Forked`]) and exit at once: ctr, a child
//! subreaper, inherits the child and waits for it itself, so that the
//! command's exit wakes ctr directly, with no process of ours in between.
//!
//! The child reports on the same channel (its terminal, or why the command
//! could not run). So that its frame never interleaves with ours, it first
//! waits for our end of a pipe to close ([`ParentDone`]); only those rare
//! paths wait, a command that starts without a terminal never does.

use super::{console, engine_failure, execute, process, report_failure};
use super::{InitContext, Result};
use crate::process::liveness;
use crate::spec::{ExecSpec, InitReply};
use nix::sched::CloneFlags;
use nix::unistd::{fork, ForkResult};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;

const NAMESPACES: [(&str, CloneFlags); 7] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
];

pub fn main(spec: &ExecSpec, mut channel: UnixStream) -> ! {
    if let Err(e) = crate::timing::time("exec.join", || join(spec)) {
        std::process::exit(report_failure(&mut channel, engine_failure(e)));
    }
    let (done_read, done_write) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(pipe) => pipe,
        Err(e) => std::process::exit(report_failure(&mut channel, engine_failure(refused!("pipe: {e}")))),
    };
    // SAFETY: this process is single-threaded (setns into a user namespace
    // has just required it), so the child starts with no lock held.
    match unsafe { fork() } {
        Err(e) => std::process::exit(report_failure(&mut channel, engine_failure(refused!("fork: {e}")))),
        Ok(ForkResult::Child) => {
            drop(done_write);
            let parent_done = ParentDone(done_read);
            let failure = match prepare(spec, &channel, &parent_done) {
                Ok((user, env)) => execute(&spec.process, &user, &env, spec.seccomp.as_deref()),
                Err(e) => engine_failure(e),
            };
            parent_done.wait();
            std::process::exit(report_failure(&mut channel, failure))
        }
        Ok(ForkResult::Parent { child }) => {
            // Unreaped (we never wait for it), the child's pid stays its own
            // until ctr, which inherits it when we exit, reaps it.
            let told = ctr_core::frame::write_frame(&mut channel, &InitReply::Forked { pid: child.as_raw() });
            if told.is_err() {
                // Nobody would wait for it.
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            }
            drop(channel);
            drop(done_write);
            std::process::exit(if told.is_ok() { 0 } else { super::EXIT_ENGINE_ERROR })
        }
    }
}

/// The child's end of a pipe whose other end the parent holds until it
/// has sent [`InitReply::Forked`]: end of file means the channel is ours.
struct ParentDone(OwnedFd);

impl ParentDone {
    /// Returns at the parent's exit (it writes nothing); an error too
    /// means the parent is gone.
    fn wait(&self) {
        while nix::unistd::read(self.0.as_raw_fd(), &mut [0u8]) == Err(nix::errno::Errno::EINTR) {}
    }
}

/// Enters the namespaces of the container's init, checked to be the
/// process ctr recorded (pid and start time), through a pidfd so the check
/// cannot race with pid reuse.
fn join(spec: &ExecSpec) -> Result<()> {
    let pid = spec.target_pid;
    let not_running = || refused!("the container is not running (its init, pid {pid}, is gone)");
    let pidfd = liveness::pidfd_open(pid).map_err(|_| not_running())?;
    if liveness::start_time(pid) != Some(spec.target_start_time) {
        return Err(not_running());
    }
    let mut flags = CloneFlags::empty();
    for (name, flag) in NAMESPACES {
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{name}"))
            .with_context(|| format!("inspect the container's {name} namespace"))?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))
            .with_context(|| format!("inspect our {name} namespace"))?;
        // Joining one we are already in (the host's network with
        // --network host) would need privilege over it, and change nothing.
        if (theirs.dev(), theirs.ino()) != (ours.dev(), ours.ino()) {
            flags |= flag;
        }
    }
    if !flags.contains(CloneFlags::CLONE_NEWUSER) {
        refuse!("the container shares our user namespace; refusing to exec into it");
    }
    // The pidfd names the process checked above; if it has died since,
    // setns fails rather than joining anything else.
    nix::sched::setns(&pidfd, flags).context("setns into the container's namespaces (needs Linux >= 5.8)")?;
    Ok(())
}

/// In the child, inside the container: stdio, user, environment, and the
/// container's capability bounding set.
fn prepare(
    spec: &ExecSpec,
    channel: &UnixStream,
    parent_done: &ParentDone,
) -> Result<(process::ResolvedUser, Vec<String>)> {
    if let Some(size) = spec.terminal {
        parent_done.wait();
        console::setup(channel, size, false)?;
    } else if !spec.interactive {
        let null = std::fs::File::open("/dev/null").context("open /dev/null")?;
        nix::unistd::dup2(null.as_raw_fd(), 0).context("stdin from /dev/null")?;
    }
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let mut user = process::resolve_user(spec.process.user.as_deref(), &read("/etc/passwd"), &read("/etc/group"))?;
    super::tuning::add_groups(&mut user, &spec.process.group_add, &read("/etc/group"), process::setgroups_allowed())?;
    super::tuning::set_rlimits(&spec.process.rlimits)?;
    let hostname = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default();
    let env = process::build_env(&spec.process, &hostname, &user.home);
    process::limit_capabilities(&spec.process.capabilities)?;
    Ok((user, env))
}
