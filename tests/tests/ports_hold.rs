//! Issue 10, item 5: a published host port is held bound for the whole life
//! of its container, so that a later bind by anyone (here root, the test
//! process, as a service started after the container would) fails with
//! EADDRINUSE instead of silently sharing the port's traffic with the
//! container; and `-p` refuses group and broadcast host addresses.

use ctr_tests::{env, Child, Env};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// What a bind of `port` by root gets now: Ok, or the error's kind.
fn bind_tcp(ip: Ipv4Addr, port: u16) -> Result<(), std::io::Error> {
    // std sets SO_REUSEADDR on listeners, as most services do.
    TcpListener::bind((ip, port)).map(drop)
}

fn bind_udp(ip: Ipv4Addr, port: u16) -> Result<(), std::io::Error> {
    UdpSocket::bind((ip, port)).map(drop)
}

#[track_caller]
fn assert_in_use(what: &str, bound: Result<(), std::io::Error>) {
    match bound {
        Err(e) if e.kind() == ErrorKind::AddrInUse => {}
        other => panic!("{what}: a later bind got {other:?}, not EADDRINUSE: the published port can be hijacked"),
    }
}

/// Root's bind succeeds once the container is gone (allowing its holder a
/// moment to exit).
#[track_caller]
fn assert_freed(what: &str, bind: impl Fn() -> Result<(), std::io::Error>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match bind() {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => {
                panic!("{what}: still not free after the container is gone: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// This network namespace's own non-loopback IPv4 addresses.
fn host_addresses() -> Vec<Ipv4Addr> {
    let out = std::process::Command::new("ip").args(["-4", "-o", "addr", "show"]).output().expect("ip(8)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1))
        .filter_map(|a| a.split('/').next()?.parse::<Ipv4Addr>().ok())
        .filter(|a| !a.is_loopback() && !a.to_string().starts_with("10.88."))
        .collect()
}

fn http_get(ip: Ipv4Addr, port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&(ip, port).into(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

#[track_caller]
fn assert_serves(ip: Ipv4Addr, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match http_get(ip, port) {
            Ok(body) if body.contains("served-by-ctr") => return,
            other if Instant::now() > deadline => {
                panic!("no page on {ip}:{port} while the port is held: {other:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

const HTTPD: &str = "mkdir -p /www && echo served-by-ctr > /www/index.html && httpd -f -p 80 -h /www";

fn foreground(env: &Env, name: &str, publish: &[String], script: &str) -> Child {
    let mut child = env
        .ctr()
        .args(["run", "--rm", "--name", name])
        .args(publish.iter().flat_map(|p| ["-p", p.as_str()]))
        .args(["busybox", "sh", "-c", &format!("echo ready; {script}")])
        .timeout(Duration::from_secs(120))
        .spawn();
    child.wait_for_stdout("ready", Duration::from_secs(30));
    child
}

#[test]
fn a_detached_containers_ports_cannot_be_bound_until_it_is_removed() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let name = ctr_tests::unique_name("hold-d");
    let (tcp, udp) = (18180, 18181);
    let out = env
        .ctr()
        .args(["run", "-d", "--name", &name, "-p", &format!("{tcp}:80"), "-p", &format!("127.0.0.1:{udp}:53/udp")])
        .args(["busybox", "sh", "-c", HTTPD])
        .ok();
    assert!(!out.stdout.trim().is_empty(), "no id: {}", out.stderr);
    let held = [
        ("tcp on every address", bind_tcp(Ipv4Addr::UNSPECIFIED, tcp)),
        ("tcp on 127.0.0.1", bind_tcp(Ipv4Addr::LOCALHOST, tcp)),
        ("udp on 127.0.0.1", bind_udp(Ipv4Addr::LOCALHOST, udp)),
        ("udp on every address", bind_udp(Ipv4Addr::UNSPECIFIED, udp)),
    ];
    // The published port still reaches the container, on loopback and on
    // the host's other addresses: the held socket never takes a connection.
    let addresses = host_addresses();
    for ip in std::iter::once(Ipv4Addr::LOCALHOST).chain(addresses.iter().copied()) {
        assert_serves(ip, tcp);
    }
    let removed = env.ctr().args(["rm", "-f", &name]).output();
    for (what, bound) in held {
        assert_in_use(what, bound);
    }
    assert!(removed.success(), "{}", removed.stderr);
    assert_freed("tcp after ctr rm -f", || bind_tcp(Ipv4Addr::UNSPECIFIED, tcp));
    assert_freed("udp after ctr rm -f", || bind_udp(Ipv4Addr::UNSPECIFIED, udp));
    eprintln!("served on 127.0.0.1 and {addresses:?} while held");
}

#[test]
fn a_foreground_containers_port_cannot_be_bound_until_it_exits() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let name = ctr_tests::unique_name("hold-f");
    let port = 18182;
    // Serves for a few seconds, then exits by itself.
    let child = foreground(&env, &name, &[format!("{port}:80")], &format!("({HTTPD}) & sleep 4"));
    let while_running = bind_tcp(Ipv4Addr::UNSPECIFIED, port);
    assert_serves(Ipv4Addr::LOCALHOST, port);
    let out = child.wait();
    assert_in_use("tcp while a foreground container runs", while_running);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_freed("tcp after the container exited", || bind_tcp(Ipv4Addr::UNSPECIFIED, port));
}

#[test]
fn group_and_broadcast_host_addresses_are_refused() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    for (address, says) in [("224.0.0.1", "multicast"), ("255.255.255.255", "broadcast"), ("239.1.2.3", "multicast")] {
        let out = env.ctr().args(["run", "--rm", "-p", &format!("{address}:18183:80"), "busybox", "true"]).output();
        assert_eq!(out.code(), Some(125), "{address}: {}", out.stderr);
        assert!(out.stderr.contains(address) && out.stderr.contains(says), "{address}: {}", out.stderr);
    }
    // A subnet's broadcast address is known from the host's routes; the
    // helper refuses it (bind(2) would accept it like a local address).
    let trie = std::fs::read_to_string("/proc/net/fib_trie").unwrap();
    let broadcasts = ctr_core::net::fib_broadcasts(&trie);
    let subnet_broadcast = broadcasts.iter().find(|a| !a.is_loopback() && !a.is_broadcast());
    if let Some(address) = subnet_broadcast {
        let out = env.ctr().args(["run", "--rm", "-p", &format!("{address}:18183:80"), "busybox", "true"]).output();
        assert_eq!(out.code(), Some(125), "{address}: {}", out.stderr);
        assert!(out.stderr.contains("broadcast"), "{address}: {}", out.stderr);
    } else {
        eprintln!("no subnet broadcast address in this namespace: {broadcasts:?}");
    }
}
