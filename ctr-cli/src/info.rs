//! `ctr info`: what this host gives ctr, for bug reports and for checking
//! an installation: kernel, cgroup layout, helper, id mapping, paths.

use crate::paths::Paths;
use crate::run::id_maps;
use anyhow::Result;
use ctr_core::idmap::to_proc_format;
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

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

pub fn print(paths: &Paths) -> Result<()> {
    let uname = nix::sys::utsname::uname()?;
    let (uid_map, gid_map) = id_maps();
    let one_line = |map: &str| map.trim_end().replace('\n', ", ");
    println!("Kernel:            {} {}", uname.sysname().to_string_lossy(), uname.release().to_string_lossy());
    println!("Cgroups:           {}", cgroup_layout());
    println!("Helper:            {} ({})", paths.helper().display(), helper_mode(&paths.helper()));
    println!(
        "User namespaces:   max_user_namespaces={} unprivileged_userns_clone={}",
        read_trimmed("/proc/sys/user/max_user_namespaces"),
        read_trimmed("/proc/sys/kernel/unprivileged_userns_clone")
    );
    println!("UID map:           {}", one_line(&to_proc_format(&uid_map)));
    println!("GID map:           {}", one_line(&to_proc_format(&gid_map)));
    if uid_map.len() == 1 {
        println!("                   (single-id map: add a range for you to /etc/subuid and /etc/subgid for more ids)");
    }
    println!("Image file owners: {}", crate::image::userns::Owners::detect().summary());
    println!("Seccomp:           {}", crate::seccomp::info());
    println!("Rootfs:            overlayfs in the container's user namespace (userxattr), no copy fallback");
    println!("State:             {}", paths.state.display());
    println!("Storage:           {}", paths.storage.display());
    println!("Built-in images:   {}", paths.builtin_images().display());
    Ok(())
}
