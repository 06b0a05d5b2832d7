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
use crate::spawn::{self, Spawned};
use crate::{cgroup, record};
use ctr_core::ids::ContainerId;
use ctr_core::protocol::{HelperError, Response};

pub fn apply(caller: &Caller, id: &ContainerId) -> Result<Spawned, HelperError> {
    let cgroups = record::load_existing(caller.uid.as_raw(), id)?.cgroups;
    // The v2 cgroup is joined by the clone itself; the v1 ones by writes.
    let v2 = cgroups.v2_dir().map(|d| cgroup::open_dir(&d.path)).transpose()?;
    let (pid, pidfd, ()) = spawn::start(caller, None, v2.as_ref(), |pid| cgroup::attach(&cgroups, pid, v2.is_none()))?;
    Ok((Response::Spawned { pid: pid.as_raw(), cgroups: cgroups.dirs, network: None }, pidfd))
}
