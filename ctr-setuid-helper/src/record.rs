//! The helper's root-owned record of each container it starts, keyed on
//! (caller uid, container id): `/run/ctr-helper/<uid>/<id>`, JSON. It names
//! everything the helper made for that container (cgroup directories, the
//! network, the host veth, the published ports) and is written *before*
//! any of it is made: an intent. Every later removal acts only on what the
//! caller's own record names, so a caller-chosen id can never reach another
//! user's resources, and a helper killed at any point leaves a record from
//! which [`crate::reconcile`] finds what to remove.
//!
//! `owner` is the liveness key whose death makes the record garbage: the
//! helper's own while it sets the container up, then the container's first
//! process's (switched before that process is released).
//!
//! JSON, not tab-separated text: a path (with `cgroup_parent = "self"`, the
//! caller's own cgroup) cannot inject a field or a line. Files are written
//! whole to a temporary name that carries the writer's liveness key, then
//! linked (a new record, refused if one exists) or renamed (an update) into
//! place, so a record is never seen half-written.

use crate::cgroup::ContainerCgroups;
use ctr_core::ids::ContainerId;
use ctr_core::net::{NetworkName, Protocol};
use ctr_core::protocol::HelperError;
use ctr_net::liveness::Liveness;
use ctr_net::names::InterfaceName;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub const RECORD_DIR: &str = "/run/ctr-helper";
const TMP_SUFFIX: &str = ".tmp";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub owner: Liveness,
    pub cgroups: ContainerCgroups,
    pub network: Option<NetworkName>,
    pub host_veth: Option<InterfaceName>,
    pub ports: Vec<(Protocol, u16)>,
}

fn record_error(path: &Path, e: impl std::fmt::Display) -> HelperError {
    HelperError::Cgroup(format!("record {}: {e}", path.display()))
}

pub fn liveness_of(pid: i32) -> Result<Liveness, HelperError> {
    Liveness::of(pid).map_err(|e| HelperError::Spawn(format!("liveness key of process {pid}: {e}")))
}

fn user_dir(uid: u32) -> PathBuf {
    Path::new(RECORD_DIR).join(uid.to_string())
}

fn path(uid: u32, id: &ContainerId) -> PathBuf {
    user_dir(uid).join(id.as_str())
}

/// A temporary name only this process uses: `.<pid>-<start time>.tmp`.
fn tmp_path(uid: u32, id: &ContainerId) -> Result<PathBuf, HelperError> {
    let me = Liveness::of_self().map_err(|e| record_error(&user_dir(uid), e))?;
    Ok(user_dir(uid).join(format!("{}.{}-{}{TMP_SUFFIX}", id.as_str(), me.pid, me.start_time)))
}

fn write_tmp(uid: u32, id: &ContainerId, record: &Record) -> Result<PathBuf, HelperError> {
    let dir = user_dir(uid);
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|e| record_error(&dir, e))?;
    let tmp = tmp_path(uid, id)?;
    let json = serde_json::to_vec(record).map_err(|e| record_error(&tmp, e))?;
    ctr_core::fs::write_private(&tmp, &json, false).map_err(|e| record_error(&tmp, e))?;
    Ok(tmp)
}

/// Writes the intent for a new container; refused if the caller has a
/// record of that id already (its container lives: reconcile ran first).
pub fn create(uid: u32, id: &ContainerId, record: &Record) -> Result<(), HelperError> {
    let tmp = write_tmp(uid, id, record)?;
    let linked = std::fs::hard_link(&tmp, path(uid, id));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(HelperError::Spawn(format!("you already have a running container {}", id.short())))
        }
        other => other.map_err(|e| record_error(&path(uid, id), e)),
    }
}

/// Replaces the caller's record of `id`.
pub fn update(uid: u32, id: &ContainerId, record: &Record) -> Result<(), HelperError> {
    let tmp = write_tmp(uid, id, record)?;
    std::fs::rename(&tmp, path(uid, id)).map_err(|e| record_error(&path(uid, id), e))
}

pub fn parse(bytes: &[u8]) -> Result<Record, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// The caller's record of `id`, if it has one.
pub fn load(uid: u32, id: &ContainerId) -> Result<Option<Record>, HelperError> {
    let path = path(uid, id);
    match std::fs::read(&path) {
        Ok(bytes) => parse(&bytes).map(Some).map_err(|e| record_error(&path, e)),
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

/// The ids of all of the caller's records. Temporary files of writers
/// that are dead are removed on the way (they name nothing yet).
pub fn list(uid: u32) -> Vec<ContainerId> {
    let Ok(entries) = std::fs::read_dir(user_dir(uid)) else { return Vec::new() };
    let mut ids = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(writer) = name.strip_suffix(TMP_SUFFIX).and_then(|n| n.split_once('.')).map(|(_, w)| w) {
            if !tmp_writer_alive(writer) {
                let _ = std::fs::remove_file(entry.path());
            }
        } else if let Ok(id) = ContainerId::parse(&name) {
            ids.push(id);
        }
    }
    ids
}

/// `pid-starttime` of a temporary file's writer: alive if that process is.
fn tmp_writer_alive(writer: &str) -> bool {
    let Some((pid, start)) = writer.split_once('-') else { return false };
    let (Ok(pid), Ok(start)) = (pid.parse::<i32>(), start.parse::<u64>()) else { return false };
    Liveness::of(pid).is_ok_and(|l| l.start_time == start && l.is_alive())
}

/// Every host port that a live container of any user publishes, but for
/// the caller's own `id` (whose record already holds its ports).
pub fn published_ports(uid: u32, id: &ContainerId) -> Vec<(Protocol, u16)> {
    let Ok(users) = std::fs::read_dir(RECORD_DIR) else { return Vec::new() };
    let own = path(uid, id);
    users
        .filter_map(|u| std::fs::read_dir(u.ok()?.path()).ok())
        .flatten()
        .filter_map(|r| Some(r.ok()?.path()).filter(|p| p != &own))
        .filter_map(|p| parse(&std::fs::read(p).ok()?).ok())
        .filter(|r| r.owner.is_alive())
        .flat_map(|r| r.ports)
        .collect()
}

#[cfg(test)]
#[path = "tests/record.rs"]
mod tests;
