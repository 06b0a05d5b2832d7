//! `cargo xtask bench net`: what ctr's bridge network costs (issue 6,
//! "Speed"). Two numbers, reported, never asserted:
//!
//! - TCP throughput from one container to another over the bridge, next to
//!   a bare veth pair between two plain network namespaces (the floor a
//!   veth-based network can reach): `iperf3 -t SECONDS`, the two paths
//!   taking turns, the median of a few runs each, their ratio (the bar is
//!   0.9x) and each round's ratio, which a busy machine disturbs less;
//! - the start time networking adds: the median of `ctr run --rm --network
//!   bridge alpine /bin/true` minus the median with `--network none`.
//!
//! Containers are started as the test user through the installed setuid
//! helper, as in the other benchmarks. The bridge, its NAT rules and the
//! `ip_forward` sysctl the helper sets all land in a network namespace of the
//! run's own: the work is done by a hidden child, `xtask bench net-inner`,
//! started under `nsenter --net` (as the test driver starts the integration
//! tests). iperf3 is the host's binary, run as root inside each container's
//! network namespace with `nsenter --target PID --net`; no traffic leaves
//! that namespace, the containers' or the two bare ones.

use crate::setup::TestRun;
use crate::test_driver::TEST_PACKAGES;
use crate::{host, interrupt};
use anyhow::{anyhow, bail, Context, Result};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "alpine";
const IPERF_PORT: u16 = 5201;
const HOST_IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";
/// The bare pair's addresses, inside namespaces of their own.
const BARE_SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 1);
const BARE_CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 2);
const THROUGHPUT_BAR: f64 = 0.9;

/// What the outer and the inner process agree on.
#[derive(Debug, Clone, Copy)]
pub struct NetBenchArgs {
    /// Timed `ctr run` starts per network mode.
    pub start_runs: usize,
    /// iperf3 runs per path.
    pub iperf_runs: usize,
    /// Length of each iperf3 run.
    pub seconds: u32,
}

impl NetBenchArgs {
    fn check(&self) -> Result<()> {
        if self.start_runs == 0 || self.iperf_runs == 0 || self.seconds == 0 {
            bail!("--runs, --iperf-runs and --seconds must be at least 1");
        }
        Ok(())
    }
}

/// The bare namespaces' names: chosen by the outer process, so that it can
/// delete them even when the inner one was killed before its own cleanup.
fn bare_netns_names(outer_pid: u32) -> [String; 2] {
    [format!("ctr-bench-{outer_pid}-srv"), format!("ctr-bench-{outer_pid}-cli")]
}

/// `cargo xtask bench net`: sets up the run, starts the inner process in
/// the run's network namespace, and checks afterwards that the host's
/// `ip_forward` is as it was.
pub fn net(args: NetBenchArgs) -> Result<()> {
    host::require_root("bench net")?;
    args.check()?;
    interrupt::install()?;
    host::ensure_packages(TEST_PACKAGES)?;
    host::ensure_packages(&["iperf3"])?;
    let forward_before = read_host_ip_forward()?;

    let mut run = TestRun::setup()?;
    let netns = run.add_netns()?;
    // The inner process, its containers and their cgroups nest in this scope.
    run.enter_cgroup_scope()?;
    let [bare_server, bare_client] = bare_netns_names(std::process::id());
    let exe = std::env::current_exe().context("cannot find the xtask binary")?;
    let mut inner = Command::new("nsenter");
    inner
        .arg(format!("--net=/run/netns/{netns}"))
        .arg("--")
        .arg(exe)
        .args(["bench", "net-inner"])
        .args(["--runs", &args.start_runs.to_string()])
        .args(["--iperf-runs", &args.iperf_runs.to_string()])
        .args(["--seconds", &args.seconds.to_string()])
        .args(["--bare-server-netns", &bare_server, "--bare-client-netns", &bare_client])
        .envs(run.test_vars());
    let result = host::run(&mut inner);
    for name in [&bare_server, &bare_client] {
        if Path::new("/run/netns").join(name).exists() {
            eprintln!("xtask: warning: the inner benchmark left network namespace {name}; deleting it");
            if let Some(warning) = delete_netns(name) {
                eprintln!("xtask: warning: {warning}");
            }
        }
    }
    drop(run);

    let forward_after = read_host_ip_forward()?;
    println!("\nhost net.ipv4.ip_forward: {forward_before} before, {forward_after} after");
    if forward_after != forward_before {
        eprintln!("xtask: warning: the host's net.ipv4.ip_forward changed during the benchmark");
    }
    result
}

fn read_host_ip_forward() -> Result<String> {
    Ok(std::fs::read_to_string(HOST_IP_FORWARD)
        .with_context(|| format!("cannot read {HOST_IP_FORWARD}"))?
        .trim()
        .to_owned())
}

/// The hidden `xtask bench net-inner`, in the run's network namespace: the
/// measurements and the tables. `ctr_tests::env()` reads the setup from the
/// `CTR_TEST_*` variables the outer process passed.
pub fn net_inner(args: NetBenchArgs, bare_server: &str, bare_client: &str) -> Result<()> {
    args.check()?;
    interrupt::install()?;
    refuse_host_netns("bench net-inner", "bench net")?;
    let env = ctr_tests::env().context("run through `cargo xtask bench net`: the CTR_TEST_* variables are unset")?;
    let mut teardown = Teardown::new(&env);

    let start = caught(|| time_start(&env, args.start_runs));
    print_start_table(&start, args.start_runs);

    let bare = set_up_bare(&mut teardown, bare_server, bare_client);
    let bridge = set_up_bridge(&mut teardown, &env);
    let [bare, bridge] = measure_throughput(&mut teardown, [&bare, &bridge], args);
    print_throughput_table(&bare, &bridge, args);
    drop(teardown);
    Ok(())
}

/// The inner process must not touch the host's network: it refuses to run
/// in its parent's network namespace (the outer process's is the host's).
pub fn refuse_host_netns(what: &str, via: &str) -> Result<()> {
    let netns_of = |pid: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/net")).with_context(|| format!("cannot read /proc/{pid}/ns/net"))
    };
    if netns_of("self")? == netns_of(&std::os::unix::process::parent_id().to_string())? {
        bail!("{what} runs only inside the benchmark's network namespace: use `cargo xtask {via}`");
    }
    Ok(())
}

/// Everything the inner process creates, undone when dropped (after
/// success, an error or Ctrl-C): the iperf3 processes first (a process in a
/// namespace keeps it alive), then the containers, then the bare network
/// namespaces (which take their veths with them).
struct Teardown<'a> {
    env: &'a ctr_tests::Env,
    processes: Vec<Child>,
    containers: Vec<String>,
    netns: Vec<String>,
}

impl<'a> Teardown<'a> {
    fn new(env: &'a ctr_tests::Env) -> Self {
        Self { env, processes: Vec::new(), containers: Vec::new(), netns: Vec::new() }
    }

    /// Kills and reaps the process at `index` (by its pid) if it still runs.
    fn stop_process(&mut self, index: usize) {
        let mut child = self.processes.swap_remove(index);
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        while !self.processes.is_empty() {
            self.stop_process(self.processes.len() - 1);
        }
        for name in self.containers.drain(..) {
            // The harness panics on a timeout; a panic in drop would abort.
            let removed = caught(|| {
                let out = self.env.ctr().args(["rm", "-f", &name]).output();
                if !out.success() {
                    bail!("`ctr rm -f {name}` failed ({}): {}", out.status, out.stderr.trim());
                }
                Ok(())
            });
            if let Err(e) = removed {
                eprintln!("xtask: warning: {e:#}");
            }
        }
        for name in self.netns.drain(..) {
            if let Some(warning) = delete_netns(&name) {
                eprintln!("xtask: warning: {warning}");
            }
        }
    }
}

fn delete_netns(name: &str) -> Option<String> {
    match Command::new("ip").args(["netns", "delete", name]).stdin(Stdio::null()).status() {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("`ip netns delete {name}` failed ({s})")),
        Err(e) => Some(format!("cannot run `ip netns delete {name}`: {e}")),
    }
}

/// `(none, bridge)` start times, interleaved so that drift in the machine's
/// load hits both alike; one untimed warm-up of each first (the first
/// bridge run also creates the bridge and its rules).
struct StartTimes {
    none: Vec<Duration>,
    bridge: Vec<Duration>,
}

fn time_start(env: &ctr_tests::Env, runs: usize) -> Result<StartTimes> {
    env.ensure_alpine_image(IMAGE);
    let run_once = |network: &str| -> Result<Duration> {
        let started = Instant::now();
        let out = env.ctr().args(["run", "--rm", "--network", network, IMAGE, "/bin/true"]).output();
        let elapsed = started.elapsed();
        if !out.success() {
            bail!("`ctr run --rm --network {network}` failed ({}): {}", out.status, out.stderr.trim());
        }
        Ok(elapsed)
    };
    run_once("none").context("warm-up failed")?;
    run_once("bridge").context("warm-up failed")?;
    let mut times = StartTimes { none: Vec::new(), bridge: Vec::new() };
    for i in 0..runs {
        interrupt::check()?;
        let context = || format!("run {} of {runs} failed", i + 1);
        times.none.push(run_once("none").with_context(context)?);
        times.bridge.push(run_once("bridge").with_context(context)?);
    }
    Ok(times)
}

/// A network namespace to run a program in, as `nsenter` options.
struct NetnsRef {
    nsenter_args: Vec<String>,
}

impl NetnsRef {
    fn named(name: &str) -> Self {
        Self { nsenter_args: vec![format!("--net=/run/netns/{name}")] }
    }

    fn of_pid(pid: u32) -> Self {
        Self { nsenter_args: vec!["--target".into(), pid.to_string(), "--net".into()] }
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(&self.nsenter_args).arg("--").arg(program);
        cmd
    }
}

/// Where one iperf3 run goes: the server's and the client's namespaces
/// and the address the server listens on.
struct IperfPath {
    server: NetnsRef,
    client: NetnsRef,
    server_ip: Ipv4Addr,
}

/// Two fresh namespaces joined by a veth pair, nothing else: the floor.
fn set_up_bare(teardown: &mut Teardown<'_>, server_netns: &str, client_netns: &str) -> Result<IperfPath> {
    interrupt::check()?;
    for name in [server_netns, client_netns] {
        host::run(Command::new("ip").args(["netns", "add", name]))?;
        teardown.netns.push(name.to_owned());
    }
    let in_netns = |netns: &str, args: &[&str]| host::run(Command::new("ip").arg("-n").arg(netns).args(args));
    in_netns(
        server_netns,
        &["link", "add", "bench0", "type", "veth", "peer", "name", "bench1", "netns", client_netns],
    )?;
    for (netns, link, ip) in [(server_netns, "bench0", BARE_SERVER_IP), (client_netns, "bench1", BARE_CLIENT_IP)] {
        in_netns(netns, &["addr", "add", &format!("{ip}/30"), "dev", link])?;
        in_netns(netns, &["link", "set", link, "up"])?;
        in_netns(netns, &["link", "set", "lo", "up"])?;
    }
    Ok(IperfPath {
        server: NetnsRef::named(server_netns),
        client: NetnsRef::named(client_netns),
        server_ip: BARE_SERVER_IP,
    })
}

/// Two detached containers on the bridge; iperf3 from the second to the first.
fn set_up_bridge(teardown: &mut Teardown<'_>, env: &ctr_tests::Env) -> Result<IperfPath> {
    caught(|| {
        interrupt::check()?;
        env.ensure_alpine_image(IMAGE);
        let mut started = Vec::new();
        for name in ["bench-net-server", "bench-net-client"] {
            // Recorded first: a half-started container is removed too.
            teardown.containers.push(name.to_owned());
            let out =
                env.ctr().args(["run", "-d", "--network", "bridge", "--name", name, IMAGE, "sleep", "1000"]).output();
            if !out.success() {
                bail!("`ctr run -d --network bridge --name {name}` failed ({}): {}", out.status, out.stderr.trim());
            }
            started.push(inspect_pid_and_address(env, name)?);
        }
        let [(server_pid, server_ip), (client_pid, _)] = started[..] else { unreachable!("two containers") };
        Ok(IperfPath { server: NetnsRef::of_pid(server_pid), client: NetnsRef::of_pid(client_pid), server_ip })
    })
}

/// `args.iperf_runs` iperf3 runs on each path that could be set up, the
/// paths taking turns so that drift in the machine's load hits both alike.
/// Gbit/s per path; a path's first failure ends its runs.
fn measure_throughput<const N: usize>(
    teardown: &mut Teardown<'_>,
    paths: [&Result<IperfPath>; N],
    args: NetBenchArgs,
) -> [Result<Vec<f64>>; N] {
    let mut results = paths.map(|path| match path {
        Ok(_) => Ok(Vec::new()),
        Err(e) => Err(anyhow!("{e:#}")),
    });
    for i in 0..args.iperf_runs {
        for (path, result) in paths.iter().zip(results.iter_mut()) {
            let (Ok(path), Ok(gbits)) = (path, &mut *result) else { continue };
            let run = interrupt::check().and_then(|()| iperf_once(teardown, path, args.seconds));
            match run {
                Ok(g) => gbits.push(g),
                Err(e) => *result = Err(e.context(format!("iperf3 run {} of {}", i + 1, args.iperf_runs))),
            }
        }
    }
    results
}

/// A running container's init pid (as the host sees it) and its address.
fn inspect_pid_and_address(env: &ctr_tests::Env, name: &str) -> Result<(u32, Ipv4Addr)> {
    let out = env.ctr().args(["inspect", "--format", "{{.State.Pid}} {{.NetworkSettings.address}}", name]).output();
    if !out.success() {
        bail!("`ctr inspect {name}` failed ({}): {}", out.status, out.stderr.trim());
    }
    let text = out.stdout.trim();
    let (pid, address) = text.split_once(' ').with_context(|| format!("`ctr inspect {name}` printed {text:?}"))?;
    let pid: u32 = pid.parse().with_context(|| format!("`ctr inspect {name}`: pid {pid:?}"))?;
    if pid == 0 {
        bail!("container {name} is not running");
    }
    let address = address.parse().with_context(|| format!("`ctr inspect {name}`: address {address:?}"))?;
    Ok((pid, address))
}

/// One iperf3 run with a fresh one-shot server; Gbit/s.
fn iperf_once(teardown: &mut Teardown<'_>, path: &IperfPath, seconds: u32) -> Result<f64> {
    let ip = path.server_ip.to_string();
    let mut server_cmd = path.server.command("iperf3");
    server_cmd.args(["-s", "-1", "-B", &ip, "-p", &IPERF_PORT.to_string()]).stdout(Stdio::null());
    teardown.processes.push(host::spawn(&mut server_cmd)?);
    let server_index = teardown.processes.len() - 1;
    let result = (|| {
        wait_until_listening(&mut teardown.processes[server_index], path.server_ip)?;
        let mut client_cmd = path.client.command("iperf3");
        client_cmd.args(["-c", &ip, "-p", &IPERF_PORT.to_string(), "-t", &seconds.to_string(), "-J"]);
        let json = stdout_even_on_failure(&mut client_cmd)?;
        parse_gbits(&json)
    })();
    teardown.stop_process(server_index);
    result
}

/// Waits (up to 10 s) for the server's listening socket on `ip`, read from
/// /proc/PID/net/tcp, which shows the sockets of that process's namespace.
fn wait_until_listening(server: &mut Child, ip: Ipv4Addr) -> Result<()> {
    let wanted = listening_entry(ip, IPERF_PORT);
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.try_wait().context("cannot wait for the iperf3 server")? {
            bail!("the iperf3 server exited before listening ({status})");
        }
        let table = std::fs::read_to_string(format!("/proc/{}/net/tcp", server.id())).unwrap_or_default();
        if table.lines().any(|line| is_listening(line, &wanted)) {
            return Ok(());
        }
        interrupt::check()?;
        if Instant::now() > give_up {
            bail!("the iperf3 server is not listening on {ip}:{IPERF_PORT} after 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a /proc/net/tcp line is a socket listening (state 0A) on `local`.
fn is_listening(line: &str, local: &str) -> bool {
    let fields: Vec<&str> = line.split_whitespace().collect();
    fields.get(1) == Some(&local) && fields.get(3) == Some(&"0A")
}

/// A local address as /proc/net/tcp prints it: the address as a native
/// u32 in hex, a colon, the port in hex.
fn listening_entry(ip: Ipv4Addr, port: u16) -> String {
    format!("{:08X}:{port:04X}", u32::from_ne_bytes(ip.octets()))
}

/// Runs `cmd` (interruptibly) and returns its stdout whatever its exit
/// status: `iperf3 -J` reports its errors in the JSON.
fn stdout_even_on_failure(cmd: &mut Command) -> Result<String> {
    let what = host::describe(cmd);
    let mut child = host::spawn(cmd.stdout(Stdio::piped()))?;
    let mut pipe = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut pipe, &mut text).map(|_| text)
    });
    host::wait(&mut child, &what)?;
    reader.join().map_err(|_| anyhow!("reader thread panicked"))?.with_context(|| format!("cannot read `{what}`"))
}

/// The receiver's rate from `iperf3 -J`, in Gbit/s.
fn parse_gbits(json: &str) -> Result<f64> {
    let report: serde_json::Value = serde_json::from_str(json).context("iperf3 printed no JSON")?;
    if let Some(error) = report["error"].as_str() {
        bail!("iperf3: {error}");
    }
    let bits = report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .context("iperf3's JSON has no end.sum_received.bits_per_second")?;
    Ok(bits / 1e9)
}

/// The harness panics on a timeout or a missing program; the other rows
/// should still be reported, so a panic becomes this row's error.
fn caught<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| bail!("panicked (see the message above)"))
}

fn median_duration(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[(sorted.len() - 1) / 2]
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[(sorted.len() - 1) / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print_start_table(times: &Result<StartTimes>, runs: usize) {
    println!("\nstart time of `ctr run --rm --network MODE alpine /bin/true`, {runs} runs each, interleaved");
    match times {
        Ok(t) => {
            let (none, bridge) = (median_duration(&t.none), median_duration(&t.bridge));
            println!("{:<28} {:>10}", "network", "median ms");
            println!("{:<28} {:>10.2}", "none", ms(none));
            println!("{:<28} {:>10.2}", "bridge", ms(bridge));
            println!("{:<28} {:>10.2}", "added by networking", ms(bridge) - ms(none));
        }
        Err(e) => println!("failed: {e:#}"),
    }
}

fn print_throughput_table(bare: &Result<Vec<f64>>, bridge: &Result<Vec<f64>>, args: NetBenchArgs) {
    println!("\nTCP throughput, iperf3 -t {}, median of {} runs, interleaved", args.seconds, args.iperf_runs);
    println!("{:<36} {:>8} {:>8}  runs (Gbit/s)", "path", "Gbit/s", "vs bare");
    let bare_median = bare.as_ref().ok().map(|v| median(v));
    let rows = [("bare veth pair, netns to netns", bare), ("ctr bridge, container to container", bridge)];
    for (name, result) in rows {
        match result {
            Ok(gbits) => {
                let runs = gbits.iter().map(|g| format!("{g:.2}")).collect::<Vec<_>>().join(" ");
                let ratio = bare_median.map_or_else(|| "-".to_owned(), |b| format!("{:.2}x", median(gbits) / b));
                println!("{name:<36} {:>8.2} {ratio:>8}  {runs}", median(gbits));
            }
            Err(e) => println!("{name:<36} failed: {e:#}"),
        }
    }
    let (Some(bare_median), Ok(bare), Ok(bridge)) = (bare_median, bare, bridge) else { return };
    let ratio = median(bridge) / bare_median;
    let verdict = if ratio >= THROUGHPUT_BAR { "meets" } else { "is below" };
    println!("ctr bridge / bare veth = {ratio:.2}x, which {verdict} the bar of {THROUGHPUT_BAR:.1}x");
    // Each round ran both paths back to back, so its ratio is less exposed
    // to the machine's load changing between rounds.
    let per_round: Vec<f64> = bridge.iter().zip(bare).map(|(c, b)| c / b).collect();
    let shown = per_round.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" ");
    println!("per-round ratios: {shown} (median {:.2}x)", median(&per_round));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_address_is_native_endian_hex() {
        // 10.199.0.1:5201 on a little-endian machine, as /proc/net/tcp shows it.
        if cfg!(target_endian = "little") {
            assert_eq!(listening_entry(BARE_SERVER_IP, 5201), "0100C70A:1451");
        }
    }

    #[test]
    fn finds_the_listening_socket() {
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
        let listen = "   0: 0100C70A:1451 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1";
        let established =
            "   1: 0100C70A:1451 0200C70A:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1";
        assert!(is_listening(listen, "0100C70A:1451"));
        assert!(!is_listening(established, "0100C70A:1451"));
        assert!(!is_listening(header, "0100C70A:1451"));
    }

    #[test]
    fn reads_the_receivers_rate_or_the_error() {
        let ok = r#"{"end": {"sum_received": {"bits_per_second": 2.5e10}}}"#;
        assert!((parse_gbits(ok).unwrap() - 25.0).abs() < 1e-9);
        let err = r#"{"start": {}, "end": {}, "error": "unable to connect to server: Connection refused"}"#;
        assert!(parse_gbits(err).unwrap_err().to_string().contains("Connection refused"));
    }

    #[test]
    fn medians_take_the_lower_middle() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.0);
        let d = |ms| Duration::from_millis(ms);
        assert_eq!(median_duration(&[d(30), d(10), d(20)]), d(20));
    }
}
