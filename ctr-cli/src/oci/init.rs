//! The container's side of `create`: the child that `clone` put in its new
//! namespaces, still running ctr-oci (as root, or root of a new user
//! namespace). It waits for its cgroup and id maps, builds the filesystem
//! (the engine's rootfs bind and pivot_root, the spec's mounts, devices,
//! masks), sets hostname, sysctls, rlimits, user, capabilities and
//! no_new_privs, finds the executable, reports to `create`, and blocks
//! opening `exec.fifo` until `start` opens its other end. Then it loads
//! seccomp (last, when no_new_privs allows it there) and executes the
//! command as the container's process.
//!
//! It is non-dumpable from the start: until its execve it runs the host's
//! ctr-oci binary, which no process of the container may open through
//! /proc/PID/exe (CVE-2019-5736).

use super::bundle::{Bundle, MountNamespace};
use super::mounts;
use super::{OciContext, Result};
use crate::init::mounts::{self as engine_mounts, open_beneath, Kind};
use crate::init::process::{lookup_executable, ExecFailure};
use ctr_core::cgroup::ContainerCgroups;
use ctr_core::frame;
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{LinuxDeviceType, Process};
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// The child's word to `create`.
#[derive(Debug, Serialize, Deserialize)]
pub enum Report {
    Ready,
    Failed(String),
}

/// What the executable needs once `start` releases it.
pub(super) struct Ready {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

/// How `create` was asked to start the process (runc's flags).
#[derive(Debug, Default, Clone, Copy)]
pub struct Launch {
    /// `--preserve-fds N`: descriptors 3 to 3+N-1 reach the process.
    pub preserve_fds: u32,
    /// `--no-pivot`: the rootfs is moved over `/` and chrooted into.
    pub no_pivot: bool,
}

/// Runs in the cloned child; never returns.
pub fn main(
    bundle: &Bundle,
    cgroups: &ContainerCgroups,
    mut channel: UnixStream,
    fifo: OwnedFd,
    console: Option<UnixStream>,
    launch: Launch,
) -> ! {
    let outcome = nix::sys::prctl::set_dumpable(false)
        .context("PR_SET_DUMPABLE")
        .and_then(|()| prepare(bundle, cgroups, &mut channel, console, launch));
    let (ready, state) = match outcome {
        Ok(prepared) => prepared,
        Err(e) => {
            let _ = frame::write_frame(&mut channel, &Report::Failed(format!("{e:#}")));
            std::process::exit(1)
        }
    };
    if frame::write_frame(&mut channel, &Report::Ready).is_err() {
        std::process::exit(1);
    }
    drop(channel);
    let Err(e) = release(bundle, &fifo, ready, &state, launch.preserve_fds);
    eprintln!("ctr-oci: {e:#}");
    std::process::exit(1)
}

/// Blocks until `start`, then loads seccomp if it waited for no_new_privs,
/// and executes the command.
fn release(
    bundle: &Bundle,
    fifo: &OwnedFd,
    ready: Ready,
    state: &serde_json::Value,
    preserve_fds: u32,
) -> Result<std::convert::Infallible> {
    // Opening for writing blocks until `start` opens the fifo to read.
    let mut writer =
        std::fs::OpenOptions::new().write(true).open(engine_mounts::fd_path(fifo)).context("open exec.fifo")?;
    std::io::Write::write_all(&mut writer, b"0").context("write exec.fifo")?;
    drop(writer);
    let hooks = bundle.spec.hooks().as_ref();
    super::hooks::run("startContainer", hooks.and_then(|h| h.start_container().as_ref()), state)?;
    let process = bundle.spec.process().as_ref().expect("checked by Bundle::load");
    execute(process, bundle.seccomp.as_deref(), ready, preserve_fds)
}

fn prepare(
    bundle: &Bundle,
    cgroups: &ContainerCgroups,
    channel: &mut UnixStream,
    console: Option<UnixStream>,
    launch: Launch,
) -> Result<(Ready, serde_json::Value)> {
    // `create` has written the id maps, put us in our cgroups and run the
    // createRuntime hooks; our state (our pid as the host sees it) follows.
    let mut go = [0u8; 1];
    channel.read_exact(&mut go).context("waiting for create")?;
    let state: String = frame::read_frame(channel).context("the container's state from create")?;
    let state: serde_json::Value = serde_json::from_str(&state)?;
    for (flag, path) in &bundle.join {
        let ns = std::fs::File::open(path).with_context(|| format!("open namespace {}", path.display()))?;
        nix::sched::setns(ns, nix::sched::CloneFlags::from_bits_truncate(*flag))
            .with_context(|| format!("join namespace {}", path.display()))?;
    }
    let in_user_namespace = bundle.clone_flags & libc::CLONE_NEWUSER != 0
        || bundle.join.iter().any(|(flag, _)| *flag == libc::CLONE_NEWUSER);
    if in_user_namespace {
        // Still the host's root, which the maps need not include: become the
        // namespace's root, so that what we create (the /dev tmpfs's nodes,
        // mount points) has an owner the namespace can name.
        let root_gid = nix::unistd::Gid::from_raw(0);
        nix::unistd::setresgid(root_gid, root_gid, root_gid).context("setgid 0 in the user namespace")?;
        let root_uid = nix::unistd::Uid::from_raw(0);
        nix::unistd::setresuid(root_uid, root_uid, root_uid).context("setuid 0 in the user namespace")?;
    }
    if bundle.new_cgroup_namespace {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).context("new cgroup namespace")?;
    }
    // A session of its own: no controlling terminal shared with the caller.
    nix::unistd::setsid().context("setsid")?;
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref().expect("checked by Bundle::load");
    let process = spec.process().as_ref().expect("checked by Bundle::load");

    let shared = bundle.mount_namespace == MountNamespace::Shared;
    let root = if shared {
        // The runtime's namespace: no propagation change and no mount for
        // the rootfs itself (a chroot needs none).
        crate::mounts::open_no_symlinks(&bundle.rootfs)
            .with_context(|| format!("open the rootfs {}", bundle.rootfs.display()))?
    } else {
        engine_mounts::make_private()?;
        engine_mounts::mount_rootfs(&crate::spec::RootfsSpec::Bind { path: bundle.rootfs.clone() })?
    };
    mounts::mount_all(&root, &bundle.dir, spec.mounts().as_deref().unwrap_or_default(), cgroups)?;
    make_devices(&root, bundle)?;
    let hooks = spec.hooks().as_ref();
    super::hooks::run("createContainer", hooks.and_then(|h| h.create_container().as_ref()), &state)?;
    let masked = linux.masked_paths().clone().unwrap_or_default();
    let read_only = linux.readonly_paths().clone().unwrap_or_default();
    let restricted = !masked.is_empty() || !read_only.is_empty();
    let null = if restricted { Some(engine_mounts::open_dev_null(&root)?) } else { None };
    if let Some(hostname) = spec.hostname() {
        nix::unistd::sethostname(hostname).context("sethostname")?;
    }
    if let Some(domain) = spec.domainname() {
        set_domainname(domain)?;
    }
    if shared {
        // pivot_root would move the root of every process of the namespace,
        // and --no-pivot's detaching would take their mounts: a chroot, as
        // runc does without a mount namespace.
        nix::unistd::fchdir(root.as_raw_fd()).context("chdir into the rootfs")?;
        nix::unistd::chroot(".").context("chroot into the rootfs")?;
        std::env::set_current_dir("/").context("chdir /")?;
    } else if launch.no_pivot {
        move_root(&root, &bundle.rootfs)?;
    } else {
        engine_mounts::pivot(&root)?;
    }
    drop(root);
    for (key, value) in linux.sysctl().clone().unwrap_or_default() {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value.as_bytes()).with_context(|| format!("sysctl {key}={value}"))?;
    }
    if let Some(null) = &null {
        engine_mounts::restrict_paths(null, &masked, &read_only)?;
    }
    if let Some(word) = linux.rootfs_propagation() {
        let flags = mounts::propagation(word).with_context(|| format!("rootfsPropagation {word:?}"))?;
        nix::mount::mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).context("rootfsPropagation")?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        engine_mounts::read_only_root()?;
    }
    if let Some(socket) = console {
        super::console::attach(socket, process.user().uid())?;
    }
    Ok((become_process(process, bundle.seccomp.as_deref())?, state))
}

/// The process's own settings, after the filesystem: rlimits,
/// oomScoreAdj, seccomp (now, without no_new_privs, while CAP_SYS_ADMIN is
/// still there), user and capabilities, no_new_privs, the working
/// directory, and the executable's lookup. `create` and `exec` share it.
pub(super) fn become_process(process: &Process, seccomp: Option<&[u8]>) -> Result<Ready> {
    let no_new_privileges = process.no_new_privileges().unwrap_or(false);
    set_rlimits(process)?;
    if let Some(adj) = process.oom_score_adj() {
        set_oom_score_adj(adj)?;
    }
    if !no_new_privileges {
        if let Some(program) = seccomp {
            crate::seccomp::load(program)?;
        }
    }
    become_user(process)?;
    if no_new_privileges {
        nix::sys::prctl::set_no_new_privs().context("PR_SET_NO_NEW_PRIVS")?;
    }
    let cwd = process.cwd();
    nix::unistd::chdir(cwd).with_context(|| format!("chdir to process.cwd {}", cwd.display()))?;
    let env = process.env().clone().unwrap_or_default();
    let args = process.args().clone().unwrap_or_default();
    let Some(program) = args.first() else { refuse!("process.args is empty") };
    let path_var = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or("");
    let path = lookup_executable(program, path_var)
        .map_err(|ExecFailure { message, .. }| super::OciError::Invalid(message))?;
    let cstrings = |items: &[String]| -> Result<Vec<CString>> {
        items.iter().map(|s| CString::new(s.as_bytes()).context("NUL byte in process.args or env")).collect()
    };
    Ok(Ready {
        path: CString::new(path.as_os_str().as_encoded_bytes()).context("NUL byte in the program path")?,
        argv: cstrings(&args)?,
        envp: cstrings(&env)?,
    })
}

/// Executes the command; seccomp is loaded here when it waited for
/// no_new_privs (the filter must allow execve). Of the descriptors beyond
/// the standard streams, only the `preserve_fds` from 3 on (runc's
/// `--preserve-fds`) reach the command: whatever else the caller left open
/// is marked close-on-exec, and those are cleared of it.
pub(super) fn execute(
    process: &Process,
    seccomp: Option<&[u8]>,
    ready: Ready,
    preserve_fds: u32,
) -> Result<std::convert::Infallible> {
    let end = preserve_fds.checked_add(3).context("--preserve-fds is too large")?;
    crate::sys::cloexec_from(end).context("close_range")?;
    for fd in 3..end {
        let fd = i32::try_from(fd)?;
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))
            .with_context(|| format!("--preserve-fds: descriptor {fd}"))?;
    }
    if process.no_new_privileges().unwrap_or(false) {
        if let Some(program) = seccomp {
            crate::seccomp::load(program)?;
        }
    }
    let Err(errno) = nix::unistd::execve(&ready.path, &ready.argv, &ready.envp);
    refuse!("exec {}: {}", ready.path.to_string_lossy(), errno.desc())
}

/// `--no-pivot`, as runc does it for a rootfs that pivot_root cannot
/// leave (one on the initramfs): every mount of this (private) namespace
/// that is neither the rootfs, beneath it, nor on its path is detached,
/// then the rootfs mount is moved over `/` and chrooted into. Weaker than
/// pivot_root: the old root stays beneath, reachable by a process that may
/// chroot (CAP_SYS_CHROOT), which is why it is only done on request.
fn move_root(root: &OwnedFd, rootfs: &Path) -> Result<()> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    let mut points: Vec<std::path::PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| ctr_core::cgroup::unescape_mountinfo(p).into())
        .collect();
    points.sort_by_key(|p: &std::path::PathBuf| std::cmp::Reverse(p.components().count()));
    for point in points.iter().filter(|p| !p.starts_with(rootfs) && !rootfs.starts_with(p)) {
        // A mount already gone with its parent, or locked in a user
        // namespace, stays: EINVAL is not an error here.
        match nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("--no-pivot: detach {}", point.display())),
        }
    }
    nix::unistd::fchdir(root.as_raw_fd()).context("chdir into the rootfs")?;
    nix::mount::mount(Some("."), "/", None::<&str>, nix::mount::MsFlags::MS_MOVE, None::<&str>)
        .context("--no-pivot: move the rootfs over /")?;
    nix::unistd::chroot(".").context("--no-pivot: chroot")?;
    std::env::set_current_dir("/").context("chdir /")?;
    Ok(())
}

fn set_domainname(domain: &str) -> Result<()> {
    // SAFETY: the pointer and length describe `domain`, which outlives the
    // call; the kernel only reads it.
    let rc = unsafe { libc::setdomainname(domain.as_ptr().cast(), domain.len()) };
    nix::errno::Errno::result(rc).map(drop).context("setdomainname")
}

/// Device nodes: with a tmpfs /dev, the standard ones (null, zero, full,
/// random, urandom, tty) and runc's links; then `linux.devices`. A user
/// namespace cannot mknod: there the host's node is bound instead.
fn make_devices(root: &OwnedFd, bundle: &Bundle) -> Result<()> {
    let spec = &bundle.spec;
    let dev_is_tmpfs = spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|m| m.destination() == Path::new("/dev") && m.typ().as_deref() == Some("tmpfs"));
    let mut nodes: Vec<(String, SFlag, u64, u64, u32, u32, u32)> = Vec::new();
    if dev_is_tmpfs {
        for (name, major, minor) in
            [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)]
        {
            nodes.push((format!("/dev/{name}"), SFlag::S_IFCHR, major, minor, 0o666, 0, 0));
        }
    }
    let linux = spec.linux().as_ref().expect("checked by Bundle::load");
    for d in linux.devices().as_deref().unwrap_or_default() {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => refuse!("linux.devices {}: type a is for cgroup rules only", d.path().display()),
        };
        let number = |n: i64| u64::try_from(n).context("negative device number");
        let path = d.path().to_str().context("device path is not UTF-8")?.to_owned();
        nodes.push((
            path,
            kind,
            number(d.major())?,
            number(d.minor())?,
            d.file_mode().unwrap_or(0o666),
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        ));
    }
    let old_umask = nix::sys::stat::umask(Mode::empty());
    let made = nodes.iter().try_for_each(|(path, kind, major, minor, mode, uid, gid)| {
        make_node(root, path, *kind, *major, *minor, *mode, *uid, *gid).with_context(|| format!("device {path}"))
    });
    nix::sys::stat::umask(old_umask);
    made?;
    if dev_is_tmpfs {
        let dev = open_beneath(root, "dev", Kind::Dir)?;
        for (link, to) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
            ("core", "/proc/kcore"),
        ] {
            match nix::unistd::symlinkat(to, Some(dev.as_raw_fd()), link) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(e).with_context(|| format!("link /dev/{link}")),
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn make_node(
    root: &OwnedFd,
    path: &str,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let path = Path::new(path);
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else { refuse!("not a device path") };
    let dir = open_beneath(root, parent.to_str().context("not UTF-8")?, Kind::Dir)?;
    let rel = Path::new(name);
    match nix::sys::stat::mknodat(
        Some(dir.as_raw_fd()),
        rel,
        kind,
        Mode::from_bits_truncate(mode & 0o7777),
        libc::makedev(major as u32, minor as u32),
    ) {
        Ok(()) => {
            nix::unistd::fchownat(
                Some(dir.as_raw_fd()),
                rel,
                Some(uid.into()),
                Some(gid.into()),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .context("chown")?;
            Ok(())
        }
        Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(nix::errno::Errno::EPERM) => {
            let target = open_beneath(root, path.to_str().context("not UTF-8")?, Kind::File)?;
            nix::mount::mount(
                Some(path),
                &engine_mounts::fd_path(&target),
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )
            .context("bind the host's node (no mknod in a user namespace)")
        }
        Err(e) => Err(e).context("mknod"),
    }
}

fn set_rlimits(process: &Process) -> Result<()> {
    use nix::sys::resource::Resource;
    for limit in process.rlimits().as_deref().unwrap_or_default() {
        let name = serde_json::to_value(limit.typ())?.as_str().unwrap_or_default().to_owned();
        let resource = match name.as_str() {
            "RLIMIT_AS" => Resource::RLIMIT_AS,
            "RLIMIT_CORE" => Resource::RLIMIT_CORE,
            "RLIMIT_CPU" => Resource::RLIMIT_CPU,
            "RLIMIT_DATA" => Resource::RLIMIT_DATA,
            "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
            "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
            "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
            "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
            "RLIMIT_NICE" => Resource::RLIMIT_NICE,
            "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
            "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
            "RLIMIT_RSS" => Resource::RLIMIT_RSS,
            "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
            "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
            "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
            "RLIMIT_STACK" => Resource::RLIMIT_STACK,
            other => refuse!("process.rlimits: unknown type {other:?}"),
        };
        set_within_reach(resource, limit.soft(), limit.hard()).with_context(|| format!("process.rlimits {name}"))?;
    }
    Ok(())
}

/// Sets the limits asked for; where raising the hard limit is refused
/// (no CAP_SYS_RESOURCE over the host: a root whose bounding set drops it,
/// as some sandboxes do, or a user namespace), the current hard limit
/// instead, since nothing started here could have more. podman asks for a
/// nofile of 1048576 by default, which would otherwise fail every run.
fn set_within_reach(resource: nix::sys::resource::Resource, soft: u64, hard: u64) -> nix::Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit};
    match setrlimit(resource, soft, hard) {
        Err(nix::errno::Errno::EPERM) => {
            let (_, current_hard) = getrlimit(resource)?;
            if hard <= current_hard {
                return Err(nix::errno::Errno::EPERM);
            }
            setrlimit(resource, soft.min(current_hard), current_hard)
        }
        other => other,
    }
}

/// oomScoreAdj. Lowering it below what the caller had takes
/// CAP_SYS_RESOURCE over the host, which a sandboxed root or a user
/// namespace lacks (containerd asks -998 for every CRI pod's sandbox):
/// there the kernel refuses with EACCES and the process keeps the value it
/// inherited, as an rlimit keeps the hard limit within reach, since nothing
/// it starts could be better protected than its caller. A raise always
/// applies; any other failure is an error.
fn set_oom_score_adj(adj: i32) -> Result<()> {
    const FILE: &str = "/proc/self/oom_score_adj";
    match std::fs::write(FILE, adj.to_string()) {
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            let current: i32 = std::fs::read_to_string(FILE)
                .context("read oom_score_adj")?
                .trim()
                .parse()
                .map_err(|_| refused!("{FILE} does not hold a number"))?;
            if adj < current {
                Ok(())
            } else {
                Err(e).with_context(|| format!("oomScoreAdj {adj}"))
            }
        }
        other => other.with_context(|| format!("oomScoreAdj {adj}")),
    }
}

/// process.user and process.capabilities: the bounding set first, then the
/// ids (keeping the permitted set across setuid), then the other sets.
fn become_user(process: &Process) -> Result<()> {
    use caps::{CapSet, CapsHashSet};
    let names = |set: Option<&oci_spec::runtime::Capabilities>| -> Result<CapsHashSet> {
        set.into_iter()
            .flatten()
            .map(|c| {
                let name = serde_json::to_value(c)?.as_str().unwrap_or_default().to_owned();
                name.parse::<caps::Capability>().map_err(|_| refused!("unknown capability {name}"))
            })
            .collect()
    };
    let caps = process.capabilities().as_ref();
    let bounding = names(caps.and_then(|c| c.bounding().as_ref()))?;
    let bounding_names: Vec<String> = bounding.iter().map(|c| c.to_string()).collect();
    crate::init::process::limit_capabilities(&bounding_names)?;
    nix::sys::prctl::set_keepcaps(true).context("PR_SET_KEEPCAPS")?;
    let user = process.user();
    let groups: Vec<nix::unistd::Gid> =
        user.additional_gids().as_deref().unwrap_or_default().iter().map(|g| nix::unistd::Gid::from_raw(*g)).collect();
    if std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "allow") {
        nix::unistd::setgroups(&groups).context("setgroups (process.user.additionalGids)")?;
    }
    let gid = nix::unistd::Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).with_context(|| format!("setgid {}", user.gid()))?;
    let uid = nix::unistd::Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).with_context(|| format!("setuid {}", user.uid()))?;
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask));
    }
    let permitted = names(caps.and_then(|c| c.permitted().as_ref()))?;
    let effective = names(caps.and_then(|c| c.effective().as_ref()))?;
    let inheritable = names(caps.and_then(|c| c.inheritable().as_ref()))?;
    let ambient = names(caps.and_then(|c| c.ambient().as_ref()))?;
    caps::set(None, CapSet::Effective, &effective.intersection(&permitted).copied().collect())
        .context("set the effective capabilities")?;
    caps::set(None, CapSet::Inheritable, &inheritable).context("set the inheritable capabilities")?;
    caps::set(None, CapSet::Permitted, &permitted).context("set the permitted capabilities")?;
    // The kernel raises an ambient capability only if it is permitted and
    // inheritable; runc and crun skip the others (`crun spec` lists the
    // ambient set with an empty inheritable one), and so does ctr-oci.
    for cap in ambient.iter().filter(|c| permitted.contains(c) && inheritable.contains(c)) {
        caps::raise(None, CapSet::Ambient, *cap).with_context(|| format!("raise {cap} in the ambient set"))?;
    }
    nix::sys::prctl::set_keepcaps(false).context("PR_SET_KEEPCAPS")?;
    Ok(())
}
