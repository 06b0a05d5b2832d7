//! The store's files on disk and how they are written. Every state file is
//! JSON written atomically (temporary file, fsync, rename, fsync of the
//! directory), so a reader never needs the lock: it sees the old file or the
//! new one. Writers serialise on an flock of `<root>/lock`.
//!
//! The layout is meant to grow into a content-addressed store:
//!
//! ```text
//! <root>/lock                     flock'ed by whoever changes the store
//! <root>/repositories.json        {"references": {"alpine:latest": "sha256:<image id>"}}
//! <root>/images/<id hex>.json     ImageFile: config, layers, when it was created
//! <root>/blobs/sha256/<hex>       content-addressed blobs: image configs (an image's
//!                                 id is its config's digest), manifests, layer archives
//!                                 as received (kept so that `ctr save` can write them)
//! <root>/layers/<diff id hex>/    one unpacked layer, shared read-only by every image using it
//!         layer.json              LayerFile: size, digests of the archives it came from,
//!                                 the id maps its files' owners were written for
//!         rootfs/                 the unpacked files (overlayfs whiteouts for deletions)
//! <root>/layers/.tmp-XXXX/        a layer being unpacked; renamed into place when complete
//! ```
//!
//! Images imported before blobs existed ("legacy" images) have no config
//! blob: their id is the digest of their `ImageSpec`, and they cannot be saved.

use super::digest;
use super::oci::Descriptor;
use super::ImageConfig;
use super::{ImageContext, Result};
use ctr_core::idmap::IdMapEntry;
use nix::fcntl::{Flock, FlockArg};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// What an image id is the digest of. Like Docker's image config it holds
/// nothing that changes from one import to the next (no time, no name), so
/// importing the same archive with the same config gives the same id.
/// Changing this struct changes every id: add fields only with care.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ImageSpec {
    pub config: ImageConfig,
    pub rootfs: RootFs,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RootFs {
    /// Always "layers", as in the OCI image config.
    #[serde(rename = "type")]
    pub kind: String,
    /// sha256 of each layer's uncompressed tar, bottom layer first.
    pub diff_ids: Vec<String>,
}

impl ImageSpec {
    #[cfg(test)]
    pub fn single_layer(config: ImageConfig, diff_id: String) -> ImageSpec {
        ImageSpec { config, rootfs: RootFs { kind: "layers".into(), diff_ids: vec![diff_id] } }
    }

    /// `sha256:` of the canonical JSON: compact, fields in declaration
    /// order (serde_json keeps struct order), hence deterministic.
    pub fn id(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("an image spec always serialises");
        digest::of_bytes(&canonical)
    }
}

/// `images/<id hex>.json`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ImageFile {
    pub id: String,
    /// RFC 3339, UTC: when the image was created (its config's `created`),
    /// or else first imported.
    pub created: String,
    /// Bytes of its layers' unpacked files.
    pub size: u64,
    /// The run config and diff ids, as parsed from the config blob.
    pub spec: ImageSpec,
    /// The config blob and the layer blobs, bottom first; None for a legacy image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blobs: Option<ImageBlobs>,
    /// `repository@sha256:<manifest digest>` for each registry it came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ImageBlobs {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    pub architecture: String,
    pub os: String,
}

/// `layers/<diff id hex>/layer.json`.
#[derive(Serialize, Deserialize, Debug)]
pub struct LayerFile {
    pub diff_id: String,
    pub size: u64,
    /// sha256 of every archive (as compressed) this layer was imported
    /// from, so re-importing one is recognised without unpacking it.
    pub source_digests: Vec<String>,
    pub created: String,
    /// Whose the files are; None for a layer an older ctr unpacked (every
    /// file the caller's, as with `kept: false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owners: Option<LayerOwners>,
}

/// How a layer's files got their owners (`layer.json`'s `owners`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct LayerOwners {
    /// Whether the archive's owners were kept; if not, every file belongs
    /// to the caller (root in the container).
    pub kept: bool,
    /// The container id maps the layer was unpacked for (`[inside,
    /// outside, count]` lines): owners were written as the host ids these
    /// maps give.
    pub uid_map: Vec<IdMapEntry>,
    pub gid_map: Vec<IdMapEntry>,
    /// Whether some file belongs to another id than the container's root;
    /// if not, the layer looks the same under any maps.
    pub other_owners: bool,
}

/// `repositories.json`: which image each reference names.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct Repositories {
    pub references: BTreeMap<String, String>,
}

/// Reads a JSON state file; None if it does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is corrupt: remove it and re-import the images it describes", path.display()))?;
    Ok(Some(value))
}

/// Replaces `path` with `value` as JSON, atomically and durably.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let dir = path.parent().context("a state file has a parent directory")?;
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(&bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    sync_dir(dir)
}

/// Makes a rename or creation in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("cannot sync {}", dir.display()))
}

/// Holds the store's writer lock until dropped.
pub struct StoreLock {
    _flock: Flock<File>,
}

/// Waits for and takes the exclusive lock on `path`. flock (not fcntl)
/// locks belong to the open file, so two threads of one process exclude
/// each other too.
pub fn lock(path: &Path) -> Result<StoreLock> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open the store lock {}", path.display()))?;
    let locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => locked,
        Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
            eprintln!("waiting for another ctr command that is changing the image store...");
            Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, errno)| errno)
                .with_context(|| format!("cannot lock {}", path.display()))?
        }
        Err((_, errno)) => return Err(errno).with_context(|| format!("cannot lock {}", path.display())),
    };
    Ok(StoreLock { _flock: locked })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids_are_deterministic_and_depend_on_config_and_layers() {
        let layer = digest::of_bytes(b"layer");
        let spec = ImageSpec::single_layer(ImageConfig::default(), layer.clone());
        assert_eq!(spec.id(), ImageSpec::single_layer(ImageConfig::default(), layer.clone()).id());
        let with_cmd = ImageConfig { cmd: vec!["sh".into()], ..ImageConfig::default() };
        assert_ne!(spec.id(), ImageSpec::single_layer(with_cmd, layer).id());
        assert_ne!(spec.id(), ImageSpec::single_layer(ImageConfig::default(), digest::of_bytes(b"other")).id());
        digest::hex(&spec.id()).unwrap();
    }

    #[test]
    fn writes_atomically_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repositories.json");
        assert!(read_json::<Repositories>(&path).unwrap().is_none());
        let mut repos = Repositories::default();
        repos.references.insert("a:latest".into(), "sha256:x".into());
        write_json(&path, &repos).unwrap();
        let back: Repositories = read_json(&path).unwrap().unwrap();
        assert_eq!(back.references, repos.references);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left behind");
        fs::write(&path, b"{garbage").unwrap();
        let err = read_json::<Repositories>(&path).unwrap_err();
        assert!(crate::error::chain(&err).contains("is corrupt"));
    }
}
