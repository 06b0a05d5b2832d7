//! `process.terminal` with `--console-socket`, as runc hands a terminal to
//! containerd's shim and conmon: the runtime connects to the caller's Unix
//! socket, the container's process opens a pty of the container's own
//! devpts (after pivot_root, or after joining the container's mount
//! namespace for `exec`), sends the master end over the socket
//! (SCM_RIGHTS, the pty's name as the message), and makes the slave its
//! controlling terminal and its stdin, stdout and stderr. The caller then
//! owns the master; the runtime keeps no copy.

use nix::fcntl::OFlag;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("connect to the console socket {path}: {source}")]
    Connect { path: String, source: std::io::Error },
    #[error("process.terminal is true: give --console-socket (ctr-oci does not relay a terminal itself)")]
    NoSocket,
    #[error("--console-socket is given but process.terminal is false")]
    NoTerminal,
    #[error("{what}: {source}")]
    Sys { what: &'static str, source: nix::errno::Errno },
    #[error("open the pty slave {name}: {source}")]
    Slave { name: String, source: std::io::Error },
}

fn sys(what: &'static str) -> impl FnOnce(nix::errno::Errno) -> ConsoleError {
    move |source| ConsoleError::Sys { what, source }
}

/// Checks that the terminal and the socket come together, and connects.
pub fn connect(terminal: bool, socket: Option<&Path>) -> Result<Option<UnixStream>, ConsoleError> {
    match (terminal, socket) {
        (false, None) => Ok(None),
        (true, None) => Err(ConsoleError::NoSocket),
        (false, Some(_)) => Err(ConsoleError::NoTerminal),
        (true, Some(path)) => UnixStream::connect(path)
            .map(Some)
            .map_err(|source| ConsoleError::Connect { path: path.display().to_string(), source }),
    }
}

/// In the container's process, with the container's /dev mounted: the pty,
/// its master sent over `socket`, its slave owned by `uid` (so the process
/// can still use it after setuid) and made the controlling terminal of a
/// new session and the standard streams.
pub fn attach(socket: UnixStream, uid: u32) -> Result<(), ConsoleError> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(sys("open /dev/ptmx in the container"))?;
    nix::pty::unlockpt(&master).map_err(sys("unlockpt"))?;
    let name = nix::pty::ptsname_r(&master).map_err(sys("ptsname"))?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&name)
        .map_err(|source| ConsoleError::Slave { name: name.clone(), source })?;
    let fds = [master.as_raw_fd()];
    let rights = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(socket.as_raw_fd(), &[IoSlice::new(name.as_bytes())], &rights, MsgFlags::empty(), None)
        .map_err(sys("send the terminal over the console socket"))?;
    drop(master);
    drop(socket);
    nix::unistd::fchown(slave.as_raw_fd(), Some(nix::unistd::Uid::from_raw(uid)), None)
        .map_err(sys("chown the terminal to process.user"))?;
    if nix::unistd::getsid(None).map_err(sys("getsid"))? != nix::unistd::getpid() {
        nix::unistd::setsid().map_err(sys("setsid"))?;
    }
    crate::sys::tty::set_controlling(slave.as_fd()).map_err(sys("make the terminal the controlling one"))?;
    for fd in 0..=2 {
        nix::unistd::dup2(slave.as_raw_fd(), fd).map_err(sys("the terminal as stdin, stdout and stderr"))?;
    }
    Ok(())
}
