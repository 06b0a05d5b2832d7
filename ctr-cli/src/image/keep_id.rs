//! `--userns keep-id` (podman's): the caller's own uid is itself inside the
//! container, so the id maps differ from the ones the layers were unpacked
//! for ([`crate::idmap::keep_id_map`]). Without privilege no idmapped mount
//! can fix that (ARCHITECTURE.md, "the user namespace"), so each layer is
//! unpacked once more from its stored blob, in a user namespace with the
//! keep-id maps, into `<layer>/keep-id/rootfs`: the same files with the
//! owners a keep-id container must see. It is made once, reused by every
//! later keep-id run, and removed with its layer (`rmi`, `image prune`).

use super::{digest, ImageRecord, Result, Store, UnpackMode};
use super::{unpack_stream, IdMaps, ImageContext, Owners};
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// The directory beside a layer's `rootfs` that holds its keep-id copy.
pub const KEEP_ID_DIR: &str = "keep-id";

impl Store {
    /// The image's layers as a keep-id container with `maps` sees them,
    /// top-most first (overlayfs's `lowerdir` order); copies that are
    /// missing are made under the store's lock.
    pub fn keep_id_layers(&self, image: &ImageRecord, maps: &IdMaps) -> Result<Vec<PathBuf>> {
        if !matches!(self.owners, Owners::UserNamespace(_) | Owners::Direct(_)) {
            refuse!("--userns keep-id needs the image's file owners kept: {}", self.owners.summary());
        }
        if *maps == *self.owners.maps() {
            // Root's keep-id: the default maps.
            return Ok(image.lower_dirs.clone());
        }
        let mut lower = Vec::with_capacity(image.diff_ids.len());
        let mut lock = None;
        for diff_id in image.diff_ids.iter().rev() {
            let copy = self.layer_dir(digest::hex(diff_id)?).join(KEEP_ID_DIR);
            if !copy.is_dir() {
                if lock.is_none() {
                    lock = Some(self.lock()?);
                }
                if !copy.is_dir() {
                    self.make_keep_id_copy(diff_id, maps)?;
                }
            }
            lower.push(copy.join("rootfs"));
        }
        Ok(lower)
    }

    /// Unpacks the layer `diff_id` again from its blob, with `maps`, into
    /// `<layer>/keep-id`. The caller holds the lock.
    fn make_keep_id_copy(&self, diff_id: &str, maps: &IdMaps) -> Result<()> {
        let layer_dir = self.layer_dir(digest::hex(diff_id)?);
        let Some(layer) = self.existing_layer(diff_id, None)? else {
            refuse!(
                "--userns keep-id: the layer {} has no archive left in the store to unpack again for keep-id \
(it was imported by an older ctr): remove the image and pull or load it again",
                super::short_id(diff_id)
            );
        };
        let blob = self.blob_path(digest::hex(&layer.blob.digest)?);
        let file = File::open(&blob).with_context(|| format!("cannot open {}", blob.display()))?;
        let mut tmp = self.scratch()?;
        let owners = match &self.owners {
            Owners::Direct(_) => Owners::Direct(maps.clone()),
            _ => Owners::UserNamespace(maps.clone()),
        };
        let unpacked =
            unpack_stream(file, &tmp.path().join("rootfs"), UnpackMode::Layer, layer.blob.size, &owners, &self.guard)?;
        if !unpacked.owners_kept {
            refuse!("--userns keep-id: the layer {} could not be unpacked with its owners", super::short_id(diff_id));
        }
        if unpacked.diff_id != diff_id {
            refuse!(
                "--userns keep-id: the stored archive of layer {diff_id} unpacks to {}: remove the image and pull it again",
                unpacked.diff_id
            );
        }
        let dir = File::open(tmp.path())?;
        nix::unistd::syncfs(dir.as_raw_fd()).context("cannot sync the keep-id copy of a layer to disk")?;
        let target = layer_dir.join(KEEP_ID_DIR);
        fs::rename(tmp.path(), &target)
            .with_context(|| format!("cannot move a keep-id copy to {}", target.display()))?;
        let _ = tmp.dir.take().map(tempfile::TempDir::keep);
        super::state::sync_dir(&layer_dir)
    }
}
