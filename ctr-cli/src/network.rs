//! The caller's side of container networking: `--network`, `-p` and
//! `--ip` into a request for the helper, and the files a networked
//! container needs: /etc/hosts (its own name and those of the caller's other
//! containers on the same network) and /etc/resolv.conf.
//!
//! Names resolve through /etc/hosts rather than a DNS server: it needs no
//! daemon, works for static binaries and every libc, and the caller owns
//! every file involved. The files are bind-mounted, so they are rewritten in
//! place (never renamed) when containers come and go.

use crate::container::record::{self, Container, State};
use crate::dns;
use crate::error::{IoContext, IoError};
use crate::paths::Paths;
use ctr_core::net::{NetworkInfo, NetworkName, NetworkRequest, NetworkSummary, PortSpec, Protocol};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

/// A `--network`, `-p`, `-P` or `--ip` that cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("-p, -P and --ip need a bridge network (--network bridge or one of yours)")]
    NeedsBridge,
    #[error("unknown network {name:?}: use bridge, none, host or a network from `ctr network ls`")]
    Unknown { name: String, source: ctr_core::net::NetSpecError },
    #[error("no free host port found for -P")]
    NoFreePort,
    #[error(transparent)]
    Spec(#[from] ctr_core::net::NetSpecError),
    #[error(transparent)]
    Dns(#[from] dns::DnsError),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// `--network`, `-p`, `-P` and `--ip`, as parsed from the command line.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    /// `bridge` (the default: a veth on ctr0 with NAT), a network of the
    /// caller's, `none` (loopback only) or `host` (the caller's namespace).
    pub network: String,
    pub publish: Vec<PortSpec>,
    /// Publish every port the image exposes on a free host port.
    pub publish_all: bool,
    /// The container's address on its network.
    pub ip: Option<Ipv4Addr>,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        Self { network: "bridge".into(), publish: Vec::new(), publish_all: false, ip: None }
    }
}

impl NetworkOptions {
    /// The request for the helper. `exposed` is the image's ExposedPorts
    /// (`80/tcp`), published by `-P` unless `-p` already maps them.
    pub fn to_request(&self, exposed: &[String]) -> Result<NetworkRequest, NetworkError> {
        let mut ports = self.publish.clone();
        if self.publish_all {
            for (container_port, protocol) in exposed.iter().filter_map(|p| parse_exposed(p)) {
                if !ports.iter().any(|p| p.container_port == container_port && p.protocol == protocol) {
                    let host_port = free_host_port(protocol, &ports)?;
                    ports.push(PortSpec { host_ip: None, host_port, container_port, protocol });
                }
            }
        }
        ctr_core::net::check_published(&ports)?;
        match self.network.as_str() {
            "none" | "host" if !ports.is_empty() || self.ip.is_some() => Err(NetworkError::NeedsBridge),
            "none" => Ok(NetworkRequest::None),
            "host" => Ok(NetworkRequest::Host),
            name => {
                let network = NetworkName::parse(name)
                    .map_err(|source| NetworkError::Unknown { name: name.to_owned(), source })?;
                Ok(NetworkRequest::Bridge { network, address: self.ip, ports })
            }
        }
    }
}

/// An image's `ExposedPorts` key: `80/tcp`, `53/udp`, or `8080` (tcp).
fn parse_exposed(key: &str) -> Option<(u16, Protocol)> {
    let (port, protocol) = match key.split_once('/') {
        None => (key, Protocol::Tcp),
        Some((port, "tcp")) => (port, Protocol::Tcp),
        Some((port, "udp")) => (port, Protocol::Udp),
        Some(_) => return None,
    };
    port.parse().ok().filter(|&p| p != 0).map(|p| (p, protocol))
}

/// A host port the kernel calls free now (from its ephemeral range, so it
/// is above the unprivileged start), and not already in `taken`. The
/// helper checks it again under its lock; a port taken in between is a
/// clear error there.
fn free_host_port(protocol: Protocol, taken: &[PortSpec]) -> Result<u16, NetworkError> {
    let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
    for _ in 0..16 {
        let port = match protocol {
            Protocol::Tcp => TcpListener::bind(any).and_then(|s| s.local_addr()),
            Protocol::Udp => UdpSocket::bind(any).and_then(|s| s.local_addr()),
        }
        .io_context("finding a free host port for -P")?
        .port();
        if !taken.iter().any(|p| p.host_port == port && p.protocol == protocol) {
            return Ok(port);
        }
    }
    Err(NetworkError::NoFreePort)
}

fn hosts_line(info: &NetworkInfo, state: &State, hostname: &str) -> String {
    format!("{}\t{} {} {}\n", info.address, hostname, state.name, &state.id[..12])
}

/// Running containers of ours on `network`, other than `except`.
fn peers(paths: &Paths, network: &str, except: &str) -> Vec<State> {
    record::list(paths)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.id != except && s.is_up())
        .filter(|s| s.network.as_ref().is_some_and(|n| n.network == network))
        .collect()
}

/// The container's /etc/hosts: loopback, `--add-host`, itself, and its peers.
pub fn hosts_file(paths: &Paths, state: &State, hostname: &str, info: Option<&NetworkInfo>) -> String {
    let mut text = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    // Checked when the container was made: host-gateway has a gateway here.
    text.push_str(&dns::hosts_lines(&state.dns, info.map(|i| i.gateway.into())).unwrap_or_default());
    match info {
        None => text.push_str(&format!("127.0.1.1\t{hostname}\n")),
        Some(info) => {
            text.push_str(&hosts_line(info, state, hostname));
            for peer in peers(paths, &info.network, &state.id) {
                if let Some(peer_info) = &peer.network {
                    text.push_str(&hosts_line(peer_info, &peer, &peer.hostname));
                }
            }
        }
    }
    text
}

/// Adds (or with `present == false` removes) this container's line in
/// every peer's /etc/hosts, in place.
pub fn announce(paths: &Paths, state: &State, info: &NetworkInfo, present: bool) {
    let line = hosts_line(info, state, &state.hostname);
    for peer in peers(paths, &info.network, &state.id) {
        let path = paths.containers().join(&peer.id).join("hosts");
        let Ok(current) = std::fs::read_to_string(&path) else { continue };
        let mut lines: Vec<&str> = current.lines().filter(|l| format!("{l}\n") != line).collect();
        let owned = line.trim_end().to_owned();
        if present {
            lines.push(&owned);
        }
        let _ = rewrite_in_place(&path, &(lines.join("\n") + "\n"));
    }
}

/// Bind mounts follow the inode, so a file a container sees is changed by
/// truncating and writing it, not by replacing it.
pub fn rewrite_in_place(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(path)?;
    f.write_all(text.as_bytes())
}

/// The container's generated /etc/hosts and /etc/resolv.conf (see
/// [`dns`]), written into its state directory, as (host file, path in the
/// container). A bridge network's /etc/hosts is written again once the
/// container has its address ([`hosts_file`]); `none` keeps the image's
/// resolv.conf, as it has no server to reach.
pub fn etc_files(
    container: &Container,
    hostname: &str,
    config: &dns::DnsConfig,
    network: &NetworkRequest,
    host: &dns::HostText,
) -> Result<Vec<(PathBuf, String)>, NetworkError> {
    let hosts = match network {
        NetworkRequest::Host => dns::host_network_hosts(host, hostname, config)?,
        NetworkRequest::None => {
            let mut text = hosts_file_without_network(hostname);
            text.push_str(&dns::hosts_lines(config, None)?);
            text
        }
        NetworkRequest::Bridge { .. } => hosts_file_without_network(hostname),
    };
    let mut files = vec![(container.write_generated("hosts", &hosts)?, "etc/hosts".into())];
    if *network != NetworkRequest::None {
        let resolv = dns::resolv_conf(host, config, *network == NetworkRequest::Host);
        if let Some(warning) = &resolv.warning {
            eprintln!("ctr: warning: {warning}");
        }
        files.push((container.write_generated("resolv.conf", &resolv.text)?, "etc/resolv.conf".into()));
    }
    Ok(files)
}

fn hosts_file_without_network(hostname: &str) -> String {
    format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n")
}

/// A network as docker's `network inspect` shows it, with the names of
/// the caller's containers on it.
pub fn inspect_json(paths: &Paths, n: &NetworkSummary) -> serde_json::Value {
    let names: BTreeMap<String, String> =
        record::list(paths).unwrap_or_default().into_iter().map(|s| (s.id, s.name)).collect();
    let containers: serde_json::Map<String, serde_json::Value> = n
        .containers
        .iter()
        .map(|(id, addr)| {
            let name = names.get(id).cloned().unwrap_or_default();
            let value = serde_json::json!({"Name": name, "IPv4Address": format!("{addr}/{}", n.subnet.prefix())});
            (id.clone(), value)
        })
        .collect();
    let created = (n.created > 0)
        .then(|| crate::units::rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(n.created)));
    serde_json::json!({
        "Name": n.name.as_str(),
        "Driver": "bridge",
        "Bridge": n.bridge,
        "Created": created,
        "IPAM": {"Config": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}]},
        "Containers": containers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_from_flags() {
        let args = NetworkOptions {
            network: "bridge".into(),
            publish: vec![PortSpec::parse("8080:80").unwrap()],
            ..Default::default()
        };
        assert!(matches!(args.to_request(&[]).unwrap(), NetworkRequest::Bridge { ports, .. } if ports.len() == 1));
        let none = NetworkOptions { network: "none".into(), ..Default::default() };
        assert_eq!(none.to_request(&[]).unwrap(), NetworkRequest::None);
        let bad = NetworkOptions {
            network: "none".into(),
            publish: vec![PortSpec::parse("1:2").unwrap()],
            ..Default::default()
        };
        assert!(bad.to_request(&[]).is_err());
        let own = NetworkOptions { network: "backend".into(), ..Default::default() };
        assert!(
            matches!(own.to_request(&[]).unwrap(), NetworkRequest::Bridge { network, .. } if network.as_str() == "backend")
        );
        assert!(NetworkOptions { network: "we/ird".into(), ..Default::default() }.to_request(&[]).is_err());
        let twice = NetworkOptions {
            network: "bridge".into(),
            publish: vec![PortSpec::parse("80:1").unwrap(), PortSpec::parse("80:2").unwrap()],
            ..Default::default()
        };
        assert!(twice.to_request(&[]).unwrap_err().to_string().contains("host port 80/tcp is published twice"));
    }

    #[test]
    fn publish_all_maps_exposed_ports_not_already_published() {
        let args = NetworkOptions {
            network: "bridge".into(),
            publish: vec![PortSpec::parse("8080:80").unwrap()],
            publish_all: true,
            ..Default::default()
        };
        let exposed = ["80/tcp".to_owned(), "53/udp".to_owned(), "9000".to_owned(), "1/sctp".to_owned()];
        let NetworkRequest::Bridge { ports, .. } = args.to_request(&exposed).unwrap() else { panic!() };
        let mapped: Vec<(u16, Protocol)> = ports.iter().map(|p| (p.container_port, p.protocol)).collect();
        assert_eq!(mapped, [(80, Protocol::Tcp), (53, Protocol::Udp), (9000, Protocol::Tcp)]);
        assert_eq!(ports[0].host_port, 8080);
        assert!(ports[1..].iter().all(|p| p.host_port >= 1024));
    }
}
