//! The helper's only `unsafe` code: thin wrappers over syscalls that nix
//! does not cover (close_range, clone with namespace flags, pidfd_open),
//! and small checks on descriptors.
//! Each wrapper states why its call is sound.

use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid};
use std::os::fd::{FromRawFd, OwnedFd};

/// Closes every file descriptor from `first` upwards.
pub fn close_fds_from(first: u32) -> nix::Result<()> {
    // SAFETY: close_range only closes descriptors; no Rust object in this
    // process owns one at or above `first` when it is called (it runs first
    // thing in main, and in the child right before exec).
    let rc = unsafe { libc::close_range(first, u32::MAX, 0) };
    Errno::result(rc).map(drop)
}

/// fork(2) with namespace flags: the child starts in new namespaces that
/// `flags` names, on a copy of the parent's stack, like fork.
pub fn clone_into_namespaces(flags: nix::sched::CloneFlags) -> nix::Result<ForkResult> {
    let flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: the raw clone syscall with a null stack behaves like fork: the
    // child gets a copy-on-write copy of the address space. The helper is
    // single-threaded, so no lock can be held by another thread at the time
    // of the copy, and the child goes on to run ordinary Rust code.
    let rc =
        unsafe { libc::syscall(libc::SYS_clone, flags, std::ptr::null_mut::<libc::c_void>(), 0usize, 0usize, 0usize) };
    match Errno::result(rc)? {
        0 => Ok(ForkResult::Child),
        pid => Ok(ForkResult::Parent { child: Pid::from_raw(pid as libc::pid_t) }),
    }
}

/// A pidfd for our own unreaped child, so the caller gets a handle that
/// cannot be confused by pid reuse.
pub fn pidfd_open(pid: Pid) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; it touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(rc)? as libc::c_int;
    // SAFETY: the kernel just returned this descriptor to us, so we own it
    // and nothing else will close it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Ends the calling process at once, without running destructors or
/// flushing stdio buffers shared with the parent (for the cloned child).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; it never returns.
    unsafe { libc::_exit(code) }
}

/// Whether `fd` is open on a socket (the channels `ctr` passes).
pub fn is_socket(fd: i32) -> nix::Result<bool> {
    use nix::sys::stat::{fstat, SFlag};
    Ok(SFlag::from_bits_truncate(fstat(fd)?.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK)
}

/// Takes ownership of a descriptor number inherited from the caller.
pub fn adopt_inherited_fd(fd: i32) -> OwnedFd {
    // SAFETY: called once per number, right after `ensure_std_fds` checked
    // that `fd` is open, and nothing else in the helper owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
