//! The engine's raw system calls, in one place: each `unsafe` block of the
//! library that calls the kernel directly lives here, behind a safe
//! function whose argument types make the call sound. What stays outside
//! is `fork` and `pre_exec` (their safety is a property of the calling
//! process at that point, argued where they are called) and the seccomp
//! filter's own loading.

pub mod bpf;
pub mod fs;
pub mod memory;
pub mod mount;
pub mod pidfd;
pub mod tty;

use nix::errno::Errno;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Takes ownership of a descriptor that nothing else in this process owns:
/// one a system call (openat, fcntl's dup, recvmsg's SCM_RIGHTS...) has
/// just returned, or one placed at a fixed number for this program before
/// its exec (the init and monitor channels).
///
/// Call it only with such a descriptor, once; that is what makes it sound.
pub fn adopt(raw: RawFd) -> OwnedFd {
    // SAFETY: by this function's contract the descriptor is open and
    // unowned, so the OwnedFd is its only owner and closes it once.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

/// Standard input, borrowed for as long as the process runs.
pub fn stdin() -> BorrowedFd<'static> {
    // SAFETY: nothing in ctr closes fd 0, so it stays open for the whole
    // life of the process.
    unsafe { BorrowedFd::borrow_raw(0) }
}

/// Marks every descriptor from `first` up close-on-exec (close_range(2)
/// with CLOSE_RANGE_CLOEXEC, Linux 5.11): what the process holds beyond
/// them does not reach the program it executes next. Where close_range
/// is refused (an OCI seccomp profile already loaded that does not list
/// it, or an older kernel), each descriptor in /proc/self/fd is marked
/// with fcntl instead.
pub fn cloexec_from(first: u32) -> nix::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: with CLOSE_RANGE_CLOEXEC the call closes nothing; it only
    // sets a flag on open descriptors, so no owner's descriptor goes away.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC) };
    match Errno::result(rc) {
        Ok(_) => Ok(()),
        Err(refused @ (Errno::EPERM | Errno::ENOSYS | Errno::EACCES)) => cloexec_listed(first).map_err(|_| refused),
        Err(e) => Err(e),
    }
}

/// close_range's fallback: the descriptors are listed first, then marked;
/// the listing's own descriptor is gone by then (EBADF is skipped).
fn cloexec_listed(first: u32) -> nix::Result<()> {
    let listed = std::fs::read_dir("/proc/self/fd").map_err(|_| Errno::ENOENT)?;
    let fds: Vec<RawFd> = listed
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd: &RawFd| u32::try_from(*fd).is_ok_and(|fd| fd >= first))
        .collect();
    for fd in fds {
        match nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)) {
            Ok(_) | Err(Errno::EBADF) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The descriptor a `libc::syscall` returned, or its errno.
fn adopt_result(rc: libc::c_long) -> nix::Result<OwnedFd> {
    let raw = Errno::result(rc)?;
    let raw = RawFd::try_from(raw).map_err(|_| Errno::EBADF)?;
    Ok(adopt(raw))
}
