//! The container's side of its network, configured by `ctr init` from
//! inside: the helper only creates the veth pair, with the container's end
//! (`eth0`, its MAC set, down, no address) placed straight into the
//! container's new network namespace. Here, as root of the container's user
//! namespace, which owns that network namespace, init holds CAP_NET_ADMIN
//! over it and nothing on the host, and sets `lo` up, the leased address,
//! `eth0` up and the default route. The container could change all of this
//! itself anyway; the host's anti-spoofing rules hold it to its address and
//! MAC whatever it does.

use super::{InitContext, Result};
use ctr_net::link::{configure_container_end, ContainerEnd};

/// Before anything of the container runs, so its command finds the network
/// up; `None` (no bridge network) leaves the namespace as it is.
pub fn configure(end: Option<&ContainerEnd>) -> Result<()> {
    let Some(end) = end else { return Ok(()) };
    configure_container_end(end)
        .with_context(|| format!("configuring {} with {}/{} in the container", end.interface, end.address, end.prefix))
}
