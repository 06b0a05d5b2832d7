//! `attach`: our stdio to a detached container's, through its monitor's
//! socket in the runtime directory ([`monitor::attach_socket`]). Output
//! (stdout and stderr, or the terminal) comes back; our input goes to the
//! container's stdin (it must have been started with -i) or terminal
//! (-t). With a terminal, Ctrl-P Ctrl-Q detaches and leaves it running,
//! as with docker. When the container exits, attach returns its exit code.

use super::record::Container;
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

/// How an attachment ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Attachment {
    /// The container exited with this code (docker's status).
    Exited(i32),
    /// Ctrl-P Ctrl-Q: the container runs on.
    Detached,
}

/// A connection to the monitor of a running container.
pub fn connect(paths: &Paths, container: &Container) -> Result<UnixStream, IoError> {
    let socket = monitor::attach_socket(paths, &container.id);
    UnixStream::connect(&socket).with_io_context(|| {
        format!("cannot attach to {}: it is not running, or its monitor is gone", container.name.as_str())
    })
}

pub fn attach(paths: &Paths, key: &str, send_input: bool) -> Result<Attachment> {
    let (container, state) = Container::locate(paths, key)?;
    if !state.is_running() {
        invalid!("cannot attach to container {key}: it is not running (`ctr start -a {key}`)");
    }
    let connection = connect(paths, &container)?;
    relay(paths, key, connection, state.tty, send_input)
}

/// Relays between our stdio and an attached connection until the
/// container exits (the monitor closes it) or we detach.
pub fn relay(paths: &Paths, key: &str, mut connection: UnixStream, tty: bool, send_input: bool) -> Result<Attachment> {
    let _raw = if tty && send_input { RawMode::enter()? } else { None };
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    let mut input_open = send_input;
    let mut held_ctrl_p = false;
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
            let (bytes, detach) =
                if tty { scan_detach_keys(&buf[..n], &mut held_ctrl_p) } else { (buf[..n].to_vec(), false) };
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
/// detach sequence. A Ctrl-P is held back until the next byte shows
/// whether it starts the sequence (it may come in the next read).
fn scan_detach_keys(input: &[u8], held_ctrl_p: &mut bool) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(input.len() + 1);
    for &b in input {
        if *held_ctrl_p {
            *held_ctrl_p = false;
            if b == CTRL_Q {
                return (out, true);
            }
            out.push(CTRL_P);
        }
        if b == CTRL_P {
            *held_ctrl_p = true;
        } else {
            out.push(b);
        }
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_p_ctrl_q_detaches_even_across_reads() {
        let mut held = false;
        assert_eq!(scan_detach_keys(b"ls\r", &mut held), (b"ls\r".to_vec(), false));
        assert_eq!(scan_detach_keys(&[b'a', CTRL_P, CTRL_Q, b'b'], &mut held), (b"a".to_vec(), true));
        let mut held = false;
        assert_eq!(scan_detach_keys(&[b'x', CTRL_P], &mut held), (b"x".to_vec(), false));
        assert_eq!(scan_detach_keys(&[CTRL_Q], &mut held), (Vec::new(), true));
        let mut held = false;
        assert_eq!(scan_detach_keys(&[CTRL_P, b'y'], &mut held), (vec![CTRL_P, b'y'], false));
        assert_eq!(scan_detach_keys(&[CTRL_P, CTRL_P, CTRL_Q], &mut held), (vec![CTRL_P], true));
    }
}
