//! The `Spawn` operation: a container's first process in new user, mount,
//! pid, UTS, IPC, network and cgroup namespaces, inside its own cgroup.
//!
//! Why this is safe to offer any user:
//! - The user namespace is created with the caller's euid, so the caller
//!   owns it (exactly what an unprivileged `unshare --user` gives), and every
//!   other namespace is owned by it. CAP_SYS_ADMIN is held only so creation
//!   works where unprivileged user namespaces are disabled.
//! - Id maps are written by the helper and contain only the caller's own id
//!   and its /etc/subuid and /etc/subgid ranges (never host root for others).
//! - Until it executes `ctr init`, the child is non-dumpable (inherited from
//!   the setuid helper and set again in main), so the caller cannot ptrace it
//!   or open its memory while it still runs helper code; its /proc files
//!   stay root-owned, so the caller cannot write its id maps either.
//! - Before exec, the child takes the mapped root ids (every host id the
//!   caller's), sets no_new_privs, keeps only fds 0-2 and the init channel,
//!   and runs the `ctr` installed with the helper, never a caller's path.

use crate::caller::{as_caller_with_sys_admin, Caller};
use crate::cgroup::{self, ContainerCgroups};
use crate::config::INIT_BINARY;
use crate::record::{self, Record};
use crate::rlimit::CallerLimits;
use crate::sys::{self, CloneResult};
use crate::{network, reconcile};
use ctr_core::config::HelperConfig;
use ctr_core::idmap::{check_map, parse_subid_file, to_proc_format, IdKind, IdMapEntry, SubIdRange};
use ctr_core::limits::{HostCpus, LimitError, ResourceLimits};
use ctr_core::net::{NetworkInfo, NetworkRequest};
use ctr_core::protocol::{HelperError, SpawnRequest, INIT_CHANNEL_FD_IN_HELPER, INIT_CHANNEL_FD_IN_INIT};
use ctr_net::names::random_host_veth;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{Gid, Pid, Uid};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

pub struct Spawned {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    pub cgroups: ContainerCgroups,
    pub network: Option<NetworkInfo>,
}

/// Every check on a spawn request, before anything is created.
pub struct ValidatedSpawn<'a> {
    request: &'a SpawnRequest,
    setgroups_allowed: bool,
}

pub fn validate<'a>(
    caller: &Caller,
    config: &HelperConfig,
    request: &'a SpawnRequest,
) -> Result<ValidatedSpawn<'a>, HelperError> {
    if !request.user_namespace && !caller.is_root() {
        return Err(HelperError::NoUserNamespace);
    }
    if !request.user_namespace {
        // Root asked for real root in the container: not in this scope.
        return Err(HelperError::Spawn("containers without a user namespace are not supported yet".into()));
    }
    let subuids = subordinate_ranges("/etc/subuid", caller, caller.uid.as_raw());
    let subgids = subordinate_ranges("/etc/subgid", caller, caller.gid.as_raw());
    check_map(IdKind::Uid, &request.uid_map, caller.uid.as_raw(), &subuids)?;
    check_map(IdKind::Gid, &request.gid_map, caller.gid.as_raw(), &subgids)?;
    validate_limits(&request.limits)?;
    network::validate(caller, config, &request.network)?;
    Ok(ValidatedSpawn { request, setgroups_allowed: caller.is_root() || !subgids.is_empty() })
}

/// The limits' ranges, against this host's online CPUs and memory nodes
/// and its block devices; `Spawn` and `Update` both check them here.
pub fn validate_limits(limits: &ResourceLimits) -> Result<(), HelperError> {
    limits.validate(&HostCpus::read(), |major, minor| {
        // Only block devices the kernel knows; the path is built from numbers.
        std::path::Path::new(&format!("/sys/dev/block/{major}:{minor}")).exists()
    })?;
    Ok(())
}

fn subordinate_ranges(path: &str, caller: &Caller, id: u32) -> Vec<SubIdRange> {
    std::fs::read_to_string(path).map(|text| parse_subid_file(&text, caller.name.as_deref(), id)).unwrap_or_default()
}

pub fn spawn_error(what: &str, e: impl std::fmt::Display) -> HelperError {
    HelperError::Spawn(format!("{what}: {e}"))
}

/// The init channel must be a socket the caller passed us: never a file
/// the helper itself might have opened on that number.
pub fn check_init_channel() -> Result<(), HelperError> {
    if !sys::is_socket(INIT_CHANNEL_FD_IN_HELPER).map_err(|e| spawn_error("init channel (fd 4)", e))? {
        return Err(HelperError::Spawn("fd 4 must be the init channel socket; run containers through ctr".into()));
    }
    Ok(())
}

/// The order is what makes a kill at any point recoverable: the child is
/// cloned first, held (it exits if the helper dies before releasing it);
/// then the record, owned by the child's liveness key and naming the
/// cgroups, network, veth and ports to be made, is written before any of
/// them is made; the lease follows the same rule in ctr-net. On failure,
/// exactly what the record names is removed.
pub fn apply(caller: &Caller, config: &HelperConfig, spawn: ValidatedSpawn<'_>) -> Result<Spawned, HelperError> {
    check_init_channel()?;
    let request = spawn.request;
    let uid = caller.uid.as_raw();
    let bridge = match &request.network {
        NetworkRequest::Bridge { network, ports, .. } => Some((network, ports)),
        _ => None,
    };
    let cgroups = cgroup::plan(uid, &request.id, config)?;
    let mut written: Option<Record> = None;
    let started = start_child(caller, &spawn, |pid| {
        let record = written.insert(Record {
            owner: record::liveness_of(pid.as_raw())?,
            cgroups: cgroups.clone(),
            network: bridge.map(|(network, _)| network.clone()),
            host_veth: bridge
                .map(|_| random_host_veth().map_err(|e| spawn_error("a random veth name", e)))
                .transpose()?,
            ports: bridge.map_or_else(Vec::new, |(_, ports)| ports.iter().map(|p| (p.protocol, p.host_port)).collect()),
        });
        if let Err(e) = record::create(uid, &request.id, record) {
            written = None; // another container's record: not ours to remove
            return Err(e);
        }
        cgroup::create(&cgroups)?;
        cgroup::apply_limits(&cgroups, &request.limits)?;
        default_pids_limit(&cgroups, config, request)?;
        write_id_maps(pid, &request.uid_map, &request.gid_map, spawn.setgroups_allowed)?;
        cgroup::attach(&cgroups, pid)?;
        attach_network(caller, config, request, pid, record)
    });
    match started {
        Ok((pid, pidfd, network)) => Ok(Spawned { pid, pidfd, cgroups, network }),
        Err(e) => {
            if let Some(record) = &written {
                let _ = reconcile::teardown(config, uid, &request.id, record);
            }
            Err(e)
        }
    }
}

/// The config's `default_pids_limit`, for a request that names no pids
/// limit. Where the pids controller is missing it is left out (an explicit
/// `--pids-limit` is refused there): a default must not stop every start.
fn default_pids_limit(
    cgroups: &ContainerCgroups,
    config: &HelperConfig,
    request: &SpawnRequest,
) -> Result<(), HelperError> {
    let (None, Some(limit)) = (request.limits.pids_limit, config.default_pids_limit) else { return Ok(()) };
    match cgroup::apply_limits(cgroups, &ResourceLimits { pids_limit: Some(limit), ..ResourceLimits::default() }) {
        Err(HelperError::Limits(LimitError::Unsupported { .. })) => Ok(()),
        other => other,
    }
}

/// Attaches the child to its bridge network under the random veth name in
/// its record. A name that is taken (by anyone; 44 random bits make it all
/// but impossible) fails the start and is dropped from the record that the
/// teardown reads, so that the teardown does not delete that link.
fn attach_network(
    caller: &Caller,
    config: &HelperConfig,
    request: &SpawnRequest,
    pid: Pid,
    record: &mut Record,
) -> Result<Option<NetworkInfo>, HelperError> {
    let Some(host_veth) = &record.host_veth else { return Ok(None) };
    let a = network::Attach { id: &request.id, pid, request: &request.network, host_veth, liveness: &record.owner };
    match network::attach(caller, config, &a)? {
        Some(info) => Ok(Some(info)),
        None => {
            let taken = record.host_veth.take().map(|v| v.to_string()).unwrap_or_default();
            Err(HelperError::Network(format!("host veth name {taken} is taken already; try again")))
        }
    }
}

fn namespace_flags(request: &SpawnRequest) -> CloneFlags {
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if request.network != NetworkRequest::Host {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    flags
}

/// Clones the child into its namespaces, held until `prepare` (given its
/// pid) has set it up, then releases it.
fn start_child(
    caller: &Caller,
    spawn: &ValidatedSpawn<'_>,
    prepare: impl FnOnce(Pid) -> Result<Option<NetworkInfo>, HelperError>,
) -> Result<(Pid, OwnedFd, Option<NetworkInfo>), HelperError> {
    let flags = namespace_flags(spawn.request);
    let clone = |go, parents_end| {
        // The child must never return into helper code: it leaves through
        // `child_main`, inside this closure, before the euid is restored.
        as_caller_with_sys_admin(caller, || match sys::clone_into_namespaces(flags)? {
            CloneResult::Child => child_main(go, parents_end, &caller.limits),
            CloneResult::Parent(pid) => Ok::<Pid, nix::errno::Errno>(pid),
        })?
        .map_err(|e| spawn_error("clone into new namespaces", e))
    };
    start_held(clone, prepare)
}

/// A child held on a pipe until the helper has set it up: `fork` starts it
/// (the child gets the pipe's read end and the number of its write end, and
/// never returns); then the helper takes a pidfd, runs `prepare` and
/// releases it. On any failure the child is killed and reaped, so it never
/// runs unprepared.
pub fn start_held<T>(
    fork: impl FnOnce(OwnedFd, RawFd) -> Result<Pid, HelperError>,
    prepare: impl FnOnce(Pid) -> Result<T, HelperError>,
) -> Result<(Pid, OwnedFd, T), HelperError> {
    let (go_read, go_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| spawn_error("pipe", e))?;
    let pid = fork(go_read, go_write.as_raw_fd())?;
    let prepared = (|| {
        let pidfd = sys::pidfd_open(pid).map_err(|e| spawn_error("pidfd_open", e))?;
        let value = prepare(pid)?;
        std::fs::File::from(go_write).write_all(b"G").map_err(|e| spawn_error("release the child", e))?;
        Ok((pid, pidfd, value))
    })();
    prepared.inspect_err(|_| {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
    })
}

/// In a held child: waits for the helper's release, or exits if the helper
/// failed or died first. Our copy of the write end would keep the pipe open
/// if the helper died; this process never returns, so no owner will close
/// it again.
pub fn wait_for_release(go: OwnedFd, parents_end: RawFd) {
    let _ = nix::unistd::close(parents_end);
    let mut byte = [0u8; 1];
    if !matches!(std::fs::File::from(go).read(&mut byte), Ok(1)) {
        sys::exit_now(125); // the helper failed and reports why
    }
}

fn write_id_maps(
    pid: Pid,
    uid_map: &[IdMapEntry],
    gid_map: &[IdMapEntry],
    setgroups_allowed: bool,
) -> Result<(), HelperError> {
    let proc_dir = format!("/proc/{}", pid.as_raw());
    let write = |file: &str, text: &str| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(format!("{proc_dir}/{file}"))
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| spawn_error(&format!("write {file}"), e))
    };
    write("uid_map", &to_proc_format(uid_map))?;
    // Without subordinate gids the caller could not drop its supplementary
    // groups unprivileged either (they may be used to deny access), so the
    // container may not call setgroups(2).
    write("setgroups", if setgroups_allowed { "allow" } else { "deny" })?;
    write("gid_map", &to_proc_format(gid_map))
}

pub fn child_fail(what: &str, e: &dyn std::fmt::Display) -> ! {
    let _ = writeln!(std::io::stderr(), "ctr-setuid-helper: container setup: {what}: {e}");
    sys::exit_now(125)
}

/// The cloned child: waits until the parent has written its id maps and
/// placed it in its cgroup, then becomes the container's init. Never returns.
fn child_main(go: OwnedFd, parents_end: RawFd, limits: &CallerLimits) -> ! {
    wait_for_release(go, parents_end);
    // Now in its own cgroup: a new cgroup namespace rooted there.
    if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP) {
        child_fail("unshare cgroup namespace", &e);
    }
    // Root of the new user namespace, i.e. the caller's own host ids. This
    // also replaces the saved set-user-ID 0 inherited from the helper.
    let (uid0, gid0) = (Uid::from_raw(0), Gid::from_raw(0));
    if let Err(e) = nix::unistd::setresgid(gid0, gid0, gid0).and_then(|()| nix::unistd::setresuid(uid0, uid0, uid0)) {
        child_fail("take the container's root ids", &e);
    }
    exec_init(limits)
}

/// The last steps of every child the helper starts, once it holds only the
/// caller's ids: the caller's own resource limits and signal dispositions,
/// no_new_privs, the init channel as fd 3 and nothing else above stderr,
/// then `ctr init` with an empty environment.
pub fn exec_init(limits: &CallerLimits) -> ! {
    if let Err(e) = limits.restore() {
        child_fail("restore the caller's resource limits", &e);
    }
    if let Err(e) = nix::sys::prctl::set_no_new_privs() {
        child_fail("no_new_privs", &e);
    }
    if let Err(e) = nix::unistd::dup2(INIT_CHANNEL_FD_IN_HELPER, INIT_CHANNEL_FD_IN_INIT)
        .and_then(|_| sys::close_fds_from(INIT_CHANNEL_FD_IN_INIT as u32 + 1))
    {
        child_fail("pass the init channel", &e);
    }
    // Every container runs this binary until its command starts; one that
    // its caller could rewrite would reach into other users' containers
    // (CVE-2019-5736). Owned by root: by the owner of `/`, as both show
    // through the same id map here.
    match (nix::sys::stat::stat(INIT_BINARY), nix::sys::stat::stat("/")) {
        (Ok(exe), Ok(root)) if exe.st_uid == root.st_uid && exe.st_mode & 0o022 == 0 => {}
        (Ok(_), Ok(_)) => {
            child_fail(INIT_BINARY, &"must be owned by root and not writable by group or others: reinstall ctr")
        }
        (Err(e), _) | (_, Err(e)) => child_fail(&format!("stat {INIT_BINARY}"), &e),
    }
    let program = CString::new(INIT_BINARY).expect("no NUL in a build-time path");
    let argv = [CString::new("ctr").expect("literal"), CString::new("init").expect("literal")];
    let env: [CString; 0] = [];
    let Err(e) = nix::unistd::execve(&program, &argv, &env);
    child_fail(&format!("exec {INIT_BINARY}"), &e)
}
