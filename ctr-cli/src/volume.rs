//! Named volumes (`ctr volume create|ls|inspect|rm|prune`), kept in the
//! user's storage as `volumes/<name>/_data` (plus `volume.json`). A volume
//! is a directory the caller owns; `ctr run -v NAME:/dst` binds its `_data`
//! into the container (creating the volume if missing, as docker does).
//!
//! A volume is created under a temporary name and renamed into place, so
//! two concurrent creations of one name both succeed with one volume. It is
//! removed by renaming it away first, so no container can start on a
//! half-deleted volume; files the container made as a subordinate id are
//! deleted from inside a user namespace, as for a container's layer.
//! `rm` refuses a volume that any container (running or not) records in
//! its state; a container started between that check and the rename can
//! still lose its volume (there is no lock shared with `ctr run`).

use crate::container::record::RecordError;
use crate::container::record::{self, now_unix, write_atomically};
use crate::error::{IoContext, IoError};
use crate::launch::LaunchError;
use crate::mounts::volume_names;
use crate::paths::Paths;
use ctr_core::ids::ContainerName;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a volume could not be made, found or removed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("invalid volume name {0:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most {max} characters", max = ContainerName::MAX_LEN)]
    InvalidName(String),
    #[error("no such volume: {0}")]
    NotFound(String),
    #[error("volume {name} is in use by container(s) {}: remove them first", users.join(", "))]
    InUse { name: String, users: Vec<String> },
    /// Its files of subordinate ids could not be removed.
    #[error("remove volume {name}")]
    Remove { name: String, source: Box<LaunchError> },
    #[error(transparent)]
    Containers(#[from] RecordError),
    #[error(transparent)]
    Io(#[from] IoError),
}

type Result<T, E = VolumeError> = std::result::Result<T, E>;

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    created: u64,
}

fn volumes_dir(paths: &Paths) -> PathBuf {
    paths.storage.join("volumes")
}

fn parse_name(name: &str) -> Result<&str> {
    ContainerName::parse(name).map_err(|_| VolumeError::InvalidName(name.to_owned()))?;
    Ok(name)
}

fn random_hex() -> Result<String, IoError> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .io_context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn private_dir(path: &Path) -> Result<(), IoError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_io_context(|| format!("create {}", path.display()))
}

/// The volume's data directory, creating the volume if it does not exist.
pub fn ensure(paths: &Paths, name: &str) -> Result<PathBuf> {
    create(paths, parse_name(name)?)?;
    Ok(volumes_dir(paths).join(name).join("_data"))
}

/// Creates `name` unless it exists; true if this call made it.
fn create(paths: &Paths, name: &str) -> Result<bool> {
    let dir = volumes_dir(paths);
    let target = dir.join(name);
    if target.join("_data").is_dir() {
        return Ok(false);
    }
    private_dir(&dir)?;
    let tmp = dir.join(format!(".new-{}", &random_hex()?[..16]));
    let made = (|| -> Result<(), IoError> {
        private_dir(&tmp.join("_data"))?;
        // `_data` becomes the mount's root: every user in the container
        // must be able to traverse it; the directory above stays private.
        std::fs::set_permissions(tmp.join("_data"), std::fs::Permissions::from_mode(0o755))
            .with_io_context(|| format!("chmod {}", tmp.join("_data").display()))?;
        let meta = serde_json::to_vec(&Meta { created: now_unix() }).expect("a number serializes");
        write_atomically(&tmp.join("volume.json"), &meta)
    })();
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(IoError::new(format!("creating volume {name}: {}", e.what), e.source).into());
    }
    match std::fs::rename(&tmp, &target) {
        Ok(()) => Ok(true),
        // Someone made it first (rename of a directory onto a non-empty one fails).
        Err(_) if target.join("_data").is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(false)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(IoError::new(format!("creating volume {name} in {}", dir.display()), e).into())
        }
    }
}

fn exists(paths: &Paths, name: &str) -> bool {
    volumes_dir(paths).join(name).join("_data").is_dir()
}

/// Every volume's name, sorted.
pub fn names(paths: &Paths) -> Result<Vec<String>> {
    let dir = volumes_dir(paths);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(IoError::new(format!("read {}", dir.display()), e).into()),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| ContainerName::parse(n).is_ok() && exists(paths, n))
        .collect();
    names.sort();
    Ok(names)
}

/// Container names that record `volume` among their mounts.
fn users(paths: &Paths, volume: &str) -> Result<Vec<String>> {
    Ok(record::list(paths)?
        .into_iter()
        .filter(|s| volume_names(&s.mounts).any(|v| v == volume))
        .map(|s| s.name)
        .collect())
}

pub fn info(paths: &Paths, name: &str) -> Result<serde_json::Value> {
    let dir = volumes_dir(paths).join(name);
    if !exists(paths, name) {
        return Err(VolumeError::NotFound(name.to_owned()));
    }
    let created = std::fs::read(dir.join("volume.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Meta>(&b).ok())
        .map(|m| m.created)
        .unwrap_or(0);
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(created);
    Ok(serde_json::json!({
        "CreatedAt": crate::units::rfc3339_seconds(when),
        "Driver": "local",
        "Labels": null,
        "Mountpoint": dir.join("_data"),
        "Name": name,
        "Options": null,
        "Scope": "local",
    }))
}

fn remove(paths: &Paths, name: &str) -> Result<()> {
    let in_use = users(paths, name)?;
    if !in_use.is_empty() {
        return Err(VolumeError::InUse { name: name.to_owned(), users: in_use });
    }
    let dir = volumes_dir(paths);
    let trash = dir.join(format!(".rm-{}", &random_hex()?[..16]));
    std::fs::rename(dir.join(name), &trash).with_io_context(|| format!("remove volume {name}"))?;
    if std::fs::remove_dir_all(&trash).is_err() {
        // Files of subordinate ids: only a process in a user namespace with
        // our mapping may delete them.
        let helper = crate::helper_client::Helper::new(&paths.helper());
        crate::launch::remove_in_user_namespace(&helper, &trash)
            .map_err(|source| VolumeError::Remove { name: name.to_owned(), source: Box::new(source) })?;
    }
    Ok(())
}

/// Creates a volume (with a random name if none is given); an existing
/// one is not an error. Returns its name.
pub fn create_named(paths: &Paths, name: Option<&str>) -> Result<String> {
    let name = match name {
        Some(n) => parse_name(n)?.to_owned(),
        None => random_hex()?,
    };
    create(paths, &name)?;
    Ok(name)
}

/// A volume's details (docker's `volume inspect`).
pub fn inspect(paths: &Paths, name: &str) -> Result<serde_json::Value> {
    info(paths, parse_name(name)?)
}

/// Removes a volume no container uses; with `force`, a missing volume is
/// no error. Returns whether it removed one.
pub fn remove_named(paths: &Paths, name: &str, force: bool) -> Result<bool> {
    let name = parse_name(name)?;
    match exists(paths, name) {
        false if force => Ok(false),
        false => Err(VolumeError::NotFound(name.to_owned())),
        true => remove(paths, name).map(|()| true),
    }
}

/// What a prune did: the volumes it removed, and what failed (it goes on
/// past each failure).
#[derive(Debug, Default)]
pub struct Pruned {
    pub removed: Vec<String>,
    pub errors: Vec<VolumeError>,
}

/// Removes every volume that no container uses.
pub fn prune(paths: &Paths) -> Result<Pruned> {
    let mut pruned = Pruned::default();
    for n in names(paths)? {
        if !users(paths, &n)?.is_empty() {
            continue;
        }
        match remove(paths, &n) {
            Ok(()) => pruned.removed.push(n),
            Err(e) => pruned.errors.push(e),
        }
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path) -> Paths {
        Paths { state: dir.join("state"), storage: dir.join("storage"), prefix: dir.join("prefix") }
    }

    #[test]
    fn create_is_idempotent_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        assert!(names(&p).unwrap().is_empty());
        let data = ensure(&p, "db").unwrap();
        assert!(data.is_dir() && data.ends_with("volumes/db/_data"));
        std::fs::write(data.join("keep"), b"x").unwrap();
        assert_eq!(ensure(&p, "db").unwrap(), data);
        assert!(data.join("keep").exists(), "a second create must not replace the volume");
        assert!(!create(&p, "db").unwrap());
        ensure(&p, "a.b-c_d").unwrap();
        assert_eq!(names(&p).unwrap(), ["a.b-c_d", "db"]);
        assert!(ensure(&p, "../x").is_err() && ensure(&p, "").is_err() && ensure(&p, "a/b").is_err());
        assert_eq!(info(&p, "db").unwrap()["Name"], "db");
        assert!(info(&p, "nope").is_err());
        remove(&p, "db").unwrap();
        assert_eq!(names(&p).unwrap(), ["a.b-c_d"]);
        let leftovers: Vec<_> =
            std::fs::read_dir(volumes_dir(&p)).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }
}
