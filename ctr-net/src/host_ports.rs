//! What the host says about a port a container would publish: the lowest
//! one an unprivileged process may bind, and whether it is free.

use crate::firewall::{PortSpec, Protocol};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

/// `net.ipv4.ip_unprivileged_port_start` (1024 where it cannot be read).
pub fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

/// Binds `p`'s host address and port, and lets go at once: an error if it
/// is bound on the host already (`ctr` holds the ports of its containers
/// bound).
pub fn check_free(p: &PortSpec) -> std::io::Result<()> {
    let addr = SocketAddrV4::new(p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), p.host_port);
    match p.protocol {
        Protocol::Tcp => TcpListener::bind(addr).map(drop),
        Protocol::Udp => UdpSocket::bind(addr).map(drop),
    }
}
