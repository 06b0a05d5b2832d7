//! The image store: imports root filesystem tarballs as images, and finds
//! and lists them. It owns everything under `Paths::storage`.
//!
//! An image is a config (default command, environment, ...) plus a stack of
//! layers, each unpacked once into its own directory and shared read-only by
//! every image that uses it. Today an import makes a single-layer image; the
//! layout (see `state`) is keyed by content digests so that pulled,
//! multi-layer images (issue 4) fit into it unchanged.
//!
//! Images are hostile input: `unpack` holds the rules that keep an archive
//! inside its layer directory. The store itself belongs to the calling user
//! and is written without privilege.

mod decompress;
mod digest;
mod reference;
mod state;
mod table;
mod unpack;

pub use table::print_table;

use anyhow::{bail, Context, Result};
use digest::HashingReader;
use reference::Reference;
use serde::{Deserialize, Serialize};
use state::{ImageFile, ImageSpec, LayerFile, Repositories};
use std::fmt;
use std::fs::{self, DirBuilder, File};
use std::io::{self, BufReader, Read, Seek};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The image store at one root directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
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
/// the image id hashes: keep the field order stable.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct ImageConfig {
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    /// `NAME=VALUE` entries.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

const CONFIG_KEYS: [&str; 5] = ["cmd", "entrypoint", "env", "working_dir", "user"];

impl ImageConfig {
    /// Parses a config file strictly: an unknown key is more likely a typo
    /// (`"Cmd"`) than something to ignore.
    fn from_json(text: &str) -> Result<ImageConfig> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let object = value.as_object().context(r#"expected a JSON object, like {"cmd": ["sh"]}"#)?;
        if let Some(key) = object.keys().find(|key| !CONFIG_KEYS.contains(&key.as_str())) {
            bail!("unknown key {key:?}: the keys are {}", CONFIG_KEYS.join(", "));
        }
        let config: ImageConfig = serde_json::from_value(value)?;
        let is_assignment = |e: &&String| matches!(e.split_once('='), Some((name, _)) if !name.is_empty());
        if let Some(bad) = config.env.iter().find(|e| !is_assignment(e)) {
            bail!("env entry {bad:?} is not NAME=VALUE");
        }
        Ok(config)
    }
}

/// An image as the rest of ctr sees it.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// `sha256:<64 hex>`.
    pub id: String,
    /// Normalised `name:tag` references naming this image, sorted; empty
    /// once all were moved to other images.
    pub references: Vec<String>,
    /// The unpacked layer: shared with other images, so never write to it
    /// (mount it read-only, or as an overlay lower directory).
    pub rootfs: PathBuf,
    /// When the image was first imported.
    pub created: SystemTime,
    /// Bytes of unpacked file content.
    pub size: u64,
    pub config: ImageConfig,
}

/// Reads a built-in image's config, e.g. `{"cmd": ["sh"], "env": ["PATH=/bin"]}`.
pub fn builtin_config(path: &Path) -> Result<ImageConfig> {
    let text = fs::read_to_string(path).with_context(|| format!("cannot read image config {}", path.display()))?;
    ImageConfig::from_json(&text).with_context(|| format!("invalid image config {}", path.display()))
}

/// Prefix of in-progress files and directories; see `remove_stale_temporaries`.
const TMP_PREFIX: &str = ".tmp-";

/// A layer in the store, as an import found or made it.
#[derive(Debug)]
struct Layer {
    diff_id: String,
    size: u64,
    /// Whether the layer was already in the store (so nothing new was kept).
    reused: bool,
}

impl Store {
    /// Opens (creating 0700 dirs as needed) the store at `root` (Paths::storage).
    pub fn open(root: &Path) -> Result<Store> {
        let store = Store { root: root.to_path_buf() };
        for dir in [store.root.clone(), store.layers_dir(), store.images_dir()] {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("cannot create the image store directory {}", dir.display()))?;
        }
        Ok(store)
    }

    /// Imports a root filesystem tarball (plain tar, gzip, zstd or xz,
    /// recognised by content) as image `reference` (NAME[:TAG], tag
    /// `latest` by default), moving the reference if it named another
    /// image. Importing the same archive with the same config again gives
    /// the same image and reuses its layer.
    pub fn import(&self, source: ImportSource, reference: &str, config: ImageConfig) -> Result<ImageRecord> {
        let reference = Reference::parse(reference)?;
        let what = source.to_string();
        self.import_from(source, &reference, config)
            .map(|(record, _)| record)
            .with_context(|| format!("cannot import {what} as image {reference}"))
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

    /// Finds an image by reference (`alpine` is `alpine:latest`), or else
    /// by id or unique id prefix (at least 4 hex digits, `sha256:` optional).
    pub fn lookup(&self, reference: &str) -> Result<Option<ImageRecord>> {
        let repositories = self.repositories()?;
        let parsed = Reference::parse(reference);
        if let Some(id) = parsed.as_ref().ok().and_then(|r| repositories.references.get(&r.to_string())) {
            return self.load(digest::hex(id)?, &repositories).map(Some);
        }
        let Some(prefix) = id_prefix(reference)? else {
            // Neither a known name nor an id: say why if it is not even a name.
            return parsed.map(|_| None);
        };
        let hexes = self.image_hexes()?;
        match unique_match(&prefix, &hexes)? {
            Some(hex) => self.load(hex, &repositories).map(Some),
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

    fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    fn layer_dir(&self, diff_hex: &str) -> PathBuf {
        self.layers_dir().join(diff_hex)
    }

    fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    fn image_path(&self, id_hex: &str) -> PathBuf {
        self.images_dir().join(format!("{id_hex}.json"))
    }

    fn repositories_path(&self) -> PathBuf {
        self.root.join("repositories.json")
    }

    fn repositories(&self) -> Result<Repositories> {
        Ok(state::read_json(&self.repositories_path())?.unwrap_or_default())
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
        let _lock = state::lock(&self.root.join("lock"))?;
        self.remove_stale_temporaries();
        let layer = match input {
            Some(file) => self.layer_from_file(file)?,
            None => self.layer_from(io::stdin().lock())?,
        };
        let record = self.commit_image(reference, config, &layer)?;
        Ok((record, layer.reused))
    }

    /// A regular file is hashed first, so that re-importing an archive
    /// finds its layer without unpacking it again. A pipe cannot be read
    /// twice: it is unpacked, and the copy dropped if the layer exists.
    fn layer_from_file(&self, mut file: File) -> Result<Layer> {
        if !file.metadata()?.is_file() {
            return self.layer_from(file);
        }
        let mut hashing = HashingReader::new(&mut file, unpack::Limits::default().max_bytes, "the archive");
        hashing.drain()?;
        let (source_digest, _) = hashing.finish();
        if let Some(layer) = self.find_layer_by_source(&source_digest)? {
            return Ok(layer);
        }
        file.rewind()?;
        self.layer_from(file)
    }

    /// Unpacks an archive into a temporary directory and moves it into
    /// place, unless the layer turns out to exist already. On error the
    /// temporary directory is removed (TempDir's drop).
    fn layer_from(&self, input: impl Read) -> Result<Layer> {
        let tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(self.layers_dir())
            .context("cannot create a temporary directory in the image store")?;
        let unpacked = unpack_stream(input, &tmp.path().join("rootfs"))?;
        let layer_dir = self.layer_dir(digest::hex(&unpacked.diff_id)?);
        if layer_dir.exists() {
            self.add_source_digest(&layer_dir, &unpacked.source_digest)?;
            let size = self.read_layer(&layer_dir)?.size;
            return Ok(Layer { diff_id: unpacked.diff_id, size, reused: true });
        }
        let layer = LayerFile {
            diff_id: unpacked.diff_id,
            size: unpacked.size,
            source_digests: vec![unpacked.source_digest],
            created: now_rfc3339(),
        };
        state::write_json(&tmp.path().join("layer.json"), &layer)?;
        self.publish_layer(tmp, &layer_dir)?;
        Ok(Layer { diff_id: layer.diff_id, size: layer.size, reused: false })
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

    fn find_layer_by_source(&self, source_digest: &str) -> Result<Option<Layer>> {
        for hex in hex_names(&self.layers_dir(), "")? {
            let layer = self.read_layer(&self.layer_dir(&hex))?;
            if layer.source_digests.iter().any(|d| d == source_digest) {
                return Ok(Some(Layer { diff_id: layer.diff_id, size: layer.size, reused: true }));
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

    /// Records the image (unless it exists: then it keeps its creation
    /// time) and points `reference` at it. The order makes every state a
    /// reader can see consistent: layer, then image, then reference.
    fn commit_image(&self, reference: &Reference, config: ImageConfig, layer: &Layer) -> Result<ImageRecord> {
        let spec = ImageSpec::single_layer(config, layer.diff_id.clone());
        let id = spec.id();
        let id_hex = digest::hex(&id)?;
        let path = self.image_path(id_hex);
        if !path.exists() {
            let image = ImageFile { id: id.clone(), created: now_rfc3339(), size: layer.size, spec };
            state::write_json(&path, &image)?;
        }
        let mut repositories = self.repositories()?;
        if repositories.references.get(&reference.to_string()) != Some(&id) {
            repositories.references.insert(reference.to_string(), id.clone());
            state::write_json(&self.repositories_path(), &repositories)?;
        }
        self.load(id_hex, &repositories)
    }

    fn load(&self, id_hex: &str, repositories: &Repositories) -> Result<ImageRecord> {
        let path = self.image_path(id_hex);
        let image: ImageFile =
            state::read_json(&path)?.with_context(|| format!("image {id_hex} is missing from the store"))?;
        let corrupt = || format!("{} is corrupt: remove it and re-import the image", path.display());
        if image.spec.id() != image.id || digest::hex(&image.id)? != id_hex {
            bail!("{}", corrupt());
        }
        let [diff_id] = image.spec.rootfs.diff_ids.as_slice() else {
            bail!(
                "image {id_hex} has {} layers; this version of ctr handles single-layer images only",
                image.spec.rootfs.diff_ids.len()
            );
        };
        let rootfs = self.layer_dir(digest::hex(diff_id)?).join("rootfs");
        if !rootfs.is_dir() {
            bail!(
                "the layer of image {id_hex} is missing from {}: remove {} and re-import the image",
                rootfs.display(),
                path.display()
            );
        }
        let created = humantime::parse_rfc3339(&image.created).with_context(corrupt)?;
        let references =
            repositories.references.iter().filter(|(_, id)| **id == image.id).map(|(name, _)| name.clone()).collect();
        Ok(ImageRecord { id: image.id, references, rootfs, created, size: image.size, config: image.spec.config })
    }

    fn image_hexes(&self) -> Result<Vec<String>> {
        hex_names(&self.images_dir(), ".json")
    }

    /// Removes what an interrupted import left. Only called under the lock,
    /// which every writer holds for its whole run, so nothing named
    /// `.tmp-*` can still be in use. Failing to clean up is not a reason to
    /// fail the import.
    fn remove_stale_temporaries(&self) {
        for dir in [self.root.clone(), self.layers_dir(), self.images_dir()] {
            let Ok(entries) = fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                if !entry.file_name().as_encoded_bytes().starts_with(TMP_PREFIX.as_bytes()) {
                    continue;
                }
                let path = entry.path();
                let removed = match entry.file_type() {
                    Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
                    _ => fs::remove_file(&path),
                };
                if let Err(e) = removed {
                    eprintln!("warning: cannot remove {} left by an interrupted import: {e}", path.display());
                }
            }
        }
    }
}

/// What one pass over an archive gave.
struct UnpackedStream {
    /// sha256 of the uncompressed tar stream.
    diff_id: String,
    /// sha256 of the archive as read (compressed).
    source_digest: String,
    /// Bytes of file content.
    size: u64,
}

/// Decompresses and unpacks `input` into `rootfs` in one pass, hashing the
/// archive both as read and as decompressed on the way.
fn unpack_stream(input: impl Read, rootfs: &Path) -> Result<UnpackedStream> {
    let limits = unpack::Limits::default();
    let mut source = HashingReader::new(input, limits.max_bytes, "the archive");
    let (decompressed, unpacked) = {
        let (_, decoded) = decompress::decoder(&mut source)?;
        let mut tar_stream = HashingReader::new(decoded, limits.max_bytes, "the uncompressed archive");
        let mut buffered = BufReader::with_capacity(64 << 10, &mut tar_stream);
        let unpacked = unpack::unpack(&mut buffered, rootfs, &limits)?;
        // The diff id covers the whole stream, the padding after the
        // end-of-archive marker included, as Docker's does.
        io::copy(&mut buffered, &mut io::sink()).context("cannot read the end of the archive")?;
        drop(buffered);
        (tar_stream.finish(), unpacked)
    };
    source.drain().context("cannot read the end of the archive")?;
    Ok(UnpackedStream { diff_id: decompressed.0, source_digest: source.finish().0, size: unpacked.size })
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
        (false, true) => bail!("{s:?} is not an image id: give {MIN} to 64 hex digits after sha256:"),
        (false, false) => Ok(None),
    }
}

fn unique_match<'a>(prefix: &str, hexes: &'a [String]) -> Result<Option<&'a str>> {
    let mut matches = hexes.iter().filter(|hex| hex.starts_with(prefix));
    match (matches.next(), matches.next()) {
        (None, _) => Ok(None),
        (Some(hex), None) => Ok(Some(hex)),
        (Some(_), Some(_)) => {
            bail!("image id prefix {prefix} is ambiguous: it matches several images; give more digits")
        }
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests;
