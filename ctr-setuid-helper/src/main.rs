//! ctr-setuid-helper: the only privileged part of ctr.
//!
//! It is installed setuid root (or with file capabilities), started by `ctr`
//! with a socket on fd 3, and does one operation per run. Its order of work,
//! which nothing may reorder:
//!
//! 1. Clean the process before reading any input: non-dumpable (so the
//!    caller can never ptrace it or read its memory), signal mask and
//!    dispositions reset, resource limits raised so that none can stop it
//!    half-way (a hard limit too low is refused, see [`rlimit`]), fds 0-2
//!    guaranteed open, every fd above 4 closed, environment cleared, umask
//!    fixed.
//! 2. Establish who called (the real uid and gid) and become root.
//! 3. Load the root-owned config from the path fixed at build time.
//! 4. Read `Hello`; remove what the caller's dead containers left
//!    ([`reconcile`]); read one request, each length-checked before
//!    allocation; validate the request in full against the caller.
//! 5. Only then act, and answer with a result or a typed refusal.
//!
//! See ARCHITECTURE.md for the protocol and what each operation checks.

mod caller;
use ctr_core::cgroup;
mod config;
mod exec;
mod network;
mod reconcile;
mod record;
mod registry;
mod rlimit;
mod session;
mod spawn;
mod sys;

use ctr_core::protocol::{HelperError, Response, HELPER_CHANNEL_FD, INIT_CHANNEL_FD_IN_HELPER};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

fn main() -> ExitCode {
    let limits = match clean_process() {
        Ok(limits) => limits,
        Err(e) => {
            eprintln!("ctr-setuid-helper: {e}");
            return ExitCode::from(125);
        }
    };
    let caller = caller::Caller::from_real_ids(limits.clone().unwrap_or_default());
    let mut channel = UnixStream::from(sys::adopt_inherited_fd(HELPER_CHANNEL_FD));
    let result =
        limits.and_then(|_| caller::become_root()).and_then(|()| session::serve(&mut channel, &caller, config::load()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = session::send(&mut channel, &Response::Refused(e.clone()));
            eprintln!("ctr-setuid-helper: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Fails (with a message for stderr) only where the channel cannot be
/// trusted yet; a refusal to go on (resource limits) goes on the channel.
fn clean_process() -> Result<Result<rlimit::CallerLimits, HelperError>, String> {
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("cannot make the helper non-dumpable: {e}"))?;
    reset_signals();
    let limits = rlimit::harden();
    if !sys::is_socket(HELPER_CHANNEL_FD).map_err(|_| "fd 3 is not open: run the helper through ctr".to_owned())? {
        return Err("fd 3 must be a socket: run the helper through ctr".into());
    }
    ensure_std_fds()?;
    sys::close_fds_from(INIT_CHANNEL_FD_IN_HELPER as u32 + 1).map_err(|e| format!("close inherited fds: {e}"))?;
    for (key, _) in std::env::vars_os() {
        std::env::remove_var(key);
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    Ok(limits)
}

/// fds 0, 1, 2 and 4 must be open before the helper opens any file, or a
/// file opened as root could land on one of them and reach the container's
/// process. An unset one gets /dev/null, which lands on it: open(2) takes
/// the lowest free number, and every lower one is open by then (fd 3, the
/// channel, was checked first).
fn ensure_std_fds() -> Result<(), String> {
    for fd in [0, 1, 2, INIT_CHANNEL_FD_IN_HELPER] {
        if nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_err() {
            match nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDWR, nix::sys::stat::Mode::empty()) {
                Ok(null) if null == fd => {}
                other => return Err(format!("cannot open /dev/null as fd {fd}: {other:?}")),
            }
        }
    }
    Ok(())
}

/// Every signal unblocked and at its default, but those of
/// [`rlimit::IGNORED`], which must not kill the helper half-way.
fn reset_signals() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    for signal in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        let handler = if rlimit::IGNORED.contains(&signal) { SigHandler::SigIgn } else { SigHandler::SigDfl };
        // SAFETY: SIG_DFL and SIG_IGN run no code of ours in signal context.
        let _ = unsafe { sigaction(signal, &SigAction::new(handler, SaFlags::empty(), SigSet::empty())) };
    }
}
