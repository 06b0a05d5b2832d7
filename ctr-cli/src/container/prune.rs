//! `container prune`: removes every container of the caller that does not
//! run, then has the helper clean up what containers that died unnoticed
//! left on the host (cgroups, veths, rules, leases).

use super::record::{self, Container};
use super::remove::remove_located;
use super::{ContainerError, Result};
use crate::helper_client::Helper;
use crate::paths::Paths;

/// What a prune did: the ids it removed, and what failed (it goes on
/// past each failure).
#[derive(Debug, Default)]
pub struct Pruned {
    pub removed: Vec<String>,
    pub errors: Vec<ContainerError>,
}

pub fn prune(paths: &Paths) -> Result<Pruned> {
    let helper = Helper::new(&paths.helper());
    let mut pruned = Pruned::default();
    for state in record::list(paths)? {
        if state.is_up() {
            continue;
        }
        let container = Container::from_state(paths, &state)?;
        match remove_located(&helper, &container, &state.id, false) {
            Ok(()) => pruned.removed.push(state.id),
            Err(e) => {
                // Started or removed meanwhile by someone else: no failure of ours.
                if container.read_state().ok().flatten().is_some_and(|s| !s.is_up()) {
                    pruned.errors.push(e);
                }
            }
        }
    }
    if let Err(e) = helper.reconcile() {
        pruned.errors.push(e.into());
    }
    Ok(pruned)
}
