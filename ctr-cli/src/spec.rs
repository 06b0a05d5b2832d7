//! What `ctr` tells `ctr init` over the init channel: the container to set
//! up, or a directory to remove from inside the container's user namespace.
//! Both sides are the same binary, so the frame carries its own version.

use caps::Capability;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::PathBuf;
use std::str::FromStr;

pub const INIT_PROTOCOL_VERSION: u32 = 5;

#[derive(Debug, Serialize, Deserialize)]
pub struct InitMessage {
    pub version: u32,
    pub task: InitTask,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum InitTask {
    Run(Box<ContainerSpec>),
    /// Delete a tree whose files may belong to subordinate ids, which only
    /// a process inside the user namespace can do.
    RemoveTree {
        path: PathBuf,
    },
    /// `ctr exec`: join the namespaces of a running container's init and
    /// run a process there.
    Exec(Box<ExecSpec>),
}

/// A process to start in a running container (`ctr exec`).
#[derive(Debug, Serialize, Deserialize)]
pub struct ExecSpec {
    /// The container's init, as seen from the host, and its start time
    /// (/proc/PID/stat field 22), so a reused pid is never joined.
    pub target_pid: i32,
    pub target_start_time: u64,
    pub process: ProcessSpec,
    /// Allocate a pseudo-terminal of this size in the container's devpts.
    pub terminal: Option<TerminalSize>,
    /// Keep stdin (`-i`); without it the process reads /dev/null.
    pub interactive: bool,
    /// The container's seccomp filter (classic BPF), loaded just before
    /// execve; none for a container started by a ctr without seccomp.
    pub seccomp: Option<Vec<u8>>,
}

/// A terminal's size in characters, as TIOCGWINSZ reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    pub rows: u16,
    pub cols: u16,
}

/// What `ctr init` sends back before it executes the command. Success is
/// the channel closing at exec; a terminal's master end travels with
/// `Console` (SCM_RIGHTS).
#[derive(Debug, Serialize, Deserialize)]
pub enum InitReply {
    Console,
    Failed(InitFailure),
    /// For `ctr exec`: init forked the process that executes the command
    /// (its pid in ctr's pid namespace, which init's own is) and exits; ctr
    /// inherits that process and waits for it.
    Forked {
        pid: i32,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub hostname: String,
    pub rootfs: RootfsSpec,
    /// Host files bind-mounted over the container's /etc/hosts, /etc/hostname.
    pub etc_files: Vec<(PathBuf, String)>,
    /// `-v` and `--tmpfs` mounts, parents before children.
    pub mounts: Vec<crate::mounts::MountSpec>,
    /// `--read-only`: the root mount is made read-only after every other mount.
    pub read_only_rootfs: bool,
    pub process: ProcessSpec,
    /// `-t`: give the command a pseudo-terminal of this size (the master
    /// end comes back over the init channel).
    #[serde(default)]
    pub terminal: Option<TerminalSize>,
    /// The seccomp filter (classic BPF, see [`crate::seccomp`]) that init
    /// loads last, just before execve.
    pub seccomp: Vec<u8>,
    /// `--privileged`, `systempaths=unconfined`: no masked or read-only
    /// /proc and /sys paths.
    pub system_paths_unconfined: bool,
    /// On a bridge network: the end of the veth that the helper placed in
    /// the container's network namespace, for init to configure there.
    #[serde(default)]
    pub network: Option<ctr_net::link::ContainerEnd>,
    /// `--sysctl`, namespaced ones only ([`crate::tuning`]).
    #[serde(default)]
    pub sysctls: Vec<crate::tuning::Sysctl>,
    /// `--shm-size` in bytes.
    #[serde(default)]
    pub shm_size: Option<u64>,
    /// `--init`: init stays as pid 1, reaping and forwarding signals, and
    /// runs the command as its child.
    #[serde(default)]
    pub init_reaper: bool,
    /// `--device`: host nodes bound into the container, as checked.
    #[serde(default)]
    pub devices: Vec<crate::devices::DeviceSpec>,
    /// `--userns keep-id`: the caller's passwd and group entries, which
    /// init adds to the writable layer's /etc files when the image has
    /// none for those ids (podman's).
    #[serde(default)]
    pub keep_id_user: Option<KeepIdUser>,
}

/// The caller as the host's passwd and group name it, for keep-id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepIdUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub group: String,
    pub home: String,
}

impl KeepIdUser {
    /// The caller's own entries; None when the host's passwd has no name
    /// for the caller, or a field cannot go in a passwd line.
    pub fn of_caller() -> Option<Self> {
        let user = nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten()?;
        let gid = nix::unistd::getgid();
        let group = nix::unistd::Group::from_gid(gid).ok().flatten().map_or_else(|| user.name.clone(), |g| g.name);
        let entry = Self {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: gid.as_raw(),
            group,
            home: user.dir.to_string_lossy().into_owned(),
        };
        entry.fits().then_some(entry)
    }

    /// No field breaks a passwd or group line.
    pub fn fits(&self) -> bool {
        let fine = |s: &str| !s.is_empty() && !s.contains([':', '\n', '\0']);
        fine(&self.name) && fine(&self.group) && fine(&self.home)
    }

    /// podman's line: no password, the image's /bin/sh as the shell.
    pub fn passwd_line(&self) -> String {
        format!("{}:*:{}:{}:{}:{}:/bin/sh\n", self.name, self.uid, self.gid, self.name, self.home)
    }

    pub fn group_line(&self) -> String {
        format!("{}:x:{}:\n", self.group, self.gid)
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub enum RootfsSpec {
    /// A read-only image layer under a per-container writable layer.
    Overlay { lower: Vec<PathBuf>, upper: PathBuf, work: PathBuf, target: PathBuf },
    /// A directory used as it is (`--rootfs`).
    Bind { path: PathBuf },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// `-u`: NAME, UID, NAME:GROUP or UID:GID, resolved inside the container.
    pub user: Option<String>,
    /// The bounding set, as capability names.
    pub capabilities: Vec<String>,
    /// Written to /proc/self/oom_score_adj before exec.
    pub oom_score_adj: Option<i32>,
    /// `--ulimit`s, set just before exec (for `ctr exec` too).
    #[serde(default)]
    pub rlimits: Vec<crate::tuning::Ulimit>,
    /// `--group-add`: supplementary groups, by name or number.
    #[serde(default)]
    pub group_add: Vec<String>,
}

/// What init reports when it cannot exec; the channel closes on success.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitFailure {
    pub exit_code: i32,
    pub message: String,
}

/// A `--cap-add` or `--cap-drop` that names no capability.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability {0:?} (see capabilities(7))")]
pub struct UnknownCapability(pub String);

/// Docker's default capability set.
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

fn parse_capability(name: &str) -> Result<Capability, UnknownCapability> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
    Capability::from_str(&full).map_err(|_| UnknownCapability(name.to_owned()))
}

/// Docker's rules: start from the default set, add, then drop; `ALL` works
/// on either side.
pub fn capability_set(add: &[String], drop: &[String]) -> Result<Vec<String>, UnknownCapability> {
    let mut set: HashSet<Capability> = DEFAULT_CAPABILITIES.into_iter().collect();
    for name in add {
        if name.eq_ignore_ascii_case("all") {
            set = caps::all();
        } else {
            set.insert(parse_capability(name)?);
        }
    }
    for name in drop {
        if name.eq_ignore_ascii_case("all") {
            set.clear();
        } else {
            set.remove(&parse_capability(name)?);
        }
    }
    let mut names: Vec<String> = set.into_iter().map(|c| c.to_string()).collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_add_and_drop() {
        let d = capability_set(&[], &[]).unwrap();
        assert_eq!(d.len(), 14);
        assert!(d.contains(&"CAP_CHOWN".to_string()));
        let d = capability_set(&["sys_admin".into()], &["CAP_CHOWN".into()]).unwrap();
        assert!(d.contains(&"CAP_SYS_ADMIN".to_string()) && !d.contains(&"CAP_CHOWN".to_string()));
        assert!(capability_set(&[], &["all".into()]).unwrap().is_empty());
        assert!(capability_set(&["bogus".into()], &[]).is_err());
    }
}
