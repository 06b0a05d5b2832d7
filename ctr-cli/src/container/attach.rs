//! `attach`: our stdio to a detached container's, through its monitor's
//! socket in the runtime directory ([`monitor::attach_socket`]). Output
//! (stdout and stderr, or the terminal) comes back; our input goes to the
//! container's stdin (it must have been started with -i) or terminal
//! (-t). With a terminal, the detach keys (docker's default Ctrl-P
//! Ctrl-Q, or `--detach-keys`) detach and leave it running, as with
//! docker. When the container exits, attach returns its exit code.

use super::record::{Container, State};
use super::{invalid, Result};
use crate::error::{IoContext, IoError};
use crate::paths::Paths;
use crate::process::monitor;
use crate::process::tty::RawMode;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
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
    relay(paths, key, connection, state.tty, send_input, &keys)
}

/// Relays between our stdio and an attached connection until the
/// container exits (the monitor closes it) or we detach.
pub fn relay(
    paths: &Paths,
    key: &str,
    mut connection: UnixStream,
    tty: bool,
    send_input: bool,
    keys: &DetachKeys,
) -> Result<Attachment> {
    let _raw = if tty && send_input { RawMode::enter()? } else { None };
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    let mut input_open = send_input;
    let mut held = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![PollFd::new(connection.as_fd(), PollFlags::POLLIN)];
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
                Ok(n) => {
                    stdout.write_all(&buf[..n]).and_then(|()| stdout.flush()).io_context("write to stdout")?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if ready.get(1) == Some(&true) {
            let n = nix::unistd::read(stdin.as_raw_fd(), &mut buf).unwrap_or(0);
            if n == 0 {
                // Our input ended; the container's stays open for others.
                input_open = false;
                continue;
            }
            let (bytes, detach) = match keys.sequence() {
                Some(sequence) if tty => scan_detach_keys(&buf[..n], sequence, &mut held),
                _ => (buf[..n].to_vec(), false),
            };
            connection.write_all(&bytes).io_context("send input to the container")?;
            if detach {
                return Ok(Attachment::Detached);
            }
        }
    }
    drop(_raw);
    Ok(Attachment::Exited(super::wait::wait(paths, key)?))
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
