//! `ctr info`: what this host gives ctr, for bug reports and for checking
//! an installation: kernel, cgroup layout, helper, id mapping, paths.

use crate::error::{IoContext, IoError};
use crate::idmap::id_maps;
use crate::paths::Paths;
use ctr_core::idmap::IdMapEntry;
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub fn cgroup_layout() -> String {
    let is_v2 = |p: &str| statfs(p).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC);
    if is_v2("/sys/fs/cgroup") {
        "v2 (unified)".to_owned()
    } else if is_v2("/sys/fs/cgroup/unified") {
        "hybrid (v1 controllers, v2 tree at /sys/fs/cgroup/unified)".to_owned()
    } else {
        "v1".to_owned()
    }
}

fn helper_mode(path: &Path) -> String {
    match std::fs::metadata(path) {
        Err(e) => format!("not installed ({e}): run `sudo cargo xtask install`"),
        Ok(m) if m.uid() == 0 && m.permissions().mode() & 0o4000 != 0 => "setuid root".to_owned(),
        Ok(_) => "no setuid bit: file capabilities expected (check with getcap)".to_owned(),
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_else(|_| "n/a".into())
}

/// What `ctr info` shows.
#[derive(Debug, Clone)]
pub struct HostInfo {
    /// `Linux 6.1.0`.
    pub kernel: String,
    pub cgroups: String,
    pub helper: PathBuf,
    pub helper_mode: String,
    pub max_user_namespaces: String,
    pub unprivileged_userns_clone: String,
    pub uid_map: Vec<IdMapEntry>,
    pub gid_map: Vec<IdMapEntry>,
    pub image_owners: String,
    pub seccomp: String,
    pub state: PathBuf,
    pub storage: PathBuf,
    pub builtin_images: PathBuf,
}

pub fn gather(paths: &Paths) -> Result<HostInfo, IoError> {
    let uname = nix::sys::utsname::uname().io_context("uname")?;
    let (uid_map, gid_map) = id_maps();
    Ok(HostInfo {
        kernel: format!("{} {}", uname.sysname().to_string_lossy(), uname.release().to_string_lossy()),
        cgroups: cgroup_layout(),
        helper: paths.helper(),
        helper_mode: helper_mode(&paths.helper()),
        max_user_namespaces: read_trimmed("/proc/sys/user/max_user_namespaces"),
        unprivileged_userns_clone: read_trimmed("/proc/sys/kernel/unprivileged_userns_clone"),
        uid_map,
        gid_map,
        image_owners: crate::image::userns::Owners::detect().summary(),
        seccomp: crate::seccomp::info(),
        state: paths.state.clone(),
        storage: paths.storage.clone(),
        builtin_images: paths.builtin_images(),
    })
}
