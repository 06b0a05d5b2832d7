//! `--init`: `ctr init` stays as the container's pid 1 and runs the
//! command as its child, as docker's tini does, so that orphans are
//! reaped and signals reach a command that is not written to be pid 1
//! (which the kernel protects from every signal it has no handler for).
//!
//! No extra binary: the reaper is this process, after everything else is
//! set up. It stays non-dumpable (it runs the host's `ctr`), holds the
//! capabilities and seccomp filter the command gets, and does only three
//! things: forward each signal it receives to the command, reap every
//! child, and exit with the command's status once the command is gone.

use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getpgrp, setpgid, tcsetpgrp, ForkResult, Pid};

/// What the caller of [`split`] is.
pub enum Role {
    /// The command's side: go on to execute it.
    Command,
    /// The reaper's side: it never returns.
    Reaper(Pid),
}

/// Forks the command off. Every signal is blocked first, so none that
/// arrives meanwhile is lost: the reaper takes them with sigwait, the
/// command gets its mask back. The command gets a process group of its
/// own (the terminal's foreground one with `-t`), so that Ctrl-C reaches
/// it once, through the reaper. The init channel stays with the command
/// (it reports a failed exec, and its close at exec says the command
/// runs); the reaper closes its copy.
pub fn split(channel_fd: i32, terminal: bool) -> nix::Result<Role> {
    let mut old = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked()), Some(&mut old))?;
    // SAFETY: init is single-threaded here (no thread has been started),
    // so the child may run any code after fork.
    match unsafe { fork() }? {
        ForkResult::Child => {
            setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
            if terminal {
                // Allowed from a background group while SIGTTOU is blocked.
                tcsetpgrp(std::io::stdin(), getpgrp())?;
            }
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None)?;
            Ok(Role::Command)
        }
        ForkResult::Parent { child } => {
            let _ = nix::unistd::close(channel_fd);
            Ok(Role::Reaper(child))
        }
    }
}

fn blocked() -> SigSet {
    let mut all = SigSet::all();
    all.remove(Signal::SIGKILL);
    all.remove(Signal::SIGSTOP);
    all
}

/// The exit status docker gives for how the command ended.
fn status_of(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, signal, _) => Some(128 + signal as i32),
        _ => None,
    }
}

/// Forwards signals to `command` and reaps children until it has exited;
/// then exits with its status (which ends every other process of the
/// container, as pid 1's exit does).
pub fn reap(command: Pid) -> ! {
    // Blocked since split, SIGCHLD included: it stays pending for the wait.
    let all = blocked();
    loop {
        // Reap first: the command may have ended before the mask was set.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(status) if status.pid() == Some(command) => {
                    if let Some(code) = status_of(status) {
                        std::process::exit(code);
                    }
                }
                Ok(_) => {}
                // ECHILD: nothing left to wait for, the command included.
                Err(_) => std::process::exit(super::EXIT_ENGINE_ERROR),
            }
        }
        match all.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(signal) => {
                let _ = kill(command, signal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_as_docker_reports_them() {
        let pid = Pid::from_raw(7);
        assert_eq!(status_of(WaitStatus::Exited(pid, 3)), Some(3));
        assert_eq!(status_of(WaitStatus::Signaled(pid, Signal::SIGTERM, false)), Some(143));
        assert_eq!(status_of(WaitStatus::StillAlive), None);
    }
}
