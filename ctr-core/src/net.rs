//! Network requests on the wire: which network a container joins, its
//! address and published ports, and what the helper gave it. The helper
//! checks them against the caller and its config before `ctr-net` acts.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetSpecError {
    #[error("invalid port mapping {0:?}: use [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp], ports 1-65535")]
    Port(String),
    #[error(
        "network name {0:?} is invalid: use 1 to 64 characters from [A-Za-z0-9_.-], starting with a letter or digit"
    )]
    Name(String),
    #[error("subnet {0:?} is invalid: use an IPv4 network like 10.89.1.0/24 (the address is the network's first, prefix 8 to 30)")]
    Subnet(String),
    #[error("host address {0} in -p is {1}: publish on one of this host's own addresses, or leave the address out for all of them")]
    HostAddress(Ipv4Addr, &'static str),
    #[error("{0} published ports: at most {MAX_PUBLISHED_PORTS} per container")]
    TooManyPorts(usize),
    #[error("host port {0}/{1} is published twice")]
    PublishedTwice(u16, Protocol),
}

/// A network's name as users type it (`bridge`, or one they created). It
/// also names the network's lease file, so the alphabet is small.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NetworkName(String);

impl NetworkName {
    pub const MAX_LEN: usize = 64;
    /// The default network, which every user shares (ctr0).
    pub const DEFAULT: &'static str = "bridge";

    pub fn parse(s: &str) -> Result<Self, NetSpecError> {
        let bytes = s.as_bytes();
        let ok = (1..=Self::MAX_LEN).contains(&bytes.len())
            && bytes[0].is_ascii_alphanumeric()
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NetSpecError::Name(s.to_owned()))
        }
    }

    pub fn default_network() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT
    }

    /// Names that `--network` gives another meaning, which no created
    /// network may take.
    pub fn is_reserved(&self) -> bool {
        matches!(self.0.as_str(), "bridge" | "host" | "none" | "default" | "container")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NetworkName {
    type Error = NetSpecError;
    fn try_from(s: String) -> Result<Self, NetSpecError> {
        Self::parse(&s)
    }
}

impl From<NetworkName> for String {
    fn from(n: NetworkName) -> String {
        n.0
    }
}

impl std::fmt::Display for NetworkName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An IPv4 network: its first address and a prefix of 8 to 30 (a /31 or
/// /32 leaves no room for a gateway and a container).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "(Ipv4Addr, u8)", into = "(Ipv4Addr, u8)")]
pub struct Cidr {
    address: Ipv4Addr,
    prefix: u8,
}

impl Cidr {
    pub fn new(address: Ipv4Addr, prefix: u8) -> Result<Self, NetSpecError> {
        let host_bits = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
        if !(8..=30).contains(&prefix) || u32::from(address) & host_bits != 0 {
            return Err(NetSpecError::Subnet(format!("{address}/{prefix}")));
        }
        Ok(Self { address, prefix })
    }

    pub fn parse(s: &str) -> Result<Self, NetSpecError> {
        let bad = || NetSpecError::Subnet(s.to_owned());
        let (address, prefix) = s.split_once('/').ok_or_else(bad)?;
        // Plain decimal only: u8::from_str accepts "+16", which is not CIDR.
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Self::new(address.parse().map_err(|_| bad())?, prefix.parse().map_err(|_| bad())?).map_err(|_| bad())
    }

    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & self.mask() == u32::from(self.address)
    }

    /// Whether `other` lies wholly inside this network.
    pub fn covers(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.address)
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.covers(other) || other.covers(self)
    }
}

impl TryFrom<(Ipv4Addr, u8)> for Cidr {
    type Error = NetSpecError;
    fn try_from((address, prefix): (Ipv4Addr, u8)) -> Result<Self, NetSpecError> {
        Self::new(address, prefix)
    }
}

impl From<Cidr> for (Ipv4Addr, u8) {
    fn from(c: Cidr) -> Self {
        (c.address, c.prefix)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// One `-p` mapping. Ports are never 0 (the type is built by parsing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawPort", into = "RawPort")]
pub struct PortSpec {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

#[derive(Serialize, Deserialize)]
struct RawPort(Option<Ipv4Addr>, u16, u16, Protocol);

impl TryFrom<RawPort> for PortSpec {
    type Error = NetSpecError;
    fn try_from(RawPort(host_ip, host_port, container_port, protocol): RawPort) -> Result<Self, NetSpecError> {
        if host_port == 0 || container_port == 0 {
            return Err(NetSpecError::Port(format!("{host_port}:{container_port}")));
        }
        // On the wire "every address" is `None`; an explicit 0.0.0.0 would
        // become a DNAT rule for daddr 0.0.0.0, which matches nothing.
        if let Some(ip) = host_ip {
            check_host_address(ip)?;
        }
        Ok(Self { host_ip, host_port, container_port, protocol })
    }
}

/// A `-p` host address must be one a unicast service could be reached on.
/// Refused: multicast (224.0.0.0/4) and broadcast (255.255.255.255): the
/// kernel lets a socket bind them, so the port check passes, and the DNAT
/// rule would then hand the container datagrams meant for a whole group or
/// link; the reserved 240.0.0.0/4; and 0.0.0.0/8, "this network", which no
/// packet is addressed to (0.0.0.0 itself is written as no address). A
/// subnet's broadcast address depends on the host's interfaces: see
/// [`fib_broadcasts`].
pub fn check_host_address(ip: Ipv4Addr) -> Result<(), NetSpecError> {
    let why = if ip.is_broadcast() {
        "the limited broadcast address"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if ip.octets()[0] >= 240 {
        "reserved (240.0.0.0/4)"
    } else if ip.octets()[0] == 0 {
        "in 0.0.0.0/8, which no packet is sent to"
    } else {
        return Ok(());
    };
    Err(NetSpecError::HostAddress(ip, why))
}

/// The broadcast addresses of this host's subnets, from the kernel's own
/// routing table as /proc/net/fib_trie lists it (entries of type
/// BROADCAST): the addresses `inet_addr_type` calls RTN_BROADCAST, which
/// bind(2) accepts like a local address.
pub fn fib_broadcasts(fib_trie: &str) -> Vec<Ipv4Addr> {
    let mut last: Option<Ipv4Addr> = None;
    let mut out = Vec::new();
    for line in fib_trie.lines() {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("|-- ").or_else(|| line.strip_prefix("+-- ")) {
            last = rest.split(['/', ' ']).next().and_then(|a| a.parse().ok());
        } else if line.starts_with("/32 ") && line.ends_with(" BROADCAST") {
            if let Some(addr) = last.filter(|a| !out.contains(a)) {
                out.push(addr);
            }
        }
    }
    out
}

impl From<PortSpec> for RawPort {
    fn from(p: PortSpec) -> Self {
        RawPort(p.host_ip, p.host_port, p.container_port, p.protocol)
    }
}

impl PortSpec {
    /// Parses docker's `-p [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]`.
    pub fn parse(s: &str) -> Result<Self, NetSpecError> {
        let bad = || NetSpecError::Port(s.to_owned());
        let (ports, protocol) = match s.rsplit_once('/') {
            Some((p, "tcp")) => (p, Protocol::Tcp),
            Some((p, "udp")) => (p, Protocol::Udp),
            Some(_) => return Err(bad()),
            None => (s, Protocol::Tcp),
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (host_ip, host_port, container_port) = match parts.as_slice() {
            [h, c] => (None, *h, *c),
            [ip, h, c] => (Some(ip.parse::<Ipv4Addr>().map_err(|_| bad())?), *h, *c),
            _ => return Err(bad()),
        };
        // Docker's `-p 0.0.0.0:H:C` means every address, as `-p H:C` does.
        let host_ip = host_ip.filter(|ip| !ip.is_unspecified());
        if let Some(ip) = host_ip {
            check_host_address(ip)?;
        }
        let port = |p: &str| p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad);
        Ok(Self { host_ip, host_port: port(host_port)?, container_port: port(container_port)?, protocol })
    }
}

impl std::fmt::Display for PortSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = self.host_ip.map_or_else(|| "0.0.0.0".to_owned(), |ip| ip.to_string());
        write!(f, "{}/{} -> {ip}:{}", self.container_port, self.protocol, self.host_port)
    }
}

/// The most ports one container may publish.
pub const MAX_PUBLISHED_PORTS: usize = 64;

/// A container's published ports: at most [`MAX_PUBLISHED_PORTS`] (checked
/// first, so that a frame's worth of ports costs no pairwise comparisons)
/// and no host port twice for one protocol. `ctr` checks its `-p` and `-P`
/// with it; a request cannot decode without passing it.
pub fn check_published(ports: &[PortSpec]) -> Result<(), NetSpecError> {
    if ports.len() > MAX_PUBLISHED_PORTS {
        return Err(NetSpecError::TooManyPorts(ports.len()));
    }
    for (i, p) in ports.iter().enumerate() {
        if ports[..i].iter().any(|q| q.host_port == p.host_port && q.protocol == p.protocol) {
            return Err(NetSpecError::PublishedTwice(p.host_port, p.protocol));
        }
    }
    Ok(())
}

fn published_ports<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<PortSpec>, D::Error> {
    let ports = crate::frame::bounded_vec(deserializer)?;
    check_published(&ports).map_err(serde::de::Error::custom)?;
    Ok(ports)
}

/// The network a container is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkRequest {
    /// Its own network namespace with only loopback.
    None,
    /// The caller's network namespace, shared.
    Host,
    /// A veth on a bridge network (`bridge`, the default, or one the caller
    /// created), with an address from its subnet.
    Bridge {
        network: NetworkName,
        address: Option<Ipv4Addr>,
        #[serde(deserialize_with = "published_ports")]
        ports: Vec<PortSpec>,
    },
}

/// A bridge network as `ctr network ls` and `inspect` show it: the default
/// one, or one of the caller's own. Only the caller's containers are listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSummary {
    pub name: NetworkName,
    pub bridge: String,
    pub subnet: Cidr,
    pub gateway: Ipv4Addr,
    /// Seconds since the epoch; 0 for the default network.
    pub created: u64,
    /// The caller's containers on it: (container id, address).
    pub containers: Vec<(String, Ipv4Addr)>,
}

/// What the container got on a bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub network: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    pub ports: Vec<PortSpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_port_syntax() {
        let p = PortSpec::parse("8080:80").unwrap();
        assert_eq!((p.host_ip, p.host_port, p.container_port, p.protocol), (None, 8080, 80, Protocol::Tcp));
        let p = PortSpec::parse("127.0.0.1:5353:53/udp").unwrap();
        assert_eq!(
            (p.host_ip, p.host_port, p.container_port, p.protocol),
            (Some(Ipv4Addr::LOCALHOST), 5353, 53, Protocol::Udp)
        );
        for bad in ["80", "0:80", "80:0", "x:80", "1:2:3:4", "80:80/sctp", "70000:80", "300.1.1.1:80:80"] {
            assert!(PortSpec::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn refuses_group_and_reserved_host_addresses() {
        assert_eq!(PortSpec::parse("0.0.0.0:8080:80").unwrap().host_ip, None);
        assert!(PortSpec::parse("10.1.2.3:8080:80").is_ok());
        for bad in ["224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1", "0.1.2.3"] {
            let err = PortSpec::parse(&format!("{bad}:8080:80")).unwrap_err();
            assert!(matches!(err, NetSpecError::HostAddress(..)), "{bad}: {err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
        // A hostile client skips the parser: decoding refuses them too.
        let cfg = bincode::config::standard();
        for bad in [Ipv4Addr::new(224, 0, 0, 1), Ipv4Addr::BROADCAST, Ipv4Addr::UNSPECIFIED] {
            let raw = bincode::serde::encode_to_vec(RawPort(Some(bad), 8080, 80, Protocol::Tcp), cfg).unwrap();
            assert!(bincode::serde::decode_from_slice::<PortSpec, _>(&raw, cfg).is_err(), "{bad} decoded");
        }
    }

    #[test]
    fn finds_subnet_broadcasts_in_fib_trie() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     +-- 127.0.0.0/8 2 0 2\n\
                    \x20       |-- 127.0.0.1\n           /32 host LOCAL\n        |-- 127.255.255.255\n           /32 link BROADCAST\n\
                    \x20    |-- 192.0.2.0\n        /24 link UNICAST\n     |-- 192.0.2.255\n        /32 link BROADCAST\n\
                    Local:\n     |-- 192.0.2.255\n        /32 link BROADCAST\n";
        assert_eq!(fib_broadcasts(trie), vec![Ipv4Addr::new(127, 255, 255, 255), Ipv4Addr::new(192, 0, 2, 255)]);
    }

    #[test]
    fn network_names() {
        assert!(NetworkName::parse("front-end_1.a").is_ok());
        for bad in ["", "-x", ".x", "a/b", "a b", &"x".repeat(65)] {
            assert!(NetworkName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(NetworkName::parse("host").unwrap().is_reserved());
        assert!(NetworkName::parse("bridge").unwrap().is_default());
    }

    #[test]
    fn cidrs() {
        let pool = Cidr::parse("10.89.0.0/16").unwrap();
        let a = Cidr::parse("10.89.3.0/24").unwrap();
        assert!(pool.covers(&a) && !a.covers(&pool) && pool.overlaps(&a) && a.overlaps(&pool));
        assert!(!a.overlaps(&Cidr::parse("10.89.4.0/24").unwrap()));
        assert!(a.contains(Ipv4Addr::new(10, 89, 3, 200)) && !a.contains(Ipv4Addr::new(10, 89, 4, 1)));
        for bad in ["10.89.0.1/24", "10.0.0.0/31", "10.0.0.0/7", "10.0.0.0", "x/8", "10.0.0.0/x", "10.0.0.0/+8"] {
            assert!(Cidr::parse(bad).is_err(), "{bad} accepted");
        }
        let cfg = bincode::config::standard();
        let raw = bincode::serde::encode_to_vec((Ipv4Addr::new(10, 0, 0, 1), 8u8), cfg).unwrap();
        assert!(bincode::serde::decode_from_slice::<Cidr, _>(&raw, cfg).is_err());
    }

    #[test]
    fn zero_ports_do_not_decode() {
        let cfg = bincode::config::standard();
        let raw = bincode::serde::encode_to_vec(RawPort(None, 0, 80, Protocol::Tcp), cfg).unwrap();
        assert!(bincode::serde::decode_from_slice::<PortSpec, _>(&raw, cfg).is_err());
    }

    #[test]
    fn too_many_or_twice_published_ports_do_not_decode() {
        let port = |host_port, protocol| PortSpec { host_ip: None, host_port, container_port: 80, protocol };
        let bridge = |ports| NetworkRequest::Bridge { network: NetworkName::default_network(), address: None, ports };
        let decodes = |request: &NetworkRequest| {
            let frame = crate::frame::encode(request).unwrap();
            crate::frame::read_frame::<NetworkRequest>(&mut &frame[..]).map_err(|e| e.to_string())
        };
        let most: Vec<PortSpec> = (1..=64).map(|p| port(p, Protocol::Tcp)).collect();
        assert_eq!(decodes(&bridge(most.clone())).unwrap(), bridge(most.clone()));
        let over = [most.as_slice(), &[port(65, Protocol::Tcp)]].concat();
        assert!(decodes(&bridge(over)).unwrap_err().contains("65 published ports: at most 64"));
        let twice = vec![port(8080, Protocol::Tcp), port(8080, Protocol::Udp), port(8080, Protocol::Tcp)];
        assert!(decodes(&bridge(twice.clone())).unwrap_err().contains("host port 8080/tcp is published twice"));
        assert!(check_published(&twice[..2]).is_ok() && check_published(&twice).is_err());
    }
}
