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
//! # How rules are found and removed
//! Every rule carries a comment: `ctr:<owner uid>:<container id>` for a
//! container's rules (ids are chosen by callers, so the uid keeps one
//! user's id from naming another user's rules), `ctr-net:<bridge>` for a
//! network's. Removal lists the tables as
//! JSON (`nft -j list table ...`), collects the handles of the rules with the
//! matching comment, and deletes them by handle in one batch. Adding rules
//! for a container or network first deletes any rules it already has in the
//! same batch, so setup is idempotent. The caller serialises changes for one
//! container or network (the bridge driver holds the network's lease lock),
//! because two concurrent batches could both try to delete one handle; the
//! loser fails cleanly and changes nothing.
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

/// Every base chain, with its table family and definition. Rules found in
/// any other chain are not ours to touch.
const CHAINS: [(Family, &str, &str); 6] = [
    (Family::Ip, CHAIN_PREROUTING, "type nat hook prerouting priority -100; policy accept;"),
    (Family::Ip, CHAIN_OUTPUT, "type nat hook output priority -100; policy accept;"),
    (Family::Ip, CHAIN_POSTROUTING, "type nat hook postrouting priority 100; policy accept;"),
    (Family::Ip, CHAIN_GUARD, "type filter hook prerouting priority -300; policy accept;"),
    (Family::Ip, CHAIN_FORWARD, "type filter hook forward priority 0; policy accept;"),
    (Family::Bridge, CHAIN_BRIDGE, "type filter hook prerouting priority -200; policy accept;"),
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
}

/// The comment that marks a rule as belonging to one container (of one
/// user) or network.
fn container_tag(uid: u32, id: &ContainerId) -> String {
    format!("ctr:{uid}:{id}")
}

fn network_tag(bridge: &BridgeName) -> String {
    format!("ctr-net:{bridge}")
}

/// An nft script under construction.
#[derive(Default)]
struct Script(String);

impl Script {
    /// Starts with the tables and base chains, so every batch works on a
    /// fresh host and none depends on an earlier one.
    fn with_skeleton() -> Self {
        let mut s = Self::default();
        for family in [Family::Ip, Family::Bridge] {
            s.line(format_args!("add table {} {TABLE}", family.as_str()));
        }
        for (family, chain, definition) in CHAINS {
            s.line(format_args!("add chain {} {TABLE} {chain} {{ {definition} }}", family.as_str()));
        }
        s
    }

    fn line(&mut self, args: fmt::Arguments<'_>) {
        self.0.write_fmt(args).expect("writing to a String");
        self.0.push('\n');
    }

    fn rule(&mut self, family: Family, chain: &str, rule: fmt::Arguments<'_>, tag: &str) {
        self.line(format_args!("add rule {} {TABLE} {chain} {rule} comment \"{tag}\"", family.as_str()));
    }

    fn delete(&mut self, rule: &ListedRule) {
        self.line(format_args!("delete rule {} {TABLE} {} handle {}", rule.family.as_str(), rule.chain, rule.handle));
    }
}

fn network_script(script: &mut Script, net: &NetworkRules) {
    let (bridge, subnet, tag) = (&net.bridge, &net.subnet, network_tag(&net.bridge));
    let post = CHAIN_POSTROUTING;
    // Egress: the subnet leaves through any other interface as the host.
    script.rule(Family::Ip, post, format_args!("ip saddr {subnet} oifname != \"{bridge}\" masquerade"), &tag);
    // The host's own connections to 127.0.0.1:<published port> (see module docs).
    script.rule(Family::Ip, post, format_args!("oifname \"{bridge}\" ip saddr 127.0.0.0/8 masquerade"), &tag);
    // Hairpin: a container reaching a published port on the host's address.
    script.rule(
        Family::Ip,
        post,
        format_args!("oifname \"{bridge}\" ip saddr {subnet} ct status dnat masquerade"),
        &tag,
    );
    // route_localnet must not open the host's loopback services to containers.
    script.rule(Family::Ip, CHAIN_GUARD, format_args!("iifname \"{bridge}\" ip daddr 127.0.0.0/8 drop"), &tag);
    // Where br_netfilter is loaded (docker loads it), bridged traffic between
    // two containers passes the IP hooks too; it needs no NAT, so it skips
    // connection tracking. Traffic to the gateway (the host, and hairpin
    // connections to published ports) is still tracked.
    let gateway = subnet.gateway();
    let rule = format_args!("iifname \"{bridge}\" ip saddr {subnet} ip daddr {subnet} ip daddr != {gateway} notrack");
    script.rule(Family::Ip, CHAIN_GUARD, rule, &tag);
    // Isolation: nothing is routed from one of ctr's networks into another,
    // except connections to a published port (DNAT) and their replies.
    if bridge.as_str().starts_with(BRIDGE_PREFIX) {
        let others = format!("{BRIDGE_PREFIX}*");
        let rule = format_args!(
            "iifname \"{bridge}\" oifname \"{others}\" oifname != \"{bridge}\" ct status & dnat == 0 drop"
        );
        script.rule(Family::Ip, CHAIN_FORWARD, rule, &tag);
    }
}

fn container_script(script: &mut Script, c: &ContainerRules) {
    let tag = container_tag(c.owner_uid, &c.id);
    for port in &c.ports {
        let (proto, hp, cp, addr) = (port.protocol, port.host_port, port.container_port, c.address);
        let local = match port.host_ip {
            Some(ip) => format!("ip daddr {ip}"),
            None => "fib daddr type local".to_owned(),
        };
        for chain in [CHAIN_PREROUTING, CHAIN_OUTPUT] {
            script.rule(Family::Ip, chain, format_args!("{local} {proto} dport {hp} dnat to {addr}:{cp}"), &tag);
        }
    }
    let (veth, mac, addr) = (&c.host_veth, c.mac, c.address);
    let b = CHAIN_BRIDGE;
    script.rule(Family::Bridge, b, format_args!("iifname \"{veth}\" ether saddr != {mac} drop"), &tag);
    script.rule(Family::Bridge, b, format_args!("iifname \"{veth}\" ether type != {{ ip, arp }} drop"), &tag);
    script.rule(Family::Bridge, b, format_args!("iifname \"{veth}\" ip saddr != {addr} drop"), &tag);
    script.rule(Family::Bridge, b, format_args!("iifname \"{veth}\" arp saddr ip != {addr} drop"), &tag);
    script.rule(Family::Bridge, b, format_args!("iifname \"{veth}\" arp saddr ether != {mac} drop"), &tag);
}

/// A rule as `nft -j` lists it, reduced to what removal needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ListedRule {
    family: Family,
    chain: &'static str,
    handle: u64,
    comment: Option<String>,
}

#[derive(serde::Deserialize)]
struct JsonRule {
    family: String,
    table: String,
    chain: String,
    handle: u64,
    comment: Option<String>,
}

/// Parses `nft -j list ...` output, keeping only rules in ctr's own tables
/// and base chains (whose names are then our constants, not the kernel's
/// strings, when they go back into a script).
fn parse_rules(json: &[u8]) -> Result<Vec<ListedRule>, FirewallError> {
    let listing: serde_json::Value = serde_json::from_slice(json).map_err(FirewallError::Json)?;
    let entries = listing.get("nftables").and_then(|v| v.as_array()).map_or(&[][..], |v| v.as_slice());
    let mut rules = Vec::new();
    for rule in entries.iter().filter_map(|e| e.get("rule")) {
        let rule: JsonRule = serde_json::from_value(rule.clone()).map_err(FirewallError::Json)?;
        let known = CHAINS.iter().find(|(f, c, _)| f.as_str() == rule.family && *c == rule.chain);
        if let (Some((family, chain, _)), true) = (known, rule.table == TABLE) {
            rules.push(ListedRule { family: *family, chain, handle: rule.handle, comment: rule.comment });
        }
    }
    Ok(rules)
}

/// Which of ctr's tables exist, from `nft -j list tables`.
fn parse_tables(json: &[u8]) -> Result<Vec<Family>, FirewallError> {
    let listing: serde_json::Value = serde_json::from_slice(json).map_err(FirewallError::Json)?;
    let entries = listing.get("nftables").and_then(|v| v.as_array()).map_or(&[][..], |v| v.as_slice());
    Ok(entries
        .iter()
        .filter_map(|e| e.get("table"))
        .filter(|t| t.get("name").and_then(|n| n.as_str()) == Some(TABLE))
        .filter_map(|t| match t.get("family").and_then(|f| f.as_str()) {
            Some("ip") => Some(Family::Ip),
            Some("bridge") => Some(Family::Bridge),
            _ => None,
        })
        .collect())
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
        self.nft(&["-f", "-"], &script.0, what).map(drop)
    }

    fn existing_tables(&self) -> Result<Vec<Family>, FirewallError> {
        parse_tables(&self.nft(&["-j", "list", "tables"], "", "table listing")?)
    }

    /// Every rule in ctr's tables (none if the tables do not exist), from
    /// one listing of the whole ruleset: one `nft` run instead of one per
    /// table (each run costs milliseconds, and they add up at every start).
    fn rules(&self) -> Result<Vec<ListedRule>, FirewallError> {
        parse_rules(&self.nft(&["-j", "list", "ruleset"], "", "rule listing")?)
    }

    fn tagged(&self, tag: &str) -> Result<Vec<ListedRule>, FirewallError> {
        Ok(self.rules()?.into_iter().filter(|r| r.comment.as_deref() == Some(tag)).collect())
    }

    /// Replaces every rule carrying one of `tags` with what `add` writes,
    /// atomically: one listing and one batch.
    fn replace(&self, tags: &[&str], what: &str, add: impl FnOnce(&mut Script)) -> Result<(), FirewallError> {
        let mut script = Script::with_skeleton();
        for rule in self.rules()?.iter().filter(|r| r.comment.as_deref().is_some_and(|c| tags.contains(&c))) {
            script.delete(rule);
        }
        add(&mut script);
        self.apply(&script, what)
    }

    /// Removes every rule carrying `tag`, atomically. No rules is success.
    fn remove_tagged(&self, tag: &str, what: &str) -> Result<(), FirewallError> {
        let rules = self.tagged(tag)?;
        if rules.is_empty() {
            return Ok(());
        }
        let mut script = Script::default();
        for rule in &rules {
            script.delete(rule);
        }
        self.apply(&script, what)
    }

    /// Sets the sysctls a network needs (see the module docs) and installs
    /// its NAT rules. The bridge must exist. Idempotent.
    pub fn add_network(&self, net: &NetworkRules) -> Result<(), FirewallError> {
        network_sysctls(net)?;
        let what = format!("rules for network {}", net.bridge);
        self.replace(&[&network_tag(&net.bridge)], &what, |s| network_script(s, net))
    }

    /// [`add_network`](Self::add_network) and
    /// [`add_container`](Self::add_container) in one batch: what a container
    /// start needs, in two `nft` runs instead of four.
    pub fn add_network_and_container(&self, net: &NetworkRules, rules: &ContainerRules) -> Result<(), FirewallError> {
        network_sysctls(net)?;
        let what = format!("rules for network {} and container {}", net.bridge, rules.id.short());
        let tags = [network_tag(&net.bridge), container_tag(rules.owner_uid, &rules.id)];
        self.replace(&[&tags[0], &tags[1]], &what, |s| {
            network_script(s, net);
            container_script(s, rules);
        })
    }

    /// Removes a network's rules. Missing rules are success.
    pub fn remove_network(&self, bridge: &BridgeName) -> Result<(), FirewallError> {
        self.remove_tagged(&network_tag(bridge), &format!("removal of network {bridge}'s rules"))
    }

    /// Installs a container's published ports and anti-spoofing rules,
    /// replacing any it had. Idempotent.
    pub fn add_container(&self, rules: &ContainerRules) -> Result<(), FirewallError> {
        let what = format!("rules for container {}", rules.id.short());
        self.replace(&[&container_tag(rules.owner_uid, &rules.id)], &what, |s| container_script(s, rules))
    }

    /// Removes user `uid`'s container `id`'s rules. Missing rules are success.
    pub fn remove_container(&self, uid: u32, id: &ContainerId) -> Result<(), FirewallError> {
        self.remove_tagged(&container_tag(uid, id), &format!("removal of container {}'s rules", id.short()))
    }

    /// How many rules a container has (for checks and tests).
    pub fn container_rule_count(&self, uid: u32, id: &ContainerId) -> Result<usize, FirewallError> {
        Ok(self.tagged(&container_tag(uid, id))?.len())
    }

    /// How many rules ctr's tables hold in all.
    pub fn rule_count(&self) -> Result<usize, FirewallError> {
        Ok(self.rules()?.len())
    }

    /// Deletes both of ctr's tables with whatever they hold; for when the
    /// last network is gone. Missing tables are success.
    pub fn remove_tables(&self) -> Result<(), FirewallError> {
        let mut script = Script::default();
        for family in self.existing_tables()? {
            script.line(format_args!("delete table {} {TABLE}", family.as_str()));
        }
        if script.0.is_empty() {
            return Ok(());
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

    #[test]
    fn container_script_is_built_from_typed_values() {
        let mut s = Script::default();
        container_script(&mut s, &sample_container());
        let tag = format!("comment \"ctr:1000:{}\"", "a".repeat(64));
        let expected = [
            "add rule ip ctr prerouting fib daddr type local tcp dport 8080 dnat to 10.88.0.2:80",
            "add rule ip ctr output fib daddr type local tcp dport 8080 dnat to 10.88.0.2:80",
            "add rule ip ctr prerouting ip daddr 192.0.2.1 udp dport 53 dnat to 10.88.0.2:5353",
            "add rule ip ctr output ip daddr 192.0.2.1 udp dport 53 dnat to 10.88.0.2:5353",
            "add rule bridge ctr prerouting iifname \"vethaaaaaaaaaaa\" ether saddr != 02:63:0a:58:00:02 drop",
            "add rule bridge ctr prerouting iifname \"vethaaaaaaaaaaa\" ether type != { ip, arp } drop",
            "add rule bridge ctr prerouting iifname \"vethaaaaaaaaaaa\" ip saddr != 10.88.0.2 drop",
            "add rule bridge ctr prerouting iifname \"vethaaaaaaaaaaa\" arp saddr ip != 10.88.0.2 drop",
            "add rule bridge ctr prerouting iifname \"vethaaaaaaaaaaa\" arp saddr ether != 02:63:0a:58:00:02 drop",
        ];
        let lines: Vec<&str> = s.0.lines().collect();
        assert_eq!(lines.len(), expected.len());
        for (line, want) in lines.iter().zip(expected) {
            assert_eq!(*line, format!("{want} {tag}"));
        }
    }

    #[test]
    fn network_script_masquerades_and_guards() {
        let mut s = Script::default();
        let net =
            NetworkRules { bridge: BridgeName::parse("ctr0").unwrap(), subnet: Subnet::parse("10.88.0.0/16").unwrap() };
        network_script(&mut s, &net);
        assert!(s.0.contains("add rule ip ctr postrouting ip saddr 10.88.0.0/16 oifname != \"ctr0\" masquerade comment \"ctr-net:ctr0\"\n"));
        assert!(s
            .0
            .contains("add rule ip ctr guard iifname \"ctr0\" ip daddr 127.0.0.0/8 drop comment \"ctr-net:ctr0\"\n"));
        assert!(s.0.contains("add rule ip ctr forward iifname \"ctr0\" oifname \"ctr*\" oifname != \"ctr0\" ct status & dnat == 0 drop comment \"ctr-net:ctr0\"\n"));
        assert!(s.0.contains("add rule ip ctr guard iifname \"ctr0\" ip saddr 10.88.0.0/16 ip daddr 10.88.0.0/16 ip daddr != 10.88.0.1 notrack comment \"ctr-net:ctr0\"\n"));
        assert_eq!(s.0.lines().count(), 6);
    }

    #[test]
    fn skeleton_creates_tables_before_chains() {
        let s = Script::with_skeleton();
        let lines: Vec<&str> = s.0.lines().collect();
        assert_eq!(lines[0], "add table ip ctr");
        assert_eq!(lines[1], "add table bridge ctr");
        assert!(lines[2..].iter().all(|l| l.starts_with("add chain ")));
    }

    #[test]
    fn listing_keeps_only_our_rules_in_our_chains() {
        let json = br#"{"nftables": [
            {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"table": {"family": "ip", "name": "ctr", "handle": 1}},
            {"chain": {"family": "ip", "table": "ctr", "name": "postrouting", "handle": 3}},
            {"rule": {"family": "ip", "table": "ctr", "chain": "postrouting", "handle": 7, "comment": "ctr-net:ctr0", "expr": []}},
            {"rule": {"family": "ip", "table": "ctr", "chain": "postrouting", "handle": 8, "expr": []}},
            {"rule": {"family": "ip", "table": "ctr", "chain": "evil; flush ruleset", "handle": 9, "comment": "ctr-net:ctr0", "expr": []}},
            {"rule": {"family": "ip", "table": "other", "chain": "postrouting", "handle": 10, "comment": "ctr-net:ctr0", "expr": []}}
        ]}"#;
        let rules = parse_rules(json).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].handle, 7);
        assert_eq!(rules[0].comment.as_deref(), Some("ctr-net:ctr0"));
        assert_eq!(rules[1].comment, None);
        let mut s = Script::default();
        s.delete(&rules[0]);
        assert_eq!(s.0, "delete rule ip ctr postrouting handle 7\n");
        assert!(parse_rules(b"not json").is_err());
    }

    #[test]
    fn table_listing_finds_both_families() {
        let json = br#"{"nftables": [{"metainfo": {}}, {"table": {"family": "ip", "name": "ctr", "handle": 1}},
            {"table": {"family": "inet", "name": "filter", "handle": 2}}, {"table": {"family": "bridge", "name": "ctr", "handle": 3}}]}"#;
        assert_eq!(parse_tables(json).unwrap(), vec![Family::Ip, Family::Bridge]);
    }
}
