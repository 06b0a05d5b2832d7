//! Terminal ioctls that nix has no safe wrapper for.

use std::os::fd::{AsRawFd, BorrowedFd};

nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);
nix::ioctl_write_int_bad!(tiocsctty, libc::TIOCSCTTY);

/// TIOCGWINSZ: the window size of the terminal on `fd`.
pub fn window_size(fd: BorrowedFd<'_>) -> nix::Result<libc::winsize> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we pass.
    unsafe { tiocgwinsz(fd.as_raw_fd(), &mut ws) }?;
    Ok(ws)
}

/// TIOCSWINSZ.
pub fn set_window_size(fd: BorrowedFd<'_>, ws: &libc::winsize) -> nix::Result<()> {
    // SAFETY: TIOCSWINSZ reads one winsize from the struct we pass.
    unsafe { tiocswinsz(fd.as_raw_fd(), ws) }.map(drop)
}

/// TIOCSCTTY: makes the terminal on `fd` the controlling terminal of the
/// caller's session.
pub fn set_controlling(fd: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument and touches no memory.
    unsafe { tiocsctty(fd.as_raw_fd(), 0) }.map(drop)
}
