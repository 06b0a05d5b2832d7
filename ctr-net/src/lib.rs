//! Container networking for ctr (issue 6), the library half: the setuid
//! helper calls it after checking each request against its caller, and
//! `ctr init` calls [`link::configure_container_end`] inside the container.
//!
//! - [`names`]: validated interface, bridge and network names;
//! - [`ipam`]: subnets, address leases and their locked, atomic store;
//! - [`link`]: the bridge and veth pairs over rtnetlink;
//! - [`liveness`]: whether the process that owns a lease still lives;
//! - [`firewall`]: masquerade, published ports and anti-spoofing in nftables,
//!   applied over netlink (`nftables`: one NFNETLINK transaction a change);
//! - [`bridge`]: the driver that composes them: validate, set up (rolling
//!   back on failure), tear down (collecting every error);
//! - [`detached`]: a teardown that runs after the helper has answered;
//! - [`host_ports`]: whether a port to publish is free on the host.
//!
//! Everything acts on the calling thread's network namespace; a veth's peer
//! alone is placed into the container's, by fd, and configured there by the
//! container's own init. Nothing here needs an async runtime.

pub mod bridge;
pub mod detached;
pub mod firewall;
pub mod host_ports;
pub mod ipam;
pub mod link;
/// Kept at this path for the helper and ctr-net's users; the one
/// definition is ctr-core's, which `ctr` uses too.
pub use ctr_core::liveness;
pub mod names;
mod netlink;
mod nftables;

pub use netlink::DriverError;
