//! A container's /etc/resolv.conf and /etc/hosts, as docker builds them
//! (issue 14, item 1), as the unprivileged test user through the setuid
//! helper: the host's nameservers minus loopback ones by default, `--dns`,
//! `--dns-search`, `--dns-option` and `--add-host` (with host-gateway) on
//! top, and the host's own files with `--network host`.

use ctr_tests::{env, Env};

/// The container's resolv.conf and hosts, and the default gateway it sees.
fn files_in(env: &Env, flags: &[&str]) -> (String, String, String, String) {
    let out = env
        .ctr()
        .args(["run", "--rm"])
        .args(flags)
        .args([
            "busybox",
            "sh",
            "-c",
            "cat /etc/resolv.conf; echo @@; cat /etc/hosts; echo @@; ip route | awk '/^default/ {print $3}'",
        ])
        .output();
    assert_eq!(out.code(), Some(0), "{}\n{}", out.stdout, out.stderr);
    let parts: Vec<&str> = out.stdout.split("@@\n").collect();
    assert_eq!(parts.len(), 3, "{}", out.stdout);
    (parts[0].to_owned(), parts[1].to_owned(), parts[2].trim().to_owned(), out.stderr)
}

fn nameservers(resolv: &str) -> Vec<String> {
    resolv.lines().filter_map(|l| l.strip_prefix("nameserver ")).map(|s| s.trim().to_owned()).collect()
}

#[test]
fn dns_flags_and_add_host_with_host_gateway_shape_the_containers_files() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let (resolv, hosts, gateway, _) = files_in(
        &env,
        &[
            "--dns",
            "192.0.2.53",
            "--dns",
            "192.0.2.54",
            "--dns-search",
            "corp.example",
            "--dns-option",
            "ndots:2",
            "--add-host",
            "db.internal:198.51.100.7",
            "--add-host",
            "host.ctr.internal:host-gateway",
        ],
    );
    assert_eq!(nameservers(&resolv), ["192.0.2.53", "192.0.2.54"], "{resolv}");
    assert!(resolv.lines().any(|l| l == "search corp.example"), "{resolv}");
    assert!(resolv.lines().any(|l| l == "options ndots:2"), "{resolv}");
    assert!(hosts.lines().any(|l| l == "198.51.100.7\tdb.internal"), "{hosts}");
    assert!(!gateway.is_empty(), "no default route in the container");
    assert!(hosts.lines().any(|l| l == format!("{gateway}\thost.ctr.internal")), "gateway {gateway}:\n{hosts}");

    // host-gateway is the host: the name answers from inside the container.
    let ping = env
        .ctr()
        .args(["run", "--rm", "--add-host", "host.ctr.internal:host-gateway", "busybox"])
        .args(["sh", "-c", "ping -c1 -W2 host.ctr.internal >/dev/null && echo reached-host"])
        .output();
    assert!(ping.stdout.contains("reached-host"), "{}\n{}", ping.stdout, ping.stderr);

    // Bad values are refused before anything starts, as usage errors.
    for flags in [["--dns", "not-an-ip"], ["--add-host", "no-address"], ["--dns-search", "a\nnameserver 1.2.3.4"]] {
        let out = env.ctr().args(["run", "--rm"]).args(flags).args(["busybox", "true"]).output();
        assert_eq!(out.code(), Some(125), "{flags:?}: {}", out.stderr);
        assert!(out.stderr.contains(flags[0]), "{flags:?}: {}", out.stderr);
    }
    let none = env.ctr().args(["run", "--rm", "--network", "none", "--add-host", "h:host-gateway", "busybox", "true"]);
    let out = none.output();
    assert_eq!(out.code(), Some(125), "{}", out.stderr);
    assert!(out.stderr.contains("host-gateway needs a network"), "{}", out.stderr);
}

#[test]
fn default_resolv_conf_is_the_hosts_without_loopback_nameservers() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let reachable: Vec<String> = nameservers(&host)
        .into_iter()
        .filter(|a| a.parse::<std::net::Ipv4Addr>().is_ok_and(|a| !a.is_loopback() && !a.is_unspecified()))
        .collect();
    let (resolv, hosts, _, stderr) = files_in(&env, &[]);
    if reachable.is_empty() {
        assert_eq!(nameservers(&resolv), ["8.8.8.8", "8.8.4.4"], "{resolv}");
        assert!(stderr.contains("warning") && stderr.contains("--dns"), "{stderr}");
    } else {
        assert_eq!(nameservers(&resolv), reachable, "host:\n{host}\ncontainer:\n{resolv}");
        assert!(!stderr.contains("warning"), "{stderr}");
    }
    assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
}

#[test]
fn host_network_gets_the_hosts_resolv_conf_and_hosts() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let (resolv, hosts, _, _) = files_in(&env, &["--network", "host", "--add-host", "gw:host-gateway"]);
    assert_eq!(resolv.trim_end(), host_resolv.trim_end());
    assert!(hosts.starts_with(&host_hosts), "host:\n{host_hosts}\ncontainer:\n{hosts}");
    assert!(hosts.lines().any(|l| l == "127.0.0.1\tgw"), "{hosts}");
}
