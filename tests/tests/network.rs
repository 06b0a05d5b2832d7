//! Bridge networking, end to end, as the unprivileged test user through the
//! setuid helper. The test driver runs every integration test inside a
//! network namespace of its own, so the bridge, veths and nftables rules
//! made here exist only there, and traffic goes only to containers on that
//! bridge and to loopback.

use ctr_tests::{env, Child, Env};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};



fn start(env: &Env, name: &str, extra: &[&str], image: &str, script: &str) -> Child {
    let mut child = env
        .ctr()
        .args(["run", "--rm", "--name", name])
        .args(extra)
        .args([image, "sh", "-c", &format!("echo ready; {script}")])
        .timeout(Duration::from_secs(120))
        .spawn();
    child.wait_for_stdout("ready", Duration::from_secs(30));
    child
}

fn stop(env: &Env, name: &str, child: Child) {
    let _ = env.ctr().args(["rm", "-f", name]).output();
    let _ = child.wait();
}

fn address_of(env: &Env, name: &str) -> String {
    let out = env.ctr().args(["inspect", name]).ok().stdout;
    let at = out.find("\"address\": \"").unwrap_or_else(|| panic!("{name} has no address:\n{out}"));
    out[at + 12..].split('"').next().unwrap().to_owned()
}

#[test]
fn two_containers_reach_each_other_by_ip_and_by_name() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let (a, b) = (ctr_tests::unique_name("neta"), ctr_tests::unique_name("netb"));
    // A serves an echo on 7000 and, once B exists, pings it by name.
    let mut server = start(
        &env,
        &a,
        &[],
        "alpine",
        &format!(
            "nc -lk -p 7000 -e cat & \
             for i in $(seq 100); do grep -q {b} /etc/hosts && break; sleep 0.1; done; \
             ping -c1 -W2 {b} >/dev/null && echo A-reached-B; sleep 60"
        ),
    );
    let a_ip = address_of(&env, &a);
    let client = env
        .ctr()
        .args(["run", "--rm", "--name", &b, "alpine", "sh", "-c"])
        .arg(format!(
            "ping -c1 -W2 {a_ip} >/dev/null && echo B-reached-A-by-ip; \
             ping -c1 -W2 {a} >/dev/null && echo B-reached-A-by-name; \
             echo round-trip | nc -w 2 {a} 7000; sleep 2"
        ))
        .output();
    let server_out = server.wait_for_stdout("A-reached-B", Duration::from_secs(20));
    stop(&env, &a, server);
    assert!(client.stdout.contains("B-reached-A-by-ip"), "{}\n{}", client.stdout, client.stderr);
    assert!(client.stdout.contains("B-reached-A-by-name"), "{}\n{}", client.stdout, client.stderr);
    assert!(client.stdout.contains("round-trip"), "TCP echo failed: {}\n{}", client.stdout, client.stderr);
    assert!(server_out.contains("A-reached-B"));
}

fn http_get(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&format!("127.0.0.1:{port}").parse().unwrap(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

#[test]
fn a_published_port_serves_the_host_and_goes_away_with_the_container() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let name = ctr_tests::unique_name("web");
    let port = 18080;
    let server = start(
        &env,
        &name,
        &["-p", &format!("{port}:80")],
        "busybox",
        "mkdir -p /www && echo served-by-ctr > /www/index.html && httpd -f -p 80 -h /www",
    );
    let listed = env.ctr().args(["port", &name]).ok().stdout;
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        match http_get(port) {
            Ok(body) if body.contains("served-by-ctr") => break body,
            other if Instant::now() > deadline => panic!("no page on 127.0.0.1:{port}: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    // A second container cannot take the same host port.
    let clash = env.ctr().args(["run", "--rm", "-p", &format!("{port}:80"), "busybox", "true"]).output();
    stop(&env, &name, server);
    assert!(page.contains("200"), "{page}");
    assert!(listed.contains(&format!("80/tcp -> 0.0.0.0:{port}")), "{listed}");
    assert_eq!(clash.code(), Some(125), "{}", clash.stderr);
    assert!(clash.stderr.contains("already published"), "{}", clash.stderr);
    assert!(http_get(port).is_err(), "port {port} still answers after the container is gone");
}

#[test]
fn fifty_concurrent_containers_get_fifty_addresses_and_leave_nothing() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let runs: Vec<_> = (0..50)
        .map(|_| {
            env.ctr()
                .args(["run", "--rm", "alpine", "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}'"])
                .timeout(Duration::from_secs(180))
                .spawn()
        })
        .collect();
    let mut addresses: Vec<String> = runs
        .into_iter()
        .map(|c| {
            let out = c.wait();
            assert!(out.success(), "{}", out.stderr);
            out.stdout.trim().to_owned()
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 50, "{addresses:?}");
    assert!(addresses.iter().all(|a| a.starts_with("10.88.")), "{addresses:?}");
    let leases = std::fs::read_to_string("/run/ctr-helper/net/bridge.json").unwrap_or_default();
    assert!(!leases.contains(&format!("\"owner_uid\": {}", env.uid)) && !leases.contains(&format!("\"owner_uid\":{}", env.uid)), "leases left: {leases}");
    let links = std::process::Command::new("ip").args(["-o", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(!links.contains("veth"), "veths left:\n{links}");
}

#[test]
fn the_helper_refuses_low_ports_and_foreign_addresses() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let low = env.ctr().args(["run", "--rm", "-p", "80:80", "alpine", "true"]).output();
    assert_eq!(low.code(), Some(125));
    assert!(low.stderr.contains("ip_unprivileged_port_start"), "{}", low.stderr);
    let outside = env.ctr().args(["run", "--rm", "--ip", "192.168.7.7", "alpine", "true"]).output();
    assert_eq!(outside.code(), Some(125));
    assert!(outside.stderr.contains("not a usable address"), "{}", outside.stderr);
    let gateway = env.ctr().args(["run", "--rm", "--ip", "10.88.0.1", "alpine", "true"]).output();
    assert_eq!(gateway.code(), Some(125), "{}", gateway.stderr);
}

#[test]
fn a_container_that_changes_its_address_reaches_nobody() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let target = ctr_tests::unique_name("target");
    let server = start(&env, &target, &[], "alpine", "sleep 60");
    let target_ip = address_of(&env, &target);
    let script = format!(
        "ping -c1 -W2 {target_ip} >/dev/null && echo reached-before; \
         mine=$(ip -4 -o addr show eth0 | awk '{{print $4}}'); \
         ip addr add 10.88.250.250/16 dev eth0 && ip addr del $mine dev eth0 && \
         ip route add default via 10.88.0.1 2>/dev/null; \
         ping -c1 -W2 {target_ip} >/dev/null && echo reached-after-spoofing; true"
    );
    let out = env.ctr().args(["run", "--rm", "--cap-add", "NET_ADMIN", "alpine", "sh", "-c", &script]).output();
    stop(&env, &target, server);
    assert!(out.stdout.contains("reached-before"), "control failed: {}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("reached-after-spoofing"), "a spoofed address got through: {}", out.stdout);
}
