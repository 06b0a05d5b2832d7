//! Removing a container's host resources, and finding those whose owner
//! is dead. Every removal starts from the caller's own record
//! ([`crate::record`]) and acts only on what it names: the processes and
//! directories of its cgroups, then (under the network lock) its rules, its
//! veth and its lease, and the record itself last, so that a removal that
//! fails half-way is tried again from the same record.
//!
//! Why this is safe: records live in the caller's own root-owned directory,
//! so a caller-chosen id reaches only that caller's containers; a record
//! is judged dead only by its liveness key (pid, start time and boot id of
//! the process whose life it follows), which no live process can match.

use crate::{cgroup, network, record};
use ctr_core::config::HelperConfig;
use ctr_core::ids::ContainerId;
use ctr_core::protocol::HelperError;
use record::Record;

/// Removes everything `record` names for the caller's container `id`.
pub fn teardown(config: &HelperConfig, uid: u32, id: &ContainerId, record: &Record) -> Result<(), HelperError> {
    cgroup::kill_and_remove(&record.cgroups)?;
    release(config, uid, id, record)
}

/// What is left once the cgroups are gone: the network, then the record.
fn release(config: &HelperConfig, uid: u32, id: &ContainerId, record: &Record) -> Result<(), HelperError> {
    if let Some(net) = &record.network {
        network::detach(config, uid, net, id, record.host_veth.as_ref())?;
    }
    record::remove(uid, id)
}

/// `RemoveCgroup`: the caller's container `id`, if it has one. The cgroups
/// go before the answer; a network after it (its deletions wait out RCU
/// grace periods), in a detached child that holds the record's lock until
/// it has removed the record, so that a helper run of the caller's waits
/// for it, and one killed half-way leaves the record for the next.
pub fn remove(config: &HelperConfig, uid: u32, id: &ContainerId) -> Result<(), HelperError> {
    let Some(record) = record::load(uid, id)? else { return Ok(()) };
    if record.network.is_none() {
        return teardown(config, uid, id, &record);
    }
    cgroup::kill_and_remove(&record.cgroups)?;
    let Some(removing) = record::lock(uid, id)? else { return Ok(()) };
    ctr_net::detached::run_detached(removing, || release(config, uid, id, &record))
}

/// Tears down every container of the caller's whose owner is dead, but
/// `except`; returns how many, or the first error (after trying them all).
pub fn dead_records(config: &HelperConfig, uid: u32, except: Option<&ContainerId>) -> Result<u32, HelperError> {
    let mut result = Ok(0);
    for id in record::list(uid).into_iter().filter(|id| Some(id) != except) {
        let done = record::load(uid, &id).and_then(|record| match record {
            // Locked, it is removed by nobody else; reloaded, as it may be gone.
            Some(r) if !r.owner.is_alive() => match (record::lock(uid, &id)?, record::load(uid, &id)?) {
                (Some(_removing), Some(r)) => teardown(config, uid, &id, &r).map(|()| 1),
                _ => Ok(0),
            },
            _ => Ok(0),
        });
        result = match (result, done) {
            (Ok(removed), Ok(n)) => Ok(removed + n),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
    }
    result
}

/// `Reconcile`: the caller's dead containers, then dead leases (anyone's)
/// on the networks the caller can use.
pub fn all(config: &HelperConfig, uid: u32) -> Result<u32, HelperError> {
    let removed = dead_records(config, uid, None)?;
    network::reclaim(config, uid)?;
    Ok(removed)
}
