//! NAT, published ports and anti-spoofing, as nftables rules owned by ctr.
//!
//! # How the rules are applied
//! Over netlink, in-process: each change (a container's start, its stop, a
//! network's removal) is one NFNETLINK transaction ([`crate::nftables`]),
//! which the kernel applies atomically: it happens completely or not at
//! all, so there is nothing to roll back, and no `nft` process is spawned
//! (each cost about 5 ms, plus a listing of the ruleset to fill its cache).
//! The messages are built only from validated typed values (addresses,
//! ports, [`Protocol`], [`InterfaceName`], [`ContainerId`]); every
//! operation also has its `nft` syntax, which error messages quote and the
//! tests feed to `nft -f` to check that both install the same ruleset.
//! `/usr/sbin/nft` (by absolute path, fixed arguments, the script on stdin)
//! is run only to list the ruleset: for counts in checks and tests, and for
//! the fallback of a removal whose keys are unknown.
//!
//! # Where the rules live
//! Two tables that belong to ctr alone and are never shared with other
//! software: `ip ctr` (NAT, and a guard for `route_localnet`) and `bridge
//! ctr` (anti-spoofing on bridge ports). Their base chains are created with
//! `add`, which is idempotent, in every batch.
//!
//! # How the rules are laid out
//! Each base chain holds only fixed dispatch rules: a verdict-map lookup
//! (`meta l4proto . th dport vmap @ports`, `iifname vmap @veths`, ...) that
//! jumps into a regular chain of one container (`c-<owner uid>-<container
//! id>`; ids are chosen by callers, so the uid keeps one user's id from
//! naming another user's chain) or of one network (`n-<bridge>-<purpose>`).
//! Every rule in those chains also carries a comment, `ctr:<uid>:<id>` or
//! `ctr-net:<bridge>`, for people and tests reading the ruleset.
//!
//! This layout is what keeps a start and a stop to one transaction each,
//! with no listing of the ruleset: everything is addressed by name or by map
//! key, never by rule handle. A start on a network that is set up only
//! adds (see [`fast_start`]: the kernel makes any transaction that deletes
//! or changes something wait for an RCU grace period, ~16 ms). The full
//! batch, its fallback and what network setup sends, re-declares the
//! tables, chains and maps (`add` is idempotent), flushes the base chains
//! and the chains it fills and writes them afresh, so it is idempotent and
//! also repairs a flushed chain. Removing a container needs its chain's name and its map
//! keys (its host veth and its published ports, which its lease records):
//! each element is first added (a no-op if present) and then deleted, and
//! the chain flushed and deleted, so one batch succeeds whether or not an
//! earlier, interrupted removal got that far. Only if that batch fails (a
//! key now leads elsewhere, or the caller does not know the keys) is the
//! ruleset listed, to find every element that jumps to the chain.
//! Published host ports are unique over all containers (the helper checks
//! every record under its network lock), so one `ports` key belongs to at
//! most one container.
//!
//! # Published ports and 127.0.0.1
//! A published port is a DNAT rule in `prerouting` (traffic from other hosts
//! and from containers) and in `output` (connections from the host itself),
//! matching any local address (`fib daddr type local`) or one host address.
//! For the host's own connections to 127.0.0.1 this is not enough: after
//! DNAT the kernel would route a packet with source 127.0.0.1 out of the
//! bridge, which it refuses as martian, and the container could not answer
//! 127.0.0.1 anyway. Like netavark and docker without its userland proxy,
//! ctr sets `net.ipv4.conf.<bridge>.route_localnet=1` and masquerades traffic
//! from 127.0.0.0/8 leaving through the bridge, so the container sees the
//! gateway as the source. `route_localnet` would also let a container send
//! packets addressed to 127.0.0.1 to the host's loopback services
//! (CVE-2020-8558); a `guard` chain at raw priority, before NAT, drops
//! packets arriving on the bridge for 127.0.0.0/8, as kube-proxy does.
//! Connections from a container to a published port on the host's address
//! (hairpin) are masqueraded too, so replies return through the host.
//!
//! # Isolation between networks
//! A `forward` filter chain drops packets routed from one of ctr's bridges
//! (those whose names start with [`BRIDGE_PREFIX`]: ctr names every bridge
//! it makes so) into another, as docker's isolation chains do: containers
//! on different networks cannot reach each other, except through published
//! ports on the host (connections that a DNAT rule redirected).
//!
//! # Anti-spoofing
//! In `bridge ctr`, frames that enter the bridge from a container's veth
//! must carry that container's MAC, be IPv4 or ARP, and carry its IPv4
//! address (as IP source or ARP sender); anything else is dropped. A
//! container is root in its own namespace and can change its addresses at
//! will; this keeps it from impersonating another container or the gateway.
//!
//! # Sysctls
//! [`Firewall::add_network`] sets `net.ipv4.ip_forward=1` and
//! `net.ipv4.conf.<bridge>.route_localnet=1` in the calling thread's network
//! namespace. In the host namespace `ip_forward` is host-global: it turns
//! the host into a router for every interface, which is what container
//! egress needs, and it is never turned off again, since other software may
//! rely on it by then.

use crate::ipam::{MacAddr, Subnet};
use crate::names::{BridgeName, InterfaceName, BRIDGE_PREFIX};
use crate::nftables::{self, Base, BaseChain, Batch, Element, Expr, Hook, KeyType, NftError, Proto};
use ctr_core::ids::ContainerId;
use std::fmt;
use std::io::{self, Write as _};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The one nft binary ctr runs. Fixed: never looked up in `PATH`.
pub const NFT: &str = "/usr/sbin/nft";
/// The name of both of ctr's tables (`ip ctr` and `bridge ctr`).
pub const TABLE: &str = "ctr";

const CHAIN_PREROUTING: &str = "prerouting";
const CHAIN_OUTPUT: &str = "output";
const CHAIN_POSTROUTING: &str = "postrouting";
const CHAIN_GUARD: &str = "guard";
const CHAIN_BRIDGE: &str = "prerouting";
const CHAIN_FORWARD: &str = "forward";

const fn base(kind: &'static str, hook: Hook, priority: i32) -> BaseChain {
    BaseChain { kind, hook, priority }
}

/// Every base chain, with its table family and definition.
const CHAINS: [(Family, &str, BaseChain); 6] = [
    (Family::Ip, CHAIN_PREROUTING, base("nat", Hook::Prerouting, -100)),
    (Family::Ip, CHAIN_OUTPUT, base("nat", Hook::Output, -100)),
    (Family::Ip, CHAIN_POSTROUTING, base("nat", Hook::Postrouting, 100)),
    (Family::Ip, CHAIN_GUARD, base("filter", Hook::Prerouting, -300)),
    (Family::Ip, CHAIN_FORWARD, base("filter", Hook::Forward, 0)),
    (Family::Bridge, CHAIN_BRIDGE, base("filter", Hook::Prerouting, -200)),
];

/// Published ports: `tcp . 8080` to the owning container's chain.
const MAP_PORTS: &str = "ports";
/// A network's subnet (an interval) to its egress chain.
const MAP_NET_SADDR: &str = "net-saddr";
/// A bridge, as output interface, to its network's chain.
const MAP_NET_OIF: &str = "net-oif";
/// A bridge, as input interface, to its network's guard chain.
const MAP_NET_GUARD: &str = "net-guard";
/// A bridge, as input interface, to its network's isolation chain.
const MAP_NET_FORWARD: &str = "net-forward";
/// A container's host veth to its anti-spoofing chain (bridge family).
const MAP_VETHS: &str = "veths";

/// Every verdict map, with its family and key type.
const MAPS: [(Family, &str, KeyType); 6] = [
    (Family::Ip, MAP_PORTS, KeyType::ProtoService),
    (Family::Ip, MAP_NET_SADDR, KeyType::Ipv4Interval),
    (Family::Ip, MAP_NET_OIF, KeyType::Ifname),
    (Family::Ip, MAP_NET_GUARD, KeyType::Ifname),
    (Family::Ip, MAP_NET_FORWARD, KeyType::Ifname),
    (Family::Bridge, MAP_VETHS, KeyType::Ifname),
];

/// The fixed rules of each base chain: lookups in the maps above. In
/// `postrouting` the egress lookup comes first; a chain that does not
/// match returns, and the next lookup runs.
const DISPATCH: [(Family, &str, Lookup, &str); 7] = [
    (Family::Ip, CHAIN_PREROUTING, Lookup::ProtoDport, MAP_PORTS),
    (Family::Ip, CHAIN_OUTPUT, Lookup::ProtoDport, MAP_PORTS),
    (Family::Ip, CHAIN_POSTROUTING, Lookup::IpSaddr, MAP_NET_SADDR),
    (Family::Ip, CHAIN_POSTROUTING, Lookup::Oifname, MAP_NET_OIF),
    (Family::Ip, CHAIN_GUARD, Lookup::Iifname, MAP_NET_GUARD),
    (Family::Ip, CHAIN_FORWARD, Lookup::Iifname, MAP_NET_FORWARD),
    (Family::Bridge, CHAIN_BRIDGE, Lookup::Iifname, MAP_VETHS),
];

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("nftables is not installed ({NFT} not found): install nftables (apt-get install nftables)")]
    NotInstalled,
    #[error("running {NFT}: {0}")]
    Spawn(#[source] io::Error),
    #[error("nft refused the {what}: {stderr}")]
    Nft { what: String, stderr: String },
    #[error("{what}: {source}")]
    Netlink { what: String, source: NftError },
    #[error("could not parse `nft -j` output: {0}")]
    Json(#[source] serde_json::Error),
    #[error("setting sysctl {path}: {source} (this needs CAP_NET_ADMIN in the network namespace)")]
    Sysctl { path: PathBuf, source: io::Error },
}

/// A published port, as the helper's request carries it (ctr-core's types,
/// validated when decoded): connections to `host_ip:host_port` (any local
/// address when `host_ip` is None) go to the container's `container_port`.
pub use ctr_core::net::{PortSpec, Protocol};

/// A network's rules: masquerade for its subnet, localhost and hairpin NAT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    pub bridge: BridgeName,
    pub subnet: Subnet,
}

/// A container's rules: its published ports and its anti-spoofing filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRules {
    pub owner_uid: u32,
    pub id: ContainerId,
    pub host_veth: InterfaceName,
    pub address: Ipv4Addr,
    pub mac: MacAddr,
    pub ports: Vec<PortSpec>,
}

/// What removing a container's rules needs: its chain's name (owner and
/// id) and its map keys (host veth and published ports), as its lease
/// records them. Missing keys cost a listing, not correctness.
#[derive(Debug, Clone, Copy)]
pub struct ContainerKeys<'a> {
    pub owner_uid: u32,
    pub id: &'a ContainerId,
    pub host_veth: Option<&'a InterfaceName>,
    pub ports: &'a [PortSpec],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Family {
    Ip,
    Bridge,
}

impl Family {
    fn as_str(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Bridge => "bridge",
        }
    }

    fn proto(self) -> Proto {
        match self {
            Family::Ip => Proto::Ipv4,
            Family::Bridge => Proto::Bridge,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "ip" => Some(Family::Ip),
            "bridge" => Some(Family::Bridge),
            _ => None,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The comment that marks a rule as belonging to one container (of one
/// user) or network.
fn container_tag(uid: u32, id: &ContainerId) -> String {
    format!("ctr:{uid}:{id}")
}

fn network_tag(bridge: &BridgeName) -> String {
    format!("ctr-net:{bridge}")
}

/// A container's chain, in both tables: `c-<uid>-<id>` (letters, digits
/// and `-` only: an nft identifier).
fn container_chain(uid: u32, id: &ContainerId) -> String {
    format!("c-{uid}-{id}")
}

/// A network's chains. Bridge names are letters, digits, `_`, `-` and `.`,
/// all of which an nft identifier may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NetChain {
    /// Egress masquerade, by source subnet.
    Egress,
    /// Masquerade of localhost and hairpin traffic into the bridge.
    Out,
    /// The route_localnet guard and notrack, by input bridge.
    Guard,
    /// Isolation from ctr's other networks, by input bridge.
    Forward,
}

impl NetChain {
    fn name(self, bridge: &BridgeName) -> String {
        let purpose = match self {
            NetChain::Egress => "egress",
            NetChain::Out => "out",
            NetChain::Guard => "guard",
            NetChain::Forward => "forward",
        };
        format!("n-{bridge}-{purpose}")
    }

    /// The map whose element jumps here, and that element's key.
    fn map_and_key(self, net: &NetworkRules) -> (&'static str, Key) {
        match self {
            NetChain::Egress => (MAP_NET_SADDR, Key::subnet(&net.subnet)),
            NetChain::Out => (MAP_NET_OIF, Key::ifname(&net.bridge)),
            NetChain::Guard => (MAP_NET_GUARD, Key::ifname(&net.bridge)),
            NetChain::Forward => (MAP_NET_FORWARD, Key::ifname(&net.bridge)),
        }
    }

    /// The chains a network has: isolation only for ctr's own bridges.
    fn of(bridge: &BridgeName) -> Vec<NetChain> {
        let mut chains = vec![NetChain::Egress, NetChain::Out, NetChain::Guard];
        if bridge.as_str().starts_with(BRIDGE_PREFIX) {
            chains.push(NetChain::Forward);
        }
        chains
    }
}

/// What a dispatch rule looks up in its verdict map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// `meta l4proto . th dport`
    ProtoDport,
    /// `ip saddr`
    IpSaddr,
    Oifname,
    Iifname,
}

/// A map key, typed: written as nft syntax or as the kernel's bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    /// `tcp . 8080`
    Port(u8, u16),
    /// `10.88.0.0/16` (an interval: its start and the address past its end).
    Prefix(Ipv4Addr, u8),
    /// An interface name.
    Ifname(String),
}

fn protocol_number(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
    }
}

fn protocol_name(number: u8) -> &'static str {
    if number == 6 {
        "tcp"
    } else {
        "udp"
    }
}

/// An interface name as the kernel compares it: IFNAMSIZ bytes, NUL-padded.
fn ifname_bytes(name: &str) -> Vec<u8> {
    let mut bytes = name.as_bytes().to_vec();
    bytes.resize(16, 0);
    bytes
}

impl Key {
    fn subnet(s: &Subnet) -> Self {
        Key::Prefix(s.network(), s.prefix())
    }

    fn ifname(name: &impl fmt::Display) -> Self {
        Key::Ifname(name.to_string())
    }

    fn text(&self) -> String {
        match self {
            Key::Port(p, port) => format!("{} . {port}", protocol_name(*p)),
            Key::Prefix(addr, len) => format!("{addr}/{len}"),
            Key::Ifname(name) => format!("\"{name}\""),
        }
    }

    /// The kernel's elements for this key: an interval is two, its start
    /// (with the verdict) and the first address past it (flagged as the
    /// end), which the last subnet of the address space does not need.
    fn elements(&self, jump: &str) -> Vec<Element> {
        let jump = Some(jump.to_owned());
        match self {
            Key::Port(p, port) => {
                let [hi, lo] = port.to_be_bytes();
                vec![Element { key: vec![*p, 0, 0, 0, hi, lo, 0, 0], jump }]
            }
            Key::Prefix(addr, len) => {
                let start = Element { key: addr.octets().to_vec(), jump };
                let end = u32::from(*addr).checked_add(1u32 << (32 - u32::from(*len)));
                let end = end.map(|e| Element { key: Ipv4Addr::from(e).octets().to_vec(), jump: None });
                std::iter::once(start).chain(end).collect()
            }
            Key::Ifname(name) => vec![Element { key: ifname_bytes(name), jump }],
        }
    }
}

/// The EtherTypes the anti-spoofing rules name.
const ETHERTYPE_IP: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Match {
    /// `iifname`/`oifname`, equal or not; a trailing `*` matches a prefix.
    Ifname { out: bool, neq: bool, name: String },
    /// `ip saddr|daddr [!=] address[/prefix]`.
    Ip { daddr: bool, neq: bool, addr: Ipv4Addr, prefix: u8 },
    /// `fib daddr type local`
    FibDaddrLocal,
    /// `tcp dport 8080`
    Dport(Protocol, u16),
    /// `ct status dnat` (true), `ct status & dnat == 0` (false).
    CtDnat(bool),
    /// `ether saddr != MAC`
    EtherSaddrNeq(MacAddr),
    /// `ether type != ip|arp`
    EtherTypeNeq(u16),
    /// `arp saddr ip != ADDRESS`
    ArpSaddrIpNeq(Ipv4Addr),
    /// `arp saddr ether != MAC`
    ArpSaddrEtherNeq(MacAddr),
}

fn op(neq: bool) -> &'static str {
    if neq {
        "!= "
    } else {
        ""
    }
}

fn payload(base: Base, offset: u32, len: u32) -> Expr {
    Expr::Payload { base, offset, len, dreg: nftables::NFT_REG_1 }
}

fn cmp(neq: bool, data: &[u8]) -> Expr {
    Expr::Cmp { neq, data: data.to_vec() }
}

/// `ether type == T`: the dependency of a match on an ARP header.
fn ether_type_is(t: u16) -> [Expr; 2] {
    [payload(Base::Link, 12, 2), cmp(false, &t.to_be_bytes())]
}

impl Match {
    fn text(&self) -> String {
        match self {
            Match::Ifname { out, neq, name } => {
                format!("{}ifname {}\"{name}\"", if *out { "o" } else { "i" }, op(*neq))
            }
            Match::Ip { daddr, neq, addr, prefix } => {
                let field = if *daddr { "daddr" } else { "saddr" };
                let net = if *prefix == 32 { addr.to_string() } else { format!("{addr}/{prefix}") };
                format!("ip {field} {}{net}", op(*neq))
            }
            Match::FibDaddrLocal => "fib daddr type local".to_owned(),
            Match::Dport(p, port) => format!("{p} dport {port}"),
            Match::CtDnat(true) => "ct status dnat".to_owned(),
            Match::CtDnat(false) => "ct status & dnat == 0".to_owned(),
            Match::EtherSaddrNeq(mac) => format!("ether saddr != {mac}"),
            Match::EtherTypeNeq(t) => format!("ether type != {}", if *t == ETHERTYPE_IP { "ip" } else { "arp" }),
            Match::ArpSaddrIpNeq(addr) => format!("arp saddr ip != {addr}"),
            Match::ArpSaddrEtherNeq(mac) => format!("arp saddr ether != {mac}"),
        }
    }

    /// The expressions nft makes of this match in `family`'s tables,
    /// dependencies included.
    fn exprs(&self, family: Family) -> Vec<Expr> {
        let reg = nftables::NFT_REG_1;
        match self {
            Match::Ifname { out, neq, name } => {
                let key = if *out { nftables::META_OIFNAME } else { nftables::META_IIFNAME };
                let data = match name.strip_suffix('*') {
                    Some(prefix) => prefix.as_bytes().to_vec(),
                    None => ifname_bytes(name),
                };
                vec![Expr::Meta { key, dreg: reg }, Expr::Cmp { neq: *neq, data }]
            }
            Match::Ip { daddr, neq, addr, prefix } => {
                let mut out = Vec::new();
                if family == Family::Bridge {
                    out.push(Expr::Meta { key: nftables::META_PROTOCOL, dreg: reg });
                    out.push(cmp(false, &ETHERTYPE_IP.to_be_bytes()));
                }
                let offset = if *daddr { 16 } else { 12 };
                // As nft: a whole-byte prefix compares only its bytes, any
                // other the masked address.
                let bytes = if prefix % 8 == 0 { usize::from(prefix / 8) } else { 4 };
                out.push(payload(Base::Network, offset, bytes as u32));
                if prefix % 8 != 0 {
                    let mask = (u32::MAX << (32 - u32::from(*prefix))).to_be_bytes();
                    out.push(Expr::Mask { mask: mask.to_vec() });
                }
                out.push(cmp(*neq, &addr.octets()[..bytes]));
                out
            }
            Match::FibDaddrLocal => {
                // RTN_LOCAL, as the kernel's u32 in native byte order.
                vec![Expr::FibDaddrType, cmp(false, &2u32.to_ne_bytes())]
            }
            Match::Dport(p, port) => vec![
                Expr::Meta { key: nftables::META_L4PROTO, dreg: reg },
                cmp(false, &[protocol_number(*p)]),
                payload(Base::Transport, 2, 2),
                cmp(false, &port.to_be_bytes()),
            ],
            Match::CtDnat(dnat) => {
                // IPS_DST_NAT, in the native byte order of ct status.
                vec![Expr::CtStatus, Expr::Mask { mask: 0x20u32.to_ne_bytes().to_vec() }, cmp(*dnat, &[0; 4])]
            }
            Match::EtherSaddrNeq(mac) => vec![payload(Base::Link, 6, 6), cmp(true, &mac.0)],
            Match::EtherTypeNeq(t) => vec![payload(Base::Link, 12, 2), cmp(true, &t.to_be_bytes())],
            Match::ArpSaddrIpNeq(addr) => {
                let mut out = ether_type_is(ETHERTYPE_ARP).to_vec();
                out.extend([payload(Base::Network, 14, 4), cmp(true, &addr.octets())]);
                out
            }
            Match::ArpSaddrEtherNeq(mac) => {
                let mut out = ether_type_is(ETHERTYPE_ARP).to_vec();
                out.extend([payload(Base::Network, 8, 6), cmp(true, &mac.0)]);
                out
            }
        }
    }
}

/// What a rule does when every match holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Masquerade,
    Drop,
    Notrack,
    /// `dnat to ADDRESS:PORT`
    Dnat(Ipv4Addr, u16),
    /// `KEY vmap @MAP`
    Vmap(Lookup, &'static str),
}

impl Action {
    fn text(&self) -> String {
        match self {
            Action::Masquerade => "masquerade".to_owned(),
            Action::Drop => "drop".to_owned(),
            Action::Notrack => "notrack".to_owned(),
            Action::Dnat(addr, port) => format!("dnat to {addr}:{port}"),
            Action::Vmap(lookup, map) => {
                let key = match lookup {
                    Lookup::ProtoDport => "meta l4proto . th dport",
                    Lookup::IpSaddr => "ip saddr",
                    Lookup::Oifname => "oifname",
                    Lookup::Iifname => "iifname",
                };
                format!("{key} vmap @{map}")
            }
        }
    }

    fn exprs(&self) -> Vec<Expr> {
        let reg = nftables::NFT_REG_1;
        match self {
            Action::Masquerade => vec![Expr::Masquerade],
            Action::Drop => vec![Expr::Drop],
            Action::Notrack => vec![Expr::Notrack],
            Action::Dnat(addr, port) => vec![
                Expr::Immediate { dreg: reg, data: addr.octets().to_vec() },
                Expr::Immediate { dreg: nftables::NFT_REG_2, data: port.to_be_bytes().to_vec() },
                Expr::Dnat,
            ],
            Action::Vmap(lookup, map) => {
                let mut out = match lookup {
                    Lookup::ProtoDport => vec![
                        Expr::Meta { key: nftables::META_L4PROTO, dreg: reg },
                        Expr::Payload { base: Base::Transport, offset: 2, len: 2, dreg: nftables::NFT_REG32_01 },
                    ],
                    Lookup::IpSaddr => vec![payload(Base::Network, 12, 4)],
                    Lookup::Oifname => vec![Expr::Meta { key: nftables::META_OIFNAME, dreg: reg }],
                    Lookup::Iifname => vec![Expr::Meta { key: nftables::META_IIFNAME, dreg: reg }],
                };
                out.push(Expr::Vmap { map: (*map).to_owned() });
                out
            }
        }
    }
}

/// One change to ctr's tables: written as an nft command (for people,
/// error messages and the tests) or encoded as a netlink message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    AddTable(Family),
    DeleteTable(Family),
    /// `add chain`, a base chain with its definition.
    AddChain(Family, String, Option<BaseChain>),
    /// `create chain`: a new regular chain, refused if it exists.
    CreateChain(Family, String),
    FlushChain(Family, String),
    DeleteChain(Family, String),
    AddMap(Family, &'static str, KeyType),
    /// `add element FAMILY ctr MAP { KEY : jump CHAIN, ... }`
    AddElements(Family, &'static str, Vec<(Key, String)>),
    DeleteElements(Family, &'static str, Vec<Key>),
    /// `add rule FAMILY ctr CHAIN MATCHES ACTION [comment "TAG"]`
    AddRule {
        family: Family,
        chain: String,
        matches: Vec<Match>,
        action: Action,
        tag: Option<String>,
    },
}

fn hook_name(hook: Hook) -> &'static str {
    match hook {
        Hook::Prerouting => "prerouting",
        Hook::Forward => "forward",
        Hook::Output => "output",
        Hook::Postrouting => "postrouting",
    }
}

fn map_definition(key: KeyType) -> &'static str {
    match key {
        KeyType::ProtoService => "type inet_proto . inet_service : verdict;",
        KeyType::Ipv4Interval => "type ipv4_addr : verdict; flags interval;",
        KeyType::Ifname => "type ifname : verdict;",
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::AddTable(family) => write!(f, "add table {family} {TABLE}"),
            Op::DeleteTable(family) => write!(f, "delete table {family} {TABLE}"),
            Op::AddChain(family, chain, None) => write!(f, "add chain {family} {TABLE} {chain}"),
            Op::AddChain(family, chain, Some(b)) => write!(
                f,
                "add chain {family} {TABLE} {chain} {{ type {} hook {} priority {}; policy accept; }}",
                b.kind,
                hook_name(b.hook),
                b.priority
            ),
            Op::CreateChain(family, chain) => write!(f, "create chain {family} {TABLE} {chain}"),
            Op::FlushChain(family, chain) => write!(f, "flush chain {family} {TABLE} {chain}"),
            Op::DeleteChain(family, chain) => write!(f, "delete chain {family} {TABLE} {chain}"),
            Op::AddMap(family, map, key) => write!(f, "add map {family} {TABLE} {map} {{ {} }}", map_definition(*key)),
            Op::AddElements(family, map, elements) => {
                let elements: Vec<String> = elements.iter().map(|(k, c)| format!("{} : jump {c}", k.text())).collect();
                write!(f, "add element {family} {TABLE} {map} {{ {} }}", elements.join(", "))
            }
            Op::DeleteElements(family, map, keys) => {
                let keys: Vec<String> = keys.iter().map(Key::text).collect();
                write!(f, "delete element {family} {TABLE} {map} {{ {} }}", keys.join(", "))
            }
            Op::AddRule { family, chain, matches, action, tag } => {
                write!(f, "add rule {family} {TABLE} {chain} ")?;
                for m in matches {
                    write!(f, "{} ", m.text())?;
                }
                f.write_str(&action.text())?;
                match tag {
                    Some(tag) => write!(f, " comment \"{tag}\""),
                    None => Ok(()),
                }
            }
        }
    }
}

impl Op {
    fn encode(&self, batch: &mut Batch) {
        let label = self.to_string();
        match self {
            Op::AddTable(family) => batch.add_table(family.proto(), TABLE, label),
            Op::DeleteTable(family) => batch.delete_table(family.proto(), TABLE, label),
            Op::AddChain(family, chain, base) => batch.add_chain(family.proto(), TABLE, chain, *base, false, label),
            Op::CreateChain(family, chain) => batch.add_chain(family.proto(), TABLE, chain, None, true, label),
            Op::FlushChain(family, chain) => batch.flush_chain(family.proto(), TABLE, chain, label),
            Op::DeleteChain(family, chain) => batch.delete_chain(family.proto(), TABLE, chain, label),
            Op::AddMap(family, map, key) => batch.add_map(family.proto(), TABLE, map, *key, label),
            Op::AddElements(family, map, elements) => {
                let elements: Vec<Element> = elements.iter().flat_map(|(k, chain)| k.elements(chain)).collect();
                batch.add_elements(family.proto(), TABLE, map, &elements, label);
            }
            Op::DeleteElements(family, map, keys) => {
                let elements: Vec<Element> = keys.iter().flat_map(|k| k.elements("")).collect();
                batch.delete_elements(family.proto(), TABLE, map, &elements, label);
            }
            Op::AddRule { family, chain, matches, action, tag } => {
                let mut exprs: Vec<Expr> = matches.iter().flat_map(|m| m.exprs(*family)).collect();
                exprs.extend(action.exprs());
                batch.add_rule(family.proto(), TABLE, chain, &exprs, tag.as_deref(), label);
            }
        }
    }
}

/// One transaction. A chain must be declared before a map created in the
/// same batch can jump to it, so chains, maps and the rest are collected
/// apart and sent in that order, after the tables.
#[derive(Default)]
struct Script {
    chains: Vec<Op>,
    maps: Vec<Op>,
    body: Vec<Op>,
}

impl Script {
    /// The tables, the base chains and the maps, and the base chains
    /// flushed and given their dispatch rules again: what every adding
    /// batch starts with, so none depends on an earlier one.
    fn with_skeleton() -> Self {
        let mut s = Self::default();
        for (family, chain, definition) in CHAINS {
            s.chains.push(Op::AddChain(family, chain.to_owned(), Some(definition)));
        }
        s.declare_maps();
        for (family, chain, _) in CHAINS {
            s.body.push(Op::FlushChain(family, chain.to_owned()));
        }
        for (family, chain, lookup, map) in DISPATCH {
            let action = Action::Vmap(lookup, map);
            s.body.push(Op::AddRule { family, chain: chain.to_owned(), matches: vec![], action, tag: None });
        }
        s
    }

    fn declare_maps(&mut self) {
        self.maps = MAPS.iter().map(|(family, map, key)| Op::AddMap(*family, map, *key)).collect();
    }

    /// Declares `chain` and empties it.
    fn fresh_chain(&mut self, family: Family, chain: &str) {
        self.chains.push(Op::AddChain(family, chain.to_owned(), None));
        self.body.push(Op::FlushChain(family, chain.to_owned()));
    }

    fn rule(&mut self, family: Family, chain: &str, matches: Vec<Match>, action: Action, tag: &str) {
        let (chain, tag) = (chain.to_owned(), Some(tag.to_owned()));
        self.body.push(Op::AddRule { family, chain, matches, action, tag });
    }

    fn jump(&mut self, family: Family, map: &'static str, keys: &[Key], chain: &str) {
        if keys.is_empty() {
            return;
        }
        self.body.push(Op::AddElements(family, map, keys.iter().map(|k| (k.clone(), chain.to_owned())).collect()));
    }

    /// Removes the elements `keys` of `map` that jump to `chain`, present
    /// or not: adding first makes the delete succeed either way.
    fn remove_jumps(&mut self, family: Family, map: &'static str, keys: &[Key], chain: &str) {
        if keys.is_empty() {
            return;
        }
        self.jump(family, map, keys, chain);
        self.body.push(Op::DeleteElements(family, map, keys.to_vec()));
    }

    /// Declares, empties and deletes `chain`: gone, whether or not it was there.
    fn remove_chain(&mut self, family: Family, chain: &str) {
        self.chains.push(Op::AddChain(family, chain.to_owned(), None));
        self.body.push(Op::FlushChain(family, chain.to_owned()));
        self.body.push(Op::DeleteChain(family, chain.to_owned()));
    }

    /// Every operation, in the order sent.
    fn ops(&self) -> impl Iterator<Item = Op> + '_ {
        let tables = [Op::AddTable(Family::Ip), Op::AddTable(Family::Bridge)];
        tables.into_iter().chain(self.chains.iter().chain(&self.maps).chain(&self.body).cloned())
    }

    /// The batch as an nft script.
    #[cfg(test)]
    fn text(&self) -> String {
        self.ops().map(|op| format!("{op}\n")).collect()
    }

    #[cfg(test)]
    fn body_text(&self) -> Vec<String> {
        self.body.iter().map(Op::to_string).collect()
    }

    /// The batch as netlink messages.
    fn batch(&self) -> Batch {
        let mut batch = Batch::new();
        self.ops().for_each(|op| op.encode(&mut batch));
        batch
    }
}

fn network_script(script: &mut Script, net: &NetworkRules) {
    let (bridge, subnet, tag) = (&net.bridge, &net.subnet, network_tag(&net.bridge));
    let chain = |c: NetChain| c.name(bridge);
    for c in NetChain::of(bridge) {
        script.fresh_chain(Family::Ip, &chain(c));
    }
    let ip = |daddr, neq, addr, prefix| Match::Ip { daddr, neq, addr, prefix };
    let in_subnet = |daddr| ip(daddr, false, subnet.network(), subnet.prefix());
    let localhost = |daddr| ip(daddr, false, Ipv4Addr::new(127, 0, 0, 0), 8);
    let oifname = |neq, name: String| Match::Ifname { out: true, neq, name };
    // Egress: the subnet leaves through any other interface as the host.
    let egress = chain(NetChain::Egress);
    script.rule(Family::Ip, &egress, vec![oifname(true, bridge.to_string())], Action::Masquerade, &tag);
    // The host's own connections to 127.0.0.1:<published port> (see module docs).
    let out = chain(NetChain::Out);
    script.rule(Family::Ip, &out, vec![localhost(false)], Action::Masquerade, &tag);
    // Hairpin: a container reaching a published port on the host's address.
    script.rule(Family::Ip, &out, vec![in_subnet(false), Match::CtDnat(true)], Action::Masquerade, &tag);
    // route_localnet must not open the host's loopback services to containers.
    let guard = chain(NetChain::Guard);
    script.rule(Family::Ip, &guard, vec![localhost(true)], Action::Drop, &tag);
    // Where br_netfilter is loaded (docker loads it), bridged traffic between
    // two containers passes the IP hooks too; it needs no NAT, so it skips
    // connection tracking. Traffic to the gateway (the host, and hairpin
    // connections to published ports) is still tracked.
    let not_gateway = ip(true, true, subnet.gateway(), 32);
    script.rule(Family::Ip, &guard, vec![in_subnet(false), in_subnet(true), not_gateway], Action::Notrack, &tag);
    // Isolation: nothing is routed from one of ctr's networks into another,
    // except connections to a published port (DNAT) and their replies.
    if NetChain::of(bridge).contains(&NetChain::Forward) {
        let matches =
            vec![oifname(false, format!("{BRIDGE_PREFIX}*")), oifname(true, bridge.to_string()), Match::CtDnat(false)];
        script.rule(Family::Ip, &chain(NetChain::Forward), matches, Action::Drop, &tag);
    }
    for c in NetChain::of(bridge) {
        let (map, key) = c.map_and_key(net);
        script.jump(Family::Ip, map, &[key], &chain(c));
    }
}

fn remove_network_script(script: &mut Script, net: &NetworkRules) {
    script.declare_maps();
    for c in NetChain::of(&net.bridge) {
        let (map, key) = c.map_and_key(net);
        script.remove_jumps(Family::Ip, map, &[key], &c.name(&net.bridge));
        script.remove_chain(Family::Ip, &c.name(&net.bridge));
    }
}

/// The `ports` keys of a container's published ports, each once.
fn port_keys(ports: &[PortSpec]) -> Vec<Key> {
    let mut keys: Vec<Key> = ports.iter().map(|p| Key::Port(protocol_number(p.protocol), p.host_port)).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// How a batch makes a container's chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chains {
    /// Declared and flushed: idempotent, and it repairs them.
    Fresh,
    /// Created, refused if they exist: additions only (see [`fast_start`]).
    Create,
}

fn container_script(script: &mut Script, c: &ContainerRules) {
    container_chains(script, c, Chains::Fresh);
}

fn container_chains(script: &mut Script, c: &ContainerRules, chains: Chains) {
    let (tag, chain) = (container_tag(c.owner_uid, &c.id), container_chain(c.owner_uid, &c.id));
    for family in [Family::Ip, Family::Bridge] {
        match chains {
            Chains::Fresh => script.fresh_chain(family, &chain),
            Chains::Create => script.chains.push(Op::CreateChain(family, chain.clone())),
        }
    }
    for port in &c.ports {
        let local = match port.host_ip {
            Some(addr) => Match::Ip { daddr: true, neq: false, addr, prefix: 32 },
            None => Match::FibDaddrLocal,
        };
        // Reached from both `prerouting` and `output`, through `ports`.
        let matches = vec![local, Match::Dport(port.protocol, port.host_port)];
        script.rule(Family::Ip, &chain, matches, Action::Dnat(c.address, port.container_port), &tag);
    }
    script.jump(Family::Ip, MAP_PORTS, &port_keys(&c.ports), &chain);
    // Reached only for frames entering the bridge from this veth.
    let (mac, addr) = (c.mac, c.address);
    for m in [
        Match::EtherSaddrNeq(mac),
        Match::EtherTypeNeq(ETHERTYPE_IP),
        Match::Ip { daddr: false, neq: true, addr, prefix: 32 },
        Match::ArpSaddrIpNeq(addr),
        Match::ArpSaddrEtherNeq(mac),
    ] {
        // `ether type != ip` alone would drop ARP: both go in one rule.
        let matches = match m {
            Match::EtherTypeNeq(_) => vec![m, Match::EtherTypeNeq(ETHERTYPE_ARP)],
            m => vec![m],
        };
        script.rule(Family::Bridge, &chain, matches, Action::Drop, &tag);
    }
    script.jump(Family::Bridge, MAP_VETHS, &[Key::ifname(&c.host_veth)], &chain);
}

/// A start's transaction when ctr's tables and the network's chains are in
/// place (every start but the first on a network): additions only. The
/// kernel makes a transaction that deletes or changes anything (a rule, a
/// chain, an element) wait for an RCU grace period, about 16 ms here, where
/// one that only adds takes well under a millisecond. So this batch
/// neither re-declares the base chains nor flushes anything: it creates the
/// container's chains (refused if they exist, so that stale rules are
/// never added to), adds their rules and jumps, and adds the network's
/// jump elements again, a no-op that fails if the network's chains, maps or
/// tables are missing. Any failure undoes the whole batch, and the caller
/// falls back to the full one, which repairs.
fn fast_start(script: &mut Script, net: Option<&NetworkRules>, c: &ContainerRules) {
    if let Some(net) = net {
        for chain in NetChain::of(&net.bridge) {
            let (map, key) = chain.map_and_key(net);
            script.jump(Family::Ip, map, &[key], &chain.name(&net.bridge));
        }
    }
    container_chains(script, c, Chains::Create);
}

fn remove_container_script(script: &mut Script, c: &ContainerKeys<'_>) {
    let chain = container_chain(c.owner_uid, c.id);
    script.declare_maps();
    script.remove_jumps(Family::Ip, MAP_PORTS, &port_keys(c.ports), &chain);
    let veth: Vec<Key> = c.host_veth.iter().map(Key::ifname).collect();
    script.remove_jumps(Family::Bridge, MAP_VETHS, &veth, &chain);
    script.remove_chain(Family::Ip, &chain);
    script.remove_chain(Family::Bridge, &chain);
}

/// What a listing of ctr's tables says, reduced to what counting rules and
/// a fallback removal need.
#[derive(Debug, Default)]
struct Listing {
    /// `(family, chain, comment)` of every rule.
    rules: Vec<(Family, String, Option<String>)>,
    /// `(family, chain)` of every regular (non-base) chain.
    chains: Vec<(Family, String)>,
    /// `(family, map, key as nft syntax, target chain)` of every jump.
    jumps: Vec<(Family, &'static str, String, String)>,
}

/// Parses `nft -j list ruleset`, keeping only ctr's own tables and maps.
/// Kernel-reported keys go back into a script only as re-validated typed
/// values (protocol, port, address, interface name).
fn parse_listing(json: &[u8]) -> Result<Listing, FirewallError> {
    let listing: serde_json::Value = serde_json::from_slice(json).map_err(FirewallError::Json)?;
    let entries = listing.get("nftables").and_then(|v| v.as_array()).map_or(&[][..], |v| v.as_slice());
    let mut out = Listing::default();
    for entry in entries {
        let Some((kind, object)) = entry.as_object().and_then(|o| o.iter().next()) else { continue };
        let text = |key: &str| object.get(key).and_then(|v| v.as_str());
        let Some(family) = text("family").and_then(Family::parse) else { continue };
        if text("table") != Some(TABLE) {
            continue;
        }
        match kind.as_str() {
            "rule" => {
                let (Some(chain), comment) = (text("chain"), text("comment")) else { continue };
                out.rules.push((family, chain.to_owned(), comment.map(str::to_owned)));
            }
            "chain" if object.get("hook").is_none() => {
                if let Some(name) = text("name") {
                    out.chains.push((family, name.to_owned()));
                }
            }
            "map" => {
                let Some(map) = MAPS.iter().find(|(f, m, _)| *f == family && Some(*m) == text("name")).map(|m| m.1)
                else {
                    continue;
                };
                for elem in object.get("elem").and_then(|e| e.as_array()).into_iter().flatten() {
                    let target = elem.get(1).and_then(|v| v.get("jump")).and_then(|j| j.get("target"));
                    let (Some(key), Some(target)) =
                        (elem.get(0).and_then(element_key), target.and_then(|t| t.as_str()))
                    else {
                        continue;
                    };
                    out.jumps.push((family, map, key, target.to_owned()));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A map key from `nft -j` as nft syntax, if it is one of the shapes ctr
/// writes: `tcp . 8080`, `10.88.0.0/16`, or an interface name.
fn element_key(key: &serde_json::Value) -> Option<String> {
    if let Some(parts) = key.get("concat").and_then(|c| c.as_array()) {
        let protocol = match parts.first()?.as_str()? {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            _ => return None,
        };
        let port = u16::try_from(parts.get(1)?.as_u64()?).ok()?;
        return Some(format!("{protocol} . {port}"));
    }
    if let Some(prefix) = key.get("prefix") {
        let addr: Ipv4Addr = prefix.get("addr")?.as_str()?.parse().ok()?;
        let len = u8::try_from(prefix.get("len")?.as_u64()?).ok().filter(|l| *l <= 32)?;
        return Some(format!("{addr}/{len}"));
    }
    let name = key.as_str()?;
    if let Ok(addr) = name.parse::<Ipv4Addr>() {
        return Some(addr.to_string());
    }
    InterfaceName::parse(name).ok().map(|n| format!("\"{n}\""))
}

/// ctr's nftables rules in the calling thread's network namespace.
#[derive(Debug)]
pub struct Firewall {
    _private: (),
}

impl Firewall {
    /// Checks that nft is installed.
    pub fn new() -> Result<Self, FirewallError> {
        if !Path::new(NFT).is_file() {
            return Err(FirewallError::NotInstalled);
        }
        Ok(Self { _private: () })
    }

    /// Runs nft with fixed arguments, feeding `stdin`; returns its stdout.
    fn nft(&self, args: &[&'static str], stdin: &str, what: &str) -> Result<Vec<u8>, FirewallError> {
        let mut child = Command::new(NFT)
            .args(args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => FirewallError::NotInstalled,
                _ => FirewallError::Spawn(e),
            })?;
        // nft reads all of stdin before it writes much, so write then wait.
        let mut input = child.stdin.take().expect("stdin is piped");
        let written = input.write_all(stdin.as_bytes());
        drop(input);
        let output = child.wait_with_output().map_err(FirewallError::Spawn)?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            return Err(FirewallError::Nft { what: what.to_owned(), stderr });
        }
        written.map_err(FirewallError::Spawn)?;
        Ok(output.stdout)
    }

    /// Applies `script` as one netlink transaction: all of it, or nothing.
    fn apply(&self, script: &Script, what: &str) -> Result<(), FirewallError> {
        script.batch().commit().map_err(|source| FirewallError::Netlink { what: what.to_owned(), source })
    }

    /// ctr's tables as they are now (empty if they do not exist).
    fn listing(&self) -> Result<Listing, FirewallError> {
        parse_listing(&self.nft(&["-j", "list", "ruleset"], "", "ruleset listing")?)
    }

    /// The slow path of a removal: lists the ruleset and deletes every
    /// element that jumps to one of `chains`, and the chains themselves.
    fn purge(&self, chains: &[(Family, String)], what: &str) -> Result<(), FirewallError> {
        let listing = self.listing()?;
        let mut script = String::new();
        for (family, map, key, target) in &listing.jumps {
            if chains.iter().any(|(f, c)| f == family && c == target) {
                script += &format!("delete element {family} {TABLE} {map} {{ {key} }}\n");
            }
        }
        for (family, chain) in listing.chains.iter().filter(|c| chains.contains(c)) {
            script += &format!("flush chain {family} {TABLE} {chain}\ndelete chain {family} {TABLE} {chain}\n");
        }
        if script.is_empty() {
            return Ok(());
        }
        // Only deletions of what the listing showed: no tables to declare.
        self.nft(&["-f", "-"], &script, what).map(drop)
    }

    /// Sets the sysctls a network needs (see the module docs) and installs
    /// its NAT rules. The bridge must exist. Idempotent: one netlink transaction.
    pub fn add_network(&self, net: &NetworkRules) -> Result<(), FirewallError> {
        network_sysctls(net)?;
        let mut script = Script::with_skeleton();
        network_script(&mut script, net);
        self.apply(&script, &format!("rules for network {}", net.bridge))
    }

    /// [`add_network`](Self::add_network) and
    /// [`add_container`](Self::add_container) in one batch: all the
    /// firewall work of a container start, in one transaction.
    pub fn add_network_and_container(&self, net: &NetworkRules, rules: &ContainerRules) -> Result<(), FirewallError> {
        network_sysctls(net)?;
        let what = format!("rules for network {} and container {}", net.bridge, rules.id.short());
        self.start(Some(net), rules, &what)
    }

    /// The fast transaction of a start ([`fast_start`]), and if the kernel
    /// refuses it, the full one.
    fn start(&self, net: Option<&NetworkRules>, rules: &ContainerRules, what: &str) -> Result<(), FirewallError> {
        let mut fast = Script::default();
        fast_start(&mut fast, net, rules);
        if self.apply(&fast, what).is_ok() {
            return Ok(());
        }
        let mut script = Script::with_skeleton();
        if let Some(net) = net {
            network_script(&mut script, net);
        }
        container_script(&mut script, rules);
        self.apply(&script, what)
    }

    /// Removes a network's rules. Missing rules are success.
    pub fn remove_network(&self, net: &NetworkRules) -> Result<(), FirewallError> {
        let what = format!("removal of network {}'s rules", net.bridge);
        let mut script = Script::default();
        remove_network_script(&mut script, net);
        self.apply(&script, &what).or_else(|_| {
            let chains: Vec<_> = NetChain::of(&net.bridge).iter().map(|c| (Family::Ip, c.name(&net.bridge))).collect();
            self.purge(&chains, &what)
        })
    }

    /// Installs a container's published ports and anti-spoofing rules,
    /// replacing any it had. Idempotent: one netlink transaction (two on
    /// the fallback of [`fast_start`]).
    pub fn add_container(&self, rules: &ContainerRules) -> Result<(), FirewallError> {
        self.start(None, rules, &format!("rules for container {}", rules.id.short()))
    }

    /// Removes a container's rules: one transaction when `keys` names its
    /// veth and ports (as its lease does), a listing more otherwise or if
    /// that fails. Missing rules are success.
    pub fn remove_container(&self, keys: &ContainerKeys<'_>) -> Result<(), FirewallError> {
        let what = format!("removal of container {}'s rules", keys.id.short());
        let mut script = Script::default();
        remove_container_script(&mut script, keys);
        self.apply(&script, &what).or_else(|_| {
            let chain = container_chain(keys.owner_uid, keys.id);
            self.purge(&[(Family::Ip, chain.clone()), (Family::Bridge, chain)], &what)
        })
    }

    /// How many rules a container has (for checks and tests).
    pub fn container_rule_count(&self, uid: u32, id: &ContainerId) -> Result<usize, FirewallError> {
        let tag = container_tag(uid, id);
        Ok(self.listing()?.rules.iter().filter(|(_, _, c)| c.as_deref() == Some(tag.as_str())).count())
    }

    /// How many tagged rules (a container's or a network's) ctr's tables
    /// hold in all; the fixed dispatch rules of the base chains are not
    /// counted.
    pub fn rule_count(&self) -> Result<usize, FirewallError> {
        Ok(self.listing()?.rules.iter().filter(|(_, _, c)| c.as_deref().is_some_and(|c| c.starts_with("ctr"))).count())
    }

    /// How many map elements jump to a chain (for checks and tests: none
    /// may outlive its container or network).
    pub fn jump_count(&self) -> Result<usize, FirewallError> {
        Ok(self.listing()?.jumps.len())
    }

    /// Deletes both of ctr's tables with whatever they hold; for when the
    /// last network is gone. Missing tables are success.
    pub fn remove_tables(&self) -> Result<(), FirewallError> {
        // `add` first, so that the deletes succeed whether or not they exist.
        let script =
            Script { body: vec![Op::DeleteTable(Family::Ip), Op::DeleteTable(Family::Bridge)], ..Script::default() };
        self.apply(&script, "removal of ctr's tables")
    }
}

fn network_sysctls(net: &NetworkRules) -> Result<(), FirewallError> {
    write_sysctl(Path::new("/proc/sys/net/ipv4/ip_forward"))?;
    write_sysctl(Path::new(&format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge)))
}

fn write_sysctl(path: &Path) -> Result<(), FirewallError> {
    let err = |source| FirewallError::Sysctl { path: path.to_owned(), source };
    if std::fs::read_to_string(path).map_err(err)?.trim() == "1" {
        return Ok(());
    }
    std::fs::write(path, b"1\n").map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> ContainerId {
        ContainerId::parse(&c.to_string().repeat(64)).unwrap()
    }

    fn sample_container() -> ContainerRules {
        ContainerRules {
            owner_uid: 1000,
            id: id('a'),
            host_veth: InterfaceName::parse("vethaaaaaaaaaaa").unwrap(),
            address: Ipv4Addr::new(10, 88, 0, 2),
            mac: MacAddr::for_container(Ipv4Addr::new(10, 88, 0, 2)),
            ports: vec![
                PortSpec { host_ip: None, host_port: 8080, container_port: 80, protocol: Protocol::Tcp },
                PortSpec {
                    host_ip: Some(Ipv4Addr::new(192, 0, 2, 1)),
                    host_port: 53,
                    container_port: 5353,
                    protocol: Protocol::Udp,
                },
            ],
        }
    }

    fn sample_network() -> NetworkRules {
        NetworkRules { bridge: BridgeName::parse("ctr0").unwrap(), subnet: Subnet::parse("10.88.0.0/16").unwrap() }
    }

    #[test]
    fn container_script_is_built_from_typed_values() {
        let mut s = Script::default();
        container_script(&mut s, &sample_container());
        let chain = format!("c-1000-{}", "a".repeat(64));
        let tag = format!("comment \"ctr:1000:{}\"", "a".repeat(64));
        let expected_rules = [
            format!("add rule ip ctr {chain} fib daddr type local tcp dport 8080 dnat to 10.88.0.2:80 {tag}"),
            format!("add rule ip ctr {chain} ip daddr 192.0.2.1 udp dport 53 dnat to 10.88.0.2:5353 {tag}"),
            format!("add element ip ctr ports {{ tcp . 8080 : jump {chain}, udp . 53 : jump {chain} }}"),
            format!("add rule bridge ctr {chain} ether saddr != 02:63:0a:58:00:02 drop {tag}"),
            format!("add rule bridge ctr {chain} ether type != ip ether type != arp drop {tag}"),
            format!("add rule bridge ctr {chain} ip saddr != 10.88.0.2 drop {tag}"),
            format!("add rule bridge ctr {chain} arp saddr ip != 10.88.0.2 drop {tag}"),
            format!("add rule bridge ctr {chain} arp saddr ether != 02:63:0a:58:00:02 drop {tag}"),
            format!("add element bridge ctr veths {{ \"vethaaaaaaaaaaa\" : jump {chain} }}"),
        ];
        let body: Vec<String> = s.body_text().into_iter().filter(|l| !l.starts_with("flush ")).collect();
        assert_eq!(body, expected_rules);
        let chains: Vec<String> = s.chains.iter().map(Op::to_string).collect();
        assert_eq!(chains, [format!("add chain ip ctr {chain}"), format!("add chain bridge ctr {chain}")]);
    }

    #[test]
    fn container_removal_needs_no_handles_and_succeeds_either_way() {
        let c = sample_container();
        let keys = ContainerKeys { owner_uid: 1000, id: &c.id, host_veth: Some(&c.host_veth), ports: &c.ports };
        let mut s = Script::default();
        remove_container_script(&mut s, &keys);
        let chain = format!("c-1000-{}", "a".repeat(64));
        assert_eq!(
            s.body_text(),
            [
                format!("add element ip ctr ports {{ tcp . 8080 : jump {chain}, udp . 53 : jump {chain} }}"),
                "delete element ip ctr ports { tcp . 8080, udp . 53 }".to_owned(),
                format!("add element bridge ctr veths {{ \"vethaaaaaaaaaaa\" : jump {chain} }}"),
                "delete element bridge ctr veths { \"vethaaaaaaaaaaa\" }".to_owned(),
                format!("flush chain ip ctr {chain}"),
                format!("delete chain ip ctr {chain}"),
                format!("flush chain bridge ctr {chain}"),
                format!("delete chain bridge ctr {chain}"),
            ]
        );
        assert!(!s.text().contains("handle"));
        // Without ports or a veth there is no element to add or delete.
        let bare = ContainerKeys { host_veth: None, ports: &[], ..keys };
        let mut s = Script::default();
        remove_container_script(&mut s, &bare);
        assert!(!s.body_text().concat().contains("element"));
    }

    #[test]
    fn a_fast_start_only_adds() {
        let mut s = Script::default();
        fast_start(&mut s, Some(&sample_network()), &sample_container());
        let text = s.text();
        let chain = format!("c-1000-{}", "a".repeat(64));
        assert!(text.contains(&format!("create chain ip ctr {chain}\ncreate chain bridge ctr {chain}\n")), "{text}");
        assert!(text.contains("add element ip ctr net-saddr { 10.88.0.0/16 : jump n-ctr0-egress }"), "{text}");
        assert!(text.contains("add element ip ctr ports { tcp . 8080 : jump "), "{text}");
        for line in text.lines() {
            assert!(
                line.starts_with("add table ")
                    || line.starts_with("create chain ")
                    || line.starts_with("add rule ")
                    || line.starts_with("add element "),
                "not an addition: {line}"
            );
        }
        assert_eq!(text.lines().filter(|l| l.starts_with("add rule")).count(), 7);
    }

    #[test]
    fn network_script_masquerades_and_guards() {
        let mut s = Script::default();
        network_script(&mut s, &sample_network());
        let tag = "comment \"ctr-net:ctr0\"";
        for want in [
            format!("add rule ip ctr n-ctr0-egress oifname != \"ctr0\" masquerade {tag}"),
            format!("add rule ip ctr n-ctr0-out ip saddr 127.0.0.0/8 masquerade {tag}"),
            format!("add rule ip ctr n-ctr0-out ip saddr 10.88.0.0/16 ct status dnat masquerade {tag}"),
            format!("add rule ip ctr n-ctr0-guard ip daddr 127.0.0.0/8 drop {tag}"),
            format!("add rule ip ctr n-ctr0-guard ip saddr 10.88.0.0/16 ip daddr 10.88.0.0/16 ip daddr != 10.88.0.1 notrack {tag}"),
            format!("add rule ip ctr n-ctr0-forward oifname \"ctr*\" oifname != \"ctr0\" ct status & dnat == 0 drop {tag}"),
            "add element ip ctr net-saddr { 10.88.0.0/16 : jump n-ctr0-egress }".to_owned(),
            "add element ip ctr net-oif { \"ctr0\" : jump n-ctr0-out }".to_owned(),
            "add element ip ctr net-guard { \"ctr0\" : jump n-ctr0-guard }".to_owned(),
            "add element ip ctr net-forward { \"ctr0\" : jump n-ctr0-forward }".to_owned(),
        ] {
            assert!(s.body_text().contains(&want), "missing {want:?} in\n{}", s.body_text().join("\n"));
        }
        assert_eq!(s.body_text().iter().filter(|l| l.starts_with("add rule")).count(), 6);
        // A bridge that is not ctr's own gets no isolation chain.
        let mut s = Script::default();
        network_script(&mut s, &NetworkRules { bridge: BridgeName::parse("uplink0").unwrap(), ..sample_network() });
        assert!(!s.text().contains("forward"));
    }

    #[test]
    fn skeleton_declares_chains_before_maps_and_refills_base_chains() {
        let mut s = Script::with_skeleton();
        container_script(&mut s, &sample_container());
        let text = s.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..2], ["add table ip ctr", "add table bridge ctr"]);
        let last_chain = lines.iter().rposition(|l| l.starts_with("add chain ")).unwrap();
        let first_map = lines.iter().position(|l| l.starts_with("add map ")).unwrap();
        assert!(last_chain < first_map, "{text}");
        assert!(lines.contains(&"flush chain ip ctr prerouting"));
        assert!(lines.contains(&"add rule ip ctr prerouting meta l4proto . th dport vmap @ports"));
        assert!(lines.contains(&"add rule bridge ctr prerouting iifname vmap @veths"));
    }

    #[test]
    fn listing_keeps_only_our_tables_and_revalidates_keys() {
        let json = br#"{"nftables": [
            {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"table": {"family": "ip", "name": "ctr", "handle": 1}},
            {"chain": {"family": "ip", "table": "ctr", "name": "postrouting", "handle": 3, "hook": "postrouting"}},
            {"chain": {"family": "ip", "table": "ctr", "name": "n-ctr0-egress", "handle": 4}},
            {"rule": {"family": "ip", "table": "ctr", "chain": "n-ctr0-egress", "handle": 7, "comment": "ctr-net:ctr0", "expr": []}},
            {"rule": {"family": "ip", "table": "ctr", "chain": "postrouting", "handle": 8, "expr": []}},
            {"rule": {"family": "ip", "table": "other", "chain": "postrouting", "handle": 10, "comment": "ctr-net:ctr0", "expr": []}},
            {"map": {"family": "ip", "name": "ports", "table": "ctr", "elem": [
                [{"concat": ["tcp", 8080]}, {"jump": {"target": "c-1"}}],
                [{"concat": ["sctp", 1]}, {"jump": {"target": "c-1"}}]]}},
            {"map": {"family": "ip", "name": "net-saddr", "table": "ctr", "elem": [
                [{"prefix": {"addr": "10.88.0.0", "len": 16}}, {"jump": {"target": "n-ctr0-egress"}}]]}},
            {"map": {"family": "bridge", "name": "veths", "table": "ctr", "elem": [
                ["veth0", {"jump": {"target": "c-1"}}],
                ["evil\" }; flush ruleset; {\"", {"jump": {"target": "c-1"}}]]}},
            {"map": {"family": "ip", "name": "ports", "table": "other", "elem": [
                [{"concat": ["tcp", 1]}, {"jump": {"target": "c-1"}}]]}}
        ]}"#;
        let l = parse_listing(json).unwrap();
        assert_eq!(l.rules.len(), 2);
        assert_eq!(l.rules[0], (Family::Ip, "n-ctr0-egress".to_owned(), Some("ctr-net:ctr0".to_owned())));
        assert_eq!(l.chains, [(Family::Ip, "n-ctr0-egress".to_owned())]);
        let jumps: Vec<(Family, &str, &str, &str)> =
            l.jumps.iter().map(|(f, m, k, t)| (*f, *m, k.as_str(), t.as_str())).collect();
        assert_eq!(
            jumps,
            [
                (Family::Ip, "ports", "tcp . 8080", "c-1"),
                (Family::Ip, "net-saddr", "10.88.0.0/16", "n-ctr0-egress"),
                (Family::Bridge, "veths", "\"veth0\"", "c-1"),
            ]
        );
        assert!(parse_listing(b"not json").is_err());
    }

    /// Against the kernel, each in a network namespace of its own (made by
    /// a thread that unshares it; it goes with the thread): what the
    /// netlink messages install is what `nft -f` makes of the same script.
    #[cfg(ctr_net_root_tests)]
    mod kernel {
        use super::*;
        use nix::sched::{unshare, CloneFlags};

        fn in_new_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
            std::thread::scope(|s| {
                s.spawn(|| {
                    unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET): needs root");
                    f()
                })
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
        }

        fn nft_script(script: &str) {
            let fw = Firewall::new().unwrap();
            fw.nft(&["-f", "-"], script, "test script").unwrap();
        }

        /// `nft -j list ruleset` without handles and version information.
        fn ruleset() -> serde_json::Value {
            fn strip(v: &mut serde_json::Value) {
                match v {
                    serde_json::Value::Object(o) => {
                        o.remove("handle");
                        o.values_mut().for_each(strip);
                    }
                    serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
                    _ => {}
                }
            }
            let out = Firewall::new().unwrap().nft(&["-j", "list", "ruleset"], "", "listing").unwrap();
            let mut v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let entries = v["nftables"].as_array_mut().unwrap();
            entries.retain(|e| e.get("metainfo").is_none());
            strip(&mut v);
            v
        }

        fn full_script() -> Script {
            let mut s = Script::with_skeleton();
            network_script(&mut s, &sample_network());
            // A user's network too: it has the isolation chain.
            let own = NetworkRules {
                bridge: BridgeName::parse("ctr3").unwrap(),
                subnet: Subnet::parse("10.89.16.0/20").unwrap(),
            };
            network_script(&mut s, &own);
            container_script(&mut s, &sample_container());
            s
        }

        #[test]
        fn netlink_installs_exactly_what_nft_makes_of_the_script() {
            let s = full_script();
            let by_nft = in_new_netns(|| {
                nft_script(&s.text());
                ruleset()
            });
            let by_netlink = in_new_netns(|| {
                s.batch().commit().unwrap();
                ruleset()
            });
            let rules = by_nft["nftables"].as_array().unwrap().iter().filter(|e| e.get("rule").is_some()).count();
            assert_eq!(rules, 7 + 6 + 6 + 2 + 5, "{by_nft}");
            assert_eq!(by_netlink, by_nft);
        }

        #[test]
        fn netlink_removal_takes_over_tables_nft_made_and_leaves_what_nft_removal_leaves() {
            let c = sample_container();
            let keys = ContainerKeys { owner_uid: 1000, id: &c.id, host_veth: Some(&c.host_veth), ports: &c.ports };
            let mut removal = Script::default();
            remove_container_script(&mut removal, &keys);
            remove_network_script(&mut removal, &sample_network());
            let by_nft = in_new_netns(|| {
                nft_script(&full_script().text());
                nft_script(&removal.text());
                ruleset()
            });
            let by_netlink = in_new_netns(|| {
                // Installed by nft (an older ctr), added to and removed over netlink.
                nft_script(&full_script().text());
                full_script().batch().commit().unwrap();
                removal.batch().commit().unwrap();
                // Again: removal is idempotent.
                removal.batch().commit().unwrap();
                ruleset()
            });
            assert_eq!(by_netlink, by_nft);
            let text = by_netlink.to_string();
            assert!(!text.contains("c-1000-") && !text.contains("n-ctr0-"), "{text}");
            assert!(text.contains("n-ctr3-"), "{text}");
        }

        #[test]
        fn a_start_on_a_set_up_network_is_one_quick_transaction_and_falls_back_when_it_cannot_be() {
            let fw = Firewall::new().unwrap();
            let other = ContainerRules {
                id: id('b'),
                host_veth: InterfaceName::parse("vethbbbbbbbbbbb").unwrap(),
                address: Ipv4Addr::new(10, 88, 0, 3),
                mac: MacAddr::for_container(Ipv4Addr::new(10, 88, 0, 3)),
                ports: vec![],
                ..sample_container()
            };
            let fast = || {
                let mut s = Script::default();
                fast_start(&mut s, Some(&sample_network()), &other);
                s.batch().commit()
            };
            let full = || {
                let mut s = full_script();
                container_script(&mut s, &other);
                s
            };
            let by_full = in_new_netns(|| {
                nft_script(&full().text());
                ruleset()
            });
            let by_fast = in_new_netns(|| {
                // Nothing set up: the fast batch is refused, and changes nothing.
                assert!(fast().is_err());
                assert_eq!(ruleset(), serde_json::json!({"nftables": []}));
                full_script().batch().commit().unwrap();
                // The network set up: the fast batch alone installs the container.
                fast().unwrap();
                // Its chains exist now: a second one is refused, not added to.
                let err = fast().unwrap_err().to_string();
                assert!(err.contains("create chain ip ctr c-1000-bbbb") && err.contains("File exists"), "{err}");
                ruleset()
            });
            assert_eq!(by_fast, by_full);
            in_new_netns(|| {
                // A network whose chains are gone (here: all of ctr's): the
                // public call falls back to the full batch.
                fw.add_network_and_container(&sample_network(), &other).unwrap_or_else(|e| {
                    // The sysctls need the bridge, which this namespace lacks.
                    assert!(matches!(e, FirewallError::Sysctl { .. }), "{e}");
                });
                fw.start(Some(&sample_network()), &other, "test").unwrap();
                fw.start(Some(&sample_network()), &other, "test").unwrap();
                assert_eq!(fw.container_rule_count(1000, &other.id).unwrap(), 5);
            });
        }

        #[test]
        fn a_refused_batch_changes_nothing_and_names_the_message() {
            in_new_netns(|| {
                let mut s = Script::with_skeleton();
                container_script(&mut s, &sample_container());
                s.batch().commit().unwrap();
                let before = ruleset();
                // Another container publishing the same host port.
                let other = ContainerRules {
                    id: id('b'),
                    host_veth: InterfaceName::parse("vethbbbbbbbbbbb").unwrap(),
                    ..sample_container()
                };
                let mut s = Script::with_skeleton();
                container_script(&mut s, &other);
                let err = s.batch().commit().unwrap_err().to_string();
                assert!(err.contains("add element ip ctr ports { tcp . 8080"), "{err}");
                assert!(err.contains("File exists"), "{err}");
                assert_eq!(ruleset(), before);
            });
        }
    }
}
