//! The `Exec` operation: a new process of the caller inside the cgroup of
//! one of the caller's running containers, for `ctr exec`. It joins the
//! container's namespaces itself, unprivileged, since the caller owns the
//! container's user namespace; only the cgroup move needs root.
//!
//! Why this is safe: the container is found through the helper's own
//! record for the caller's uid, never a pid or path from the caller; the
//! process moved is the helper's own unreaped child, so its pid cannot be
//! reused; before it runs anything it drops every privilege (all ids the
//! caller's, so the kernel clears its capabilities), sets no_new_privs and
//! executes the `ctr` installed with the helper. Until then it is
//! non-dumpable, like the helper.

use crate::caller::Caller;
use crate::cgroup;
use crate::record;
use crate::spawn::{check_init_channel, child_fail, exec_init, spawn_error, start_held, wait_for_release, Spawned};
use ctr_core::ids::ContainerId;
use ctr_core::protocol::HelperError;
use nix::unistd::{fork, ForkResult};
use std::os::fd::{OwnedFd, RawFd};

pub fn apply(caller: &Caller, id: &ContainerId) -> Result<Spawned, HelperError> {
    check_init_channel()?;
    let cgroups = record::load_existing(caller.uid.as_raw(), id)?.cgroups;
    let fork = |go, parents_end| {
        // SAFETY: the helper is single-threaded, so the child starts with no
        // lock held by another thread; it only makes system calls and execs.
        match unsafe { fork() }.map_err(|e| spawn_error("fork", e))? {
            ForkResult::Child => child_main(caller, go, parents_end),
            ForkResult::Parent { child } => Ok(child),
        }
    };
    let (pid, pidfd, ()) = start_held(fork, |pid| cgroup::attach(&cgroups, pid))?;
    Ok(Spawned { pid, pidfd, cgroups, network: None })
}

fn child_main(caller: &Caller, go: OwnedFd, parents_end: RawFd) -> ! {
    wait_for_release(go, parents_end);
    // All three ids the caller's: the kernel clears every capability.
    if let Err(e) = nix::unistd::setresgid(caller.gid, caller.gid, caller.gid)
        .and_then(|()| nix::unistd::setresuid(caller.uid, caller.uid, caller.uid))
    {
        child_fail("drop to the caller's ids", &e);
    }
    exec_init(&caller.limits)
}
