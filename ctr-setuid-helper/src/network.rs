//! The network part of `Spawn` and of removal: a veth on the default bridge
//! for a container the helper has just cloned, published ports, and their
//! teardown. The work itself is `ctr-net`'s; this module decides what a
//! caller may ask for.
//!
//! Why this is safe: the veth's peer goes only into the network namespace
//! of the helper's own unreleased child (opened by the helper, never named
//! by the caller); addresses come from the configured subnet only; host
//! ports below `net.ipv4.ip_unprivileged_port_start` are refused to
//! non-root callers, as binding them would be; a port that is bound on the
//! host or published by any container is refused; a per-user limit bounds
//! the interfaces a user can create; every rule carries the container id
//! and is removed with it.

use crate::caller::Caller;
use ctr_core::config::HelperConfig;
use ctr_core::ids::ContainerId;
use ctr_core::net::{NetworkInfo, NetworkRequest, PortSpec, Protocol};
use ctr_core::protocol::HelperError;
use ctr_net::bridge::{AttachRequest, BridgeNetwork, NetworkConfig};
use ctr_net::firewall::{PortMapping, Protocol as NetProtocol};
use ctr_net::ipam::Subnet;
use ctr_net::names::{BridgeName, NetworkName};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub const LEASE_DIR: &str = "/run/ctr-helper/net";
const DEFAULT_NETWORK: &str = "bridge";
const DEFAULT_BRIDGE: &str = "ctr0";

fn net_error(e: impl std::fmt::Display) -> HelperError {
    HelperError::Network(e.to_string())
}

fn default_network(config: &HelperConfig) -> Result<BridgeNetwork, HelperError> {
    let (address, prefix) = config.bridge_subnet;
    let network = NetworkConfig {
        name: NetworkName::parse(DEFAULT_NETWORK).map_err(net_error)?,
        bridge: BridgeName::parse(DEFAULT_BRIDGE).map_err(net_error)?,
        subnet: Subnet::new(address, prefix).map_err(net_error)?,
        max_leases_per_uid: Some(config.max_interfaces_per_user),
    };
    BridgeNetwork::new(network, Path::new(LEASE_DIR)).map_err(net_error)
}

fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

/// Checks a request before anything is created.
pub fn validate(caller: &Caller, config: &HelperConfig, request: &NetworkRequest) -> Result<(), HelperError> {
    let NetworkRequest::Bridge { address, ports } = request else { return Ok(()) };
    if let Some(addr) = address {
        let (network, prefix) = config.bridge_subnet;
        let subnet = Subnet::new(network, prefix).map_err(net_error)?;
        if !subnet.contains(*addr) || *addr == subnet.gateway() || *addr == network || *addr == subnet.broadcast() {
            return Err(net_error(format!("address {addr} is not a usable address of the bridge network {subnet}")));
        }
    }
    let floor = unprivileged_port_start();
    for (i, p) in ports.iter().enumerate() {
        if p.host_port < floor && !caller.is_root() {
            return Err(net_error(format!(
                "host port {} is below net.ipv4.ip_unprivileged_port_start ({floor}): only root may publish it",
                p.host_port
            )));
        }
        if ports[..i].iter().any(|q| q.host_port == p.host_port && q.protocol == p.protocol) {
            return Err(net_error(format!("host port {}/{} is published twice", p.host_port, p.protocol)));
        }
    }
    if ports.len() > 64 {
        return Err(net_error("at most 64 published ports per container"));
    }
    Ok(())
}

/// Serialises port checks and attachment across concurrent helpers.
fn ports_lock() -> Result<nix::fcntl::Flock<std::fs::File>, HelperError> {
    std::fs::create_dir_all(LEASE_DIR).map_err(net_error)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(Path::new(LEASE_DIR).join("ports.lock"))
        .map_err(net_error)?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| net_error(e))
}

/// A published port must be free: not bound on the host (checked by
/// binding it), and not published by another container (their records).
fn check_port_free(p: &PortSpec, published: &[(Protocol, u16)]) -> Result<(), HelperError> {
    if published.contains(&(p.protocol, p.host_port)) {
        return Err(net_error(format!("host port {}/{} is already published by another container", p.host_port, p.protocol)));
    }
    let addr = SocketAddrV4::new(p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), p.host_port);
    let bound = match p.protocol {
        Protocol::Tcp => TcpListener::bind(addr).map(drop),
        Protocol::Udp => UdpSocket::bind(addr).map(drop),
    };
    bound.map_err(|e| net_error(format!("host port {}/{} is not available: {e}", p.host_port, p.protocol)))
}

/// Attaches the helper's child `pid` (not yet released) to the network.
pub fn attach(
    caller: &Caller,
    config: &HelperConfig,
    id: &ContainerId,
    pid: nix::unistd::Pid,
    request: &NetworkRequest,
    published: impl FnOnce() -> Vec<(Protocol, u16)>,
) -> Result<Option<NetworkInfo>, HelperError> {
    let NetworkRequest::Bridge { address, ports } = request else { return Ok(None) };
    let _lock = ports_lock()?;
    // Every user's records are read only when there is a port to check.
    let published = if ports.is_empty() { Vec::new() } else { published() };
    for p in ports {
        check_port_free(p, &published)?;
    }
    let network = default_network(config)?;
    network.setup().map_err(net_error)?;
    let netns = std::fs::File::open(format!("/proc/{}/ns/net", pid.as_raw())).map_err(net_error)?;
    let mappings: Vec<PortMapping> = ports
        .iter()
        .map(|p| PortMapping {
            host_ip: p.host_ip,
            host_port: p.host_port,
            container_port: p.container_port,
            protocol: match p.protocol {
                Protocol::Tcp => NetProtocol::Tcp,
                Protocol::Udp => NetProtocol::Udp,
            },
        })
        .collect();
    let request = AttachRequest { id, owner_uid: caller.uid.as_raw(), netns: netns.as_fd(), address: *address, ports: &mappings };
    let attached = network.attach(&request).map_err(net_error)?;
    Ok(Some(NetworkInfo {
        network: DEFAULT_NETWORK.to_owned(),
        address: attached.address,
        prefix: attached.prefix,
        gateway: attached.gateway,
        mac: attached.mac.to_string(),
        ports: ports.clone(),
    }))
}

/// Removes a container's veth, rules and lease. Idempotent.
pub fn detach(config: &HelperConfig, id: &ContainerId) -> Result<(), HelperError> {
    let network = default_network(config)?;
    network.detach(id).map_err(|e| net_error(format!("{:?}", e.0)))
}
