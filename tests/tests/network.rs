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
    env.await_helper_teardowns();
}

fn address_of(env: &Env, name: &str) -> String {
    let out = env.ctr().args(["inspect", name]).ok().stdout;
    let at = out.find("\"IPAddress\": \"").unwrap_or_else(|| panic!("{name} has no address:\n{out}"));
    out[at + 14..].split('"').next().unwrap().to_owned()
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
            "nc -l -p 7000 -e cat & \
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
    env.await_helper_teardowns();
    let leases = std::fs::read_to_string("/run/ctr-helper/net/bridge.json").unwrap_or_default();
    assert!(
        !leases.contains(&format!("\"owner_uid\": {}", env.uid))
            && !leases.contains(&format!("\"owner_uid\":{}", env.uid)),
        "leases left: {leases}"
    );
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

/// The helper only creates the veth pair, with the container's end placed
/// into the container's namespace down and without an address; `ctr init`
/// configures it from inside, unprivileged. So a container's command finds
/// `lo` and `eth0` up, its address and its default route.
#[test]
fn network_of_a_container_is_configured_by_its_own_init() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let script = "ip -o link show lo; ip -o link show eth0; ip -4 -o addr show eth0; ip -4 route";
    let out = env.ctr().args(["run", "--rm", "--ip", "10.88.77.7", "alpine", "sh", "-c", script]).ok().stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 4, "{out}");
    assert!(lines[0].contains("lo: <LOOPBACK,UP,"), "{out}");
    assert!(lines[1].contains("eth0@") && lines[1].contains(",UP,"), "{out}");
    assert!(lines[2].contains("inet 10.88.77.7/16 "), "{out}");
    assert!(out.contains("default via 10.88.0.1 dev eth0"), "{out}");
}

/// The privileged helper never joins a namespace (ARCHITECTURE.md, the
/// helper's operations): nothing in it imports `setns` from libc. `ctr`,
/// which joins a container's namespaces for `ctr exec`, does: the control.
/// (A raw syscall(2) would escape this check; review must catch that.)
#[test]
fn network_setup_leaves_no_setns_in_the_helper() {
    let Some(env) = env() else { return };
    let imports_setns = |path: std::path::PathBuf| {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        bytes.windows(7).any(|w| w == b"\0setns\0")
    };
    assert!(imports_setns(env.ctr_path()), "control: ctr's own setns import was not found");
    assert!(!imports_setns(env.helper_path()), "the setuid helper links setns");
}

/// A container reaches a target, then runs `change` (which must print
/// `changed`) and must reach it no more.
fn spoofing_reaches_nobody(prefix: &str, change: &str) {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let target = ctr_tests::unique_name(prefix);
    let server = start(&env, &target, &[], "alpine", "sleep 60");
    let target_ip = address_of(&env, &target);
    let script = format!(
        "ping -c1 -W2 {target_ip} >/dev/null && echo reached-before; {change}; \
         ping -c1 -W2 {target_ip} >/dev/null && echo reached-after-spoofing; true"
    );
    let out = env.ctr().args(["run", "--rm", "--cap-add", "NET_ADMIN", "alpine", "sh", "-c", &script]).output();
    stop(&env, &target, server);
    assert!(out.stdout.contains("reached-before"), "control failed: {}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("changed"), "the change did not take: {}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("reached-after-spoofing"), "a spoofed sender got through: {}", out.stdout);
}

#[test]
fn a_container_that_changes_its_address_reaches_nobody() {
    spoofing_reaches_nobody(
        "target",
        "mine=$(ip -4 -o addr show eth0 | awk '{print $4}'); \
         ip addr add 10.88.250.250/16 dev eth0 && ip addr del $mine dev eth0 && echo changed; \
         ip route add default via 10.88.0.1 2>/dev/null",
    );
}

#[test]
fn a_container_that_changes_its_mac_reaches_nobody() {
    // Same IP, another MAC: the bridge filter must drop its frames.
    spoofing_reaches_nobody(
        "mactarget",
        "ip link set eth0 address 02:42:de:ad:be:ef && ip neigh flush dev eth0; \
         ip link show eth0 | grep -q 02:42:de:ad:be:ef && echo changed",
    );
}

/// Removes the test's networks (and containers first) however it ends.
struct Networks<'a> {
    env: &'a Env,
    names: Vec<String>,
    containers: Vec<String>,
}

impl Drop for Networks<'_> {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = self.env.ctr().args(["rm", "-f", c]).output();
        }
        for n in &self.names {
            let _ = self.env.ctr().args(["network", "rm", n]).output();
        }
    }
}

fn run_detached(env: &Env, name: &str, extra: &[&str]) -> ctr_tests::Output {
    env.ctr().args(["run", "-d", "--name", name]).args(extra).args(["alpine", "sleep", "300"]).output()
}

fn links() -> String {
    let out = std::process::Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn user_networks_resolve_names_inside_and_isolate_from_each_other() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let (net_a, net_b) = (ctr_tests::unique_name("neta"), ctr_tests::unique_name("netb"));
    let (a1, b1) = (ctr_tests::unique_name("a1"), ctr_tests::unique_name("b1"));
    let mut guard =
        Networks { env: &env, names: vec![net_a.clone(), net_b.clone()], containers: vec![a1.clone(), b1.clone()] };
    env.ctr().args(["network", "create", &net_a]).ok();
    env.ctr().args(["network", "create", "--subnet", "10.89.200.0/24", &net_b]).ok();
    let twice = env.ctr().args(["network", "create", &net_a]).output();
    assert_eq!(twice.code(), Some(125), "a second network of one name: {}", twice.stderr);
    let overlap = env.ctr().args(["network", "create", "--subnet", "10.89.200.128/25", "overlapping"]).output();
    assert!(overlap.stderr.contains("overlaps"), "{}", overlap.stderr);
    let outside = env.ctr().args(["network", "create", "--subnet", "192.168.77.0/24", "outside"]).output();
    assert!(outside.stderr.contains("outside the pool"), "{}", outside.stderr);
    let listed = env.ctr().args(["network", "ls"]).ok().stdout;
    assert!(listed.contains(&net_a) && listed.contains("10.89.200.0/24") && listed.contains("bridge"), "{listed}");

    assert!(run_detached(&env, &a1, &["--network", &net_a]).success());
    let b1_run = run_detached(&env, &b1, &["--network", &net_b, "--ip", "10.89.200.50"]);
    assert!(b1_run.success(), "{}", b1_run.stderr);
    assert_eq!(address_of(&env, &b1), "10.89.200.50");
    let a1_ip = address_of(&env, &a1);
    assert!(a1_ip.starts_with("10.89.") && !a1_ip.starts_with("10.89.200."), "{a1_ip}");

    // A second container on A reaches a1 by name; nothing on B, by address.
    let script = format!(
        "ping -c1 -W2 {a1} >/dev/null && echo reached-a1-by-name; \
         ping -c1 -W2 10.89.200.50 >/dev/null && echo crossed-into-b; \
         grep -c {b1} /etc/hosts; true"
    );
    let probe = env.ctr().args(["run", "--rm", "--network", &net_a, "alpine", "sh", "-c", &script]).output();
    assert!(probe.stdout.contains("reached-a1-by-name"), "{}\n{}", probe.stdout, probe.stderr);
    assert!(!probe.stdout.contains("crossed-into-b"), "network A reached network B: {}", probe.stdout);
    assert!(probe.stdout.lines().any(|l| l == "0"), "b1's name leaked into A's hosts: {}", probe.stdout);
    // And the default network cannot reach B either.
    let default = env
        .ctr()
        .args(["run", "--rm", "alpine", "sh", "-c", "ping -c1 -W2 10.89.200.50 >/dev/null && echo crossed; true"])
        .output();
    assert!(!default.stdout.contains("crossed"), "the default network reached network B");

    let bad_ip = env.ctr().args(["run", "--rm", "--network", &net_b, "--ip", "10.89.201.5", "alpine", "true"]).output();
    assert_eq!(bad_ip.code(), Some(125));
    assert!(bad_ip.stderr.contains("not a usable address"), "{}", bad_ip.stderr);
    let missing = env.ctr().args(["run", "--rm", "--network", "no-such-net", "alpine", "true"]).output();
    assert!(missing.stderr.contains("no network named"), "{}", missing.stderr);

    let inspected = env.ctr().args(["network", "inspect", &net_a]).ok().stdout;
    assert!(inspected.contains(&a1) && inspected.contains(&a1_ip), "{inspected}");
    let bridge = inspected.split("\"Bridge\": \"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned();
    let in_use = env.ctr().args(["network", "rm", &net_a]).output();
    assert!(!in_use.success() && in_use.stderr.contains("in use"), "{}", in_use.stderr);

    for c in std::mem::take(&mut guard.containers) {
        env.ctr().args(["rm", "-f", &c]).ok();
    }
    env.ctr().args(["network", "rm", &net_a]).ok();
    // prune removes what no container is on: B, and C that never had any.
    let net_c = ctr_tests::unique_name("netc");
    guard.names.push(net_c.clone());
    env.ctr().args(["network", "create", &net_c]).ok();
    let pruned = env.ctr().args(["network", "prune", "-f"]).ok().stdout;
    assert!(pruned.contains(&net_b) && pruned.contains(&net_c), "{pruned}");
    guard.names.clear();
    let after = env.ctr().args(["network", "ls", "-q"]).ok().stdout;
    assert!(!after.contains(&net_a) && !after.contains(&net_b), "{after}");
    assert!(!links().contains(&format!(": {bridge}:")), "bridge {bridge} left:\n{}", links());
}

/// The helper config of the test run sets max_interfaces_per_user (see
/// xtask's TEST_HELPER_CONFIG); the limit counts every network of the user.
#[test]
fn the_interface_limit_counts_all_of_a_users_networks() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let config = std::fs::read_to_string(env.prefix.join("etc/ctr/helper.toml")).unwrap_or_default();
    let limit: usize = config
        .lines()
        .find_map(|l| l.strip_prefix("max_interfaces_per_user = "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(64);
    let net = ctr_tests::unique_name("limit");
    let mut guard = Networks { env: &env, names: vec![net.clone()], containers: Vec::new() };
    env.ctr().args(["network", "create", &net]).ok();
    for i in 0..limit {
        let name = ctr_tests::unique_name("lim");
        guard.containers.push(name.clone());
        let network = if i < 3 { net.as_str() } else { "bridge" };
        let out = run_detached(&env, &name, &["--network", network]);
        assert!(out.success(), "container {} of {limit} refused: {}", i + 1, out.stderr);
    }
    let over = env.ctr().args(["run", "--rm", "--network", &net, "alpine", "true"]).output();
    assert_eq!(over.code(), Some(125), "{}", over.stderr);
    assert!(over.stderr.contains("max_interfaces_per_user"), "{}", over.stderr);
    // Without a veth it still runs.
    let none = env.ctr().args(["run", "--rm", "--network", "none", "alpine", "true"]).output();
    assert!(none.success(), "{}", none.stderr);
}

#[test]
fn publish_all_maps_the_images_exposed_ports() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let umoci = |args: &[&str]| {
        let out = std::process::Command::new("umoci").args(args).output().unwrap();
        assert!(out.status.success(), "umoci {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let dir = env.work.join(ctr_tests::unique_name("exposed"));
    std::fs::create_dir_all(&dir).unwrap();
    let (layout, bundle) = (dir.join("layout"), dir.join("bundle"));
    let image = format!("{}:1", layout.display());
    umoci(&["init", "--layout", layout.to_str().unwrap()]);
    umoci(&["new", "--image", &image]);
    umoci(&["unpack", "--image", &image, bundle.to_str().unwrap()]);
    let untar = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&env.alpine)
        .arg("-C")
        .arg(bundle.join("rootfs"))
        .status()
        .unwrap();
    assert!(untar.success());
    umoci(&["repack", "--image", &image, bundle.to_str().unwrap()]);
    umoci(&["config", "--image", &image, "--config.exposedports", "80/tcp", "--config.cmd", "/bin/sh"]);
    assert!(std::process::Command::new("chmod").args(["-R", "a+rX"]).arg(&dir).status().unwrap().success());
    let tag = format!("exposed/web:{}", std::process::id());
    let loaded = env.ctr().args(["load", "-i"]).arg(&layout).output();
    assert!(loaded.success(), "{}", loaded.stderr);
    // The layout's ref name ("1") is no image name: tag the id it loaded.
    let id = loaded
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Loaded image ID: "))
        .unwrap_or_else(|| panic!("{}", loaded.stdout));
    env.ctr().args(["tag", id.trim(), &tag]).ok();

    let name = ctr_tests::unique_name("pall");
    let _guard = Networks { env: &env, names: Vec::new(), containers: vec![name.clone()] };
    // Alpine's busybox has no httpd: nc greets each connection with a line
    // (in a loop: Debian's busybox nc has no -k to keep listening).
    let server = start(&env, &name, &["-P"], &tag, "while :; do nc -l -p 80 -e echo published-all; done");
    let listed = env.ctr().args(["port", &name]).ok().stdout;
    let port: u16 = listed
        .lines()
        .find_map(|l| l.strip_prefix("80/tcp -> 0.0.0.0:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no mapping for 80/tcp: {listed}"));
    let greeting = |port: u16| -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&format!("127.0.0.1:{port}").parse().unwrap(), Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok(text)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        match greeting(port) {
            Ok(text) if text.contains("published-all") => break text,
            other if Instant::now() > deadline => panic!("nothing from 127.0.0.1:{port}: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    stop(&env, &name, server);
    let _ = env.ctr().args(["rmi", &tag]).output();
    assert!(page.contains("published-all"), "{page}");
}

/// The host's nftables ruleset, as `nft list ruleset` prints it.
fn ruleset() -> String {
    let out = std::process::Command::new("nft").args(["list", "ruleset"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The helper's record of the test user's container `id`, and the host veth it names.
fn record_of(env: &Env, id: &str) -> (std::path::PathBuf, String) {
    let path = std::path::PathBuf::from(format!("/run/ctr-helper/{}/{id}", env.uid));
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let veth = record["host_veth"].as_str().unwrap_or_else(|| panic!("no veth in {record}")).to_owned();
    (path, veth)
}

/// The detached helper that tears down the container whose record is
/// `path`: the process with that file open that leads a session of its own
/// (a helper run waiting for the record's lock has it open too).
fn detached_teardown(path: &std::path::Path) -> Option<i32> {
    let pids = std::fs::read_dir("/proc").ok()?.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok());
    pids.into_iter().find(|pid| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // pid (comm) state ppid pgrp session ...: after the last ')'.
        let session = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(3)).unwrap_or("");
        session == pid.to_string()
            && std::fs::read_dir(format!("/proc/{pid}/fd"))
                .into_iter()
                .flatten()
                .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .any(|target| target == path)
    })
}

#[test]
fn a_bridged_rm_run_is_gone_when_it_returns_and_its_network_goes_right_after() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let name = ctr_tests::unique_name("rm-bridged");
    let out = env.ctr().args(["run", "--rm", "--name", &name, "-p", "18090:80", "alpine", "true"]).output();
    assert!(out.success(), "{}", out.stderr);
    let listed = env.ctr().args(["ps", "-a"]).ok().stdout;
    assert!(!listed.contains(&name), "ctr ps -a still shows {name} after `run --rm` returned:\n{listed}");
    env.await_helper_teardowns();
    let records = std::fs::read_dir(format!("/run/ctr-helper/{}", env.uid)).map_or(0, Iterator::count);
    assert_eq!(records, 0, "helper records left");
    let leases = std::fs::read_to_string("/run/ctr-helper/net/bridge.json").unwrap_or_default();
    assert!(!leases.contains(&format!("\"owner_uid\": {}", env.uid)), "leases left: {leases}");
    assert!(!links().contains("veth"), "veths left:\n{}", links());
    assert!(!ruleset().contains("18090"), "the published port's rule is left:\n{}", ruleset());
}

/// `ctr rm` returns once the container's cgroups and state are gone; its
/// network goes in a detached helper that keeps the record (locked) until
/// it is done. Killed half-way (here while it waits for the network lock,
/// which the test holds), it leaves the record, and the next helper run of
/// the user removes the rules, veth, lease and record.
#[test]
fn a_killed_detached_network_teardown_is_finished_by_the_next_helper_run() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let name = ctr_tests::unique_name("killed-teardown");
    let started = run_detached(&env, &name, &["-p", "18091:80"]);
    assert!(started.success(), "{}", started.stderr);
    let id = env.ctr().args(["inspect", "--format", "{{.Id}}", &name]).ok().stdout.trim().to_owned();
    let (record, veth) = record_of(&env, &id);
    let net_lock = std::fs::OpenOptions::new().read(true).write(true).open("/run/ctr-helper/net/net.lock").unwrap();
    let held = nix::fcntl::Flock::lock(net_lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let removed = env.ctr().args(["rm", "-f", &name]).output();
    assert!(removed.success(), "ctr rm -f: {}", removed.stderr);
    let listed = env.ctr().args(["ps", "-a"]).ok().stdout;
    assert!(!listed.contains(&name), "ctr ps -a still shows {name} after `ctr rm` returned:\n{listed}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let teardown = loop {
        match detached_teardown(&record) {
            Some(pid) => break pid,
            None if Instant::now() > deadline => panic!("no process holds {} locked", record.display()),
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(teardown), nix::sys::signal::Signal::SIGKILL).unwrap();
    // Dead (a zombie, maybe) once its files are closed.
    while detached_teardown(&record) == Some(teardown) {
        assert!(Instant::now() < deadline, "the killed teardown {teardown} still holds its lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    // No rule or lease can have gone while the test holds the network lock
    // (the veth may have: it dies with the container's namespace).
    assert!(record.exists(), "the killed teardown removed the record");
    assert!(ruleset().contains("18091"), "the port's rule went with the network lock held");
    let leases = std::fs::read_to_string("/run/ctr-helper/net/bridge.json").unwrap_or_default();
    assert!(leases.contains(&id), "the lease went with the network lock held: {leases}");
    drop(held);
    env.ctr().args(["network", "ls"]).ok();
    assert!(!record.exists(), "the next helper run left the record");
    assert!(!links().contains(&veth), "the next helper run left veth {veth}:\n{}", links());
    let leases = std::fs::read_to_string("/run/ctr-helper/net/bridge.json").unwrap_or_default();
    assert!(!leases.contains(&id), "the next helper run left the lease: {leases}");
    assert!(!ruleset().contains("18091"), "the next helper run left the port's rule:\n{}", ruleset());
}
