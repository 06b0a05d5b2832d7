//! `ctr push`: an image of the store to a registry (the OCI distribution
//! API's push, with the pull's client, authentication and rules for plain
//! http). Each blob (layers, then the config) is first asked for with a
//! HEAD: one the registry has is skipped ("Layer already exists"), the
//! others are uploaded whole (POST for an upload URL, then one PUT with
//! the digest). The manifest goes last, an OCI image manifest of the
//! store's blobs, under the reference's tag.

use super::oci::{self, Descriptor, Manifest};
use super::progress::Progress;
use super::registry::{Client, RegistryError};
use super::{digest, short_id, ImageContext, Reference, Result, Store};
use std::io::Read;

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Allow plain http.
    pub insecure: bool,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest's digest and size.
    pub digest: String,
    pub size: u64,
    /// Blobs uploaded, and skipped because the registry had them.
    pub uploaded: usize,
    pub skipped: usize,
}

/// Pushes the image `local` (a reference or id in the store) as `target`.
pub fn push(
    store: &Store,
    local: &str,
    target: &Reference,
    options: &PushOptions,
    progress: &Progress,
) -> Result<Pushed> {
    let image = store.lookup(local)?.with_context(|| format!("no such image: {local}"))?;
    let (file, _) = store.image_file(&image.id)?;
    let blobs = file
        .blobs
        .with_context(|| format!("image {local} has no blobs in the store (a legacy import): it cannot be pushed"))?;
    let tag = target.tag.clone().unwrap_or_else(|| "latest".to_owned());
    let client = Client::new(target, options.insecure)?;
    *client.push.lock().unwrap_or_else(|e| e.into_inner()) = true;
    progress.println(&format!("The push refers to repository [{}/{}]", target.domain, target.path));
    // Docker's layer media types, in an OCI manifest, become OCI's.
    let layers: Vec<Descriptor> = blobs
        .layers
        .iter()
        .map(|d| {
            let media_type = match d.media_type.as_str() {
                oci::DOCKER_LAYER_GZIP => oci::OCI_LAYER_GZIP,
                other => other,
            };
            Descriptor::new(media_type, d.digest.clone(), d.size)
        })
        .collect();
    let config = Descriptor::new(oci::OCI_CONFIG, blobs.config.digest.clone(), blobs.config.size);
    let (mut uploaded, mut skipped) = (0, 0);
    for (d, what) in layers.iter().map(|d| (d, "Layer")).chain(std::iter::once((&config, "Config"))) {
        let hex = d.hex()?;
        let shown = short_id(hex).to_owned();
        if exists(&client, d)? {
            progress.println(&format!("{shown}: {what} already exists"));
            skipped += 1;
            continue;
        }
        progress.println(&format!("{shown}: Pushing {}", crate::units::human_size(d.size)));
        upload(&client, store, d)?;
        progress.println(&format!("{shown}: Pushed"));
        uploaded += 1;
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: oci::OCI_MANIFEST.into(),
        config,
        layers,
        annotations: Default::default(),
    };
    let bytes = serde_json::to_vec(&manifest)?;
    let path = format!("/v2/{}/manifests/{tag}", client.repository);
    let body = bytes.clone();
    let make = move || -> std::io::Result<Box<dyn Read>> { Ok(Box::new(std::io::Cursor::new(body.clone()))) };
    client
        .call("PUT", &path, &[("Content-Type", oci::OCI_MANIFEST)], Some(&make), "the manifest")
        .map_err(registry_error)?;
    let digest = digest::of_bytes(&bytes);
    progress.println(&format!("{tag}: digest: {digest} size: {}", bytes.len()));
    Ok(Pushed { digest, size: bytes.len() as u64, uploaded, skipped })
}

fn registry_error(e: RegistryError) -> super::ImageError {
    super::ImageError::Registry(e)
}

/// Whether the registry has the blob (HEAD answers 200).
fn exists(client: &Client, d: &Descriptor) -> Result<bool> {
    let path = format!("/v2/{}/blobs/{}", client.repository, d.digest);
    match client.call("HEAD", &path, &[], None, &format!("blob {}", d.digest)) {
        Ok(_) => Ok(true),
        Err(RegistryError::NotFound { .. }) => Ok(false),
        Err(e) => Err(registry_error(e)),
    }
}

/// POST for an upload URL, then PUT the whole blob there with its digest.
fn upload(client: &Client, store: &Store, d: &Descriptor) -> Result<()> {
    let what = format!("the upload of {}", d.digest);
    let started = client
        .call("POST", &format!("/v2/{}/blobs/uploads/", client.repository), &[("Content-Length", "0")], None, &what)
        .map_err(registry_error)?;
    let location =
        started.header("location").with_context(|| format!("the registry gave no upload URL for {}", d.digest))?;
    let separator = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{separator}digest={}", d.digest);
    let path = store.blob_path(d.hex()?);
    let size = d.size.to_string();
    let open = move || -> std::io::Result<Box<dyn Read>> { Ok(Box::new(std::fs::File::open(&path)?)) };
    let headers = [("Content-Type", "application/octet-stream"), ("Content-Length", size.as_str())];
    client.call("PUT", &url, &headers, Some(&open), &what).map_err(registry_error)?;
    Ok(())
}
