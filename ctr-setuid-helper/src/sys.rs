//! The helper's only `unsafe` code: thin wrappers over syscalls that nix
//! does not cover (close_range, clone3), and small checks on descriptors.
//! Each wrapper states why its call is sound.

use nix::errno::Errno;
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Closes every file descriptor from `first` upwards.
pub fn close_fds_from(first: u32) -> nix::Result<()> {
    // SAFETY: close_range only closes descriptors; no Rust object in this
    // process owns one at or above `first` when it is called (it runs first
    // thing in main, and in the child right before exec).
    let rc = unsafe { libc::close_range(first, u32::MAX, 0) };
    Errno::result(rc).map(drop)
}

/// clone3(2) as a fork: the child starts in the new namespaces `flags`
/// names and, given `cgroup` (a v2 cgroup directory), in that cgroup, so
/// that no write to cgroup.procs has to move it (each such write waits for
/// an RCU grace period, 5-15 ms on an idle host). The parent gets the
/// child's pid and a pidfd, which pid reuse cannot confuse.
pub fn clone3(flags: nix::sched::CloneFlags, cgroup: Option<&OwnedFd>) -> nix::Result<Option<(Pid, OwnedFd)>> {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000; // linux/sched.h
    let mut pidfd: libc::c_int = -1;
    // struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal,
    // stack, stack_size, tls, set_tid, set_tid_size, cgroup.
    let mut args = [0u64; 11];
    args[0] = flags.bits() as u32 as u64 | libc::CLONE_PIDFD as u64 | cgroup.map_or(0, |_| CLONE_INTO_CGROUP);
    args[1] = &mut pidfd as *mut libc::c_int as u64;
    args[4] = libc::SIGCHLD as u64;
    args[10] = cgroup.map_or(0, |fd| fd.as_raw_fd() as u64);
    // SAFETY: with no stack given, clone3 behaves like fork: the child gets a
    // copy-on-write copy of the address space. The helper is single-threaded,
    // so no lock can be held by another thread at the time of the copy, and
    // the child goes on to run ordinary Rust code. The kernel writes only
    // `pidfd`, which outlives the call.
    let rc = unsafe { libc::syscall(libc::SYS_clone3, args.as_mut_ptr(), std::mem::size_of_val(&args)) };
    match Errno::result(rc)? {
        0 => Ok(None),
        // SAFETY: CLONE_PIDFD made this descriptor for us alone.
        pid => Ok(Some((Pid::from_raw(pid as libc::pid_t), unsafe { OwnedFd::from_raw_fd(pidfd) }))),
    }
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
