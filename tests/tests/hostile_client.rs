//! Two unprivileged users against the installed setuid helper, with a raw
//! client: one user's container (the victim, run through `ctr`) must come
//! through every request the other user can send, with hostile fields and
//! the victim's own container id; the helper must refuse or work under
//! hostile resource limits and closed stdio; and, killed at any step of a
//! Spawn with a published port, it must leave nothing that a reconcile
//! does not remove: no cgroup, veth, nft rule, lease, record or mount.
//!
//! The tests here share the default bridge and compare whole host states,
//! so they run one at a time.

use ctr_core::frame;
use ctr_core::idmap::IdMapEntry;
use ctr_core::ids::{ContainerId, ContainerName};
use ctr_core::limits::ResourceLimits;
use ctr_core::net::{Cidr, NetworkName, NetworkRequest, PortSpec};
use ctr_core::protocol::{HelperError, Request, Response, SpawnRequest, PROTOCOL_VERSION};
use ctr_tests::{env, Child, Env};
use nix::sys::ptrace;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LEASES: &str = "/run/ctr-helper/net";
const RECORDS: &str = "/run/ctr-helper";

/// A user as the helper sees it.
#[derive(Clone, Copy, Debug)]
struct User {
    uid: u32,
    gid: u32,
}

fn victim_user(env: &Env) -> User {
    User { uid: env.uid, gid: env.gid }
}

/// The second test user (`CTR_TEST_USER2`), or `nobody` where the driver
/// made none: any unprivileged user other than the victim will do.
fn attacker(env: &Env) -> User {
    let named = std::env::var("CTR_TEST_USER2").ok().and_then(|n| nix::unistd::User::from_name(&n).ok().flatten());
    let user = named.map_or(User { uid: 65534, gid: 65534 }, |u| User { uid: u.uid.as_raw(), gid: u.gid.as_raw() });
    assert_ne!(user.uid, env.uid);
    user
}

/// How to start the helper.
#[derive(Default, Clone)]
struct Launch {
    /// (RLIMIT_*, soft, hard), set last before exec.
    rlimits: Vec<(u32, u64, u64)>,
    close_stdio: bool,
}

/// One run of the installed helper as `user`, our socket on fd 3 and the
/// container's init channel on fd 4.
struct Session {
    channel: UnixStream,
    init: Option<UnixStream>,
    pid: Pid,
    stderr: Option<std::process::ChildStderr>,
}

// The helper is waited for with waitpid (a traced one must be), not Child::wait.
#[allow(clippy::zombie_processes)]
fn start(env: &Env, user: User, launch: &Launch) -> Session {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let (init_ours, init_theirs) = UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let (fd3, fd4) = (theirs.as_raw_fd(), init_theirs.as_raw_fd());
    let launch = launch.clone();
    let mut cmd = Command::new(env.helper_path());
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).env_clear();
    // SAFETY: runs between fork and exec; only async-signal-safe system
    // calls (setgroups, setresgid, setresuid, dup2, close, setrlimit,
    // ptrace), on values computed before the fork; nothing is allocated.
    unsafe {
        cmd.pre_exec(move || {
            let (g, u) = (nix::unistd::Gid::from_raw(user.gid), nix::unistd::Uid::from_raw(user.uid));
            nix::unistd::setgroups(&[g])?;
            nix::unistd::setresgid(g, g, g)?;
            nix::unistd::setresuid(u, u, u)?;
            nix::unistd::dup2(fd3, 3)?;
            nix::unistd::dup2(fd4, 4)?;
            if launch.close_stdio {
                for fd in 0..3 {
                    libc::close(fd);
                }
            }
            for &(resource, soft, hard) in &launch.rlimits {
                let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
                if libc::setrlimit(resource, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("start the installed helper");
    drop((theirs, init_theirs));
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    Session { channel: ours, init: Some(init_ours), pid, stderr: child.stderr.take() }
}

/// The helper as `user`, stopped before its exec and attached to by this
/// (root) process with PTRACE_ATTACH, so that the exec is set-user-ID (a
/// PTRACE_TRACEME tracee records its own credentials as its tracer's, and
/// the kernel then ignores the set-user-ID bit). Returns once attached.
fn start_traced(env: &Env, user: User) -> Session {
    use std::ffi::CString;
    let (ours, theirs) = UnixStream::pair().unwrap();
    let (init_ours, init_theirs) = UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let program = CString::new(env.helper_path().into_os_string().into_encoded_bytes()).unwrap();
    // Built before the fork: the child must not allocate.
    let argv = [program.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null").unwrap();
    let (fd3, fd4, null_fd) = (theirs.as_raw_fd(), init_theirs.as_raw_fd(), null.as_raw_fd());
    // SAFETY: the child makes only async-signal-safe system calls on values
    // prepared before the fork, then executes the helper or _exits.
    let pid = match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            let (g, u) = (nix::unistd::Gid::from_raw(user.gid), nix::unistd::Uid::from_raw(user.uid));
            let ok = nix::unistd::setgroups(&[g]).is_ok()
                && nix::unistd::setresgid(g, g, g).is_ok()
                && nix::unistd::setresuid(u, u, u).is_ok()
                && [(fd3, 3), (fd4, 4), (null_fd, 0), (null_fd, 1), (null_fd, 2)]
                    .iter()
                    .all(|&(from, to)| nix::unistd::dup2(from, to).is_ok())
                && nix::sys::signal::raise(Signal::SIGSTOP).is_ok();
            if ok {
                // SAFETY: NUL-terminated arrays of pointers to live C strings.
                unsafe { libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
            }
            // SAFETY: _exit has no preconditions.
            unsafe { libc::_exit(127) }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop((theirs, init_theirs, null));
    let stopped = waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WUNTRACED)).unwrap();
    assert!(matches!(stopped, WaitStatus::Stopped(_, Signal::SIGSTOP)), "{stopped:?}");
    ptrace::attach(pid).unwrap();
    assert!(matches!(waitpid(pid, None).unwrap(), WaitStatus::Stopped(_, Signal::SIGSTOP)));
    // TRACEEXEC: the exec is an event stop, not a SIGTRAP to pass on.
    let options = ptrace::Options::PTRACE_O_EXITKILL
        | ptrace::Options::PTRACE_O_TRACESYSGOOD
        | ptrace::Options::PTRACE_O_TRACEEXEC;
    ptrace::setoptions(pid, options).unwrap();
    // Ends the group stop of its raise: threads it starts would stop in it.
    kill(pid, Signal::SIGCONT).unwrap();
    Session { channel: ours, init: Some(init_ours), pid, stderr: None }
}

impl Session {
    fn send(&mut self, request: &Request) {
        let _ = self.channel.write_all(&frame::encode(request).unwrap());
    }

    fn receive(&mut self) -> Option<Response> {
        frame::read_frame(&mut self.channel).ok()
    }

    /// Waits for the (untraced) helper; its exit status and stderr.
    fn finish(mut self) -> (WaitStatus, String) {
        let status = waitpid(self.pid, None).unwrap();
        let mut err = String::new();
        if let Some(stderr) = self.stderr.as_mut() {
            let _ = stderr.read_to_string(&mut err);
        }
        (status, err)
    }
}

/// Hello and one request as `user`; the answer (None: no frame came).
fn ask(env: &Env, user: User, launch: &Launch, request: &Request) -> (Option<Response>, Session) {
    let mut s = start(env, user, launch);
    s.send(&Request::Hello { version: PROTOCOL_VERSION });
    match s.receive() {
        Some(Response::Hello { .. }) => {}
        other => return (other, s),
    }
    s.send(request);
    let answer = s.receive();
    (answer, s)
}

/// A request that must be answered, not refused; the helper exits 0.
#[track_caller]
fn must_answer(env: &Env, user: User, request: &Request) -> Response {
    let (answer, s) = ask(env, user, &Launch::default(), request);
    let (status, err) = s.finish();
    match answer {
        Some(Response::Refused(e)) => panic!("{request:?} refused: {e}\n{err}"),
        Some(a) if matches!(status, WaitStatus::Exited(_, 0)) => a,
        other => panic!("{request:?}: {other:?}, {status:?}\n{err}"),
    }
}

fn random_id() -> ContainerId {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
    ContainerId::from_bytes(&bytes)
}

fn spawn_request(id: &ContainerId, user: User, network: NetworkRequest) -> SpawnRequest {
    SpawnRequest {
        id: id.clone(),
        name: ContainerName::parse("hostile").unwrap(),
        user_namespace: true,
        network,
        uid_map: vec![IdMapEntry::new(0, user.uid, 1).unwrap()],
        gid_map: vec![IdMapEntry::new(0, user.gid, 1).unwrap()],
        limits: ResourceLimits::default(),
    }
}

fn bridge(ports: &[&str], address: Option<&str>) -> NetworkRequest {
    NetworkRequest::Bridge {
        network: NetworkName::default_network(),
        address: address.map(|a| a.parse().unwrap()),
        ports: ports.iter().map(|p| PortSpec::parse(p).unwrap()).collect(),
    }
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn links() -> BTreeSet<String> {
    run("ip", &["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1).map(|n| n.split('@').next().unwrap_or(n).to_owned()))
        .collect()
}

/// Every rule in ctr's tables, `family chain comment`, and every map
/// element there, `family map key -> chain` (a container's rules are
/// reached through its elements), sorted.
fn rules() -> Vec<String> {
    let listing: serde_json::Value = serde_json::from_str(&run("nft", &["-j", "list", "ruleset"])).unwrap_or_default();
    let entries = listing["nftables"].as_array().into_iter().flatten();
    let ours = |r: &&serde_json::Value| r["table"] == "ctr";
    let rules = entries.clone().filter_map(|e| e.get("rule")).filter(ours);
    let mut rules: Vec<String> = rules.map(|r| format!("{} {} {}", r["family"], r["chain"], r["comment"])).collect();
    for map in entries.filter_map(|e| e.get("map")).filter(ours) {
        for elem in map["elem"].as_array().into_iter().flatten() {
            rules.push(format!("{} {} {} -> {}", map["family"], map["name"], elem[0], elem[1]["jump"]["target"]));
        }
    }
    rules.sort();
    rules
}

/// Every lease in every lease file: `file addr uid id interface`.
fn leases() -> BTreeSet<String> {
    let Ok(dir) = std::fs::read_dir(LEASES) else { return BTreeSet::new() };
    let mut out = BTreeSet::new();
    for path in dir.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")) {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&std::fs::read(&path).unwrap_or_default()) else {
            continue;
        };
        for (addr, l) in value["leases"].as_object().into_iter().flatten() {
            let name = path.file_name().unwrap().to_string_lossy();
            out.insert(format!("{name} {addr} {} {} {}", l["owner_uid"], l["container_id"], l["interface"]));
        }
    }
    out
}

/// What a helper run can leave on the host, for the given users.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    cgroups: BTreeSet<String>,
    links: BTreeSet<String>,
    rules: Vec<String>,
    leases: BTreeSet<String>,
    records: BTreeSet<String>,
    mounts: BTreeSet<String>,
}

impl HostState {
    fn now(users: &[User]) -> Self {
        let records = users
            .iter()
            .flat_map(|u| std::fs::read_dir(Path::new(RECORDS).join(u.uid.to_string())).into_iter().flatten())
            .filter_map(|e| Some(e.ok()?.path().display().to_string()))
            .collect();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        Self {
            cgroups: ctr_tests::cgroup_leftovers().iter().map(|p| p.display().to_string()).collect(),
            links: links(),
            rules: rules(),
            leases: leases(),
            records,
            mounts: ctr_tests::procfs::parse_mountinfo(&mountinfo)
                .iter()
                .map(|m| m.mount_point.display().to_string())
                .collect(),
        }
    }
}

/// Reconciles as `user` until the host is as `baseline` (processes the
/// killed helper left take a moment to die); panics with the difference.
#[track_caller]
fn settle(env: &Env, user: User, baseline: &HostState, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = must_answer(env, user, &Request::Reconcile);
        assert!(matches!(answer, Response::Reconciled { .. }), "{answer:?}");
        let now = HostState::now(&[victim_user(env), attacker(env)]);
        if &now == baseline {
            return;
        }
        if Instant::now() > deadline {
            panic!("{what}: the host is not as before after a reconcile:\nbefore: {baseline:#?}\nafter: {now:#?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A full Spawn with a published port as `user`; the container is then
/// left to die (its init channel closed) for a reconcile to clean up.
fn spawn_and_abandon(env: &Env, user: User, launch: &Launch, port: &str) -> (Option<Response>, String) {
    let id = random_id();
    let (answer, mut s) = ask(env, user, launch, &Request::Spawn(spawn_request(&id, user, bridge(&[port], None))));
    s.init = None;
    let (_, err) = s.finish();
    (answer, err)
}

// ---------------------------------------------------------------------------
// The victim: a container of the first user, and everything it holds.

struct Victim {
    env: Env,
    name: String,
    child: Option<Child>,
    id: ContainerId,
    user: User,
    lease: String,
    veth: String,
    rules: usize,
    cgroup: String,
}

impl Victim {
    fn start(env: &Env, port: u16) -> Self {
        env.ensure_alpine_image("alpine");
        let name = ctr_tests::unique_name("victim");
        let mut child = env
            .ctr()
            .args([
                "run",
                "--rm",
                "--name",
                &name,
                "-p",
                &format!("{port}:80"),
                "alpine",
                "sh",
                "-c",
                "echo ready; sleep 300",
            ])
            .timeout(Duration::from_secs(600))
            .spawn();
        child.wait_for_stdout("ready", Duration::from_secs(30));
        let user = victim_user(env);
        let cgroup = ctr_tests::cgroup_leftovers()
            .into_iter()
            .map(|p| p.display().to_string())
            .find(|p| p.contains(&format!("ctr-{}-", user.uid)))
            .expect("the victim's cgroup");
        let id = ContainerId::parse(cgroup.rsplit(&format!("ctr-{}-", user.uid)).next().unwrap()).unwrap();
        let lease = leases().into_iter().find(|l| l.contains(id.as_str())).expect("the victim's lease");
        let veth = lease.rsplit(' ').next().unwrap().trim_matches('"').to_owned();
        let mut victim = Self { env: env.clone(), name, child: Some(child), id, user, lease, veth, rules: 0, cgroup };
        victim.rules = victim.own_rules();
        assert_eq!(victim.rules, 6, "1 DNAT and 5 anti-spoofing rules");
        victim
    }

    /// Rules tagged as the victim's (`ctr:<uid>:<id>`, or `ctr:<id>` as the
    /// old helper tagged them): not the attacker's rules for the same id.
    fn own_rules(&self) -> usize {
        let tags = [format!("\"ctr:{}:{}\"", self.user.uid, self.id), format!("\"ctr:{}\"", self.id)];
        rules().iter().filter(|r| tags.iter().any(|t| r.ends_with(t.as_str()))).count()
    }

    /// The container runs and keeps its cgroup, veth, lease, rules and record.
    #[track_caller]
    fn check(&mut self, after: &str) {
        assert!(self.child.as_mut().is_some_and(Child::is_running), "after {after}: the victim's container stopped");
        assert!(Path::new(&self.cgroup).is_dir(), "after {after}: the victim's cgroup is gone");
        assert!(links().contains(&self.veth), "after {after}: the victim's veth {} is gone", self.veth);
        assert!(leases().contains(&self.lease), "after {after}: the victim's lease changed: {:?}", leases());
        assert_eq!(self.own_rules(), self.rules, "after {after}: the victim's rules changed");
        let record = Path::new(RECORDS).join(self.user.uid.to_string()).join(self.id.as_str());
        assert!(record.exists(), "after {after}: the victim's record is gone");
    }

    fn stop(self, _env: &Env) {}
}

/// Also when a check failed: the next test compares whole host states.
impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.env.ctr().args(["rm", "-f", &self.name]).output();
        if let Some(child) = self.child.take() {
            let _ = child.wait();
        }
        self.env.await_helper_teardowns();
    }
}

/// Sends `request` as the attacker; whatever the answer, the victim must
/// be intact, and whatever the attacker got must go again with its own
/// removal (which must not reach the victim either).
fn attack(env: &Env, victim: &mut Victim, request: Request) {
    let what = format!("{:?}", request).chars().take(160).collect::<String>();
    let user = attacker(env);
    let (answer, mut s) = ask(env, user, &Launch::default(), &request);
    s.init = None;
    let _ = s.finish();
    victim.check(&what);
    if let (Request::Spawn(spawn), Some(Response::Spawned { .. })) = (&request, &answer) {
        must_answer(env, user, &Request::RemoveCgroup { id: spawn.id.clone() });
        victim.check(&format!("the attacker's removal of its {what}"));
    }
}

/// CVE-2026-39402 (lxc-user-nic: another user's NIC), ctr's version: the
/// host veth was named after the caller-chosen container id, and a Spawn
/// whose id collided failed with EEXIST and then deleted the other user's
/// veth and rules in its cleanup. Now names are random, everything is keyed
/// on (uid, id), and teardown touches only what the caller's record names.
#[test]
fn cve_2026_39402_a_colliding_container_id_cannot_touch_another_users_veth_rules_or_lease() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut victim = Victim::start(&env, 18601);
    let attacker = attacker(&env);
    let victim_id = victim.id.clone();
    let same_id = |network| Request::Spawn(spawn_request(&victim_id, attacker, network));
    attack(&env, &mut victim, same_id(bridge(&["18602:80"], None)));
    attack(&env, &mut victim, same_id(bridge(&["18601:80"], None)));
    let address = victim.lease.split(' ').nth(1).unwrap().to_owned();
    attack(&env, &mut victim, same_id(bridge(&[], Some(&address))));
    attack(&env, &mut victim, same_id(NetworkRequest::None));
    attack(&env, &mut victim, Request::RemoveCgroup { id: victim_id.clone() });
    attack(&env, &mut victim, Request::Reconcile);
    victim.stop(&env);
}

/// CVE-2017-5985 (lxc-user-nic moved a NIC into a network namespace the
/// caller named but did not own). No request names a namespace, a pid or a
/// path: the veth's peer goes only into the helper's own fresh child's
/// namespace. Another user's Spawn, even with the victim's id, puts nothing
/// into the victim's namespace or the host's but its own host-side veth.
#[test]
fn cve_2017_5985_a_users_nic_goes_only_into_its_own_fresh_containers_namespace() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut victim = Victim::start(&env, 18611);
    let victim_pid = std::fs::read_to_string(Path::new(&victim.cgroup).join("cgroup.procs")).unwrap();
    let victim_pid = victim_pid.lines().next().unwrap().trim().to_owned();
    let victim_ns = format!("/proc/{victim_pid}/ns/net");
    let victim_links = run("nsenter", &[&format!("--net={victim_ns}"), "ip", "-o", "link", "show"]);
    let host_links = links();
    let attacker = attacker(&env);
    let request = Request::Spawn(spawn_request(&victim.id, attacker, bridge(&[], None)));
    let (answer, mut s) = ask(&env, attacker, &Launch::default(), &request);
    let Some(Response::Spawned { pid, .. }) = answer else { panic!("{answer:?}") };
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let their_links = run("nsenter", &[&format!("--net=/proc/{pid}/ns/net"), "ip", "-o", "link", "show"]);
    let new_links: Vec<String> = links().difference(&host_links).cloned().collect();
    s.init = None;
    let _ = s.finish();
    assert_ne!(theirs, std::fs::read_link(&victim_ns).unwrap());
    assert_ne!(theirs, std::fs::read_link("/proc/self/ns/net").unwrap());
    assert!(their_links.contains("eth0"), "{their_links}");
    assert_eq!(run("nsenter", &[&format!("--net={victim_ns}"), "ip", "-o", "link", "show"]), victim_links);
    assert_eq!(new_links.len(), 1, "{new_links:?}");
    assert!(new_links[0].starts_with("veth") && new_links[0] != victim.veth, "{new_links:?}");
    must_answer(&env, attacker, &Request::RemoveCgroup { id: victim.id.clone() });
    victim.check("the attacker's spawn and removal with the victim's id");
    victim.stop(&env);
}

/// Every request type, with hostile fields, from the other user.
#[test]
fn every_request_type_from_another_user_leaves_the_victims_container_alone() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut victim = Victim::start(&env, 18621);
    let a = attacker(&env);
    let id = victim.id.clone();
    let big = ResourceLimits { memory: Some(u64::MAX), pids_limit: Some(i64::MAX as u64), ..Default::default() };
    let requests = vec![
        Request::Hello { version: PROTOCOL_VERSION },
        Request::Spawn(SpawnRequest { limits: big, ..spawn_request(&id, a, NetworkRequest::None) }),
        Request::Spawn(SpawnRequest {
            uid_map: vec![IdMapEntry::new(0, a.uid, 1).unwrap(), IdMapEntry::new(1, victim.user.uid, 1).unwrap()],
            ..spawn_request(&id, a, NetworkRequest::None)
        }),
        Request::Spawn(SpawnRequest { user_namespace: false, ..spawn_request(&id, a, NetworkRequest::Host) }),
        Request::Spawn(spawn_request(&id, a, bridge(&["65535:65535", "18621:1/udp"], Some("10.88.255.254")))),
        Request::Exec { id: id.clone() },
        Request::Freeze { id: id.clone(), frozen: true },
        Request::Freeze { id: id.clone(), frozen: false },
        Request::Update { id: id.clone(), limits: ResourceLimits { memory: Some(6 << 20), ..Default::default() } },
        Request::RemoveCgroup { id: id.clone() },
        Request::NetworkCreate { name: NetworkName::parse("bridge").unwrap(), subnet: None },
        Request::NetworkCreate {
            name: NetworkName::parse("hostile").unwrap(),
            subnet: Some(Cidr::parse("10.88.0.0/16").unwrap()),
        },
        Request::NetworkRemove { name: NetworkName::default_network() },
        Request::NetworkList,
        Request::Reconcile,
    ];
    for request in requests {
        attack(&env, &mut victim, request);
    }
    // Out-of-range versions, as raw Hellos.
    for version in [0, u32::MAX] {
        let mut s = start(&env, a, &Launch::default());
        s.send(&Request::Hello { version });
        assert!(matches!(s.receive(), Some(Response::Refused(HelperError::Version { .. }))));
        let _ = s.finish();
        victim.check(&format!("Hello {{ version: {version} }}"));
    }
    victim.stop(&env);
}

/// `Update` (`ctr update`) names a container only by id, and the helper
/// looks it up in the caller's own records: another user's container id is
/// refused, and its limits stay as they were. No request field is a path.
#[test]
fn update_of_another_users_container_is_refused_and_changes_nothing() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut victim = Victim::start(&env, 18631);
    let memory_files = |victim: &Victim| -> Vec<String> {
        ["memory.limit_in_bytes", "memory.max"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(Path::new(&victim.cgroup).join(f)).ok())
            .collect()
    };
    let before = memory_files(&victim);
    let limits = ResourceLimits { memory: Some(6 << 20), pids_limit: Some(1), ..Default::default() };
    let request = Request::Update { id: victim.id.clone(), limits };
    let (answer, s) = ask(&env, attacker(&env), &Launch::default(), &request);
    let _ = s.finish();
    assert!(matches!(answer, Some(Response::Refused(HelperError::NoSuchContainer(_)))), "{answer:?}");
    assert_eq!(memory_files(&victim), before, "the victim's limits changed");
    victim.check("the attacker's Update");
    victim.stop(&env);
}

// ---------------------------------------------------------------------------
// Hostile resource limits and closed stdio.

const INF: u64 = libc::RLIM_INFINITY;

/// Each launch either works (and its container goes cleanly) or is refused
/// up front with a typed error and leaves nothing; the old helper died of
/// SIGXFSZ half-way through a Spawn and left its cgroup, veth and rules.
#[test]
fn under_hostile_rlimits_and_closed_stdio_the_helper_works_or_refuses_and_leaves_nothing() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let user = victim_user(&env);
    let hard_nofile = {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes only the struct it is given.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        limit.rlim_max
    };
    let (fsize, cpu, nofile, addr) = (libc::RLIMIT_FSIZE, libc::RLIMIT_CPU, libc::RLIMIT_NOFILE, libc::RLIMIT_AS);
    // Warm up: the bridge and its network rules exist from here on.
    let (answer, err) = spawn_and_abandon(&env, user, &Launch::default(), "18631:80");
    assert!(matches!(answer, Some(Response::Spawned { .. })), "{answer:?}\n{err}");
    let baseline = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            must_answer(&env, user, &Request::Reconcile);
            let state = HostState::now(&[user, attacker(&env)]);
            // The warm-up's lease and its record can go in different
            // reconciles (its owner may die between the two steps).
            let own_lease = state.leases.iter().any(|l| l.contains(&format!(" {} ", user.uid)));
            let own_record = state.records.iter().any(|r| r.starts_with(&format!("{RECORDS}/{}/", user.uid)));
            if !(own_lease || own_record) || Instant::now() > deadline {
                break state;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let cases: Vec<(&str, Launch, bool)> = vec![
        ("soft FSIZE 1", Launch { rlimits: vec![(fsize, 1, INF)], ..Default::default() }, true),
        ("soft FSIZE 0", Launch { rlimits: vec![(fsize, 0, INF)], ..Default::default() }, true),
        ("hard FSIZE 1", Launch { rlimits: vec![(fsize, 1, 1)], ..Default::default() }, false),
        ("soft CPU 1", Launch { rlimits: vec![(cpu, 1, INF)], ..Default::default() }, true),
        ("hard CPU 1", Launch { rlimits: vec![(cpu, 1, 1)], ..Default::default() }, false),
        ("soft NOFILE 12", Launch { rlimits: vec![(nofile, 12, hard_nofile)], ..Default::default() }, true),
        ("hard NOFILE 12", Launch { rlimits: vec![(nofile, 12, 12)], ..Default::default() }, false),
        ("soft AS 256M", Launch { rlimits: vec![(addr, 256 << 20, INF)], ..Default::default() }, true),
        ("hard AS 256M", Launch { rlimits: vec![(addr, 256 << 20, 256 << 20)], ..Default::default() }, false),
        ("closed stdio", Launch { close_stdio: true, ..Default::default() }, true),
        (
            "all at once, soft",
            Launch { rlimits: vec![(fsize, 0, INF), (cpu, 1, INF), (nofile, 12, hard_nofile)], close_stdio: true },
            true,
        ),
    ];
    for (what, launch, works) in cases {
        let (answer, err) = spawn_and_abandon(&env, user, &launch, "18632:80");
        match (&answer, works) {
            (Some(Response::Spawned { .. }), true) => {}
            (Some(Response::Refused(HelperError::ResourceLimit { .. })), false) => {}
            _ => panic!("{what}: {answer:?}\n{err}"),
        }
        settle(&env, user, &baseline, what);
    }
}

// ---------------------------------------------------------------------------
// Killed at every step.

/// Runs a traced helper (as the test user) through a Spawn with a published
/// port on the default bridge and SIGKILLs it at its `kill_at`-th syscall
/// stop (entry or exit); returns how many stops it made.
fn traced_spawn(env: &Env, kill_at: usize) -> usize {
    let user = victim_user(env);
    let id = random_id();
    let mut s = start_traced(env, user);
    s.send(&Request::Hello { version: PROTOCOL_VERSION });
    s.send(&Request::Spawn(spawn_request(&id, user, bridge(&["18641:80"], None))));
    let pid = s.pid;
    let (mut stops, mut pending) = (0, None);
    loop {
        ptrace::syscall(pid, pending.take()).unwrap();
        match waitpid(pid, None).unwrap() {
            WaitStatus::PtraceSyscall(_) => {
                stops += 1;
                if stops == kill_at {
                    kill(pid, Signal::SIGKILL).unwrap();
                    while !matches!(waitpid(pid, None).unwrap(), WaitStatus::Signaled(..) | WaitStatus::Exited(..)) {}
                    break;
                }
            }
            // The SIGSTOPs of the attach and of the child's own raise stay suppressed.
            WaitStatus::Stopped(_, signal) => pending = (signal != Signal::SIGSTOP).then_some(signal),
            WaitStatus::Exited(..) | WaitStatus::Signaled(..) => break,
            _ => {}
        }
    }
    // The container's init (if it got that far) sees its channel close.
    s.init = None;
    stops
}

/// A helper killed at any step of a Spawn with a published port leaves
/// nothing that the next reconcile does not remove.
#[test]
fn a_helper_killed_at_any_step_of_a_spawn_leaves_nothing_after_a_reconcile() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let user = victim_user(&env);
    // Warm up: the bridge and its network rules exist from here on.
    let total = traced_spawn(&env, usize::MAX);
    let baseline = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            must_answer(&env, user, &Request::Reconcile);
            let state = HostState::now(&[user, attacker(&env)]);
            // The warm-up's lease and its record can go in different
            // reconciles (its owner may die between the two steps).
            let own_lease = state.leases.iter().any(|l| l.contains(&format!(" {} ", user.uid)));
            let own_record = state.records.iter().any(|r| r.starts_with(&format!("{RECORDS}/{}/", user.uid)));
            if !(own_lease || own_record) || Instant::now() > deadline {
                break state;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    assert!(total > 100, "only {total} syscall stops in a whole Spawn?");
    // Every stop would take a few minutes; 150 points spread over the run
    // (with a different offset on each run) cover every phase of it.
    let points = 150.min(total);
    let offset = usize::try_from(std::process::id()).unwrap() % (total / points);
    let (mut killed, mut half_done) = (0, 0);
    for n in (1..=points).map(|i| i * total / points - offset).filter(|&n| n >= 1) {
        if traced_spawn(&env, n) >= n {
            killed += 1;
        }
        // Whether the kill left anything for the reconcile to remove.
        if HostState::now(&[user, attacker(&env)]) != baseline {
            half_done += 1;
        }
        settle(&env, user, &baseline, &format!("killed at syscall stop {n} of {total}"));
    }
    eprintln!(
        "{total} syscall stops in a Spawn; killed at {killed} points, {half_done} of which left something behind"
    );
    assert!(killed > points / 2, "only {killed} runs were killed");
    assert!(
        half_done > points / 4,
        "only {half_done} kills left anything: the test does not reach the half-done states"
    );
}
