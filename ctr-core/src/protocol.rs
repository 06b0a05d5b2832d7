//! The helper protocol. `ctr` starts `ctr-setuid-helper` with one end of a
//! Unix stream socketpair on fd [`HELPER_CHANNEL_FD`], sends
//! [`Request::Hello`], then exactly one operation; the helper answers each
//! with a [`Response`] and exits. Anything else is refused with a typed
//! [`HelperError`] before any work is done.

use crate::idmap::{IdMapEntry, IdMapError};
use crate::ids::{ContainerId, ContainerName};
use crate::limits::{LimitError, ResourceLimits};
use crate::net::{Cidr, NetworkInfo, NetworkName, NetworkRequest, NetworkSummary};
use serde::{Deserialize, Serialize};

/// Bumped on any change to the messages below.
pub const PROTOCOL_VERSION: u32 = 4;

/// The helper's end of the channel.
pub const HELPER_CHANNEL_FD: i32 = 3;

/// In the helper: the socket that it hands, untouched, to the container's
/// first process. In that process (`ctr init`) it arrives as fd 3.
pub const INIT_CHANNEL_FD_IN_HELPER: i32 = 4;
pub const INIT_CHANNEL_FD_IN_INIT: i32 = 3;

// One request per helper run: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Hello {
        version: u32,
    },
    /// Create the container's cgroup and first process in new namespaces.
    /// The reply carries a pidfd for that process (SCM_RIGHTS).
    Spawn(SpawnRequest),
    /// Kill what is left in a container's cgroup and remove it. Idempotent.
    RemoveCgroup {
        id: ContainerId,
    },
    /// Start a process of the caller in the cgroup of its running container
    /// `id` (for `ctr exec`); it joins the namespaces itself. The reply is
    /// `Spawned` with a pidfd.
    Exec {
        id: ContainerId,
    },
    /// Freeze (pause) or thaw (unpause) a container's processes.
    Freeze {
        id: ContainerId,
        frozen: bool,
    },
    /// New limits for the caller's running container `id` (`ctr update`):
    /// only the limit files that `Spawn` writes, in the cgroups that the
    /// caller's own record for `id` names, validated as at `Spawn`.
    Update {
        id: ContainerId,
        limits: ResourceLimits,
    },
    /// Register a bridge network of the caller's: a subnet from the pool in
    /// the helper's config (the next free /24 when none is asked for).
    NetworkCreate {
        name: NetworkName,
        subnet: Option<Cidr>,
    },
    /// Delete one of the caller's networks, its bridge and its rules;
    /// refused while any container is attached.
    NetworkRemove {
        name: NetworkName,
    },
    /// The default network and the caller's own.
    NetworkList,
    /// Remove every cgroup, veth, rule, lease and record of the caller's
    /// whose container no longer lives (its first process is gone), and the
    /// leases of dead containers on the caller's networks. Every other
    /// operation does the first part as its first step too.
    Reconcile,
}

impl Request {
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Hello { .. } => "Hello",
            Request::Spawn(_) => "Spawn",
            Request::RemoveCgroup { .. } => "RemoveCgroup",
            Request::Freeze { .. } => "Freeze",
            Request::Update { .. } => "Update",
            Request::Exec { .. } => "Exec",
            Request::NetworkCreate { .. } => "NetworkCreate",
            Request::NetworkRemove { .. } => "NetworkRemove",
            Request::NetworkList => "NetworkList",
            Request::Reconcile => "Reconcile",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnRequest {
    pub id: ContainerId,
    pub name: ContainerName,
    /// Without a user namespace, root in the container is root on the host:
    /// always refused.
    pub user_namespace: bool,
    pub network: NetworkRequest,
    #[serde(deserialize_with = "crate::frame::bounded_vec")]
    pub uid_map: Vec<IdMapEntry>,
    #[serde(deserialize_with = "crate::frame::bounded_vec")]
    pub gid_map: Vec<IdMapEntry>,
    /// Written to the container's cgroup before its process joins it.
    pub limits: ResourceLimits,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Hello {
        version: u32,
    },
    /// `pid` is informational (as seen from the caller's pid namespace); the
    /// handle is the pidfd that travels with this message.
    Spawned {
        pid: i32,
        cgroups: Vec<CgroupDir>,
        network: Option<NetworkInfo>,
    },
    Removed,
    Frozen {
        frozen: bool,
    },
    Updated,
    /// The answer to NetworkCreate (the one created) and to NetworkList.
    Networks(Vec<NetworkSummary>),
    NetworkRemoved,
    /// How many dead containers' leftovers a Reconcile removed.
    Reconciled {
        containers: u32,
    },
    Refused(HelperError),
}

/// One of a container's cgroup directories, for reading its statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupDir {
    pub v2: bool,
    /// The v1 controllers of its hierarchy (`name=systemd` for named ones).
    pub controllers: Vec<String>,
    pub path: String,
}

/// Every refusal the helper can give. Messages say what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum HelperError {
    #[error("bad frame on the helper channel: {0}")]
    Frame(String),
    #[error("protocol version mismatch: helper speaks {helper}, ctr speaks {client}; install ctr and its helper from the same build")]
    Version { helper: u32, client: u32 },
    #[error("unexpected {got} message: expected {expected}")]
    OutOfOrder { expected: String, got: String },
    #[error("a container without a user namespace would run as real root: the helper starts none")]
    NoUserNamespace,
    #[error("refused id map: {0}")]
    IdMap(IdMapError),
    #[error("{0}")]
    Config(String),
    #[error("cgroup setup failed: {0}")]
    Cgroup(String),
    #[error("network setup failed: {0}")]
    Network(String),
    #[error("refused limits: {0}")]
    Limits(LimitError),
    #[error("no container {0} of yours has a cgroup (is it running?)")]
    NoSuchContainer(String),
    #[error("could not start the container process: {0}")]
    Spawn(String),
    #[error("the helper must run setuid root or with its file capabilities: {0}")]
    NotPrivileged(String),
    #[error(
        "your hard {resource} limit is {hard}, but the helper needs {needed} and cannot raise it \
         (it could be killed half-way): raise it (`ulimit -H`), or run ctr from a fresh login shell"
    )]
    ResourceLimit { resource: String, hard: String, needed: String },
}

impl From<LimitError> for HelperError {
    fn from(e: LimitError) -> Self {
        HelperError::Limits(e)
    }
}

impl From<IdMapError> for HelperError {
    fn from(e: IdMapError) -> Self {
        HelperError::IdMap(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{decode_body, encode};

    #[test]
    fn spawn_request_round_trips() {
        let req = Request::Spawn(SpawnRequest {
            id: ContainerId::from_bytes(&[7; 32]),
            name: ContainerName::parse("web").unwrap(),
            user_namespace: true,
            network: NetworkRequest::None,
            uid_map: vec![IdMapEntry::new(0, 1000, 1).unwrap()],
            gid_map: vec![IdMapEntry::new(0, 1000, 1).unwrap()],
            limits: ResourceLimits::default(),
        });
        let frame = encode(&req).unwrap();
        assert_eq!(decode_body::<Request>(&frame[4..]).unwrap(), req);
    }

    #[test]
    fn invalid_fields_fail_to_decode() {
        // Encode two requests that differ only in an id map count (1 vs 2),
        // then patch that byte to 0: the decoder must refuse the empty entry.
        let with_count = |count| {
            encode(&Request::Spawn(SpawnRequest {
                id: ContainerId::from_bytes(&[7; 32]),
                name: ContainerName::parse("web").unwrap(),
                user_namespace: true,
                network: NetworkRequest::None,
                uid_map: vec![IdMapEntry::new(0, 1000, count).unwrap()],
                gid_map: vec![],
                limits: ResourceLimits::default(),
            }))
            .unwrap()
        };
        let (one, two) = (with_count(1), with_count(2));
        let differing: Vec<usize> = (0..one.len()).filter(|&i| one[i] != two[i]).collect();
        assert_eq!(differing.len(), 1);
        let mut patched = one.clone();
        patched[differing[0]] = 0;
        assert!(decode_body::<Request>(&one[4..]).is_ok());
        assert!(decode_body::<Request>(&patched[4..]).is_err());
    }
}
