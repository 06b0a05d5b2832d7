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
use crate::cgroup;
use crate::config::INIT_BINARY;
use crate::record::{self, Record};
use crate::rlimit::CallerLimits;
use crate::{network, reconcile, sys};
use ctr_core::config::HelperConfig;
use ctr_core::idmap::{check_map, parse_subid_file, to_proc_format, IdKind, SubIdRange};
use ctr_core::limits::{HostCpus, LimitError, ResourceLimits};
use ctr_core::net::NetworkRequest;
use ctr_core::protocol::{HelperError, Response, SpawnRequest, INIT_CHANNEL_FD_IN_HELPER, INIT_CHANNEL_FD_IN_INIT};
use ctr_net::liveness::Liveness;
use ctr_net::names::random_host_veth;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{Gid, Pid, Uid};
use std::ffi::{CStr, CString};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// A started process: the `Spawned` answer, and the pidfd sent with it.
pub type Spawned = (Response, OwnedFd);

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
    if !request.user_namespace {
        return Err(HelperError::NoUserNamespace);
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
    // Only block devices the kernel knows; the path is built from numbers.
    let exists = |major, minor| std::path::Path::new(&format!("/sys/dev/block/{major}:{minor}")).exists();
    Ok(limits.validate(&HostCpus::read(), exists)?)
}

fn subordinate_ranges(path: &str, caller: &Caller, id: u32) -> Vec<SubIdRange> {
    std::fs::read_to_string(path).map(|text| parse_subid_file(&text, caller.name.as_deref(), id)).unwrap_or_default()
}

pub fn spawn_error(what: &str, e: impl std::fmt::Display) -> HelperError {
    HelperError::Spawn(format!("{what}: {e}"))
}

/// The order is what makes a kill at any point recoverable: the child is
/// cloned first, held (it exits if the helper dies before releasing it);
/// then the record, owned by the child's liveness key and naming the
/// cgroups, network and veth to be made, is written before any of them is
/// made; the lease follows the same rule in ctr-net. On failure, exactly
/// what the record names is removed.
pub fn apply(caller: &Caller, config: &HelperConfig, spawn: ValidatedSpawn<'_>) -> Result<Spawned, HelperError> {
    let request = spawn.request;
    let uid = caller.uid.as_raw();
    let network = if let NetworkRequest::Bridge { network, .. } = &request.network { Some(network) } else { None };
    let cgroups = cgroup::plan(uid, &request.id, config)?;
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    flags.set(CloneFlags::CLONE_NEWNET, request.network != NetworkRequest::Host);
    let mut written: Option<Record> = None;
    let started = start(caller, Some(flags), None, |pid| {
        let record = written.insert(Record {
            owner: Liveness::of(pid.as_raw()).map_err(|e| spawn_error("the child's liveness key", e))?,
            cgroups: cgroups.clone(),
            host_veth: network.map(|_| random_host_veth()).transpose().map_err(|e| spawn_error("a veth name", e))?,
            network: network.cloned(),
            ports: Default::default(),
        });
        if let Err(e) = record::create(uid, &request.id, record) {
            written = None; // another container's record: not ours to remove
            return Err(e);
        }
        cgroup::create(&cgroups)?;
        cgroup::apply_limits(&cgroups, &request.limits)?;
        // The config's default, where the pids controller exists (an
        // explicit --pids-limit is refused where it does not).
        if let (None, Some(limit)) = (request.limits.pids_limit, config.default_pids_limit) {
            match cgroup::apply_limits(&cgroups, &ResourceLimits { pids_limit: Some(limit), ..Default::default() }) {
                Ok(()) | Err(HelperError::Limits(LimitError::Unsupported { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        write_id_maps(pid, &spawn)?;
        cgroup::attach(&cgroups, pid, true)?;
        let Some(host_veth) = &record.host_veth else { return Ok(None) };
        let a = network::Attach { id: &request.id, pid, request: &request.network, host_veth, liveness: &record.owner };
        // A taken name (by anyone; 44 random bits make it all but impossible)
        // leaves the record, so that the teardown does not delete that link.
        network::attach(caller, config, &a)?.map(Some).ok_or_else(|| {
            let taken = record.host_veth.take().map(|v| v.to_string()).unwrap_or_default();
            HelperError::Network(format!("host veth name {taken} is taken already; try again"))
        })
    });
    let (pid, pidfd, network) = started.inspect_err(|_| {
        if let Some(record) = &written {
            let _ = reconcile::teardown(config, uid, &request.id, record);
        }
    })?;
    Ok((Response::Spawned { pid: pid.as_raw(), cgroups: cgroups.dirs, network }, pidfd))
}

/// Starts a child of the caller's, held on a pipe until `prepare` (given
/// its pid) has set it up; then the helper releases it. On any failure the
/// child is killed and reaped, so it never runs unprepared. With `flags`
/// (Spawn), it is cloned by the caller's euid into new namespaces and takes
/// their root ids; without (Exec), it is forked and takes the caller's.
/// An Exec child may be cloned straight `into_cgroup` (the container's v2
/// cgroup), which `prepare` then need not write.
pub fn start<T>(
    caller: &Caller,
    flags: Option<CloneFlags>,
    into_cgroup: Option<&OwnedFd>,
    prepare: impl FnOnce(Pid) -> Result<T, HelperError>,
) -> Result<(Pid, OwnedFd, T), HelperError> {
    // The init channel must be a socket the caller passed us: never a file
    // the helper itself might have opened on that number.
    if !sys::is_socket(INIT_CHANNEL_FD_IN_HELPER).map_err(|e| spawn_error("init channel (fd 4)", e))? {
        return Err(HelperError::Spawn("fd 4 must be the init channel socket; run containers through ctr".into()));
    }
    let (go, go_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| spawn_error("pipe", e))?;
    let go_write_fd = go_write.as_raw_fd();
    // The child must never return into helper code: it leaves through
    // `child_main`, inside `as_caller_with_sys_admin`, before the euid is
    // restored.
    let parent = |forked: nix::Result<Option<(Pid, OwnedFd)>>| match forked.map_err(|e| spawn_error("clone", e))? {
        None => child_main(go, go_write_fd, caller, flags.is_some()),
        Some(child) => Ok::<_, HelperError>(child),
    };
    let (pid, pidfd) = match flags {
        Some(flags) => as_caller_with_sys_admin(caller, || parent(sys::clone3(flags, None)))??,
        None => parent(sys::clone3(CloneFlags::empty(), into_cgroup))?,
    };
    let prepared = (|| {
        let value = prepare(pid)?;
        std::fs::File::from(go_write).write_all(b"G").map_err(|e| spawn_error("release the child", e))?;
        Ok((pid, pidfd, value))
    })();
    prepared.inspect_err(|_| {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
    })
}

fn write_id_maps(pid: Pid, spawn: &ValidatedSpawn<'_>) -> Result<(), HelperError> {
    // Without subordinate gids the caller could not drop its supplementary
    // groups unprivileged either (they may be used to deny access), so the
    // container may not call setgroups(2).
    let setgroups = if spawn.setgroups_allowed { "allow" } else { "deny" };
    let (uid_map, gid_map) = (to_proc_format(&spawn.request.uid_map), to_proc_format(&spawn.request.gid_map));
    for (file, text) in [("uid_map", uid_map.as_str()), ("setgroups", setgroups), ("gid_map", gid_map.as_str())] {
        std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/{pid}/{file}"))
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| spawn_error(&format!("write {file}"), e))?;
    }
    Ok(())
}

fn child_fail(what: &str, e: &dyn std::fmt::Display) -> ! {
    let _ = writeln!(std::io::stderr(), "ctr-setuid-helper: container setup: {what}: {e}");
    sys::exit_now(125)
}

/// The held child. It waits for the helper's release, or exits if the
/// helper failed or died first (its copy of the write end, closed first,
/// would keep the pipe open). In new namespaces (`in_namespaces`), now in
/// its own cgroup, it unshares a cgroup namespace rooted there and takes
/// the root ids of its user namespace, i.e. the caller's own host ids
/// (which also replaces the saved set-user-ID 0); otherwise it takes the
/// caller's ids, so the kernel clears every capability. Then, holding only
/// the caller's ids: the caller's own resource limits and signal
/// dispositions, no_new_privs, the init channel as fd 3 and nothing else
/// above stderr, and `ctr init` with an empty environment. Never returns.
fn child_main(go: OwnedFd, parents_end: RawFd, caller: &Caller, in_namespaces: bool) -> ! {
    let _ = nix::unistd::close(parents_end);
    if !matches!(std::fs::File::from(go).read(&mut [0u8]), Ok(1)) {
        sys::exit_now(125); // the helper failed and reports why
    }
    let (uid, gid) = if in_namespaces { (Uid::from_raw(0), Gid::from_raw(0)) } else { (caller.uid, caller.gid) };
    if in_namespaces {
        if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP) {
            child_fail("unshare cgroup namespace", &e);
        }
    }
    if let Err(e) = nix::unistd::setresgid(gid, gid, gid).and_then(|()| nix::unistd::setresuid(uid, uid, uid)) {
        child_fail("take the container's ids", &e);
    }
    exec_init(&caller.limits)
}

fn exec_init(limits: &CallerLimits) -> ! {
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
    let Err(e) = nix::unistd::execve(&program, &[c"ctr", c"init"], &[] as &[&CStr]);
    child_fail(&format!("exec {INIT_BINARY}"), &e)
}
