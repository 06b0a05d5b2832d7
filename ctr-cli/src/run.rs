//! `ctr run`: resolve the rootfs and the process, reserve the container,
//! ask the helper for the first process in new namespaces, hand `ctr init`
//! its spec, forward signals (and relay the terminal with -t) until the
//! container exits, then clean up ([`finish`]). With -d a detached monitor
//! ([`crate::monitor`]) does the starting, waiting and cleaning up instead.

use crate::container::{now_rfc3339, now_unix, Container, State, Status};
use crate::foreground::{self, Console, InitReport};
use crate::helper_client::{Helper, ProcessStdio};
use crate::image::ImageConfig;
use crate::liveness::ProcessRef;
use crate::lock::ContainerLock;
use crate::network;
use crate::paths::Paths;
use crate::ports::HeldPorts;
use crate::spec::{ContainerSpec, InitMessage, InitReply, InitTask, ProcessSpec, RootfsSpec, INIT_PROTOCOL_VERSION};
use anyhow::{anyhow, bail, Context, Result};
use ctr_core::frame;
use ctr_core::idmap::{default_map, parse_subid_file, IdMapEntry};
use ctr_core::ids::{ContainerId, ContainerName};
use ctr_core::limits::ResourceLimits;
use ctr_core::net::NetworkRequest;
use ctr_core::protocol::SpawnRequest;
use ctr_net::link::ContainerEnd;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Run in the background: print the container id and return at once.
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[command(flatten)]
    pub process: crate::process_args::ProcessArgs,
    /// Remove the container (its writable layer and state) when it exits.
    #[arg(long)]
    pub rm: bool,
    /// A name for the container, unique among yours ([a-zA-Z0-9][a-zA-Z0-9_.-]*).
    #[arg(long)]
    pub name: Option<String>,
    /// The container's hostname (default: the first 12 characters of its id).
    #[arg(long)]
    pub hostname: Option<String>,
    #[command(flatten)]
    pub net: crate::network::NetworkArgs,
    /// Add a capability to docker's default set (e.g. NET_ADMIN, or ALL).
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability from the set (e.g. CHOWN, or ALL).
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Override the image's entrypoint.
    #[arg(long, value_name = "PROGRAM")]
    pub entrypoint: Option<String>,
    /// Use this directory as the root filesystem instead of an image (it is
    /// used in place, writable).
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    #[command(flatten)]
    pub limits: crate::limits::LimitArgs,
    #[command(flatten)]
    pub mounts: crate::mount_args::MountArgs,
    #[command(flatten)]
    pub security: crate::seccomp::SecurityArgs,
    /// IMAGE [COMMAND [ARG...]], or with --rootfs just COMMAND [ARG...].
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "IMAGE|COMMAND")]
    pub args: Vec<String>,
}

/// What the container runs on, resolved from the image or --rootfs.
struct Source {
    label: String,
    image_id: Option<String>,
    config: ImageConfig,
    command: Vec<String>,
    /// The image's layers, top-most first (overlayfs's lowerdir order).
    rootfs_lower: Option<Vec<PathBuf>>,
    rootfs_dir: Option<PathBuf>,
}

fn resolve_source(paths: &Paths, args: &RunArgs) -> Result<Source> {
    if let Some(dir) = &args.rootfs {
        let dir = std::fs::canonicalize(dir).with_context(|| format!("--rootfs {}", dir.display()))?;
        if !dir.is_dir() {
            bail!("--rootfs {} is not a directory", dir.display());
        }
        return Ok(Source {
            label: dir.display().to_string(),
            image_id: None,
            config: ImageConfig::default(),
            command: args.args.clone(),
            rootfs_lower: None,
            rootfs_dir: Some(dir),
        });
    }
    let (reference, command) = args
        .args
        .split_first()
        .context("give an image (or --rootfs DIR) to run, e.g. `ctr run --rm busybox echo hello`")?;
    // Found in the store, else built in, else pulled (as docker does).
    let image = crate::image_cli::image_for_run(paths, reference)?;
    Ok(Source {
        label: reference.clone(),
        image_id: Some(image.id.clone()),
        config: image.config.clone(),
        command: command.to_vec(),
        rootfs_lower: Some(image.lower_dirs.clone()),
        rootfs_dir: None,
    })
}

/// Docker's rules: --entrypoint replaces the image's entrypoint and its
/// default command; a command given on the line replaces the default one.
fn process_args(config: &ImageConfig, entrypoint: Option<&str>, command: &[String]) -> Result<Vec<String>> {
    let (entry, default_cmd) = match entrypoint {
        Some(e) => (vec![e.to_owned()], Vec::new()),
        None => (config.entrypoint.clone(), config.cmd.clone()),
    };
    let cmd = if command.is_empty() { default_cmd } else { command.to_vec() };
    let args: Vec<String> = entry.into_iter().chain(cmd).collect();
    if args.is_empty() {
        bail!("no command specified: give one after the image, e.g. `ctr run IMAGE sh`");
    }
    Ok(args)
}

/// The image's environment, then `-e` on top (KEY alone copies ours).
pub fn merge_env(image_env: &[String], cli: &[String]) -> Vec<String> {
    let mut env: Vec<String> = image_env.to_vec();
    for item in cli {
        let entry = match item.split_once('=') {
            Some(_) => item.clone(),
            None => match std::env::var(item) {
                Ok(value) => format!("{item}={value}"),
                Err(_) => continue,
            },
        };
        let key = entry.split('=').next().unwrap_or_default().to_owned();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(entry);
    }
    env
}

fn check_hostname(h: &str) -> Result<()> {
    let ok = !h.is_empty() && h.len() <= 64 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !ok {
        bail!("invalid hostname {h:?}: use 1 to 64 letters, digits, '-' and '.'");
    }
    Ok(())
}

fn new_container_id() -> Result<ContainerId> {
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes).context("reading /dev/urandom")?;
    Ok(ContainerId::from_bytes(&bytes))
}

/// 0 to our own id, then our subordinate ranges; the helper re-checks it.
pub fn id_maps() -> (Vec<IdMapEntry>, Vec<IdMapEntry>) {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let name = nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten().map(|u| u.name);
    let ranges = |file: &str, id: u32| {
        std::fs::read_to_string(file).map(|t| parse_subid_file(&t, name.as_deref(), id)).unwrap_or_default()
    };
    (default_map(uid, &ranges("/etc/subuid", uid)), default_map(gid, &ranges("/etc/subgid", gid)))
}

pub fn run(paths: &Paths, args: RunArgs) -> Result<i32> {
    let source = crate::timing::time("image.resolve", || resolve_source(paths, &args))?;
    let process_args = process_args(&source.config, args.entrypoint.as_deref(), &source.command)?;
    let cwd = args
        .process
        .workdir
        .clone()
        .or_else(|| source.config.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        bail!("the working directory {cwd:?} is invalid: it must be an absolute path");
    }
    let security = args.security.resolve(&paths.state.join("seccomp-cache"), &args.cap_add, &args.cap_drop)?;
    let capabilities = security.capabilities;
    let limits = args.limits.to_limits()?;
    let mounts = args.mounts.to_mounts(paths)?;
    let network = args.net.to_request(&source.config.exposed_ports)?;
    args.process.check_terminal(args.detach)?;
    let terminal = args.process.terminal();
    let id = new_container_id()?;
    let hostname = args.hostname.clone().unwrap_or_else(|| id.short().to_owned());
    check_hostname(&hostname)?;
    let name = ContainerName::parse(args.name.as_deref().unwrap_or(id.short()))?;

    let container = crate::timing::time("rootfs.prepare", || Container::create(paths, id.clone(), name.clone()))?;
    let hosts = container.write_generated(
        "hosts",
        &format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"),
    )?;
    let hostname_file = container.write_generated("hostname", &format!("{hostname}\n"))?;
    let rootfs = match (&source.rootfs_lower, &source.rootfs_dir) {
        (Some(lower), _) => RootfsSpec::Overlay {
            lower: lower.clone(),
            upper: container.layer_dir.join("upper"),
            work: container.layer_dir.join("work"),
            target: container.layer_dir.join("rootfs"),
        },
        (None, Some(dir)) => RootfsSpec::Bind { path: dir.clone() },
        (None, None) => unreachable!("a source has a rootfs"),
    };
    let spec = ContainerSpec {
        hostname: hostname.clone(),
        rootfs,
        etc_files: vec![(hosts, "etc/hosts".into()), (hostname_file, "etc/hostname".into())],
        mounts: mounts.clone(),
        read_only_rootfs: args.mounts.read_only,
        process: ProcessSpec {
            args: process_args.clone(),
            env: merge_env(&source.config.env, &args.process.env),
            cwd,
            user: args.process.user.clone().or_else(|| source.config.user.clone()).filter(|u| !u.is_empty()),
            capabilities,
            oom_score_adj: args.limits.oom_score_adj,
        },
        terminal,
        seccomp: security.program,
        system_paths_unconfined: security.config.system_paths_unconfined,
        network: None,
    };
    crate::seccomp::save_program(&container.state_dir, &spec.seccomp)?;
    let mut state = State {
        id: id.to_string(),
        name: name.to_string(),
        image: source.label.clone(),
        image_id: source.image_id.clone(),
        command: process_args,
        created: now_unix(),
        status: Status::Created,
        pid: None,
        exit_code: None,
        cgroups: Vec::new(),
        oom_killed: false,
        limits: limits.clone(),
        mounts,
        hostname: hostname.clone(),
        network: None,
        process: Some(spec.process.clone()),
        tty: args.process.tty,
        auto_remove: args.rm,
        security: Some(security.config),
        ..State::default()
    };
    container.write_state(&state)?;
    let mut launch = Launch { spec, network, limits };
    if args.detach {
        return crate::monitor::start_detached(paths, &container, state, launch, args.process.interactive);
    }
    crate::timing::ask_init(&mut launch.spec.process.env);

    let helper = Helper::new(&paths.helper());
    state.monitor = Some(ProcessRef::current()?);
    // The helper passes our stdio on; with -t the container's init swaps
    // in its terminal, and without -i it gets no stdin, as with docker.
    let stdio = args.process.stdio();
    // Published ports stay held until the container's rules are gone.
    let mut held = HeldPorts::default();
    let outcome = start(paths, &helper, &container, &mut state, launch, stdio).and_then(|started| {
        held = started.ports;
        crate::timing::total("exec.total");
        if let Some(failure) = &started.report.failure {
            eprintln!("ctr: {}", failure.message);
        }
        let console = started.report.console.map(|master| Console { master, stdin: args.process.interactive });
        foreground::wait(started.pid, &started.pidfd, console)
    });
    let recorded =
        finish(paths, &helper, &container, &mut state, outcome.as_ref().ok().copied(), outcome.is_ok(), args.rm);
    drop(held);
    let exit_code = outcome?;
    recorded?;
    Ok(exit_code)
}

/// What the container is started with.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Launch {
    pub spec: ContainerSpec,
    pub network: NetworkRequest,
    pub limits: ResourceLimits,
}

/// A container whose command runs (or whose init reported why not).
pub struct Started {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    pub report: InitReport,
    /// Its published host ports, bound until it is gone ([`crate::ports`]).
    pub ports: HeldPorts,
}

/// Records how a container ended, under its lock: whether the OOM killer
/// struck (read before the cgroup goes), then the cgroup removed whatever
/// happened, then the exit in its state, or with `rm` the container gone.
/// Idempotent, and a no-op for a container removed meanwhile (`rm -f`).
pub fn finish(
    paths: &Paths,
    helper: &Helper,
    container: &Container,
    state: &mut State,
    exit_code: Option<i32>,
    started: bool,
    rm: bool,
) -> Result<()> {
    let lock = ContainerLock::acquire(&container.state_dir)?;
    state.oom_killed |= crate::cgroup_stats::oom_killed(&state.cgroups);
    if let Some(info) = &state.network {
        network::announce(paths, state, info, false);
    }
    let cgroup_removed = helper.remove_cgroup(&container.id).context("removing the container's cgroup");
    if lock.is_none() {
        return cgroup_removed;
    }
    if rm {
        remove_container(helper, container)?;
    } else {
        state.status = if started { Status::Exited } else { Status::Created };
        state.exit_code = exit_code;
        state.finished_at = Some(now_rfc3339());
        container.write_state(state)?;
    }
    cgroup_removed
}

/// Asks the helper for the container's first process, records it, hands
/// `ctr init` its spec and reads what it reports before executing.
pub fn start(
    paths: &Paths,
    helper: &Helper,
    container: &Container,
    state: &mut State,
    launch: Launch,
    stdio: ProcessStdio,
) -> Result<Started> {
    let Launch { mut spec, network, limits } = launch;
    let (uid_map, gid_map) = id_maps();
    let request = SpawnRequest {
        id: container.id.clone(),
        name: container.name.clone(),
        user_namespace: true,
        network,
        uid_map,
        gid_map,
        limits,
    };
    // Once the helper exits, its child (the container) is re-parented to
    // us, so that we can wait for it.
    nix::sys::prctl::set_child_subreaper(true).context("PR_SET_CHILD_SUBREAPER")?;
    let (mut ours, theirs) = UnixStream::pair().context("socketpair for the init channel")?;
    let spawned = helper.spawn(request, &OwnedFd::from(theirs), stdio)?;
    let pid = Pid::from_raw(spawned.pid);
    // Before the command runs (init waits for its spec): if another
    // program bound a port since the helper checked it, nothing started.
    let ports = HeldPorts::hold(spawned.network.as_ref()).inspect_err(|_| {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
    })?;
    state.status = Status::Running;
    state.pid = Some(spawned.pid);
    // Our unreaped child now, so its pid cannot be reused before this.
    state.init = Some(ProcessRef::of(spawned.pid)?);
    state.started_at = Some(now_rfc3339());
    state.cgroups = spawned.cgroups.clone();
    if state.limits.pids_limit.is_none() {
        // What the helper's default_pids_limit gave, so inspect shows it.
        state.limits.pids_limit = pids_limit_in_force(&state.cgroups);
    }
    state.network = spawned.network.clone();
    container.write_state(state)?;
    if let Some(info) = &spawned.network {
        spec.network = Some(ContainerEnd::eth0(info.address, info.prefix, info.gateway));
        let hosts = network::hosts_file(paths, state, &spec.hostname, Some(info));
        network::rewrite_in_place(&container.state_dir.join("hosts"), &hosts)?;
        spec.etc_files
            .push((container.write_generated("resolv.conf", &network::resolv_conf())?, "etc/resolv.conf".into()));
    }

    let message = InitMessage { version: INIT_PROTOCOL_VERSION, task: InitTask::Run(Box::new(spec)) };
    if let Err(e) = frame::write_frame(&mut ours, &message) {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        bail!("the container's init did not take its spec: {e}");
    }
    let report = foreground::read_init_report(&ours);
    // Only now that init has configured its address do peers learn its name.
    if let Some(info) = spawned.network.as_ref().filter(|_| report.failure.is_none()) {
        network::announce(paths, state, info, true);
    }
    Ok(Started { pid, pidfd: spawned.pidfd, report, ports })
}

/// pids.max of the container's cgroup (v1 pids hierarchy, else v2), if it
/// is a number.
fn pids_limit_in_force(cgroups: &[ctr_core::protocol::CgroupDir]) -> Option<u64> {
    let dir = cgroups
        .iter()
        .find(|d| !d.v2 && d.controllers.iter().any(|c| c == "pids"))
        .or_else(|| cgroups.iter().find(|d| d.v2))?;
    std::fs::read_to_string(Path::new(&dir.path).join("pids.max")).ok()?.trim().parse().ok()
}

/// Removes the container's layer and state. Files that the container made
/// as a subordinate id cannot be removed by us directly; a throwaway
/// `ctr init` in a new user namespace with our mapping removes them.
pub fn remove_container(helper: &Helper, container: &Container) -> Result<()> {
    if container.remove_local()? {
        return Ok(());
    }
    remove_in_user_namespace(helper, &container.layer_dir)?;
    container.remove_local()?;
    Ok(())
}

pub fn remove_in_user_namespace(helper: &Helper, path: &Path) -> Result<()> {
    let id = new_container_id()?;
    let (uid_map, gid_map) = id_maps();
    let request = SpawnRequest {
        id: id.clone(),
        name: ContainerName::parse(&format!("rm-{}", id.short()))?,
        user_namespace: true,
        network: NetworkRequest::None,
        uid_map,
        gid_map,
        limits: ResourceLimits::default(),
    };
    nix::sys::prctl::set_child_subreaper(true)?;
    let (mut ours, theirs) = UnixStream::pair()?;
    let spawned = helper.spawn(request, &OwnedFd::from(theirs), ProcessStdio::no_stdin())?;
    let message = InitMessage { version: INIT_PROTOCOL_VERSION, task: InitTask::RemoveTree { path: path.to_owned() } };
    frame::write_frame(&mut ours, &message).map_err(|e| anyhow!("{e}"))?;
    let failure = match frame::read_frame::<InitReply>(&mut ours) {
        Ok(InitReply::Failed(f)) => Some(f),
        _ => None,
    };
    let status = waitpid(Pid::from_raw(spawned.pid), None);
    helper.remove_cgroup(&id)?;
    match (failure, status) {
        (None, Ok(WaitStatus::Exited(_, 0))) => Ok(()),
        (Some(f), _) => bail!("removing {}: {}", path.display(), f.message),
        (None, other) => bail!("removing {}: cleanup process ended with {other:?}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(entry: &[&str], cmd: &[&str]) -> ImageConfig {
        ImageConfig {
            entrypoint: entry.iter().map(|s| s.to_string()).collect(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..ImageConfig::default()
        }
    }

    #[test]
    fn docker_entrypoint_and_cmd_rules() {
        let c = config(&["/entry"], &["default"]);
        assert_eq!(process_args(&c, None, &[]).unwrap(), ["/entry", "default"]);
        assert_eq!(process_args(&c, None, &["x".into()]).unwrap(), ["/entry", "x"]);
        assert_eq!(process_args(&c, Some("sh"), &[]).unwrap(), ["sh"]);
        assert_eq!(process_args(&c, Some("sh"), &["-c".into(), "true".into()]).unwrap(), ["sh", "-c", "true"]);
        assert!(process_args(&config(&[], &[]), None, &[]).is_err());
    }

    #[test]
    fn env_overrides_by_key() {
        let merged = merge_env(&["PATH=/bin".into(), "A=1".into()], &["A=2".into(), "B=3".into()]);
        assert_eq!(merged, ["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn hostnames() {
        assert!(check_hostname("web-1.local").is_ok());
        assert!(check_hostname("a/b").is_err());
        assert!(check_hostname("").is_err());
    }
}
