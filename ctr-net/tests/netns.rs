//! Tests that need root and nftables: links, rules and a whole network, each
//! inside throwaway network namespaces (see `common`). They are ignored
//! unless `CTR_NET_ROOT_TESTS=1` was set when the tests were built and run.

mod common;

use common::{fetch, fetch_eventually, NetNs, Server};
use ctr_core::ids::ContainerId;
use ctr_net::bridge::{AttachRequest, Attachment, BridgeNetwork, NetError, NetworkConfig};
use ctr_net::firewall::{ContainerKeys, ContainerRules, Firewall, NetworkRules, PortSpec, Protocol};
use ctr_net::ipam::{MacAddr, Subnet};
use ctr_net::link::{self, BridgeState, ContainerEnd, LinkError, VethConfig};
use ctr_net::liveness::Liveness;
use ctr_net::names::{BridgeName, InterfaceName, NetworkName};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::BorrowedFd;
use std::time::Duration;

fn id(c: char) -> ContainerId {
    ContainerId::parse(&c.to_string().repeat(64)).unwrap()
}

/// A host veth name for a test container (the helper picks random ones).
fn veth(id: &ContainerId) -> InterfaceName {
    InterfaceName::parse(&format!("veth{}", &id.as_str()[..11])).unwrap()
}

/// Attaches container `id` of uid 1000, owned by this (live) process.
fn attach(
    net: &BridgeNetwork,
    id: &ContainerId,
    netns: BorrowedFd<'_>,
    ports: &[PortSpec],
) -> Result<Attachment, NetError> {
    let me = Liveness::of(std::process::id() as i32).unwrap();
    let host_veth = veth(id);
    net.attach(&AttachRequest {
        id,
        owner_uid: 1000,
        host_veth: &host_veth,
        liveness: &me,
        netns,
        address: None,
        ports,
    })
}

/// Configures the container end of `attached` inside `ns`, as `ctr init`
/// does inside a container.
fn configure(ns: &NetNs, attached: Attachment) -> Attachment {
    ns.run(|| link::configure_container_end(&attached.container_end())).unwrap();
    attached
}

fn bridge(name: &str) -> BridgeName {
    BridgeName::parse(name).unwrap()
}

fn subnet(s: &str) -> Subnet {
    Subnet::parse(s).unwrap()
}

fn sorted_links(ns: &NetNs) -> Vec<String> {
    let mut names = ns.run(link::link_names).unwrap();
    names.sort();
    names
}

#[test]
#[cfg_attr(not(ctr_net_root_tests), ignore = "needs root: set CTR_NET_ROOT_TESTS=1")]
fn bridge_setup_is_idempotent_and_checks_kind_and_address() {
    assert!(common::enabled());
    let host = NetNs::new();
    let br = bridge("ctrt0");
    host.run(|| {
        assert_eq!(link::ensure_bridge(&br, &subnet("10.90.0.0/24")).unwrap(), BridgeState::Created);
        assert_eq!(link::ensure_bridge(&br, &subnet("10.90.0.0/24")).unwrap(), BridgeState::Existing);
        let err = link::ensure_bridge(&br, &subnet("10.91.0.0/24")).unwrap_err();
        assert!(matches!(err, LinkError::BridgeAddress { .. }), "{err}");
        assert!(err.to_string().contains("10.90.0.1/24"), "{err}");
    });
    host.ip(&["link", "add", "notabr", "type", "veth", "peer", "name", "notabr-p"]);
    host.run(|| {
        let err = link::ensure_bridge(&bridge("notabr"), &subnet("10.92.0.0/24")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "notabr exists but is a veth device, not a bridge: remove it or choose another name"
        );
        assert!(link::delete_bridge(&bridge("notabr")).is_err(), "deleted a veth as a bridge");
        link::delete_bridge(&br).unwrap();
        link::delete_bridge(&br).unwrap();
    });
    assert_eq!(sorted_links(&host), ["lo", "notabr", "notabr-p"]);
}

#[test]
#[cfg_attr(not(ctr_net_root_tests), ignore = "needs root: set CTR_NET_ROOT_TESTS=1")]
fn veth_is_created_into_the_namespace_and_deleted() {
    let (host, container) = (NetNs::new(), NetNs::new());
    let (br, net) = (bridge("ctrt1"), subnet("10.93.0.0/24"));
    let addr = Ipv4Addr::new(10, 93, 0, 2);
    let veth = VethConfig::for_container(&veth(&id('a')), &br, addr);
    host.run(|| {
        let err = link::create_veth(&veth, container.fd()).unwrap_err();
        assert!(matches!(err, LinkError::NoBridge(_)), "{err}");
        link::ensure_bridge(&br, &net).unwrap();
        link::create_veth(&veth, container.fd()).unwrap();
    });
    assert_eq!(sorted_links(&host), ["ctrt1", "lo", "vethaaaaaaaaaaa"]);
    assert_eq!(sorted_links(&container), ["eth0", "lo"]);
    // (Not /sys/class/net: sysfs shows the namespace it was mounted in.)
    let eth0 = container.ip_output(&["-o", "link", "show", "eth0"]);
    assert!(eth0.contains(&format!("link/ether {}", MacAddr::for_container(addr))), "{eth0}");
    // The host side leaves the container end alone: down, no address.
    assert!(!eth0.contains(",UP"), "{eth0}");
    assert_eq!(container.ip_output(&["-4", "-o", "addr", "show", "eth0"]), "");
    let host_end = host.ip_output(&["-o", "link", "show", "vethaaaaaaaaaaa"]);
    assert!(host_end.contains("master ctrt1") && host_end.contains(",UP"), "{host_end}");
    container.run(|| link::configure_container_end(&ContainerEnd::eth0(addr, 24, net.gateway()))).unwrap();
    let eth0 = container.ip_output(&["-o", "link", "show", "eth0"]);
    assert!(eth0.contains(",UP,"), "{eth0}");
    let routes = container.ip_output(&["-4", "route"]);
    assert!(routes.contains("default via 10.93.0.1 dev eth0"), "{routes}");
    let _server = Server::start(&container, SocketAddrV4::new(addr, 80), "c");
    assert!(fetch_eventually(&host, SocketAddrV4::new(addr, 80)).starts_with("c 10.93.0.1"));

    host.run(|| {
        assert!(link::delete_veth(&InterfaceName::parse("ctrt1").unwrap()).is_err(), "deleted a bridge as a veth");
        link::delete_veth(&veth.host).unwrap();
        link::delete_veth(&veth.host).unwrap();
    });
    assert_eq!(sorted_links(&host), ["ctrt1", "lo"]);
    assert_eq!(sorted_links(&container), ["lo"]);
}

#[test]
#[cfg_attr(not(ctr_net_root_tests), ignore = "needs root: set CTR_NET_ROOT_TESTS=1")]
fn failed_veth_setup_is_rolled_back() {
    let (host, container) = (NetNs::new(), NetNs::new());
    let (br, net) = (bridge("ctrt2"), subnet("10.94.0.0/24"));
    // The container already has an eth0, so the peer cannot be created there.
    container.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "eth0-p"]);
    let veth = VethConfig::for_container(&veth(&id('b')), &br, Ipv4Addr::new(10, 94, 0, 2));
    host.run(|| {
        link::ensure_bridge(&br, &net).unwrap();
        let err = link::create_veth(&veth, container.fd()).unwrap_err();
        assert!(err.to_string().contains("exists already"), "{err}");
    });
    assert_eq!(sorted_links(&host), ["ctrt2", "lo"]);

    assert_eq!(sorted_links(&container), ["eth0", "eth0-p", "lo"]);
}

/// The container end is configured from inside its namespace (as `ctr
/// init` does): `lo` and `eth0` up, the address, the default route; what
/// is missing or in the way is an error naming it.
#[test]
#[cfg_attr(not(ctr_net_root_tests), ignore = "needs root: set CTR_NET_ROOT_TESTS=1")]
fn the_container_end_is_configured_from_inside() {
    let container = NetNs::new();
    container.ip(&["link", "set", "lo", "down"]);
    let end = ContainerEnd::eth0(Ipv4Addr::new(10, 94, 0, 7), 24, Ipv4Addr::new(10, 94, 0, 1));
    let err = container.run(|| link::configure_container_end(&end)).unwrap_err();
    assert_eq!(err.to_string(), "eth0 vanished while it was being configured");
    container.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "eth0-p"]);
    container.ip(&["link", "set", "eth0-p", "up"]);
    container.run(|| link::configure_container_end(&end)).unwrap();
    for name in ["lo", "eth0"] {
        let link = container.ip_output(&["-o", "link", "show", name]);
        assert!(link.contains(",UP"), "{link}");
    }
    let addr = container.ip_output(&["-4", "-o", "addr", "show", "eth0"]);
    assert!(addr.contains("inet 10.94.0.7/24 "), "{addr}");
    let routes = container.ip_output(&["-4", "route"]);
    assert!(routes.contains("default via 10.94.0.1 dev eth0"), "{routes}");
    // A second run finds its own address in the way: init runs it once.
    let err = container.run(|| link::configure_container_end(&end)).unwrap_err();
    assert!(err.to_string().starts_with("adding 10.94.0.7/24 to eth0: File exists"), "{err}");

    // A default route already there is refused, not replaced.
    let other = NetNs::new();
    other.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "eth0-p"]);
    other.ip(&["link", "add", "x0", "type", "veth", "peer", "name", "x1"]);
    other.ip(&["link", "set", "x0", "up"]);
    other.ip(&["route", "add", "default", "dev", "x0"]);
    let err = other.run(|| link::configure_container_end(&end)).unwrap_err();
    assert!(err.to_string().starts_with("adding the default route via 10.94.0.1: File exists"), "{err}");
}

#[test]
#[cfg_attr(not(ctr_net_root_tests), ignore = "needs root: set CTR_NET_ROOT_TESTS=1")]
fn firewall_rules_are_idempotent_and_removed_by_tag() {
    let host = NetNs::new();
    let br = bridge("ctrt3");
    let net = NetworkRules { bridge: br.clone(), subnet: subnet("10.95.0.0/24") };
    let addr = Ipv4Addr::new(10, 95, 0, 2);
    let container = ContainerRules {
        owner_uid: 1000,
        id: id('c'),
        host_veth: InterfaceName::parse("vethccccccccccc").unwrap(),
        address: addr,
        mac: MacAddr::for_container(addr),
        ports: vec![PortSpec { host_ip: None, host_port: 8080, container_port: 80, protocol: Protocol::Tcp }],
    };
    host.run(|| link::ensure_bridge(&br, &net.subnet)).unwrap();
    // A new namespace copies ip_forward from the host's (devconf_inherit_init_net
    // 0); start from 0 here so that the check below sees this test's write.
    host.run(|| std::fs::write("/proc/sys/net/ipv4/ip_forward", "0")).unwrap();
    assert_eq!(host.read("/proc/sys/net/ipv4/ip_forward"), "0");
    host.run(|| {
        let fw = Firewall::new().unwrap();
        fw.add_network(&net).unwrap();
        fw.add_network(&net).unwrap();
        assert_eq!(fw.rule_count().unwrap(), 6);
        fw.add_container(&container).unwrap();
        fw.add_container(&container).unwrap();
        // 1 DNAT rule (reached from prerouting and output) and 5 anti-spoofing.
        assert_eq!(fw.container_rule_count(1000, &container.id).unwrap(), 6);
        assert_eq!(fw.rule_count().unwrap(), 12);
        // The network's 4 chains, the port's and the veth's.
        assert_eq!(fw.jump_count().unwrap(), 6);
        let keys = ContainerKeys {
            owner_uid: 1000,
            id: &container.id,
            host_veth: Some(&container.host_veth),
            ports: &container.ports,
        };
        fw.remove_container(&keys).unwrap();
        fw.remove_container(&keys).unwrap();
        assert_eq!(fw.rule_count().unwrap(), 6);
        assert_eq!(fw.jump_count().unwrap(), 4);
        fw.remove_network(&net).unwrap();
        fw.remove_network(&net).unwrap();
        assert_eq!(fw.rule_count().unwrap(), 0);
        assert_eq!(fw.jump_count().unwrap(), 0);
        // Without the keys, removal finds the elements by listing.
        fw.add_network(&net).unwrap();
        fw.add_container(&container).unwrap();
        fw.remove_container(&ContainerKeys { host_veth: None, ports: &[], ..keys }).unwrap();
        assert_eq!(fw.container_rule_count(1000, &container.id).unwrap(), 0);
        assert_eq!(fw.jump_count().unwrap(), 4);
        fw.remove_tables().unwrap();
        fw.remove_tables().unwrap();
        assert_eq!(fw.rule_count().unwrap(), 0);
    });
    // The sysctls were set in the test namespace, not the host's.
    assert_eq!(host.read("/proc/sys/net/ipv4/ip_forward"), "1");
    assert_eq!(host.read("/proc/sys/net/ipv4/conf/ctrt3/route_localnet"), "1");
}

#[test]
#[cfg_attr(not(ctr_net_root_tests), ignore = "needs root: set CTR_NET_ROOT_TESTS=1")]
fn failed_attach_leaves_nothing_and_reclaim_cleans_up() {
    let (host, a, b) = (NetNs::new(), NetNs::new(), NetNs::new());
    let leases = tempfile::tempdir().unwrap();
    let config = NetworkConfig {
        name: NetworkName::parse("rb").unwrap(),
        bridge: bridge("ctrt4"),
        subnet: subnet("10.96.0.0/24"),
        max_leases_per_uid: None,
    };
    let net = BridgeNetwork::new(config, leases.path()).unwrap();
    b.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "eth0-p"]);
    let ports = [PortSpec { host_ip: None, host_port: 18081, container_port: 80, protocol: Protocol::Tcp }];
    let (id_a, id_b) = (id('a'), id('b'));
    host.run(|| {
        net.setup().unwrap();
        let err = attach(&net, &id_b, b.fd(), &ports).unwrap_err();
        assert!(err.to_string().contains("exists already"), "{err}");
        assert!(net.leases().unwrap().is_empty(), "a failed attach saved its lease");
        attach(&net, &id_a, a.fd(), &ports).unwrap();
        let fw = Firewall::new().unwrap();
        assert_eq!(fw.container_rule_count(1000, &id_a).unwrap(), 6);
        assert_eq!(fw.container_rule_count(1000, &id_b).unwrap(), 0);

        // The container is gone: reclaim removes its veth, rules and lease.
        let freed = net.reclaim(|lease| lease.container_id != id_a).unwrap();
        assert_eq!(freed.len(), 1);
        assert_eq!(freed[0].1.container_id, id_a);
        assert!(net.leases().unwrap().is_empty());
        assert_eq!(fw.container_rule_count(1000, &id_a).unwrap(), 0);
    });
    assert_eq!(sorted_links(&host), ["ctrt4", "lo"]);
    assert_eq!(sorted_links(&a), ["lo"]);
    host.run(|| net.teardown()).unwrap();
    assert_eq!(sorted_links(&host), ["lo"]);
}

/// CVE-2026-39402's class: user 2000 names user 1000's container id and
/// even its veth. The clash fails without touching 1000's veth, rules or
/// lease, and 2000's teardown of its own (failed) container cannot reach
/// them either; a dead owner's lease is cleaned by the next attach.
#[test]
#[cfg_attr(not(ctr_net_root_tests), ignore = "needs root: set CTR_NET_ROOT_TESTS=1")]
fn a_colliding_id_and_veth_name_cannot_touch_another_users_attachment() {
    let (host, a, b, c) = (NetNs::new(), NetNs::new(), NetNs::new(), NetNs::new());
    let leases = tempfile::tempdir().unwrap();
    let config = NetworkConfig {
        name: NetworkName::parse("cv").unwrap(),
        bridge: bridge("ctrt6"),
        subnet: subnet("10.97.0.0/24"),
        max_leases_per_uid: None,
    };
    let net = BridgeNetwork::new(config, leases.path()).unwrap();
    let ports = [PortSpec { host_ip: None, host_port: 18082, container_port: 80, protocol: Protocol::Tcp }];
    let shared = id('e');
    let name = veth(&shared);
    let me = Liveness::of(std::process::id() as i32).unwrap();
    let dead = Liveness { start_time: me.start_time + 1, ..me.clone() };
    host.run(|| {
        let req = |uid, netns, liveness| AttachRequest {
            id: &shared,
            owner_uid: uid,
            host_veth: &name,
            liveness,
            netns,
            address: None,
            ports: &ports,
        };
        net.attach(&req(1000, a.fd(), &me)).unwrap();
        let err = net.attach(&req(2000, b.fd(), &me)).unwrap_err();
        assert!(matches!(err, NetError::Link(LinkError::Exists(_))), "{err}");
        net.detach(2000, &shared, Some(&name)).unwrap();
        let fw = Firewall::new().unwrap();
        assert_eq!(fw.container_rule_count(1000, &shared).unwrap(), 6);
        assert_eq!(fw.container_rule_count(2000, &shared).unwrap(), 0);
        let leases = net.leases().unwrap();
        assert_eq!(leases.len(), 1);
        assert!(leases.lease_of(1000, &shared).is_some());
        // User 1000's container dies: user 2000's next attach cleans it
        // (rules and veth, then the lease) before taking an address.
        net.detach(1000, &shared, None).unwrap();
        net.attach(&req(1000, a.fd(), &dead)).unwrap();
        let other = InterfaceName::parse("vethother000001").unwrap();
        let alive = AttachRequest { owner_uid: 2000, host_veth: &other, netns: c.fd(), ..req(2000, c.fd(), &me) };
        net.attach(&alive).unwrap();
        assert_eq!(fw.container_rule_count(1000, &shared).unwrap(), 0);
        assert!(net.leases().unwrap().lease_of(1000, &shared).is_none());
        net.detach(2000, &shared, None).unwrap();
    });
    assert_eq!(sorted_links(&a), ["lo"]);
    host.run(|| net.teardown()).unwrap();
    assert_eq!(sorted_links(&host), ["lo"]);
}

/// Makes `ns` send traffic for 127.0.0.1 to its gateway, as a hostile
/// container could, or undoes that.
fn route_loopback_via_gateway(ns: &NetNs, on: bool) {
    if on {
        ns.ip(&["route", "add", "127.0.0.1/32", "via", "10.89.0.1", "dev", "eth0", "table", "100"]);
        ns.ip(&["rule", "add", "pref", "10", "to", "127.0.0.1", "lookup", "100"]);
        // The local table must come after rule 10 for 127.0.0.1 to leave.
        ns.ip(&["rule", "add", "pref", "100", "lookup", "local"]);
        ns.ip(&["rule", "del", "pref", "0", "lookup", "local"]);
        ns.run(|| std::fs::write("/proc/sys/net/ipv4/conf/eth0/route_localnet", "1")).unwrap();
    } else {
        ns.ip(&["rule", "add", "pref", "0", "lookup", "local"]);
        ns.ip(&["rule", "del", "pref", "100", "lookup", "local"]);
        ns.ip(&["rule", "del", "pref", "10"]);
    }
}

/// The whole story: a "host" namespace with a bridge network, two
/// "containers", an "outside" host reached through a second network, a
/// published port, anti-spoofing, and a teardown that leaves nothing behind.
#[test]
#[cfg_attr(not(ctr_net_root_tests), ignore = "needs root: set CTR_NET_ROOT_TESTS=1")]
fn end_to_end() {
    let (host, a, b, outside) = (NetNs::new(), NetNs::new(), NetNs::new(), NetNs::new());
    let leases = tempfile::tempdir().unwrap();
    let config = NetworkConfig {
        name: NetworkName::parse("e2e").unwrap(),
        bridge: bridge("ctre2e0"),
        subnet: subnet("10.89.0.0/24"),
        max_leases_per_uid: Some(2),
    };
    let net = BridgeNetwork::new(config, leases.path()).unwrap();
    // An "uplink" network whose only member plays a host on the internet.
    let uplink_config = NetworkConfig {
        name: NetworkName::parse("uplink").unwrap(),
        // Not a `ctr*` name: ctr isolates its own networks from each other.
        bridge: bridge("uplink0"),
        subnet: subnet("10.99.0.0/24"),
        max_leases_per_uid: None,
    };
    let uplink = BridgeNetwork::new(uplink_config, leases.path()).unwrap();
    let (id_a, id_b, id_d, id_out) = (id('a'), id('b'), id('d'), id('f'));
    let ports = [PortSpec { host_ip: None, host_port: 18080, container_port: 80, protocol: Protocol::Tcp }];

    let (att_a, att_b, att_out) = host.run(|| {
        net.setup().unwrap();
        net.setup().unwrap();
        uplink.setup().unwrap();
        let att_a = attach(&net, &id_a, a.fd(), &ports).unwrap();
        let att_b = attach(&net, &id_b, b.fd(), &[]).unwrap();
        // The per-user limit (2) is enforced, and the refusal leaves nothing.
        let err = attach(&net, &id_d, outside.fd(), &[]).unwrap_err();
        assert!(err.to_string().contains("already has 2 containers"), "{err}");
        let att_out = attach(&uplink, &id_out, outside.fd(), &[]).unwrap();
        (att_a, att_b, att_out)
    });
    let (att_a, att_b) = (configure(&a, att_a), configure(&b, att_b));
    configure(&outside, att_out);
    assert_eq!(att_a.address, Ipv4Addr::new(10, 89, 0, 2));
    assert_eq!(att_b.address, Ipv4Addr::new(10, 89, 0, 3));
    assert_eq!(att_a.gateway, Ipv4Addr::new(10, 89, 0, 1));
    let gateway = att_a.gateway;
    let at = |ip, port| SocketAddrV4::new(ip, port);

    let _server_a = Server::start(&a, at(Ipv4Addr::UNSPECIFIED, 80), "A");
    let _server_b = Server::start(&b, at(Ipv4Addr::UNSPECIFIED, 80), "B");
    let _server_out = Server::start(&outside, at(Ipv4Addr::UNSPECIFIED, 80), "OUT");

    // Containers reach each other directly over the bridge.
    assert_eq!(fetch_eventually(&b, at(att_a.address, 80)), "A 10.89.0.3");
    assert_eq!(fetch_eventually(&a, at(att_b.address, 80)), "B 10.89.0.2");
    // The host reaches each container from its bridge address.
    assert_eq!(fetch_eventually(&host, at(att_a.address, 80)), "A 10.89.0.1");
    assert_eq!(fetch_eventually(&host, at(att_b.address, 80)), "B 10.89.0.1");
    // Egress: default route, forwarding and masquerade; the outside host
    // sees the host's uplink address, not the container's.
    assert_eq!(fetch_eventually(&a, at(Ipv4Addr::new(10, 99, 0, 2), 80)), "OUT 10.99.0.1");

    // The published port, from the host itself: via 127.0.0.1 (DNAT in
    // output, route_localnet, masquerade: A sees the gateway) and via the
    // gateway address.
    assert_eq!(fetch_eventually(&host, at(Ipv4Addr::LOCALHOST, 18080)), "A 10.89.0.1");
    assert_eq!(fetch_eventually(&host, at(gateway, 18080)), "A 10.89.0.1");
    // From the outside host, to the host's uplink address (DNAT in
    // prerouting). "outside" is itself on a ctr network, whose egress rule
    // masquerades it as it leaves for the other bridge.
    assert_eq!(fetch_eventually(&outside, at(Ipv4Addr::new(10, 99, 0, 1), 18080)), "A 10.89.0.1");
    // Hairpin: container B through the published port on the gateway.
    assert_eq!(fetch_eventually(&b, at(gateway, 18080)), "A 10.89.0.1");
    // The route_localnet guard (CVE-2020-8558): B routes 127.0.0.1 to the
    // host, which must not deliver it to its loopback services.
    let _host_lo = Server::start(&host, at(Ipv4Addr::LOCALHOST, 9999), "LO");
    route_loopback_via_gateway(&b, true);
    let blocked = fetch(&b, at(Ipv4Addr::LOCALHOST, 9999), Duration::from_millis(700));
    assert!(blocked.is_err(), "a container reached the host's 127.0.0.1: {blocked:?}");
    // Control: without the guard the same packets get through.
    host.run(|| std::process::Command::new("/usr/sbin/nft").args(["flush", "chain", "ip", "ctr", "guard"]).status())
        .unwrap();
    assert_eq!(fetch_eventually(&b, at(Ipv4Addr::LOCALHOST, 9999)), "LO 10.89.0.3");
    host.run(|| net.setup()).unwrap();
    assert!(fetch(&b, at(Ipv4Addr::LOCALHOST, 9999), Duration::from_millis(700)).is_err());
    route_loopback_via_gateway(&b, false);

    // Anti-spoofing: B takes another address and can no longer reach A.
    b.ip(&["addr", "del", "10.89.0.3/24", "dev", "eth0"]);
    b.ip(&["addr", "add", "10.89.0.200/24", "dev", "eth0"]);
    let spoofed = fetch(&b, at(att_a.address, 80), Duration::from_secs(1));
    assert!(spoofed.is_err(), "spoofed source reached A: {spoofed:?}");
    // Control: without B's rules the same spoofed traffic gets through, so
    // it was the anti-spoofing rules that stopped it.
    let keys_b = ContainerKeys { owner_uid: 1000, id: &id_b, host_veth: Some(&att_b.host_veth), ports: &[] };
    host.run(|| Firewall::new().unwrap().remove_container(&keys_b)).unwrap();
    assert_eq!(fetch_eventually(&b, at(att_a.address, 80)), "A 10.89.0.200");
    // And a spoofed MAC is dropped too: A's rules are still in place, so A
    // taking B's MAC cuts it off.
    a.ip(&["link", "set", "eth0", "address", &att_b.mac.to_string()]);
    assert!(fetch(&a, at(gateway, 18080), Duration::from_secs(1)).is_err());

    // Teardown: everything goes, nothing remains.
    host.run(|| {
        net.detach(1000, &id_a, None).unwrap();
        net.detach(1000, &id_a, None).unwrap();
        net.teardown().unwrap();
        uplink.teardown().unwrap();
        let fw = Firewall::new().unwrap();
        assert_eq!(fw.rule_count().unwrap(), 0);
        assert_eq!(fw.jump_count().unwrap(), 0);
        fw.remove_tables().unwrap();
    });
    assert_eq!(sorted_links(&host), ["lo"]);
    for ns in [&a, &b, &outside] {
        assert_eq!(sorted_links(ns), ["lo"]);
    }
    assert!(net.leases().unwrap().is_empty());
    assert!(uplink.leases().unwrap().is_empty());
    let tables = host.run(|| std::process::Command::new("/usr/sbin/nft").args(["list", "ruleset"]).output()).unwrap();
    assert!(tables.stdout.is_empty(), "{}", String::from_utf8_lossy(&tables.stdout));
}

#[test]
#[cfg_attr(not(ctr_net_root_tests), ignore = "needs root: set CTR_NET_ROOT_TESTS=1")]
fn ctr_networks_are_isolated_except_through_published_ports() {
    let (host, x, y) = (NetNs::new(), NetNs::new(), NetNs::new());
    let leases = tempfile::tempdir().unwrap();
    let network = |name: &str, br: &str, net: &str| {
        let config = NetworkConfig {
            name: NetworkName::parse(name).unwrap(),
            bridge: bridge(br),
            subnet: subnet(net),
            max_leases_per_uid: None,
        };
        BridgeNetwork::new(config, leases.path()).unwrap()
    };
    let (one, two) = (network("one", "ctr1", "10.89.1.0/24"), network("two", "ctr2", "10.89.2.0/24"));
    let (id_x, id_y) = (id('1'), id('2'));
    let ports = [PortSpec { host_ip: None, host_port: 18081, container_port: 80, protocol: Protocol::Tcp }];
    let (att_x, att_y) = host.run(|| {
        one.setup().unwrap();
        two.setup().unwrap();
        (attach(&one, &id_x, x.fd(), &[]).unwrap(), attach(&two, &id_y, y.fd(), &ports).unwrap())
    });
    let (att_x, att_y) = (configure(&x, att_x), configure(&y, att_y));
    let at = SocketAddrV4::new;
    let _server_x = Server::start(&x, at(Ipv4Addr::UNSPECIFIED, 80), "X");
    let _server_y = Server::start(&y, at(Ipv4Addr::UNSPECIFIED, 80), "Y");
    // The host reaches both (so both are up), and Y's published port works.
    assert_eq!(fetch_eventually(&host, at(att_y.address, 80)), "Y 10.89.2.1");
    assert_eq!(fetch_eventually(&host, at(att_x.address, 80)), "X 10.89.1.1");
    // X reaches Y only through the published port on the host's address.
    assert_eq!(fetch_eventually(&x, at(att_y.gateway, 18081)).split(' ').next(), Some("Y"));
    assert!(fetch(&x, at(att_y.address, 80), Duration::from_secs(1)).is_err(), "network one reached two");
    assert!(fetch(&y, at(att_x.address, 80), Duration::from_secs(1)).is_err(), "network two reached one");
    // Control: without the networks' rules Y reaches X, so the rules did it.
    host.run(|| {
        let fw = Firewall::new().unwrap();
        let rules = |n: &BridgeNetwork| NetworkRules { bridge: n.config().bridge.clone(), subnet: n.config().subnet };
        fw.remove_network(&rules(&one)).and_then(|()| fw.remove_network(&rules(&two)))
    })
    .unwrap();
    assert_eq!(fetch_eventually(&y, at(att_x.address, 80)).split(' ').next(), Some("X"));
    host.run(|| {
        one.teardown().unwrap();
        two.teardown().unwrap();
        Firewall::new().unwrap().remove_tables().unwrap();
    });
    assert_eq!(sorted_links(&host), ["lo"]);
}
