//! Holds a container's published host ports for as long as it lives, so
//! that nobody can bind them later (issue 10, item 5). The helper checks a
//! port is free when it publishes it; without a holder, a service started
//! afterwards (root's, after a restart) would bind it without error and
//! its clients would reach the container instead. docker-proxy and
//! rootlessport hold theirs the same way.
//!
//! The unprivileged process that waits for the container holds them (the
//! foreground `ctr run`, or the detached container's `ctr monitor`): the
//! helper publishes a port below `net.ipv4.ip_unprivileged_port_start`
//! only for root, so every port a caller may publish is one it can bind,
//! and the helper need not hold anything.
//!
//! Each socket is bound to the `-p` address (or the wildcard) and nothing
//! more:
//! - neither SO_REUSEADDR nor SO_REUSEPORT is set, so every later bind of
//!   that port on an overlapping address fails with EADDRINUSE, whatever
//!   options the later binder sets (Linux's `inet_bind_conflict` lets two
//!   sockets share a port only when *both* ask for it);
//! - a TCP socket is not put in the listening state: nftables DNATs the
//!   published traffic before it reaches a local socket, and a connection
//!   that escapes the DNAT gets a reset, rather than waiting forever in
//!   a backlog that nobody accepts from;
//! - a UDP socket gets the smallest receive buffer, as nothing reads it.

use crate::error::IoError;
use ctr_core::net::{NetworkInfo, PortSpec, Protocol};
use nix::sys::socket::{bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

/// A published port that could not be held.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error(
        "host port {addr}/{protocol} was taken by another program after the helper checked it was free ({errno}); \
         the container was stopped: free the port, or publish another one"
    )]
    Taken { addr: SocketAddrV4, protocol: Protocol, errno: nix::errno::Errno },
    #[error(transparent)]
    Socket(#[from] IoError),
}

/// Sockets bound to a container's published ports; dropping them frees the
/// ports.
#[derive(Default)]
pub struct HeldPorts {
    /// Never read: holding them open is the point.
    _sockets: Vec<OwnedFd>,
}

impl HeldPorts {
    /// Binds every port that `network` publishes; an error names the first
    /// that someone else bound in the meantime.
    pub fn hold(network: Option<&NetworkInfo>) -> Result<HeldPorts, PortError> {
        let ports = network.map_or(&[][..], |n| n.ports.as_slice());
        let sockets = ports.iter().map(hold_one).collect::<Result<Vec<_>, _>>()?;
        Ok(HeldPorts { _sockets: sockets })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self._sockets.len()
    }
}

fn hold_one(p: &PortSpec) -> Result<OwnedFd, PortError> {
    let addr = SocketAddrV4::new(p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), p.host_port);
    let kind = match p.protocol {
        Protocol::Tcp => SockType::Stream,
        Protocol::Udp => SockType::Datagram,
    };
    let taken = |errno| PortError::Taken { addr, protocol: p.protocol, errno };
    let fd = socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC, None).map_err(|e| IoError::new("socket", e))?;
    if p.protocol == Protocol::Udp {
        // The kernel rounds this up to its minimum.
        let _ = setsockopt(&fd, sockopt::RcvBuf, &0);
    }
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(addr)).map_err(taken)?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream, UdpSocket};

    fn info(ports: Vec<PortSpec>) -> NetworkInfo {
        NetworkInfo {
            network: "bridge".into(),
            address: Ipv4Addr::new(10, 88, 0, 2),
            prefix: 16,
            gateway: Ipv4Addr::new(10, 88, 0, 1),
            mac: String::new(),
            ports,
        }
    }

    fn free_port() -> u16 {
        // Ask the kernel for a port free for both protocols.
        loop {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }

    /// A later bind fails even with SO_REUSEADDR (std's TcpListener sets
    /// it), connections are refused rather than left hanging, and dropping
    /// the hold frees the ports.
    #[test]
    fn held_ports_cannot_be_bound_again_until_dropped() {
        let port = free_port();
        let spec = |protocol, host_ip| PortSpec { host_ip, host_port: port, container_port: 80, protocol };
        let network = info(vec![spec(Protocol::Tcp, None), spec(Protocol::Udp, Some(Ipv4Addr::LOCALHOST))]);
        let held = HeldPorts::hold(Some(&network)).unwrap();
        assert_eq!(held.len(), 2);
        for addr in [("0.0.0.0", port), ("127.0.0.1", port)] {
            let err = TcpListener::bind(addr).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{addr:?}: {err}");
        }
        let err = UdpSocket::bind(("0.0.0.0", port)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
        let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
        // A second holder of the same ports fails with a clear message.
        let again = HeldPorts::hold(Some(&network)).err().unwrap().to_string();
        assert!(again.contains("was taken by another program") && again.contains(&port.to_string()), "{again}");
        drop(held);
        drop(TcpListener::bind(("0.0.0.0", port)).unwrap());
        drop(UdpSocket::bind(("0.0.0.0", port)).unwrap());
        assert_eq!(HeldPorts::hold(None).unwrap().len(), 0);
    }
}
