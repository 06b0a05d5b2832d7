//! The caller's own image store, as `ctr` opens it, and the image a
//! container runs: found in the store, else built in, else pulled (as
//! docker does).

use super::oci::Platform;
use super::progress::Progress;
use super::registry::{self, PullOptions, RegistryError};
use super::userns::{IdMaps, Owners};
use super::{ImageError, Result};
use super::{ImageRecord, Reference, Store};
use crate::paths::Paths;
use std::collections::BTreeMap;

/// The user's image store, unpacking layers with their owners where this
/// user and host allow it ([`super::userns`]).
pub fn open_store(paths: &Paths) -> Result<Store> {
    Ok(Store::open(&paths.storage)?.with_owners(Owners::detect()))
}

/// `ctr run --pull`: when the image is pulled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Only when it is not in the store (nor built in).
    #[default]
    Missing,
    /// Always, even when it is here.
    Always,
    /// Never: an image that is not here is an error.
    Never,
}

/// What `ctr run` asks of its image.
#[derive(Debug, Clone, Default)]
pub struct RunImage {
    pub pull: PullPolicy,
    /// `--platform`: the image must be this one (pulled from an index for it).
    pub platform: Option<Platform>,
}

/// The image `ctr run` uses: found in the store, else built in, else pulled
/// (as `--pull` says); refused if it is not `--platform`'s, or if its files'
/// owners were written for other id maps than the container gets.
pub fn image_for_run(paths: &Paths, reference: &str, wanted: &RunImage) -> Result<ImageRecord> {
    let store = open_store(paths)?;
    let image = find_or_pull(&store, paths, reference, wanted)?;
    check_platform(&image, reference, wanted.platform.as_ref())?;
    store.check_owners(&image, &IdMaps::current(), reference)?;
    Ok(image)
}

/// The image's layers as a `--userns keep-id` container with `maps` sees
/// them ([`super::keep_id`]), made on its first such run.
pub fn keep_id_layers(paths: &Paths, image: &ImageRecord, maps: &IdMaps) -> Result<Vec<std::path::PathBuf>> {
    open_store(paths)?.keep_id_layers(image, maps)
}

fn find_or_pull(store: &Store, paths: &Paths, reference: &str, wanted: &RunImage) -> Result<ImageRecord> {
    if wanted.pull != PullPolicy::Always {
        if let Some(image) = store.lookup(reference)? {
            return Ok(image);
        }
        if let Some(image) = store.import_builtin(&paths.builtin_images(), reference.trim_end_matches(":latest"))? {
            return Ok(image);
        }
    }
    let parsed = Reference::parse(reference)?;
    if wanted.pull == PullPolicy::Never {
        refuse!(
            "image {reference:?} is not here and --pull never forbids pulling it: `ctr pull` or `ctr image import` it first"
        );
    }
    if wanted.pull == PullPolicy::Missing {
        eprintln!("Unable to find image '{}' locally", parsed.familiar());
    }
    let options = PullOptions { platform: wanted.platform.clone(), ..PullOptions::default() };
    registry::pull(store, &parsed, &options, &Progress::new(true)).map_err(|e| match wanted.pull {
        PullPolicy::Always => {
            refused!("--pull always: pulling {reference:?} failed: {}", crate::error::chain(&e))
        }
        _ => not_found_locally(reference, e),
    })
}

/// An image of another platform than `--platform` asks for is refused; one
/// that is not the host's runs only where the kernel can execute it.
fn check_platform(image: &ImageRecord, reference: &str, wanted: Option<&Platform>) -> Result<()> {
    let Some(wanted) = wanted else { return Ok(()) };
    let host = Platform::host();
    let host_name = format!("{}/{}", host.os, host.architecture);
    // A built-in or imported image without a recorded platform is the host's.
    let has = image.platform.clone().unwrap_or_else(|| host_name.clone());
    let wanted_name = format!("{}/{}", wanted.os, wanted.architecture);
    if has != wanted_name {
        refuse!(
            "image {reference:?} here is {has}, not {wanted_name}: remove it, or run with --pull always --platform \
             {wanted_name} to fetch that platform's image (if the registry has one)"
        );
    }
    if wanted_name != host_name {
        eprintln!(
            "ctr: warning: image {reference:?} is {wanted_name} and this host is {host_name}: it runs only if the \
             kernel can execute it (binfmt_misc)"
        );
    }
    Ok(())
}

fn not_found_locally(reference: &str, e: ImageError) -> ImageError {
    match e.registry() {
        Some(RegistryError::NotFound { .. }) => {
            refused!("image {reference:?} not found locally and the registry said 404: check the name (or import it with `ctr image import FILE {reference}`)")
        }
        _ => refused!("image {reference:?} not found locally, and pulling it failed: {}", crate::error::chain(&e)),
    }
}

/// Which of the user's containers use an image (by id): their names. Read
/// from the containers' records as plain JSON, so that the image store
/// needs nothing of the container module.
pub fn containers_using(paths: &Paths) -> impl Fn(&str) -> Vec<String> {
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(paths.containers()) {
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read(entry.path().join("state.json")) else { continue };
            let Ok(state) = serde_json::from_slice::<serde_json::Value>(&text) else { continue };
            let id = state.get("image_id").and_then(|i| i.as_str());
            let name = state.get("name").and_then(|n| n.as_str()).unwrap_or("?");
            if let Some(id) = id {
                users.entry(id.to_owned()).or_default().push(name.to_owned());
            }
        }
    }
    move |id: &str| users.get(id).cloned().unwrap_or_default()
}

/// An image as docker's `image inspect` shows it.
pub fn inspect_json(r: &ImageRecord) -> serde_json::Value {
    let c = &r.config;
    let ports: BTreeMap<&str, serde_json::Value> =
        c.exposed_ports.iter().map(|p| (p.as_str(), serde_json::json!({}))).collect();
    let (os, arch) = r.platform.as_deref().and_then(|p| p.split_once('/')).unwrap_or(("linux", ""));
    serde_json::json!({
        "Id": r.id,
        "RepoTags": r.references,
        "RepoDigests": r.repo_digests,
        "Created": crate::units::rfc3339_seconds(r.created),
        "Size": r.size,
        "Os": os,
        "Architecture": arch,
        "Config": {
            "Entrypoint": (!c.entrypoint.is_empty()).then_some(&c.entrypoint),
            "Cmd": (!c.cmd.is_empty()).then_some(&c.cmd),
            "Env": c.env,
            "WorkingDir": c.working_dir.clone().unwrap_or_default(),
            "User": c.user.clone().unwrap_or_default(),
            "ExposedPorts": (!ports.is_empty()).then_some(ports),
        },
        "RootFS": { "Type": "layers", "Layers": r.diff_ids },
        "GraphDriver": { "Name": "overlay", "Data": { "LowerDir": r.lower_dirs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":") } },
    })
}

/// The images `save` writes, each with the names it should carry: saved
/// by name, that name; by id, all its names.
pub fn for_save(store: &Store, names: &[String]) -> Result<Vec<(ImageRecord, Vec<Reference>)>> {
    let mut images = Vec::new();
    for name in names {
        let record = store.lookup(name)?.ok_or_else(|| refused!("no such image: {name}"))?;
        let names: Vec<Reference> = match Reference::parse(name) {
            Ok(r) if r.digest.is_none() && record.references.contains(&r.familiar()) => vec![r],
            _ => record.references.iter().filter_map(|r| Reference::parse(r).ok()).collect(),
        };
        images.push((record, names));
    }
    Ok(images)
}
