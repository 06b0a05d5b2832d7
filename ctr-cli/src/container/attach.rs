//! `attach`: our stdio to a detached container's, through its monitor's
//! socket in the runtime directory ([`monitor::attach_socket`]). Output
//! (stdout and stderr, or the terminal) comes back; our input goes to the
//! container's stdin (it must have been started with -i) or terminal
//! (-t). With a terminal, the detach keys (docker's default Ctrl-P
//! Ctrl-Q, or `--detach-keys`) detach and leave it running, as with
//! docker, and our terminal's size goes with us (again on every SIGWINCH).
//! When the container exits, attach returns its exit code.

use super::record::{Container, State};
use super::{invalid, Result};
use crate::error::{IoContext, IoError};
use crate::paths::Paths;
use crate::process::attach_stream::{Decoder, Frame};
use crate::process::monitor;
use crate::process::tty::{self, RawMode};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// Docker's default detach keys.
const CTRL_P: u8 = 0x10;
const CTRL_Q: u8 = 0x11;

/// The key sequence that detaches a terminal from a container, in
/// docker's syntax: a comma-separated list of keys, each a single
/// character or `ctrl-X` with X one of `@`, `a`-`z`, `[`, `\`, `]`, `^`,
/// `_` (any case). The empty string turns detaching off (podman's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKeys(Vec<u8>);

impl Default for DetachKeys {
    fn default() -> Self {
        Self(vec![CTRL_P, CTRL_Q])
    }
}

/// A `--detach-keys` that is not docker's syntax.
#[derive(Debug, thiserror::Error)]
#[error(
    "--detach-keys {spec:?}: {key:?} is not a key; give keys separated by commas, each one character or ctrl-X \
(X one of @, a-z, [, \\, ], ^, _), e.g. ctrl-p,ctrl-q (or \"\" to turn detaching off)"
)]
pub struct BadDetachKeys {
    pub spec: String,
    pub key: String,
}

impl DetachKeys {
    pub fn parse(spec: &str) -> Result<Self, BadDetachKeys> {
        if spec.is_empty() {
            return Ok(Self(Vec::new()));
        }
        let bad = |key: &str| BadDetachKeys { spec: spec.to_owned(), key: key.to_owned() };
        let mut keys = Vec::new();
        for key in spec.split(',') {
            let code = match key.as_bytes() {
                [c] if c.is_ascii() => *c,
                _ => {
                    let lower = key.to_ascii_lowercase();
                    let Some(&[c]) = lower.strip_prefix("ctrl-").map(str::as_bytes) else { return Err(bad(key)) };
                    match c {
                        b'@' => 0,
                        b'a'..=b'z' => c - b'a' + 1,
                        b'[' | b'\\' | b']' | b'^' | b'_' => c - b'@',
                        _ => return Err(bad(key)),
                    }
                }
            };
            keys.push(code);
        }
        Ok(Self(keys))
    }

    /// The sequence, or `None` when detaching is turned off.
    fn sequence(&self) -> Option<&[u8]> {
        (!self.0.is_empty()).then_some(self.0.as_slice())
    }
}

/// How an attachment ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Attachment {
    /// The container exited with this code (docker's status).
    Exited(i32),
    /// The detach keys: the container runs on.
    Detached,
}

/// A connection to the monitor of a running container.
pub fn connect(paths: &Paths, container: &Container) -> Result<UnixStream, IoError> {
    let socket = monitor::attach_socket(paths, &container.id);
    UnixStream::connect(&socket).with_io_context(|| {
        format!("cannot attach to {}: it is not running, or its monitor is gone", container.name.as_str())
    })
}

/// The detach keys of an attachment: `--detach-keys` if given, else the
/// container's own (`run`/`create --detach-keys`), else docker's default.
pub fn detach_keys(state: &State, given: Option<DetachKeys>) -> Result<DetachKeys> {
    match (given, &state.options.detach_keys) {
        (Some(keys), _) => Ok(keys),
        (None, Some(spec)) => Ok(DetachKeys::parse(spec)?),
        (None, None) => Ok(DetachKeys::default()),
    }
}

pub fn attach(paths: &Paths, key: &str, send_input: bool, keys: Option<DetachKeys>) -> Result<Attachment> {
    let (container, state) = Container::locate(paths, key)?;
    if !state.is_running() {
        invalid!("cannot attach to container {key}: it is not running (`ctr start -a {key}`)");
    }
    let keys = detach_keys(&state, keys)?;
    let connection = connect(paths, &container)?;
    let options = Relay { tty: state.tty, send_input, keys, ..Relay::default() };
    options.run(paths, key, connection)
}

/// How to relay an attached connection.
#[derive(Debug, Default)]
pub struct Relay {
    /// The container has a terminal: raw mode, detach keys, sizes.
    pub tty: bool,
    pub send_input: bool,
    pub keys: DetachKeys,
    /// Whether stdout and stderr are shown (`run -a`); true for attach.
    pub hide_stdout: bool,
    pub hide_stderr: bool,
    /// A foreground `run -it`: signals sent to us go to this process (the
    /// container's init, by pidfd), as a foreground run always did.
    pub signals_to: Option<OwnedFd>,
}

/// Passed on to the container by a foreground `run -it`.
const FORWARDED: [Signal; 6] =
    [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2];

/// Signals blocked for a signalfd; the old mask comes back on drop.
struct Blocked(SigSet);

impl Blocked {
    fn block(mask: &SigSet) -> Result<Self, IoError> {
        let mut old = SigSet::empty();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(mask), Some(&mut old)).io_context("block signals")?;
        Ok(Self(old))
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.0), None);
    }
}

impl Relay {
    /// Relays between our stdio and an attached connection until the
    /// container exits (the monitor sends its code, or closes) or we detach.
    pub fn run(&self, paths: &Paths, key: &str, mut connection: UnixStream) -> Result<Attachment> {
        let mut mask = SigSet::empty();
        if self.tty {
            mask.add(Signal::SIGWINCH);
        }
        if self.signals_to.is_some() {
            FORWARDED.iter().for_each(|s| mask.add(*s));
        }
        let _blocked = Blocked::block(&mask)?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).io_context("signalfd")?;
        let _raw = if self.tty && self.send_input { RawMode::enter()? } else { None };
        // A send fails only when the monitor is going away (the container
        // exited): its exit code or end of file is still to be read.
        let send = |connection: &mut UnixStream, frame: Frame| connection.write_all(&frame.encode()).is_ok();
        if self.tty {
            if let Some(size) = tty::caller_size() {
                send(&mut connection, Frame::Resize(size));
            }
        }
        let stdin = std::io::stdin();
        let mut input_open = self.send_input;
        let mut held = Vec::new();
        let mut decoder = Decoder::default();
        let mut exit_code = None;
        let mut buf = [0u8; 16 * 1024];
        'relay: loop {
            let mut fds = vec![
                PollFd::new(connection.as_fd(), PollFlags::POLLIN),
                PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            ];
            if input_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(IoError::new("poll the attached connection and stdin", e).into()),
                Ok(_) => {}
            }
            let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
            drop(fds);
            if ready[0] {
                match connection.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => decoder.push(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
                while let Some(frame) = decoder.next_frame().map_err(|e| {
                    IoError::new(
                        "read from the container's monitor",
                        std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                    )
                })? {
                    match frame {
                        Frame::Stdout(bytes) if !self.hide_stdout => write_out(&mut std::io::stdout(), &bytes)?,
                        Frame::Stderr(bytes) if !self.hide_stderr => write_out(&mut std::io::stderr(), &bytes)?,
                        Frame::Exit(code) => {
                            exit_code = Some(code);
                            break 'relay;
                        }
                        _ => {}
                    }
                }
            }
            if ready[1] {
                if let Some(info) = signals.read_signal().io_context("read a signal")? {
                    match Signal::try_from(info.ssi_signo as i32) {
                        Ok(Signal::SIGWINCH) => {
                            if let Some(size) = tty::caller_size() {
                                send(&mut connection, Frame::Resize(size));
                            }
                        }
                        Ok(sig) => {
                            if let Some(pidfd) = &self.signals_to {
                                let _ = crate::process::liveness::pidfd_send_signal(pidfd, sig);
                            }
                        }
                        Err(_) => {}
                    }
                }
            }
            if ready.get(2) == Some(&true) {
                let n = nix::unistd::read(stdin.as_raw_fd(), &mut buf).unwrap_or(0);
                if n == 0 {
                    // Our input ended; the container's stays open for others.
                    input_open = false;
                    continue;
                }
                let (bytes, detach) = match self.keys.sequence() {
                    Some(sequence) if self.tty => scan_detach_keys(&buf[..n], sequence, &mut held),
                    _ => (buf[..n].to_vec(), false),
                };
                if !bytes.is_empty() && !send(&mut connection, Frame::Input(bytes)) {
                    input_open = false;
                }
                if detach {
                    return Ok(Attachment::Detached);
                }
            }
        }
        drop(_raw);
        match exit_code {
            Some(code) => Ok(Attachment::Exited(code)),
            // The monitor went away without a word: the record tells.
            None => Ok(Attachment::Exited(super::wait::wait(paths, key)?)),
        }
    }
}

fn write_out(out: &mut impl Write, bytes: &[u8]) -> Result<(), IoError> {
    out.write_all(bytes).and_then(|()| out.flush()).io_context("write the container's output")
}

/// What of `input` goes to the container, and whether it ended with the
/// detach sequence. The start of the sequence is held back until the next
/// bytes show whether the whole sequence follows (it may come in a later
/// read); when it does not, the held bytes go through.
fn scan_detach_keys(input: &[u8], sequence: &[u8], held: &mut Vec<u8>) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(input.len() + held.len());
    for &b in input {
        held.push(b);
        while !sequence.starts_with(held) {
            out.push(held.remove(0));
        }
        if held.len() == sequence.len() {
            held.clear();
            return (out, true);
        }
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(input: &[u8], held: &mut Vec<u8>) -> (Vec<u8>, bool) {
        scan_detach_keys(input, &[CTRL_P, CTRL_Q], held)
    }

    #[test]
    fn ctrl_p_ctrl_q_detaches_even_across_reads() {
        let mut held = Vec::new();
        assert_eq!(scan(b"ls\r", &mut held), (b"ls\r".to_vec(), false));
        assert_eq!(scan(&[b'a', CTRL_P, CTRL_Q, b'b'], &mut held), (b"a".to_vec(), true));
        let mut held = Vec::new();
        assert_eq!(scan(&[b'x', CTRL_P], &mut held), (b"x".to_vec(), false));
        assert_eq!(scan(&[CTRL_Q], &mut held), (Vec::new(), true));
        let mut held = Vec::new();
        assert_eq!(scan(&[CTRL_P, b'y'], &mut held), (vec![CTRL_P, b'y'], false));
        assert_eq!(scan(&[CTRL_P, CTRL_P, CTRL_Q], &mut held), (vec![CTRL_P], true));
    }

    #[test]
    fn detach_keys_in_dockers_syntax() {
        assert_eq!(DetachKeys::parse("ctrl-p,ctrl-q").unwrap(), DetachKeys::default());
        assert_eq!(DetachKeys::parse("ctrl-@,Ctrl-A,ctrl-z,ctrl-[,ctrl-\\,ctrl-_").unwrap().0, [0, 1, 26, 27, 28, 31]);
        assert_eq!(DetachKeys::parse("a,ctrl-x,q").unwrap().0, [b'a', 24, b'q']);
        assert_eq!(DetachKeys::parse("").unwrap().sequence(), None);
        for bad in ["ctrl-", "ctrl-1", "ab", "ctrl-p,,q", "alt-x", "é"] {
            let err = DetachKeys::parse(bad).unwrap_err().to_string();
            assert!(err.contains("ctrl-p,ctrl-q"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_three_key_sequence_and_a_false_start() {
        let keys = DetachKeys::parse("ctrl-x,a,b").unwrap();
        let seq = keys.sequence().unwrap();
        let mut held = Vec::new();
        assert_eq!(scan_detach_keys(&[24, b'a', b'c'], seq, &mut held), (vec![24, b'a', b'c'], false));
        assert_eq!(scan_detach_keys(&[24, 24, b'a'], seq, &mut held), (vec![24], false));
        assert_eq!(scan_detach_keys(b"bz", seq, &mut held), (Vec::new(), true));
    }
}
