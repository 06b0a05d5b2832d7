//! `ctr run`'s flags, named as docker's, into a [`RunRequest`].

use super::limits::LimitArgs;
use super::process::ProcessArgs;
use anyhow::Result;
use ctr_cli::container::run::RunRequest;
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
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "IMAGE|COMMAND")]
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
}

impl NetworkArgs {
    fn options(self) -> Result<NetworkOptions> {
        let publish = self.publish.iter().map(|p| PortSpec::parse(p)).collect::<Result<Vec<_>, _>>()?;
        Ok(NetworkOptions { network: self.network, publish, publish_all: self.publish_all, ip: self.ip })
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
    /// Mount the container's root filesystem read-only (volumes, tmpfs
    /// mounts, /dev, /proc and the generated /etc files stay as they are).
    #[arg(long = "read-only")]
    pub read_only: bool,
}

/// `ctr run`'s security flags.
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
        Ok(RunRequest {
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
            limits: self.limits.to_limits()?,
            oom_score_adj: self.limits.oom_score_adj,
            volumes: self.mounts.volumes,
            tmpfs: self.mounts.tmpfs,
            read_only: self.mounts.read_only,
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
