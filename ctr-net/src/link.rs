//! Links over rtnetlink: a network's bridge, and each container's veth pair.
//!
//! Everything acts on the calling thread's network namespace. The helper
//! creates a veth pair on the host with its peer placed into the
//! container's namespace by fd (the one netlink request that reaches into
//! it); the container end is configured by [`configure_container_end`],
//! which `ctr init` runs unprivileged inside the container's own user and
//! network namespaces. No code here ever switches namespace.
//!
//! Every setup function either finishes or undoes what it did: a bridge it
//! created is deleted again, an address it added is removed, and a veth pair
//! is deleted from the host side, which destroys the peer in the container
//! too. Deletions are idempotent (a missing link is success) but refuse a
//! device of the wrong kind, so a misnamed request can never delete, say,
//! the host's `eth0`.

use crate::ipam::{MacAddr, Subnet};
use crate::names::{BridgeName, InterfaceName};
use crate::netlink::{DriverError, Netlink};
use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{op}: {}", describe(source))]
    Netlink { op: String, source: rtnetlink::Error },
    #[error("{op}: {source}")]
    Driver { op: String, source: DriverError },
    #[error("{name} exists but is a {kind} device, not a {expected}: remove it or choose another name")]
    WrongKind { name: String, kind: String, expected: &'static str },
    #[error(
        "bridge {name} already has IPv4 address(es) {found}, not {expected}: \
         another network uses this bridge name, or its subnet changed; choose another bridge name"
    )]
    BridgeAddress { name: BridgeName, found: String, expected: String },
    #[error("bridge {0} does not exist: set up the network before attaching containers")]
    NoBridge(BridgeName),
    #[error(
        "creating veth {0}: a link of that name (or of its peer's, in the container) exists already; it was left alone"
    )]
    Exists(InterfaceName),
    #[error("{0} vanished while it was being configured")]
    Vanished(String),
}

/// The kernel's errno behind a netlink error, if any.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}

fn describe(e: &rtnetlink::Error) -> String {
    match (e, errno(e)) {
        (_, Some(code)) if code == nix::libc::EPERM => {
            "operation not permitted: this needs CAP_NET_ADMIN in the network namespace (run via the setuid helper or as root)".into()
        }
        (rtnetlink::Error::NetlinkError(msg), Some(_)) => msg.to_io().to_string(),
        (other, _) => other.to_string(),
    }
}

/// What one request does, for error messages.
trait Op<T> {
    fn op(self, what: impl FnOnce() -> String) -> Result<T, LinkError>;
}

impl<T> Op<T> for Result<Result<T, rtnetlink::Error>, DriverError> {
    fn op(self, what: impl FnOnce() -> String) -> Result<T, LinkError> {
        match self {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(LinkError::Netlink { op: what(), source }),
            Err(source) => Err(LinkError::Driver { op: what(), source }),
        }
    }
}

fn open(op: &str) -> Result<Netlink, LinkError> {
    Netlink::open().map_err(|source| LinkError::Driver { op: op.to_owned(), source })
}

/// A device as netlink reports it.
struct Link {
    index: u32,
    kind: Option<InfoKind>,
}

impl Link {
    fn from_message(msg: &LinkMessage) -> Self {
        let kind = msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                LinkInfo::Kind(k) => Some(k.clone()),
                _ => None,
            }),
            _ => None,
        });
        Self { index: msg.header.index, kind }
    }

    fn expect_kind(self, name: &str, expected: InfoKind, label: &'static str) -> Result<Self, LinkError> {
        if self.kind.as_ref() == Some(&expected) {
            return Ok(self);
        }
        let kind = self.kind.as_ref().map_or_else(|| "plain (no kind)".to_owned(), |k| k.to_string());
        Err(LinkError::WrongKind { name: name.to_owned(), kind, expected: label })
    }
}

fn find_link(nl: &mut Netlink, name: &str) -> Result<Option<Link>, LinkError> {
    let links = nl.handle().link().get().match_name(name.to_owned()).execute();
    let mut links = std::pin::pin!(links);
    let found = match nl.run(links.try_next()) {
        Ok(Err(e)) if errno(&e) == Some(nix::libc::ENODEV) => None,
        other => other.op(|| format!("looking up {name}"))?,
    };
    Ok(found.as_ref().map(Link::from_message))
}

fn set_up(nl: &mut Netlink, link: &Link, name: &str) -> Result<(), LinkError> {
    let msg = LinkUnspec::new_with_index(link.index).up().build();
    nl.run(nl.handle().link().set(msg).execute()).op(|| format!("bringing {name} up"))
}

fn delete_index(nl: &mut Netlink, index: u32, name: &str) -> Result<(), LinkError> {
    match nl.run(nl.handle().link().del(index).execute()) {
        Ok(Err(e)) if errno(&e) == Some(nix::libc::ENODEV) => Ok(()),
        other => other.op(|| format!("deleting {name}")),
    }
}

fn ipv4_addresses(nl: &mut Netlink, link: &Link) -> Result<Vec<(Ipv4Addr, u8)>, LinkError> {
    let dump = nl.handle().address().get().set_link_index_filter(link.index).execute();
    let messages: Vec<AddressMessage> = nl.run(dump.try_collect()).op(|| "listing addresses".into())?;
    Ok(messages
        .iter()
        .filter(|m| m.header.family == AddressFamily::Inet)
        .filter_map(|m| {
            m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(IpAddr::V4(ip)) => Some((*ip, m.header.prefix_len)),
                _ => None,
            })
        })
        .collect())
}

fn add_address(nl: &mut Netlink, link: &Link, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<(), LinkError> {
    let request = nl.handle().address().add(link.index, IpAddr::V4(addr), prefix).execute();
    nl.run(request).op(|| format!("adding {addr}/{prefix} to {name}"))
}

/// Whether [`ensure_bridge`] made the bridge, so a caller whose later step
/// fails knows whether to delete it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeState {
    Created,
    Existing,
}

/// Makes sure the network's bridge exists, carries the subnet's gateway
/// address and is up. An existing bridge with that address is left as it
/// is; a device of that name that is not a bridge, or a bridge with another
/// IPv4 address, is an error.
pub fn ensure_bridge(name: &BridgeName, subnet: &Subnet) -> Result<BridgeState, LinkError> {
    let mut nl = open("setting up the bridge")?;
    let (link, created) = find_or_create_bridge(&mut nl, name)?;
    let mut added_address = false;
    let result = configure_bridge(&mut nl, &link, name, subnet, &mut added_address);
    if result.is_err() {
        // Undo in reverse; the original error is the one worth reporting.
        if created {
            let _ = delete_index(&mut nl, link.index, name.as_str());
        } else if added_address {
            let _ = delete_address(&mut nl, &link, subnet.gateway(), subnet.prefix());
        }
    }
    result.map(|()| if created { BridgeState::Created } else { BridgeState::Existing })
}

fn find_or_create_bridge(nl: &mut Netlink, name: &BridgeName) -> Result<(Link, bool), LinkError> {
    let existing = |nl: &mut Netlink| -> Result<Option<Link>, LinkError> {
        find_link(nl, name.as_str())?.map(|l| l.expect_kind(name.as_str(), InfoKind::Bridge, "bridge")).transpose()
    };
    if let Some(link) = existing(nl)? {
        return Ok((link, false));
    }
    let request = nl.handle().link().add(LinkBridge::new(name.as_str()).build()).execute();
    match nl.run(request) {
        // Another helper run created it first: use theirs.
        Ok(Err(e)) if errno(&e) == Some(nix::libc::EEXIST) => {
            let link = existing(nl)?.ok_or_else(|| LinkError::Vanished(name.to_string()))?;
            return Ok((link, false));
        }
        other => other.op(|| format!("creating bridge {name}"))?,
    }
    let link = existing(nl)?.ok_or_else(|| LinkError::Vanished(name.to_string()))?;
    Ok((link, true))
}

fn configure_bridge(
    nl: &mut Netlink,
    link: &Link,
    name: &BridgeName,
    subnet: &Subnet,
    added_address: &mut bool,
) -> Result<(), LinkError> {
    let want = (subnet.gateway(), subnet.prefix());
    let present = ipv4_addresses(nl, link)?;
    if !present.contains(&want) {
        if !present.is_empty() {
            let found = present.iter().map(|(a, p)| format!("{a}/{p}")).collect::<Vec<_>>().join(", ");
            let expected = format!("{}/{}", want.0, want.1);
            return Err(LinkError::BridgeAddress { name: name.clone(), found, expected });
        }
        add_address(nl, link, name.as_str(), want.0, want.1)?;
        *added_address = true;
    }
    set_up(nl, link, name.as_str())
}

fn delete_address(nl: &mut Netlink, link: &Link, addr: Ipv4Addr, prefix: u8) -> Result<(), LinkError> {
    let mut msg = AddressMessage::default();
    msg.header.family = AddressFamily::Inet;
    msg.header.prefix_len = prefix;
    msg.header.index = link.index;
    msg.attributes.push(AddressAttribute::Local(IpAddr::V4(addr)));
    nl.run(nl.handle().address().del(msg).execute()).op(|| format!("removing {addr}/{prefix}"))
}

/// Deletes a network's bridge. A missing bridge is success; a device of
/// that name that is not a bridge is left alone and reported.
pub fn delete_bridge(name: &BridgeName) -> Result<(), LinkError> {
    let mut nl = open("deleting the bridge")?;
    match find_link(&mut nl, name.as_str())? {
        None => Ok(()),
        Some(link) => {
            let link = link.expect_kind(name.as_str(), InfoKind::Bridge, "bridge")?;
            delete_index(&mut nl, link.index, name.as_str())
        }
    }
}

/// The name of the container end of every veth, inside its namespace.
pub const CONTAINER_INTERFACE: &str = "eth0";

/// One container's veth pair, as the host side makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethConfig {
    /// The host end, attached to the bridge.
    pub host: InterfaceName,
    pub bridge: BridgeName,
    /// The container end's name inside its namespace, normally `eth0`.
    pub container: InterfaceName,
    pub mac: MacAddr,
}

impl VethConfig {
    /// The usual pair for a container: the host end under the name the
    /// caller chose and recorded, `eth0` inside, MAC derived from the address.
    pub fn for_container(host: &InterfaceName, bridge: &BridgeName, address: Ipv4Addr) -> Self {
        Self {
            host: host.clone(),
            bridge: bridge.clone(),
            container: InterfaceName::parse(CONTAINER_INTERFACE).expect("eth0 is a valid name"),
            mac: MacAddr::for_container(address),
        }
    }
}

impl fmt::Display for VethConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "veth {} (container side {})", self.host, self.container)
    }
}

/// Creates the container's veth pair: the host end attached to the bridge
/// and up; the other end created directly inside the network namespace
/// `netns` (an nsfs fd such as `/proc/PID/ns/net`) under its final name and
/// MAC, down and without an address, for the container to configure
/// ([`configure_container_end`]). Creating the peer inside the namespace,
/// rather than creating it on the host and renaming it after a move, means
/// no temporary name ever exists on the host to collide with.
///
/// On any failure the pair is deleted again (which removes both ends).
pub fn create_veth(config: &VethConfig, netns: BorrowedFd<'_>) -> Result<(), LinkError> {
    let mut nl = open("creating the veth pair")?;
    let bridge = find_link(&mut nl, config.bridge.as_str())?
        .ok_or_else(|| LinkError::NoBridge(config.bridge.clone()))?
        .expect_kind(config.bridge.as_str(), InfoKind::Bridge, "bridge")?;
    add_veth_pair(&mut nl, config, &bridge, netns)?;
    let result = find_link(&mut nl, config.host.as_str())
        .and_then(|link| link.ok_or_else(|| LinkError::Vanished(config.host.to_string())))
        .and_then(|link| set_up(&mut nl, &link, config.host.as_str()));
    if result.is_err() {
        if let Ok(Some(link)) = find_link(&mut nl, config.host.as_str()) {
            let _ = delete_index(&mut nl, link.index, config.host.as_str());
        }
    }
    result
}

fn add_veth_pair(nl: &mut Netlink, config: &VethConfig, bridge: &Link, netns: BorrowedFd<'_>) -> Result<(), LinkError> {
    let peer = LinkUnspec::new_with_name(config.container.as_str())
        .address(config.mac.0.to_vec())
        .setns_by_fd(netns.as_raw_fd())
        .build();
    let msg = LinkVeth::new(config.host.as_str(), config.container.as_str())
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .controller(bridge.index)
        .build();
    match nl.run(nl.handle().link().add(msg).execute()) {
        // Someone else's link: not ours to touch, not even to clean up.
        Ok(Err(e)) if errno(&e) == Some(nix::libc::EEXIST) => Err(LinkError::Exists(config.host.clone())),
        other => other.op(|| format!("creating {config} on bridge {}", config.bridge)),
    }
}

/// The container's side of its veth: what the helper leased for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerEnd {
    pub interface: InterfaceName,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

impl ContainerEnd {
    /// The end [`VethConfig::for_container`] makes: `eth0`.
    pub fn eth0(address: Ipv4Addr, prefix: u8, gateway: Ipv4Addr) -> Self {
        let interface = InterfaceName::parse(CONTAINER_INTERFACE).expect("eth0 is a valid name");
        Self { interface, address, prefix, gateway }
    }
}

/// Configures the container end of a veth in the calling thread's network
/// namespace: `lo` up, the leased address on the interface, the interface
/// up, the default route via the gateway. `ctr init` runs it as root of the
/// container's user namespace, which owns the network namespace, so it
/// needs no host privilege; the container could do all of it (and undo it)
/// itself, which is why the host's anti-spoofing rules, not this, are what
/// hold it to its address and MAC.
pub fn configure_container_end(end: &ContainerEnd) -> Result<(), LinkError> {
    let mut nl = open("configuring the container's network")?;
    let name = end.interface.as_str();
    let lo = find_link(&mut nl, "lo")?.ok_or_else(|| LinkError::Vanished("lo".into()))?;
    set_up(&mut nl, &lo, "lo")?;
    let eth = find_link(&mut nl, name)?.ok_or_else(|| LinkError::Vanished(name.to_owned()))?;
    add_address(&mut nl, &eth, name, end.address, end.prefix)?;
    set_up(&mut nl, &eth, name)?;
    let gateway = end.gateway;
    let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gateway).output_interface(eth.index).build();
    nl.run(nl.handle().route().add(route).execute()).op(|| format!("adding the default route via {gateway}"))
}

/// Deletes a container's veth pair by its host name (the peer goes with
/// it). A missing veth is success; a device that is not a veth is refused.
pub fn delete_veth(host: &InterfaceName) -> Result<(), LinkError> {
    let mut nl = open("deleting the veth")?;
    match find_link(&mut nl, host.as_str())? {
        None => Ok(()),
        Some(link) => {
            let link = link.expect_kind(host.as_str(), InfoKind::Veth, "veth")?;
            delete_index(&mut nl, link.index, host.as_str())
        }
    }
}

/// The names of all links in the calling thread's network namespace.
pub fn link_names() -> Result<Vec<String>, LinkError> {
    let mut nl = open("listing links")?;
    let dump = nl.handle().link().get().execute();
    let links: Vec<LinkMessage> = nl.run(dump.try_collect()).op(|| "listing links".into())?;
    Ok(links
        .iter()
        .filter_map(|m| {
            m.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })
        })
        .collect())
}
