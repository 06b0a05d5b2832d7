//! Unit tests of [`crate::registry`]: a child module of it, so they reach its
//! private items; kept apart so the privileged code reads on its own.

use super::*;

fn network(owner: u32, name: &str, bridge: &str, subnet: &str) -> UserNetwork {
    UserNetwork {
        owner,
        name: NetworkName::parse(name).unwrap(),
        bridge: BridgeName::parse(bridge).unwrap(),
        subnet: Cidr::parse(subnet).unwrap(),
        created: 7,
    }
}

fn name(s: &str) -> NetworkName {
    NetworkName::parse(s).unwrap()
}

#[test]
fn lines_round_trip_and_damage_is_an_error() {
    let nets = vec![network(1000, "web", "ctr1", "10.89.0.0/24"), network(0, "db", "ctr2", "10.89.1.0/24")];
    let text: String = nets.iter().map(UserNetwork::line).collect();
    assert_eq!(parse(&text).unwrap(), nets);
    for bad in
        ["1000\tweb\tctr1\t10.89.0.0/24\n", "x\tweb\tctr1\t10.89.0.0/24\t1\n", "1\t../a\tctr1\t10.89.0.0/24\t1\n"]
    {
        assert!(parse(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn plans_the_next_free_subnet_and_bridge() {
    let config = HelperConfig::default();
    let nets = vec![network(1000, "web", "ctr1", "10.89.0.0/24"), network(1001, "web", "ctr3", "10.89.2.0/23")];
    let planned = plan(&nets, &config, 1001, name("db"), None, 9).unwrap();
    assert_eq!((planned.bridge.as_str(), planned.subnet.to_string()), ("ctr2", "10.89.1.0/24".to_owned()));
    let asked = plan(&nets, &config, 1000, name("x"), Some(Cidr::parse("10.89.8.0/26").unwrap()), 9).unwrap();
    assert_eq!(asked.subnet.to_string(), "10.89.8.0/26");
    let large = Some(Cidr::parse("10.89.8.0/22").unwrap());
    assert!(plan(&nets, &config, 1000, name("x"), large, 9).is_err(), "a user claimed a /22");
    assert_eq!(plan(&nets, &config, 0, name("x"), large, 9).unwrap().subnet.to_string(), "10.89.8.0/22");
}

#[test]
fn refuses_what_a_user_may_not_have() {
    let config = HelperConfig { max_networks_per_user: 2, ..HelperConfig::default() };
    let nets = vec![network(1000, "web", "ctr1", "10.89.0.0/24"), network(1000, "db", "ctr2", "10.89.1.0/24")];
    let cidr = |s| Some(Cidr::parse(s).unwrap());
    let refusals = [
        plan(&nets, &config, 1001, name("host"), None, 0),
        plan(&nets, &config, 1000, name("web"), None, 0),
        plan(&nets, &config, 1000, name("third"), None, 0),
        plan(&nets, &config, 1001, name("a"), cidr("192.168.1.0/24"), 0),
        plan(&nets, &config, 1001, name("a"), cidr("10.88.0.0/24"), 0),
        plan(&nets, &config, 1001, name("a"), cidr("10.89.0.0/23"), 0),
    ];
    for (i, r) in refusals.into_iter().enumerate() {
        assert!(r.is_err(), "case {i} accepted");
    }
    // Another user may reuse a name.
    assert!(plan(&nets, &config, 1001, name("web"), None, 0).is_ok());
}

#[test]
fn a_full_pool_is_a_clear_error() {
    let config = HelperConfig { user_network_pool: Cidr::parse("10.89.0.0/24").unwrap(), ..HelperConfig::default() };
    let nets = vec![network(1, "a", "ctr1", "10.89.0.0/24")];
    let e = plan(&nets, &config, 2, name("b"), None, 0).unwrap_err();
    assert!(e.to_string().contains("no free"), "{e}");
}
