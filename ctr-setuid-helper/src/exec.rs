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
use crate::cgroup::{self, ContainerCgroups};
use crate::record;
use crate::spawn::{check_init_channel, child_fail, exec_init, spawn_error};
use crate::sys;
use ctr_core::ids::ContainerId;
use ctr_core::protocol::HelperError;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

pub struct Started {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    pub cgroups: ContainerCgroups,
}

pub fn apply(caller: &Caller, id: &ContainerId) -> Result<Started, HelperError> {
    check_init_channel()?;
    let cgroups = record::load_existing(caller.uid.as_raw(), id)?.cgroups;
    let (go_read, go_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| spawn_error("pipe", e))?;
    // SAFETY: the helper is single-threaded, so the child starts with no
    // lock held by another thread; it only makes system calls and execs.
    let pid = match unsafe { fork() }.map_err(|e| spawn_error("fork", e))? {
        ForkResult::Child => {
            let _ = nix::unistd::close(go_write.as_raw_fd());
            child_main(caller, go_read)
        }
        ForkResult::Parent { child } => child,
    };
    drop(go_read);
    let prepared = (|| {
        let pidfd = sys::pidfd_open(pid).map_err(|e| spawn_error("pidfd_open", e))?;
        cgroup::attach(&cgroups, pid)?;
        std::fs::File::from(go_write).write_all(b"G").map_err(|e| spawn_error("release the child", e))?;
        Ok(pidfd)
    })();
    match prepared {
        Ok(pidfd) => Ok(Started { pid, pidfd, cgroups }),
        Err(e) => {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            Err(e)
        }
    }
}

fn child_main(caller: &Caller, go: OwnedFd) -> ! {
    let mut byte = [0u8; 1];
    if !matches!(std::fs::File::from(go).read(&mut byte), Ok(1)) {
        sys::exit_now(125);
    }
    // All three ids the caller's: the kernel clears every capability.
    if let Err(e) = nix::unistd::setresgid(caller.gid, caller.gid, caller.gid)
        .and_then(|()| nix::unistd::setresuid(caller.uid, caller.uid, caller.uid))
    {
        child_fail("drop to the caller's ids", &e);
    }
    exec_init(&caller.limits)
}
