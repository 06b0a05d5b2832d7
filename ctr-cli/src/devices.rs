//! `ctr run --device HOST[:CONTAINER][:PERMISSIONS]`: a host device node
//! bound into the container, checked here as the caller and bound by
//! `ctr init` inside the container's mount namespace; never through the
//! helper, which takes no part in it.
//!
//! What the permissions mean without a device cgroup: docker writes
//! `r`, `w` and `m` into the device cgroup, which an unprivileged user
//! cannot write (the helper does not either). What stands is the node's
//! own mode on the host, checked by the kernel against the container
//! process's host ids (container root is the caller; other container users
//! are subordinate ids; the caller's supplementary groups are not kept),
//! and mknod, which no user namespace is allowed. So ctr binds only a node
//! the caller can open with exactly the access asked for: `r` (or `w`)
//! alone is taken only when the node's mode already denies the caller the
//! other, and asking for an access the caller does not have is refused.
//! `m` is accepted (docker's default is `rwm`) with a warning when given
//! explicitly, since no container can make device nodes.

use crate::error::{IoContext, IoError};
use crate::mounts::SourceId;
use nix::sys::stat::SFlag;
use nix::unistd::AccessFlags;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A `--device` that cannot be bound, and why.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The message says what to change.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Mount(#[from] crate::mounts::MountError),
    #[error(transparent)]
    Io(#[from] IoError),
}

type Result<T, E = DeviceError> = std::result::Result<T, E>;

macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err(DeviceError::Invalid(format!($($arg)*)))
    };
}

/// One device node to bind, as checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// As the user gave it, and the canonical node it names.
    pub given: String,
    pub host: PathBuf,
    /// Absolute and normalised.
    pub container: String,
    /// Docker's letters, as given (default `rwm`).
    pub permissions: String,
    /// The node's identity when ctr checked it; `ctr init` binds only that.
    pub source_id: SourceId,
    pub rdev: u64,
    pub block: bool,
}

/// The parts of `HOST[:CONTAINER][:PERMISSIONS]` (docker's reading: a
/// second field of only r, w and m letters is the permissions), and
/// whether the permissions were given (else docker's default, `rwm`).
pub fn split(raw: &str) -> Result<(&str, &str, &str, bool)> {
    let looks_like_permissions = |s: &str| !s.is_empty() && s.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    let (host, container, permissions, given) = match raw.split(':').collect::<Vec<_>>().as_slice() {
        [host] => (*host, *host, "rwm", false),
        [host, perms] if looks_like_permissions(perms) => (*host, *host, *perms, true),
        [host, container] => (*host, *container, "rwm", false),
        [host, container, perms] => (*host, *container, *perms, true),
        _ => invalid!(
            "--device {raw:?}: use HOST-PATH[:CONTAINER-PATH][:PERMISSIONS], e.g. /dev/fuse or /dev/sdb:/dev/xvdc:rw"
        ),
    };
    if !host.starts_with('/') {
        invalid!("--device {raw:?}: the host path must be absolute (e.g. /dev/fuse)");
    }
    let mut seen = String::new();
    for c in permissions.chars() {
        if !matches!(c, 'r' | 'w' | 'm') || seen.contains(c) {
            invalid!("--device {raw:?}: the permissions are some of r, w and m, each once (e.g. rw)");
        }
        seen.push(c);
    }
    if !seen.contains('r') && !seen.contains('w') {
        invalid!("--device {raw:?}: give r, w or both: a node nobody may open is of no use");
    }
    Ok((host, container, permissions, given))
}

/// Checks one `--device` as the caller (see the module's text) and
/// records what to bind. Prints a warning for an explicit `m`, and for a
/// node the caller reaches only through a supplementary group.
pub fn resolve(raw: &str) -> Result<DeviceSpec> {
    let (host, container, permissions, explicit) = split(raw)?;
    let container = crate::mounts::destination(container)?;
    let canonical = std::fs::canonicalize(host).with_io_context(|| format!("--device {host}"))?;
    let fd = crate::mounts::open_no_symlinks(&canonical).with_io_context(|| format!("--device {host}"))?;
    let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd)).io_context("stat a --device node")?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFCHR && kind != SFlag::S_IFBLK {
        invalid!(
            "--device {host}: {} is not a device node (ctr binds single character or block devices; name each node)",
            canonical.display()
        );
    }
    for (letter, flag, what) in [('r', AccessFlags::R_OK, "reading"), ('w', AccessFlags::W_OK, "writing")] {
        let asked = permissions.contains(letter);
        let allowed = nix::unistd::access(&canonical, flag).is_ok();
        match (asked, allowed) {
            (true, false) => invalid!(
                "--device {raw}: you cannot open {} for {what} yourself, and ctr binds only devices you can open \
(it never asks the setuid helper for one); ask your administrator for access to the node",
                canonical.display()
            ),
            (false, true) => invalid!(
                "--device {raw}: ctr cannot keep the container from {what} {}: an unprivileged user cannot write the \
device cgroup, and only the node's own mode limits access; you may open it for {what}, so give {letter} too",
                canonical.display()
            ),
            _ => {}
        }
    }
    if explicit && permissions.contains('m') {
        eprintln!(
            "ctr: warning: --device {raw}: m (mknod) cannot be granted: no user namespace may make device nodes; the \
container gets this node only"
        );
    }
    if only_through_a_supplementary_group(&st, permissions) {
        eprintln!(
            "ctr: warning: --device {raw}: you reach {} only through one of your supplementary groups, which the \
container's processes do not keep: they will likely be refused opening it",
            canonical.display()
        );
    }
    Ok(DeviceSpec {
        given: raw.to_owned(),
        host: canonical,
        container,
        permissions: permissions.to_owned(),
        source_id: SourceId::of(&fd)?,
        rdev: st.st_rdev,
        block: kind == SFlag::S_IFBLK,
    })
}

/// The caller may open the node as asked only thanks to a group other
/// than its own primary one.
fn only_through_a_supplementary_group(st: &nix::sys::stat::FileStat, permissions: &str) -> bool {
    let need = |r: u32, w: u32| {
        (if permissions.contains('r') { r } else { 0 }) | (if permissions.contains('w') { w } else { 0 })
    };
    let mode = st.st_mode;
    let (uid, gid) = (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
    if uid == 0 || mode & need(0o004, 0o002) == need(0o004, 0o002) {
        return false;
    }
    if st.st_uid == uid {
        return false;
    }
    st.st_gid != gid && mode & need(0o040, 0o020) == need(0o040, 0o020)
}

/// Every `--device`, checked; no two on one container path.
pub fn resolve_all(raw: &[String]) -> Result<Vec<DeviceSpec>> {
    let devices = raw.iter().map(|r| resolve(r)).collect::<Result<Vec<_>>>()?;
    for (i, d) in devices.iter().enumerate() {
        if devices[..i].iter().any(|e| e.container == d.container) {
            invalid!("--device: two devices on {}", d.container);
        }
    }
    Ok(devices)
}

/// Docker's `HostConfig.Devices`.
pub fn inspect_json(devices: &[DeviceSpec]) -> serde_json::Value {
    devices
        .iter()
        .map(|d| {
            serde_json::json!({
                "PathOnHost": d.given.split(':').next().unwrap_or_default(),
                "PathInContainer": d.container,
                "CgroupPermissions": d.permissions,
            })
        })
        .collect()
}

/// Whether `path` is still the node `device` describes (for `ctr init`).
pub fn still_the_same(device: &DeviceSpec, fd: &std::os::fd::OwnedFd) -> Result<bool, IoError> {
    let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(fd)).io_context("stat a --device node")?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let want = if device.block { SFlag::S_IFBLK } else { SFlag::S_IFCHR };
    Ok(kind == want && st.st_rdev == device.rdev && SourceId::of(fd)? == device.source_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_forms() {
        assert_eq!(split("/dev/fuse").unwrap(), ("/dev/fuse", "/dev/fuse", "rwm", false));
        assert_eq!(split("/dev/sda:rw").unwrap(), ("/dev/sda", "/dev/sda", "rw", true));
        assert_eq!(split("/dev/sda:/dev/xvdc").unwrap(), ("/dev/sda", "/dev/xvdc", "rwm", false));
        assert_eq!(split("/dev/sda:/dev/xvdc:r").unwrap(), ("/dev/sda", "/dev/xvdc", "r", true));
        for bad in ["dev/fuse", "/dev/a:/b:rx", "/dev/a:/b:rr", "/dev/a:/b:m", "/a:/b:r:x", "/dev/a:/b:"] {
            assert!(split(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_nodes_mode_must_match_the_permissions() {
        // /dev/zero and /dev/null are 0666 on every Linux host.
        let zero = resolve("/dev/zero:/dev/z").unwrap();
        assert_eq!((zero.container.as_str(), zero.block, zero.rdev), ("/dev/z", false, libc::makedev(1, 5)));
        let err = resolve("/dev/zero:/dev/z:r").unwrap_err().to_string();
        assert!(err.contains("cannot keep the container from writing"), "{err}");
        let err = resolve("/tmp:/x").unwrap_err().to_string();
        assert!(err.contains("not a device node"), "{err}");
        assert!(resolve("/nonexistent/dev").is_err());
        let err = resolve_all(&["/dev/zero:/dev/x".into(), "/dev/null:/dev/x".into()]).unwrap_err().to_string();
        assert!(err.contains("two devices"), "{err}");
    }
}
