//! `run`: resolve the rootfs (an image, or a directory) and the process,
//! reserve the container and write its record, then start it through
//! [`crate::launch`]: in the foreground, waiting for it while forwarding
//! signals (and relaying the terminal with -t) and cleaning up after it;
//! or detached, through a monitor ([`crate::process::monitor`]) that does
//! the starting, waiting and cleaning up instead.

use super::record::{now_unix, Container, State};
use super::state::Status;
use super::{invalid, Result};
use crate::error::IoContext;
use crate::helper_client::Helper;
use crate::image::ImageConfig;
use crate::launch::{self, Launch, ProcessOptions};
use crate::mounts::{self, MountSpec};
use crate::network::NetworkOptions;
use crate::paths::Paths;
use crate::ports::HeldPorts;
use crate::process::liveness::ProcessRef;
use crate::process::monitor::{self, Detached};
use crate::process::restart_policy::RestartPolicy;
use crate::process::wait::{self, Console};
use crate::seccomp::SecurityOptions;
use crate::spec::{ContainerSpec, ProcessSpec, RootfsSpec};
use crate::tuning::{Sysctl, Ulimit};
use ctr_core::ids::{ContainerId, ContainerName};
use std::path::PathBuf;

/// Everything `ctr run` was asked for.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// Start it in the background and return once its command runs.
    pub detach: bool,
    /// Remove it (its writable layer and state) when it exits.
    pub rm: bool,
    pub name: Option<String>,
    /// Default: the first 12 characters of its id.
    pub hostname: Option<String>,
    pub process: ProcessOptions,
    pub network: NetworkOptions,
    /// Capabilities added to and dropped from docker's default set.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// Replaces the image's entrypoint (and its default command).
    pub entrypoint: Option<String>,
    /// A directory to use as the root filesystem instead of an image.
    pub rootfs: Option<PathBuf>,
    /// Checked against this host when the container is made.
    pub limits: super::limits::LimitRequest,
    /// Written to the process's oom_score_adj (-1000 to 1000).
    pub oom_score_adj: Option<i32>,
    /// `-v SRC:DEST[:OPTS]` and `--tmpfs DEST[:OPTS]`, as given.
    pub volumes: Vec<String>,
    pub tmpfs: Vec<String>,
    /// The root mount read-only.
    pub read_only: bool,
    pub security: SecurityOptions,
    /// `--restart`: what the monitor does when the container exits.
    pub restart_policy: RestartPolicy,
    /// `--log-opt`: how the container's log rotates.
    pub log_options: crate::logs::LogOptions,
    /// `--dns`, `--dns-search`, `--dns-option` and `--add-host`.
    pub dns: crate::dns::DnsConfig,
    /// `--env-file`s, read before `-e` (which wins).
    pub env_files: Vec<PathBuf>,
    /// `-l KEY=VALUE` and `--label-file`s.
    pub labels: Vec<String>,
    pub label_files: Vec<PathBuf>,
    /// `--stop-signal` (a signal name) and `--stop-timeout` (seconds), for `ctr stop`.
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u64>,
    /// `--cidfile`: write the container's id there (it must not exist).
    pub cidfile: Option<PathBuf>,
    /// `--ulimit NAME=SOFT[:HARD]`, `--sysctl NAME=VALUE`, as given.
    pub ulimits: Vec<String>,
    pub sysctls: Vec<String>,
    /// `--shm-size`, with docker's units.
    pub shm_size: Option<String>,
    /// `--group-add`: supplementary groups, by name or number.
    pub group_add: Vec<String>,
    /// `--init`: a reaper as pid 1, the command its child.
    pub init: bool,
    /// `--health-*` and `--no-healthcheck`.
    pub health: crate::health::HealthFlags,
    /// `--userns`: "" (the default map) or keep-id.
    pub userns: Option<String>,
    /// `--device HOST[:CONTAINER][:PERMISSIONS]`, as given.
    pub devices: Vec<String>,
    /// `-a/--attach`: the streams a foreground run shows (None: docker's default).
    pub attach: Option<crate::run_options::Streams>,
    /// `--detach-keys`, as given (checked when parsed).
    pub detach_keys: Option<String>,
    /// `--pull` and `--platform`.
    pub image: crate::image::local::RunImage,
    /// IMAGE [COMMAND [ARG...]], or with `rootfs` just COMMAND [ARG...].
    pub args: Vec<String>,
}

/// How a run ended, for the caller to report.
#[derive(Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Detached, and its command runs.
    Started(ContainerId),
    /// A foreground `run -it` detached with the detach keys: it runs on.
    Detached,
    /// Ran in the foreground, or could not start: docker's exit status,
    /// and what init reported if the command could not be executed.
    Exited { exit_code: i32, failure: Option<String> },
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

fn resolve_source(
    paths: &Paths,
    request: &RunRequest,
    keep_id: Option<&crate::image::userns::IdMaps>,
) -> Result<Source> {
    if let Some(dir) = &request.rootfs {
        let dir = std::fs::canonicalize(dir).with_io_context(|| format!("--rootfs {}", dir.display()))?;
        if !dir.is_dir() {
            invalid!("--rootfs {} is not a directory", dir.display());
        }
        return Ok(Source {
            label: dir.display().to_string(),
            image_id: None,
            config: ImageConfig::default(),
            command: request.args.clone(),
            rootfs_lower: None,
            rootfs_dir: Some(dir),
        });
    }
    let Some((reference, command)) = request.args.split_first() else {
        invalid!("give an image (or --rootfs DIR) to run, e.g. `ctr run --rm busybox echo hello`")
    };
    // Found in the store, else built in, else pulled (as docker does).
    let image = crate::image::local::image_for_run(paths, reference, &request.image)?;
    let lower = match keep_id {
        Some(maps) => {
            crate::timing::time("image.keep_id", || crate::image::local::keep_id_layers(paths, &image, maps))?
        }
        None => image.lower_dirs.clone(),
    };
    Ok(Source {
        label: reference.clone(),
        image_id: Some(image.id.clone()),
        config: image.config.clone(),
        command: command.to_vec(),
        rootfs_lower: Some(lower),
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
        invalid!("no command specified: give one after the image, e.g. `ctr run IMAGE sh`");
    }
    Ok(args)
}

fn check_hostname(h: &str) -> Result<()> {
    let ok = !h.is_empty() && h.len() <= 64 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !ok {
        invalid!("invalid hostname {h:?}: use 1 to 64 letters, digits, '-' and '.'");
    }
    Ok(())
}

/// Parses and checks every mount, creating named volumes that are
/// missing; sorted so that a mount comes after the one it sits in.
fn mounts_of(paths: &Paths, request: &RunRequest) -> Result<Vec<MountSpec>> {
    let mut mounts = Vec::new();
    for v in &request.volumes {
        mounts.push(mounts::parse_volume(v, |name| crate::volume::ensure(paths, name))?);
    }
    for t in &request.tmpfs {
        mounts.push(mounts::parse_tmpfs(t)?);
    }
    Ok(mounts::ordered(mounts)?)
}

/// A container whose record and launch are written, ready to start.
pub(super) struct Prepared {
    pub container: Container,
    pub state: State,
    pub launch: Launch,
}

/// Everything before the start: the rootfs, the record, the name, the
/// writable layer, and the launch that `ctr start` starts it from again.
pub(super) fn prepare(paths: &Paths, request: &RunRequest) -> Result<Prepared> {
    if request.rm && request.restart_policy != RestartPolicy::No {
        invalid!(
            "--rm and --restart {} conflict: a container removed when it exits cannot be restarted",
            request.restart_policy
        );
    }
    let keep_id = match request.userns.as_deref() {
        None | Some("") => None,
        Some("keep-id") => Some(crate::image::userns::IdMaps::keep_id().ok_or(super::ContainerError::KeepIdRanges)?),
        Some(other) => return Err(super::ContainerError::UsernsMode(other.to_owned())),
    };
    // Before the image, so that an impossible limit never waits for a pull.
    let limits = request.limits.resolve()?;
    let source = crate::timing::time("image.resolve", || resolve_source(paths, request, keep_id.as_ref()))?;
    let process_args = process_args(&source.config, request.entrypoint.as_deref(), &source.command)?;
    let cwd = request
        .process
        .workdir
        .clone()
        .or_else(|| source.config.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        invalid!("the working directory {cwd:?} is invalid: it must be an absolute path");
    }
    let security = request.security.resolve(&paths.state.join("seccomp-cache"), &request.cap_add, &request.cap_drop)?;
    let capabilities = security.capabilities;
    let mounts = mounts_of(paths, request)?;
    let devices = crate::devices::resolve_all(&request.devices)?;
    let network = request.network.to_request(&source.config.exposed_ports)?;
    if matches!(network, ctr_core::net::NetworkRequest::None) {
        crate::dns::hosts_lines(&request.dns, None)?;
    }
    request.process.check_terminal(request.detach)?;
    let terminal = request.process.terminal();
    let mut cli_env = crate::run_options::read_env_files(&request.env_files)?;
    cli_env.extend(request.process.env.iter().cloned());
    let host_network = matches!(network, ctr_core::net::NetworkRequest::Host);
    let sysctls = request.sysctls.iter().map(|s| Sysctl::parse(s, host_network)).collect::<Result<Vec<_>, _>>()?;
    let rlimits = request.ulimits.iter().map(|u| Ulimit::parse(u)).collect::<Result<Vec<_>, _>>()?;
    let shm_size = request.shm_size.as_deref().map(|s| ctr_core::limits::parse_bytes("--shm-size", s)).transpose()?;
    if shm_size == Some(0) {
        invalid!("--shm-size must be above 0");
    }
    let options = crate::run_options::KeptOptions {
        labels: crate::run_options::labels(&request.label_files, &request.labels)?,
        stop_signal: request.stop_signal.clone(),
        stop_timeout: request.stop_timeout,
        sysctls: sysctls.clone(),
        shm_size,
        init: request.init,
        // Docker's: a detached container attaches to nothing.
        attach: request.attach.or_else(|| {
            (!request.detach).then(|| crate::run_options::Streams::default_for(request.process.interactive))
        }),
        detach_keys: request.detach_keys.clone(),
        devices: devices.clone(),
        health: crate::health::resolve(source.config.healthcheck.as_ref(), &request.health)?,
        keep_id: keep_id.is_some(),
    };
    let id = launch::new_container_id()?;
    let hostname = request.hostname.clone().unwrap_or_else(|| id.short().to_owned());
    check_hostname(&hostname)?;
    let name = ContainerName::parse(request.name.as_deref().unwrap_or(id.short()))?;

    if let Some(path) = &request.cidfile {
        crate::run_options::write_cidfile(path, id.as_str())?;
    }
    let mut container = crate::timing::time("rootfs.prepare", || Container::create(paths, id.clone(), name.clone()))
        .inspect_err(|_| {
            if let Some(path) = &request.cidfile {
                let _ = std::fs::remove_file(path);
            }
        })?;
    container.durable = !request.rm;
    let host_files = crate::dns::HostFiles::default().read();
    let mut etc_files = crate::network::etc_files(&container, &hostname, &request.dns, &network, &host_files)?;
    etc_files.push((container.write_generated("hostname", &format!("{hostname}\n"))?, "etc/hostname".into()));
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
        etc_files,
        mounts: mounts.clone(),
        read_only_rootfs: request.read_only,
        process: ProcessSpec {
            args: process_args.clone(),
            env: launch::merge_env(&launch::base_env(&source.config.env, request.process.tty), &cli_env),
            cwd,
            // podman's keep-id: the caller's own ids unless --user says otherwise.
            user: request
                .process
                .user
                .clone()
                .or_else(|| keep_id.as_ref().map(|_| format!("{}:{}", nix::unistd::getuid(), nix::unistd::getgid())))
                .or_else(|| source.config.user.clone())
                .filter(|u| !u.is_empty()),
            capabilities,
            oom_score_adj: request.oom_score_adj,
            rlimits,
            group_add: request.group_add.clone(),
        },
        terminal,
        seccomp: security.program,
        system_paths_unconfined: security.config.system_paths_unconfined,
        network: None,
        sysctls,
        shm_size,
        init_reaper: request.init,
        devices,
        keep_id_user: keep_id.as_ref().and_then(|_| crate::spec::KeepIdUser::of_caller()),
    };
    crate::seccomp::save_program(&container.state_dir, &spec.seccomp)?;
    let state = State {
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
        tty: request.process.tty,
        auto_remove: request.rm,
        security: Some(security.config),
        restart_policy: request.restart_policy,
        log_options: request.log_options,
        dns: request.dns.clone(),
        options,
        ..State::default()
    };
    let launch = Launch { spec, network, limits, keep_id: keep_id.is_some() };
    super::saved_launch::save_launch(&container, &launch, request.process.interactive)?;
    container.write_state(&state)?;
    Ok(Prepared { container, state, launch })
}

/// `-a` and `--detach-keys` as `run` (not `create`) takes them.
fn check_attach(request: &RunRequest) -> Result<()> {
    if request.detach && request.attach.is_some() {
        invalid!("-a and -d conflict: attach to a detached container with `ctr attach` (or `ctr start -a`)");
    }
    if !request.detach && request.detach_keys.is_some() && !attaches_to_terminal(request) {
        invalid!(
            "--detach-keys needs -it (or -d): only a terminal detaches; use `ctr run -it --detach-keys ...`, or \
`ctr run -dit --detach-keys ...` then `ctr attach`"
        );
    }
    Ok(())
}

/// A foreground `run -it`: docker's, which a monitor runs so that it can
/// be detached from.
fn attaches_to_terminal(request: &RunRequest) -> bool {
    !request.detach && request.process.tty && request.process.interactive
}

/// `run -it`: started under a monitor, as `run -d` does, and attached at
/// once (before the start, so no output is missed). The detach keys leave
/// it running; otherwise its exit code comes back once the monitor has
/// recorded it (and with `--rm` removed the container). Signals sent to
/// us go to its init, as a foreground run's always did.
fn run_attached(paths: &Paths, request: &RunRequest, prepared: Prepared) -> Result<RunOutcome> {
    let Prepared { container, state, launch } = prepared;
    let keys = super::attach::detach_keys(&state, None)?;
    let shown = request.attach.unwrap_or(crate::run_options::Streams::default_for(true));
    let (started, connection) = monitor::start_detached(paths, &container, state, launch, true, true)?;
    let Some(connection) = connection else { return Err(crate::process::monitor::MonitorError::Died.into()) };
    if let Detached::Failed { exit_code, message } = started {
        // Until the monitor is done with it (`--rm`: removed).
        let _ = std::io::copy(&mut &connection, &mut std::io::sink());
        return Ok(RunOutcome::Exited { exit_code, failure: Some(message) });
    }
    let signals_to = container.read_state()?.and_then(|s| s.init).and_then(|init| init.pidfd());
    let relay = super::attach::Relay {
        tty: true,
        send_input: shown.stdin,
        keys,
        hide_stdout: !shown.stdout,
        hide_stderr: !shown.stderr,
        signals_to,
    };
    Ok(match relay.run(paths, container.id.as_str(), connection)? {
        super::attach::Attachment::Exited(exit_code) => RunOutcome::Exited { exit_code, failure: None },
        super::attach::Attachment::Detached => RunOutcome::Detached,
    })
}

pub fn run(paths: &Paths, request: RunRequest) -> Result<RunOutcome> {
    check_attach(&request)?;
    let prepared = prepare(paths, &request)?;
    if attaches_to_terminal(&request) {
        return run_attached(paths, &request, prepared);
    }
    let Prepared { container, mut state, mut launch } = prepared;
    let id = container.id.clone();
    if request.detach {
        return Ok(
            match monitor::start_detached(paths, &container, state, launch, request.process.interactive, false)? {
                (Detached::Started, _) => RunOutcome::Started(id),
                (Detached::Failed { exit_code, message }, _) => {
                    RunOutcome::Exited { exit_code, failure: Some(message) }
                }
            },
        );
    }
    crate::timing::ask_init(&mut launch.spec.process.env);

    let helper = Helper::new(&paths.helper());
    state.monitor = Some(ProcessRef::current()?);
    // The helper passes our stdio on; with -t the container's init swaps
    // in its terminal, and without -i it gets no stdin, as with docker.
    let mut stdio = request.process.stdio();
    let shown = request.attach.unwrap_or(crate::run_options::Streams::default_for(request.process.interactive));
    // Without a terminal, the output goes through us into the log too.
    let tee = match &launch.spec.terminal {
        Some(_) => None,
        None => {
            let (tee, stdout, stderr) = crate::process::tee::start(&container.log_path(), state.log_options, shown)?;
            (stdio.stdout, stdio.stderr) = (Some(stdout), Some(stderr));
            Some(tee)
        }
    };
    // Published ports stay held until the container's rules are gone.
    let mut held = HeldPorts::default();
    let mut failure = None;
    state.health = state.options.health.as_ref().map(|_| crate::health::HealthState::default());
    let outcome = launch::start(paths, &helper, &container, &mut state, launch, stdio).and_then(|started| {
        held = started.ports;
        let checker = state.options.health.clone().zip(state.init.clone());
        let checker =
            checker.and_then(|(config, init)| crate::process::health_check::Checker::start(&container, init, config));
        crate::timing::total("exec.total");
        failure = started.report.failure.map(|f| f.message);
        let log = crate::logs::LogWriter::open(&container.log_path(), state.log_options).ok();
        let console = started.report.console.map(|master| Console {
            master,
            stdin: request.process.interactive,
            log,
            show_output: shown.stdout,
        });
        let waited = wait::wait(started.pid, &started.pidfd, console);
        if let Some(checker) = checker {
            checker.stop();
        }
        Ok(waited?)
    });
    // The helper's copies of the pipes' write ends are gone with it; the
    // container's with its processes.
    let logged = tee.map_or(Ok(()), crate::process::tee::Tee::finish);
    let exit_code = outcome.as_ref().ok().copied();
    let recorded = crate::timing::time("finish", || {
        launch::finish(paths, &helper, &container, &mut state, exit_code, outcome.is_ok(), request.rm)
    });
    drop(held);
    let exit_code = outcome?;
    recorded?;
    logged?;
    Ok(RunOutcome::Exited { exit_code, failure })
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
    fn hostnames() {
        assert!(check_hostname("web-1.local").is_ok());
        assert!(check_hostname("a/b").is_err());
        assert!(check_hostname("").is_err());
    }
}
