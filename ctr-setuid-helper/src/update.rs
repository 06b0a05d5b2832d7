//! `Update`: new resource limits for one of the caller's running
//! containers (`ctr update`). Safe for the same reasons as the limits of
//! `Spawn`, whose code it reuses: the limits are validated exactly as at
//! `Spawn` (ranges, online CPUs and memory nodes, existing block devices),
//! they become writes to the closed set of `LimitFile`s only
//! ([`cgroup::apply_limits`]), and the cgroups written are those that the
//! root-owned record for (caller's real uid, `id`) names. The request
//! holds no path: another user's container cannot be named (its record
//! lives under that user's uid), and the caller cannot choose a file.

use crate::cgroup;
use crate::record;
use ctr_core::ids::ContainerId;
use ctr_core::limits::ResourceLimits;
use ctr_core::protocol::HelperError;

pub fn apply(uid: u32, id: &ContainerId, limits: &ResourceLimits) -> Result<(), HelperError> {
    crate::spawn::validate_limits(limits)?;
    let record = record::load_existing(uid, id)?;
    cgroup::apply_limits(&record.cgroups, limits)
}
