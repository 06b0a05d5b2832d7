//! The network part of `Spawn` and of removal (a veth on a bridge network
//! for a container the helper has just cloned, published ports, and their
//! teardown), and the network operations (create, remove, list a caller's
//! networks). The work itself is `ctr-net`'s; this module decides what a
//! caller may ask for.
//!
//! Why this is safe: the veth's peer goes only into the network namespace
//! of the helper's own unreleased child (opened by the helper, never named
//! by the caller), by fd: the helper never enters it, and the container's
//! own init configures that end; addresses come from the configured subnet
//! only; the default network is shared, any other belongs to the user who created
//! it and nobody else can join or remove it ([`crate::registry`]); host
//! ports below `net.ipv4.ip_unprivileged_port_start` are refused to
//! non-root callers, as binding them would be; a port that is bound on the
//! host is refused, and one that another container publishes is refused by
//! the kernel (one nftables map element per port); a per-user limit bounds
//! the interfaces a user can create, over all networks; every rule, lease
//! and veth is keyed on (caller uid, container id), the veth's name is
//! random and recorded before the link is made, and removal acts only on
//! what the caller's own record and lease name. All of this happens under
//! one lock, so concurrent helpers see each other's ports, leases and
//! networks. Rules change in netlink transactions the kernel applies whole
//! before the call returns; the one `nft` child left (a removal's slow path,
//! which lists the ruleset) inherits the lock, so a helper killed while it
//! runs cannot have its deletions land after a reconcile looked.

use crate::caller::Caller;
use crate::registry::{self, UserNetwork, DEFAULT_BRIDGE};
use ctr_core::config::HelperConfig;
use ctr_core::ids::ContainerId;
use ctr_core::net::{Cidr, NetworkInfo, NetworkName, NetworkRequest, NetworkSummary};
use ctr_core::protocol::HelperError;
use ctr_net::bridge::{AttachRequest, BridgeNetwork, NetError, NetworkConfig};
use ctr_net::ipam::{lock_file, FileLock, Lease, Subnet};
use ctr_net::link::LinkError;
use ctr_net::liveness::Liveness;
use ctr_net::names::{BridgeName, InterfaceName};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

pub const LEASE_DIR: &str = "/run/ctr-helper/net";

fn net_error(e: impl std::fmt::Display) -> HelperError {
    HelperError::Network(e.to_string())
}

/// The default network, in the shape of the registry's entries.
fn default_network(config: &HelperConfig) -> Result<UserNetwork, HelperError> {
    let bridge = BridgeName::parse(DEFAULT_BRIDGE).map_err(net_error)?;
    Ok(UserNetwork { owner: 0, name: NetworkName::default_network(), bridge, subnet: config.bridge_subnet, created: 0 })
}

/// `name` as `uid` may use it: the default network, or one of its own.
fn resolve(
    config: &HelperConfig,
    networks: &[UserNetwork],
    uid: u32,
    name: &NetworkName,
) -> Result<UserNetwork, HelperError> {
    if name.is_default() {
        return default_network(config);
    }
    registry::find(networks, uid, name).cloned().ok_or_else(|| {
        net_error(format!("you have no network named {name:?}: create it with `ctr network create {name}`"))
    })
}

/// ctr-net's driver for `n`. A user's network's leases are filed under its
/// bridge name, which is unique on the host, where its name is unique only
/// per user (and never the default network's, which is reserved).
fn driver(config: &HelperConfig, n: &UserNetwork) -> Result<BridgeNetwork, HelperError> {
    let lease_key =
        if n.name.is_default() { n.name.clone() } else { NetworkName::parse(n.bridge.as_str()).map_err(net_error)? };
    let max_leases_per_uid = Some(config.max_interfaces_per_user);
    let driver =
        NetworkConfig { name: lease_key, bridge: n.bridge.clone(), subnet: Subnet::from(n.subnet), max_leases_per_uid };
    BridgeNetwork::new(driver, Path::new(LEASE_DIR)).map_err(net_error)
}

/// Checks a request before anything is created.
pub fn validate(caller: &Caller, config: &HelperConfig, request: &NetworkRequest) -> Result<(), HelperError> {
    let NetworkRequest::Bridge { network, address, ports } = request else { return Ok(()) };
    // The default network needs no registry: no file read on that start.
    let networks = if network.is_default() { Vec::new() } else { registry::load()? };
    let resolved = resolve(config, &networks, caller.uid.as_raw(), network)?;
    if let Some(addr) = address {
        let usable = Subnet::from(resolved.subnet).check_allocatable(*addr);
        usable.map_err(|e| net_error(format!("address {addr} is not a usable address of network {network}: {e}")))?;
    }
    // At most 64 ports, none twice: checked when the request was decoded
    // (ctr_core::net::check_published).
    let floor = ctr_net::host_ports::unprivileged_port_start();
    // Decoding refused group addresses; a subnet's broadcast address is
    // known only from the host's routes (and the network's own subnet).
    let broadcasts = if ports.iter().any(|p| p.host_ip.is_some()) {
        let trie = std::fs::read_to_string("/proc/net/fib_trie").map_err(net_error)?;
        ctr_core::net::fib_broadcasts(&trie).into_iter().chain([Subnet::from(resolved.subnet).broadcast()]).collect()
    } else {
        Vec::new()
    };
    for p in ports {
        if let Some(ip) = p.host_ip.filter(|ip| broadcasts.contains(ip)) {
            return Err(net_error(format!(
                "host address {ip} in -p is a subnet's broadcast address: publish on one of this host's own addresses"
            )));
        }
        if p.host_port < floor && !caller.is_root() {
            return Err(net_error(format!(
                "host port {} is below net.ipv4.ip_unprivileged_port_start ({floor}): only root may publish it",
                p.host_port
            )));
        }
    }
    Ok(())
}

/// Serialises every network change across concurrent helpers: port checks,
/// attachment, the interface count, the registry, detach and reclaim. The
/// descriptor is inherited by the `nft -f` of a removal's slow path (and by
/// nothing else: no other child is started while it is held, and a
/// container's process closes every fd above 3), so the lock outlives a
/// killed helper until that batch has been applied.
fn network_lock() -> Result<FileLock, HelperError> {
    let lock = lock_file(&Path::new(LEASE_DIR).join("net.lock")).map_err(net_error)?;
    nix::fcntl::fcntl(lock.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))
        .map_err(net_error)?;
    Ok(lock)
}

/// Every network a container of `uid` can be on: the default one and its own.
fn networks_of(config: &HelperConfig, networks: &[UserNetwork], uid: u32) -> Result<Vec<UserNetwork>, HelperError> {
    let own = networks.iter().filter(|n| n.owner == uid).cloned();
    Ok(std::iter::once(default_network(config)?).chain(own).collect())
}

/// The per-user interface limit, over all of the user's networks.
fn check_interface_limit(config: &HelperConfig, networks: &[UserNetwork], uid: u32) -> Result<(), HelperError> {
    let mut count = 0;
    for n in networks_of(config, networks, uid)? {
        count += driver(config, &n)?.leases().map_err(net_error)?.count_for_uid(uid);
    }
    let limit = config.max_interfaces_per_user;
    if count >= limit {
        return Err(net_error(format!(
            "you already have {count} containers on bridge networks, the most the helper's config allows \
             (max_interfaces_per_user = {limit}): remove one, or use --network none"
        )));
    }
    Ok(())
}

/// What [`attach`] is asked to do: the network part of a spawn request,
/// the host veth name the caller's record holds, and the child's liveness.
pub struct Attach<'a> {
    pub id: &'a ContainerId,
    pub pid: nix::unistd::Pid,
    pub request: &'a NetworkRequest,
    pub host_veth: &'a InterfaceName,
    pub liveness: &'a Liveness,
}

/// Attaches the helper's child `pid` (not yet released) to the network.
/// `Ok(None)` when the veth's name was taken (nothing was touched).
pub fn attach(caller: &Caller, config: &HelperConfig, a: &Attach<'_>) -> Result<Option<NetworkInfo>, HelperError> {
    let NetworkRequest::Bridge { network, address, ports } = a.request else {
        return Err(net_error("not a bridge network request"));
    };
    let uid = caller.uid.as_raw();
    let _lock = network_lock()?;
    let networks = registry::load()?;
    // The address was checked in validate; ctr-net checks it again, under
    // its lease lock, against a subnet that may have changed since.
    let resolved = resolve(config, &networks, uid, network)?;
    check_interface_limit(config, &networks, uid)?;
    // A published port must be free on the host. Two containers never
    // publish one port: the kernel refuses a second element for a
    // (protocol, port) in nftables' `ports` map (EEXIST, the whole batch
    // undone), even where a user killed the `ctr` that held it.
    for p in ports {
        ctr_net::host_ports::check_free(p).map_err(|e| {
            net_error(format!("host port {}/{} is already published or in use: {e}", p.host_port, p.protocol))
        })?;
    }
    let network = driver(config, &resolved)?;
    // Our own unreaped child's: its pid cannot have been reused.
    let netns = std::fs::File::open(format!("/proc/{}/ns/net", a.pid.as_raw())).map_err(net_error)?;
    let request = AttachRequest {
        id: a.id,
        owner_uid: uid,
        host_veth: a.host_veth,
        liveness: a.liveness,
        netns: netns.as_fd(),
        address: *address,
        ports,
    };
    let attached = match network.attach(&request) {
        Err(NetError::Link(LinkError::Exists(_))) => return Ok(None),
        other => other.map_err(net_error)?,
    };
    Ok(Some(NetworkInfo {
        network: resolved.name.to_string(),
        address: attached.address,
        prefix: attached.prefix,
        gateway: attached.gateway,
        mac: attached.mac.to_string(),
        ports: ports.clone(),
    }))
}

/// Removes the caller's container's rules, veth and lease on `network`,
/// as its record names them. Idempotent.
pub fn detach(
    config: &HelperConfig,
    uid: u32,
    network: &NetworkName,
    id: &ContainerId,
    recorded_veth: Option<&InterfaceName>,
) -> Result<(), HelperError> {
    let _lock = network_lock()?;
    let resolved = resolve(config, &registry::load()?, uid, network)?;
    driver(config, &resolved)?.detach(uid, id, recorded_veth).map_err(net_error)
}

/// Cleans the leases of dead containers (anyone's) on every network the
/// caller can use: rules and veth first, then the lease.
pub fn reclaim(config: &HelperConfig, uid: u32) -> Result<usize, HelperError> {
    let _lock = network_lock()?;
    let mut freed = 0;
    for n in networks_of(config, &registry::load()?, uid)? {
        freed += driver(config, &n)?.reclaim(Lease::is_alive).map_err(net_error)?.len();
    }
    Ok(freed)
}

fn summary(config: &HelperConfig, n: &UserNetwork, uid: u32) -> Result<NetworkSummary, HelperError> {
    let leases = driver(config, n)?.leases().map_err(net_error)?;
    Ok(NetworkSummary {
        name: n.name.clone(),
        bridge: n.bridge.to_string(),
        subnet: n.subnet,
        gateway: Subnet::from(n.subnet).gateway(),
        created: n.created,
        containers: leases
            .iter()
            .filter(|(_, l)| l.owner_uid == uid)
            .map(|(addr, l)| (l.container_id.to_string(), addr))
            .collect(),
    })
}

/// `ctr network create`: registers a network of the caller's. Its bridge
/// and rules are made when its first container starts.
pub fn create(
    caller: &Caller,
    config: &HelperConfig,
    name: NetworkName,
    subnet: Option<Cidr>,
) -> Result<NetworkSummary, HelperError> {
    let uid = caller.uid.as_raw();
    let _lock = network_lock()?;
    let mut networks = registry::load()?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let planned = registry::plan(&networks, config, uid, name, subnet, now)?;
    networks.push(planned.clone());
    registry::store(&networks)?;
    summary(config, &planned, uid)
}

/// `ctr network rm`: refused while any container (anyone's) is attached;
/// otherwise its bridge, rules, lease file and registry entry go.
pub fn remove(caller: &Caller, config: &HelperConfig, name: &NetworkName) -> Result<(), HelperError> {
    if name.is_default() {
        return Err(net_error("the default network cannot be removed"));
    }
    let uid = caller.uid.as_raw();
    let _lock = network_lock()?;
    let mut networks = registry::load()?;
    let network = driver(config, &resolve(config, &networks, uid, name)?)?;
    network.reclaim(Lease::is_alive).map_err(net_error)?;
    let leases = network.leases().map_err(net_error)?;
    if !leases.is_empty() {
        let ids: Vec<String> = leases.iter().map(|(_, l)| l.container_id.short().to_owned()).collect();
        return Err(net_error(format!(
            "network {name} is in use by container(s) {}: remove them first (ctr rm -f)",
            ids.join(", ")
        )));
    }
    network.teardown().map_err(net_error)?;
    network.forget().map_err(net_error)?;
    networks.retain(|n| !(n.owner == uid && &n.name == name));
    registry::store(&networks)
}

/// `ctr network ls`: the default network and the caller's own.
pub fn list(caller: &Caller, config: &HelperConfig) -> Result<Vec<NetworkSummary>, HelperError> {
    let uid = caller.uid.as_raw();
    networks_of(config, &registry::load()?, uid)?.iter().map(|n| summary(config, n, uid)).collect()
}
