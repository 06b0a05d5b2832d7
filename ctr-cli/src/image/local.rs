//! The caller's own image store, as `ctr` opens it, and the image a
//! container runs: found in the store, else built in, else pulled (as
//! docker does).

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

/// The image `ctr run` uses: found in the store, else built in, else pulled;
/// refused if its files' owners were written for other id maps than the
/// container gets.
pub fn image_for_run(paths: &Paths, reference: &str) -> Result<ImageRecord> {
    let store = open_store(paths)?;
    let image = find_or_pull(&store, paths, reference)?;
    store.check_owners(&image, &IdMaps::current(), reference)?;
    Ok(image)
}

fn find_or_pull(store: &Store, paths: &Paths, reference: &str) -> Result<ImageRecord> {
    if let Some(image) = store.lookup(reference)? {
        return Ok(image);
    }
    if let Some(image) = store.import_builtin(&paths.builtin_images(), reference.trim_end_matches(":latest"))? {
        return Ok(image);
    }
    let parsed = Reference::parse(reference)?;
    eprintln!("Unable to find image '{}' locally", parsed.familiar());
    registry::pull(store, &parsed, &PullOptions::default(), &Progress::new(true))
        .map_err(|e| not_found_locally(reference, e))
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
