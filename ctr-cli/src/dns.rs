//! A container's name resolution, as docker sets it up: its
//! /etc/resolv.conf from the host's (minus the loopback nameservers a
//! container on a bridge cannot reach, the upstream servers of
//! systemd-resolved in place of its stub, docker's public fallback when
//! nothing is left) with `--dns`, `--dns-search` and `--dns-option` on top,
//! and the `--add-host` lines of its /etc/hosts.
//!
//! Building the files is pure ([`resolv_conf`], [`hosts_lines`]); only
//! [`HostFiles::read`] touches the host, at paths a test can choose.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// A `--dns`, `--dns-search`, `--dns-option` or `--add-host` that cannot
/// be used.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The message says what to change.
    #[error("{0}")]
    Invalid(String),
    #[error("{what}")]
    NotAnAddress { what: String, source: std::net::AddrParseError },
}

type Result<T, E = DnsError> = std::result::Result<T, E>;

/// Refuses a flag with a message that says what to change.
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err(DnsError::Invalid(format!($($arg)*)))
    };
}

/// Docker's nameservers for a container that has none left.
pub const FALLBACK_NAMESERVERS: [Ipv4Addr; 2] = [Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(8, 8, 4, 4)];

/// The stub resolver systemd-resolved lists in /etc/resolv.conf.
const RESOLVED_STUB: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53));

/// What the user asked for: `--dns`, `--dns-search`, `--dns-option` and
/// `--add-host`, validated. Kept in the container's record, so that a
/// restart builds the same files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsConfig {
    /// Replace the nameservers.
    #[serde(default)]
    pub servers: Vec<IpAddr>,
    /// Replace the search domains; `.` alone means none.
    #[serde(default)]
    pub search: Vec<String>,
    /// Replace the resolver options (`ndots:2`, `edns0`...).
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub extra_hosts: Vec<ExtraHost>,
}

/// `--add-host NAME:IP`, or `NAME:host-gateway` for the host as the
/// container reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraHost {
    pub name: String,
    /// None for `host-gateway`.
    pub address: Option<IpAddr>,
}

/// A word that goes into resolv.conf or /etc/hosts as it is: no
/// whitespace or comment sign can start another entry.
fn check_word(flag: &str, word: &str) -> Result<()> {
    if word.is_empty() || word.len() > 253 || word.chars().any(|c| c.is_whitespace() || c.is_control() || c == '#') {
        invalid!("{flag} {word:?}: give one word, without spaces or '#'");
    }
    Ok(())
}

fn check_hostname(flag: &str, name: &str) -> Result<()> {
    check_word(flag, name)?;
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) || name.starts_with(['-', '.']) {
        invalid!("{flag} {name:?}: a host name is letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

impl ExtraHost {
    /// `NAME:IP`, `NAME=IP` or `NAME:host-gateway` (docker's forms; the
    /// name ends at the first separator, so an IPv6 address may follow).
    pub fn parse(text: &str) -> Result<Self> {
        let Some((name, address)) = text.split_once([':', '=']) else {
            invalid!("--add-host {text:?}: give NAME:IP or NAME:host-gateway");
        };
        check_hostname("--add-host", name)?;
        let address = match address {
            "host-gateway" => None,
            a => Some(a.trim_start_matches('[').trim_end_matches(']').parse().map_err(|source| {
                DnsError::NotAnAddress {
                    what: format!("--add-host {text:?}: {a:?} is not an IP address (or host-gateway)"),
                    source,
                }
            })?),
        };
        Ok(Self { name: name.to_owned(), address })
    }
}

impl DnsConfig {
    /// The flags as given on the command line, checked.
    pub fn parse(servers: &[String], search: &[String], options: &[String], hosts: &[String]) -> Result<Self> {
        let servers = servers
            .iter()
            .map(|s| {
                s.parse().map_err(|source| DnsError::NotAnAddress {
                    what: format!("--dns {s:?} is not an IP address"),
                    source,
                })
            })
            .collect::<Result<_>>()?;
        for domain in search {
            if domain != "." {
                check_hostname("--dns-search", domain)?;
            }
        }
        for option in options {
            check_word("--dns-option", option)?;
        }
        let extra_hosts = hosts.iter().map(|h| ExtraHost::parse(h)).collect::<Result<_>>()?;
        Ok(Self { servers, search: search.to_vec(), options: options.to_vec(), extra_hosts })
    }

    /// Whether any `--add-host` needs to know the host's address.
    pub fn wants_host_gateway(&self) -> bool {
        self.extra_hosts.iter().any(|h| h.address.is_none())
    }
}

/// Where the host keeps its resolver files.
#[derive(Debug, Clone)]
pub struct HostFiles {
    pub resolv_conf: PathBuf,
    /// systemd-resolved's list of the upstream servers its stub forwards to.
    pub resolved_upstream: PathBuf,
    pub hosts: PathBuf,
}

impl Default for HostFiles {
    fn default() -> Self {
        Self {
            resolv_conf: "/etc/resolv.conf".into(),
            resolved_upstream: "/run/systemd/resolve/resolv.conf".into(),
            hosts: "/etc/hosts".into(),
        }
    }
}

/// The host's files as read: a missing one is empty (None for the
/// optional systemd-resolved one).
#[derive(Debug, Clone, Default)]
pub struct HostText {
    pub resolv_conf: String,
    pub resolved_upstream: Option<String>,
    pub hosts: String,
}

impl HostFiles {
    pub fn read(&self) -> HostText {
        HostText {
            resolv_conf: std::fs::read_to_string(&self.resolv_conf).unwrap_or_default(),
            resolved_upstream: std::fs::read_to_string(&self.resolved_upstream).ok(),
            hosts: std::fs::read_to_string(&self.hosts).unwrap_or_default(),
        }
    }
}

/// A container's resolv.conf, and why it holds what it does when that
/// needs saying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub text: String,
    /// Set when the container gets docker's public fallback servers.
    pub warning: Option<String>,
}

fn nameserver_of(line: &str) -> Option<IpAddr> {
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        // A scoped IPv6 address (fe80::1%eth0) is not parsed, and dropped.
        (Some("nameserver"), Some(address)) => address.parse().ok().or(Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED))),
        _ => None,
    }
}

fn keyword_of(line: &str) -> Option<&str> {
    line.split_whitespace().next()
}

/// The container's resolv.conf. `host_network`: the container shares the
/// host's network namespace, so it gets the host's file as it is (its
/// loopback servers answer there). Otherwise the host's nameservers minus
/// loopback ones; on a systemd-resolved host (its stub 127.0.0.53 in
/// /etc/resolv.conf) the upstream servers it forwards to instead; IPv6
/// servers are dropped too (containers have no IPv6 route); and if none is
/// left, 8.8.8.8 and 8.8.4.4 with a warning. `--dns`, `--dns-search` and
/// `--dns-option` each replace their part.
pub fn resolv_conf(host: &HostText, dns: &DnsConfig, host_network: bool) -> ResolvConf {
    let stub_host = host.resolv_conf.lines().filter_map(nameserver_of).any(|a| a == RESOLVED_STUB);
    let (source, from) = match &host.resolved_upstream {
        Some(upstream) if stub_host && !host_network => (upstream.as_str(), "systemd-resolved's upstream servers"),
        _ => (host.resolv_conf.as_str(), "the host's /etc/resolv.conf"),
    };
    let reachable = |a: IpAddr| host_network || (a.is_ipv4() && !a.is_loopback() && !a.is_unspecified());
    let mut lines: Vec<String> = Vec::new();
    let mut servers = 0;
    for line in source.lines() {
        if let Some(address) = nameserver_of(line) {
            if !dns.servers.is_empty() || !reachable(address) {
                continue;
            }
            servers += 1;
        }
        let replaced = match keyword_of(line) {
            Some("search" | "domain") => !dns.search.is_empty(),
            Some("options") => !dns.options.is_empty(),
            _ => false,
        };
        if !replaced {
            lines.push(line.to_owned());
        }
    }
    let mut warning = None;
    if !dns.servers.is_empty() {
        lines.extend(dns.servers.iter().map(|a| format!("nameserver {a}")));
    } else if servers == 0 && !host_network {
        lines.extend(FALLBACK_NAMESERVERS.iter().map(|a| format!("nameserver {a}")));
        warning = Some(format!(
            "{from} has no nameserver a container can reach (loopback ones answer only on the host): \
             using {} and {}; choose others with --dns",
            FALLBACK_NAMESERVERS[0], FALLBACK_NAMESERVERS[1]
        ));
    }
    let search: Vec<&str> = dns.search.iter().map(String::as_str).filter(|d| *d != ".").collect();
    if !search.is_empty() {
        lines.push(format!("search {}", search.join(" ")));
    }
    if !dns.options.is_empty() {
        lines.push(format!("options {}", dns.options.join(" ")));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    ResolvConf { text, warning }
}

/// The `--add-host` lines of /etc/hosts; `host_gateway` is the address
/// `host-gateway` stands for (the network's gateway on a bridge).
pub fn hosts_lines(dns: &DnsConfig, host_gateway: Option<IpAddr>) -> Result<String> {
    let mut text = String::new();
    for host in &dns.extra_hosts {
        let Some(address) = host.address.or(host_gateway) else {
            invalid!(
                "--add-host {}:host-gateway needs a network that reaches the host: --network bridge (the default), \
                 one of yours, or host",
                host.name
            );
        };
        text.push_str(&format!("{address}\t{}\n", host.name));
    }
    Ok(text)
}

/// The /etc/hosts of a container on the host's network: the host's own,
/// its hostname if the host's file does not name it, and `--add-host`
/// (`host-gateway` is the host itself there: 127.0.0.1).
pub fn host_network_hosts(host: &HostText, hostname: &str, dns: &DnsConfig) -> Result<String> {
    let mut text = host.hosts.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let named = text.lines().filter(|l| !l.trim_start().starts_with('#')).any(|l| {
        let mut words = l.split_whitespace();
        words.next().is_some() && words.any(|w| w == hostname)
    });
    if !named {
        text.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    text.push_str(&hosts_lines(dns, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)))?);
    Ok(text)
}

/// docker inspect's HostConfig keys for these flags.
pub fn inspect_json(dns: &DnsConfig) -> serde_json::Map<String, serde_json::Value> {
    let extra_hosts: Vec<String> = dns
        .extra_hosts
        .iter()
        .map(|h| format!("{}:{}", h.name, h.address.map_or_else(|| "host-gateway".to_owned(), |a| a.to_string())))
        .collect();
    let value = serde_json::json!({
        "Dns": dns.servers,
        "DnsSearch": dns.search,
        "DnsOptions": dns.options,
        "ExtraHosts": extra_hosts,
    });
    match value {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("a JSON object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(resolv: &str, upstream: Option<&str>) -> HostText {
        HostText { resolv_conf: resolv.into(), resolved_upstream: upstream.map(Into::into), hosts: String::new() }
    }

    fn nameservers(text: &str) -> Vec<String> {
        text.lines().filter_map(|l| l.strip_prefix("nameserver ")).map(str::to_owned).collect()
    }

    #[test]
    fn loopback_and_ipv6_nameservers_are_dropped_the_rest_kept() {
        let h = host("# comment\nnameserver 127.0.0.1\nnameserver 10.0.0.2\nnameserver ::1\nnameserver 2001:db8::1\nnameserver fe80::1%eth0\nsearch corp.example\noptions ndots:2\n", None);
        let r = resolv_conf(&h, &DnsConfig::default(), false);
        assert_eq!(nameservers(&r.text), ["10.0.0.2"]);
        assert!(r.text.contains("search corp.example\n") && r.text.contains("options ndots:2\n"), "{}", r.text);
        assert_eq!(r.warning, None);
    }

    #[test]
    fn systemd_resolved_stub_is_replaced_by_its_upstream_servers() {
        let h = host(
            "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n",
            Some("# upstream\nnameserver 192.168.1.1\nnameserver 1.1.1.1\nsearch lan\n"),
        );
        let r = resolv_conf(&h, &DnsConfig::default(), false);
        assert_eq!(nameservers(&r.text), ["192.168.1.1", "1.1.1.1"]);
        assert!(r.text.contains("search lan"));
        assert_eq!(r.warning, None);
        // The host's network reaches the stub: its file as it is.
        let r = resolv_conf(&h, &DnsConfig::default(), true);
        assert_eq!(r.text, h.resolv_conf);
    }

    #[test]
    fn nothing_reachable_falls_back_to_dockers_servers_with_a_warning() {
        for h in
            [host("nameserver 127.0.0.53\n", None), host("nameserver 127.0.0.53\n", Some("# none\n")), host("", None)]
        {
            let r = resolv_conf(&h, &DnsConfig::default(), false);
            assert_eq!(nameservers(&r.text), ["8.8.8.8", "8.8.4.4"], "{h:?}");
            assert!(r.warning.as_deref().unwrap().contains("--dns"), "{r:?}");
        }
    }

    #[test]
    fn flags_replace_their_part() {
        let h = host("nameserver 10.0.0.2\nsearch a.example\ndomain b.example\noptions ndots:3\n", None);
        let dns = DnsConfig::parse(
            &["9.9.9.9".into(), "127.0.0.1".into()],
            &["x.example".into(), "y.example".into()],
            &["ndots:1".into(), "edns0".into()],
            &[],
        )
        .unwrap();
        let r = resolv_conf(&h, &dns, false);
        assert_eq!(
            r.text,
            "nameserver 9.9.9.9\nnameserver 127.0.0.1\nsearch x.example y.example\noptions ndots:1 edns0\n"
        );
        assert_eq!(r.warning, None);
        let none = DnsConfig { search: vec![".".into()], ..Default::default() };
        assert_eq!(resolv_conf(&h, &none, false).text, "nameserver 10.0.0.2\noptions ndots:3\n");
        // On the host's network the flags apply as well.
        let r = resolv_conf(&host("nameserver 127.0.0.53\n", None), &dns, true);
        assert!(r.text.starts_with("nameserver 9.9.9.9\n"), "{}", r.text);
    }

    #[test]
    fn flags_are_validated() {
        assert!(DnsConfig::parse(&["8.8.8.x".into()], &[], &[], &[]).is_err());
        assert!(DnsConfig::parse(&[], &["a b".into()], &[], &[]).is_err());
        assert!(DnsConfig::parse(&[], &["a\nnameserver 1.2.3.4".into()], &[], &[]).is_err());
        assert!(DnsConfig::parse(&[], &[], &["ndots:1\nnameserver".into()], &[]).is_err());
        assert!(DnsConfig::parse(&[], &[], &[], &["noaddress".into()]).is_err());
        assert!(DnsConfig::parse(&[], &[], &[], &["bad name:1.2.3.4".into()]).is_err());
        assert!(DnsConfig::parse(&[], &[], &[], &["name:example.com".into()]).is_err());
        assert!(DnsConfig::parse(&["2001:db8::1".into()], &[".".into()], &["rotate".into()], &[]).is_ok());
    }

    #[test]
    fn add_host_lines_and_the_gateway() {
        let dns = DnsConfig::parse(
            &[],
            &[],
            &[],
            &[
                "db:10.1.2.3".into(),
                "v6:2001:db8::5".into(),
                "eq=10.9.9.9".into(),
                "host.ctr.internal:host-gateway".into(),
            ],
        )
        .unwrap();
        assert!(dns.wants_host_gateway());
        let gateway = Some(IpAddr::V4(Ipv4Addr::new(10, 88, 0, 1)));
        assert_eq!(
            hosts_lines(&dns, gateway).unwrap(),
            "10.1.2.3\tdb\n2001:db8::5\tv6\n10.9.9.9\teq\n10.88.0.1\thost.ctr.internal\n"
        );
        let err = hosts_lines(&dns, None).unwrap_err().to_string();
        assert!(err.contains("host-gateway needs a network"), "{err}");
    }

    #[test]
    fn host_files_are_read_from_the_paths_given() {
        let dir = tempfile::tempdir().unwrap();
        let files = HostFiles {
            resolv_conf: dir.path().join("resolv.conf"),
            resolved_upstream: dir.path().join("upstream.conf"),
            hosts: dir.path().join("hosts"),
        };
        std::fs::write(&files.resolv_conf, "nameserver 127.0.0.53\n").unwrap();
        let text = files.read();
        assert_eq!(text.resolved_upstream, None);
        assert!(resolv_conf(&text, &DnsConfig::default(), false).warning.is_some());
        std::fs::write(&files.resolved_upstream, "nameserver 10.9.8.7\n").unwrap();
        let r = resolv_conf(&files.read(), &DnsConfig::default(), false);
        assert_eq!((nameservers(&r.text), r.warning), (vec!["10.9.8.7".to_owned()], None));
    }

    #[test]
    fn host_network_gets_the_hosts_file_of_the_host() {
        let mut h = host("", None);
        h.hosts = "127.0.0.1 localhost\n10.0.0.5 build box\n".into();
        let dns = DnsConfig::parse(&[], &[], &[], &["gw:host-gateway".into()]).unwrap();
        assert_eq!(
            host_network_hosts(&h, "box", &dns).unwrap(),
            "127.0.0.1 localhost\n10.0.0.5 build box\n127.0.0.1\tgw\n"
        );
        assert_eq!(
            host_network_hosts(&h, "web", &DnsConfig::default()).unwrap(),
            "127.0.0.1 localhost\n10.0.0.5 build box\n127.0.1.1\tweb\n"
        );
    }
}
