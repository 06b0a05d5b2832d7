//! The helper's root-owned record of each container it starts, keyed on
//! (caller uid, container id): `/run/ctr-helper/<uid>/<id>`, JSON. It names
//! everything the helper made for that container (cgroup directories, the
//! network, the host veth; its lease names the published ports) and is
//! written *before* any of it is made: an intent. Every later removal acts only on what the
//! caller's own record names, so a caller-chosen id can never reach another
//! user's resources, and a helper killed at any point leaves a record from
//! which [`crate::reconcile`] finds what to remove.
//!
//! `owner` is the liveness key whose death makes the record garbage: the
//! container's first process, which the helper clones (held, doing
//! nothing) before it writes the record, and which exits if the helper dies
//! before releasing it. A record is written once, never changed.
//!
//! JSON, not tab-separated text: a path (with `cgroup_parent = "self"`, the
//! caller's own cgroup) cannot inject a field or a line. A record is
//! written whole into an unnamed file (O_TMPFILE) and only then linked
//! under its name, refused if the name exists: it is never seen
//! half-written, and a helper killed before the link leaves nothing.

use crate::cgroup::ContainerCgroups;
use ctr_core::ids::ContainerId;
use ctr_core::net::NetworkName;
use ctr_core::protocol::HelperError;
use ctr_net::liveness::Liveness;
use ctr_net::names::InterfaceName;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const RECORD_DIR: &str = "/run/ctr-helper";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub owner: Liveness,
    pub cgroups: ContainerCgroups,
    pub network: Option<NetworkName>,
    pub host_veth: Option<InterfaceName>,
    /// The previous release's published ports: read and dropped, so that
    /// its containers can still be removed after an upgrade.
    #[serde(default, skip_serializing)]
    pub ports: serde::de::IgnoredAny,
}

fn record_error(path: &Path, e: impl std::fmt::Display) -> HelperError {
    HelperError::Cgroup(format!("record {}: {e}", path.display()))
}

fn user_dir(uid: u32) -> PathBuf {
    Path::new(RECORD_DIR).join(uid.to_string())
}

fn path(uid: u32, id: &ContainerId) -> PathBuf {
    user_dir(uid).join(id.as_str())
}

/// Writes the intent for a new container; refused if the caller has a
/// record of that id already (its container lives: reconcile ran first).
pub fn create(uid: u32, id: &ContainerId, record: &Record) -> Result<(), HelperError> {
    let (dir, path) = (user_dir(uid), path(uid, id));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|e| record_error(&dir, e))?;
    let err = |e: &dyn std::fmt::Display| record_error(&path, e);
    let json = serde_json::to_vec(record).map_err(|e| err(&e))?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(&dir)
        .and_then(|mut f| f.write_all(&json).map(|()| f))
        .map_err(|e| err(&e))?;
    let unnamed = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    match nix::unistd::linkat(None, &unnamed, None, &path, nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW) {
        Err(nix::errno::Errno::EEXIST) => {
            Err(HelperError::Spawn(format!("you already have a running container {}", id.short())))
        }
        other => other.map_err(|e| err(&e)),
    }
}

/// The caller's record of `id`, if it has one.
pub fn load(uid: u32, id: &ContainerId) -> Result<Option<Record>, HelperError> {
    let path = path(uid, id);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| record_error(&path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(record_error(&path, e)),
    }
}

/// The caller's running container `id`, or a refusal.
pub fn load_existing(uid: u32, id: &ContainerId) -> Result<Record, HelperError> {
    load(uid, id)?.ok_or_else(|| HelperError::NoSuchContainer(id.short().to_owned()))
}

pub fn remove(uid: u32, id: &ContainerId) -> Result<(), HelperError> {
    match std::fs::remove_file(path(uid, id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(record_error(&path(uid, id), e)),
        _ => Ok(()),
    }
}

/// The caller's record of `id`, locked: its removal is under way in no
/// other process (a detached one, see [`crate::reconcile::remove`]) once
/// this returns. `None` if it is gone.
pub fn lock(uid: u32, id: &ContainerId) -> Result<Option<ctr_net::ipam::FileLock>, HelperError> {
    ctr_net::ipam::lock_existing(&path(uid, id)).map_err(|e| record_error(&path(uid, id), e))
}

/// The ids of all of the caller's records.
pub fn list(uid: u32) -> Vec<ContainerId> {
    let Ok(entries) = std::fs::read_dir(user_dir(uid)) else { return Vec::new() };
    entries.filter_map(|e| ContainerId::parse(e.ok()?.file_name().to_str()?).ok()).collect()
}

#[cfg(test)]
#[path = "tests/record.rs"]
mod tests;
