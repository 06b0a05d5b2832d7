//! A container process in the foreground (`ctr run`, `ctr exec`, and the
//! exec side of `ctr init`): read what `ctr init` reports before it
//! executes the command, then wait for the process while passing on the
//! signals sent to us and, with `-t`, relaying the caller's terminal to the
//! container's pseudo-terminal (raw mode, window size changes).

use crate::error::{IoContext, IoError};
use crate::process::tty::{self, RawMode};
use crate::spec::{InitFailure, InitReply};
use ctr_core::frame::FrameError;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::io::{IsTerminal, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// What `ctr init` said before executing the command.
#[derive(Default)]
pub struct InitReport {
    /// The master end of the process's terminal (with `-t`).
    pub console: Option<OwnedFd>,
    /// It could not execute the command; it exits with `exit_code`.
    pub failure: Option<InitFailure>,
    /// `ctr exec`: the process init forked for the command, ours to wait
    /// for once init has exited.
    pub forked: Option<Pid>,
}

/// Reads init's replies until the channel closes (the command runs) or a
/// failure is reported.
pub fn read_init_report(channel: &UnixStream) -> InitReport {
    let mut report = InitReport::default();
    loop {
        match crate::fdpass::recv_with_fd::<InitReply>(channel) {
            Ok((InitReply::Console, Some(fd))) => report.console = Some(fd),
            Ok((InitReply::Console, None)) => {}
            Ok((InitReply::Forked { pid }, _)) => report.forked = Some(Pid::from_raw(pid)),
            Ok((InitReply::Failed(f), _)) => {
                report.failure = Some(f);
                return report;
            }
            Err(FrameError::Closed) => return report,
            Err(e) => {
                report.failure =
                    Some(InitFailure { exit_code: 125, message: format!("reading the container's init: {e}") });
                return report;
            }
        }
    }
}

/// A terminal to relay: the container's master end, and whether our
/// stdin goes to it (`-i`).
pub struct Console {
    pub master: OwnedFd,
    pub stdin: bool,
    /// The container's log, which gets the terminal's output too (`run`).
    pub log: Option<crate::logs::LogWriter>,
    /// Whether the terminal's output is shown here (not with `run -a`
    /// lacking STDOUT); the log gets it either way.
    pub show_output: bool,
}

const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Waits for `pid` (our child, its pidfd given) and returns docker's
/// status for it: its exit code, or 128+N when killed by signal N. Signals
/// sent to us are passed on, those of the terminal (Ctrl-C) included: the
/// container runs in a session of its own, out of reach of our terminal.
pub fn wait(pid: Pid, pidfd: &OwnedFd, console: Option<Console>) -> Result<i32, IoError> {
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .io_context("block the forwarded signals")?;
    let sfd = SignalFd::new(&mask).io_context("signalfd")?;
    let mut relay = console.map(Relay::new).transpose()?;
    let mut exited_at: Option<Instant> = None;
    loop {
        if let Some(at) = exited_at {
            // The terminal closes when the last process holding it dies;
            // wait a moment for the output still in flight, not forever.
            if relay.as_ref().is_none_or(|r| r.master_done) || at.elapsed() > Duration::from_secs(2) {
                break;
            }
        }
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN), PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(r) = &relay {
            r.poll_fds(&mut fds);
        }
        let timeout = if exited_at.is_some() { PollTimeout::from(100u8) } else { PollTimeout::NONE };
        match poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(IoError::new("poll", e)),
            Ok(_) => {}
        }
        let ready = |i: usize| fds.get(i).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        let (exited, signalled) = (ready(0), ready(1));
        let ready_flags: Vec<bool> = (2..fds.len()).map(ready).collect();
        drop(fds);
        if signalled {
            if let Some(info) = sfd.read_signal().io_context("read a forwarded signal")? {
                let sig = Signal::try_from(info.ssi_signo as i32).ok();
                match (&relay, sig) {
                    (Some(r), Some(Signal::SIGWINCH)) => r.resize(),
                    (_, Some(Signal::SIGWINCH)) => {}
                    (_, Some(sig)) => {
                        let _ = kill(pid, sig);
                    }
                    _ => {}
                }
            }
        }
        if let Some(r) = &mut relay {
            r.pump(&ready_flags)?;
        }
        if exited && exited_at.is_none() {
            exited_at = Some(Instant::now());
        }
    }
    if let Some(log) = relay.as_mut().and_then(|r| r.log.as_mut()) {
        let _ = log.finish();
    }
    drop(relay);
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(IoError::new("waiting for the container's process", e)),
        }
    }
}

/// Bytes between the caller's terminal and the container's.
struct Relay {
    master: OwnedFd,
    stdin_open: bool,
    master_done: bool,
    /// Input read from stdin, not yet taken by the container's terminal.
    pending: Vec<u8>,
    log: Option<crate::logs::LogWriter>,
    show_output: bool,
    _raw: Option<RawMode>,
}

impl Relay {
    fn new(console: Console) -> Result<Self, IoError> {
        // Only our own descriptor becomes non-blocking; the caller's
        // terminal is shared with its shell and must stay as it is.
        nix::fcntl::fcntl(console.master.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))
            .io_context("make the terminal non-blocking")?;
        let raw = if console.stdin && std::io::stdin().is_terminal() { RawMode::enter()? } else { None };
        let relay = Self {
            master: console.master,
            stdin_open: console.stdin,
            master_done: false,
            pending: Vec::new(),
            log: console.log,
            show_output: console.show_output,
            _raw: raw,
        };
        relay.resize();
        Ok(relay)
    }

    fn resize(&self) {
        if let Some(size) = tty::caller_size() {
            let _ = tty::set_size(self.master.as_fd(), size);
        }
    }

    /// Adds master (index 2) and stdin (index 3) to the poll set.
    fn poll_fds<'a>(&'a self, fds: &mut Vec<PollFd<'a>>) {
        let mut master_events = PollFlags::empty();
        if !self.master_done {
            master_events |= PollFlags::POLLIN;
            if !self.pending.is_empty() {
                master_events |= PollFlags::POLLOUT;
            }
        }
        fds.push(PollFd::new(self.master.as_fd(), master_events));
        let stdin_events =
            if self.stdin_open && self.pending.len() < 64 * 1024 { PollFlags::POLLIN } else { PollFlags::empty() };
        let stdin = crate::sys::stdin();
        fds.push(PollFd::new(stdin, stdin_events));
    }

    fn pump(&mut self, ready: &[bool]) -> Result<(), IoError> {
        let mut buf = [0u8; 16 * 1024];
        if ready.get(1).copied().unwrap_or(false) && self.stdin_open {
            match nix::unistd::read(0, &mut buf) {
                Ok(0) | Err(nix::errno::Errno::EIO) => self.stdin_open = false,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(_) => self.stdin_open = false,
            }
        }
        if ready.first().copied().unwrap_or(false) && !self.master_done {
            loop {
                match nix::unistd::read(self.master.as_raw_fd(), &mut buf) {
                    Ok(0) | Err(nix::errno::Errno::EIO) => {
                        self.master_done = true;
                        break;
                    }
                    Ok(n) => {
                        if self.show_output {
                            let mut out = std::io::stdout().lock();
                            out.write_all(&buf[..n])
                                .and_then(|()| out.flush())
                                .io_context("write the terminal's output")?;
                        }
                        if let Some(log) = &mut self.log {
                            // A full disk must not break the terminal.
                            if log.write(crate::logs::Stream::Stdout, &buf[..n]).is_err() {
                                self.log = None;
                            }
                        }
                    }
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break,
                }
            }
        }
        if !self.pending.is_empty() && !self.master_done {
            match nix::unistd::write(&self.master, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                Err(_) => self.pending.clear(),
            }
        }
        Ok(())
    }
}
