//! A hostile client talks to the installed setuid helper directly, as the
//! unprivileged test user: every malformed or unauthorised request gets a
//! typed refusal on the wire, a non-zero exit, and leaves nothing behind.

use ctr_core::frame::{self, MAX_FRAME_LEN};
use ctr_core::idmap::IdMapEntry;
use ctr_core::ids::{ContainerId, ContainerName};
use ctr_core::net::{Cidr, NetworkName, NetworkRequest};
use ctr_core::protocol::{HelperError, Request, Response, SpawnRequest, PROTOCOL_VERSION};
use ctr_tests::{env, Env};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The helper, run as the test user with our socket on fd 3 (and another
/// socket on fd 4 as its init channel).
struct Session {
    channel: UnixStream,
    child: std::process::Child,
    _init: UnixStream,
}

fn start_helper(env: &Env) -> Session {
    start_helper_as(env, env.uid, env.gid)
}

/// The helper run by another user (root, for tests of ownership).
fn start_helper_as(env: &Env, uid: u32, gid: u32) -> Session {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let (init_ours, init_theirs) = UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (fd3, fd4) = (theirs.as_raw_fd(), init_theirs.as_raw_fd());
    let mut cmd = Command::new(env.helper_path());
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).env_clear();
    // SAFETY: runs between fork and exec; it only makes async-signal-safe
    // system calls (setgroups, setresgid, setresuid, dup2) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let g = nix::unistd::Gid::from_raw(gid);
            let u = nix::unistd::Uid::from_raw(uid);
            nix::unistd::setgroups(&[g])?;
            nix::unistd::setresgid(g, g, g)?;
            nix::unistd::setresuid(u, u, u)?;
            nix::unistd::dup2(fd3, 3)?;
            nix::unistd::dup2(fd4, 4)?;
            Ok(())
        });
    }
    let child = cmd.spawn().expect("start the installed helper");
    drop((theirs, init_theirs));
    Session { channel: ours, child, _init: init_ours }
}

impl Session {
    fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.channel.write_all(bytes);
    }

    fn send(&mut self, request: &Request) {
        let bytes = frame::encode(request).unwrap();
        self.send_raw(&bytes);
    }

    fn hello(&mut self) {
        self.send(&Request::Hello { version: PROTOCOL_VERSION });
        assert_eq!(self.receive(), Response::Hello { version: PROTOCOL_VERSION });
    }

    fn receive(&mut self) -> Response {
        frame::read_frame(&mut self.channel).expect("the helper answers with a frame")
    }

    /// Expects an answer that is not a refusal, then exit 0.
    fn answered(mut self) -> Response {
        let response = self.receive();
        assert!(!matches!(response, Response::Refused(_)), "refused: {response:?}");
        assert!(self.child.wait().unwrap().success(), "the helper failed after answering");
        response
    }

    /// Expects a refusal, then a non-zero exit; returns the refusal.
    fn refused(mut self) -> (HelperError, String) {
        let response = self.receive();
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        assert!(!status.success(), "the helper exited 0 after refusing");
        match response {
            Response::Refused(e) => (e, stderr),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

fn spawn_request(id: &ContainerId, env: &Env) -> SpawnRequest {
    SpawnRequest {
        id: id.clone(),
        name: ContainerName::parse("hostile").unwrap(),
        user_namespace: true,
        network: ctr_core::net::NetworkRequest::None,
        uid_map: vec![IdMapEntry::new(0, env.uid, 1).unwrap()],
        gid_map: vec![IdMapEntry::new(0, env.gid, 1).unwrap()],
        limits: Default::default(),
    }
}

fn random_id() -> ContainerId {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
    ContainerId::from_bytes(&bytes)
}

/// Nothing of container `id` exists: no cgroup, no helper record.
fn assert_no_side_effect(env: &Env, id: &ContainerId) {
    let leaf = format!("ctr-{}-{}", env.uid, id.as_str());
    let cgroups: Vec<PathBuf> = ctr_tests::cgroup_leftovers().into_iter().filter(|d| d.ends_with(&leaf)).collect();
    assert!(cgroups.is_empty(), "refused request left cgroups: {cgroups:?}");
    let record = PathBuf::from(format!("/run/ctr-helper/{}/{}", env.uid, id.as_str()));
    assert!(!record.exists(), "refused request left {}", record.display());
}

#[test]
fn garbage_is_refused() {
    let Some(env) = env() else { return };
    let mut s = start_helper(&env);
    s.send_raw(&[4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    let (e, stderr) = s.refused();
    assert!(matches!(e, HelperError::Frame(_)), "{e:?}");
    assert!(stderr.contains("could not be decoded"), "{stderr}");
}

#[test]
fn an_oversized_frame_is_refused_before_its_body_arrives() {
    let Some(env) = env() else { return };
    let mut s = start_helper(&env);
    // Only the length: the helper must answer without waiting for the body.
    s.send_raw(&(MAX_FRAME_LEN + 1).to_le_bytes());
    let (e, _) = s.refused();
    assert!(matches!(&e, HelperError::Frame(m) if m.contains("exceeds")), "{e:?}");
}

#[test]
fn a_truncated_frame_is_refused() {
    let Some(env) = env() else { return };
    let mut s = start_helper(&env);
    s.send_raw(&[100, 0, 0, 0, 1, 2, 3]);
    s.channel.shutdown(std::net::Shutdown::Write).unwrap();
    let (e, _) = s.refused();
    assert!(matches!(&e, HelperError::Frame(m) if m.contains("truncated")), "{e:?}");
}

#[test]
fn a_wrong_protocol_version_is_refused() {
    let Some(env) = env() else { return };
    let mut s = start_helper(&env);
    s.send(&Request::Hello { version: PROTOCOL_VERSION + 41 });
    let (e, _) = s.refused();
    assert_eq!(e, HelperError::Version { helper: PROTOCOL_VERSION, client: PROTOCOL_VERSION + 41 });
}

#[test]
fn a_request_before_hello_is_refused_and_does_nothing() {
    let Some(env) = env() else { return };
    let id = random_id();
    let mut s = start_helper(&env);
    s.send(&Request::Spawn(spawn_request(&id, &env)));
    let (e, _) = s.refused();
    assert!(matches!(e, HelperError::OutOfOrder { .. }), "{e:?}");
    assert_no_side_effect(&env, &id);
}

#[test]
fn no_user_namespace_is_refused_for_a_non_root_caller() {
    let Some(env) = env() else { return };
    let id = random_id();
    let mut s = start_helper(&env);
    s.hello();
    s.send(&Request::Spawn(SpawnRequest { user_namespace: false, ..spawn_request(&id, &env) }));
    let (e, _) = s.refused();
    assert_eq!(e, HelperError::NoUserNamespace);
    assert_no_side_effect(&env, &id);
}

#[test]
fn mapping_ids_the_caller_does_not_own_is_refused() {
    let Some(env) = env() else { return };
    let nobody = 65534;
    for (uid_map, gid_map) in [
        (vec![(0, 0, 1)], vec![(0, env.gid, 1)]),                     // host root
        (vec![(0, nobody, 1)], vec![(0, env.gid, 1)]),                // another user
        (vec![(0, env.uid, 1)], vec![(0, 0, 1)]),                     // host root group
        (vec![(0, env.uid, 1), (1, 1, 1000)], vec![(0, env.gid, 1)]), // system ids
    ] {
        let id = random_id();
        let map = |m: Vec<(u32, u32, u32)>| m.into_iter().map(|(i, o, c)| IdMapEntry::new(i, o, c).unwrap()).collect();
        let mut s = start_helper(&env);
        s.hello();
        s.send(&Request::Spawn(SpawnRequest {
            uid_map: map(uid_map),
            gid_map: map(gid_map),
            ..spawn_request(&id, &env)
        }));
        let (e, stderr) = s.refused();
        assert!(matches!(e, HelperError::IdMap(_)), "{e:?}");
        assert!(stderr.contains("not yours"), "{stderr}");
        assert_no_side_effect(&env, &id);
    }
}

#[test]
fn container_names_with_slashes_dots_or_control_characters_are_refused() {
    let Some(env) = env() else { return };
    for bad in ["a/b", "..", "a\nb", "x\u{1}y"] {
        // Encode a valid request whose name has the same length, then patch
        // the bytes: a real client could never build this value.
        let id = random_id();
        let placeholder = "q".repeat(bad.len());
        let mut request = spawn_request(&id, &env);
        request.name = ContainerName::parse(&placeholder).unwrap();
        let mut bytes = frame::encode(&Request::Spawn(request)).unwrap();
        let at = bytes.windows(placeholder.len()).position(|w| w == placeholder.as_bytes()).unwrap();
        bytes[at..at + bad.len()].copy_from_slice(bad.as_bytes());
        let mut s = start_helper(&env);
        s.hello();
        s.send_raw(&bytes);
        let (e, _) = s.refused();
        assert!(matches!(&e, HelperError::Frame(m) if m.contains("container name")), "{bad:?}: {e:?}");
        assert_no_side_effect(&env, &id);
    }
}

#[test]
fn a_helper_without_its_channel_refuses_to_start() {
    let Some(env) = env() else { return };
    let out = env.as_user(env.helper_path(), std::iter::empty::<&str>()).output();
    assert!(!out.success());
    assert!(out.stderr.contains("fd 3"), "{}", out.stderr);
}

/// Whether an ELF64 file asks for a program interpreter (PT_INTERP): the
/// dynamic loader, which then runs first, as whatever the file runs as.
fn has_program_interpreter(path: &std::path::Path) -> bool {
    let elf = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&elf[..5], b"\x7fELF\x02", "{} is not an ELF64 file", path.display());
    let field = |at: usize, len: usize| elf[at..at + len].iter().rev().fold(0usize, |n, b| n << 8 | *b as usize);
    let (phoff, phentsize, phnum) = (field(0x20, 8), field(0x36, 2), field(0x38, 2));
    (0..phnum).any(|i| field(phoff + i * phentsize, 4) == 3) // PT_INTERP
}

/// The setuid helper is linked statically (`cargo xtask install`): no
/// dynamic loader, library search or `LD_*` handling runs with its
/// privilege. `ctr-init`, which every container runs first, likewise. A
/// dynamically linked system program is the control.
#[test]
fn the_setuid_helper_and_ctr_init_run_no_dynamic_loader() {
    let Some(env) = env() else { return };
    assert!(has_program_interpreter(std::path::Path::new("/usr/bin/env")), "control: /usr/bin/env is dynamic");
    let init = env.helper_path().with_file_name("ctr-init");
    for binary in [env.helper_path(), init, env.ctr_path()] {
        assert!(!has_program_interpreter(&binary), "{} has a program interpreter", binary.display());
    }
}

#[test]
fn removing_a_cgroup_that_is_not_there_is_fine_and_touches_nothing() {
    let Some(env) = env() else { return };
    let id = random_id();
    let mut s = start_helper(&env);
    s.hello();
    s.send(&Request::RemoveCgroup { id: id.clone() });
    assert_eq!(s.receive(), Response::Removed);
    assert!(s.child.wait().unwrap().success());
    assert_no_side_effect(&env, &id);
}

#[test]
fn out_of_range_limits_are_refused_by_the_helper_itself() {
    let Some(env) = env() else { return };
    use ctr_core::limits::{CpuQuota, ResourceLimits};
    // ctr checks these too; a hostile client skips ctr, so the helper must.
    for limits in [
        ResourceLimits { memory: Some(4096), ..Default::default() },
        ResourceLimits {
            cpu_quota: Some(CpuQuota { quota_us: 100_000_000, period_us: 100_000 }),
            ..Default::default()
        },
        ResourceLimits { cpu_shares: Some(1), ..Default::default() },
        ResourceLimits { pids_limit: Some(0), ..Default::default() },
    ] {
        let id = random_id();
        let mut s = start_helper(&env);
        s.hello();
        s.send(&Request::Spawn(SpawnRequest { limits, ..spawn_request(&id, &env) }));
        let (e, _) = s.refused();
        assert!(matches!(e, HelperError::Limits(_)), "{e:?}");
        assert_no_side_effect(&env, &id);
    }
}

#[test]
fn another_users_container_cannot_be_frozen_or_joined() {
    let Some(env) = env() else { return };
    // A container of the test user, addressed by a caller it does not
    // belong to (nobody): the helper looks only in the caller's records.
    env.ensure_alpine_image("alpine");
    let name = ctr_tests::unique_name("victim");
    let mut child = env
        .ctr()
        .args(["run", "--rm", "--name", &name, "--network", "none", "alpine", "sh", "-c", "echo ready; sleep 30"])
        .spawn();
    child.wait_for_stdout("ready", Duration::from_secs(30));
    let leaf = ctr_tests::cgroup_leftovers()
        .into_iter()
        .find_map(|d| d.file_name()?.to_str()?.strip_prefix(&format!("ctr-{}-", env.uid)).map(str::to_owned))
        .expect("the running container's cgroup");
    let id = ContainerId::parse(&leaf).unwrap();
    let nobody = Env { uid: 65534, gid: 65534, user: "nobody".into(), ..env.clone() };
    for request in [
        Request::Freeze { id: id.clone(), frozen: true },
        Request::Exec { id: id.clone() },
        Request::RemoveCgroup { id: id.clone() },
    ] {
        let mut s = start_helper(&nobody);
        s.hello();
        s.send(&request);
        let response = s.receive();
        match (&request, response) {
            // Removal of what the caller does not have is a no-op success.
            (Request::RemoveCgroup { .. }, Response::Removed) => {}
            (_, Response::Refused(HelperError::NoSuchContainer(_))) => {}
            (_, other) => panic!("{request:?} by another user got {other:?}"),
        }
    }
    let still_there =
        ctr_tests::cgroup_leftovers().iter().any(|d| d.ends_with(format!("ctr-{}-{}", env.uid, id.as_str())));
    let running = child.is_running();
    env.ctr().args(["rm", "-f", &name]).ok();
    let _ = child.wait();
    assert!(still_there && running, "another user's request touched the container");
}

/// One request as `uid`, after Hello.
fn ask_as(env: &Env, uid: u32, gid: u32, request: &Request) -> Session {
    let mut s = start_helper_as(env, uid, gid);
    s.hello();
    s.send(request);
    s
}

#[test]
fn a_network_belongs_to_the_user_who_created_it() {
    let Some(env) = env() else { return };
    // Another unprivileged user (nobody) creates a network.
    let nobody = 65534;
    let name = NetworkName::parse(&ctr_tests::unique_name("othersnet")).unwrap();
    let created = ask_as(&env, nobody, nobody, &Request::NetworkCreate { name: name.clone(), subnet: None }).answered();
    assert!(matches!(&created, Response::Networks(n) if n.len() == 1 && n[0].name == name), "{created:?}");
    let cleanup = || ask_as(&env, nobody, nobody, &Request::NetworkRemove { name: name.clone() }).answered();

    // The test user cannot see, join or remove it.
    let listed = ask_as(&env, env.uid, env.gid, &Request::NetworkList).answered();
    let (e, _) = ask_as(&env, env.uid, env.gid, &Request::NetworkRemove { name: name.clone() }).refused();
    let id = random_id();
    let mut join = spawn_request(&id, &env);
    join.network = NetworkRequest::Bridge { network: name.clone(), address: None, ports: vec![] };
    let (join_e, _) = ask_as(&env, env.uid, env.gid, &Request::Spawn(join)).refused();
    assert_eq!(cleanup(), Response::NetworkRemoved);

    assert!(matches!(&listed, Response::Networks(n) if n.iter().all(|n| n.name != name)), "{listed:?}");
    assert!(matches!(&e, HelperError::Network(m) if m.contains("no network named")), "{e:?}");
    assert!(matches!(&join_e, HelperError::Network(m) if m.contains("no network named")), "{join_e:?}");
    assert_no_side_effect(&env, &id);
}

#[test]
fn reserved_names_foreign_subnets_and_the_default_network_are_refused() {
    let Some(env) = env() else { return };
    let (uid, gid) = (env.uid, env.gid);
    let create = |name: &str, subnet: Option<&str>| Request::NetworkCreate {
        name: NetworkName::parse(name).unwrap(),
        subnet: subnet.map(|s| Cidr::parse(s).unwrap()),
    };
    for (request, needle) in [
        (create("host", None), "reserved"),
        (create("bridge", None), "reserved"),
        (create("lan", Some("192.168.1.0/24")), "outside the pool"),
        (create("lan", Some("10.88.0.0/24")), "outside the pool"),
        (Request::NetworkRemove { name: NetworkName::parse("bridge").unwrap() }, "cannot be removed"),
    ] {
        let (e, _) = ask_as(&env, uid, gid, &request).refused();
        assert!(matches!(&e, HelperError::Network(m) if m.contains(needle)), "{request:?}: {e:?}");
    }
}
