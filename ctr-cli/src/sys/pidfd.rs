//! Process descriptors: a signal or a wait through one cannot reach a
//! process that reused the pid.

use super::adopt_result;
use nix::errno::Errno;
use nix::sys::signal::Signal;
use std::os::fd::{AsRawFd, OwnedFd};

/// `pidfd_open(pid, 0)` (Linux 5.3).
pub fn open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; it touches no memory of ours.
    adopt_result(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })
}

/// `pidfd_send_signal(pidfd, signal, NULL, 0)` (Linux 5.1).
pub fn send_signal(pidfd: &OwnedFd, signal: Signal) -> nix::Result<()> {
    // SAFETY: with a null siginfo and no flags the call only reads its
    // integer arguments.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as i32,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(rc).map(drop)
}
