//! Network requests on the wire: which network a container joins, its
//! address and published ports, and what the helper gave it. The helper
//! checks them against the caller and its config before `ctr-net` acts.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetSpecError {
    #[error("invalid port mapping {0:?}: use [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp], ports 1-65535")]
    Port(String),
    #[error("network name {0:?} is invalid: use 1 to 32 characters from [a-zA-Z0-9_.-]")]
    Name(String),
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
        Ok(Self { host_ip, host_port, container_port, protocol })
    }
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

/// The network a container is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkRequest {
    /// Its own network namespace with only loopback.
    None,
    /// The caller's network namespace, shared.
    Host,
    /// A veth on the default bridge network, with an address from its pool.
    Bridge { address: Option<Ipv4Addr>, ports: Vec<PortSpec> },
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
        assert_eq!((p.host_ip, p.host_port, p.container_port, p.protocol), (Some(Ipv4Addr::LOCALHOST), 5353, 53, Protocol::Udp));
        for bad in ["80", "0:80", "80:0", "x:80", "1:2:3:4", "80:80/sctp", "70000:80", "300.1.1.1:80:80"] {
            assert!(PortSpec::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn zero_ports_do_not_decode() {
        let cfg = bincode::config::standard();
        let raw = bincode::serde::encode_to_vec(RawPort(None, 0, 80, Protocol::Tcp), cfg).unwrap();
        assert!(bincode::serde::decode_from_slice::<PortSpec, _>(&raw, cfg).is_err());
    }
}
