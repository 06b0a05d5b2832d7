//! A container's writable layer, read in a user namespace with the
//! containers' id maps (`ctr internal-userns layer|diff|export`, see
//! [`super::userns`]): its files belong to the ids the container uses, and
//! only such a namespace can read every one of them and see their owners
//! as the container does.
//!
//! * `layer UPPER OUT`: the upper directory as an image layer (whiteouts
//!   and opaque directories in the OCI form) into `OUT/layer.tar`, for
//!   `ctr commit`;
//! * `diff UPPER LOWER...`: docker's `A`/`C`/`D` list of its entries;
//! * `export UPPER OUT LOWER...`: the container's whole file system, as
//!   an overlay of the upper directory on the image's layers mounted
//!   read-only in a mount namespace of its own on `OUT/rootfs`, into
//!   `OUT/rootfs.tar`;
//! * `cp-out[-follow] UPPER OUT PATH LOWER...` and `cp-in[-keep] UPPER WORK OUT PATH
//!   LOWER...`: `ctr cp` for a stopped container, through the same overlay
//!   (writable, with the container's own work directory, for `cp-in`):
//!   PATH out to `OUT/copy.tar`, or `OUT/copy.tar` in at PATH, resolved
//!   beneath the overlay's root as for a running container.
//!
//! The child acts only on the caller's own store: UPPER must be
//! `<storage>/containers/<id>/layer/upper`, OUT a `<layers>/.work-*`
//! directory, each LOWER a `<layers>/<hex>/rootfs`; all resolved, no
//! symlink. Inside UPPER nothing is followed ([`crate::container::tree`]).

use super::{ImageContext, ImageError, Result};
use crate::container::tree::{self, Form};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Prefix of the store's directories where a container's layer is
/// archived.
pub const WORK_PREFIX: &str = ".work-";

pub const OPS: [&str; 7] = ["layer", "diff", "export", "cp-out", "cp-out-follow", "cp-in", "cp-in-keep"];

/// Checks the arguments of `op` before the namespace is made.
pub fn check(op: &str, args: &[PathBuf]) -> Result<()> {
    let paths = crate::paths::Paths::discover()?;
    let storage = std::fs::canonicalize(&paths.storage)
        .with_context(|| format!("cannot find your storage {}", paths.storage.display()))?;
    let layers = storage.join("layers");
    let usage =
        || refused!("usage: ctr internal-userns layer UPPER OUT | diff UPPER LOWER... | export UPPER OUT LOWER...");
    let (upper, rest) = args.split_first().ok_or_else(usage)?;
    check_upper(&storage, upper)?;
    let (out, lowers) = match op {
        "layer" if rest.len() == 1 => (Some(&rest[0]), &rest[..0]),
        "diff" => (None, rest),
        "export" if !rest.is_empty() => (Some(&rest[0]), &rest[1..]),
        "cp-out" | "cp-out-follow" if rest.len() >= 2 => (Some(&rest[0]), &rest[2..]),
        "cp-in" | "cp-in-keep" if rest.len() >= 3 => {
            let work = upper.with_file_name("work");
            if resolved(&rest[0]).as_deref() != Some(work.as_path()) {
                refuse!("refusing {}: not the work directory beside {}", rest[0].display(), upper.display());
            }
            (Some(&rest[1]), &rest[3..])
        }
        _ => return Err(usage()),
    };
    if let Some(out) = out {
        check_out(&layers, out)?;
    }
    for lower in lowers {
        check_lower(&layers, lower)?;
    }
    Ok(())
}

fn resolved(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok().filter(|p| p == path)
}

fn check_upper(storage: &Path, upper: &Path) -> Result<()> {
    let refuse = || refused!("refusing {}: not the writable layer of one of your containers", upper.display());
    let upper = resolved(upper).ok_or_else(refuse)?;
    let id = upper.strip_prefix(storage.join("containers")).map_err(|_| refuse())?;
    let parts: Vec<_> = id.iter().collect();
    match parts[..] {
        [id, layer, up] if layer == "layer" && up == "upper" && id.len() == 64 => Ok(()),
        _ => Err(refuse()),
    }
}

fn check_out(layers: &Path, out: &Path) -> Result<()> {
    let refuse = || refused!("refusing {}: not a work directory of your image store", out.display());
    let out = resolved(out).ok_or_else(refuse)?;
    let temporary = out.file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(WORK_PREFIX.as_bytes()));
    if out.parent() != Some(layers) || !temporary || !out.is_dir() {
        return Err(refuse());
    }
    Ok(())
}

fn check_lower(layers: &Path, lower: &Path) -> Result<()> {
    let refuse = || refused!("refusing {}: not a layer of your image store", lower.display());
    let lower = resolved(lower).ok_or_else(refuse)?;
    let layer = lower.parent().and_then(|p| match p.file_name() {
        // A layer's keep-id copy: `<layers>/<hex>/keep-id/rootfs`.
        Some(name) if name == super::keep_id::KEEP_ID_DIR => p.parent(),
        _ => Some(p),
    });
    if lower.file_name() != Some("rootfs".as_ref()) || layer.and_then(Path::parent) != Some(layers) {
        return Err(refuse());
    }
    Ok(())
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    use nix::fcntl::OFlag;
    tree::Scope::Host
        .open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW)
        .with_context(|| format!("cannot open {}", path.display()))
}

fn tree_error(e: tree::TreeError) -> ImageError {
    ImageError::Invalid(crate::error::chain(&e))
}

/// Runs `op` (checked) inside the namespace; its answer.
pub fn run(op: &str, args: &[PathBuf]) -> Result<serde_json::Value> {
    let upper = &args[0];
    match op {
        "layer" => {
            let out = File::create(args[1].join("layer.tar")).context("cannot create the layer archive")?;
            let copied = tree::archive_contents(&open_dir(upper)?, Form::Layer, std::io::BufWriter::new(out))
                .map_err(tree_error)?;
            Ok(serde_json::to_value(copied)?)
        }
        "diff" => {
            let lowers = &args[1..];
            let in_lower = |path: &Path| {
                let relative = path.strip_prefix("/").unwrap_or(path);
                lowers.iter().any(|l| l.join(relative).symlink_metadata().is_ok())
            };
            let changes = tree::changes(&open_dir(upper)?, &in_lower).map_err(tree_error)?;
            Ok(serde_json::to_value(changes)?)
        }
        "cp-out" | "cp-out-follow" => {
            let (out, path, lowers) = (&args[1], &args[2], &args[3..]);
            let root = mount_readonly(upper, lowers, &out.join("rootfs"))?;
            let scope = tree::Scope::InRoot(root.as_fd());
            let source = tree::open_source(scope, path, op == "cp-out-follow").map_err(tree_error)?;
            let file = File::create(out.join("copy.tar")).context("cannot create the copy's archive")?;
            let copied = tree::archive_source(&source, std::io::BufWriter::new(file)).map_err(tree_error)?;
            Ok(serde_json::to_value(copied)?)
        }
        "cp-in" | "cp-in-keep" => {
            let (work, out, path, lowers) = (&args[1], &args[2], &args[3], &args[4..]);
            let root = mount_writable(upper, work, lowers, &out.join("rootfs"))?;
            let (dir, rename) = tree::destination(tree::Scope::InRoot(root.as_fd()), path).map_err(tree_error)?;
            let owners = if op == "cp-in-keep" { tree::Owners::Archive } else { tree::Owners::Writer };
            let options = tree::ExtractOptions { owners, owner_can_write: false };
            let file = File::open(out.join("copy.tar")).context("cannot open the copy's archive")?;
            let copied =
                tree::extract(std::io::BufReader::new(file), &dir, rename.as_deref(), options).map_err(tree_error)?;
            Ok(serde_json::to_value(copied)?)
        }
        _ => {
            let (out, lowers) = (&args[1], &args[2..]);
            let root = mount_readonly(upper, lowers, &out.join("rootfs"))?;
            let file = File::create(out.join("rootfs.tar")).context("cannot create the export archive")?;
            let copied =
                tree::archive_contents(&root, Form::Files, std::io::BufWriter::new(file)).map_err(tree_error)?;
            Ok(serde_json::to_value(copied)?)
        }
    }
}

/// The container's overlay as its init mounts it (writable), for `cp` into
/// a stopped container, in a mount namespace of this process's own.
fn mount_writable(upper: &Path, work: &Path, lowers: &[PathBuf], target: &Path) -> Result<OwnedFd> {
    let lowers: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
    let (upper, work) = (upper.display().to_string(), work.display().to_string());
    let data = format!("lowerdir={},upperdir={upper},workdir={work},userxattr", lowers.join(":"));
    mount_overlay(&data, target)
}

/// The upper directory over the image's layers, read-only (every one a
/// lower layer, so the running container's use of it is not disturbed),
/// in a mount namespace of this process's own.
fn mount_readonly(upper: &Path, lowers: &[PathBuf], target: &Path) -> Result<OwnedFd> {
    let mut all = vec![upper.display().to_string()];
    all.extend(lowers.iter().map(|l| l.display().to_string()));
    if all.iter().any(|p| p.contains([',', ':'])) {
        refuse!("a layer path holds a comma or colon, which overlayfs cannot take: {}", all.join(" "));
    }
    mount_overlay(&format!("lowerdir={},userxattr,index=off", all.join(":")), target)
}

/// Mounts an overlay with `data` on `target` (created), in a new private
/// mount namespace; its root, opened.
fn mount_overlay(data: &str, target: &Path) -> Result<OwnedFd> {
    use nix::mount::{mount, MsFlags};
    if data.split(',').skip(1).any(|o| !o.contains('=') && o != "userxattr") {
        refuse!("a layer path holds a comma, which overlayfs cannot take: {data}");
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).context("cannot make a mount namespace")?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("cannot make the mount namespace private")?;
    std::fs::create_dir(target).with_context(|| format!("cannot create {}", target.display()))?;
    mount(Some("overlay"), target, Some("overlay"), MsFlags::empty(), Some(data))
        .context("cannot mount the container's files (overlay in a user namespace needs Linux >= 5.11)")?;
    open_dir(target)
}
