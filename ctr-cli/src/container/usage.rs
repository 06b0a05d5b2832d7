//! `system df`: what images, containers and volumes take on disk, and
//! what a prune could reclaim. Sizes are of the files the caller can reach
//! (`stat` of every file beneath each writable layer and volume; a
//! directory of another id that cannot be listed counts as empty), and an
//! image's size counts layers it shares with others, as docker's does.

use super::record::{list, RecordError};
use crate::image::{local, ImageError};
use crate::paths::Paths;
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
}

/// One line of `system df`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// `Images`, `Containers` or `Local Volumes`.
    pub kind: &'static str,
    pub total: usize,
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
}

pub fn disk_usage(paths: &Paths) -> Result<Vec<Usage>, UsageError> {
    let containers = list(paths)?;
    let store = local::open_store(paths)?;
    let images = store.list()?;
    let used_images: BTreeSet<&str> = containers.iter().filter_map(|c| c.image_id.as_deref()).collect();
    let mut image_usage = Usage { kind: "Images", total: images.len(), active: 0, size: 0, reclaimable: 0 };
    for image in &images {
        image_usage.size += image.size;
        if used_images.contains(image.id.as_str()) {
            image_usage.active += 1;
        } else {
            image_usage.reclaimable += image.size;
        }
    }
    let mut container_usage = Usage { kind: "Containers", total: containers.len(), active: 0, size: 0, reclaimable: 0 };
    for state in &containers {
        let size = tree_size(&paths.containers().join(&state.id).join("layer/upper"));
        container_usage.size += size;
        if state.is_up() {
            container_usage.active += 1;
        } else {
            container_usage.reclaimable += size;
        }
    }
    let used_volumes: BTreeSet<String> =
        containers.iter().flat_map(|c| crate::mounts::volume_names(&c.mounts).map(str::to_owned)).collect();
    let names = crate::volume::names(paths)?;
    let mut volume_usage = Usage { kind: "Local Volumes", total: names.len(), active: 0, size: 0, reclaimable: 0 };
    for name in &names {
        let size = tree_size(&paths.storage.join("volumes").join(name).join("_data"));
        volume_usage.size += size;
        if used_volumes.contains(name) {
            volume_usage.active += 1;
        } else {
            volume_usage.reclaimable += size;
        }
    }
    Ok(vec![image_usage, container_usage, volume_usage])
}

/// Bytes of the regular files beneath `dir`, not following symlinks or
/// crossing into other file systems; what cannot be read counts nothing.
fn tree_size(dir: &Path) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(dir) else { return 0 };
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() && meta.dev() == top.dev() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_sizes_count_files_not_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("g"), [0u8; 20]).unwrap();
        std::os::unix::fs::symlink("/usr", dir.path().join("link")).unwrap();
        assert_eq!(tree_size(dir.path()), 120);
        assert_eq!(tree_size(&dir.path().join("missing")), 0);
    }
}
