//! Address management for a network's IPv4 subnet: which container holds
//! which address, and the file that remembers it.
//!
//! Allocation is pure logic ([`Subnet`], [`Leases`]) so it can be tested
//! without root. [`LeaseStore`] persists one network's leases as JSON in a
//! root-owned directory chosen by the caller, under an exclusive `flock` on a
//! sibling lock file, and replaces the file atomically (temp file, fsync,
//! rename), so concurrent helper runs never hand out one address twice and a
//! crash never leaves a half-written file. A file that does not parse is an
//! error, never silently reset: resetting would hand live containers'
//! addresses to new ones.
//!
//! A lease is keyed on (owner uid, container id): container ids are chosen
//! by callers, so two users may well pick the same one. It names its host
//! veth (chosen by the helper) and the liveness key of the process it
//! belongs to, and it is saved *before* the veth and rules it names are
//! made ([`LockedLeases::save`]), so whatever a killed helper left is found
//! through a lease whose owner is dead.

use crate::firewall::PortSpec;
use crate::liveness::Liveness;
use crate::names::{InterfaceName, NetworkName};
use ctr_core::ids::ContainerId;
use ctr_core::net::Cidr;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("subnet {0:?} is invalid: {1}")]
    Subnet(String, &'static str),
    #[error("address {addr} is not in subnet {subnet}")]
    OutsideSubnet { addr: Ipv4Addr, subnet: Subnet },
    #[error("address {addr} is reserved in subnet {subnet} (network, gateway or broadcast address)")]
    Reserved { addr: Ipv4Addr, subnet: Subnet },
    #[error("address {addr} is already leased to container {holder}")]
    InUse { addr: Ipv4Addr, holder: ContainerId },
    #[error("container {id} of user {uid} already holds address {addr} on this network; release it first")]
    AlreadyLeased { uid: u32, id: ContainerId, addr: Ipv4Addr },
    #[error("subnet {subnet} is full: all {capacity} addresses are leased; remove containers or use a larger subnet")]
    Full { subnet: Subnet, capacity: u32 },
    #[error(
        "lease file {path} is for subnet {found}, but the network is configured with {expected}: \
         move the file aside only once no container uses the network"
    )]
    SubnetMismatch { path: PathBuf, found: Subnet, expected: Subnet },
    #[error(
        "lease file {path} is corrupt ({source}); it was left untouched: \
         inspect it, or move it aside once no container uses the network"
    )]
    Corrupt { path: PathBuf, source: serde_json::Error },
    #[error("lease file {path} still holds leases: detach its containers first")]
    StillLeased { path: PathBuf },
    #[error("{op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: io::Error },
}

/// An IPv4 subnet for a container network, e.g. `10.88.0.0/16`: a
/// [`Cidr`] (whose rules it keeps: prefix 8..=30, the address is the network
/// address itself, so `10.88.0.1/16` is refused rather than guessed) with
/// what a bridge network needs to know of it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet(Cidr);

const SUBNET_RULE: &str = "use the network's own address and a prefix of 8 to 30, e.g. 10.88.0.0/16";

impl Subnet {
    pub fn new(network: Ipv4Addr, prefix: u8) -> Result<Self, IpamError> {
        Cidr::new(network, prefix).map(Self).map_err(|_| IpamError::Subnet(format!("{network}/{prefix}"), SUBNET_RULE))
    }

    pub fn parse(s: &str) -> Result<Self, IpamError> {
        Cidr::parse(s).map(Self).map_err(|_| IpamError::Subnet(s.to_owned(), SUBNET_RULE))
    }

    /// The same network as the protocol's type.
    pub fn cidr(&self) -> Cidr {
        self.0
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.0.prefix())
    }

    pub fn network(&self) -> Ipv4Addr {
        self.0.address()
    }

    pub fn prefix(&self) -> u8 {
        self.0.prefix()
    }

    /// The bridge's address: the first host.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) + 1)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) | !self.mask())
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.0.contains(addr)
    }

    /// The first and last address a container may hold: everything but the
    /// network, gateway and broadcast addresses.
    fn allocatable(&self) -> (u32, u32) {
        (u32::from(self.network()) + 2, u32::from(self.broadcast()) - 1)
    }

    /// How many addresses containers can hold.
    pub fn capacity(&self) -> u32 {
        let (first, last) = self.allocatable();
        last - first + 1
    }

    /// Whether a container may hold `addr`: inside the subnet, and not its
    /// network, gateway or broadcast address.
    pub fn check_allocatable(&self, addr: Ipv4Addr) -> Result<(), IpamError> {
        if !self.contains(addr) {
            return Err(IpamError::OutsideSubnet { addr, subnet: *self });
        }
        let (first, last) = self.allocatable();
        if !(first..=last).contains(&u32::from(addr)) {
            return Err(IpamError::Reserved { addr, subnet: *self });
        }
        Ok(())
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<Cidr> for Subnet {
    fn from(cidr: Cidr) -> Self {
        Self(cidr)
    }
}

impl fmt::Debug for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Subnet {
    type Err = IpamError;
    fn from_str(s: &str) -> Result<Self, IpamError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Subnet {
    type Error = IpamError;
    fn try_from(s: String) -> Result<Self, IpamError> {
        Self::parse(&s)
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

/// An Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The container-side MAC for an address: locally administered, unicast
    /// (`02:`), then `63` ('c' for ctr) and the four address bytes, as docker
    /// derives `02:42:` MACs. Deterministic, so the anti-spoofing rules can
    /// name it without asking the container's namespace, and unique on the
    /// bridge because leased addresses are.
    pub fn for_container(addr: Ipv4Addr) -> Self {
        let [a, b, c, d] = addr.octets();
        Self([0x02, 0x63, a, b, c, d])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Who holds an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    pub container_id: ContainerId,
    pub owner_uid: u32,
    /// The host-side veth, so a stale lease can be cleaned up without
    /// recomputing anything.
    pub interface: InterfaceName,
    /// The process whose life the lease follows (None in files written
    /// before liveness keys existed: such a lease is never judged dead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<Liveness>,
    /// The published ports, whose firewall map keys removal needs (empty
    /// in files written before the firewall used maps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortSpec>,
}

impl Lease {
    /// Whether its owner may still use it: a lease without a key is kept.
    pub fn is_alive(&self) -> bool {
        self.liveness.as_ref().is_none_or(Liveness::is_alive)
    }

    pub fn is_of(&self, uid: u32, id: &ContainerId) -> bool {
        self.owner_uid == uid && &self.container_id == id
    }
}

/// A network's leases: pure data and allocation policy, no I/O.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leases {
    subnet: Subnet,
    /// The most recent sequential allocation; the next search starts after
    /// it, so a released address is not handed out again at once (a peer
    /// with a stale ARP entry or connection would reach the wrong container).
    last_allocated: Option<Ipv4Addr>,
    leases: BTreeMap<Ipv4Addr, Lease>,
}

impl Leases {
    pub fn new(subnet: Subnet) -> Self {
        Self { subnet, last_allocated: None, leases: BTreeMap::new() }
    }

    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    /// Leases an address to `lease`'s container: `requested` if given (it
    /// must be allocatable and free), otherwise the first free address after
    /// the last one allocated, wrapping around the subnet.
    pub fn allocate(&mut self, lease: Lease, requested: Option<Ipv4Addr>) -> Result<Ipv4Addr, IpamError> {
        if let Some((addr, _)) = self.lease_of(lease.owner_uid, &lease.container_id) {
            return Err(IpamError::AlreadyLeased { uid: lease.owner_uid, id: lease.container_id, addr });
        }
        let addr = match requested {
            Some(addr) => self.check_free(addr)?,
            None => {
                let addr = self.next_free()?;
                self.last_allocated = Some(addr);
                addr
            }
        };
        self.leases.insert(addr, lease);
        Ok(addr)
    }

    fn check_free(&self, addr: Ipv4Addr) -> Result<Ipv4Addr, IpamError> {
        self.subnet.check_allocatable(addr)?;
        match self.leases.get(&addr) {
            Some(holder) => Err(IpamError::InUse { addr, holder: holder.container_id.clone() }),
            None => Ok(addr),
        }
    }

    fn next_free(&self) -> Result<Ipv4Addr, IpamError> {
        let (first, last) = self.subnet.allocatable();
        let capacity = last - first + 1;
        // Start just after the last allocation, if it is still in range.
        let start = self.last_allocated.map(u32::from).filter(|a| (first..=last).contains(a)).map_or(first, |a| {
            if a == last {
                first
            } else {
                a + 1
            }
        });
        (0..capacity)
            .map(|i| Ipv4Addr::from(first + (start - first + i) % capacity))
            .find(|addr| !self.leases.contains_key(addr))
            .ok_or(IpamError::Full { subnet: self.subnet, capacity })
    }

    /// Frees the container's address, returning it (None if it held none).
    pub fn release(&mut self, uid: u32, container_id: &ContainerId) -> Option<Ipv4Addr> {
        let (addr, _) = self.lease_of(uid, container_id)?;
        self.leases.remove(&addr);
        Some(addr)
    }

    /// User `uid`'s container `container_id`'s lease: never another user's
    /// container of the same id.
    pub fn lease_of(&self, uid: u32, container_id: &ContainerId) -> Option<(Ipv4Addr, &Lease)> {
        self.leases.iter().find(|(_, l)| l.is_of(uid, container_id)).map(|(a, l)| (*a, l))
    }

    /// The lease that names host veth `interface`, whoever holds it.
    pub fn naming(&self, interface: &InterfaceName) -> Option<&Lease> {
        self.leases.values().find(|l| &l.interface == interface)
    }

    pub fn get(&self, addr: Ipv4Addr) -> Option<&Lease> {
        self.leases.get(&addr)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Addr, &Lease)> {
        self.leases.iter().map(|(a, l)| (*a, l))
    }

    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// How many addresses a user holds, for a per-user limit.
    pub fn count_for_uid(&self, uid: u32) -> usize {
        self.leases.values().filter(|l| l.owner_uid == uid).count()
    }

    /// Drops the leases whose container is gone, returning them so the caller
    /// can also remove their veths and firewall rules.
    pub fn reclaim(&mut self, is_alive: impl Fn(&Lease) -> bool) -> Vec<(Ipv4Addr, Lease)> {
        let dead: Vec<Ipv4Addr> = self.leases.iter().filter(|(_, l)| !is_alive(l)).map(|(a, _)| *a).collect();
        dead.into_iter().filter_map(|a| self.leases.remove(&a).map(|l| (a, l))).collect()
    }
}

/// One network's leases on disk: `<dir>/<network>.json`, locked through
/// `<dir>/<network>.lock`.
///
/// The lock is a separate file because the data file is replaced by rename
/// on every write: a lock on the data file itself would lock an inode that
/// the next writer unlinks.
#[derive(Debug, Clone)]
pub struct LeaseStore {
    path: PathBuf,
    lock_path: PathBuf,
    subnet: Subnet,
}

impl LeaseStore {
    /// `dir` must be a root-owned directory that only root can write (e.g.
    /// `/run/ctr-helper/net`); it is created 0700 if missing.
    pub fn new(dir: &Path, network: &NetworkName, subnet: Subnet) -> Self {
        Self { path: dir.join(format!("{network}.json")), lock_path: dir.join(format!("{network}.lock")), subnet }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the leases under the exclusive lock, and saves them if `f`
    /// succeeded and changed them. If `f` fails nothing is written, so an
    /// allocation made inside a failed setup is rolled back for free.
    pub fn with_leases<T, E>(&self, f: impl FnOnce(&mut Leases) -> Result<T, E>) -> Result<T, E>
    where
        E: From<IpamError>,
    {
        let mut locked = self.lock_leases()?;
        let value = f(&mut locked.leases)?;
        locked.save()?;
        Ok(value)
    }

    /// The leases under the exclusive lock, held until the guard drops; the
    /// holder saves when it chooses (e.g. an intent before acting on it).
    pub fn lock_leases(&self) -> Result<LockedLeases<'_>, IpamError> {
        let lock = self.lock()?;
        let leases = self.load()?;
        Ok(LockedLeases { store: self, _lock: lock, saved: leases.clone(), leases })
    }

    /// Deletes the lease file and its lock, for a network that is gone.
    /// Refuses while any address is leased; missing files are success.
    pub fn delete(&self) -> Result<(), IpamError> {
        let _lock = self.lock()?;
        if !self.load()?.is_empty() {
            return Err(IpamError::StillLeased { path: self.path.clone() });
        }
        for path in [&self.path, &self.lock_path] {
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(self.io("removing", path)(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// A snapshot of the leases (taken under the lock, so never half-written).
    pub fn read(&self) -> Result<Leases, IpamError> {
        self.with_leases(|leases| Ok(leases.clone()))
    }

    fn io(&self, op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> IpamError {
        let path = path.to_owned();
        move |source| IpamError::Io { op, path, source }
    }

    fn lock(&self) -> Result<FileLock, IpamError> {
        lock_file(&self.lock_path).map_err(self.io("locking", &self.lock_path))
    }

    fn load(&self) -> Result<Leases, IpamError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Leases::new(self.subnet)),
            Err(e) => return Err(self.io("reading lease file", &self.path)(e)),
        };
        let leases: Leases =
            serde_json::from_slice(&bytes).map_err(|source| IpamError::Corrupt { path: self.path.clone(), source })?;
        if leases.subnet != self.subnet {
            return Err(IpamError::SubnetMismatch {
                path: self.path.clone(),
                found: leases.subnet,
                expected: self.subnet,
            });
        }
        Ok(leases)
    }

    fn save(&self, leases: &Leases) -> Result<(), IpamError> {
        let mut json = serde_json::to_vec_pretty(leases).expect("leases always serialize");
        json.push(b'\n');
        // A fixed temp name is safe: only the lock holder writes it.
        let tmp = self.path.with_extension("json.tmp");
        ctr_core::fs::replace(&tmp, &self.path, &json, true).map_err(self.io("writing", &self.path))
    }
}

/// An exclusive flock, held until it is dropped.
pub type FileLock = Flock<File>;

/// Locks `path` exclusively, creating it (0600, in a 0700 directory) if it
/// is missing, never through a symlink: the lease locks, and the helper's
/// network lock.
pub fn lock_file(path: &Path) -> io::Result<FileLock> {
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| errno.into())
}

/// Locks the existing file `path` exclusively, waiting while another
/// process holds it, never through a symlink; `None` if it is gone (the
/// helper's record of a container, locked by whoever removes it).
pub fn lock_existing(path: &Path) -> io::Result<Option<FileLock>> {
    match OpenOptions::new().read(true).custom_flags(nix::libc::O_NOFOLLOW).open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        file => Ok(Some(Flock::lock(file?, FlockArg::LockExclusive).map_err(|(_, errno)| io::Error::from(errno))?)),
    }
}

/// A network's leases under its lock (see [`LeaseStore::lock_leases`]).
pub struct LockedLeases<'a> {
    store: &'a LeaseStore,
    _lock: FileLock,
    saved: Leases,
    pub leases: Leases,
}

impl LockedLeases<'_> {
    /// Writes the leases if they changed since they were loaded or saved.
    pub fn save(&mut self) -> Result<(), IpamError> {
        if self.leases != self.saved {
            self.store.save(&self.leases)?;
            self.saved = self.leases.clone();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    fn id(n: u32) -> ContainerId {
        ContainerId::parse(&format!("{n:064x}")).unwrap()
    }

    fn lease(n: u32, uid: u32) -> Lease {
        let interface = InterfaceName::parse(&format!("veth{n}")).unwrap();
        Lease { container_id: id(n), owner_uid: uid, interface, liveness: None, ports: Vec::new() }
    }

    fn net(s: &str) -> Subnet {
        Subnet::parse(s).unwrap()
    }

    #[test]
    fn subnet_parses_and_validates() {
        let s = net("10.88.0.0/16");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 88, 255, 255));
        assert_eq!(s.capacity(), 65536 - 3);
        assert_eq!(s.to_string(), "10.88.0.0/16");
        assert_eq!(net("192.168.7.0/30").capacity(), 1);
        for bad in [
            "10.88.0.1/16",
            "10.88.0.0/7",
            "10.88.0.0/31",
            "10.88.0.0/32",
            "10.88.0.0",
            "10.88.0.0/",
            "10.88.0.0/+16",
            "10.88.0/16",
            "x/16",
            "10.88.0.0/16/1",
            "10.88.0.0/ 16",
        ] {
            assert!(Subnet::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(serde_json::from_str::<Subnet>("\"10.88.0.1/16\"").is_err());
    }

    #[test]
    fn allocation_skips_reserved_and_does_not_reuse_at_once() {
        let mut l = Leases::new(net("10.0.0.0/29")); // .2 ..= .6
        let a = l.allocate(lease(1, 1000), None).unwrap();
        let b = l.allocate(lease(2, 1000), None).unwrap();
        assert_eq!((a, b), (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)));
        assert_eq!(l.release(1000, &id(1)), Some(a));
        // .2 is free again but the next allocation moves on.
        assert_eq!(l.allocate(lease(3, 1000), None).unwrap(), Ipv4Addr::new(10, 0, 0, 4));
        assert_eq!(l.allocate(lease(4, 1000), None).unwrap(), Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(l.allocate(lease(5, 1000), None).unwrap(), Ipv4Addr::new(10, 0, 0, 6));
        // Wraps around to the freed .2.
        assert_eq!(l.allocate(lease(6, 1000), None).unwrap(), a);
        let err = l.allocate(lease(7, 1000), None).unwrap_err();
        assert!(matches!(err, IpamError::Full { capacity: 5, .. }), "{err}");
        assert!(err.to_string().contains("10.0.0.0/29 is full"), "{err}");
    }

    #[test]
    fn lease_records_owner_and_host_interface() {
        let mut l = Leases::new(net("10.0.0.0/24"));
        let addr = l.allocate(lease(9, 1234), None).unwrap();
        let held = l.get(addr).unwrap().clone();
        assert_eq!(held.owner_uid, 1234);
        assert_eq!(held.interface.as_str(), "veth9");
        assert_eq!(l.naming(&held.interface), Some(&held));
        // Another user may use the same container id; the keys differ.
        assert!(l.allocate(lease(9, 4321), None).is_ok());
        assert_eq!(l.lease_of(4321, &id(9)).unwrap().1.owner_uid, 4321);
        assert!(matches!(l.allocate(lease(9, 1234), None), Err(IpamError::AlreadyLeased { .. })));
    }

    #[test]
    fn requested_address_is_validated() {
        let mut l = Leases::new(net("10.0.0.0/24"));
        let ok = Ipv4Addr::new(10, 0, 0, 77);
        assert_eq!(l.allocate(lease(1, 0), Some(ok)).unwrap(), ok);
        let cases = [
            (Ipv4Addr::new(10, 0, 1, 5), "not in subnet"),
            (Ipv4Addr::new(10, 0, 0, 0), "reserved"),
            (Ipv4Addr::new(10, 0, 0, 1), "reserved"),
            (Ipv4Addr::new(10, 0, 0, 255), "reserved"),
            (ok, "already leased"),
        ];
        for (addr, msg) in cases {
            let err = l.allocate(lease(2, 0), Some(addr)).unwrap_err();
            assert!(err.to_string().contains(msg), "{addr}: {err}");
        }
        // A requested address does not move the sequential cursor.
        assert_eq!(l.allocate(lease(2, 0), None).unwrap(), Ipv4Addr::new(10, 0, 0, 2));
    }

    #[test]
    fn count_release_and_reclaim() {
        let mut l = Leases::new(net("10.0.0.0/24"));
        for n in 1..=4 {
            l.allocate(lease(n, if n % 2 == 0 { 1000 } else { 2000 }), None).unwrap();
        }
        assert_eq!(l.count_for_uid(1000), 2);
        assert_eq!(l.count_for_uid(3000), 0);
        assert_eq!(l.release(1000, &id(42)), None);
        let gone = l.reclaim(|lease| lease.owner_uid == 1000);
        assert_eq!(gone.len(), 2);
        assert!(gone.iter().all(|(_, lease)| lease.owner_uid == 2000));
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn leases_round_trip_through_json() {
        let mut l = Leases::new(net("10.0.0.0/24"));
        l.allocate(lease(1, 1000), None).unwrap();
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(serde_json::from_str::<Leases>(&json).unwrap(), l);
        let bad_id = json.replace(&"0".repeat(63), "Z");
        assert!(serde_json::from_str::<Leases>(&bad_id).is_err());
    }

    fn store(dir: &Path, subnet: &str) -> LeaseStore {
        LeaseStore::new(dir, &NetworkName::parse("test").unwrap(), net(subnet))
    }

    #[test]
    fn concurrent_allocations_through_the_store_are_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let dir = Arc::new(dir.path().join("net"));
        let threads: Vec<_> = (0..50)
            .map(|n| {
                let dir = Arc::clone(&dir);
                std::thread::spawn(move || {
                    // Each thread opens the store on its own, like separate helper runs.
                    store(&dir, "10.1.0.0/24").with_leases(|l| l.allocate(lease(n, 1000), None)).unwrap()
                })
            })
            .collect();
        let addrs: HashSet<Ipv4Addr> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(addrs.len(), 50);
        let saved = store(&dir, "10.1.0.0/24").read().unwrap();
        assert_eq!(saved.len(), 50);
        assert_eq!(saved.iter().map(|(a, _)| a).collect::<HashSet<_>>(), addrs);
    }

    #[test]
    fn store_release_persists_and_failed_closure_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "10.2.0.0/24");
        let a = s.with_leases(|l| l.allocate(lease(1, 0), None)).unwrap();
        let r: Result<(), IpamError> = s.with_leases(|l| {
            l.allocate(lease(2, 0), None)?;
            Err(IpamError::Subnet("x".into(), "simulated setup failure"))
        });
        assert!(r.is_err());
        assert_eq!(s.read().unwrap().len(), 1, "a failed closure must not save");
        assert_eq!(s.with_leases(|l| Ok::<_, IpamError>(l.release(0, &id(1)))).unwrap(), Some(a));
        assert!(s.read().unwrap().is_empty());
    }

    #[test]
    fn full_subnet_in_store_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "10.3.0.0/30");
        s.with_leases(|l| l.allocate(lease(1, 0), None)).unwrap();
        let err = s.with_leases(|l| l.allocate(lease(2, 0), None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "subnet 10.3.0.0/30 is full: all 1 addresses are leased; remove containers or use a larger subnet"
        );
    }

    #[test]
    fn corrupt_or_mismatched_file_is_an_error_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "10.4.0.0/24");
        fs::write(s.path(), b"{\"subnet\": \"10.4.0.0/24\", \"leases\": {").unwrap();
        let err = s.with_leases(|l| l.allocate(lease(1, 0), None)).unwrap_err();
        assert!(matches!(err, IpamError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("is corrupt"), "{err}");
        assert_eq!(fs::read(s.path()).unwrap(), b"{\"subnet\": \"10.4.0.0/24\", \"leases\": {");

        let s2 = store(dir.path(), "10.5.0.0/24");
        fs::remove_file(s.path()).unwrap();
        s.with_leases(|l| l.allocate(lease(1, 0), None)).unwrap();
        let err = s2.read().unwrap_err();
        assert!(matches!(err, IpamError::SubnetMismatch { .. }), "{err}");
    }

    #[test]
    fn mac_is_derived_from_the_address() {
        let mac = MacAddr::for_container(Ipv4Addr::new(10, 88, 0, 2));
        assert_eq!(mac.to_string(), "02:63:0a:58:00:02");
    }
}
