//! NAT, published ports and anti-spoofing, as nftables rules owned by ctr.
//!
//! # How the rules are applied
//! Always `/usr/sbin/nft -f -` by absolute path, with a fixed argument list
//! and the ruleset on stdin, generated only from validated typed values
//! (addresses, ports, [`Protocol`], [`InterfaceName`], [`ContainerId`]), so
//! nothing a caller controls reaches a command line or can break out of a
//! quoted string in the script. Each change is one `nft -f` batch, which the
//! kernel applies atomically: it happens completely or not at all, so there
//! is nothing to roll back.
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
//! This layout is what keeps a start and a stop to one `nft` run each, with
//! no listing of the ruleset: everything is addressed by name or by map
//! key, never by rule handle. Adding re-declares the tables, chains and
//! maps (`add` is idempotent), flushes the base chains and the chains it
//! fills and writes them afresh, so setup is idempotent and also repairs a
//! flushed chain. Removing a container needs its chain's name and its map
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
use ctr_core::ids::ContainerId;
use std::fmt::{self, Write as _};
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

/// Every base chain, with its table family and definition.
const CHAINS: [(Family, &str, &str); 6] = [
    (Family::Ip, CHAIN_PREROUTING, "type nat hook prerouting priority -100; policy accept;"),
    (Family::Ip, CHAIN_OUTPUT, "type nat hook output priority -100; policy accept;"),
    (Family::Ip, CHAIN_POSTROUTING, "type nat hook postrouting priority 100; policy accept;"),
    (Family::Ip, CHAIN_GUARD, "type filter hook prerouting priority -300; policy accept;"),
    (Family::Ip, CHAIN_FORWARD, "type filter hook forward priority 0; policy accept;"),
    (Family::Bridge, CHAIN_BRIDGE, "type filter hook prerouting priority -200; policy accept;"),
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

/// Every verdict map, with its family and definition.
const MAPS: [(Family, &str, &str); 6] = [
    (Family::Ip, MAP_PORTS, "type inet_proto . inet_service : verdict;"),
    (Family::Ip, MAP_NET_SADDR, "type ipv4_addr : verdict; flags interval;"),
    (Family::Ip, MAP_NET_OIF, "type ifname : verdict;"),
    (Family::Ip, MAP_NET_GUARD, "type ifname : verdict;"),
    (Family::Ip, MAP_NET_FORWARD, "type ifname : verdict;"),
    (Family::Bridge, MAP_VETHS, "type ifname : verdict;"),
];

/// The fixed rules of each base chain: lookups in the maps above. In
/// `postrouting` the egress lookup comes first; a chain that does not
/// match returns, and the next lookup runs.
const DISPATCH: [(Family, &str, &str); 7] = [
    (Family::Ip, CHAIN_PREROUTING, "meta l4proto . th dport vmap @ports"),
    (Family::Ip, CHAIN_OUTPUT, "meta l4proto . th dport vmap @ports"),
    (Family::Ip, CHAIN_POSTROUTING, "ip saddr vmap @net-saddr"),
    (Family::Ip, CHAIN_POSTROUTING, "oifname vmap @net-oif"),
    (Family::Ip, CHAIN_GUARD, "iifname vmap @net-guard"),
    (Family::Ip, CHAIN_FORWARD, "iifname vmap @net-forward"),
    (Family::Bridge, CHAIN_BRIDGE, "iifname vmap @veths"),
];

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("nftables is not installed ({NFT} not found): install nftables (apt-get install nftables)")]
    NotInstalled,
    #[error("running {NFT}: {0}")]
    Spawn(#[source] io::Error),
    #[error("nft refused the {what}: {stderr}")]
    Nft { what: String, stderr: String },
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    fn parse(s: &str) -> Option<Self> {
        match s {
            "ip" => Some(Family::Ip),
            "bridge" => Some(Family::Bridge),
            _ => None,
        }
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
    fn map_and_key(self, net: &NetworkRules) -> (&'static str, String) {
        match self {
            NetChain::Egress => (MAP_NET_SADDR, net.subnet.to_string()),
            NetChain::Out => (MAP_NET_OIF, format!("\"{}\"", net.bridge)),
            NetChain::Guard => (MAP_NET_GUARD, format!("\"{}\"", net.bridge)),
            NetChain::Forward => (MAP_NET_FORWARD, format!("\"{}\"", net.bridge)),
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

/// One nft batch. nft wants a chain declared before a map created in the
/// same batch can jump to it, so chains, maps and the rest are collected
/// apart and written in that order.
#[derive(Default)]
struct Script {
    chains: String,
    maps: String,
    body: String,
}

fn push_line(out: &mut String, args: fmt::Arguments<'_>) {
    out.write_fmt(args).expect("writing to a String");
    out.push('\n');
}

impl Script {
    /// The tables, the base chains and the maps, and the base chains
    /// flushed and given their dispatch rules again: what every adding
    /// batch starts with, so none depends on an earlier one.
    fn with_skeleton() -> Self {
        let mut s = Self::default();
        for (family, chain, definition) in CHAINS {
            push_line(&mut s.chains, format_args!("add chain {} {TABLE} {chain} {{ {definition} }}", family.as_str()));
        }
        s.declare_maps();
        for (family, chain, _) in CHAINS {
            s.line(format_args!("flush chain {} {TABLE} {chain}", family.as_str()));
        }
        for (family, chain, rule) in DISPATCH {
            s.line(format_args!("add rule {} {TABLE} {chain} {rule}", family.as_str()));
        }
        s
    }

    fn declare_maps(&mut self) {
        self.maps.clear();
        for (family, map, definition) in MAPS {
            push_line(&mut self.maps, format_args!("add map {} {TABLE} {map} {{ {definition} }}", family.as_str()));
        }
    }

    fn line(&mut self, args: fmt::Arguments<'_>) {
        push_line(&mut self.body, args);
    }

    /// Declares `chain` and empties it.
    fn fresh_chain(&mut self, family: Family, chain: &str) {
        push_line(&mut self.chains, format_args!("add chain {} {TABLE} {chain}", family.as_str()));
        self.line(format_args!("flush chain {} {TABLE} {chain}", family.as_str()));
    }

    fn rule(&mut self, family: Family, chain: &str, rule: fmt::Arguments<'_>, tag: &str) {
        self.line(format_args!("add rule {} {TABLE} {chain} {rule} comment \"{tag}\"", family.as_str()));
    }

    fn jump(&mut self, family: Family, map: &str, keys: &[String], chain: &str) {
        if keys.is_empty() {
            return;
        }
        let elements: Vec<String> = keys.iter().map(|k| format!("{k} : jump {chain}")).collect();
        self.line(format_args!("add element {} {TABLE} {map} {{ {} }}", family.as_str(), elements.join(", ")));
    }

    /// Removes `chain` and the elements `keys` of `map` that jump to it,
    /// present or not: adding first makes the delete succeed either way.
    fn remove_jumps(&mut self, family: Family, map: &str, keys: &[String], chain: &str) {
        if keys.is_empty() {
            return;
        }
        self.jump(family, map, keys, chain);
        self.line(format_args!("delete element {} {TABLE} {map} {{ {} }}", family.as_str(), keys.join(", ")));
    }

    /// Declares, empties and deletes `chain`: gone, whether or not it was there.
    fn remove_chain(&mut self, family: Family, chain: &str) {
        push_line(&mut self.chains, format_args!("add chain {} {TABLE} {chain}", family.as_str()));
        self.line(format_args!("flush chain {} {TABLE} {chain}", family.as_str()));
        self.line(format_args!("delete chain {} {TABLE} {chain}", family.as_str()));
    }

    /// The batch, with the tables first and the chains before the maps.
    fn text(&self) -> String {
        let mut out = String::new();
        for family in [Family::Ip, Family::Bridge] {
            push_line(&mut out, format_args!("add table {} {TABLE}", family.as_str()));
        }
        out + &self.chains + &self.maps + &self.body
    }
}

fn network_script(script: &mut Script, net: &NetworkRules) {
    let (bridge, subnet, tag) = (&net.bridge, &net.subnet, network_tag(&net.bridge));
    let chain = |c: NetChain| c.name(bridge);
    for c in NetChain::of(bridge) {
        script.fresh_chain(Family::Ip, &chain(c));
    }
    // Egress: the subnet leaves through any other interface as the host.
    let egress = chain(NetChain::Egress);
    script.rule(Family::Ip, &egress, format_args!("oifname != \"{bridge}\" masquerade"), &tag);
    // The host's own connections to 127.0.0.1:<published port> (see module docs).
    let out = chain(NetChain::Out);
    script.rule(Family::Ip, &out, format_args!("ip saddr 127.0.0.0/8 masquerade"), &tag);
    // Hairpin: a container reaching a published port on the host's address.
    script.rule(Family::Ip, &out, format_args!("ip saddr {subnet} ct status dnat masquerade"), &tag);
    // route_localnet must not open the host's loopback services to containers.
    let guard = chain(NetChain::Guard);
    script.rule(Family::Ip, &guard, format_args!("ip daddr 127.0.0.0/8 drop"), &tag);
    // Where br_netfilter is loaded (docker loads it), bridged traffic between
    // two containers passes the IP hooks too; it needs no NAT, so it skips
    // connection tracking. Traffic to the gateway (the host, and hairpin
    // connections to published ports) is still tracked.
    let gateway = subnet.gateway();
    let rule = format_args!("ip saddr {subnet} ip daddr {subnet} ip daddr != {gateway} notrack");
    script.rule(Family::Ip, &guard, rule, &tag);
    // Isolation: nothing is routed from one of ctr's networks into another,
    // except connections to a published port (DNAT) and their replies.
    if NetChain::of(bridge).contains(&NetChain::Forward) {
        let others = format!("{BRIDGE_PREFIX}*");
        let rule = format_args!("oifname \"{others}\" oifname != \"{bridge}\" ct status & dnat == 0 drop");
        script.rule(Family::Ip, &chain(NetChain::Forward), rule, &tag);
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
fn port_keys(ports: &[PortSpec]) -> Vec<String> {
    let mut keys: Vec<String> = ports.iter().map(|p| format!("{} . {}", p.protocol, p.host_port)).collect();
    keys.sort();
    keys.dedup();
    keys
}

fn container_script(script: &mut Script, c: &ContainerRules) {
    let (tag, chain) = (container_tag(c.owner_uid, &c.id), container_chain(c.owner_uid, &c.id));
    script.fresh_chain(Family::Ip, &chain);
    script.fresh_chain(Family::Bridge, &chain);
    for port in &c.ports {
        let (proto, hp, cp, addr) = (port.protocol, port.host_port, port.container_port, c.address);
        let local = match port.host_ip {
            Some(ip) => format!("ip daddr {ip}"),
            None => "fib daddr type local".to_owned(),
        };
        // Reached from both `prerouting` and `output`, through `ports`.
        script.rule(Family::Ip, &chain, format_args!("{local} {proto} dport {hp} dnat to {addr}:{cp}"), &tag);
    }
    script.jump(Family::Ip, MAP_PORTS, &port_keys(&c.ports), &chain);
    // Reached only for frames entering the bridge from this veth.
    let (mac, addr) = (c.mac, c.address);
    script.rule(Family::Bridge, &chain, format_args!("ether saddr != {mac} drop"), &tag);
    script.rule(Family::Bridge, &chain, format_args!("ether type != {{ ip, arp }} drop"), &tag);
    script.rule(Family::Bridge, &chain, format_args!("ip saddr != {addr} drop"), &tag);
    script.rule(Family::Bridge, &chain, format_args!("arp saddr ip != {addr} drop"), &tag);
    script.rule(Family::Bridge, &chain, format_args!("arp saddr ether != {mac} drop"), &tag);
    script.jump(Family::Bridge, MAP_VETHS, &[format!("\"{}\"", c.host_veth)], &chain);
}

fn remove_container_script(script: &mut Script, c: &ContainerKeys<'_>) {
    let chain = container_chain(c.owner_uid, c.id);
    script.declare_maps();
    script.remove_jumps(Family::Ip, MAP_PORTS, &port_keys(c.ports), &chain);
    let veth: Vec<String> = c.host_veth.iter().map(|v| format!("\"{v}\"")).collect();
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

    fn apply(&self, script: &Script, what: &str) -> Result<(), FirewallError> {
        self.nft(&["-f", "-"], &script.text(), what).map(drop)
    }

    /// ctr's tables as they are now (empty if they do not exist).
    fn listing(&self) -> Result<Listing, FirewallError> {
        parse_listing(&self.nft(&["-j", "list", "ruleset"], "", "ruleset listing")?)
    }

    /// The slow path of a removal: lists the ruleset and deletes every
    /// element that jumps to one of `chains`, and the chains themselves.
    fn purge(&self, chains: &[(Family, String)], what: &str) -> Result<(), FirewallError> {
        let listing = self.listing()?;
        let mut script = Script::default();
        for (family, map, key, target) in &listing.jumps {
            if chains.iter().any(|(f, c)| f == family && c == target) {
                script.line(format_args!("delete element {} {TABLE} {map} {{ {key} }}", family.as_str()));
            }
        }
        for (family, chain) in listing.chains.iter().filter(|c| chains.contains(c)) {
            script.line(format_args!("flush chain {} {TABLE} {chain}", family.as_str()));
            script.line(format_args!("delete chain {} {TABLE} {chain}", family.as_str()));
        }
        if script.body.is_empty() {
            return Ok(());
        }
        // Only deletions of what the listing showed: no tables to declare.
        self.nft(&["-f", "-"], &script.body, what).map(drop)
    }

    /// Sets the sysctls a network needs (see the module docs) and installs
    /// its NAT rules. The bridge must exist. Idempotent: one `nft` run.
    pub fn add_network(&self, net: &NetworkRules) -> Result<(), FirewallError> {
        network_sysctls(net)?;
        let mut script = Script::with_skeleton();
        network_script(&mut script, net);
        self.apply(&script, &format!("rules for network {}", net.bridge))
    }

    /// [`add_network`](Self::add_network) and
    /// [`add_container`](Self::add_container) in one batch: all the
    /// firewall work of a container start, in one `nft` run.
    pub fn add_network_and_container(&self, net: &NetworkRules, rules: &ContainerRules) -> Result<(), FirewallError> {
        network_sysctls(net)?;
        let mut script = Script::with_skeleton();
        network_script(&mut script, net);
        container_script(&mut script, rules);
        self.apply(&script, &format!("rules for network {} and container {}", net.bridge, rules.id.short()))
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
    /// replacing any it had. Idempotent: one `nft` run.
    pub fn add_container(&self, rules: &ContainerRules) -> Result<(), FirewallError> {
        let mut script = Script::with_skeleton();
        container_script(&mut script, rules);
        self.apply(&script, &format!("rules for container {}", rules.id.short()))
    }

    /// Removes a container's rules: one `nft` run when `keys` names its
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
        let mut script = Script::default();
        for family in [Family::Ip, Family::Bridge] {
            script.line(format_args!("delete table {} {TABLE}", family.as_str()));
        }
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
            format!("add rule bridge ctr {chain} ether type != {{ ip, arp }} drop {tag}"),
            format!("add rule bridge ctr {chain} ip saddr != 10.88.0.2 drop {tag}"),
            format!("add rule bridge ctr {chain} arp saddr ip != 10.88.0.2 drop {tag}"),
            format!("add rule bridge ctr {chain} arp saddr ether != 02:63:0a:58:00:02 drop {tag}"),
            format!("add element bridge ctr veths {{ \"vethaaaaaaaaaaa\" : jump {chain} }}"),
        ];
        let body: Vec<&str> = s.body.lines().filter(|l| !l.starts_with("flush ")).collect();
        assert_eq!(body, expected_rules);
        assert_eq!(s.chains, format!("add chain ip ctr {chain}\nadd chain bridge ctr {chain}\n"));
    }

    #[test]
    fn container_removal_needs_no_handles_and_succeeds_either_way() {
        let c = sample_container();
        let keys = ContainerKeys { owner_uid: 1000, id: &c.id, host_veth: Some(&c.host_veth), ports: &c.ports };
        let mut s = Script::default();
        remove_container_script(&mut s, &keys);
        let chain = format!("c-1000-{}", "a".repeat(64));
        let body: Vec<&str> = s.body.lines().collect();
        assert_eq!(
            body,
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
        assert!(!s.body.contains("element"));
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
            assert!(s.body.lines().any(|l| l == want), "missing {want:?} in\n{}", s.body);
        }
        assert_eq!(s.body.lines().filter(|l| l.starts_with("add rule")).count(), 6);
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
}
