//! A teardown that runs after the helper has answered: a network's
//! removal waits out RCU grace periods (an nftables transaction that
//! deletes, a veth's unregistration), tens of milliseconds that the user
//! need not wait for. The caller keeps whatever names the work (the
//! helper's record) until the work is done, so that a teardown killed
//! half-way is found and finished by the next one.

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::ForkResult;
use std::os::fd::AsRawFd;

use crate::ipam::FileLock;

/// Forks; the child leaves the caller's session, stdio (now /dev/null)
/// and every other descriptor but `held`'s, runs `work` and exits (0 if it
/// succeeded), releasing `held` only then; the parent returns at once,
/// without closing `held` (which would release it for both): whoever reads
/// the caller's pipes sees them closed when the caller exits, not when the
/// teardown ends. Where the fork fails, `work` runs here instead, and its
/// result is returned. Only for a single-threaded process (the helper).
pub fn run_detached<E>(held: FileLock, work: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
    // SAFETY: the helper is single-threaded, so no lock is held by another
    // thread at the fork; the child runs ordinary code and leaves through
    // _exit, never returning into the caller's.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Parent { .. }) => {
            std::mem::forget(held);
            return Ok(());
        }
        Err(_) => return work(),
        Ok(ForkResult::Child) => {}
    }
    let kept = held.as_raw_fd() as u32;
    let detached = (|| {
        nix::unistd::setsid()?;
        let null = nix::fcntl::open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())?;
        nix::unistd::dup2_stdin(&null)?;
        nix::unistd::dup2_stdout(&null)?;
        nix::unistd::dup2_stderr(&null)?;
        drop(null);
        for (first, last) in [(3, kept.saturating_sub(1)), (kept + 1, u32::MAX)].into_iter().filter(|(f, l)| f <= l) {
            // SAFETY: close_range only closes descriptors; the child never
            // returns to the code that owned them, and keeps `held`'s.
            nix::errno::Errno::result(unsafe { nix::libc::close_range(first, last, 0) })?;
        }
        Ok::<(), nix::errno::Errno>(())
    })();
    let ok = detached.is_ok() && work().is_ok();
    // SAFETY: _exit has no preconditions; it never returns.
    unsafe { nix::libc::_exit(if ok { 0 } else { 1 }) }
}
