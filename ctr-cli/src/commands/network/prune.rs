//! `ctr network prune`: every network of the caller's that no container is on.

use anyhow::Result;
use ctr_cli::helper_client::Helper;

pub fn prune(helper: &Helper, force: bool) -> Result<i32> {
    if !crate::commands::confirm(force, "This will remove all custom networks not used by at least one container")? {
        return Ok(0);
    }
    let unused = helper.network_list()?.into_iter().filter(|n| !n.name.is_default() && n.containers.is_empty());
    for n in unused {
        // A container may have joined since the listing: the helper refuses then.
        match helper.network_remove(n.name.clone()) {
            Ok(()) => println!("{}", n.name),
            Err(e) => eprintln!("ctr: {}: {e:#}", n.name),
        }
    }
    Ok(0)
}
