//! `ctr load` and `ctr save`: Docker's `docker save` archive (manifest.json,
//! as Docker up to 24 and skopeo write it, or Docker 25's OCI-based one) and
//! the OCI image layout, as a directory or a tar.
//!
//! Archives are hostile input like any layer: names inside them are looked
//! up in an index built in one pass over the tar (symlinks and hard links
//! between entries resolved by name, within the archive only), JSON is read
//! with size limits, and every config and layer is checked against the
//! digests that name it before the image is committed. Layers of one archive
//! unpack in parallel, each from its own offset in the file.

use super::oci::{self, Descriptor, Document, Platform};
use super::progress::Progress;
use super::{decompress, digest, short_id, Expected, ImageRecord, Layer, Reference, Store, UnpackMode, TMP_PREFIX};
use super::{ImageContext, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const MAX_ARCHIVE_ENTRIES: usize = 100_000;
const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Where `ctr load` reads from.
pub enum LoadInput {
    Path(PathBuf),
    Stdin,
}

/// One image a load brought in.
pub struct Loaded {
    pub id: String,
    pub references: Vec<String>,
}

/// Loads every image in a docker-archive or OCI layout (directory or tar,
/// possibly compressed) into the store.
pub fn load(store: &Store, input: LoadInput, progress: &Progress) -> Result<Vec<Loaded>> {
    let _spool;
    let source: Box<dyn Source> = match input {
        LoadInput::Path(path) if path.is_dir() => Box::new(DirSource { root: path }),
        LoadInput::Path(path) => {
            let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
            let (file, spool) = uncompressed(store, file)?;
            _spool = spool;
            Box::new(
                TarSource::index(file).with_context(|| format!("cannot read {} as a tar archive", path.display()))?,
            )
        }
        LoadInput::Stdin => {
            let (file, spool) = uncompressed_stream(store, io::stdin().lock())?;
            _spool = Some(spool);
            Box::new(TarSource::index(file).context("cannot read standard input as a tar archive")?)
        }
    };
    let _lock = store.lock()?;
    if source.exists("manifest.json") {
        load_docker_archive(store, source.as_ref(), progress)
    } else if source.exists("index.json") {
        load_oci_layout(store, source.as_ref(), progress)
    } else {
        refuse!("this is neither a `docker save` archive (no manifest.json) nor an OCI image layout (no index.json); to import a root filesystem tarball use `ctr image import FILE NAME`")
    }
}

/// A file is used as it is if it is a plain tar; a compressed one is
/// decompressed into a temporary file in the store (random access is needed).
fn uncompressed(store: &Store, mut file: File) -> Result<(File, Option<tempfile::NamedTempFile>)> {
    let mut head = [0u8; 6];
    let n = file.read_at(&mut head, 0)?;
    if decompress::detect(&head[..n])? == decompress::Compression::None {
        return Ok((file, None));
    }
    let (file, spool) = uncompressed_stream(store, &mut file)?;
    Ok((file, Some(spool)))
}

fn uncompressed_stream(store: &Store, input: impl Read) -> Result<(File, tempfile::NamedTempFile)> {
    let mut spool = tempfile::Builder::new().prefix(TMP_PREFIX).tempfile_in(store.blobs_dir())?;
    let (_, mut decoded) = decompress::decoder(input)?;
    let limit = super::unpack::Limits::default().max_bytes;
    let copied =
        io::copy(&mut (&mut decoded).take(limit + 1), spool.as_file_mut()).context("cannot read the archive")?;
    if copied > limit {
        refuse!("the archive is larger than the {} GiB limit", limit >> 30);
    }
    Ok((spool.reopen()?, spool))
}

/// Named files of an archive.
trait Source: Sync {
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + '_>>;
    fn exists(&self, name: &str) -> bool;

    fn read_json_bytes(&self, name: &str) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open(name)?.take(oci::MAX_JSON_BYTES + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > oci::MAX_JSON_BYTES {
            refuse!("{name} in the archive is over the {} MiB limit", oci::MAX_JSON_BYTES >> 20);
        }
        Ok(bytes)
    }
}

struct DirSource {
    root: PathBuf,
}

impl Source for DirSource {
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + '_>> {
        let name = normalise(name)?;
        let path = self.root.join(&name);
        Ok(Box::new(File::open(&path).with_context(|| format!("cannot open {}", path.display()))?))
    }

    fn exists(&self, name: &str) -> bool {
        normalise(name).is_ok_and(|n| self.root.join(n).is_file())
    }
}

/// A tar file, indexed: each regular file's offset and size by name.
struct TarSource {
    file: File,
    files: HashMap<String, (u64, u64)>,
    links: HashMap<String, String>,
}

impl TarSource {
    fn index(file: File) -> Result<TarSource> {
        let mut files = HashMap::new();
        let mut links = HashMap::new();
        let mut archive = tar::Archive::new(&file);
        for (count, entry) in archive.entries()?.enumerate() {
            if count >= MAX_ARCHIVE_ENTRIES {
                refuse!("the archive has more than {MAX_ARCHIVE_ENTRIES} entries: refusing it");
            }
            let entry = entry?;
            let raw = entry.path_bytes();
            let Ok(name) = normalise(&String::from_utf8_lossy(&raw)) else { continue };
            let kind = entry.header().entry_type();
            if kind.is_file() {
                files.insert(name, (entry.raw_file_position(), entry.size()));
            } else if kind.is_symlink() || kind.is_hard_link() {
                let Some(target) = entry.link_name_bytes() else { continue };
                let target = String::from_utf8_lossy(&target).into_owned();
                let resolved = if kind.is_symlink() && !target.starts_with('/') {
                    let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                    format!("{dir}/{target}")
                } else {
                    target
                };
                if let Ok(resolved) = normalise(&resolved) {
                    links.insert(name, resolved);
                }
            }
        }
        Ok(TarSource { file, files, links })
    }

    fn find(&self, name: &str) -> Option<(u64, u64)> {
        let mut name = normalise(name).ok()?;
        for _ in 0..16 {
            if let Some(found) = self.files.get(&name) {
                return Some(*found);
            }
            name = self.links.get(&name)?.clone();
        }
        None
    }
}

impl Source for TarSource {
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + '_>> {
        let (offset, size) = self.find(name).with_context(|| format!("the archive has no file {name:?}"))?;
        Ok(Box::new(ReadAt { file: &self.file, pos: offset, end: offset + size }))
    }

    fn exists(&self, name: &str) -> bool {
        self.find(name).is_some()
    }
}

/// Reads a range of a file with pread, so that threads share one file.
struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = (self.end - self.pos).min(buf.len() as u64) as usize;
        if left == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..left], self.pos)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// A name inside an archive, lexically normalised; `..` that would leave
/// the archive and absolute names are refused.
fn normalise(name: &str) -> Result<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or_else(|| refused!("{name:?} points outside the archive"))?;
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        refuse!("empty name");
    }
    Ok(parts.join("/"))
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn load_docker_archive(store: &Store, source: &dyn Source, progress: &Progress) -> Result<Vec<Loaded>> {
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(&source.read_json_bytes("manifest.json")?).context("manifest.json is malformed")?;
    let mut loaded = Vec::new();
    for entry in entries {
        let config_bytes = source.read_json_bytes(&entry.config)?;
        let config = oci::ImageConfigFile::parse(&config_bytes)?;
        if config.rootfs.diff_ids.len() != entry.layers.len() {
            refuse!(
                "manifest.json lists {} layers for {}, but its config {}",
                entry.layers.len(),
                entry.config,
                config.rootfs.diff_ids.len()
            );
        }
        let jobs: Vec<LayerJob> = entry
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .map(|(name, diff_id)| LayerJob {
                name: name.clone(),
                expected: Expected { diff_id: Some(diff_id.clone()), ..Expected::default() },
                size: None,
                preferred: None,
            })
            .collect();
        let layers = unpack_layers(store, source, &jobs, progress)?;
        let references =
            entry.repo_tags.unwrap_or_default().iter().map(|t| Reference::parse(t)).collect::<Result<Vec<_>>>()?;
        let record = store.commit_image(&config_bytes, &layers, &references, None)?;
        loaded.push(loaded_of(&record, &references));
    }
    Ok(loaded)
}

fn loaded_of(record: &ImageRecord, references: &[Reference]) -> Loaded {
    Loaded { id: record.id.clone(), references: references.iter().map(|r| r.familiar()).collect() }
}

fn blob_name(d: &Descriptor) -> Result<String> {
    Ok(format!("blobs/sha256/{}", d.hex()?))
}

/// A blob of an OCI layout, small enough to hold, checked against its descriptor.
fn read_blob(source: &dyn Source, d: &Descriptor) -> Result<Vec<u8>> {
    if d.size > oci::MAX_JSON_BYTES {
        refuse!("{} is {} bytes, over the {} MiB limit", d.digest, d.size, oci::MAX_JSON_BYTES >> 20);
    }
    let bytes = source.read_json_bytes(&blob_name(d)?)?;
    if bytes.len() as u64 != d.size || digest::of_bytes(&bytes) != d.digest {
        refuse!("the blob {} in the archive does not match its digest or size: refusing it", d.digest);
    }
    Ok(bytes)
}

fn load_oci_layout(store: &Store, source: &dyn Source, progress: &Progress) -> Result<Vec<Loaded>> {
    let index_bytes = source.read_json_bytes("index.json")?;
    let Document::Index(index) = Document::parse(&index_bytes, oci::OCI_INDEX)? else {
        refuse!("index.json is not an image index");
    };
    let host = Platform::host();
    let mut loaded = Vec::new();
    for top in &index.manifests {
        if top.platform.as_ref().is_some_and(|p| !host.matches(p)) {
            continue;
        }
        let name = top
            .annotations
            .get(CONTAINERD_NAME)
            .or_else(|| top.annotations.get(REF_NAME).filter(|n| n.contains(['/', ':'])));
        let references: Vec<Reference> =
            name.and_then(|n| Reference::parse(n).ok()).filter(|r| r.digest.is_none()).into_iter().collect();
        let mut bytes = read_blob(source, top)?;
        let mut media_type = top.media_type.clone();
        let manifest = loop {
            match Document::parse(&bytes, &media_type)? {
                Document::Manifest(m) => break m,
                Document::Index(inner) => {
                    let chosen = oci::select_platform(&inner, &host)?.clone();
                    bytes = read_blob(source, &chosen)?;
                    media_type = chosen.media_type.clone();
                }
            }
        };
        let config_bytes = read_blob(source, &manifest.config)?;
        let config = oci::ImageConfigFile::parse(&config_bytes)?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            refuse!(
                "a manifest in the archive lists {} layers but its config {}",
                manifest.layers.len(),
                config.rootfs.diff_ids.len()
            );
        }
        let jobs = manifest
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .map(|(d, diff_id)| {
                Ok(LayerJob {
                    name: blob_name(d)?,
                    expected: Expected {
                        blob: Some((d.digest.clone(), d.size)),
                        diff_id: Some(diff_id.clone()),
                        media_type: Some(d.media_type.clone()),
                    },
                    size: Some(d.size),
                    preferred: Some(d.clone()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let layers = unpack_layers(store, source, &jobs, progress)?;
        let record = store.commit_image(&config_bytes, &layers, &references, None)?;
        loaded.push(loaded_of(&record, &references));
    }
    if loaded.is_empty() {
        refuse!("the OCI layout has no image for {host}");
    }
    Ok(loaded)
}

struct LayerJob {
    name: String,
    expected: Expected,
    size: Option<u64>,
    preferred: Option<Descriptor>,
}

/// Unpacks the layers the store lacks, in parallel (one thread per core),
/// and returns them all, bottom first.
fn unpack_layers(store: &Store, source: &dyn Source, jobs: &[LayerJob], progress: &Progress) -> Result<Vec<Layer>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(jobs.len()).max(1);
    let queue = Mutex::new((0..jobs.len()).collect::<VecDeque<_>>());
    let results: Mutex<Vec<Option<Result<Layer>>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let Some(i) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else { break };
                let job = &jobs[i];
                let result = (|| {
                    let diff_id = job.expected.diff_id.as_deref().unwrap_or_default();
                    if let Some(layer) = store.existing_layer(diff_id, job.preferred.as_ref())? {
                        progress.println(&format!("{}: Already exists", short_id(diff_id)));
                        return Ok(layer);
                    }
                    let bar = progress.layer(short_id(diff_id), job.size, "Loading");
                    let result = source
                        .open(&job.name)
                        .and_then(|r| store.layer_from(bar.wrap(r), UnpackMode::Layer, &job.expected));
                    match &result {
                        Ok(_) => bar.done("Loaded"),
                        Err(e) => bar.fail(&crate::error::chain(&e)),
                    }
                    result.with_context(|| format!("layer {} of the archive", job.name))
                })();
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(refused!("not unpacked"))))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// `docker save`'s format: manifest.json, configs, uncompressed layer.tar files.
    DockerArchive,
    /// An OCI image layout in a tar.
    Oci,
}

/// Writes images to the file `path`, which appears whole or not at all
/// (written beside it, synced, then renamed into place).
pub fn save_to_file(
    store: &Store,
    images: &[(ImageRecord, Vec<Reference>)],
    format: SaveFormat,
    path: &Path,
) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".ctr-save-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    save(store, images, format, std::io::BufWriter::new(tmp.as_file()))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Writes images (each with the names it should carry) to `out`.
pub fn save(
    store: &Store,
    images: &[(ImageRecord, Vec<Reference>)],
    format: SaveFormat,
    out: impl Write,
) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut written = std::collections::HashSet::new();
    let mut docker_entries = Vec::new();
    let mut index_entries = Vec::new();
    for (record, names) in images {
        let (image, config_bytes) = store.image_file(&record.id)?;
        let (Some(blobs), Some(config_bytes)) = (image.blobs, config_bytes) else {
            refuse!("image {} was imported by an older ctr and cannot be saved: import it again", short_id(&record.id));
        };
        let id_hex = digest::hex(&record.id)?.to_owned();
        match format {
            SaveFormat::DockerArchive => {
                let config_name = format!("{id_hex}.json");
                if written.insert(config_name.clone()) {
                    append(&mut tar, &config_name, &config_bytes)?;
                }
                let mut layer_names = Vec::new();
                for (blob, diff_id) in blobs.layers.iter().zip(&record.diff_ids) {
                    let name = format!("{}/layer.tar", digest::hex(diff_id)?);
                    if written.insert(name.clone()) {
                        append_uncompressed_layer(store, &mut tar, &name, blob, diff_id)?;
                    }
                    layer_names.push(name);
                }
                docker_entries.push(DockerManifestEntry {
                    config: config_name,
                    repo_tags: Some(names.iter().map(|r| r.familiar()).collect()),
                    layers: layer_names,
                });
            }
            SaveFormat::Oci => {
                let mut layers = Vec::new();
                for blob in &blobs.layers {
                    let path = store.blob_path(blob.hex()?);
                    let media_type = oci_layer_type(&path)?;
                    let name = blob_name(blob)?;
                    if written.insert(name.clone()) {
                        append_file(&mut tar, &name, &path, blob.size)?;
                    }
                    layers.push(Descriptor::new(media_type, blob.digest.clone(), blob.size));
                }
                if written.insert(format!("blobs/sha256/{id_hex}")) {
                    append(&mut tar, &format!("blobs/sha256/{id_hex}"), &config_bytes)?;
                }
                let manifest = oci::Manifest {
                    schema_version: 2,
                    media_type: oci::OCI_MANIFEST.into(),
                    config: Descriptor::new(oci::OCI_CONFIG, record.id.clone(), config_bytes.len() as u64),
                    layers,
                    annotations: BTreeMap::new(),
                };
                let manifest_bytes = serde_json::to_vec(&manifest)?;
                let manifest_digest = digest::of_bytes(&manifest_bytes);
                let name = format!("blobs/sha256/{}", digest::hex(&manifest_digest)?);
                if written.insert(name.clone()) {
                    append(&mut tar, &name, &manifest_bytes)?;
                }
                let targets: Vec<Option<&Reference>> =
                    if names.is_empty() { vec![None] } else { names.iter().map(Some).collect() };
                for target in targets {
                    let mut d =
                        Descriptor::new(oci::OCI_MANIFEST, manifest_digest.clone(), manifest_bytes.len() as u64);
                    if let Some(r) = target {
                        d.annotations.insert(CONTAINERD_NAME.into(), r.to_string());
                        d.annotations.insert(REF_NAME.into(), r.tag.clone().unwrap_or_default());
                    }
                    index_entries.push(d);
                }
            }
        }
    }
    match format {
        SaveFormat::DockerArchive => append(&mut tar, "manifest.json", &serde_json::to_vec(&docker_entries)?)?,
        SaveFormat::Oci => {
            append(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
            let index = oci::Index {
                schema_version: 2,
                media_type: oci::OCI_INDEX.into(),
                manifests: index_entries,
                annotations: BTreeMap::new(),
            };
            append(&mut tar, "index.json", &serde_json::to_vec(&index)?)?;
        }
    }
    tar.into_inner()?.flush()?;
    Ok(())
}

fn oci_layer_type(path: &Path) -> Result<&'static str> {
    let mut head = [0u8; 6];
    let n = File::open(path)?.read_at(&mut head, 0)?;
    match decompress::detect(&head[..n])? {
        decompress::Compression::Xz => {
            refuse!(
                "a layer of the image is xz-compressed, which OCI layouts do not allow: save it as a docker-archive"
            )
        }
        c => Ok(oci::layer_media_type(c)),
    }
}

fn header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

fn append(tar: &mut tar::Builder<impl Write>, name: &str, bytes: &[u8]) -> Result<()> {
    tar.append_data(&mut header(bytes.len() as u64), name, bytes).with_context(|| format!("cannot write {name}"))
}

fn append_file(tar: &mut tar::Builder<impl Write>, name: &str, path: &Path, size: u64) -> Result<()> {
    let file = File::open(path).with_context(|| format!("a blob of the image is missing: {}", path.display()))?;
    if file.metadata()?.len() != size {
        refuse!("the blob {} has the wrong size: remove the image and pull it again", path.display());
    }
    tar.append_data(&mut header(size), name, file).with_context(|| format!("cannot write {name}"))
}

/// A docker-archive holds layers uncompressed: a compressed blob is
/// decompressed into a temporary file first (its size goes in the header),
/// and checked against the diff id on the way.
fn append_uncompressed_layer(
    store: &Store,
    tar: &mut tar::Builder<impl Write>,
    name: &str,
    blob: &Descriptor,
    diff_id: &str,
) -> Result<()> {
    let path = store.blob_path(blob.hex()?);
    if blob.digest == diff_id {
        return append_file(tar, name, &path, blob.size);
    }
    let file = File::open(&path).with_context(|| format!("a blob of the image is missing: {}", path.display()))?;
    let (_, decoded) = decompress::decoder(file)?;
    let mut tmp = tempfile::Builder::new().prefix(TMP_PREFIX).tempfile_in(store.blobs_dir())?;
    let mut hashing = digest::HashingReader::new(decoded, super::unpack::Limits::default().max_bytes, "a layer");
    io::copy(&mut hashing, tmp.as_file_mut())?;
    let (got, size) = hashing.finish();
    if got != diff_id {
        refuse!(
            "the stored layer {} does not decompress to its diff id {diff_id}: remove the image and pull it again",
            blob.digest
        );
    }
    append_file(tar, name, tmp.path(), size)?;
    drop(fs::metadata(tmp.path()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_archive_names() {
        assert_eq!(normalise("./a/b/../c").unwrap(), "a/c");
        assert_eq!(normalise("/manifest.json").unwrap(), "manifest.json");
        assert!(normalise("../x").is_err());
        assert!(normalise("a/../../x").is_err());
        assert!(normalise("").is_err());
    }
}
