//! The bridge network driver: composes [`ipam`](crate::ipam),
//! [`link`] and [`firewall`](crate::firewall) into the three
//! operations the helper needs, in netavark's shape: validate, set up
//! (undoing every step already taken if a later one fails), tear down
//! (attempting every step and reporting every error).
//!
//! All work for one network happens under its lease lock, so concurrent
//! helper runs for one network are serialised. A lease is written *before*
//! the veth and rules it names (an intent), and removed only after them, so
//! every link and rule a container has is named by its lease, whatever
//! point its helper was killed at; a lease whose owner is dead is cleaned
//! by the next attach (or [`BridgeNetwork::reclaim`]).

use crate::firewall::{ContainerKeys, ContainerRules, Firewall, FirewallError, NetworkRules, PortSpec};
use crate::ipam::{IpamError, Lease, LeaseStore, Leases, MacAddr, Subnet};
use crate::link::{self, BridgeState, ContainerEnd, LinkError, VethConfig};
use crate::liveness::Liveness;
use crate::names::{BridgeName, InterfaceName, NetworkName};
use ctr_core::ids::ContainerId;
use std::fmt;
use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error("user {uid} already has {limit} containers on this network, the most allowed")]
    UidLimit { uid: u32, limit: usize },
}

/// Every error a teardown met; the steps that succeeded stay done.
#[derive(Debug)]
pub struct TeardownError(pub Vec<NetError>);

impl fmt::Display for TeardownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "teardown failed with {} error(s)", self.0.len())?;
        for e in &self.0 {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TeardownError {}

/// A bridge network's configuration, as the helper's config defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    pub name: NetworkName,
    pub bridge: BridgeName,
    pub subnet: Subnet,
    /// Most addresses one user may hold on this network (None: no limit).
    pub max_leases_per_uid: Option<usize>,
}

/// What to attach: a container's network namespace, by fd.
#[derive(Debug, Clone, Copy)]
pub struct AttachRequest<'a> {
    pub id: &'a ContainerId,
    pub owner_uid: u32,
    /// The host end's name, chosen by the caller and written into its own
    /// record before this call ([`crate::names::random_host_veth`]).
    pub host_veth: &'a InterfaceName,
    /// The process whose life the lease follows (the container's first).
    pub liveness: &'a Liveness,
    /// An nsfs fd (`/proc/PID/ns/net`): the container end is created there.
    pub netns: BorrowedFd<'a>,
    /// A specific address, or None for the next free one.
    pub address: Option<Ipv4Addr>,
    pub ports: &'a [PortSpec],
}

/// What the container got. Its end of the veth is still to be configured,
/// from inside its namespace ([`link::configure_container_end`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: MacAddr,
    pub host_veth: InterfaceName,
    pub container_interface: InterfaceName,
}

impl Attachment {
    pub fn container_end(&self) -> ContainerEnd {
        let (interface, address, prefix, gateway) =
            (self.container_interface.clone(), self.address, self.prefix, self.gateway);
        ContainerEnd { interface, address, prefix, gateway }
    }
}

/// One bridge network on this host (in the calling thread's namespace).
#[derive(Debug)]
pub struct BridgeNetwork {
    config: NetworkConfig,
    store: LeaseStore,
    firewall: Firewall,
}

impl BridgeNetwork {
    /// `lease_dir` is a root-owned directory for lease files (e.g.
    /// `/run/ctr-helper/net`). Fails if nftables is not installed.
    pub fn new(config: NetworkConfig, lease_dir: &Path) -> Result<Self, NetError> {
        let store = LeaseStore::new(lease_dir, &config.name, config.subnet);
        Ok(Self { config, store, firewall: Firewall::new()? })
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// A snapshot of the network's leases.
    pub fn leases(&self) -> Result<Leases, NetError> {
        Ok(self.store.read()?)
    }

    fn network_rules(&self) -> NetworkRules {
        NetworkRules { bridge: self.config.bridge.clone(), subnet: self.config.subnet }
    }

    /// Creates the bridge (or checks the existing one) and installs the
    /// network's NAT rules and sysctls. Idempotent; a bridge it created is
    /// deleted again if the rules cannot be installed.
    pub fn setup(&self) -> Result<(), NetError> {
        self.store.with_leases(|_| {
            let state = link::ensure_bridge(&self.config.bridge, &self.config.subnet)?;
            if let Err(e) = self.firewall.add_network(&self.network_rules()) {
                if state == BridgeState::Created {
                    let _ = link::delete_bridge(&self.config.bridge);
                }
                return Err(e.into());
            }
            Ok(())
        })
    }

    /// Gives a container an address, a veth pair and its rules, setting up
    /// the network first if needed (as [`setup`](Self::setup) does, in the
    /// same nftables batch as the container's rules).
    ///
    /// Under the network's lease lock: first the leases of dead containers
    /// (anyone's) are cleaned, rules and veth before the lease, so no address
    /// is handed out while a stale rule still points at it; then the lease,
    /// naming the veth and the owner's liveness key, is saved *before* the
    /// veth and rules are made, so a helper killed half-way leaves a lease
    /// that [`reclaim`](Self::reclaim) finds. On failure nothing is left
    /// behind: no lease, no veth, no rules, no bridge it created; a link
    /// that already had the veth's name is never touched ([`LinkError::Exists`]).
    pub fn attach(&self, req: &AttachRequest<'_>) -> Result<Attachment, NetError> {
        let mut locked = self.store.lock_leases()?;
        // Cleaning what is dead is best effort: what fails stays leased.
        let _ = self.reclaim_locked(&mut locked.leases, Lease::is_alive);
        self.check_uid_limit(&locked.leases, req.owner_uid)?;
        let lease = Lease {
            container_id: req.id.clone(),
            owner_uid: req.owner_uid,
            interface: req.host_veth.clone(),
            liveness: Some(req.liveness.clone()),
            ports: req.ports.to_vec(),
        };
        let address = locked.leases.allocate(lease, req.address)?;
        locked.save()?;
        let attached = self.make_links_and_rules(req, address);
        if attached.is_err() {
            locked.leases.release(req.owner_uid, req.id);
            locked.save()?;
        }
        attached
    }

    /// The bridge, the veth and the rules for a leased address; undoes its
    /// own steps if a later one fails.
    fn make_links_and_rules(&self, req: &AttachRequest<'_>, address: Ipv4Addr) -> Result<Attachment, NetError> {
        let bridge = link::ensure_bridge(&self.config.bridge, &self.config.subnet)?;
        let undo_bridge = || {
            if bridge == BridgeState::Created {
                let _ = link::delete_bridge(&self.config.bridge);
            }
        };
        let veth = VethConfig::for_container(req.host_veth, &self.config.bridge, address);
        if let Err(e) = link::create_veth(&veth, req.netns) {
            undo_bridge();
            return Err(e.into());
        }
        let rules = ContainerRules {
            owner_uid: req.owner_uid,
            id: req.id.clone(),
            host_veth: veth.host.clone(),
            address,
            mac: veth.mac,
            ports: req.ports.to_vec(),
        };
        if let Err(e) = self.firewall.add_network_and_container(&self.network_rules(), &rules) {
            let _ = link::delete_veth(&veth.host);
            undo_bridge();
            return Err(e.into());
        }
        Ok(Attachment {
            address,
            prefix: self.config.subnet.prefix(),
            gateway: self.config.subnet.gateway(),
            mac: veth.mac,
            host_veth: veth.host,
            container_interface: veth.container,
        })
    }

    fn check_uid_limit(&self, leases: &Leases, uid: u32) -> Result<(), NetError> {
        match self.config.max_leases_per_uid {
            Some(limit) if leases.count_for_uid(uid) >= limit => Err(NetError::UidLimit { uid, limit }),
            _ => Ok(()),
        }
    }

    /// Removes user `uid`'s container `id`'s rules and veth, then frees its
    /// address. Every step is attempted; the address is freed only if the
    /// others succeeded, so it cannot be handed to a new container while a
    /// stale rule still points at it. The veth is the one its lease names;
    /// without a lease (a helper killed before it saved one), the one its
    /// owner's record names (`recorded_veth`), unless another lease names
    /// that: a link is deleted only on the word of its own container's
    /// lease or record. Detaching what is not attached is success.
    pub fn detach(
        &self,
        uid: u32,
        id: &ContainerId,
        recorded_veth: Option<&InterfaceName>,
    ) -> Result<(), TeardownError> {
        let errors = self.store.with_leases(|leases| {
            let (interface, ports) = match leases.lease_of(uid, id) {
                Some((_, lease)) => (Some(lease.interface.clone()), lease.ports.clone()),
                None => (recorded_veth.filter(|v| leases.naming(v).is_none()).cloned(), Vec::new()),
            };
            let errors = self.clean_container(uid, id, interface.as_ref(), &ports);
            if errors.is_empty() {
                leases.release(uid, id);
            }
            Ok::<_, NetError>(errors)
        });
        into_teardown(errors)
    }

    /// Detaches every container for which `is_alive` says no (e.g. its
    /// owner's liveness key is dead), returning the leases that were freed.
    pub fn reclaim(&self, is_alive: impl Fn(&Lease) -> bool) -> Result<Vec<(Ipv4Addr, Lease)>, TeardownError> {
        let mut freed = Vec::new();
        let errors = self.store.with_leases(|leases| {
            let (done, errors) = self.reclaim_locked(leases, is_alive);
            freed = done;
            Ok::<_, NetError>(errors)
        });
        into_teardown(errors).map(|()| freed)
    }

    fn reclaim_locked(
        &self,
        leases: &mut Leases,
        is_alive: impl Fn(&Lease) -> bool,
    ) -> (Vec<(Ipv4Addr, Lease)>, Vec<NetError>) {
        let (mut freed, mut errors) = (Vec::new(), Vec::new());
        let dead: Vec<(Ipv4Addr, Lease)> =
            leases.iter().filter(|(_, l)| !is_alive(l)).map(|(a, l)| (a, l.clone())).collect();
        for (addr, lease) in dead {
            let failed =
                self.clean_container(lease.owner_uid, &lease.container_id, Some(&lease.interface), &lease.ports);
            if failed.is_empty() {
                // Only now: a lease whose cleanup failed stays for a later attempt.
                leases.release(lease.owner_uid, &lease.container_id);
                freed.push((addr, lease));
            }
            errors.extend(failed);
        }
        (freed, errors)
    }

    /// Detaches every container still attached, removes the network's rules
    /// and deletes its bridge, attempting every step.
    pub fn teardown(&self) -> Result<(), TeardownError> {
        let errors = self.store.with_leases(|leases| {
            let (_, mut errors) = self.reclaim_locked(leases, |_| false);
            if let Err(e) = self.firewall.remove_network(&self.network_rules()) {
                errors.push(e.into());
            }
            if let Err(e) = link::delete_bridge(&self.config.bridge) {
                errors.push(e.into());
            }
            Ok::<_, NetError>(errors)
        });
        into_teardown(errors)
    }

    /// Deletes the network's lease file, once it holds no lease (after
    /// [`teardown`](Self::teardown), for a network that is removed).
    pub fn forget(&self) -> Result<(), NetError> {
        Ok(self.store.delete()?)
    }

    /// Removes a container's rules (one `nft` run, given its lease's veth
    /// and ports), then its veth.
    fn clean_container(
        &self,
        uid: u32,
        id: &ContainerId,
        interface: Option<&InterfaceName>,
        ports: &[PortSpec],
    ) -> Vec<NetError> {
        let mut errors = Vec::new();
        let keys = ContainerKeys { owner_uid: uid, id, host_veth: interface, ports };
        if let Err(e) = self.firewall.remove_container(&keys) {
            errors.push(e.into());
        }
        if let Some(Err(e)) = interface.map(link::delete_veth) {
            errors.push(e.into());
        }
        errors
    }
}

fn into_teardown(result: Result<Vec<NetError>, NetError>) -> Result<(), TeardownError> {
    match result {
        Ok(errors) if errors.is_empty() => Ok(()),
        Ok(errors) => Err(TeardownError(errors)),
        Err(e) => Err(TeardownError(vec![e])),
    }
}
