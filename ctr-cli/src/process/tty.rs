//! Terminal primitives: the caller's terminal in raw mode (restored when
//! the guard drops, on every return path), window sizes, and making a
//! terminal the controlling one of a new session.

use crate::error::{IoContext, IoError};
use crate::spec::TerminalSize;
use crate::sys;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use std::os::fd::{AsFd, BorrowedFd};

/// The caller's terminal in raw mode until dropped: keys reach the
/// container's terminal as bytes (Ctrl-C included), whose line discipline
/// then does what a terminal does.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin's terminal in raw mode; `None` if stdin is no terminal.
    pub fn enter() -> Result<Option<Self>, IoError> {
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(stdin.as_fd()) else { return Ok(None) };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).io_context("put the terminal in raw mode")?;
        Ok(Some(Self { saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// The size of the terminal on `fd`, if it is one.
pub fn size_of(fd: BorrowedFd<'_>) -> Option<TerminalSize> {
    let ws = sys::tty::window_size(fd).ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some(TerminalSize { rows: ws.ws_row, cols: ws.ws_col })
}

/// The caller's terminal size (stdout's, else stdin's).
pub fn caller_size() -> Option<TerminalSize> {
    size_of(std::io::stdout().as_fd()).or_else(|| size_of(std::io::stdin().as_fd()))
}

pub fn set_size(fd: BorrowedFd<'_>, size: TerminalSize) -> Result<(), IoError> {
    let ws = libc::winsize { ws_row: size.rows, ws_col: size.cols, ws_xpixel: 0, ws_ypixel: 0 };
    sys::tty::set_window_size(fd, &ws).io_context("set the terminal size")?;
    Ok(())
}

/// Makes the terminal on `fd` the controlling terminal of our session
/// (we must be a session leader without one).
pub fn set_controlling(fd: BorrowedFd<'_>) -> Result<(), IoError> {
    sys::tty::set_controlling(fd).io_context("TIOCSCTTY")?;
    Ok(())
}
