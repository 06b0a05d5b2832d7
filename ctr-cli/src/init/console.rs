//! The container's terminal (`-t`), made inside the container: a pty of
//! the container's own devpts instance (so its slave is /dev/pts/N in
//! there, and nothing of the host's devpts is exposed), bound over
//! /dev/console for the container's init, made the controlling terminal
//! of a new session and the process's stdin, stdout and stderr. The
//! master end goes back to ctr over the init channel, which relays it.

use super::{InitContext, Result};
use crate::process::tty;
use crate::spec::{InitReply, TerminalSize};
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Call after pivot_root (or after joining the container's mount
/// namespace): `/dev/ptmx` is then the container's.
pub fn setup(channel: &UnixStream, size: TerminalSize, bind_console: bool) -> Result<()> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .context("open /dev/ptmx in the container")?;
    nix::pty::unlockpt(&master).context("unlockpt")?;
    let name = nix::pty::ptsname_r(&master).context("ptsname")?;
    tty::set_size(master.as_fd(), size)?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&name)
        .with_context(|| format!("open {name}"))?;
    if bind_console {
        let console = Path::new("/dev/console");
        if std::fs::symlink_metadata(console).is_err() {
            std::fs::File::create(console).context("create /dev/console")?;
        }
        mount(Some(name.as_str()), console, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .with_context(|| format!("bind {name} over /dev/console"))?;
    }
    ctr_core::frame::write_frame_with_fd(channel, &InitReply::Console, master.as_fd())
        .context("hand the terminal to ctr")?;
    drop(master);
    // `ctr init` left the caller's session first thing; the process that
    // `ctr exec` forks inside the container still needs a session of its own.
    if nix::unistd::getsid(None).context("getsid")? != nix::unistd::getpid() {
        nix::unistd::setsid().context("setsid")?;
    }
    tty::set_controlling(slave.as_fd())?;
    for fd in 0..=2 {
        nix::unistd::dup2(slave.as_raw_fd(), fd).context("terminal as stdio")?;
    }
    Ok(())
}
