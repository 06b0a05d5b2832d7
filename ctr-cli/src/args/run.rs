//! `ctr run`'s flags, named as docker's, into a [`RunRequest`].

use super::limits::LimitArgs;
use super::mount::Translated;
use super::process::ProcessArgs;
use anyhow::Result;
use ctr_cli::container::run::RunRequest;
use ctr_cli::dns::DnsConfig;
use ctr_cli::image::local::{PullPolicy, RunImage};
use ctr_cli::image::oci::Platform;
use ctr_cli::network::NetworkOptions;
use ctr_cli::process::restart_policy::RestartPolicy;
use ctr_cli::seccomp::SecurityOptions;
use ctr_core::net::PortSpec;
use std::net::Ipv4Addr;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Run in the background: print the container id and return at once.
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[command(flatten)]
    pub process: ProcessArgs,
    /// Attach to STDIN, STDOUT or STDERR only (repeat for more; default:
    /// STDOUT and STDERR, and STDIN with -i). Not with -d. The log gets
    /// both output streams either way. With `create`, shown by inspect.
    #[arg(short = 'a', long = "attach", value_name = "STREAM")]
    pub attach: Vec<String>,
    /// The keys that detach a foreground `run -it`, `ctr attach` or
    /// `start -a` from a -t container, which runs on (default
    /// ctrl-p,ctrl-q; keys a comma apart, each a character or ctrl-X; ""
    /// turns detaching off). Kept with the container for later attaches;
    /// a foreground `run` takes it only with -it.
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Remove the container (its writable layer and state) when it exits.
    #[arg(long)]
    pub rm: bool,
    /// A name for the container, unique among yours ([a-zA-Z0-9][a-zA-Z0-9_.-]*).
    #[arg(long)]
    pub name: Option<String>,
    /// The container's hostname (default: the first 12 characters of its id).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Read environment variables from a file: KEY=VALUE (or KEY, to pass
    /// on yours) a line, `#` comments; -e wins over it.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Set a label: KEY=VALUE (shown by `ctr inspect`).
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Read labels from a file: KEY=VALUE a line, `#` comments.
    #[arg(long = "label-file", value_name = "FILE")]
    pub label_file: Vec<PathBuf>,
    /// The signal `ctr stop` sends first (default SIGTERM).
    #[arg(long = "stop-signal", value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds `ctr stop` waits for the stop signal before SIGKILL (default 10).
    #[arg(long = "stop-timeout", value_name = "SECS")]
    pub stop_timeout: Option<u64>,
    /// Write the container's id to this file (it must not exist).
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<PathBuf>,
    /// A resource limit of the command: NAME=SOFT[:HARD] (nofile, nproc,
    /// core, stack, memlock...; -1 for unlimited). A hard limit cannot be
    /// raised above yours.
    #[arg(long, value_name = "NAME=SOFT[:HARD]", help_heading = "Resources")]
    pub ulimit: Vec<String>,
    /// Set a namespaced sysctl: net.* (not with --network host),
    /// kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*.
    #[arg(long, value_name = "NAME=VALUE", help_heading = "Resources")]
    pub sysctl: Vec<String>,
    /// The size of /dev/shm (e.g. 256m; default 64m).
    #[arg(long = "shm-size", value_name = "BYTES", help_heading = "Resources")]
    pub shm_size: Option<String>,
    /// An extra supplementary group of the command (name or number; needs
    /// a subordinate gid range).
    #[arg(long = "group-add", value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Bind a host device node: HOST[:CONTAINER][:PERMS]. Only a node you
    /// can open yourself, with exactly the access asked for (r, w; m is
    /// never possible in a user namespace): ctr cannot write the device
    /// cgroup, so the node's own mode is what limits the container.
    #[arg(long, value_name = "HOST[:CTR[:rwm]]")]
    pub device: Vec<String>,
    /// The user namespace: "" (the default: container root is you, other
    /// ids your subordinate ones) or keep-id (podman's: your uid and gid
    /// are yours inside too, and the command runs as them).
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,
    /// Keep a small init as pid 1 that reaps orphans and forwards signals,
    /// and run the command as its child (docker's --init, built in).
    #[arg(long)]
    pub init: bool,
    /// When to pull the image: missing (the default: only if it is not
    /// here), always, never.
    #[arg(long, value_name = "WHEN", value_parser = ["always", "missing", "never"], default_value = "missing")]
    pub pull: String,
    /// The image's platform, OS/ARCH[/VARIANT] (this host is linux/amd64;
    /// another needs an image index that has it, and a kernel that runs it).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub net: NetworkArgs,
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
    pub health: HealthArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub mounts: MountArgs,
    #[command(flatten)]
    pub security: SecurityArgs,
    /// Restart policy, carried out by the container's monitor: no,
    /// on-failure[:MAX-RETRIES], always (until `ctr stop`) or
    /// unless-stopped; back-off 100 ms doubling up to 1 min. Nothing
    /// restarts at boot without a unit from `ctr generate systemd`.
    #[arg(long, value_name = "POLICY", default_value = "no")]
    pub restart: RestartPolicy,
    /// Log rotation: max-size=SIZE (default 10m), max-file=N (default 3),
    /// as `--log-opt max-size=1m,max-file=5` or one option per flag. The
    /// log (`ctr logs`) is kept for foreground and detached containers.
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// IMAGE [COMMAND [ARG...]], or with --rootfs just COMMAND [ARG...].
    /// Flags before the image are ctr's (an unknown one is refused);
    /// everything from the image on is the command's.
    #[arg(trailing_var_arg = true, value_name = "IMAGE|COMMAND")]
    pub args: Vec<String>,
}

#[derive(clap::Args, Debug, Default)]
pub struct NetworkArgs {
    /// `bridge` (the default: a veth on ctr0 with NAT), a network you made
    /// with `ctr network create`, `none` (loopback only) or `host` (share
    /// your network namespace).
    #[arg(long, default_value = "bridge", value_name = "NETWORK", help_heading = "Network")]
    pub network: String,
    /// Publish a port: [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp].
    #[arg(short = 'p', long = "publish", value_name = "PORTS", help_heading = "Network")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes on a free host port (see `ctr port`).
    #[arg(short = 'P', long = "publish-all", help_heading = "Network")]
    pub publish_all: bool,
    /// The container's address on its network (inside the network's subnet).
    #[arg(long, value_name = "IPV4", help_heading = "Network")]
    pub ip: Option<Ipv4Addr>,
    /// A nameserver for the container's /etc/resolv.conf, in place of the
    /// host's (default: the host's minus loopback ones, systemd-resolved's
    /// upstream servers, else 8.8.8.8 and 8.8.4.4).
    #[arg(long = "dns", value_name = "IP", help_heading = "Network")]
    pub dns: Vec<String>,
    /// A search domain in place of the host's (`.` for none).
    #[arg(long = "dns-search", value_name = "DOMAIN", help_heading = "Network")]
    pub dns_search: Vec<String>,
    /// A resolver option in place of the host's (e.g. ndots:2, edns0).
    #[arg(long = "dns-option", value_name = "OPTION", help_heading = "Network")]
    pub dns_option: Vec<String>,
    /// Add a line to /etc/hosts: NAME:IP, or NAME:host-gateway for the
    /// host (the network's gateway; 127.0.0.1 with --network host).
    #[arg(long = "add-host", value_name = "NAME:IP", help_heading = "Network")]
    pub add_host: Vec<String>,
}

impl NetworkArgs {
    fn options(&self) -> Result<NetworkOptions> {
        let publish = self.publish.iter().map(|p| PortSpec::parse(p)).collect::<Result<Vec<_>, _>>()?;
        Ok(NetworkOptions { network: self.network.clone(), publish, publish_all: self.publish_all, ip: self.ip })
    }
}

#[derive(clap::Args, Debug, Default)]
pub struct MountArgs {
    /// Bind mount a host path or a named volume: HOST-PATH:DEST[:ro] or
    /// VOLUME:DEST[:ro][,nocopy]. A source with a '/' is a host path (it
    /// must be absolute and exist), otherwise a volume, created if missing.
    #[arg(short = 'v', long = "volume", value_name = "SRC:DEST[:OPTS]")]
    pub volumes: Vec<String>,
    /// Mount a tmpfs: DEST[:size=64m,mode=1777,uid=N,gid=N,exec|noexec,nosuid,nodev,ro|rw]
    /// (default: noexec,nosuid,nodev, mode 1777, half of RAM).
    #[arg(long = "tmpfs", value_name = "DEST[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Docker's long form: type=bind|volume|tmpfs,source=...,target=...
    /// [,readonly][,volume-nocopy][,tmpfs-size=N][,tmpfs-mode=OCTAL].
    #[arg(long = "mount", value_name = "type=...,target=...")]
    pub mount: Vec<String>,
    /// Mount the container's root filesystem read-only (volumes, tmpfs
    /// mounts, /dev, /proc and the generated /etc files stay as they are).
    #[arg(long = "read-only")]
    pub read_only: bool,
}

// Health checks, run in the container by the process that waits on it
// (its monitor, or a foreground `ctr run`); shown by `ps` and `inspect`.
#[derive(clap::Args, Debug, Default)]
pub struct HealthArgs {
    /// A command whose exit status 0 means healthy (run with /bin/sh -c
    /// in the container, as `ctr exec`; in place of the image's HEALTHCHECK).
    #[arg(long = "health-cmd", value_name = "COMMAND", help_heading = "Health")]
    pub cmd: Option<String>,
    /// Time between checks, e.g. 30s, 1m30s (default 30s).
    #[arg(long = "health-interval", value_name = "DURATION", help_heading = "Health")]
    pub interval: Option<String>,
    /// Consecutive failures that make it unhealthy (default 3).
    #[arg(long = "health-retries", value_name = "N", help_heading = "Health")]
    pub retries: Option<u32>,
    /// Time after the start during which failures do not count (default 0s).
    #[arg(long = "health-start-period", value_name = "DURATION", help_heading = "Health")]
    pub start_period: Option<String>,
    /// A check running longer fails (default 30s).
    #[arg(long = "health-timeout", value_name = "DURATION", help_heading = "Health")]
    pub timeout: Option<String>,
    /// No health check, not even the image's.
    #[arg(long = "no-healthcheck", help_heading = "Health")]
    pub none: bool,
}

// `ctr run`'s security flags (no doc comment on a flattened struct: see
// `Command`'s `defer`).
#[derive(clap::Args, Debug, Default)]
pub struct SecurityArgs {
    /// seccomp=PROFILE.json (docker's format), seccomp=unconfined,
    /// no-new-privileges[=true] (always on in ctr), systempaths=unconfined.
    #[arg(long = "security-opt", value_name = "OPTION")]
    pub security_opt: Vec<String>,
    /// Every capability inside the container's user namespace, no seccomp
    /// profile, no masked /proc and /sys paths. Still no privilege on the
    /// host: the container stays in its user namespace.
    #[arg(long)]
    pub privileged: bool,
}

impl RunArgs {
    pub fn into_request(self) -> Result<RunRequest> {
        let (mut volumes, mut tmpfs) = (self.mounts.volumes, self.mounts.tmpfs);
        for raw in &self.mounts.mount {
            match super::mount::translate(raw)? {
                Translated::Volume(v) => volumes.push(v),
                Translated::Tmpfs(t) => tmpfs.push(t),
            }
        }
        if let Some(keys) = &self.detach_keys {
            ctr_cli::container::attach::DetachKeys::parse(keys)?;
        }
        Ok(RunRequest {
            attach: ctr_cli::run_options::Streams::parse(&self.attach, self.process.interactive)?,
            detach_keys: self.detach_keys,
            detach: self.detach,
            rm: self.rm,
            name: self.name,
            hostname: self.hostname,
            process: self.process.into(),
            network: self.net.options()?,
            cap_add: self.cap_add,
            cap_drop: self.cap_drop,
            entrypoint: self.entrypoint,
            rootfs: self.rootfs,
            limits: self.limits.to_request()?,
            oom_score_adj: self.limits.oom_score_adj,
            volumes,
            tmpfs,
            read_only: self.mounts.read_only,
            env_files: self.env_file,
            labels: self.label,
            label_files: self.label_file,
            stop_signal: self
                .stop_signal
                .map(|s| super::container::parse_signal(&s).map(|signal| signal.as_str().to_owned()))
                .transpose()?,
            stop_timeout: self.stop_timeout,
            cidfile: self.cidfile,
            ulimits: self.ulimit,
            sysctls: self.sysctl,
            shm_size: self.shm_size,
            group_add: self.group_add,
            devices: self.device,
            userns: self.userns,
            health: ctr_cli::health::HealthFlags {
                cmd: self.health.cmd,
                interval: self.health.interval,
                timeout: self.health.timeout,
                start_period: self.health.start_period,
                retries: self.health.retries,
                none: self.health.none,
            },
            init: self.init,
            image: RunImage {
                pull: match self.pull.as_str() {
                    "always" => PullPolicy::Always,
                    "never" => PullPolicy::Never,
                    _ => PullPolicy::Missing,
                },
                platform: self.platform.as_deref().map(Platform::parse).transpose()?,
            },
            dns: DnsConfig::parse(&self.net.dns, &self.net.dns_search, &self.net.dns_option, &self.net.add_host)?,
            security: SecurityOptions {
                security_opt: self.security.security_opt,
                privileged: self.security.privileged,
            },
            restart_policy: self.restart,
            log_options: ctr_cli::logs::LogOptions::parse(&self.log_opt)?,
            args: self.args,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn run_args(line: &[&str]) -> Result<RunArgs, clap::Error> {
        match Cli::try_parse_from(["ctr", "run"].iter().chain(line)).map(|c| c.command) {
            Ok(Command::Run(args)) => Ok(*args),
            Ok(_) => panic!("not run"),
            Err(e) => Err(e),
        }
    }

    #[test]
    fn unknown_flags_before_the_image_are_refused_and_those_after_it_are_the_commands() {
        let err = run_args(&["--restart-typo", "always", "nginx"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        assert!(err.use_stderr());
        let args = run_args(&["--rm", "-t", "busybox", "ls", "-la", "--color", "-e", "x"]).unwrap();
        assert!(args.rm && args.process.tty && args.process.env.is_empty());
        assert_eq!(args.args, ["busybox", "ls", "-la", "--color", "-e", "x"]);
        let args = run_args(&["--rootfs", "/r", "/bin/sh", "-c", "echo hi"]).unwrap();
        assert_eq!(args.args, ["/bin/sh", "-c", "echo hi"]);
        let exec = Cli::try_parse_from(["ctr", "exec", "-i", "web", "sh", "-c", "x", "-i"]).map(|c| c.command);
        assert!(matches!(exec, Ok(Command::Exec(e)) if e.command == ["sh", "-c", "x", "-i"] && e.process.interactive));
        assert!(Cli::try_parse_from(["ctr", "exec", "--bogus", "web", "sh"]).is_err());
    }

    #[test]
    fn dns_flags_become_the_requests_dns_config() {
        let args = run_args(&["--dns", "1.1.1.1", "--dns-search", "x.example", "--add-host", "a:10.0.0.1", "busybox"])
            .unwrap();
        let request = args.into_request().unwrap();
        assert_eq!(request.dns.servers, ["1.1.1.1".parse::<std::net::IpAddr>().unwrap()]);
        assert_eq!(request.dns.search, ["x.example"]);
        assert_eq!(request.dns.extra_hosts.len(), 1);
        assert!(run_args(&["--dns", "one", "busybox"]).unwrap().into_request().is_err());
    }

    #[test]
    fn ports_are_parsed_and_bad_ones_refused() {
        let net = NetworkArgs { network: "bridge".into(), publish: vec!["8080:80/udp".into()], ..Default::default() };
        let options = net.options().unwrap();
        assert_eq!(options.publish.len(), 1);
        assert_eq!(options.publish[0].host_port, 8080);
        let bad = NetworkArgs { publish: vec!["80:http".into()], ..Default::default() };
        assert!(bad.options().is_err());
    }
}
