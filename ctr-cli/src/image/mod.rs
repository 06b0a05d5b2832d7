//! The image store: images imported from root filesystem tarballs, loaded
//! from `docker save` archives and OCI layouts, or pulled from registries;
//! found, listed, tagged, saved and removed. It owns everything under
//! `Paths::storage`.
//!
//! An image is a config (default command, environment, ...) plus a stack of
//! layers, each unpacked once into its own directory and shared read-only by
//! every image that uses it; containers stack them with overlayfs. The
//! layout (see `state`) is keyed by content digests: an image's id is the
//! digest of its config blob, as Docker's is, so `ctr save` then `ctr load`
//! gives the same id.
//!
//! Images are hostile input: `unpack` holds the rules that keep an archive
//! inside its layer directory, and every blob is checked against its digest
//! and size before it is used. The store belongs to the calling user and is
//! written without privilege, by one writer at a time (an flock).
//!
//! Layer files keep the owners the image gives them where the caller's
//! containers map those ids (see `userns`): a caller with subordinate ids
//! unpacks in a user namespace with the containers' maps, root chowns
//! directly, and anyone else gets every file as their own. Each layer
//! records the maps it was unpacked for, and a tree with files of
//! subordinate ids is deleted from such a namespace too.

/// Why an image operation failed. Content refused as malformed or hostile
/// is [`ImageError::Invalid`], with a message saying what was refused; a
/// registry's answers are [`RegistryError`]s; the rest says what failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error(transparent)]
    Config(#[from] crate::user_config::ConfigError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Os(#[from] std::io::Error),
    #[error(transparent)]
    Sys(#[from] nix::errno::Errno),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    IdMap(#[from] ctr_core::idmap::IdMapError),
    #[error(transparent)]
    Paths(#[from] crate::paths::PathsError),
    #[error(transparent)]
    Utf8(#[from] std::str::Utf8Error),
    #[error(transparent)]
    Nul(#[from] std::ffi::NulError),
    #[error(transparent)]
    Number(#[from] std::num::ParseIntError),
    #[error(transparent)]
    Time(#[from] humantime::TimestampError),
    /// What was being done when `source` failed.
    #[error("{what}")]
    Context { what: String, source: Box<ImageError> },
}

impl ImageError {
    /// The OS error kind at the bottom of it, if it is one.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            ImageError::Io(e) => Some(e.kind()),
            ImageError::Os(e) => Some(e.kind()),
            ImageError::Sys(e) => Some(std::io::Error::from(*e).kind()),
            ImageError::Context { source, .. } => source.io_kind(),
            _ => None,
        }
    }

    /// The registry's answer at the bottom of it, if it is one.
    pub fn registry(&self) -> Option<&registry::RegistryError> {
        match self {
            ImageError::Registry(e) => Some(e),
            ImageError::Context { source, .. } => source.registry(),
            _ => None,
        }
    }
}

crate::error::module_error_context!(pub trait ImageContext for ImageError, none => Invalid);

impl From<tempfile::PersistError> for ImageError {
    fn from(e: tempfile::PersistError) -> Self {
        ImageError::Os(e.error)
    }
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// An [`ImageError::Invalid`] with a formatted message.
macro_rules! refused {
    ($($arg:tt)*) => {
        $crate::image::ImageError::Invalid(format!($($arg)*))
    };
}

/// Returns an [`ImageError::Invalid`] with a formatted message.
macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err(refused!($($arg)*))
    };
}

pub mod archive;
mod decompress;
mod digest;
pub mod guard;
pub mod history;
pub(crate) mod keep_id;
pub(crate) mod layer_work;
pub mod local;
pub mod login;
pub mod oci;
pub mod progress;
pub mod push;
mod reference;
pub mod registries_conf;
pub mod registry;
mod state;
mod unpack;
pub mod userns;

#[cfg(test)]
mod bench;

pub use reference::Reference;

use crate::error::IoError;
use digest::HashingReader;
use oci::Descriptor;
use serde::{Deserialize, Serialize};
use state::{ImageBlobs, ImageFile, ImageSpec, LayerFile, LayerOwners, Repositories};
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::fs::{self, DirBuilder, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
pub use unpack::Mode as UnpackMode;
use userns::{IdMaps, Owners};

/// The image store at one root directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// How unpacked files get their owners, and how trees are removed.
    owners: Owners,
    /// Bounds on decompression, counted over this store's operation (one
    /// command: a pull, load or import).
    guard: std::sync::Arc<guard::UnpackGuard>,
}

/// Where `ctr image import` reads an archive from.
#[derive(Debug, Clone)]
pub enum ImportSource {
    File(PathBuf),
    Stdin,
}

impl fmt::Display for ImportSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportSource::File(path) => write!(f, "{}", path.display()),
            ImportSource::Stdin => f.write_str("standard input"),
        }
    }
}

/// How a container of the image runs unless told otherwise. Part of what
/// a legacy image id hashes: keep the field order stable, and new fields
/// out of the serialisation while empty.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct ImageConfig {
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    /// `NAME=VALUE` entries.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// `80/tcp`, `53/udp`: what the image says it listens on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exposed_ports: Vec<String>,
    /// The image's `HEALTHCHECK`, in docker's form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<crate::health::HealthConfig>,
}

const CONFIG_KEYS: [&str; 7] = ["cmd", "entrypoint", "env", "working_dir", "user", "exposed_ports", "healthcheck"];

impl ImageConfig {
    /// Parses a config file strictly: an unknown key is more likely a typo
    /// (`"Cmd"`) than something to ignore.
    fn from_json(text: &str) -> Result<ImageConfig> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let object = value.as_object().context(r#"expected a JSON object, like {"cmd": ["sh"]}"#)?;
        if let Some(key) = object.keys().find(|key| !CONFIG_KEYS.contains(&key.as_str())) {
            refuse!("unknown key {key:?}: the keys are {}", CONFIG_KEYS.join(", "));
        }
        let config: ImageConfig = serde_json::from_value(value)?;
        let is_assignment = |e: &&String| matches!(e.split_once('='), Some((name, _)) if !name.is_empty());
        if let Some(bad) = config.env.iter().find(|e| !is_assignment(e)) {
            refuse!("env entry {bad:?} is not NAME=VALUE");
        }
        Ok(config)
    }
}

/// An image as the rest of ctr sees it.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// `sha256:<64 hex>`: the digest of the image's config.
    pub id: String,
    /// `name:tag` references naming this image, in Docker's short form
    /// (`alpine:latest`), sorted; empty once all were moved to other images.
    pub references: Vec<String>,
    /// `name@sha256:...` of the manifests it was pulled as.
    pub repo_digests: Vec<String>,
    /// Every layer's files, top-most first: overlayfs's `lowerdir` order.
    /// Layers are shared with other images, so never write to them (mount
    /// them as overlay lower directories).
    pub lower_dirs: Vec<PathBuf>,
    /// The layers' diff ids, bottom first.
    pub diff_ids: Vec<String>,
    /// When the image was created (its config says), or first imported.
    pub created: SystemTime,
    /// Bytes of unpacked file content.
    pub size: u64,
    pub config: ImageConfig,
    /// `os/architecture`, when known.
    pub platform: Option<String>,
}

#[cfg(test)]
impl ImageRecord {
    /// The top-most layer's files (all of a single-layer image's).
    pub fn rootfs(&self) -> &Path {
        &self.lower_dirs[0]
    }
}

/// Reads a built-in image's config, e.g. `{"cmd": ["sh"], "env": ["PATH=/bin"]}`.
pub fn builtin_config(path: &Path) -> Result<ImageConfig> {
    let text = fs::read_to_string(path).with_context(|| format!("cannot read image config {}", path.display()))?;
    ImageConfig::from_json(&text).with_context(|| format!("invalid image config {}", path.display()))
}

/// Prefix of in-progress files and directories; see `remove_stale_temporaries`.
const TMP_PREFIX: &str = ".tmp-";

/// A layer in the store, as an import found or made it.
#[derive(Debug, Clone)]
pub struct Layer {
    pub diff_id: String,
    pub size: u64,
    /// Whether the layer was already in the store (so nothing new was kept).
    pub reused: bool,
    /// The archive it came from, as kept in `blobs/`.
    pub blob: Descriptor,
}

/// What a layer archive must turn out to be; anything unknown is not checked.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// Digest and size of the archive as read.
    pub blob: Option<(String, u64)>,
    /// Digest of the uncompressed tar.
    pub diff_id: Option<String>,
    /// The media type to record for the blob (else guessed from its compression).
    pub media_type: Option<String>,
}

/// What removing or pruning did, for the user.
#[derive(Debug, Default)]
pub struct Removal {
    pub untagged: Vec<String>,
    pub deleted: Vec<String>,
    pub reclaimed: u64,
}

/// Holds the store's writer lock; every change happens while one is held.
pub struct WriteLock {
    _lock: state::StoreLock,
}

impl Store {
    /// Opens (creating 0700 dirs as needed) the store at `root` (Paths::storage).
    /// Layers unpacked by it belong to the caller, whatever the image says
    /// (`with_owners` keeps them).
    pub fn open(root: &Path) -> Result<Store> {
        let guard = std::sync::Arc::new(guard::UnpackGuard::new(crate::user_config::unpack_limits()?));
        let store = Store { root: root.to_path_buf(), owners: Owners::caller_only(), guard };
        for dir in [store.root.clone(), store.layers_dir(), store.images_dir(), store.blobs_dir()] {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("cannot create the image store directory {}", dir.display()))?;
        }
        Ok(store)
    }

    /// Other bounds on decompression than the user's config gives.
    #[cfg(test)]
    pub fn with_unpack_limits(mut self, limits: guard::UnpackLimits) -> Store {
        self.guard = std::sync::Arc::new(guard::UnpackGuard::new(limits));
        self
    }

    /// Unpacks layers with the owners their archives give, as `owners` can
    /// (`Owners::detect()`: what this caller can do here).
    pub fn with_owners(mut self, owners: Owners) -> Store {
        self.owners = owners;
        self
    }

    /// Checks that the owners of the image's layers' files mean in a
    /// container with `maps` what they meant when they were unpacked: a
    /// layer with files of other ids than root, unpacked for other maps
    /// (/etc/subuid or /etc/subgid changed since), would show them with the
    /// wrong owners, or as nobody.
    pub fn check_owners(&self, image: &ImageRecord, maps: &IdMaps, name: &str) -> Result<()> {
        for diff_id in &image.diff_ids {
            let layer = self.read_layer(&self.layer_dir(digest::hex(diff_id)?))?;
            let Some(owners) = layer.owners.filter(|o| o.kept && o.other_owners) else { continue };
            let then = IdMaps { uid: owners.uid_map, gid: owners.gid_map };
            if then != *maps {
                refuse!(
                    "image {name}: its layer {} was unpacked for the id maps {then}, but your containers now get {maps} \
(/etc/subuid or /etc/subgid changed), so its files would have the wrong owners: remove the image \
(`ctr rmi {name}`, and `ctr image prune`) and pull, load or import it again",
                    short_id(diff_id)
                );
            }
        }
        Ok(())
    }

    /// Waits for the writer lock (saying so when another ctr holds it), and
    /// removes what an interrupted writer left.
    pub fn lock(&self) -> Result<WriteLock> {
        let lock = state::lock(&self.root.join("lock"))?;
        self.remove_stale_temporaries();
        Ok(WriteLock { _lock: lock })
    }

    /// Imports a root filesystem tarball (plain tar, gzip, zstd or xz,
    /// recognised by content) as image `reference` (NAME[:TAG], tag
    /// `latest` by default), moving the reference if it named another
    /// image. Importing the same archive with the same config again gives
    /// the same image and reuses its layer.
    pub fn import(&self, source: ImportSource, reference: &str, config: ImageConfig) -> Result<ImageRecord> {
        let reference = Reference::parse(reference)?;
        if reference.digest.is_some() {
            refuse!("an imported image is named NAME[:TAG], not by digest");
        }
        let what = source.to_string();
        self.import_from(source, &reference, config)
            .map(|(record, _)| record)
            .with_context(|| format!("cannot import {what} as image {}", reference.familiar()))
    }

    /// Imports `<images_dir>/<name>.tar` with the config in
    /// `<images_dir>/<name>.json` as image `name`, if that tarball exists.
    /// Built-in images have plain names (no tag, no '/'): for any other
    /// `name` there is none, and the answer is None.
    pub fn import_builtin(&self, images_dir: &Path, name: &str) -> Result<Option<ImageRecord>> {
        if Reference::parse_plain_name(name).is_err() {
            return Ok(None);
        }
        let tarball = images_dir.join(format!("{name}.tar"));
        if !tarball.is_file() {
            return Ok(None);
        }
        let config = builtin_config(&images_dir.join(format!("{name}.json")))
            .with_context(|| format!("the built-in image {name} is broken: reinstall ctr (`cargo xtask install`)"))?;
        self.import(ImportSource::File(tarball), name, config).map(Some)
    }

    /// Finds an image by reference (`alpine` is `docker.io/library/alpine:latest`;
    /// `NAME@sha256:...` by the manifest digest it was pulled as), or else
    /// by id or unique id prefix (at least 4 hex digits, `sha256:` optional).
    pub fn lookup(&self, reference: &str) -> Result<Option<ImageRecord>> {
        Ok(self.find(reference)?.map(|(record, _)| record))
    }

    /// Like `lookup`, also saying whether `s` matched as a reference (tag or
    /// digest) rather than as an id.
    fn find(&self, s: &str) -> Result<Option<(ImageRecord, Option<Reference>)>> {
        let repositories = self.repositories()?;
        let parsed = Reference::parse(s);
        if let Ok(reference) = &parsed {
            if reference.digest.is_some() {
                let wanted = reference.with_digest(reference.digest.as_deref().unwrap_or_default()).to_string();
                for hex in self.image_hexes()? {
                    let image = self.read_image(&hex)?;
                    if image.repo_digests.contains(&wanted) {
                        return Ok(Some((self.load(&hex, &repositories)?, Some(reference.clone()))));
                    }
                }
                return Ok(None);
            }
            if let Some(id) = repositories.references.get(&reference.to_string()) {
                return Ok(Some((self.load(digest::hex(id)?, &repositories)?, Some(reference.clone()))));
            }
        }
        let Some(prefix) = id_prefix(s)? else {
            // Neither a known name nor an id: say why if it is not even a name.
            return parsed.map(|_| None);
        };
        let hexes = self.image_hexes()?;
        match unique_match(&prefix, &hexes)? {
            Some(hex) => Ok(Some((self.load(hex, &repositories)?, None))),
            None => Ok(None),
        }
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        let repositories = self.repositories()?;
        let mut records =
            self.image_hexes()?.iter().map(|hex| self.load(hex, &repositories)).collect::<Result<Vec<_>>>()?;
        records.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(records)
    }

    /// Points `target` (NAME[:TAG]) at the image `source` names.
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageRecord> {
        let target = Reference::parse(target)?;
        if target.digest.is_some() {
            refuse!("cannot tag with a digest: give NAME[:TAG]");
        }
        let _lock = self.lock()?;
        let image = self.lookup(source)?.with_context(|| format!("no such image: {source}"))?;
        self.set_references(&[target], &image.id)?;
        self.load(digest::hex(&image.id)?, &self.repositories()?)
    }

    /// `ctr rmi`: removes a reference, or an image by id. `users` says which
    /// containers use an image (by id). An image a container uses is never
    /// deleted: without `force` that is an error, with it the image is only
    /// untagged, and `prune` deletes it once no container uses it.
    pub fn remove(&self, s: &str, force: bool, users: &dyn Fn(&str) -> Vec<String>) -> Result<Removal> {
        let _lock = self.lock()?;
        let (image, by_reference) = self.find(s)?.with_context(|| format!("no such image: {s}"))?;
        let mut repositories = self.repositories()?;
        let tags: Vec<String> =
            repositories.references.iter().filter(|(_, id)| **id == image.id).map(|(r, _)| r.clone()).collect();
        let used_by = users(&image.id);
        let mut removal = Removal::default();
        let untag: Vec<String> = match &by_reference {
            Some(r) if r.digest.is_none() => vec![r.to_string()],
            _ => tags.clone(),
        };
        let left = tags.len() - untag.len();
        if by_reference.is_none() && tags.len() > 1 && !force {
            refuse!(
                "image {} is referenced by {} names ({}): remove them by name, or use -f",
                short_id(&image.id),
                tags.len(),
                image.references.join(", ")
            );
        }
        if left == 0 && !used_by.is_empty() && !force {
            refuse!(
                "image {} is in use by container {}: remove the container first (`ctr rm`), or use -f to untag it anyway",
                s,
                used_by.join(", ")
            );
        }
        for r in &untag {
            repositories.references.remove(r);
            removal.untagged.push(familiar(r));
        }
        if !untag.is_empty() {
            state::write_json(&self.repositories_path(), &repositories)?;
        }
        if left == 0 && used_by.is_empty() {
            self.delete_image(&image.id, &mut removal)?;
            self.collect_garbage(&mut removal)?;
        }
        Ok(removal)
    }

    /// `ctr image prune`: deletes untagged images (every image with `all`)
    /// that no container uses, then every layer and blob that no image uses.
    pub fn prune(&self, all: bool, users: &dyn Fn(&str) -> Vec<String>) -> Result<Removal> {
        let _lock = self.lock()?;
        let repositories = self.repositories()?;
        let tagged: HashSet<&String> = repositories.references.values().collect();
        let mut removal = Removal::default();
        let mut remove_refs = Vec::new();
        for hex in self.image_hexes()? {
            let id = format!("{}{hex}", digest::ALGORITHM_PREFIX);
            if (all || !tagged.contains(&id)) && users(&id).is_empty() {
                for (r, _) in repositories.references.iter().filter(|(_, i)| **i == id) {
                    remove_refs.push(r.clone());
                }
                self.delete_image(&id, &mut removal)?;
            }
        }
        if !remove_refs.is_empty() {
            let mut repositories = self.repositories()?;
            for r in remove_refs {
                repositories.references.remove(&r);
                removal.untagged.push(familiar(&r));
            }
            state::write_json(&self.repositories_path(), &repositories)?;
        }
        self.collect_garbage(&mut removal)?;
        Ok(removal)
    }

    fn delete_image(&self, id: &str, removal: &mut Removal) -> Result<()> {
        let path = self.image_path(digest::hex(id)?);
        fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        state::sync_dir(&self.images_dir())?;
        removal.deleted.push(id.to_owned());
        Ok(())
    }

    /// Removes the layers and blobs that no image refers to. Called under
    /// the lock, after images were deleted.
    fn collect_garbage(&self, removal: &mut Removal) -> Result<()> {
        let mut layers = HashSet::new();
        let mut blobs = HashSet::new();
        for hex in self.image_hexes()? {
            let image = self.read_image(&hex)?;
            for diff_id in &image.spec.rootfs.diff_ids {
                layers.insert(digest::hex(diff_id)?.to_owned());
            }
            blobs.insert(hex.clone());
            if let Some(b) = &image.blobs {
                for d in &b.layers {
                    blobs.insert(d.hex()?.to_owned());
                }
            }
            for repo_digest in &image.repo_digests {
                if let Some((_, d)) = repo_digest.split_once('@') {
                    blobs.insert(digest::hex(d)?.to_owned());
                }
            }
        }
        for hex in hex_names(&self.layers_dir(), "")? {
            if !layers.contains(&hex) {
                let dir = self.layer_dir(&hex);
                removal.reclaimed += self.read_layer(&dir).map(|l| l.size).unwrap_or(0);
                self.remove_tree_atomically(&dir, &self.layers_dir())?;
                removal.deleted.push(format!("{}{hex}", digest::ALGORITHM_PREFIX));
            }
        }
        for hex in hex_names(&self.blobs_dir(), "")? {
            if !blobs.contains(&hex) {
                let path = self.blob_path(&hex);
                removal.reclaimed += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        Ok(())
    }

    fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    fn layer_dir(&self, diff_hex: &str) -> PathBuf {
        self.layers_dir().join(diff_hex)
    }

    fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    /// A blob's path; `hex` must have been checked (digest::hex).
    pub fn blob_path(&self, hex: &str) -> PathBuf {
        self.blobs_dir().join(hex)
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        digest::hex(digest).is_ok_and(|hex| self.blob_path(hex).is_file())
    }

    fn image_path(&self, id_hex: &str) -> PathBuf {
        self.images_dir().join(format!("{id_hex}.json"))
    }

    fn repositories_path(&self) -> PathBuf {
        self.root.join("repositories.json")
    }

    /// The references, keyed by their full normal form. Keys written by an
    /// older ctr (`alpine:latest`) are normalised on the way in.
    fn repositories(&self) -> Result<Repositories> {
        let mut repositories: Repositories = state::read_json(&self.repositories_path())?.unwrap_or_default();
        repositories.references = std::mem::take(&mut repositories.references)
            .into_iter()
            .map(|(k, v)| (Reference::parse(&k).map(|r| r.to_string()).unwrap_or(k), v))
            .collect();
        Ok(repositories)
    }

    /// The import proper; also says whether the layer was reused, for tests.
    fn import_from(
        &self,
        source: ImportSource,
        reference: &Reference,
        config: ImageConfig,
    ) -> Result<(ImageRecord, bool)> {
        // Open before waiting for the lock, so that a typo fails at once.
        let input = match &source {
            ImportSource::File(path) => {
                Some(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
            }
            ImportSource::Stdin => None,
        };
        let _lock = self.lock()?;
        let progress = progress::Progress::new(false);
        let layer = match input {
            Some(file) => self.layer_from_file(file, &progress)?,
            None => self.layer_from(io::stdin(), UnpackMode::Rootfs, &Expected::default())?,
        };
        let config_bytes = oci::config_for_import(&config, std::slice::from_ref(&layer.diff_id));
        let record =
            self.commit_image(&config_bytes, std::slice::from_ref(&layer), std::slice::from_ref(reference), None)?;
        Ok((record, layer.reused))
    }

    /// A regular file is hashed first, so that re-importing an archive
    /// finds its layer without unpacking it again. A pipe cannot be read
    /// twice: it is unpacked, and the copy dropped if the layer exists.
    fn layer_from_file(&self, mut file: File, progress: &progress::Progress) -> Result<Layer> {
        if !file.metadata()?.is_file() {
            return self.layer_from(file, UnpackMode::Rootfs, &Expected::default());
        }
        let mut hashing = HashingReader::new(&mut file, unpack::Limits::default().max_bytes, "the archive");
        hashing.drain()?;
        let (source_digest, size) = hashing.finish();
        if let Some(layer) = self.find_layer_by_source(&source_digest, size)? {
            return Ok(layer);
        }
        file.rewind()?;
        let bar = progress.layer("import", Some(size), "Unpacking");
        let layer = self.layer_from(bar.wrap(file), UnpackMode::Rootfs, &Expected::default())?;
        bar.done("Unpacked");
        Ok(layer)
    }

    /// Unpacks a layer archive into a temporary directory, keeping the
    /// archive as a blob, checks it against `expected`, and moves both into
    /// place, unless the layer turns out to exist already. On error the
    /// temporaries are removed (TempDir's and NamedTempFile's drops). The
    /// caller holds the lock.
    pub fn layer_from(&self, input: impl Read + Send, mode: UnpackMode, expected: &Expected) -> Result<Layer> {
        let mut tmp = self.scratch()?;
        let blob_file = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempfile_in(self.blobs_dir())
            .context("cannot create a temporary file in the image store")?;
        let limit = expected.blob.as_ref().map_or(unpack::Limits::default().max_bytes, |(_, size)| *size);
        let unpacked = {
            let mut writer = BufWriter::with_capacity(256 << 10, blob_file.as_file());
            let unpacked = unpack_stream(
                Tee { inner: input, copy: &mut writer },
                &tmp.path().join("rootfs"),
                mode,
                limit,
                &self.owners,
                &self.guard,
            )?;
            writer.flush().context("cannot write the layer blob")?;
            unpacked
        };
        if let Some((digest, size)) = &expected.blob {
            if unpacked.source_size != *size {
                refuse!(
                    "the layer {digest} is {} bytes, but its manifest says {size}: refusing it",
                    unpacked.source_size
                );
            }
            if unpacked.source_digest != *digest {
                refuse!(
                    "the layer's content does not match its digest {digest} (it hashes to {}): refusing it",
                    unpacked.source_digest
                );
            }
        }
        if let Some(diff_id) = &expected.diff_id {
            if unpacked.diff_id != *diff_id {
                refuse!(
                    "the layer {} unpacks to {}, but the image config says {diff_id}: refusing it",
                    unpacked.source_digest,
                    unpacked.diff_id
                );
            }
        }
        let media_type =
            expected.media_type.clone().unwrap_or_else(|| oci::layer_media_type(unpacked.compression).to_owned());
        let blob = Descriptor::new(&media_type, unpacked.source_digest.clone(), unpacked.source_size);
        self.persist_blob(blob_file, &unpacked.source_digest)?;
        let layer_dir = self.layer_dir(digest::hex(&unpacked.diff_id)?);
        if layer_dir.exists() {
            self.add_source_digest(&layer_dir, &unpacked.source_digest)?;
            let size = self.read_layer(&layer_dir)?.size;
            return Ok(Layer { diff_id: unpacked.diff_id, size, reused: true, blob });
        }
        let layer = LayerFile {
            diff_id: unpacked.diff_id,
            size: unpacked.size,
            source_digests: vec![unpacked.source_digest],
            created: now_rfc3339(),
            owners: Some(LayerOwners {
                kept: unpacked.owners_kept,
                uid_map: self.owners.maps().uid.clone(),
                gid_map: self.owners.maps().gid.clone(),
                other_owners: unpacked.other_owners,
            }),
        };
        state::write_json(&tmp.path().join("layer.json"), &layer)?;
        self.publish_layer(tmp.dir.take().expect("not yet published"), &layer_dir)?;
        Ok(Layer { diff_id: layer.diff_id, size: layer.size, reused: false, blob })
    }

    /// The layer with diff id `diff_id` if it is in the store with a blob
    /// it came from (so that it can be saved), preferring `preferred`.
    pub fn existing_layer(&self, diff_id: &str, preferred: Option<&Descriptor>) -> Result<Option<Layer>> {
        let dir = self.layer_dir(digest::hex(diff_id)?);
        if !dir.is_dir() {
            return Ok(None);
        }
        let layer = self.read_layer(&dir)?;
        if let Some(p) = preferred.filter(|p| layer.source_digests.contains(&p.digest) && self.has_blob(&p.digest)) {
            return Ok(Some(Layer { diff_id: layer.diff_id, size: layer.size, reused: true, blob: p.clone() }));
        }
        for source in &layer.source_digests {
            if let Some(blob) = self.describe_blob(source)? {
                return Ok(Some(Layer { diff_id: layer.diff_id.clone(), size: layer.size, reused: true, blob }));
            }
        }
        Ok(None)
    }

    /// A descriptor for a stored layer blob, its media type from its content.
    fn describe_blob(&self, digest: &str) -> Result<Option<Descriptor>> {
        let path = self.blob_path(digest::hex(digest)?);
        let Ok(mut file) = File::open(&path) else { return Ok(None) };
        let size = file.metadata()?.len();
        let mut head = Vec::new();
        (&mut file).take(6).read_to_end(&mut head)?;
        let compression = decompress::detect(&head)?;
        Ok(Some(Descriptor::new(oci::layer_media_type(compression), digest.to_owned(), size)))
    }

    /// Stores a small blob (config, manifest) whose digest is its content's.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String> {
        let digest = digest::of_bytes(bytes);
        let path = self.blob_path(digest::hex(&digest)?);
        if !path.exists() {
            let mut tmp = tempfile::Builder::new().prefix(TMP_PREFIX).tempfile_in(self.blobs_dir())?;
            tmp.write_all(bytes)?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(digest)
    }

    fn persist_blob(&self, file: tempfile::NamedTempFile, digest: &str) -> Result<()> {
        let path = self.blob_path(digest::hex(digest)?);
        if path.exists() {
            return Ok(());
        }
        file.as_file().sync_all().context("cannot sync a layer blob")?;
        file.persist(&path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// Renames a complete layer into place, durably.
    fn publish_layer(&self, tmp: tempfile::TempDir, layer_dir: &Path) -> Result<()> {
        // Flush the unpacked files before the rename publishes them: after
        // a crash a layer directory must be complete or absent.
        let dir = File::open(tmp.path())?;
        nix::unistd::syncfs(dir.as_raw_fd()).context("cannot sync the unpacked layer to disk")?;
        fs::rename(tmp.path(), layer_dir)
            .with_context(|| format!("cannot move the unpacked layer to {}", layer_dir.display()))?;
        // Renamed away: there is nothing left for the TempDir to remove.
        let _ = tmp.keep();
        state::sync_dir(&self.layers_dir())
    }

    fn read_layer(&self, layer_dir: &Path) -> Result<LayerFile> {
        let path = layer_dir.join("layer.json");
        state::read_json(&path)?
            .with_context(|| format!("{} is missing: remove {} and re-import", path.display(), layer_dir.display()))
    }

    /// The layer a regular file's archive was imported as, if any; the
    /// file becomes its blob if the store has none yet.
    fn find_layer_by_source(&self, source_digest: &str, _size: u64) -> Result<Option<Layer>> {
        for hex in hex_names(&self.layers_dir(), "")? {
            let layer = self.read_layer(&self.layer_dir(&hex))?;
            if layer.source_digests.iter().any(|d| d == source_digest) {
                if let Some(blob) = self.describe_blob(source_digest)? {
                    return Ok(Some(Layer { diff_id: layer.diff_id, size: layer.size, reused: true, blob }));
                }
                // Imported before blobs were kept: unpack again, to keep one.
                return Ok(None);
            }
        }
        Ok(None)
    }

    fn add_source_digest(&self, layer_dir: &Path, source_digest: &str) -> Result<()> {
        let mut layer = self.read_layer(layer_dir)?;
        if !layer.source_digests.iter().any(|d| d == source_digest) {
            layer.source_digests.push(source_digest.to_owned());
            state::write_json(&layer_dir.join("layer.json"), &layer)?;
        }
        Ok(())
    }

    /// Records an image from its config blob and its layers (bottom first,
    /// already in the store), unless it exists (then it keeps its creation
    /// time), and points `references` at it. The order makes every state a
    /// reader can see consistent: layers, then config blob and image, then
    /// references. The caller holds the lock.
    pub fn commit_image(
        &self,
        config_bytes: &[u8],
        layers: &[Layer],
        references: &[Reference],
        repo_digest: Option<String>,
    ) -> Result<ImageRecord> {
        let config = oci::ImageConfigFile::parse(config_bytes)?;
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        if config.rootfs.diff_ids != diff_ids {
            refuse!(
                "the image config lists {} layer(s) that do not match the {} layer(s) of the image: refusing it",
                config.rootfs.diff_ids.len(),
                diff_ids.len()
            );
        }
        let id = self.put_blob(config_bytes)?;
        let id_hex = digest::hex(&id)?.to_owned();
        let path = self.image_path(&id_hex);
        let mut image = match self.read_image_opt(&id_hex)? {
            Some(image) => image,
            None => {
                let created = config
                    .created
                    .as_deref()
                    .and_then(|c| humantime::parse_rfc3339(c).ok())
                    .filter(|t| *t > SystemTime::UNIX_EPOCH)
                    .map(crate::units::rfc3339_seconds)
                    .unwrap_or_else(now_rfc3339);
                ImageFile {
                    id: id.clone(),
                    created,
                    size: layers.iter().map(|l| l.size).sum(),
                    spec: ImageSpec {
                        config: config.run_config(),
                        rootfs: state::RootFs { kind: "layers".into(), diff_ids },
                    },
                    blobs: Some(ImageBlobs {
                        config: Descriptor::new(oci::OCI_CONFIG, id.clone(), config_bytes.len() as u64),
                        layers: layers.iter().map(|l| l.blob.clone()).collect(),
                        architecture: config.architecture.clone(),
                        os: config.os.clone(),
                    }),
                    repo_digests: Vec::new(),
                }
            }
        };
        let mut changed = !path.exists();
        if image.blobs.is_none() {
            refuse!("image {id_hex} in the store has no blobs: remove it (`ctr rmi`) first");
        }
        if let Some(rd) = repo_digest {
            if !image.repo_digests.contains(&rd) {
                image.repo_digests.push(rd);
                changed = true;
            }
        }
        if changed {
            state::write_json(&path, &image)?;
        }
        self.set_references(references, &id)?;
        self.load(&id_hex, &self.repositories()?)
    }

    fn set_references(&self, references: &[Reference], id: &str) -> Result<()> {
        let mut repositories = self.repositories()?;
        let mut changed = false;
        for reference in references.iter().filter(|r| r.digest.is_none()) {
            if repositories.references.get(&reference.to_string()).map(String::as_str) != Some(id) {
                repositories.references.insert(reference.to_string(), id.to_owned());
                changed = true;
            }
        }
        if changed {
            state::write_json(&self.repositories_path(), &repositories)?;
        }
        Ok(())
    }

    fn read_image_opt(&self, id_hex: &str) -> Result<Option<ImageFile>> {
        state::read_json(&self.image_path(id_hex))
    }

    fn read_image(&self, id_hex: &str) -> Result<ImageFile> {
        self.read_image_opt(id_hex)?.with_context(|| format!("image {id_hex} is missing from the store"))
    }

    /// The stored description of an image, for `save` and `inspect`.
    pub fn image_file(&self, id: &str) -> Result<(ImageFile, Option<Vec<u8>>)> {
        let hex = digest::hex(id)?;
        let image = self.read_image(hex)?;
        let config = match &image.blobs {
            Some(_) => Some(
                fs::read(self.blob_path(hex)).with_context(|| format!("the config blob of image {hex} is missing"))?,
            ),
            None => None,
        };
        Ok((image, config))
    }

    fn load(&self, id_hex: &str, repositories: &Repositories) -> Result<ImageRecord> {
        let path = self.image_path(id_hex);
        let image = self.read_image(id_hex)?;
        let corrupt = || format!("{} is corrupt: remove it and re-import the image", path.display());
        let id_ok = match &image.blobs {
            Some(blobs) => blobs.config.digest == image.id,
            None => image.spec.id() == image.id,
        };
        if !id_ok || digest::hex(&image.id)? != id_hex {
            refuse!("{}", corrupt());
        }
        let diff_ids = &image.spec.rootfs.diff_ids;
        if diff_ids.is_empty() {
            refuse!("{}", corrupt());
        }
        let mut lower_dirs = Vec::with_capacity(diff_ids.len());
        for diff_id in diff_ids.iter().rev() {
            let rootfs = self.layer_dir(digest::hex(diff_id)?).join("rootfs");
            if !rootfs.is_dir() {
                refuse!(
                    "a layer of image {id_hex} is missing from {}: remove the image (`ctr rmi -f {}`) and pull or import it again",
                    rootfs.display(),
                    &id_hex[..12]
                );
            }
            lower_dirs.push(rootfs);
        }
        let created = humantime::parse_rfc3339(&image.created).with_context(corrupt)?;
        let references = repositories
            .references
            .iter()
            .filter(|(_, id)| **id == image.id)
            .map(|(name, _)| familiar(name))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let repo_digests = image.repo_digests.iter().map(|r| familiar(r)).collect();
        let platform =
            image.blobs.as_ref().filter(|b| !b.os.is_empty()).map(|b| format!("{}/{}", b.os, b.architecture));
        Ok(ImageRecord {
            id: image.id,
            references,
            repo_digests,
            lower_dirs,
            diff_ids: diff_ids.clone(),
            created,
            size: image.size,
            config: image.spec.config,
            platform,
        })
    }

    fn image_hexes(&self) -> Result<Vec<String>> {
        hex_names(&self.images_dir(), ".json")
    }

    /// Removes what an interrupted writer left. Only called under the lock,
    /// which every writer holds for its whole run, so nothing named
    /// `.tmp-*` can still be in use. Failing to clean up is not a reason to
    /// fail.
    fn remove_stale_temporaries(&self) {
        for dir in [self.root.clone(), self.layers_dir(), self.images_dir(), self.blobs_dir()] {
            let Ok(entries) = fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                if !entry.file_name().as_encoded_bytes().starts_with(TMP_PREFIX.as_bytes()) {
                    continue;
                }
                let path = entry.path();
                let removed = match entry.file_type() {
                    Ok(t) if t.is_dir() => self.remove_tree(&path),
                    _ => fs::remove_file(&path).map_err(ImageError::from),
                };
                if let Err(e) = removed {
                    eprintln!(
                        "warning: cannot remove {} left by an interrupted import: {}",
                        path.display(),
                        crate::error::chain(&e)
                    );
                }
            }
        }
    }

    /// Moves a tree out of sight first (a `.tmp-` name, which the next writer
    /// removes if this one is interrupted), then deletes it.
    fn remove_tree_atomically(&self, dir: &Path, parent: &Path) -> Result<()> {
        let doomed = parent.join(format!("{TMP_PREFIX}rm-{}", dir.file_name().and_then(|n| n.to_str()).unwrap_or("x")));
        fs::rename(dir, &doomed).with_context(|| format!("cannot remove {}", dir.display()))?;
        self.remove_tree(&doomed)
    }

    /// Deletes a tree of the store (`layers/.tmp-*` where files may belong
    /// to subordinate ids, which the caller cannot delete itself: then from
    /// a user namespace with the containers' maps).
    fn remove_tree(&self, path: &Path) -> Result<()> {
        let error = match fs::remove_dir_all(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => e,
        };
        match &self.owners {
            Owners::UserNamespace(maps) => userns::remove(maps, path).with_context(|| {
                format!(
                    "cannot remove {} (as yourself: {error}; nor in a user namespace with your id maps: if /etc/subuid or /etc/subgid changed since, remove it as root)",
                    path.display()
                )
            }),
            Owners::Caller { why, .. } if *why == userns::NO_TOOLS_WHY => {
                Err(error).with_context(|| {
                    format!(
                        "cannot remove {}: if its files belong to your subordinate ids, only a process in a user namespace with your id maps can, \
and {why}: install it and retry, or remove the directory as root",
                        path.display()
                    )
                })
            }
            _ => Err(error).with_context(|| format!("cannot remove {}", path.display())),
        }
    }
}

/// A layer being unpacked (`layers/.tmp-*`): removed when dropped unless
/// published, from a user namespace if its files need one.
struct Scratch<'a> {
    store: &'a Store,
    dir: Option<tempfile::TempDir>,
}

impl Store {
    /// A private (0700) temporary directory among the layers, removed
    /// unless it is published.
    fn scratch(&self) -> Result<Scratch<'_>> {
        let dir = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(self.layers_dir())
            .context("cannot create a temporary directory in the image store")?;
        Ok(Scratch { store: self, dir: Some(dir) })
    }
}

impl Scratch<'_> {
    fn path(&self) -> &Path {
        self.dir.as_ref().expect("not yet published").path()
    }
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let path = dir.keep();
            if let Err(e) = self.store.remove_tree(&path) {
                eprintln!(
                    "warning: {} (the next ctr command that changes the store tries again)",
                    crate::error::chain(&e)
                );
            }
        }
    }
}

/// `docker.io/library/alpine:latest` as `alpine:latest`.
fn familiar(full: &str) -> String {
    Reference::parse(full).map(|r| r.familiar()).unwrap_or_else(|_| full.to_owned())
}

pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix(digest::ALGORITHM_PREFIX).unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// Copies everything read through it to `copy`.
struct Tee<'a, R, W> {
    inner: R,
    copy: &'a mut W,
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Counts the bytes read through it (the archive as it arrives, for the
/// decompression ratio).
struct Counted<'a, R> {
    inner: R,
    count: &'a std::cell::Cell<u64>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// What one pass over an archive gave.
struct UnpackedStream {
    /// sha256 of the uncompressed tar stream.
    diff_id: String,
    /// sha256 and length of the archive as read (compressed).
    source_digest: String,
    source_size: u64,
    compression: decompress::Compression,
    /// Bytes of file content.
    size: u64,
    /// Whether some file got another owner than the container's root.
    other_owners: bool,
    /// Whether the archive's owners were kept at all.
    owners_kept: bool,
}

/// Decompresses and unpacks `input` into `rootfs` in one pass, hashing the
/// archive both as read and as decompressed on the way. Reading more than
/// `source_limit` bytes of archive is an error.
///
/// Two threads share the work, as `tar` and its decompressor do in two
/// processes: one reads, hashes and decompresses the archive and hashes
/// the tar stream; the other unpacks it. A bounded channel of chunks sits
/// between them, so memory stays small whatever the layer's size.
fn unpack_stream(
    input: impl Read + Send,
    rootfs: &Path,
    mode: UnpackMode,
    source_limit: u64,
    owners: &Owners,
    guard: &guard::UnpackGuard,
) -> Result<UnpackedStream> {
    let limits = unpack::Limits::default();
    std::thread::scope(|scope| {
        let (chunks, received) = std::sync::mpsc::sync_channel(PIPELINE_CHUNKS);
        let max_bytes = limits.max_bytes;
        let layer_guard = guard.layer();
        let decoder = scope.spawn(move || decode_and_hash(input, source_limit, max_bytes, &chunks, &layer_guard));
        let mut tar_stream = ChunkReader { chunks: received, current: Vec::new(), at: 0 };
        let unpacked = unpack_tar(&mut tar_stream, rootfs, mode, &limits, owners);
        // Dropped before the join: a decoder still sending then stops.
        drop(tar_stream);
        let decoded = decoder.join().map_err(|_| refused!("the thread that decompresses the layer panicked"))?;
        match (decoded, unpacked) {
            // The archive's own error explains what the unpacker saw.
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
            (Ok(None), Ok(_)) => refuse!("the layer's decompression stopped early"),
            (Ok(Some(decoded)), Ok((unpacked, owners_kept))) => Ok(UnpackedStream {
                diff_id: decoded.diff_id.0,
                source_digest: decoded.source.0,
                source_size: decoded.source.1,
                compression: decoded.compression,
                size: unpacked.size,
                other_owners: unpacked.other_owners,
                owners_kept,
            }),
        }
    })
}

/// Chunks of this size, at most this many in flight (2 MiB).
const PIPELINE_CHUNK: usize = 256 << 10;
const PIPELINE_CHUNKS: usize = 8;

struct Decoded {
    compression: decompress::Compression,
    diff_id: (String, u64),
    source: (String, u64),
}

/// The reading half of [`unpack_stream`]. `None`: the unpacker stopped
/// reading (it failed, and says why). An error is also sent down the
/// channel, so that the unpacker stops too.
fn decode_and_hash(
    input: impl Read,
    source_limit: u64,
    max_bytes: u64,
    chunks: &std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>,
    guard: &guard::LayerGuard<'_>,
) -> Result<Option<Decoded>> {
    let compressed = std::cell::Cell::new(0u64);
    let mut source = HashingReader::new(Counted { inner: input, count: &compressed }, source_limit, "the archive");
    let decoded = (|| -> Result<Option<(decompress::Compression, (String, u64))>> {
        let (compression, decoded) = decompress::decoder(&mut source)?;
        let mut tar_stream = HashingReader::new(decoded, max_bytes, "the uncompressed archive");
        let mut decompressed = 0u64;
        loop {
            let mut chunk = vec![0; PIPELINE_CHUNK];
            let n = loop {
                match tar_stream.read(&mut chunk) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if n == 0 {
                break;
            }
            decompressed += n as u64;
            guard.check(compressed.get(), decompressed, n as u64).map_err(ImageError::Invalid)?;
            chunk.truncate(n);
            if chunks.send(Ok(chunk)).is_err() {
                return Ok(None);
            }
        }
        Ok(Some((compression, tar_stream.finish())))
    })();
    let decoded = decoded.and_then(|d| {
        source.drain().context("cannot read the end of the archive")?;
        Ok(d)
    });
    match decoded {
        Ok(Some((compression, diff_id))) => Ok(Some(Decoded { compression, diff_id, source: source.finish() })),
        Ok(None) => Ok(None),
        Err(e) => {
            let _ = chunks.send(Err(io::Error::other(crate::error::chain(&e))));
            Err(e)
        }
    }
}

/// The unpacking half of [`unpack_stream`]: the layer's files, and whether
/// their owners were kept.
fn unpack_tar(
    tar_stream: &mut ChunkReader,
    rootfs: &Path,
    mode: UnpackMode,
    limits: &unpack::Limits,
    owners: &Owners,
) -> Result<(unpack::Unpacked, bool)> {
    // The child reads the whole stream, padding included.
    let in_namespace = match owners {
        Owners::UserNamespace(maps) if !userns::unavailable() => {
            match userns::unpack(maps, &mut *tar_stream, rootfs, mode) {
                Ok(unpacked) => Some(unpacked),
                Err(userns::UnpackError::Failed(e)) => return Err(e),
                Err(userns::UnpackError::Unavailable(e)) => {
                    userns::mark_unavailable(&e);
                    None
                }
            }
        }
        _ => None,
    };
    match in_namespace {
        Some(unpacked) => Ok((unpacked, true)),
        None => {
            let in_process = owners.in_process();
            let mut buffered = BufReader::with_capacity(256 << 10, &mut *tar_stream);
            let unpacked = unpack::unpack_with_owners(&mut buffered, rootfs, limits, mode, in_process.as_ref())?;
            // The diff id covers the whole stream, the padding after the
            // end-of-archive marker included, as Docker's does.
            io::copy(&mut buffered, &mut io::sink()).context("cannot read the end of the archive")?;
            Ok((unpacked, in_process.is_some()))
        }
    }
}

/// Reads the chunks [`decode_and_hash`] sends; the end of the stream is
/// the sender hanging up after its last chunk.
struct ChunkReader {
    chunks: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.recv() {
                Ok(chunk) => {
                    self.current = chunk?;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The 64-hex-digit names in `dir` that end with `suffix`, suffix removed.
fn hex_names(dir: &Path, suffix: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let name = entry?.file_name();
        let hex = name.to_str().and_then(|n| n.strip_suffix(suffix));
        if let Some(hex) = hex.filter(|h| digest::is_hex64(h)) {
            names.push(hex.to_owned());
        }
    }
    Ok(names)
}

/// What `s` means as an id prefix: None if it is not hex at all; an error
/// if it says `sha256:` but is no usable prefix.
fn id_prefix(s: &str) -> Result<Option<String>> {
    const MIN: usize = 4;
    let (explicit, hex) = match s.strip_prefix(digest::ALGORITHM_PREFIX) {
        Some(hex) => (true, hex),
        None => (false, s),
    };
    let is_hex = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    match (is_hex && (MIN..=64).contains(&hex.len()), explicit) {
        (true, _) => Ok(Some(hex.to_ascii_lowercase())),
        (false, true) => refuse!("{s:?} is not an image id: give {MIN} to 64 hex digits after sha256:"),
        (false, false) => Ok(None),
    }
}

fn unique_match<'a>(prefix: &str, hexes: &'a [String]) -> Result<Option<&'a str>> {
    let mut matches = hexes.iter().filter(|hex| hex.starts_with(prefix));
    match (matches.next(), matches.next()) {
        (None, _) => Ok(None),
        (Some(hex), None) => Ok(Some(hex)),
        (Some(_), Some(_)) => {
            refuse!("image id prefix {prefix} is ambiguous: it matches several images; give more digits")
        }
    }
}

fn now_rfc3339() -> String {
    crate::units::rfc3339_seconds(SystemTime::now())
}

#[cfg(test)]
mod tests;
