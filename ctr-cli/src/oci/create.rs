//! `create` and `run`, the runtime's side. As root (or root of the
//! caller's own user namespace) no helper is involved: ctr-oci makes the
//! container's cgroup through ctr-core's cgroup manager, clones the
//! container's first process straight into its new namespaces, writes its
//! id maps, moves it into the cgroup, and lets it go on; the child
//! ([`super::init`]) reports when it is ready and blocked on `exec.fifo`.
//! Then the record and the pid file are written and `create` exits,
//! leaving the process to whoever reaps it (containerd's shim, conmon).

use super::bundle::{Bundle, MountNamespace};
use super::hooks::{self, HOOKS_FILE};
use super::init::{self, Report};
use super::record::{now_rfc3339, Record, Root, EXEC_FIFO, OCI_VERSION, SECCOMP_FILE};
use super::shared_mounts;
use super::systemd_dbus::Systemd;
use super::{OciContext, Result};
use ctr_core::cgroup::{self, ContainerCgroups};
use ctr_core::frame;
use ctr_core::liveness::Liveness;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// `create`'s options, as runc takes them.
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    /// crun's `--cgroup-manager=disabled` (podman's `--cgroups=disabled`):
    /// no cgroup is made; the process stays in the caller's.
    pub no_cgroups: bool,
    /// runc's global `--systemd-cgroup`: cgroupsPath is `slice:prefix:name`
    /// ([`super::systemd_cgroup`]).
    pub systemd_cgroup: bool,
    /// runc's `--rootless true|false`; `None` (auto) is rootless when not
    /// root or in a user namespace: cgroups only through a delegated v2
    /// subtree ([`super::cgroups::plan_rootless`]), no device rules.
    pub rootless: Option<bool>,
}

/// Creates container `id`; returns its first process, which is our child.
pub fn create(root: &Root, id: &str, options: &CreateOptions) -> Result<Pid> {
    // From here on preserve_fds counts LISTEN_FDS' sockets too (first).
    let passed = super::fds::passed(options.preserve_fds)?;
    let options = &CreateOptions { preserve_fds: passed.total, ..options.clone() };
    let mut bundle = Bundle::load(&options.bundle)?;
    super::fds::tell_activation(&mut bundle.spec, passed.listen);
    let terminal = bundle.spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false);
    let console = super::console::connect(terminal, options.console_socket.as_deref())?;
    let dir = root.make_dir(id)?;
    // A failed create leaves nothing: start_child removes the cgroup and
    // the process, this the state directory.
    start_child(root, id, &bundle, &dir, options, console).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&dir);
    })
}

fn start_child(
    root: &Root,
    id: &str,
    bundle: &Bundle,
    dir: &Path,
    options: &CreateOptions,
    console: Option<UnixStream>,
) -> Result<Pid> {
    let fifo_path = dir.join(EXEC_FIFO);
    nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o600)).context("mkfifo exec.fifo")?;
    // Writable by the container's user, whoever that is: it opens its end
    // after becoming process.user.
    std::fs::set_permissions(&fifo_path, std::os::unix::fs::PermissionsExt::from_mode(0o622))?;
    let fifo = open_path(&fifo_path)?;

    let rootless =
        options.rootless.unwrap_or_else(|| !nix::unistd::geteuid().is_root() || super::record::in_user_namespace());
    let spec_path = match bundle.spec.linux().as_ref().and_then(|l| l.cgroups_path().as_ref()) {
        Some(path) => Some(path.to_str().context("linux.cgroupsPath is not UTF-8")?),
        None => None,
    };
    // Where systemd runs, the systemd form is a scope systemd makes, with
    // the process in it: after the clone (D-Bus starts threads, and the
    // clone is a fork), before the process goes on.
    let placement = super::systemd_cgroup::placement(spec_path, id, options.systemd_cgroup, rootless, || {
        super::systemd_dbus::manager_root(rootless)
    })?;
    let cgroups_path = placement.path.as_str();
    let scope = placement.scope.clone().filter(|_| !options.no_cgroups);
    let systemd: std::cell::OnceCell<Systemd> = std::cell::OnceCell::new();
    let cgroups = if options.no_cgroups {
        if !bundle.limits.is_empty() {
            refuse!("linux.resources needs a cgroup, and --cgroup-manager=disabled makes none");
        }
        ContainerCgroups::default()
    } else if rootless {
        super::cgroups::plan_rootless(cgroups_path, !bundle.limits.is_empty())?
    } else {
        super::cgroups::plan_path(cgroups_path)?
    };
    // Rootless, the device cgroup is not ours to write, and the devices
    // are bound from the host, not made.
    let device_rules: &[(bool, String)] = if rootless { &[] } else { &bundle.device_rules };
    let cleanup = || {
        let _ = cgroup::kill_and_remove(&cgroups);
        if let (Some(systemd), Some(unit)) = (systemd.get(), &scope) {
            let _ = systemd.stop_unit(&unit.name);
        }
    };
    // What systemd does not set, or all of it where systemd is not asked.
    let set_up = || -> Result<()> {
        cgroup::create(&cgroups)
            .and_then(|()| cgroup::apply_limits(&cgroups, &bundle.limits))
            .and_then(|()| super::cgroups::set_devices(&cgroups, device_rules))
            .and_then(|()| super::cgroups::set_memory_v1(&cgroups, &bundle.memory_v1))
            .map_err(|e| refused!("cgroup {cgroups_path}: {e}"))
    };
    if !options.no_cgroups && scope.is_none() {
        if let Err(e) = set_up() {
            cleanup();
            return Err(e);
        }
    }
    let place = |pid: Pid| -> Result<()> {
        if let Some(unit) = &scope {
            let properties = super::systemd_dbus::properties(&bundle.limits, &cgroups);
            let connected = Systemd::connect(unit.user)?;
            let systemd = systemd.get_or_init(|| connected);
            systemd.start_scope(unit, u32::try_from(pid.as_raw())?, properties)?;
            // The directories were planned before the clone, from where
            // the manager's units should be.
            let made = systemd.unit_cgroup(&unit.name)?;
            if made != cgroups_path {
                refuse!("systemd made {} in {made}, not in {cgroups_path} as planned", unit.name);
            }
            set_up()?;
        }
        cgroup::attach(&cgroups, pid, true).map_err(|e| refused!("move the process into its cgroup: {e}"))
    };
    if let Some(hooks) = bundle.spec.hooks() {
        std::fs::write(dir.join(HOOKS_FILE), serde_json::to_vec(hooks)?)
            .context("keep the hooks for start and delete")?;
    }
    let launch = init::Launch { preserve_fds: options.preserve_fds, no_pivot: options.no_pivot };
    // Sharing our mount namespace, the process's mounts are made in ours:
    // those that were not there before are the container's.
    let shared = bundle.mount_namespace == MountNamespace::Shared;
    let before = if shared { shared_mounts::beneath(&bundle.rootfs)? } else { Vec::new() };
    let made = || if shared { shared_mounts::made_since(&bundle.rootfs, &before) } else { Ok(Vec::new()) };
    let outcome = clone_and_release(id, bundle, &cgroups, &place, fifo, console, launch).and_then(|pid| {
        let record = Record {
            id: id.to_owned(),
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            init: Liveness::of(pid.as_raw()).context("the container's process is gone")?,
            created: now_rfc3339(),
            cgroups: cgroups.clone(),
            scope: scope.clone(),
            annotations: bundle.spec.annotations().clone().unwrap_or_default(),
            devices: bundle.spec.linux().as_ref().and_then(|l| l.devices().clone()).unwrap_or_default(),
            shared_mounts: made()?,
        };
        if let Some(program) = &bundle.seccomp {
            std::fs::write(dir.join(SECCOMP_FILE), program).context("keep the seccomp filter for exec")?;
        }
        root.save(&record)?;
        if let Some(pid_file) = &options.pid_file {
            write_pid_file(pid_file, pid)?;
        }
        Ok(pid)
    });
    if outcome.is_err() {
        cleanup();
        if let Ok(made) = made() {
            let _ = shared_mounts::undo(&bundle.rootfs, &made);
        }
    }
    outcome
}

fn open_path(path: &Path) -> Result<OwnedFd> {
    use nix::fcntl::OFlag;
    let raw = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .with_context(|| format!("open {}", path.display()))?;
    Ok(crate::sys::adopt(raw))
}

/// The pid, with no trailing newline (as runc writes it), replaced whole.
fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    let tmp = path.with_extension("ctr-oci-tmp");
    std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(pid.to_string().as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("write the pid file {}", path.display()))
}

fn clone_and_release(
    id: &str,
    bundle: &Bundle,
    cgroups: &ContainerCgroups,
    place: &dyn Fn(Pid) -> Result<()>,
    fifo: OwnedFd,
    console: Option<UnixStream>,
    launch: init::Launch,
) -> Result<Pid> {
    let (mut ours, theirs) = UnixStream::pair().context("socketpair")?;
    // A pid namespace given by path holds our children, not us: join it
    // before the clone.
    for (flag, path) in bundle.join.iter().filter(|(flag, _)| *flag == libc::CLONE_NEWPID) {
        let ns = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
        nix::sched::setns(ns, nix::sched::CloneFlags::from_bits_truncate(*flag))
            .with_context(|| format!("join pid namespace {}", path.display()))?;
    }
    let flags = libc::c_ulong::try_from(bundle.clone_flags | libc::SIGCHLD).context("clone flags")?;
    // SAFETY: clone without a new stack behaves as fork: the child gets a
    // copy of this single-threaded process and returns here with 0.
    let rc = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    let pid = nix::errno::Errno::result(rc).context("clone the container's process")?;
    if pid == 0 {
        drop(ours);
        init::main(bundle, cgroups, theirs, fifo, console, launch);
    }
    let terminal = console.is_some();
    drop(console);
    drop(theirs);
    drop(fifo);
    let pid = Pid::from_raw(i32::try_from(pid).context("pid out of range")?);
    let released = (|| -> Result<()> {
        if bundle.clone_flags & libc::CLONE_NEWUSER != 0 {
            write_id_maps(bundle, pid)?;
        }
        place(pid)?;
        // The spec's lifecycle runs these hooks after the environment is
        // made (step 2), which its state calls `created` (as crun does).
        let state = serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": id,
            "status": "created",
            "pid": pid.as_raw(),
            "bundle": bundle.dir,
            "annotations": bundle.spec.annotations().clone().unwrap_or_default(),
        });
        let hooks = bundle.spec.hooks().as_ref();
        hooks::run("prestart", hooks.and_then(|h| h.prestart().as_ref()), &state)?;
        hooks::run("createRuntime", hooks.and_then(|h| h.create_runtime().as_ref()), &state)?;
        ours.write_all(b"G").context("release the container's process")?;
        frame::write_frame(&mut ours, &state.to_string()).context("give the container's process its state")?;
        match frame::read_frame::<Report>(&mut ours) {
            Ok(Report::Ready) if !terminal && super::fds::has_user_namespace(bundle) => {
                super::fds::give_stdio_to_namespace_root(pid)
            }
            Ok(Report::Ready) => Ok(()),
            Ok(Report::Failed(message)) => Err(super::OciError::Invalid(message)),
            Err(e) => Err(refused!("the container's process died while starting ({e})")),
        }
    })();
    if let Err(e) = released {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(pid, None);
        return Err(e);
    }
    Ok(pid)
}

fn write_id_maps(bundle: &Bundle, pid: Pid) -> Result<()> {
    let linux = bundle.spec.linux().as_ref().expect("checked by Bundle::load");
    let lines = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> String {
        maps.as_deref()
            .unwrap_or_default()
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect()
    };
    for (file, text) in [("uid_map", lines(linux.uid_mappings())), ("gid_map", lines(linux.gid_mappings()))] {
        if text.is_empty() {
            refuse!("a new user namespace needs linux.uidMappings and gidMappings");
        }
        std::fs::write(format!("/proc/{pid}/{file}"), text).with_context(|| format!("write {file}"))?;
    }
    Ok(())
}

/// `run`: create, start, wait, delete; returns the process's exit status
/// (128+N when killed by signal N). With `detach` it returns after start.
pub fn run(root: &Root, id: &str, options: &CreateOptions, detach: bool) -> Result<i32> {
    let pid = create(root, id, options)?;
    if let Err(e) = super::lifecycle::start(root, id) {
        let _ = super::lifecycle::delete(root, id, true);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let code = wait_forwarding_signals(pid)?;
    super::lifecycle::delete(root, id, true)?;
    Ok(code)
}

/// Waits for the container's process, passing it the signals a terminal
/// or a supervisor sends `run` (as runc does), so that Ctrl-C reaches the
/// container instead of leaving it behind.
pub(super) fn wait_forwarding_signals(pid: Pid) -> Result<i32> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    use nix::sys::wait::WaitPidFlag;
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGCHLD,
    ] {
        set.add(signal);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).context("block signals")?;
    loop {
        // Checked before each wait: a SIGCHLD from before the mask is gone.
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(128 + signal as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).context("wait for the container"),
        }
        match set.wait().context("sigwait")? {
            Signal::SIGCHLD => {}
            signal => {
                let _ = nix::sys::signal::kill(pid, signal);
            }
        }
    }
}
